/**
 * The Serving metrics panel's feed on the extension host: polls every deployed revision (scraping its
 * `/metrics`, or asking Prometheus), turns each poll into one sample (p50/p95/p99, rps, error rate over
 * the interval since the previous poll) and keeps the samples in a fixed-size ring buffer per
 * deployment and revision, so memory stays bounded however long the panel stays open. No `vscode`.
 */
import type { ServingPoint, ServingSeries, VersionRole } from '../../../webviews/src/protocol/serving';
import type { LocalDeploymentState } from './serving/local-state';
import { scrapeMetrics, summarize, type Scrape, type ServingSummary } from './serving/metrics';
import { summarizeFromPrometheus } from './serving/prometheus';

/** A fixed-capacity FIFO: pushing into a full buffer drops the oldest item. O(1) push, no reallocation. */
export class RingBuffer<T> {
  private readonly items: (T | undefined)[];
  private start = 0;
  private count = 0;
  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('A ring buffer needs a capacity of at least 1.');
    this.items = new Array<T | undefined>(capacity);
  }
  get size(): number {
    return this.count;
  }
  push(item: T): void {
    const end = (this.start + this.count) % this.capacity;
    this.items[end] = item;
    if (this.count < this.capacity) this.count++;
    else this.start = (this.start + 1) % this.capacity;
  }
  /** Oldest first. */
  toArray(): T[] {
    const out: T[] = new Array(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.items[(this.start + i) % this.capacity] as T;
    return out;
  }
  last(): T | undefined {
    return this.count ? this.items[(this.start + this.count - 1) % this.capacity] : undefined;
  }
  clear(): void {
    this.items.fill(undefined);
    this.start = 0;
    this.count = 0;
  }
}

/** Where one revision's numbers come from. */
export interface ServingSource {
  deployment: string;
  revision: string;
  role: VersionRole;
  /** `http://127.0.0.1:8080/metrics`: scraped directly. */
  scrapeUrl?: string;
  /** A Prometheus server and the labels that select this revision's series. */
  prometheus?: { base: string; labels: Record<string, string> };
}

/** How a source is read; the real ones use the serving module's scraper and Prometheus client. Tests may pass others. */
export interface ServingReaders {
  scrape(url: string): Promise<Scrape>;
  prometheus(base: string, labels: Record<string, string>, windowMs: number): Promise<ServingSummary>;
}

export const DEFAULT_READERS: ServingReaders = {
  scrape: (url) => scrapeMetrics(url, { timeoutMs: 3000 }),
  prometheus: (base, labels, windowMs) => summarizeFromPrometheus(base, labels, windowMs),
};

export interface ServingFeedOptions {
  /** Lists the revisions to read now (deployments come and go while the panel is open). */
  sources: () => Promise<ServingSource[]> | ServingSource[];
  intervalMs?: number;
  /** Samples kept per revision. Default: one hour at the interval, at most 36,000. */
  capacity?: number;
  /** Most revisions tracked at once; the least recently seen are forgotten first. */
  maxSeries?: number;
  readers?: ServingReaders;
  now?: () => number;
  /** Called after each poll with the new points (one per revision that answered). */
  onSamples?: (series: ServingSeries[]) => void;
  onError?: (source: ServingSource, message: string) => void;
}

interface Track {
  source: ServingSource;
  buffer: RingBuffer<ServingPoint>;
  previous?: Scrape;
  lastSeen: number;
  lastError?: string;
}

const finite = (v: number, scale = 1): number | null => (Number.isFinite(v) ? v * scale : null);

/** One summary as a point: latencies in ms. */
export function toPoint(t: number, s: ServingSummary): ServingPoint {
  return [t, finite(s.p50, 1000), finite(s.p95, 1000), finite(s.p99, 1000), finite(s.rps), finite(s.errorRate)];
}

export class ServingFeed {
  readonly intervalMs: number;
  readonly capacity: number;
  readonly maxSeries: number;
  private readonly tracks = new Map<string, Track>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private polling: Promise<void> | undefined;
  private readonly readers: ServingReaders;
  private readonly now: () => number;

  constructor(private readonly options: ServingFeedOptions) {
    this.intervalMs = Math.max(50, options.intervalMs ?? 2000);
    this.capacity = Math.max(2, Math.min(36_000, options.capacity ?? Math.ceil(3_600_000 / this.intervalMs)));
    this.maxSeries = options.maxSeries ?? 64;
    this.readers = options.readers ?? DEFAULT_READERS;
    this.now = options.now ?? Date.now;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.timer) return;
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    // The feed never keeps a process alive by itself (CLI, tests).
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round over every source; overlapping rounds are skipped (a slow server must not pile up requests). */
  poll(): Promise<void> {
    this.polling ??= this.pollNow().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async pollNow(): Promise<void> {
    let sources: ServingSource[];
    try {
      sources = await this.options.sources();
    } catch (e) {
      this.options.onError?.({ deployment: '*', revision: '*', role: 'stable' }, `cannot list deployments: ${(e as Error).message}`);
      return;
    }
    const fresh: ServingSeries[] = [];
    await Promise.all(
      sources.map(async (source) => {
        const k = keyOf(source);
        let track = this.tracks.get(k);
        if (!track) {
          track = { source, buffer: new RingBuffer<ServingPoint>(this.capacity), lastSeen: this.now() };
          this.tracks.set(k, track);
        }
        track.source = source;
        track.lastSeen = this.now();
        try {
          const point = await this.read(track);
          if (point) {
            track.buffer.push(point);
            track.lastError = undefined;
            fresh.push({ deployment: source.deployment, revision: source.revision, role: source.role, points: [point] });
          }
        } catch (e) {
          const message = (e as Error).message;
          // Said once per outage, not on every poll.
          if (track.lastError !== message) this.options.onError?.(source, message);
          track.lastError = message;
          track.previous = undefined;
        }
      }),
    );
    this.evict();
    if (fresh.length) this.options.onSamples?.(fresh);
  }

  private async read(track: Track): Promise<ServingPoint | undefined> {
    const { source } = track;
    if (source.scrapeUrl) {
      const scrape = await this.readers.scrape(source.scrapeUrl);
      const prev = track.previous;
      track.previous = scrape;
      // The first scrape only sets the baseline: rates need two.
      if (!prev) return undefined;
      return toPoint(scrape.at, summarize(scrape, prev));
    }
    if (source.prometheus) {
      const window = Math.max(this.intervalMs * 2, 15_000);
      return toPoint(this.now(), await this.readers.prometheus(source.prometheus.base, source.prometheus.labels, window));
    }
    return undefined;
  }

  private evict(): void {
    if (this.tracks.size <= this.maxSeries) return;
    const byAge = [...this.tracks.entries()].sort((a, b) => a[1].lastSeen - b[1].lastSeen);
    for (const [k] of byAge.slice(0, this.tracks.size - this.maxSeries)) this.tracks.delete(k);
  }

  /** Everything held, oldest point first. */
  snapshot(): ServingSeries[] {
    return [...this.tracks.values()].map((t) => ({ deployment: t.source.deployment, revision: t.source.revision, role: t.source.role, points: t.buffer.toArray() }));
  }

  /** Points held in all buffers together (bounded by capacity x maxSeries). */
  get pointCount(): number {
    let n = 0;
    for (const t of this.tracks.values()) n += t.buffer.size;
    return n;
  }
}

function keyOf(s: ServingSource): string {
  return `${s.deployment}\n${s.revision}`;
}

/**
 * Sources for deployments running on this machine, from their supervisors' state files: each live
 * revision's own port and the spec's `runtime.metrics` path. The first revision is stable, others canary.
 */
export function sourcesFromLocalStates(states: readonly LocalDeploymentState[], prometheusByDeployment: Record<string, string> = {}): ServingSource[] {
  const out: ServingSource[] = [];
  for (const s of states) {
    if (s.phase === 'stopped') continue;
    s.revisions.forEach((r, i) => {
      if (r.phase === 'stopped' || r.phase === 'failed') return;
      const role: VersionRole = i === 0 ? 'stable' : 'canary';
      const prom = prometheusByDeployment[s.name];
      if (prom) out.push({ deployment: s.name, revision: r.revision, role, prometheus: { base: prom, labels: { deployment: s.name, revision: r.revision } } });
      else {
        const path = r.deployment?.runtime?.metrics || '/metrics';
        out.push({ deployment: s.name, revision: r.revision, role, scrapeUrl: `http://127.0.0.1:${r.port}${path.startsWith('/') ? path : `/${path}`}` });
      }
    });
  }
  return out;
}
