import * as vscode from 'vscode';
import { formatMs } from './run-controller';
import type { RunRecord } from './runtime/records';
import { fmt, openStore } from './views/runs';

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
  const out: string[] = [];
  out.push(`Run ${r.id}  ${r.status}${r.label ? `  "${r.label}"` : ''}`);
  out.push(`spec      ${r.spec.name} (${r.spec.path}, sha256 ${r.spec.hash.slice(0, 12)})`);
  out.push(`started   ${r.startedAt}${r.finishedAt ? `   took ${formatMs(Date.parse(r.finishedAt) - Date.parse(r.startedAt))}` : ''}`);
  out.push(`git       ${r.git ? `${r.git.commit.slice(0, 12)}${r.git.branch ? ` (${r.git.branch})` : ''}${r.git.dirty ? ' + uncommitted changes' : ''}` : 'not a git repository'}`);
  out.push(`target    ${r.target}${r.sweep ? `   sweep ${r.sweep.name} trial ${r.sweep.trial}` : ''}`);
  out.push(`params    ${Object.entries(r.params).map(([k, v]) => `${k}=${fmt(v)}`).join('  ') || '-'}`);
  if (r.error) out.push(`error     ${r.error}`);
  out.push('');
  out.push(
    table(
      ['step', 'status', 'time', 'exit', 'metrics'],
      Object.entries(r.steps).map(([name, s]) => [name, s.status + (s.cachedFrom ? ` (from ${s.cachedFrom})` : ''), formatMs(s.durationMs), s.exitCode === undefined || s.exitCode === null ? '' : String(s.exitCode), Object.entries(s.metrics ?? {}).map(([k, v]) => `${k}=${fmt(v)}`).join(' ')]),
    ),
  );
  for (const [name, s] of Object.entries(r.steps)) {
    const outs = Object.entries(s.outputs).map(([k, o]) => `${k}: ${o.path}${o.hash ? ` @${o.hash.slice(0, 12)}` : ''}`);
    const ins = Object.entries(s.inputs).map(([p, h]) => `${p} @${h.slice(0, 12)}`);
    out.push('');
    out.push(`${name}  ${s.command}`);
    if (ins.length) out.push(`  inputs   ${ins.join(', ')}`);
    if (outs.length) out.push(`  outputs  ${outs.join(', ')}`);
    if (s.error && s.status !== 'succeeded') out.push(`  ${s.error}`);
  }
  return out.join('\n') + '\n';
}

/** Params, metrics and output hashes side by side (Markdown table); rows that differ are marked. */
export function compareTable(records: RunRecord[]): string {
  const rows: { key: string; values: string[] }[] = [];
  const add = (key: string, get: (r: RunRecord) => unknown): void => {
    rows.push({ key, values: records.map((r) => {
      const v = get(r);
      return v === undefined ? '' : fmt(v);
    }) });
  };
  add('status', (r) => r.status);
  add('started', (r) => r.startedAt);
  add('commit', (r) => r.git?.commit.slice(0, 8));
  add('spec hash', (r) => r.spec.hash.slice(0, 8));
  for (const k of [...new Set(records.flatMap((r) => Object.keys(r.params)))].sort()) add(`params.${k}`, (r) => r.params[k]);
  const metricKeys = [...new Set(records.flatMap((r) => Object.entries(r.steps).flatMap(([s, st]) => Object.keys(st.metrics ?? {}).map((m) => `${s}.${m}`))))].sort();
  for (const k of metricKeys) {
    const [s, ...m] = k.split('.');
    add(`metrics.${k}`, (r) => r.steps[s]?.metrics?.[m.join('.')]);
  }
  for (const s of [...new Set(records.flatMap((r) => Object.keys(r.steps)))]) {
    for (const o of [...new Set(records.flatMap((r) => Object.keys(r.steps[s]?.outputs ?? {})))]) add(`outputs.${s}.${o}`, (r) => r.steps[s]?.outputs[o]?.hash?.slice(0, 8));
  }
  const cell = (s: string): string => s.replace(/\|/g, '\\|');
  const lines = [`# Compare ${records.length} runs`, '', `| | ${records.map((r) => cell(r.label ? `${r.id} (${r.label})` : r.id)).join(' | ')} |`, `|---|${records.map(() => '---').join('|')}|`];
  for (const row of rows) {
    const differs = new Set(row.values).size > 1;
    lines.push(`| ${differs ? `**${row.key}** ≠` : row.key} | ${row.values.map(cell).join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
