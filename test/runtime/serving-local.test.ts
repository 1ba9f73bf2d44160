/**
 * Local serving end to end with the real CLI bundle, the real sample pipeline and its real model server:
 * `mlpipeline run`, then deploy (gate), predict, bad requests, crash and restart with backoff, the load
 * generator, drift on logged inputs, and undeploy from another process. Loopback only, free ports.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mulberry32 } from '../../client/src/runtime/random';
import { parseCsv } from '../../client/src/runtime/serving/drift';
import { copyChurnSample, json, MLPIPELINE_BIN as BIN, runCli, type CliResult } from '../helpers/mlpipeline-cli';
import { freePort } from '../helpers/net';

const ENV = { ...process.env, NO_COLOR: '1', MLPIPELINE_RESTART_BACKOFF_MS: '300' };
const FEATURES = ['tenure_months', 'monthly_charges', 'total_charges', 'contract', 'internet_service', 'payment_method', 'support_calls', 'senior'];

function cli(cwd: string, ...args: string[]): CliResult {
  return runCli(cwd, args, ENV);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface State {
  supervisorPid: number;
  revisions: { revision: string; pgid?: number; restarts: number; phase: string; port: number }[];
}
const state = (dir: string): State => JSON.parse(readFileSync(join(dir, '.mlpipeline/deployments/churn-api/state.json'), 'utf8')) as State;

/** One raw HTTP exchange, so tests can send what fetch refuses to (no Content-Length, lying lengths). */
function raw(port: number, request: string | Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    sock.setTimeout(timeoutMs, () => sock.destroy(new Error('timeout')));
    sock.on('data', (d) => (data += d.toString('latin1')));
    sock.on('error', (e) => (data ? resolvePromise(data) : reject(e)));
    sock.on('end', () => resolvePromise(data));
    sock.write(request);
  });
}

function postJson(port: number, path: string, body: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const data = JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('local serving: the sample model deployed from a real run', { timeout: 240_000 }, () => {
  let dir: string;
  let port: number;
  let reference: Record<string, unknown>[];

  before(async () => {
    dir = copyChurnSample('mlp-serve-');
    port = await freePort();
    const spec = readFileSync(join(dir, 'mlpipeline.yaml'), 'utf8');
    assert.ok(spec.includes('--port 8080') && spec.includes('port: 8080'), 'the sample still serves on 8080');
    // The test's copy listens on a free port and adds a drift monitor on the raw table.
    const testSpec = spec.replace('--port 8080', '--port ${PORT}').replace('port: 8080', `port: ${port}`).replace(
      'alerts:',
      `  churn-api-drift:\n    deployment: churn-api\n    drift:\n      reference: \${datasets.raw}\n      method: psi\n      threshold: 0.2\n      features: [${FEATURES.join(', ')}]\n\nalerts:`,
    );
    writeFileSync(join(dir, 'mlpipeline.yaml'), testSpec);
    writeFileSync(join(dir, 'strict.mlpipeline.yaml'), testSpec.replace('gate: evaluate.auc >= 0.7', 'gate: evaluate.auc >= 0.99 && evaluate.f1 > 0.1'));
    const r = cli(dir, 'run', 'mlpipeline.yaml');
    assert.equal(r.code, 0, r.out + r.err);
    reference = parseCsv(readFileSync(join(dir, 'data/churn.csv'), 'utf8'));
  });

  after(() => {
    if (!dir) return;
    cli(dir, 'undeploy', 'churn-api');
    rmSync(dir, { recursive: true, force: true });
  });

  it('a failing gate refuses the deploy and shows the numbers', () => {
    const r = cli(dir, 'deploy', 'churn-api', 'strict.mlpipeline.yaml');
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.err, /deploy refused\. The gate refused the deploy of churn-api \(model from run \d{8}-\d{6}-[0-9a-f]{6}\):\nevaluate\.auc >= 0\.99: evaluate\.auc is 0\.[0-9]+, needs >= 0\.99/);
    assert.doesNotMatch(r.err, /f1/, 'the passing clause is not listed as a failure');
    assert.equal(existsSync(join(dir, '.mlpipeline/deployments/churn-api/state.json')), false, 'nothing was started');
    const history = readFileSync(join(dir, '.mlpipeline/deployments/churn-api/history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(history.at(-1).outcome, 'refused');
    assert.ok(history.at(-1).gate.values['evaluate.auc'] > 0.7);
  });

  it('deploys the model of the run, which answers /predict and outlives the CLI', async () => {
    const r = cli(dir, 'deploy', 'churn-api');
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /deploy churn-api r1: models\/model\.json@[0-9a-f]{12} from run \d{8}-\d{6}-[0-9a-f]{6}/);
    assert.match(r.out, /gate ✔ evaluate\.auc >= 0\.7 \(evaluate\.auc = 0\.[0-9]+\)/);
    assert.match(r.out, new RegExp(`churn-api is serving at http://127\\.0\\.0\\.1:${port}`));
    const res = await fetch(`http://127.0.0.1:${port}/predict`, { method: 'POST', body: JSON.stringify({ instances: [Object.fromEntries(FEATURES.map((f) => [f, reference[0][f]]))] }) });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { predictions: { churn_probability: number; churned: number }[] };
    assert.ok(body.predictions[0].churn_probability > 0 && body.predictions[0].churn_probability < 1);
    // Lineage: the run's output hash -> the deployment, and the run recorded that very hash.
    const rec = JSON.parse(readFileSync(join(dir, '.mlpipeline/deployments/churn-api/history.jsonl'), 'utf8').trim().split('\n').at(-1)!);
    assert.equal(rec.outcome, 'deployed');
    const run = json(cli(dir, 'show', rec.sourceRunId, '--json'));
    assert.equal(run.steps.train.outputs.model.hash, rec.model.hash);
    assert.deepEqual(rec.lineage, [{ from: `output:train.model@${rec.model.hash}`, to: 'deployment:churn-api/r1' }]);
    const list = json(cli(dir, 'deployments', '--json'));
    assert.equal(list[0].phase, 'ready');
    assert.equal(list[0].revisions[0].sourceRunId, rec.sourceRunId);
  });

  it('the server survives bad requests with 4xx answers', async () => {
    const pid = state(dir).revisions[0].pgid;
    const url = `http://127.0.0.1:${port}/predict`;
    const post = (body: string | Buffer): Promise<Response> => fetch(url, { method: 'POST', body });
    const bad = await post('{"instances": [');
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /invalid JSON/);
    assert.equal((await post('{"instances": [{"tenure_months": "x"}]}')).status, 400);
    assert.equal((await post(Buffer.from([0xff, 0xfe, 0x00]))).status, 400);
    assert.equal((await post('['.repeat(100_000))).status, 400);
    // 2 MiB: refused from its Content-Length (413) before the body is read.
    assert.equal((await post(Buffer.alloc(2 * 1024 * 1024, 0x20))).status, 413);
    assert.match(await raw(port, 'POST /predict HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 411/);
    assert.match(await raw(port, 'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n'), /^HTTP\/1\.1 413/);
    assert.match(await raw(port, 'NOT A REQUEST \x00\x01 HTTP/1.1\r\n\r\n'), /^HTTP\/1\.[01] 400/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
    assert.equal((await fetch(url)).status, 405);
    // Same process, still healthy, no restarts.
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    assert.equal(state(dir).revisions[0].pgid, pid);
    assert.equal(state(dir).revisions[0].restarts, 0);
  });

  it('a crashed server is restarted with exponential backoff', async () => {
    const first = state(dir).revisions[0].pgid!;
    process.kill(-first, 'SIGKILL');
    const deadline = Date.now() + 30_000;
    while (!(state(dir).revisions[0].restarts === 1 && state(dir).revisions[0].phase === 'ready') && Date.now() < deadline) await sleep(100);
    assert.equal(state(dir).revisions[0].restarts, 1);
    const second = state(dir).revisions[0].pgid!;
    assert.notEqual(second, first);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    // A second crash soon after waits twice as long.
    process.kill(-second, 'SIGKILL');
    while (!(state(dir).revisions[0].restarts === 2 && state(dir).revisions[0].phase === 'ready') && Date.now() < deadline + 30_000) await sleep(100);
    const log = readFileSync(join(dir, '.mlpipeline/deployments/churn-api/logs/r1.log'), 'utf8');
    assert.match(log, /server was killed by SIGKILL; restart 1 in 300 ms/);
    assert.match(log, /server was killed by SIGKILL; restart 2 in 600 ms/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    const list = cli(dir, 'deployments');
    assert.match(list.out, /churn-api +ready .*r1 \(2 restarts\)/);
  });

  it('the load generator reports achieved rps and latency quantiles', () => {
    const t0 = Date.now();
    const r = cli(dir, 'load', 'churn-api', '--rps', '40', '--duration', '2s', '--json');
    const wall = Date.now() - t0;
    assert.equal(r.code, 0, r.out + r.err);
    const report = JSON.parse(r.out.slice(r.out.indexOf('{')));
    assert.equal(report.sent, 80);
    assert.equal(report.ok, 80, JSON.stringify(report));
    assert.ok(report.achievedRps > 25 && report.achievedRps <= 41, `achieved ${report.achievedRps}`);
    assert.ok(report.latencyMs.p50 > 0 && report.latencyMs.p50 <= report.latencyMs.p95 && report.latencyMs.p95 <= report.latencyMs.p99, JSON.stringify(report.latencyMs));
    assert.ok(wall < 20_000, `bounded: ${wall} ms`);
    const refused = cli(dir, 'load', 'churn-api', '--rps', '100000');
    assert.equal(refused.code, 2);
    assert.match(refused.err, /--rps takes a number from 1 to 2000/);
  });

  it('drift: not detected on inputs like the reference, detected on shifted ones (fixed seed)', async () => {
    const rand = mulberry32(7);
    const pick = (): Record<string, unknown> => {
      const row = reference[Math.floor(rand() * reference.length)];
      return Object.fromEntries(FEATURES.map((f) => [f, row[f] === '' ? null : f === 'contract' || f.endsWith('_service') || f.endsWith('_method') ? row[f] : Number(row[f])]));
    };
    const send = async (rows: Record<string, unknown>[]): Promise<void> => {
      for (let i = 0; i < rows.length; i += 50) {
        // A new connection each time: the redeploy below replaces the server behind this port.
        const res = await postJson(port, '/predict', { instances: rows.slice(i, i + 50) });
        assert.equal(res.status, 200, res.body);
      }
    };
    // The load test's 80 rows came from the reference in order; these are a seeded sample of it.
    await send(Array.from({ length: 400 }, pick));
    const same = cli(dir, 'monitor', 'churn-api-drift', '--json');
    assert.equal(same.code, 0, same.out + same.err);
    const sameResult = JSON.parse(same.out).results[0];
    assert.equal(sameResult.ok, true, JSON.stringify(sameResult.drift));
    assert.equal(sameResult.drift.features.length, FEATURES.length);

    // A new revision sees shifted traffic: long-tenure customers on two-year contracts.
    const re = cli(dir, 'deploy', 'churn-api');
    assert.equal(re.code, 0, re.out + re.err);
    await send(Array.from({ length: 400 }, () => ({ ...pick(), tenure_months: 60 + Math.floor(rand() * 12), contract: 'two-year' })));
    const shifted = cli(dir, 'monitor', 'churn-api-drift', '--json');
    assert.equal(shifted.code, 1, shifted.out + shifted.err);
    const out = JSON.parse(shifted.out);
    const drifted = out.results[0].drift.features.filter((f: { drifted: boolean }) => f.drifted).map((f: { feature: string }) => f.feature);
    assert.ok(drifted.includes('tenure_months') && drifted.includes('contract'), drifted.join(','));
    assert.ok(!drifted.includes('monthly_charges'), 'unshifted features do not drift');
    assert.equal(out.alerts[0].state, 'violated');
    assert.match(out.alerts[0].details.join('\n'), /tenure_months: PSI=[0-9.]+ \(drift when > 0\.2\)/);
    // Alert history: recorded once per state change.
    const repeat = cli(dir, 'monitor', 'churn-api-drift', '--json');
    assert.equal(repeat.code, 1, 'still drifted');
    const again = JSON.parse(repeat.out);
    assert.equal(again.alerts.length, 0);
    const alerts = readFileSync(join(dir, '.mlpipeline/deployments/churn-api/alerts.jsonl'), 'utf8').trim().split('\n');
    assert.equal(alerts.length, 1);
  });

  it('undeploy from another process stops the supervisor and the server', async () => {
    const s = state(dir);
    const pg = s.revisions[0].pgid!;
    assert.ok(alive(s.supervisorPid) && alive(pg));
    // Another process, another folder: only the spec path ties it to the deployment.
    const child = spawn(process.execPath, [BIN, 'undeploy', 'churn-api', '--spec', join(dir, 'mlpipeline.yaml')], { cwd: tmpdir(), env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise((r) => child.on('exit', r));
    assert.equal(code, 0);
    assert.match(out, /churn-api stopped/);
    assert.equal(alive(s.supervisorPid), false);
    assert.equal(alive(pg), false);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`));
    assert.match(cli(dir, 'deployments').out, /No deployments running here/);
  });
});
