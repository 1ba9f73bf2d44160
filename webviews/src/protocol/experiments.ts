/**
 * The Experiments panel's contract (extension host <-> webview). Runs are the run store's summaries,
 * series are the plot CSVs runs copied into the store, read by the host and sent as numbers.
 */
import { arrayOf, isBoolean, isFiniteNumber, isObject, isShortString, isString, messageGuard, oneOf, optional, recordOf, unionGuard, type Guard } from './common';

export const EXPERIMENTS_VIEW_TYPE = 'mlpipeline.experiments';

export type ExpRunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled';
export type ExpParamValue = string | number | boolean;

export interface ExpRun {
  id: string;
  label?: string;
  specName: string;
  status: ExpRunStatus;
  startedAt: string;
  finishedAt?: string;
  params: Record<string, ExpParamValue>;
  /** `step.metric` -> value. */
  metrics: Record<string, number>;
  gitCommit?: string;
  sweep?: { name: string; trial: number };
  /** Running in this window right now. */
  live?: boolean;
}

/** One numeric column of a plot CSV against its x column. */
export interface ExpSeries {
  runId: string;
  step: string;
  /** File name inside the run's series folder, e.g. `loss.csv`. */
  file: string;
  /** The column name plotted (y), e.g. `val_loss`. */
  name: string;
  /** The x column's name (`step`, `epoch`, or `row` when the file has none). */
  x: string;
  /** [x, y] pairs; y may be null for a missing value. */
  points: [number, number | null][];
}

export type HostToExperiments =
  /** All runs (replace) or changed ones (upsert), newest first. */
  | { type: 'runs'; runs: ExpRun[]; replace: boolean }
  | { type: 'removed'; ids: string[] }
  /** Series of one run (every series of it: replaces what the panel had for that run). */
  | { type: 'series'; runId: string; series: ExpSeries[]; live: boolean }
  /** Select these runs (the Runs view's Compare, or restored by the host). */
  | { type: 'select'; ids: string[] }
  | { type: 'notice'; level: 'info' | 'error'; text: string };

export type ExperimentsToHost =
  | { type: 'selection'; ids: string[] }
  /** The panel wants these runs' series (it shows charts for them); the host also pushes updates while they run. */
  | { type: 'requestSeries'; ids: string[] }
  | { type: 'openLogs'; runId: string; step?: string }
  | { type: 'openRun'; runId: string }
  /** The spec as it was at the run's git commit. */
  | { type: 'openSpec'; runId: string }
  | { type: 'refresh' };

const isId = (v: unknown): v is string => isShortString(v, 256) && v.length > 0;
const isParamValue = (v: unknown): v is ExpParamValue => isString(v) || isFiniteNumber(v) || isBoolean(v);
const isNullableNumber = (v: unknown): v is number | null => v === null || isFiniteNumber(v);

export const isExpRun: Guard<ExpRun> = (v: unknown): v is ExpRun =>
  isObject(v) &&
  isId(v.id) &&
  optional(isString)(v.label) &&
  isString(v.specName) &&
  oneOf('running', 'succeeded', 'failed', 'cancelled')(v.status) &&
  isString(v.startedAt) &&
  optional(isString)(v.finishedAt) &&
  recordOf(isParamValue)(v.params) &&
  recordOf(isFiniteNumber)(v.metrics) &&
  optional(isString)(v.gitCommit) &&
  (v.sweep === undefined || (isObject(v.sweep) && isString(v.sweep.name) && isFiniteNumber(v.sweep.trial))) &&
  optional(isBoolean)(v.live);

export const isExpSeries: Guard<ExpSeries> = (v: unknown): v is ExpSeries =>
  isObject(v) &&
  isId(v.runId) &&
  isString(v.step) &&
  isString(v.file) &&
  isString(v.name) &&
  isString(v.x) &&
  Array.isArray(v.points) &&
  v.points.every((p) => Array.isArray(p) && p.length === 2 && isFiniteNumber(p[0]) && isNullableNumber(p[1]));

export const isHostToExperiments: Guard<HostToExperiments> = unionGuard<HostToExperiments>({
  runs: messageGuard('runs', { runs: arrayOf(isExpRun), replace: isBoolean }),
  removed: messageGuard('removed', { ids: arrayOf(isId) }),
  series: messageGuard('series', { runId: isId, series: arrayOf(isExpSeries, 10_000), live: isBoolean }),
  select: messageGuard('select', { ids: arrayOf(isId) }),
  notice: messageGuard('notice', { level: oneOf('info', 'error'), text: isString }),
});

export const isExperimentsToHost: Guard<ExperimentsToHost> = unionGuard<ExperimentsToHost>({
  selection: messageGuard('selection', { ids: arrayOf(isId, 100_000) }),
  requestSeries: messageGuard('requestSeries', { ids: arrayOf(isId, 200) }),
  openLogs: messageGuard('openLogs', { runId: isId, step: optional((v: unknown): v is string => isShortString(v, 256)) }),
  openRun: messageGuard('openRun', { runId: isId }),
  openSpec: messageGuard('openSpec', { runId: isId }),
  refresh: messageGuard('refresh', {}),
});
