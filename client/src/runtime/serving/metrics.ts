/**
 * Prometheus text exposition format (0.0.4) parsing, histogram quantiles as Prometheus computes them, and
 * a per-window summary (p50/p95/p99, rps, error rate) of a model server's HTTP metrics. Used by SLO
 * monitors that scrape `/metrics` directly and by the serving panel. No `vscode` imports.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  samples: Sample[];
  /** ms since the epoch, taken when the response arrived. */
  at: number;
}

export class MetricsFormatError extends Error {}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const MAX_BODY = 16 * 1024 * 1024;

/** Parses the text format. Comments and blank lines are skipped; a malformed line throws with its number. */
export function parsePrometheusText(text: string): Sample[] {
  const out: Sample[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const fail = (why: string): never => {
      throw new MetricsFormatError(`line ${i + 1} of the metrics is not in the Prometheus text format (${why}): ${line.slice(0, 120)}`);
    };
    const nm = NAME.exec(line);
    if (!nm) fail('no metric name');
    let pos = nm![0].length;
    const labels: Record<string, string> = {};
    if (line[pos] === '{') {
      pos++;
      for (;;) {
        while (line[pos] === ' ' || line[pos] === ',') pos++;
        if (line[pos] === '}') {
          pos++;
          break;
        }
        const ln = LABEL_NAME.exec(line.slice(pos));
        if (!ln) fail('bad label name');
        pos += ln![0].length;
        while (line[pos] === ' ') pos++;
        if (line[pos] !== '=' || line[pos + 1] !== '"') fail('expected ="');
        pos += 2;
        let value = '';
        for (;;) {
          const c = line[pos];
          if (c === undefined) fail('unterminated label value');
          if (c === '"') {
            pos++;
            break;
          }
          if (c === '\\') {
            const n = line[pos + 1];
            value += n === 'n' ? '\n' : n === '\\' ? '\\' : n === '"' ? '"' : `\\${n ?? ''}`;
            pos += 2;
          } else {
            value += c;
            pos++;
          }
        }
        labels[ln![0]] = value;
      }
    }
    const rest = line.slice(pos).trim().split(/\s+/);
    if (rest.length < 1 || rest[0] === '') fail('no value');
    const value = parseValue(rest[0]);
    if (value === undefined) fail(`bad value ${rest[0]}`);
    out.push({ name: nm![0], labels, value: value! });
  }
  return out;
}

function parseValue(s: string): number | undefined {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  const n = Number(s);
  return s !== '' && !Number.isNaN(n) ? n : undefined;
}

/** GETs `url` (bounded time and size) and parses it; errors say what was wrong with the endpoint. */
export async function scrapeMetrics(url: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Scrape> {
  const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 5000), ...(options.signal ? [options.signal] : [])]);
  let res: Response;
  try {
    res = await fetch(url, { signal, headers: { accept: 'text/plain;version=0.0.4' } });
  } catch (e) {
    throw new MetricsFormatError(`cannot scrape ${url}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}. Is the server running?`);
  }
  if (!res.ok) throw new MetricsFormatError(`scraping ${url} answered HTTP ${res.status}; check runtime.metrics in the spec.`);
  const len = Number(res.headers.get('content-length') ?? 0);
  if (len > MAX_BODY) throw new MetricsFormatError(`${url} sent ${len} bytes of metrics (limit ${MAX_BODY}).`);
  const text = await res.text();
  if (text.length > MAX_BODY) throw new MetricsFormatError(`${url} sent more than ${MAX_BODY} bytes of metrics.`);
  return { samples: parsePrometheusText(text), at: Date.now() };
}

/** Cumulative buckets (upper bound -> count), as in `_bucket{le=...}`. */
export type Buckets = { le: number; count: number }[];

/**
 * `histogram_quantile` as Prometheus computes it: linear interpolation inside the bucket the rank falls
 * in, the lowest bucket starting at 0, and the highest finite bound when the rank lands in +Inf.
 * NaN when there are no observations.
 */
export function histogramQuantile(q: number, buckets: Buckets): number {
  const b = [...buckets].sort((x, y) => x.le - y.le);
  if (b.length < 2 || b[b.length - 1].le !== Infinity) return NaN;
  const total = b[b.length - 1].count;
  if (!(total > 0)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const rank = q * total;
  let i = b.findIndex((x) => x.count >= rank);
  if (i === b.length - 1) return b[b.length - 2].le;
  if (i === 0 && b[0].le <= 0) return b[0].le;
  const lowerBound = i === 0 ? 0 : b[i - 1].le;
  const lowerCount = i === 0 ? 0 : b[i - 1].count;
  const inBucket = b[i].count - lowerCount;
  if (inBucket <= 0) return b[i].le;
  return lowerBound + (b[i].le - lowerBound) * ((rank - lowerCount) / inBucket);
}

export interface ServingSummary {
  /** Seconds. NaN when there were no requests. */
  p50: number;
  p95: number;
  p99: number;
  /** Requests per second over the interval (NaN without a previous scrape). */
  rps: number;
  /** Share of requests answered 5xx, 0..1 (NaN when there were none). */
  errorRate: number;
  requests: number;
  errors: number;
  intervalMs?: number;
}

export interface SummarizeOptions {
  histogram?: string;
  requests?: string;
  /** Paths left out: probes and scrapes would make latency look better than what clients see. */
  excludePaths?: string[];
}

/**
 * Summarizes a model server's HTTP metrics. With `previous`, over the interval between the scrapes (a
 * counter that went down means the server restarted: the current values are then the interval's);
 * without, since the server started.
 */
export function summarize(current: Scrape | Sample[], previous?: Scrape, options: SummarizeOptions = {}): ServingSummary {
  const cur = Array.isArray(current) ? { samples: current, at: NaN } : current;
  const hist = options.histogram ?? 'http_request_duration_seconds';
  const exclude = new Set(options.excludePaths ?? ['/metrics', '/healthz']);
  const pick = (s: Sample[]): { buckets: Map<number, number>; total: number; errors: number } => {
    const buckets = new Map<number, number>();
    let total = 0;
    let errors = 0;
    for (const x of s) {
      if (x.labels.path !== undefined && exclude.has(x.labels.path)) continue;
      if (x.name === `${hist}_bucket`) {
        const le = parseValue(x.labels.le ?? '');
        if (le !== undefined) buckets.set(le, (buckets.get(le) ?? 0) + x.value);
      } else if (x.name === `${hist}_count`) {
        total += x.value;
        if (/^5[0-9][0-9]$/.test(x.labels.status ?? x.labels.code ?? '')) errors += x.value;
      }
    }
    return { buckets, total, errors };
  };
  const now = pick(cur.samples);
  let delta = now;
  let intervalMs: number | undefined;
  if (previous) {
    const before = pick(previous.samples);
    intervalMs = cur.at - previous.at;
    if (now.total >= before.total) {
      const buckets = new Map<number, number>();
      for (const [le, c] of now.buckets) buckets.set(le, Math.max(0, c - (before.buckets.get(le) ?? 0)));
      delta = { buckets, total: now.total - before.total, errors: Math.max(0, now.errors - before.errors) };
    }
  }
  const b: Buckets = [...delta.buckets].map(([le, count]) => ({ le, count }));
  return {
    p50: histogramQuantile(0.5, b),
    p95: histogramQuantile(0.95, b),
    p99: histogramQuantile(0.99, b),
    rps: intervalMs && intervalMs > 0 ? (delta.total * 1000) / intervalMs : NaN,
    errorRate: delta.total > 0 ? delta.errors / delta.total : NaN,
    requests: delta.total,
    errors: delta.errors,
    intervalMs,
  };
}
