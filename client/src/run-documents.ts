import * as vscode from 'vscode';
import type { RunRecord } from './runtime/records';
import { comparisonRows, runDetails } from './runtime/run-report';
import { openStore } from './views/runs';

/** Read-only documents about recorded runs: details (`mlpipeline show`), logs, and a comparison table. */
export const RUN_SCHEME = 'mlpipeline-run';

export type RunDocument = { view: 'show'; storeRoot: string; runId: string } | { view: 'logs'; storeRoot: string; runId: string; step?: string } | { view: 'compare'; runs: { storeRoot: string; runId: string }[] };

export function runDocumentUri(d: RunDocument): vscode.Uri {
  const name = d.view === 'compare' ? `compare ${d.runs.map((r) => r.runId).join(' ')}.md` : d.view === 'logs' ? `${d.runId}${d.step ? ` ${d.step}` : ''}.log` : `run ${d.runId}.txt`;
  return vscode.Uri.from({ scheme: RUN_SCHEME, path: `/${name}`, query: JSON.stringify(d) });
}

export class RunDocumentProvider implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.emitter.event;

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    let d: RunDocument;
    try {
      d = JSON.parse(uri.query) as RunDocument;
    } catch {
      return 'Not a run document.';
    }
    if (d.view === 'compare') {
      const records = await Promise.all(d.runs.map(async (r) => (await openStore(r.storeRoot)).get(r.runId)));
      const found = records.filter((r): r is RunRecord => !!r);
      if (found.length < 2) return 'These runs could not be read (deleted?).';
      return compareTable(found);
    }
    const store = await openStore(d.storeRoot);
    const record = await store.get(d.runId);
    if (!record) return `Run ${d.runId} is not in ${d.storeRoot} (deleted?).`;
    if (d.view === 'logs') {
      const { readFile } = await import('node:fs/promises');
      const steps = d.step ? [d.step] : Object.keys(record.steps);
      const parts: string[] = [];
      for (const s of steps) {
        const text = await readFile(store.logPath(record.id, s), 'utf8').catch(() => '');
        parts.push(`==== ${s} (${record.steps[s]?.status ?? '?'}) ====\n${text || '(no output)\n'}`);
      }
      return parts.join('\n');
    }
    return showText(record);
  }

  /** Documents of runs that changed (a running run's record) are re-read. */
  changed(uri: vscode.Uri): void {
    this.emitter.fire(uri);
  }

  dispose(): void {
    this.emitter.dispose();
  }
}

/** What `mlpipeline show` prints, without colours. */
export function showText(r: RunRecord): string {
  return runDetails(r);
}

/** Params, metrics and output hashes side by side (Markdown table); rows that differ are marked. */
export function compareTable(records: RunRecord[]): string {
  const rows = comparisonRows(records);
  const cell = (s: string): string => s.replace(/\|/g, '\\|');
  const lines = [`# Compare ${records.length} runs`, '', `| | ${records.map((r) => cell(r.label ? `${r.id} (${r.label})` : r.id)).join(' | ')} |`, `|---|${records.map(() => '---').join('|')}|`];
  for (const row of rows) {
    lines.push(`| ${row.differs ? `**${row.key}** ≠` : row.key} | ${row.values.map(cell).join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}
