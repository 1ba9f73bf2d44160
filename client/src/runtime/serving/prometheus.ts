/**
 * A small client for the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`) and the PromQL an
 * SLO monitor needs. Responses are checked for shape: a proxy's HTML page or a truncated body is an error
 * that says so, never a crash or a silent zero.
 */
import type { ServingSummary } from './metrics';

export interface RangeSeries {
  metric: Record<string, string>;
  /** [unix seconds, value] */
  values: [number, number][];
}

export class PrometheusError extends Error {}

async function call(base: string, path: string, params: Record<string, string>, timeoutMs: number): Promise<unknown> {
  const url = new URL(path, base.endsWith('/') ? base : base + '/');
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  } catch (e) {
    const cause = (e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message;
    throw new PrometheusError(`cannot reach Prometheus at ${base}: ${cause}. Check monitors.*.source.prometheus.`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new PrometheusError(`Prometheus at ${base} answered HTTP ${res.status} with something that is not JSON (${text.slice(0, 80).replace(/\s+/g, ' ')}…); is the URL the Prometheus server itself?`);
  }
  const b = body as { status?: string; error?: string; errorType?: string; data?: unknown };
  if (b.status !== 'success') throw new PrometheusError(`Prometheus rejected the query (${b.errorType ?? `HTTP ${res.status}`}): ${b.error ?? 'no reason given'}`);
  return b.data;
}

function num(v: unknown): number {
  const n = typeof v === 'string' ? (v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v)) : NaN;
  return n;
}

export async function queryRange(base: string, query: string, start: number, end: number, stepSeconds: number, timeoutMs = 10_000): Promise<RangeSeries[]> {
  const data = (await call(base, 'api/v1/query_range', { query, start: String(start), end: String(end), step: String(stepSeconds) }, timeoutMs)) as { resultType?: string; result?: unknown };
  if (data?.resultType !== 'matrix' || !Array.isArray(data.result)) throw new PrometheusError(`Prometheus returned a ${String(data?.resultType)} for a range query; expected a matrix.`);
  return data.result.map((r: { metric?: Record<string, string>; values?: [number, string][] }) => ({
    metric: r.metric ?? {},
    values: (Array.isArray(r.values) ? r.values : []).map(([t, v]) => [Number(t), num(v)] as [number, number]),
  }));
}

export async function queryInstant(base: string, query: string, time?: number, timeoutMs = 10_000): Promise<{ metric: Record<string, string>; value: number }[]> {
  const data = (await call(base, 'api/v1/query', { query, ...(time !== undefined ? { time: String(time) } : {}) }, timeoutMs)) as { resultType?: string; result?: unknown };
  if (data?.resultType === 'scalar' && Array.isArray(data.result)) return [{ metric: {}, value: num(data.result[1]) }];
  if (data?.resultType !== 'vector' || !Array.isArray(data.result)) throw new PrometheusError(`Prometheus returned a ${String(data?.resultType)}; expected a vector.`);
  return data.result.map((r: { metric?: Record<string, string>; value?: [number, string] }) => ({ metric: r.metric ?? {}, value: num(r.value?.[1]) }));
}

/** `{a="x",b="y"}` with values escaped, plus extra raw matchers. */
export function selector(labels: Record<string, string>, extra: string[] = []): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
  return `{${[...parts, ...extra].join(',')}}`;
}

function promDuration(ms: number): string {
  return `${Math.max(1, Math.round(ms / 1000))}s`;
}

/**
 * Latency quantiles, rps and error rate over `windowMs` ending at `end`, from the server's
 * `http_request_duration_seconds` histogram as Prometheus scraped it (`query_range`, last point).
 */
export async function summarizeFromPrometheus(base: string, labels: Record<string, string>, windowMs: number, options: { end?: number; histogram?: string } = {}): Promise<ServingSummary> {
  const h = options.histogram ?? 'http_request_duration_seconds';
  const sel = selector(labels, ['path!~"/metrics|/healthz"']);
  const w = promDuration(windowMs);
  const end = options.end ?? Date.now() / 1000;
  const start = end - Math.max(1, windowMs / 1000);
  const step = Math.max(1, Math.round(windowMs / 1000 / 10));
  const last = async (q: string): Promise<number> => {
    const series = await queryRange(base, q, start, end, step);
    const points = series.flatMap((s) => s.values);
    if (points.length === 0) return NaN;
    const t = Math.max(...points.map((p) => p[0]));
    return series.map((s) => s.values.find((p) => p[0] === t)?.[1]).filter((v): v is number => v !== undefined).reduce((a, b) => a + b, 0);
  };
  const q = (p: number): string => `histogram_quantile(${p}, sum by (le) (rate(${h}_bucket${sel}[${w}])))`;
  const [p50, p95, p99, rps, errs] = await Promise.all([
    last(q(0.5)),
    last(q(0.95)),
    last(q(0.99)),
    last(`sum(rate(${h}_count${sel}[${w}]))`),
    last(`sum(rate(${h}_count${selector(labels, ['path!~"/metrics|/healthz"', 'status=~"5.."'])}[${w}]))`),
  ]);
  const errorRate = rps > 0 ? (Number.isNaN(errs) ? 0 : errs) / rps : NaN;
  return { p50, p95, p99, rps, errorRate, requests: Number.isNaN(rps) ? 0 : rps * (windowMs / 1000), errors: Number.isNaN(errs) ? 0 : errs * (windowMs / 1000), intervalMs: windowMs };
}
