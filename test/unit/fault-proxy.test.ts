/**
 * The fault proxy (test/helpers/fault-proxy.ts) in front of a real local HTTP server and a real TLS one:
 * pass-through, canned responses, resets before and during an upload, cut streams, TLS on both sides.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';

/** An upstream that echoes method, path, Host and the body's length; `/stream` sends 10 chunks 20 ms apart. */
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.url === '/stream') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let i = 0;
    const t = setInterval(() => {
      res.write(`chunk-${i}\n`);
      if (++i === 10) {
        clearInterval(t);
        res.end();
      }
    }, 20);
    res.on('close', () => clearInterval(t));
    return;
  }
  let n = 0;
  const sum = createHash('sha256');
  req.on('data', (c: Buffer) => {
    n += c.length;
    sum.update(c);
  });
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' }).end(JSON.stringify({ method: req.method, path: req.url, host: req.headers.host, bytes: n, sha: sum.digest('hex').slice(0, 12) })));
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(url: string, opts: { method?: string; body?: Buffer; ca?: string | Buffer; host?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, { method: opts.method ?? 'GET', agent: false, ...(opts.ca ? { ca: opts.ca } : {}), headers: opts.host ? { host: opts.host } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body) {
      // Write in 64 KiB pieces so a mid-upload reset lands in the middle.
      for (let i = 0; i < opts.body.length; i += 65536) req.write(opts.body.subarray(i, i + 65536));
    }
    req.end();
  });
}

describe('fault proxy', () => {
  let upstream: http.Server;
  let proxy: FaultProxy;

  before(async () => {
    upstream = http.createServer(handler).listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    proxy = await startFaultProxy({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` });
  });
  after(async () => {
    await proxy.stop();
    upstream.closeAllConnections();
    upstream.close();
  });

  it('passes requests through unchanged, Host header included', async () => {
    const r = await request(`${proxy.url}/bucket/key?x=1`, { method: 'PUT', body: Buffer.alloc(1000, 1), host: 'signed.example:9' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-upstream'], 'yes');
    assert.deepEqual(JSON.parse(r.body), { method: 'PUT', path: '/bucket/key?x=1', host: 'signed.example:9', bytes: 1000, sha: createHash('sha256').update(Buffer.alloc(1000, 1)).digest('hex').slice(0, 12) });
    assert.deepEqual(proxy.requests.at(-1), { method: 'PUT', path: '/bucket/key?x=1', status: 200, requestBytes: 1000 });
  });

  it('answers 429 with Retry-After for `times` matching requests, then forwards again', async () => {
    const rule = proxy.inject({ method: 'GET', path: '/limited', times: 2, action: { type: 'respond', status: 429, headers: { 'retry-after': '1' }, body: 'slow down' } });
    const a = await request(`${proxy.url}/limited`);
    const b = await request(`${proxy.url}/limited/x`);
    const other = await request(`${proxy.url}/other`);
    const c = await request(`${proxy.url}/limited`);
    assert.deepEqual([a.status, b.status, other.status, c.status], [429, 429, 200, 200]);
    assert.equal(a.headers['retry-after'], '1');
    assert.equal(a.body, 'slow down');
    assert.equal(rule.applied, 2);
    proxy.clear();
  });

  it('skips the first matches and matches paths by RegExp', async () => {
    proxy.inject({ path: /partNumber=\d+/, skip: 1, times: 1, action: { type: 'respond', status: 500 } });
    const first = await request(`${proxy.url}/k?partNumber=1`, { method: 'PUT' });
    const second = await request(`${proxy.url}/k?partNumber=2`, { method: 'PUT' });
    assert.deepEqual([first.status, second.status], [200, 500]);
    proxy.clear();
  });

  it('resets the connection before any response', async () => {
    proxy.inject({ path: '/reset', times: 1, action: { type: 'reset' } });
    await assert.rejects(request(`${proxy.url}/reset`), (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET');
    assert.equal((await request(`${proxy.url}/reset`)).status, 200);
    proxy.clear();
  });

  it('resets mid-upload after the given number of request bytes', async () => {
    const rule = proxy.inject({ method: 'PUT', path: '/upload', times: 1, action: { type: 'reset', afterRequestBytes: 300_000 } });
    await assert.rejects(request(`${proxy.url}/upload`, { method: 'PUT', body: Buffer.alloc(2_000_000, 7) }), (e: NodeJS.ErrnoException) => ['ECONNRESET', 'EPIPE'].includes(e.code!));
    const entry = proxy.requests.find((r) => r.path === '/upload' && r.fault === 'reset')!;
    assert.ok(entry.requestBytes >= 300_000 && entry.requestBytes < 2_000_000, `reset after ${entry.requestBytes} bytes`);
    assert.equal(entry.status, undefined);
    assert.equal(rule.applied, 1);
    proxy.clear();
  });

  it('corrupts one byte of a request body or of a response body', async () => {
    const body = Buffer.alloc(200_000, 3);
    const flipped = Buffer.from(body);
    flipped[150_000] ^= 0xff;
    proxy.inject({ method: 'PUT', path: '/c', times: 1, action: { type: 'corrupt', target: 'request', atByte: 150_000 } });
    const r = await request(`${proxy.url}/c`, { method: 'PUT', body });
    assert.equal(JSON.parse(r.body).sha, createHash('sha256').update(flipped).digest('hex').slice(0, 12));
    assert.equal(JSON.parse(r.body).bytes, 200_000);
    const clean = (await request(`${proxy.url}/c`)).body;
    proxy.inject({ path: '/c', times: 1, action: { type: 'corrupt', target: 'response', atByte: 2 } });
    const bad = (await request(`${proxy.url}/c`)).body; // '"' ^ 0xff is not UTF-8: one U+FFFD
    assert.equal(bad, `${clean.slice(0, 2)}\ufffd${clean.slice(3)}`);
    proxy.clear();
  });

  it('cuts a streaming response after N bytes, and after N ms', async () => {
    proxy.inject({ path: '/stream', times: 1, action: { type: 'cut', afterBytes: 16 } });
    const received: string[] = [];
    const err = await new Promise<Error | undefined>((resolve) => {
      http.get(`${proxy.url}/stream`, { agent: false }, (res) => {
        res.on('data', (c: Buffer) => received.push(c.toString()));
        res.on('end', () => resolve(undefined));
        res.on('error', resolve);
        res.on('aborted', () => resolve(new Error('aborted')));
      }).on('error', resolve);
    });
    assert.ok(err, 'the stream ends with an error, not a clean end');
    assert.equal(received.join(''), 'chunk-0\nchunk-1\n');

    proxy.inject({ path: '/stream', times: 1, action: { type: 'cut', afterMs: 70 } });
    const t0 = performance.now();
    const got: string[] = [];
    await new Promise<void>((resolve) => {
      http.get(`${proxy.url}/stream`, { agent: false }, (res) => {
        res.on('data', (c: Buffer) => got.push(c.toString()));
        res.on('close', () => resolve());
      }).on('error', () => resolve());
    });
    const text = got.join('');
    assert.ok(text.startsWith('chunk-0\n') && !text.includes('chunk-9'), `cut early: ${JSON.stringify(text)}`);
    assert.ok(performance.now() - t0 < 180);
    proxy.clear();
  });
});

describe('fault proxy over TLS', () => {
  let dir: string;
  let upstream: https.Server;
  let proxy: FaultProxy;
  let ca: Buffer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlp-fault-proxy-'));
    const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=test-ca');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    ssl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.crt', '-days', '1', '-extfile', 'ext.cnf');
    ca = readFileSync(join(dir, 'ca.crt'));
    const tlsFiles = { cert: readFileSync(join(dir, 'srv.crt')), key: readFileSync(join(dir, 'srv.key')) };
    upstream = https.createServer(tlsFiles, handler).listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    proxy = await startFaultProxy({ upstream: `https://127.0.0.1:${(upstream.address() as AddressInfo).port}`, upstreamCa: ca, tls: tlsFiles });
  });
  after(async () => {
    await proxy.stop();
    upstream.closeAllConnections();
    upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves TLS, verifies the upstream with the CA, and injects faults', async () => {
    assert.match(proxy.url, /^https:/);
    const ok = await request(`${proxy.url}/apis/batch/v1/jobs`, { ca });
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).path, '/apis/batch/v1/jobs');
    proxy.inject({ method: 'POST', path: '/apis/', times: 1, action: { type: 'respond', status: 409, headers: { 'content-type': 'application/json' }, body: '{"kind":"Status","code":409}' } });
    const conflict = await request(`${proxy.url}/apis/batch/v1/jobs`, { method: 'POST', ca });
    assert.equal(conflict.status, 409);
    assert.equal(JSON.parse(conflict.body).code, 409);
  });

  it('refuses an upstream whose certificate the CA did not sign (502, says why)', async () => {
    const bad = await startFaultProxy({ upstream: `https://127.0.0.1:${(upstream.address() as AddressInfo).port}` });
    try {
      const r = await request(`${bad.url}/x`);
      assert.equal(r.status, 502);
      assert.match(r.body, /certificate/i);
    } finally {
      await bad.stop();
    }
  });
});
