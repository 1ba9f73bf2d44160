/**
 * The table's model: columns, filter -> sort -> group, "only columns that differ", baseline deltas.
 * Pure (no DOM), so it is fast to reason about and measured as a whole by the bench.
 */
import type { ExpRun } from '../protocol/experiments';
import { columnValue, type Predicate } from './filter';

export type Aggregate = 'mean' | 'max' | 'min' | 'last';
export type ColumnKind = 'fixed' | 'param' | 'metric';
export interface Column {
  key: string;
  /** Header text. */
  title: string;
  kind: ColumnKind;
  /** Every present value is a number (deltas, aggregates, charts). */
  numeric: boolean;
}

export const FIXED_COLUMNS: Column[] = [
  { key: 'label', title: 'Run', kind: 'fixed', numeric: false },
  { key: 'status', title: 'Status', kind: 'fixed', numeric: false },
  { key: 'startedAt', title: 'Started', kind: 'fixed', numeric: false },
];

export type Cell = string | number | boolean | null | undefined;

export type Row =
  | { kind: 'run'; run: ExpRun; depth: 0 | 1 }
  | { kind: 'group'; key: string; value: Cell; runs: ExpRun[]; agg: Map<string, Cell>; expanded: boolean };

export interface ViewOptions {
  predicate: Predicate;
  sort?: { key: string; dir: 1 | -1 };
  groupBy?: string;
  aggregate: Aggregate;
  expanded: ReadonlySet<string>;
  onlyDiffering: boolean;
}

export interface View {
  rows: Row[];
  columns: Column[];
  /** Runs that passed the filter (ungrouped), in display order. */
  runs: ExpRun[];
  hiddenColumns: number;
}

/** Every param and metric column the runs have, params first, each sorted by name. */
export function collectColumns(runs: readonly ExpRun[]): Column[] {
  const params = new Map<string, boolean>();
  const metrics = new Set<string>();
  for (const r of runs) {
    for (const k in r.params) {
      const isNum = typeof r.params[k] === 'number';
      const prev = params.get(k);
      if (prev === undefined) params.set(k, isNum);
      else if (prev && !isNum) params.set(k, false);
    }
    for (const k in r.metrics) metrics.add(k);
  }
  const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return [
    ...[...params.keys()].sort(byName).map((k): Column => ({ key: `params.${k}`, title: k, kind: 'param', numeric: params.get(k)! })),
    ...[...metrics].sort(byName).map((k): Column => ({ key: `metrics.${k}`, title: k, kind: 'metric', numeric: true })),
  ];
}

/** Sort values: numbers before strings, missing values last in both directions. */
function compareCells(a: Cell, b: Cell): number {
  const am = a === undefined || a === null;
  const bm = b === undefined || b === null;
  if (am || bm) return am && bm ? 0 : am ? 1 : -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  const s = String(a);
  const t = String(b);
  return s < t ? -1 : s > t ? 1 : 0;
}

/** Stable sort of runs by one column (values read once). */
export function sortRuns(runs: ExpRun[], key: string, dir: 1 | -1): ExpRun[] {
  const values = runs.map((r) => columnValue(r, key));
  const idx = runs.map((_, i) => i);
  idx.sort((i, j) => {
    const a = values[i];
    const b = values[j];
    const missing = (a === undefined || a === null ? 1 : 0) - (b === undefined || b === null ? 1 : 0);
    if (missing) return missing; // missing stays last whatever the direction
    return dir * compareCells(a, b) || i - j;
  });
  return idx.map((i) => runs[i]);
}

export function aggregate(values: Cell[], how: Aggregate): Cell {
  const nums = values.filter((v): v is number => typeof v === 'number');
  if (nums.length === 0) {
    const present = values.filter((v) => v !== undefined && v !== null);
    if (!present.length) return undefined;
    return present.every((v) => v === present[0]) ? present[0] : `${new Set(present.map(String)).size} values`;
  }
  switch (how) {
    case 'mean':
      return nums.reduce((s, v) => s + v, 0) / nums.length;
    case 'max':
      return Math.max(...nums);
    case 'min':
      return Math.min(...nums);
    case 'last':
      return nums[0];
  }
}

/** Whether a column's value differs between any two of the runs (a missing value differs from a present one). */
export function differs(runs: readonly ExpRun[], key: string): boolean {
  if (runs.length < 2) return false;
  const first = columnValue(runs[0], key);
  for (let i = 1; i < runs.length; i++) if (columnValue(runs[i], key) !== first) return true;
  return false;
}

export function computeView(all: readonly ExpRun[], columns: readonly Column[], o: ViewOptions): View {
  let runs = all.filter(o.predicate);
  if (o.sort) runs = sortRuns(runs, o.sort.key, o.sort.dir);
  let cols = [...columns];
  let hiddenColumns = 0;
  if (o.onlyDiffering && runs.length > 1) {
    cols = cols.filter((c) => differs(runs, c.key) || c.key === o.groupBy);
    hiddenColumns = columns.length - cols.length;
  }
  const rows: Row[] = [];
  if (!o.groupBy) {
    for (const run of runs) rows.push({ kind: 'run', run, depth: 0 });
    return { rows, columns: cols, runs, hiddenColumns };
  }
  const groups = new Map<string, { value: Cell; runs: ExpRun[] }>();
  for (const run of runs) {
    const value = columnValue(run, o.groupBy);
    const k = value === undefined ? '\u0000missing' : `${typeof value}:${String(value)}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { value, runs: [] }));
    g.runs.push(run);
  }
  let list = [...groups.entries()].map(([key, g]) => {
    // "last" is the newest run of the group, whatever the display order.
    const byTime = o.aggregate === 'last' ? [...g.runs].sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0)) : g.runs;
    const agg = new Map<string, Cell>();
    for (const c of cols) agg.set(c.key, c.key === o.groupBy ? g.value : aggregate(byTime.map((r) => columnValue(r, c.key)), o.aggregate));
    return { kind: 'group' as const, key, value: g.value, runs: g.runs, agg, expanded: o.expanded.has(key) };
  });
  if (o.sort) {
    const { key, dir } = o.sort;
    list = list.map((g, i) => ({ g, i })).sort((a, b) => dir * compareCells(a.g.agg.get(key) ?? (key === 'label' ? String(a.g.value) : undefined), b.g.agg.get(key) ?? (key === 'label' ? String(b.g.value) : undefined)) || a.i - b.i).map((x) => x.g);
  } else list.sort((a, b) => compareCells(a.value, b.value));
  for (const g of list) {
    rows.push(g);
    if (g.expanded) for (const run of g.runs) rows.push({ kind: 'run', run, depth: 1 });
  }
  return { rows, columns: cols, runs, hiddenColumns };
}

/** `value - baseline` for numeric cells of a run, undefined otherwise. */
export function delta(value: Cell, base: Cell): number | undefined {
  return typeof value === 'number' && typeof base === 'number' ? value - base : undefined;
}

export function formatCell(v: Cell): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
  }
  return String(v);
}

export function formatDelta(d: number): string {
  // Two significant digits: a delta is read as a size, and it must fit beside the value.
  const a = Math.abs(d);
  const s = Number.isInteger(a) ? String(a) : a !== 0 && (a < 1e-3 || a >= 1e6) ? a.toExponential(1) : String(Number(a.toPrecision(2)));
  return d > 0 ? `+${s}` : d < 0 ? `−${s}` : '±0';
}
