import type { RunRecord } from './records';

/**
 * How a run reads as text: `mlpipeline show` and `compare` in the terminal, and the extension's
 * read-only run documents. Pure; the caller styles it (colours, escaping of user text).
 */

export interface ReportStyle {
  /** Makes user-written text safe for the medium (control characters on a terminal). */
  text(s: string): string;
  bold(s: string): string;
  status(s: string): string;
  error(s: string): string;
}

export const PLAIN: ReportStyle = { text: (s) => s, bold: (s) => s, status: (s) => s, error: (s) => s };

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function formatValue(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  return String(v);
}

/** A plain text table; columns padded to the widest cell. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

/** One run: provenance, params, a table of steps, then each step's command, inputs and outputs. */
export function runDetails(r: RunRecord, st: ReportStyle = PLAIN): string {
  const t = st.text;
  const out: string[] = [];
  out.push(`${st.bold(`Run ${r.id}`)}  ${st.status(r.status)}${r.label ? `  "${t(r.label)}"` : ''}`);
  out.push(`spec      ${t(r.spec.name)} (${t(r.spec.path)}, sha256 ${r.spec.hash.slice(0, 12)})`);
  out.push(`started   ${r.startedAt}${r.finishedAt ? `   took ${formatDuration(Date.parse(r.finishedAt) - Date.parse(r.startedAt))}` : ''}`);
  out.push(`git       ${r.git ? `${r.git.commit.slice(0, 12)}${r.git.branch ? ` (${t(r.git.branch)})` : ''}${r.git.dirty ? ' + uncommitted changes' : ''}` : 'not a git repository'}`);
  out.push(`target    ${t(r.target)}${r.sweep ? `   sweep ${t(r.sweep.name)} trial ${r.sweep.trial}` : ''}`);
  out.push(`params    ${Object.entries(r.params).map(([k, v]) => `${k}=${t(formatValue(v))}`).join('  ') || '-'}`);
  if (r.error) out.push(`error     ${t(r.error)}`);
  out.push('');
  out.push(
    textTable(
      ['step', 'status', 'time', 'exit', 'metrics'],
      Object.entries(r.steps).map(([name, s]) => [name, s.status + (s.cachedFrom ? ` (from ${s.cachedFrom})` : ''), formatDuration(s.durationMs), s.exitCode === undefined || s.exitCode === null ? '' : String(s.exitCode), Object.entries(s.metrics ?? {}).map(([k, v]) => `${k}=${formatValue(v)}`).join(' ')]),
    ).trimEnd(),
  );
  for (const [name, s] of Object.entries(r.steps)) {
    const outs = Object.entries(s.outputs).map(([k, o]) => `${k}: ${t(o.path)}${o.hash ? ` @${o.hash.slice(0, 12)}` : ''}`);
    const ins = Object.entries(s.inputs).map(([p, h]) => `${t(p)} @${h.slice(0, 12)}`);
    if (!outs.length && !ins.length && !s.error) continue;
    out.push('');
    out.push(`${st.bold(name)}  ${t(s.command)}`);
    if (ins.length) out.push(`  inputs   ${ins.join(', ')}`);
    if (outs.length) out.push(`  outputs  ${outs.join(', ')}`);
    if (s.error && s.status !== 'succeeded') out.push(`  ${st.error(t(s.error))}`);
  }
  return out.join('\n') + '\n';
}

export interface ComparisonRow {
  key: string;
  values: string[];
  differs: boolean;
}

/** Status, provenance, params, metrics and output hashes of several runs, one row per key. */
export function comparisonRows(records: RunRecord[]): ComparisonRow[] {
  const rows: ComparisonRow[] = [];
  const add = (key: string, get: (r: RunRecord) => unknown): void => {
    const values = records.map((r) => {
      const v = get(r);
      return v === undefined ? '' : formatValue(v);
    });
    rows.push({ key, values, differs: new Set(values).size > 1 });
  };
  add('status', (r) => r.status);
  add('commit', (r) => r.git?.commit.slice(0, 8));
  add('spec', (r) => r.spec.hash.slice(0, 8));
  for (const k of [...new Set(records.flatMap((r) => Object.keys(r.params)))].sort()) add(`params.${k}`, (r) => r.params[k]);
  const metricKeys = [...new Set(records.flatMap((r) => Object.entries(r.steps).flatMap(([s, st]) => Object.keys(st.metrics ?? {}).map((m) => `${s}.${m}`))))].sort();
  for (const k of metricKeys) {
    const [s, ...m] = k.split('.');
    add(`metrics.${k}`, (r) => r.steps[s]?.metrics?.[m.join('.')]);
  }
  for (const s of [...new Set(records.flatMap((r) => Object.keys(r.steps)))]) {
    for (const o of [...new Set(records.flatMap((r) => Object.keys(r.steps[s]?.outputs ?? {})))]) add(`outputs.${s}.${o}`, (r) => r.steps[s]?.outputs[o]?.hash?.slice(0, 8));
  }
  return rows;
}
