/**
 * A bounded open-loop load generator for trying a deployment: requests start at a fixed rate whatever
 * the server's speed (so slowness shows as latency, not as a lower rate), with at most `maxInFlight`
 * outstanding; a request that cannot start because of that cap is counted as `dropped`. Loopback only.
 */
import * as http from 'node:http';
import { quantileSorted } from './drift';

export interface LoadOptions {
  url: string;
  rps: number;
  durationMs: number;
  /** The body of the i-th request (JSON text); GET when absent. */
  body?: (i: number) => string;
  maxInFlight?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called about once a second with the running totals. */
  onProgress?(r: LoadReport): void;
}

export interface LoadReport {
  sent: number;
  ok: number;
  /** Answers with status >= 400, by status. */
  statuses: Record<string, number>;
  failed: number;
  dropped: number;
  /** Completed requests per second over the elapsed time. */
  achievedRps: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  elapsedMs: number;
  /** The body of the first answer with status >= 400 (trimmed), so the user sees why requests fail. */
  firstError?: string;
}

export const LOAD_LIMITS = { maxRps: 2000, maxDurationMs: 10 * 60_000 };

export function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host)) throw new Error(`the load generator only targets this machine (127.0.0.1, localhost, ::1), not ${host}`);
}

export async function runLoad(o: LoadOptions): Promise<LoadReport> {
  assertLoopback(o.url);
  if (!(o.rps > 0 && o.rps <= LOAD_LIMITS.maxRps)) throw new Error(`--rps must be between 1 and ${LOAD_LIMITS.maxRps}`);
  if (!(o.durationMs > 0 && o.durationMs <= LOAD_LIMITS.maxDurationMs)) throw new Error(`--duration must be at most ${LOAD_LIMITS.maxDurationMs / 60_000} min`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.maxInFlight ?? 256 });
  const target = new URL(o.url);
  const latencies: number[] = [];
  const report: LoadReport = { sent: 0, ok: 0, statuses: {}, failed: 0, dropped: 0, achievedRps: 0, latencyMs: { p50: NaN, p95: NaN, p99: NaN, max: NaN }, elapsedMs: 0 };
  let inFlight = 0;
  const start = performance.now();
  const total = Math.round((o.rps * o.durationMs) / 1000);
  const pending: Promise<void>[] = [];
  let lastProgress = start;
  const finishReport = (): LoadReport => {
    report.elapsedMs = performance.now() - start;
    const sorted = [...latencies].sort((a, b) => a - b);
    report.latencyMs = { p50: quantileSorted(sorted, 0.5), p95: quantileSorted(sorted, 0.95), p99: quantileSorted(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN };
    report.achievedRps = ((report.ok + report.failed + Object.values(report.statuses).reduce((a, b) => a + b, 0)) * 1000) / report.elapsedMs;
    return report;
  };
  const one = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const body = o.body?.(i);
      const t0 = performance.now();
      inFlight++;
      report.sent++;
      const req = http.request(
        { host: target.hostname.replace(/^\[|\]$/g, ''), port: target.port || 80, path: target.pathname + target.search, method: body === undefined ? 'GET' : 'POST', agent, timeout: o.timeoutMs ?? 10_000, headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          const s0 = res.statusCode ?? 0;
          if (s0 >= 400 && report.firstError === undefined) {
            report.firstError = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => {
              if (report.firstError!.length < 300) report.firstError += c;
            });
          } else res.resume();
          res.on('end', () => {
            latencies.push(performance.now() - t0);
            const s = res.statusCode ?? 0;
            if (s < 400) report.ok++;
            else report.statuses[s] = (report.statuses[s] ?? 0) + 1;
            inFlight--;
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        report.failed++;
        inFlight--;
        resolve();
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  for (let i = 0; i < total; i++) {
    if (o.signal?.aborted) break;
    const due = start + (i * 1000) / o.rps;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    if (inFlight >= (o.maxInFlight ?? 256)) {
      report.dropped++;
      continue;
    }
    pending.push(one(i));
    if (o.onProgress && performance.now() - lastProgress >= 1000) {
      lastProgress = performance.now();
      o.onProgress({ ...finishReport() });
    }
  }
  await Promise.all(pending);
  agent.destroy();
  return finishReport();
}
