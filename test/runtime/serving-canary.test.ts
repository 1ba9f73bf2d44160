/**
 * Canary rollouts and SLO monitors against real parts: the CLI bundle, the sample model server (latency
 * injected through SERVE_LATENCY_MS, which it honours), the local weighted proxy, and a real Prometheus
 * started here on 127.0.0.1 that discovers revisions from the supervisor's file_sd targets.
 * Holds are shortened with --hold-scale. Loopback only; every step is bounded in time.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCsv } from '../../client/src/runtime/serving/drift';
import { runLoad } from '../../client/src/runtime/serving/load';
import { scrapeMetrics, summarize } from '../../client/src/runtime/serving/metrics';
import { summarizeFromPrometheus } from '../../client/src/runtime/serving/prometheus';
import { copyChurnSample, json, MLPIPELINE_BIN as BIN, runCli, type CliResult } from '../helpers/mlpipeline-cli';
import { freePort } from '../helpers/net';
import { startPrometheus, type Prometheus } from '../helpers/prometheus';

const ENV = { ...process.env, NO_COLOR: '1' };
const FEATURES = ['tenure_months', 'monthly_charges', 'total_charges', 'contract', 'internet_service', 'payment_method', 'support_calls', 'senior'];

function cli(cwd: string, ...args: string[]): CliResult {
  return runCli(cwd, args, ENV);
}

/** The CLI without blocking this process, so load can run meanwhile. */
function cliAsync(cwd: string, ...args: string[]): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, out, err });
    });
  });
}

function deployments(port: number, promPort: number, prometheus: string, env: string): string {
  const runtime = (p: string): string => `    runtime:
      command: python3 src/serve.py --model \${model} --port \${PORT}
      port: ${p}
      readiness: /healthz
      metrics: /metrics${env ? `\n      env: {SERVE_LATENCY_MS: "${env}"}` : ''}`;
  return `deployments:
  churn-api:
    model: \${steps.train.outputs.model}
    gate: evaluate.auc >= 0.7
${runtime(String(port))}
    rollout:
      strategy: canary
      steps:
        - {weight: 50, hold: 60s}
        - {weight: 100, hold: 10s}
      rollbackOn: [monitors.churn-api-latency]
  churn-prom:
    model: \${steps.train.outputs.model}
${runtime(String(promPort))}
    rollout:
      strategy: canary
      steps:
        - {weight: 50, hold: 80s}
        - {weight: 100}
      rollbackOn: [monitors.churn-prom-latency]

monitors:
  churn-api-latency:
    deployment: churn-api
    slo: {p95LatencyMs: 100, errorRate: 0.01, window: 5m}
  churn-prom-latency:
    deployment: churn-prom
    slo: {p95LatencyMs: 100, errorRate: 0.01, window: 5s}
    source: {prometheus: "${prometheus}"}

alerts:
  - when: [monitors.churn-api-latency, monitors.churn-prom-latency]
    notify: [log]
`;
}

describe('canary rollouts judged by SLO monitors (direct scrapes and a real Prometheus)', { timeout: 300_000 }, () => {
  let dir: string;
  let port: number;
  let promPort: number;
  let prom: Prometheus;
  let rows: Record<string, unknown>[];

  before(async () => {
    dir = copyChurnSample('mlp-canary-');
    prom = await startPrometheus({ fileSdGlob: join(dir, '.mlpipeline/deployments/_prometheus/*.json') });
    port = await freePort();
    promPort = await freePort();
    const spec = readFileSync(join(dir, 'mlpipeline.yaml'), 'utf8');
    const head = spec.slice(0, spec.indexOf('deployments:'));
    writeFileSync(join(dir, 'mlpipeline.yaml'), head + deployments(port, promPort, prom.url, ''));
    writeFileSync(join(dir, 'slow.mlpipeline.yaml'), head + deployments(port, promPort, prom.url, '250'));
    assert.equal(cli(dir, 'validate', 'mlpipeline.yaml', 'slow.mlpipeline.yaml').code, 0);
    const r = cli(dir, 'run', 'mlpipeline.yaml');
    assert.equal(r.code, 0, r.out + r.err);
    rows = parseCsv(readFileSync(join(dir, 'data/churn.csv'), 'utf8')).map((row) => Object.fromEntries(FEATURES.map((f) => [f, ['contract', 'internet_service', 'payment_method'].includes(f) ? row[f] : Number(row[f])])));
    for (const name of ['churn-api', 'churn-prom']) {
      const d = cli(dir, 'deploy', name);
      assert.equal(d.code, 0, d.out + d.err);
      assert.match(d.out, /deploy .* r1/);
    }
  });

  after(async () => {
    if (dir) for (const name of ['churn-api', 'churn-prom']) cli(dir, 'undeploy', name);
    await prom?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `deploy` while steady load goes through the public port; returns the CLI result and what the load saw. */
  async function deployUnderLoad(name: string, p: number, ...args: string[]): Promise<CliResult> {
    const ac = new AbortController();
    const load = runLoad({ url: `http://127.0.0.1:${p}/predict`, rps: 30, durationMs: 60_000, body: (i) => JSON.stringify({ instances: [rows[i % rows.length]] }), signal: ac.signal, maxInFlight: 64 });
    const r = await cliAsync(dir, 'deploy', name, ...args);
    ac.abort();
    const report = await load;
    assert.equal(report.failed, 0, 'no request failed during the rollout');
    return r;
  }

  it('Prometheus scrapes the sample server; its quantiles and rate agree with a direct scrape', async () => {
    await prom.waitForTarget({ deployment: 'churn-prom', revision: 'r1' });
    const before = await scrapeMetrics(`http://127.0.0.1:${promPort}/metrics`);
    const report = await runLoad({ url: `http://127.0.0.1:${promPort}/predict`, rps: 40, durationMs: 4000, body: (i) => JSON.stringify({ instances: [rows[i % rows.length]] }) });
    assert.equal(report.ok, 160);
    const direct = summarize(await scrapeMetrics(`http://127.0.0.1:${promPort}/metrics`), before);
    assert.equal(direct.requests, 160);
    await new Promise((r) => setTimeout(r, 2500)); // two more scrapes
    const viaProm = await summarizeFromPrometheus(prom.url, { deployment: 'churn-prom' }, 10_000);
    assert.ok(viaProm.rps > 5 && viaProm.rps < 40, `rps ${viaProm.rps}`);
    assert.ok(viaProm.p95 > 0 && viaProm.p95 <= 0.1, `p95 ${viaProm.p95}`);
    assert.equal(viaProm.errorRate, 0);
    assert.ok(direct.p95 > 0 && direct.p95 <= 0.1, `direct p95 ${direct.p95}`);
  });

  it('a healthy canary is promoted', async () => {
    const r = await deployUnderLoad('churn-api', port, '--hold-scale', '0.1');
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /Canary r2 is ready next to r1; rolling out \(holds × 0\.1\)/);
    assert.match(r.out, /step 1\/2: 50% to r2, holding 6\.0 s/);
    assert.match(r.out, /monitors\.churn-api-latency: ok: p95 [0-9.]+ ms/);
    assert.match(r.out, /promoted r2/);
    const list = json(cli(dir, 'deployments', '--json')) as { name: string; revisions: { revision: string; weight: number }[]; records: { outcome: string; revision: string }[] }[];
    const api = list.find((d) => d.name === 'churn-api')!;
    assert.deepEqual(api.revisions.map((x) => [x.revision, x.weight]), [['r2', 100]]);
    assert.equal(api.records.at(-1)!.outcome, 'promoted');
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(res.headers.get('x-mlpipeline-revision'), 'r2');
  });

  it('a canary with injected latency is rolled back, with the measured numbers as the reason', async () => {
    const t0 = Date.now();
    const r = await deployUnderLoad('churn-api', port, 'slow.mlpipeline.yaml', '--hold-scale', '0.1');
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.err, /Canary r3 was rolled back: monitors\.churn-api-latency breached on r3: p95 latency [0-9.]+ ms > 100 ms/);
    assert.ok(Date.now() - t0 < 30_000, 'rolled back during the first hold');
    const list = json(cli(dir, 'deployments', '--json')) as { name: string; revisions: { revision: string; weight: number }[]; records: { outcome: string; reason?: string }[] }[];
    const api = list.find((d) => d.name === 'churn-api')!;
    assert.deepEqual(api.revisions.map((x) => [x.revision, x.weight]), [['r2', 100]]);
    assert.equal(api.records.at(-1)!.outcome, 'rolled-back');
    assert.match(api.records.at(-1)!.reason!, /p95 latency/);
    const alerts = readFileSync(join(dir, '.mlpipeline/deployments/churn-api/alerts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(alerts.at(-1).state, 'violated');
    assert.equal(alerts.at(-1).revision, 'r3');
  });

  it('with a Prometheus source, the slow canary is rolled back from histogram_quantile over query_range', async () => {
    const r = await deployUnderLoad('churn-prom', promPort, 'slow.mlpipeline.yaml', '--hold-scale', '0.2');
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.err, /Canary r2 was rolled back: monitors\.churn-prom-latency breached on r2: p95 latency [0-9.]+ ms > 100 ms/);
    const res = await fetch(`http://127.0.0.1:${promPort}/healthz`);
    assert.equal(res.headers.get('x-mlpipeline-revision'), 'r1');
  });
});
