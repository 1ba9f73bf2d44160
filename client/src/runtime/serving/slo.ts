import type { ResolvedSlo } from '../../../../server/src/core/deploy-plan';
import { summarize, type Scrape, type ServingSummary } from './metrics';

export interface SloResult {
  ok: boolean;
  /** One line per exceeded limit, with the measured number and the limit. */
  breaches: string[];
  summary: ServingSummary;
  /** Too few requests in the window to judge; not a breach. */
  noData: boolean;
}

/** Checks a window's summary against the SLO's limits. Latency limits are in ms, the summary in seconds. */
export function evaluateSlo(slo: ResolvedSlo, summary: ServingSummary, minRequests = 1): SloResult {
  const breaches: string[] = [];
  const noData = !(summary.requests >= minRequests);
  if (!noData) {
    const lat = (key: 'p50' | 'p95' | 'p99', limit: number | undefined): void => {
      const v = summary[key] * 1000;
      if (limit !== undefined && Number.isFinite(v) && v > limit) breaches.push(`${key} latency ${fmtMs(v)} ms > ${limit} ms`);
    };
    lat('p50', slo.p50LatencyMs);
    lat('p95', slo.p95LatencyMs);
    lat('p99', slo.p99LatencyMs);
    if (slo.errorRate !== undefined && summary.errorRate > slo.errorRate) breaches.push(`error rate ${(summary.errorRate * 100).toFixed(2)}% > ${(slo.errorRate * 100).toFixed(2)}% (${summary.errors} of ${Math.round(summary.requests)} requests)`);
  }
  return { ok: breaches.length === 0, breaches, summary, noData };
}

function fmtMs(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

/**
 * A sliding window of direct scrapes: `add` a scrape, `summary` covers the oldest scrape still inside the
 * window to the newest, so percentiles and rates describe only the last `windowMs`.
 */
export class ScrapeWindow {
  private scrapes: Scrape[] = [];
  constructor(readonly windowMs: number) {}
  add(s: Scrape): void {
    this.scrapes.push(s);
    // Keep one scrape at or before the window start as the baseline.
    while (this.scrapes.length > 2 && this.scrapes[1].at <= s.at - this.windowMs) this.scrapes.shift();
  }
  summary(): ServingSummary | undefined {
    if (this.scrapes.length < 2) return undefined;
    return summarize(this.scrapes[this.scrapes.length - 1], this.scrapes[0]);
  }
  reset(): void {
    this.scrapes = [];
  }
}
