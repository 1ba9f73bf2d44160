/**
 * The table's model: columns, filter -> sort -> group, "only columns that differ", baseline deltas.
 * No DOM, so it is fast to reason about and measured as a whole by the bench. Results that do not depend
 * on every option are memoized (sort permutations per runs array, the filter's pass flags, group
 * aggregates): a sort click re-filters nothing and a filter change re-sorts nothing. Arrays of runs are
 * treated as immutable (the panel makes a new array on every change), which is what the caches key on.
 */
import type { ExpRun } from '../protocol/experiments';
import { columnReader, columnValue, type Predicate } from './filter';

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

/*
 * Sorting 10,000 runs must take a few milliseconds, so a column is sorted once per runs array into typed
 * arrays: the indices of the runs that have a value, in ascending order (stable), with each one's rank
 * (equal values share a rank), and the indices of the runs without one. A number's rank is its position
 * among the sorted numbers; other values get the rank of their distinct value (ranked by compareCells).
 * Rank and index are packed into one float64 (rank * n + index: exact while n < 94 million) and sorted
 * natively: no comparator calls (on a page this fresh their cost is high and erratic: measured 3 to 30 ms
 * for 10,000 numbers). Either direction is then one pass over that order (descending: runs of equal rank
 * in reverse order, each run kept in host order), with missing values last.
 * Arrays of runs are never mutated (a change makes a new array): the caches key on them. The panel
 * prepares the columns in idle time after the runs arrive (prepareSorts in main.ts), so a click sorts nothing.
 */
interface SortedColumn {
  /** Indices of the runs with a value, ascending, ties in host order. */
  order: Uint32Array;
  /** rank[k]: the rank of order[k]'s value (equal values, equal ranks). */
  rank: Uint32Array;
  /** Indices of the runs without a value, in host order. */
  missing: Uint32Array;
  asc?: Uint32Array;
  desc?: Uint32Array;
}
const sortedColumns = new WeakMap<readonly ExpRun[], Map<string, SortedColumn>>();

function sortColumn(runs: readonly ExpRun[], key: string): SortedColumn {
  const n = runs.length;
  const read = columnReader(key);
  const present = new Uint32Array(n);
  const missing = new Uint32Array(n);
  const nums = new Float64Array(n); // by run index
  let values: Cell[] | undefined; // by position in present, once a value is not a number
  let m = 0;
  let q = 0;
  for (let i = 0; i < n; i++) {
    const v = read(runs[i]);
    if (v === undefined || v === null) missing[q++] = i;
    else {
      if (values === undefined && typeof v === 'number') nums[i] = v;
      else {
        if (values === undefined) {
          values = new Array(n);
          for (let k = 0; k < m; k++) values[k] = nums[present[k]];
        }
        values[m] = v;
      }
      present[m++] = i;
    }
  }
  // The rank of each present value: its position among the sorted values (equal values, equal ranks).
  const byPos = new Float64Array(m);
  if (values === undefined) {
    const sorted = new Float64Array(m);
    for (let k = 0; k < m; k++) sorted[k] = nums[present[k]];
    sorted.sort();
    for (let k = 0; k < m; k++) {
      const v = nums[present[k]];
      let lo = 0;
      let hi = m;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (sorted[mid] < v) lo = mid + 1;
        else hi = mid;
      }
      byPos[k] = lo;
    }
  } else {
    // Distinct values (few for most params; every one for names and times), ranked by compareCells.
    const distinct = [...new Set(values.slice(0, m))].sort(compareCells);
    const rankOf = new Map<Cell, number>();
    let r = 0;
    for (let k = 0; k < distinct.length; k++) {
      if (k > 0 && compareCells(distinct[k - 1], distinct[k]) !== 0) r = k;
      rankOf.set(distinct[k], r);
    }
    for (let k = 0; k < m; k++) byPos[k] = rankOf.get(values[k])!;
  }
  // Sorted natively (no comparator calls): rank and index packed into one number.
  const packed = new Float64Array(m);
  for (let k = 0; k < m; k++) packed[k] = byPos[k] * n + present[k];
  packed.sort();
  const order = new Uint32Array(m);
  const rank = new Uint32Array(m);
  for (let k = 0; k < m; k++) {
    const i = packed[k] % n;
    order[k] = i;
    rank[k] = (packed[k] - i) / n;
  }
  return { order, rank, missing: missing.slice(0, q) };
}

function sortedColumn(runs: readonly ExpRun[], key: string): SortedColumn {
  let byKey = sortedColumns.get(runs);
  if (!byKey) sortedColumns.set(runs, (byKey = new Map()));
  let col = byKey.get(key);
  if (!col) byKey.set(key, (col = sortColumn(runs, key)));
  return col;
}

/** The indices of `runs` in sorted order (stable; missing values last in both directions), cached. */
export function sortPermutation(runs: readonly ExpRun[], key: string, dir: 1 | -1): Uint32Array {
  const col = sortedColumn(runs, key);
  const cached = dir === 1 ? col.asc : col.desc;
  if (cached) return cached;
  const { order, rank, missing } = col;
  const m = order.length;
  const out = new Uint32Array(m + missing.length);
  if (dir === 1) out.set(order);
  else {
    // Runs of equal rank from the last to the first, each in host order.
    let o = 0;
    let j = m;
    while (j > 0) {
      let s = j - 1;
      while (s > 0 && rank[s - 1] === rank[j - 1]) s--;
      for (let k = s; k < j; k++) out[o++] = order[k];
      j = s;
    }
  }
  out.set(missing, m);
  if (dir === 1) col.asc = out;
  else col.desc = out;
  return out;
}

/** Stable sort of runs by one column: numbers before strings, missing values last in both directions. */
export function sortRuns(runs: readonly ExpRun[], key: string, dir: 1 | -1): ExpRun[] {
  const perm = sortPermutation(runs, key, dir);
  const out: ExpRun[] = new Array(perm.length);
  for (let k = 0; k < perm.length; k++) out[k] = runs[perm[k]];
  return out;
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
  const read = columnReader(key);
  const first = read(runs[0]);
  for (let i = 1; i < runs.length; i++) if (read(runs[i]) !== first) return true;
  return false;
}

/** Which runs pass the filter, one byte per run; the last result is kept (sorting does not re-filter). */
let lastPass: { runs: readonly ExpRun[]; predicate: Predicate; pass: Uint8Array; count: number } | undefined;
function passing(all: readonly ExpRun[], predicate: Predicate): { pass: Uint8Array; count: number } {
  if (lastPass && lastPass.runs === all && lastPass.predicate === predicate) return lastPass;
  const pass = new Uint8Array(all.length);
  let count = 0;
  for (let i = 0; i < all.length; i++) if (predicate(all[i])) {
    pass[i] = 1;
    count++;
  }
  lastPass = { runs: all, predicate, pass, count };
  return lastPass;
}

/** One row object per run, reused by every view of the same runs array. */
const runRowCache = new WeakMap<readonly ExpRun[], Row[]>();
function runRows(all: readonly ExpRun[]): Row[] {
  let rows = runRowCache.get(all);
  if (!rows) runRowCache.set(all, (rows = all.map((run): Row => ({ kind: 'run', run, depth: 0 }))));
  return rows;
}

/** Group aggregates depend on the filtered runs, the grouping, the aggregate and the columns, not on the sort: the last ones are kept. */
let lastAgg: { pass: Uint8Array; groupBy: string; aggregate: Aggregate; cols: string; byGroup: Map<string, Map<string, Cell>> } | undefined;

export function computeView(all: readonly ExpRun[], columns: readonly Column[], o: ViewOptions): View {
  const { pass, count } = passing(all, o.predicate);
  const perm = o.sort ? sortPermutation(all, o.sort.key, o.sort.dir) : undefined;
  const runs: ExpRun[] = new Array(count);
  const ungrouped = !o.groupBy;
  const rows: Row[] = ungrouped ? new Array(count) : [];
  const cached = ungrouped ? runRows(all) : undefined;
  let k = 0;
  for (let p = 0; p < all.length; p++) {
    const i = perm ? perm[p] : p;
    if (!pass[i]) continue;
    runs[k] = all[i];
    if (cached) rows[k] = cached[i];
    k++;
  }
  let cols = [...columns];
  let hiddenColumns = 0;
  if (o.onlyDiffering && runs.length > 1) {
    cols = cols.filter((c) => differs(runs, c.key) || c.key === o.groupBy);
    hiddenColumns = columns.length - cols.length;
  }
  if (!o.groupBy) return { rows, columns: cols, runs, hiddenColumns };
  const groups = new Map<string, { value: Cell; runs: ExpRun[] }>();
  for (const run of runs) {
    const value = columnValue(run, o.groupBy);
    const k = value === undefined ? '\u0000missing' : `${typeof value}:${String(value)}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { value, runs: [] }));
    g.runs.push(run);
  }
  const colsKey = cols.map((c) => c.key).join('\u0000');
  if (!lastAgg || lastAgg.pass !== pass || lastAgg.groupBy !== o.groupBy || lastAgg.aggregate !== o.aggregate || lastAgg.cols !== colsKey) lastAgg = { pass, groupBy: o.groupBy, aggregate: o.aggregate, cols: colsKey, byGroup: new Map() };
  const aggs = lastAgg.byGroup;
  let list = [...groups.entries()].map(([key, g]) => {
    let agg = aggs.get(key);
    if (!agg) {
      // "last" is the newest run of the group, whatever the display order.
      const byTime = o.aggregate === 'last' ? [...g.runs].sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0)) : g.runs;
      agg = new Map<string, Cell>();
      for (const c of cols) agg.set(c.key, c.key === o.groupBy ? g.value : aggregate(byTime.map((r) => columnValue(r, c.key)), o.aggregate));
      aggs.set(key, agg);
    }
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
