/**
 * The storage contract of steps on Kubernetes, as pure functions: the check made before a Job exists,
 * the pod's environment, the Job manifest carrying it, and reading the staging prefixes back from a Job.
 * The same paths against a real cluster and S3 are in test/runtime/kubernetes-s3.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalArtifactStore, remoteStepEnv, remoteStepProblem, S3ArtifactStore, stageRemoteStep, stagingFromEnv } from '../../client/src/runtime/artifacts';
import { inputSlug } from '../../client/src/runtime/artifacts/remote-step';
import { buildJob, plainEnvOf } from '../../client/src/runtime/kubernetes/manifests';
import { planRun, type RunPlan } from '../../server/src/core/plan';
import { analyzeSpec } from '../../server/src/core/validate';

const spec = (storage: string, targetEnv = ''): string => `apiVersion: mlpipeline/v1
name: stage-test
secrets: [S3_SECRET]
datasets:
  raw: {uri: s3://acme-ml/raw/}
  labels: {uri: data/labels.csv}
compute:
  k8s:
    type: kubernetes
    default: true
    namespace: ml
    image: ghcr.io/acme/trainer:1
    env: {AWS_SECRET_ACCESS_KEY: "\${secrets.S3_SECRET}"${targetEnv}}
${storage}steps:
  prepare:
    command: prep \${datasets.raw} \${datasets.labels} \${outputs.features}
    outputs: {features: out/features.csv}
  train:
    command: train \${steps.prepare.outputs.features} \${outputs.model}
    inputs: [src/train.py]
    outputs: {model: models/ckpt/}
    metrics: metrics/train.json
    plots: [plots/loss.csv]
  report:
    command: echo done
`;

function plan(text: string): RunPlan {
  const r = planRun(analyzeSpec(text));
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.plan;
}
const step = (p: RunPlan, name: string) => p.steps.find((s) => s.name === name)!;

describe('a Kubernetes step without an S3 artifact store', () => {
  const p = plan(spec(''));
  it('that declares outputs, metrics or plots fails before a Job, naming them and what to add', () => {
    const err = remoteStepProblem(step(p, 'train'), undefined, {})!;
    assert.match(err, /^Step `train` runs on Kubernetes \(target `k8s`\) and declares output `model`, metrics file `metrics\/train\.json`, plot `plots\/loss\.csv`, which the pod can only hand back through an S3 artifact store/);
    assert.match(err, /the spec has no `storage.artifacts`\. Add one, e\.g\. `storage: \{artifacts: s3:\/\/<bucket>\/<prefix>\/\}`, and give the pod credentials/);
    assert.match(err, /No Job was created\.$/);
  });
  it('a local folder as the store is no better: a pod cannot reach it', () => {
    const err = remoteStepProblem(step(p, 'prepare'), new LocalArtifactStore('/mnt/artifacts'), {})!;
    assert.match(err, /`storage.artifacts` is a local folder \(\/mnt\/artifacts\), which a pod cannot reach\. Set it to an s3:\/\/ URI/);
  });
  it('a step with nothing to hand back runs as before', () => {
    assert.equal(remoteStepProblem(step(p, 'report'), undefined, {}), undefined);
  });
});

describe('a Kubernetes step with an S3 artifact store', () => {
  const store = new S3ArtifactStore('s3://acme-ml/artifacts/', { endpoint: 'http://rgw:7480' });
  const p = plan(spec('storage:\n  artifacts: s3://acme-ml/artifacts/\n'));
  it('may run once every upstream output it reads has a verified copy', () => {
    assert.equal(remoteStepProblem(step(p, 'train'), store, { 'prepare.features': 's3://acme-ml/artifacts/prepare/features/abc/features.csv' }), undefined);
    assert.match(remoteStepProblem(step(p, 'train'), store, {})!, /reads `prepare\.features`, which has no verified copy in s3:\/\/acme-ml\/artifacts\/.*No Job was created/);
  });

  it('passes input URIs and upload prefixes, and JSON maps for generic staging tools', () => {
    const env = remoteStepEnv({
      artifacts: 's3://acme-ml/artifacts/',
      runId: 'R1',
      step: 'train',
      outputs: { model: 'models/ckpt/' },
      datasets: {},
      upstream: { 'prepare.features': 's3://acme-ml/artifacts/prepare/features/abc/features.csv' },
      inputs: { 'src/train.py': 's3://acme-ml/artifacts/_inputs/src__train.py/def/train.py', 'out/features.csv': 's3://acme-ml/artifacts/prepare/features/abc/features.csv' },
      files: ['metrics/train.json', 'loss.csv'],
    });
    assert.equal(env.MLP_OUTPUT_MODEL_URI, 's3://acme-ml/artifacts/train/model/runs/R1/');
    assert.equal(env.MLP_FILES_URI, 's3://acme-ml/artifacts/train/_files/runs/R1/');
    assert.deepEqual(JSON.parse(env.MLP_INPUTS), { 'src/train.py': 's3://acme-ml/artifacts/_inputs/src__train.py/def/train.py', 'out/features.csv': 's3://acme-ml/artifacts/prepare/features/abc/features.csv' });
    // One upload rule for all: a file goes to <prefix><file name>, so metrics land at their own path under MLP_FILES_URI.
    assert.deepEqual(JSON.parse(env.MLP_OUTPUTS), {
      'models/ckpt/': 's3://acme-ml/artifacts/train/model/runs/R1/',
      'metrics/train.json': 's3://acme-ml/artifacts/train/_files/runs/R1/metrics/',
      'loss.csv': 's3://acme-ml/artifacts/train/_files/runs/R1/',
    });
    assert.equal(env.MLP_INPUT_PREPARE_FEATURES_URI, 's3://acme-ml/artifacts/prepare/features/abc/features.csv');
  });

  it('the Job carries the contract as plain env; reading it back leaves secret references out', () => {
    const p2 = plan(spec('storage:\n  artifacts: s3://acme-ml/artifacts/\n'));
    const s = step(p2, 'prepare');
    const contract = remoteStepEnv({ artifacts: 's3://acme-ml/artifacts/', runId: 'R1', step: 'prepare', outputs: s.outputs, datasets: { raw: 's3://acme-ml/raw/' }, upstream: {}, endpoint: 'http://rgw:7480' });
    const job = buildJob({ specName: p2.specName, step: s, target: p2.targets.k8s.kubernetes!, runId: 'R1', attempt: 1, cacheKey: 'k', extraEnv: contract });
    const env = plainEnvOf(job);
    for (const [k, v] of Object.entries(contract)) assert.equal(env[k], v, k);
    assert.equal(env.AWS_SECRET_ACCESS_KEY, undefined, 'a secret is a reference, not a value');
    assert.equal(env.MLP_ATTEMPT, '1');
  });

  it('takes the staging prefixes from the Job it followed (another run created it), else computes them', () => {
    const s = step(p, 'train');
    const fromJob = stagingFromEnv(s, { MLP_OUTPUT_MODEL_URI: 's3://acme-ml/artifacts/train/model/runs/OLD/', MLP_FILES_URI: 's3://acme-ml/artifacts/train/_files/runs/OLD/' }, store, 'NEW');
    assert.deepEqual(fromJob.outputs, { model: 's3://acme-ml/artifacts/train/model/runs/OLD/' });
    assert.equal(fromJob.files, 's3://acme-ml/artifacts/train/_files/runs/OLD/');
    const computed = stagingFromEnv(s, {}, store, 'OLD');
    assert.deepEqual([computed.outputs, computed.files], [fromJob.outputs, fromJob.files]);
    assert.equal(stagingFromEnv(step(p, 'report'), {}, store, 'X').files, undefined);
  });

  it('names staged inputs by a key-safe slug of their path', () => {
    assert.equal(inputSlug('src/common/'), 'src__common');
    assert.equal(inputSlug('./data/labels v2.csv'), 'data__labels-v2.csv');
    assert.equal(inputSlug('.env'), '_.env');
  });
});

describe('the pod environment without a store', () => {
  it('names S3 datasets and the endpoint only; the spec may give pods their own endpoint', async () => {
    const p = plan(spec(''));
    const base = { step: step(p, 'prepare'), plan: p, runId: 'R1', workspace: '/ws', endpoint: 'http://127.0.0.1:7480', inputHashes: {}, upstream: {}, log: () => {} };
    const s = await stageRemoteStep(base);
    assert.deepEqual(s.env, { MLP_RUN_ID: 'R1', MLP_STEP: 'prepare', MLP_DATASET_RAW_URI: 's3://acme-ml/raw/', MLP_DATASET_LABELS_URI: 'data/labels.csv', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:7480' });
    assert.deepEqual(s.outputs, {});
    const inCluster = plan(spec('', ', AWS_ENDPOINT_URL_S3: "http://rook-ceph-rgw.storage.svc"'));
    const t = await stageRemoteStep({ ...base, step: step(inCluster, 'prepare'), plan: inCluster });
    assert.equal(t.env.AWS_ENDPOINT_URL_S3, undefined, "the target's own endpoint is used");
  });
});
