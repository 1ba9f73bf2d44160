import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { RingBuffer, ServingFeed, sourcesFromLocalStates, toPoint, type ServingSource } from '../../client/src/runtime/serving-feed';
import type { LocalDeploymentState } from '../../client/src/runtime/serving/local-state';
import { isHostToServing } from '../../webviews/src/protocol/serving';

/** A model server's /metrics: a latency histogram whose counters grow by `perScrape` requests each time it is read. */
function metricsServer(perScrape: { fast: number; slow: number; errors: number }): { server: Server; scrapes: () => number; fail: (on: boolean) => void } {
  let n = 0;
  let failing = false;
  const server = createServer((req, res) => {
    if (failing) {
      res.writeHead(500).end('boom');
      return;
    }
    n++;
    const fast = perScrape.fast * n;
    const slow = perScrape.slow * n;
    const errors = perScrape.errors * n;
    const lines = [
      '# TYPE http_request_duration_seconds histogram',
      `http_request_duration_seconds_bucket{path="/predict",status="200",le="0.01"} ${fast}`,
      `http_request_duration_seconds_bucket{path="/predict",status="200",le="0.1"} ${fast + slow}`,
      `http_request_duration_seconds_bucket{path="/predict",status="200",le="+Inf"} ${fast + slow}`,
      `http_request_duration_seconds_count{path="/predict",status="200"} ${fast + slow}`,
      `http_request_duration_seconds_bucket{path="/predict",status="500",le="0.01"} ${errors}`,
      `http_request_duration_seconds_bucket{path="/predict",status="500",le="0.1"} ${errors}`,
      `http_request_duration_seconds_bucket{path="/predict",status="500",le="+Inf"} ${errors}`,
      `http_request_duration_seconds_count{path="/predict",status="500"} ${errors}`,
    ];
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(lines.join('\n') + '\n');
  });
  return { server, scrapes: () => n, fail: (on) => (failing = on) };
}

describe('ring buffer', () => {
  it('keeps the newest items, oldest first, in fixed memory', () => {
    const r = new RingBuffer<number>(3);
    for (let i = 1; i <= 7; i++) r.push(i);
    assert.deepEqual(r.toArray(), [5, 6, 7]);
    assert.equal(r.size, 3);
    assert.equal(r.last(), 7);
    r.clear();
    assert.deepEqual(r.toArray(), []);
    assert.throws(() => new RingBuffer(0), /capacity/);
  });
});

describe('serving feed', () => {
  let srv: ReturnType<typeof metricsServer>;
  let url: string;
  before(async () => {
    srv = metricsServer({ fast: 90, slow: 10, errors: 5 });
    await new Promise<void>((r) => srv.server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(srv.server.address() as AddressInfo).port}/metrics`;
  });
  after(() => new Promise<void>((r) => srv.server.close(() => r())));

  it('scrapes a real /metrics endpoint and turns each interval into p50/p95/p99, rps and error rate', async () => {
    const got: unknown[] = [];
    const feed = new ServingFeed({ sources: () => [{ deployment: 'churn-api', revision: 'r1', role: 'stable', scrapeUrl: url }], onSamples: (s) => got.push(...s) });
    await feed.poll(); // baseline
    assert.equal(feed.pointCount, 0, 'one scrape cannot give a rate');
    await new Promise((r) => setTimeout(r, 120));
    await feed.poll();
    const [series] = feed.snapshot();
    assert.equal(series.points.length, 1);
    const [t, p50, p95, p99, rps, err] = series.points[0];
    assert.ok(t > Date.now() - 10_000);
    // 105 requests in the interval: 95 under 10 ms (90 ok + 5 errors), 10 between 10 and 100 ms.
    assert.ok(p50! > 0 && p50! <= 10, `p50 ${p50}`);
    assert.ok(p95! > 10 && p95! <= 100, `p95 ${p95}`);
    assert.ok(p99! >= p95!);
    assert.ok(Math.abs(err! - 5 / 105) < 1e-9, `error rate ${err}`);
    assert.ok(rps! > 0 && rps! < 105 / 0.1, `rps ${rps}`);
    assert.equal(got.length, 1);
    assert.ok(isHostToServing({ type: 'samples', series: feed.snapshot(), replace: true }), 'what the feed holds is a valid message');
  });

  it('says once when a server fails, then recovers without a bogus rate across the gap', async () => {
    const errors: string[] = [];
    const feed = new ServingFeed({ sources: () => [{ deployment: 'd', revision: 'r1', role: 'stable', scrapeUrl: url }], onError: (_s, m) => errors.push(m) });
    await feed.poll();
    srv.fail(true);
    await feed.poll();
    await feed.poll();
    assert.equal(errors.length, 1);
    assert.match(errors[0], /HTTP 500/);
    srv.fail(false);
    await feed.poll(); // new baseline after the outage
    assert.equal(feed.pointCount, 0);
    await feed.poll();
    assert.equal(feed.pointCount, 1);
  });

  it('says so when a server is down', async () => {
    const errors: string[] = [];
    const feed = new ServingFeed({ sources: () => [{ deployment: 'd', revision: 'r1', role: 'stable', scrapeUrl: 'http://127.0.0.1:9/metrics' }], onError: (_s, m) => errors.push(m) });
    await feed.poll();
    assert.match(errors[0], /cannot scrape .*Is the server running\?/);
  });

  it('stays bounded over hours: capacity per revision, and a cap on revisions', async () => {
    let clock = 0;
    let rev = 0;
    const feed = new ServingFeed({
      intervalMs: 100,
      capacity: 50,
      maxSeries: 4,
      now: () => clock,
      // Each poll a new revision appears (a deploy every poll, the worst case) besides a long-lived one.
      sources: () => [{ deployment: 'a', revision: 'stable', role: 'stable', prometheus: { base: 'x', labels: {} } }, { deployment: 'a', revision: `r${rev++}`, role: 'canary', prometheus: { base: 'x', labels: {} } }],
      readers: {
        scrape: () => Promise.reject(new Error('unused')),
        prometheus: async () => ({ p50: 0.01, p95: 0.02, p99: 0.03, rps: 10, errorRate: 0, requests: 100, errors: 0 }),
      },
    });
    // Two hours at 10 polls a second.
    for (let i = 0; i < 72_000 / 10; i++) {
      clock += 1000;
      await feed.poll();
    }
    const snap = feed.snapshot();
    assert.ok(snap.length <= 4, `${snap.length} series`);
    assert.ok(feed.pointCount <= 4 * 50);
    const stable = snap.find((s) => s.revision === 'stable')!;
    assert.equal(stable.points.length, 50);
    assert.deepEqual(stable.points[49], [clock, 10, 20, 30, 10, 0]);
  });

  it('does not pile up requests behind a slow server', async () => {
    let calls = 0;
    const feed = new ServingFeed({
      sources: () => [{ deployment: 'a', revision: 'r', role: 'stable', prometheus: { base: 'x', labels: {} } }],
      readers: { scrape: () => Promise.reject(new Error('unused')), prometheus: async () => (calls++, await new Promise((r) => setTimeout(r, 50)), { p50: NaN, p95: NaN, p99: NaN, rps: 0, errorRate: NaN, requests: 0, errors: 0 }) },
    });
    await Promise.all([feed.poll(), feed.poll(), feed.poll()]);
    assert.equal(calls, 1);
    assert.deepEqual(feed.snapshot()[0].points[0].slice(1), [null, null, null, 0, null]);
  });

  it('finds local revisions and their metrics paths in supervisor state', () => {
    const rev = (revision: string, port: number, phase = 'ready') => ({ revision, port, phase, weight: 50, deployment: { runtime: { metrics: '/metrics' } } });
    const states = [
      { name: 'churn-api', phase: 'rolling-out', revisions: [rev('r1', 8101), rev('r2', 8102)] },
      { name: 'gone', phase: 'stopped', revisions: [rev('r1', 8103)] },
    ] as unknown as LocalDeploymentState[];
    const s: ServingSource[] = sourcesFromLocalStates(states);
    assert.deepEqual(s, [
      { deployment: 'churn-api', revision: 'r1', role: 'stable', scrapeUrl: 'http://127.0.0.1:8101/metrics' },
      { deployment: 'churn-api', revision: 'r2', role: 'canary', scrapeUrl: 'http://127.0.0.1:8102/metrics' },
    ]);
    assert.deepEqual(sourcesFromLocalStates(states, { 'churn-api': 'http://prom:9090' })[1].prometheus, { base: 'http://prom:9090', labels: { deployment: 'churn-api', revision: 'r2' } });
  });

  it('writes NaN (no requests) as null', () => {
    assert.deepEqual(toPoint(5, { p50: NaN, p95: 0.1, p99: Infinity, rps: NaN, errorRate: 0, requests: 0, errors: 0 }), [5, null, 100, null, null, 0]);
  });
});
