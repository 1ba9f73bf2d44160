import { CODES, type Code } from '../../../server/src/core/codes';
import type { Problem } from '../../../server/src/core/problems';

export interface FileResult {
  /** As given on the command line (or relative to the working directory when found by search). */
  file: string;
  problems: Problem[];
}

export type Format = 'text' | 'json' | 'sarif';

export function counts(results: FileResult[]): { errors: number; warnings: number; others: number } {
  let errors = 0;
  let warnings = 0;
  let others = 0;
  for (const r of results) {
    for (const p of r.problems) {
      if (p.severity === 'error') errors++;
      else if (p.severity === 'warning') warnings++;
      else others++;
    }
  }
  return { errors, warnings, others };
}

/** gcc-style lines (1-based line:column) that terminals and CI logs link to. */
export function formatText(results: FileResult[], color: boolean): string {
  const paint = (code: string, s: string): string => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const sev: Record<string, string> = { error: paint('31', 'error'), warning: paint('33', 'warning'), info: paint('36', 'info'), hint: paint('2', 'hint') };
  const lines: string[] = [];
  for (const r of results) {
    for (const p of r.problems) {
      lines.push(`${r.file}:${p.range.start.line + 1}:${p.range.start.character + 1}: ${sev[p.severity]} ${p.code} ${p.message}`);
    }
  }
  const c = counts(results);
  const plural = (n: number, w: string): string => `${n} ${w}${n === 1 ? '' : 's'}`;
  lines.push(`${plural(results.length, 'file')} checked: ${plural(c.errors, 'error')}, ${plural(c.warnings, 'warning')}, ${plural(c.others, 'hint')}.`);
  return lines.join('\n') + '\n';
}

/** Machine-readable; ranges are zero-based LSP ranges, exactly what the editor shows. */
export function formatJson(results: FileResult[]): string {
  return JSON.stringify({ version: 1, files: results, summary: counts(results) }, null, 2) + '\n';
}

const SARIF_LEVEL: Record<string, string> = { error: 'error', warning: 'warning', info: 'note', hint: 'note' };

/** SARIF 2.1.0 for code-scanning UIs (GitHub, Azure DevOps). Columns are 1-based UTF-16 units. */
export function formatSarif(results: FileResult[], toolVersion: string): string {
  const rules = (Object.keys(CODES) as Code[]).map((id) => ({
    id,
    name: CODES[id].title.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : '')),
    shortDescription: { text: CODES[id].title },
    defaultConfiguration: { level: SARIF_LEVEL[CODES[id].severity] },
  }));
  const ruleIndex = new Map(rules.map((r, i) => [r.id, i]));
  const sarif = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'mlpipeline', version: toolVersion, informationUri: 'https://github.com/mlpipeline/mlpipeline', rules } },
        columnKind: 'utf16CodeUnits',
        results: results.flatMap((r) =>
          r.problems.map((p) => ({
            ruleId: p.code,
            ruleIndex: ruleIndex.get(p.code),
            level: SARIF_LEVEL[p.severity],
            message: { text: p.message },
            locations: [
              {
                physicalLocation: {
                  artifactLocation: { uri: r.file.split('\\').join('/') },
                  region: { startLine: p.range.start.line + 1, startColumn: p.range.start.character + 1, endLine: p.range.end.line + 1, endColumn: p.range.end.character + 1 },
                },
              },
            ],
          })),
        ),
      },
    ],
  };
  return JSON.stringify(sarif, null, 2) + '\n';
}
