/**
 * The Serving metrics panel's contract (extension host <-> webview). The host scrapes each revision's
 * `/metrics` (or asks Prometheus) and sends compact samples; the webview plots a scrolling window.
 * Latencies are in milliseconds, error rates 0..1; `null` means "no requests in that interval".
 */
import { arrayOf, isBoolean, isFiniteNumber, isObject, isShortString, isString, messageGuard, oneOf, optional, unionGuard, type Guard } from './common';

export const SERVING_VIEW_TYPE = 'mlpipeline.servingMetrics';

/** [time ms since epoch, p50 ms, p95 ms, p99 ms, requests/s, error rate]. */
export type ServingPoint = [number, number | null, number | null, number | null, number | null, number | null];

export type VersionRole = 'stable' | 'canary';

export interface ServingSeries {
  deployment: string;
  revision: string;
  role: VersionRole;
  points: ServingPoint[];
}

export interface SloLines {
  p50LatencyMs?: number;
  p95LatencyMs?: number;
  p99LatencyMs?: number;
  errorRate?: number;
}

export interface ServingDeploymentInfo {
  name: string;
  /** SLO limits of the monitors that watch this deployment (the strictest of each). */
  slo: SloLines;
  /** Where the numbers come from, in words (`scraping http://127.0.0.1:8080/metrics`, `Prometheus at ...`). */
  source?: string;
}

export type HostToServing =
  | { type: 'config'; deployments: ServingDeploymentInfo[]; windowMs: number; intervalMs: number }
  /** New points (append) or everything the host holds (replace, after ready). */
  | { type: 'samples'; series: ServingSeries[]; replace: boolean }
  /** A revision could not be read this time (server down, bad /metrics): shown next to its deployment. */
  | { type: 'sourceError'; deployment: string; revision: string; message: string }
  | { type: 'notice'; level: 'info' | 'error'; text: string };

export type ServingToHost =
  | { type: 'pause'; paused: boolean }
  | { type: 'setWindow'; windowMs: number }
  | { type: 'refresh' };

const isNum = (v: unknown): v is number | null => v === null || isFiniteNumber(v);
export const isServingPoint: Guard<ServingPoint> = (v: unknown): v is ServingPoint =>
  Array.isArray(v) && v.length === 6 && isFiniteNumber(v[0]) && isNum(v[1]) && isNum(v[2]) && isNum(v[3]) && isNum(v[4]) && isNum(v[5]);

const isName = (v: unknown): v is string => isShortString(v, 256) && v.length > 0;

export const isServingSeries: Guard<ServingSeries> = (v: unknown): v is ServingSeries =>
  isObject(v) && isName(v.deployment) && isName(v.revision) && oneOf<VersionRole>('stable', 'canary')(v.role) && arrayOf(isServingPoint, 100_000)(v.points);

const isSlo: Guard<SloLines> = (v: unknown): v is SloLines =>
  isObject(v) && optional(isFiniteNumber)(v.p50LatencyMs) && optional(isFiniteNumber)(v.p95LatencyMs) && optional(isFiniteNumber)(v.p99LatencyMs) && optional(isFiniteNumber)(v.errorRate);

const isInfo: Guard<ServingDeploymentInfo> = (v: unknown): v is ServingDeploymentInfo => isObject(v) && isName(v.name) && isSlo(v.slo) && optional(isShortString)(v.source);

/** Window lengths the panel offers: 1 minute to 1 hour. */
export const isWindowMs = (v: unknown): v is number => isFiniteNumber(v) && v >= 10_000 && v <= 3_600_000;

export const isHostToServing: Guard<HostToServing> = unionGuard<HostToServing>({
  config: messageGuard('config', { deployments: arrayOf(isInfo, 1000), windowMs: isWindowMs, intervalMs: (v: unknown): v is number => isFiniteNumber(v) && v >= 50 }),
  samples: messageGuard('samples', { series: arrayOf(isServingSeries, 1000), replace: isBoolean }),
  sourceError: messageGuard('sourceError', { deployment: isName, revision: isName, message: isString }),
  notice: messageGuard('notice', { level: oneOf('info', 'error'), text: isString }),
});

export const isServingToHost: Guard<ServingToHost> = unionGuard<ServingToHost>({
  pause: messageGuard('pause', { paused: isBoolean }),
  setWindow: messageGuard('setWindow', { windowMs: isWindowMs }),
  refresh: messageGuard('refresh', {}),
});
