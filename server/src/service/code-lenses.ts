import type { CodeLens } from 'vscode-languageserver';
import type { SpecAnalysis } from '../core/validate';
import { entries, get } from '../core/yaml-nodes';

/** Commands a client can run from lenses; it declares which it has in `initializationOptions.commands`. */
export const LENS_COMMANDS = { runPipeline: 'mlpipeline.runPipeline', runStep: 'mlpipeline.runStep', openLineage: 'mlpipeline.openLineage' } as const;

/**
 * "▶ Run pipeline" on the `steps:` key and "▶ Run step" on each step, for clients that provide those
 * commands (the VS Code extension does; a plain LSP client gets none, since nothing could run them).
 * Only for a spec without errors: a run would be refused anyway.
 */
export function codeLenses(a: SpecAnalysis, uri: string, available: ReadonlySet<string>): CodeLens[] {
  const doc = a.parsed.doc;
  if (!doc || !a.model || a.problems.some((p) => p.severity === 'error')) return [];
  const steps = get(doc, doc.contents, 'steps');
  if (!steps?.keyNode.range) return [];
  const range = (r: readonly number[]) => a.parsed.lines.range([r[0], r[1]]);
  const lenses: CodeLens[] = [];
  if (available.has(LENS_COMMANDS.runPipeline)) {
    lenses.push({ range: range(steps.keyNode.range), command: { title: '▶ Run pipeline', command: LENS_COMMANDS.runPipeline, arguments: [uri] } });
  }
  if (available.has(LENS_COMMANDS.openLineage)) {
    lenses.push({ range: range(steps.keyNode.range), command: { title: 'Show lineage', command: LENS_COMMANDS.openLineage, arguments: [uri] } });
  }
  if (available.has(LENS_COMMANDS.runStep)) {
    for (const s of entries(doc, steps.value)) {
      if (s.keyNode.range) lenses.push({ range: range(s.keyNode.range), command: { title: '▶ Run step', command: LENS_COMMANDS.runStep, arguments: [uri, s.key] } });
    }
  }
  return lenses;
}
