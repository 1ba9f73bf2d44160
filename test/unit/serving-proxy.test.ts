import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WeightedProxy } from '../../client/src/runtime/serving/proxy';
import { PrometheusError, queryRange, summarizeFromPrometheus } from '../../client/src/runtime/serving/prometheus';
import { MetricsFormatError, scrapeMetrics } from '../../client/src/runtime/serving/metrics';
import { mulberry32 } from '../../client/src/runtime/random';

async function serve(handler: http.RequestListener): Promise<{ port: number; close(): Promise<void> }> {
  const s = http.createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    port: (s.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        s.close(() => r());
        s.closeAllConnections();
      }),
  };
}

function get(port: number, path = '/', body?: string): Promise<{ status: number; text: string; revision?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: body ? 'POST' : 'GET', agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, revision: res.headers['x-mlpipeline-revision'] as string | undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('weighted proxy (real sockets on loopback)', () => {
  const servers: { port: number; close(): Promise<void> }[] = [];
  const proxy = new WeightedProxy(mulberry32(1));
  let port: number;

  before(async () => {
    for (const name of ['stable', 'canary']) servers.push(await serve((req, res) => req.pipe(res.writeHead(200, { 'x-backend': name }))));
    port = await proxy.listen(0);
  });
  after(async () => {
    await proxy.close();
    await Promise.all(servers.map((s) => s.close()));
  });

  it('splits requests by weight and streams bodies both ways', async () => {
    proxy.setBackends([{ id: 'r1', port: servers[0].port, weight: 80 }, { id: 'r2', port: servers[1].port, weight: 20 }]);
    const seen = { r1: 0, r2: 0 } as Record<string, number>;
    for (let i = 0; i < 400; i++) {
      const r = await get(port, '/predict', `body ${i}`);
      assert.equal(r.text, `body ${i}`);
      seen[r.revision!]++;
    }
    assert.ok(seen.r2 > 50 && seen.r2 < 110, `canary got ${seen.r2} of 400 at weight 20`);
    proxy.setBackends([{ id: 'r1', port: servers[0].port, weight: 100 }, { id: 'r2', port: servers[1].port, weight: 0 }]);
    for (let i = 0; i < 20; i++) assert.equal((await get(port)).revision, 'r1');
  });

  it('a backend that is gone answers 502 naming the revision; no backend answers 503; the proxy keeps serving', async () => {
    const dead = await serve(() => undefined);
    const deadPort = dead.port;
    await dead.close();
    proxy.setBackends([{ id: 'r9', port: deadPort, weight: 100 }]);
    const r = await get(port);
    assert.equal(r.status, 502);
    assert.match(JSON.parse(r.text).error, /revision r9 did not answer: ECONNREFUSED/);
    proxy.setBackends([]);
    assert.equal((await get(port)).status, 503);
    proxy.setBackends([{ id: 'r1', port: servers[0].port, weight: 1 }]);
    assert.equal((await get(port)).status, 200);
  });
});

describe('Prometheus API client and scraping against broken servers', () => {
  it('a non-JSON answer (a login page, a proxy error) is an error that says so', async () => {
    const s = await serve((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'));
    await assert.rejects(queryRange(`http://127.0.0.1:${s.port}`, 'up', 0, 1, 1), (e: Error) => e instanceof PrometheusError && /not JSON.*is the URL the Prometheus server itself/.test(e.message));
    await s.close();
  });

  it('a query error carries Prometheus’s reason; a dead port says it cannot reach it', async () => {
    const s = await serve((_req, res) => res.writeHead(400).end(JSON.stringify({ status: 'error', errorType: 'bad_data', error: 'parse error at char 3' })));
    await assert.rejects(queryRange(`http://127.0.0.1:${s.port}`, 'up{', 0, 1, 1), /Prometheus rejected the query \(bad_data\): parse error at char 3/);
    const port = s.port;
    await s.close();
    await assert.rejects(summarizeFromPrometheus(`http://127.0.0.1:${port}`, { deployment: 'x' }, 5000), /cannot reach Prometheus at http:\/\/127\.0\.0\.1:[0-9]+: .*ECONNREFUSED/);
  });

  it('scrapeMetrics: HTTP errors, garbage and a hung server are errors, bounded in time', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/500') res.writeHead(500).end('boom');
      else if (req.url === '/garbage') res.writeHead(200).end('\x00\x01 not metrics {');
      // /hang: never answers
    });
    await assert.rejects(scrapeMetrics(`http://127.0.0.1:${s.port}/500`), /answered HTTP 500/);
    await assert.rejects(scrapeMetrics(`http://127.0.0.1:${s.port}/garbage`), MetricsFormatError);
    const t0 = Date.now();
    await assert.rejects(scrapeMetrics(`http://127.0.0.1:${s.port}/hang`, { timeoutMs: 300 }), MetricsFormatError);
    assert.ok(Date.now() - t0 < 3000);
    await s.close();
  });
});
