import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseGate, planDeployment } from '../../server/src/core/deploy-plan';
import { analyzeSpec } from '../../server/src/core/validate';
import { evaluateGate } from '../../client/src/runtime/serving/gate';
import type { StepRecord } from '../../client/src/runtime/records';

const CHURN = readFileSync(new URL('../../samples/churn-local/mlpipeline.yaml', import.meta.url), 'utf8');
const FRAUD = readFileSync(new URL('../../samples/sweep-deploy/mlpipeline.yaml', import.meta.url), 'utf8');

const step = (metrics: Record<string, number>): StepRecord => ({ status: 'succeeded', command: '', attempts: 1, inputs: {}, outputs: {}, metrics, log: '' });

describe('deploy plan: a deployment resolved from the spec', () => {
  it('churn-local: model from the train step, ${model} substituted, probes, gate, monitors and alerts', () => {
    const r = planDeployment(analyzeSpec(CHURN), 'churn-api');
    assert.ok(r.ok, JSON.stringify(r));
    const d = r.deployment;
    assert.deepEqual(d.model, { kind: 'step-output', step: 'train', output: 'model', path: 'models/model.json' });
    assert.equal(d.runtime.command, 'python3 src/serve.py --model models/model.json --port 8080');
    assert.deepEqual([d.runtime.port, d.runtime.readiness, d.runtime.metrics, d.runtime.usesPortEnv], [8080, '/healthz', '/metrics', false]);
    assert.deepEqual(d.gate?.clauses.map((c) => [c.step, c.metric, c.op, c.value]), [['evaluate', 'auc', '>=', 0.7]]);
    assert.deepEqual([d.target, d.targetType, d.rollout.strategy], ['local', 'local', 'all-at-once']);
    assert.deepEqual(d.monitors.map((m) => [m.name, m.slo?.p95LatencyMs, m.slo?.errorRate, m.slo?.windowMs]), [['churn-api-latency', 100, 0.01, 300_000]]);
    assert.deepEqual(d.alerts.map((a) => [a.monitors, a.notify]), [[['churn-api-latency'], ['vscode', 'log']]]);
  });

  it('sweep-deploy: canary steps with holds in ms, rollbackOn, drift and Prometheus source, env with params', () => {
    const r = planDeployment(analyzeSpec(FRAUD), 'fraud-api', { overrides: { 'params.model': 'lgbm' } });
    assert.ok(r.ok, JSON.stringify(r));
    const d = r.deployment;
    assert.deepEqual(d.rollout, { strategy: 'canary', steps: [{ weight: 10, holdMs: 900_000 }, { weight: 50, holdMs: 1_800_000 }, { weight: 100, holdMs: 0 }], rollbackOn: ['fraud-api-slo'] });
    assert.equal(d.targetType, 'kubernetes');
    assert.deepEqual(d.runtime.env, { LOG_LEVEL: 'info', MODEL_TYPE: 'lgbm' });
    assert.deepEqual(d.replicas, { min: 2, max: 10 });
    const drift = d.monitors.find((m) => m.name === 'fraud-api-drift')!.drift!;
    assert.deepEqual([drift.reference, drift.method, drift.threshold, drift.scheduleMs], ['data/holdout-2025-06.parquet', 'psi', 0.2, 3_600_000]);
    assert.equal(d.monitors.find((m) => m.name === 'fraud-api-slo')!.prometheus, 'http://prometheus.monitoring.svc:9090');
    assert.equal(d.alerts.length, 2);
  });

  it('values substituted into the command are shell-quoted; $PORT is detected', () => {
    const text = CHURN.replace('--model ${model} --port 8080', '--model ${model} --port ${PORT}').replace('model: models/model.json', "model: 'models/my model;rm -rf x.json'");
    const r = planDeployment(analyzeSpec(text), 'churn-api');
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.deployment.runtime.command, "python3 src/serve.py --model 'models/my model;rm -rf x.json' --port ${PORT}");
    assert.equal(r.deployment.runtime.usesPortEnv, true);
  });

  it('an unknown deployment names the ones that exist', () => {
    const r = planDeployment(analyzeSpec(CHURN), 'churn-apj');
    assert.deepEqual(r, { ok: false, errors: ['There is no deployment `churn-apj`. Deployments: churn-api.'] });
  });
});

describe('gate evaluation', () => {
  const run = { id: 'R1', steps: { evaluate: step({ auc: 0.8022, f1: 0.49 }) } };

  it('passes and fails with the numbers', () => {
    assert.equal(evaluateGate('evaluate.auc >= 0.7', run).pass, true);
    const r = evaluateGate('evaluate.auc >= 0.85 && evaluate.f1 > 0.4', run);
    assert.equal(r.pass, false);
    assert.equal(r.message, 'evaluate.auc >= 0.85: evaluate.auc is 0.8022, needs >= 0.85');
    assert.deepEqual(r.checks.map((c) => c.pass), [false, true]);
  });

  it('a missing metric or step fails the gate and says what the run has', () => {
    const r = evaluateGate('evaluate.recall >= 0.5 && train.loss < 1', run);
    assert.equal(r.pass, false);
    assert.match(r.message, /step `evaluate` of run R1 recorded no metric `recall` \(it has auc, f1\)/);
    assert.match(r.message, /run R1 has no step `train`/);
  });

  it('every operator, exponents and negative numbers; hostile text is refused, never evaluated', () => {
    const m = { id: 'R', steps: { s: step({ x: -1.5e-3 }) } };
    for (const [g, pass] of [['s.x == -1.5e-3', true], ['s.x != -1.5e-3', false], ['s.x < 0', true], ['s.x <= -0.0015', true], ['s.x > -.002', true]] as const) assert.equal(evaluateGate(g, m).pass, pass, g);
    assert.equal(parseGate('s.x >= 1 || true').ok, false);
    assert.equal(evaluateGate('process.exit(1) >= 0', m).pass, false);
    assert.match(evaluateGate('s.x >= 1; rm -rf /', m).message, /not a comparison/);
  });
});

describe('deploy plan: problems the schema cannot see', () => {
  it('rollbackOn naming a monitor of another deployment is refused with the reason', () => {
    const text = CHURN.replace(
      "      metrics: /metrics\n",
      '      metrics: /metrics\n    rollout:\n      strategy: canary\n      steps: [{weight: 50, hold: 1m}]\n      rollbackOn: [monitors.other-latency]\n',
    ).replace('alerts:', '  other-latency:\n    deployment: other-api\n    slo: {p95LatencyMs: 10}\n\nalerts:').replace('monitors:\n', 'monitors:\n').replace('deployments:\n', 'deployments:\n  other-api:\n    model: models/model.json\n    runtime: {command: "python3 src/serve.py --model ${model} --port ${PORT}", port: 9001}\n');
    const r = planDeployment(analyzeSpec(text), 'churn-api');
    assert.deepEqual(r, { ok: false, errors: ['rollbackOn names `monitors.other-latency`, which does not watch deployment `churn-api`.'] });
    const other = planDeployment(analyzeSpec(text), 'other-api');
    assert.ok(other.ok);
    assert.deepEqual(other.deployment.model, { kind: 'path', path: 'models/model.json' });
    assert.equal(other.deployment.gate, undefined);
    assert.deepEqual(other.deployment.monitors.map((m) => m.name), ['other-latency']);
  });

  it('a spec with errors is not planned', () => {
    const r = planDeployment(analyzeSpec(CHURN.replace('gate: evaluate.auc >= 0.7', 'gate: evaluate.auc >= high')), 'churn-api');
    assert.equal(r.ok, false);
  });
});
