/**
 * Steps on Kubernetes whose inputs and outputs travel through an S3 artifact store, against a real
 * kube-apiserver 1.20.2 + kube-controller-manager with the simulated node (test/infra/sim-node) and a real
 * Ceph RADOS Gateway. The pods' "own tooling" is test/infra/sim-node/pod-stage.mjs, a small real S3 client
 * run by the pod's command (as `aws s3 cp` would be in a real image), with credentials from the
 * Kubernetes Secret the target references. Needs test/infra/install-kube.sh and install-ceph-rgw.sh.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { S3ArtifactStore, type S3StoreOptions } from '../../client/src/runtime/artifacts';
import { runPlan, type RunResult } from '../../client/src/runtime/engine';
import type { StepExecutor } from '../../client/src/runtime/executor';
import { ContentHasher } from '../../client/src/runtime/hashing';
import { KubernetesExecutor } from '../../client/src/runtime/kubernetes/executor';
import { jobName } from '../../client/src/runtime/kubernetes/manifests';
import { readLock } from '../../client/src/runtime/lock-file';
import { RunStore } from '../../client/src/runtime/run-store';
import { StepCache } from '../../client/src/runtime/step-cache';
import { planRun } from '../../server/src/core/plan';
import { analyzeSpec } from '../../server/src/core/validate';
import { startCephRgw, type CephRgw } from '../helpers/ceph-rgw';
import { startKubeCluster, type KubeCluster } from '../helpers/kube-cluster';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const NS = 'ml';
const SPEC_NAME = 'k8s-s3';
const BUCKET = 'mlp-k8s-s3';
const ARTIFACTS = `s3://${BUCKET}/artifacts/`;
const DATASET = `s3://${BUCKET}/datasets/raw/`;
/** The pod's S3 tool, run by the pod command on this machine (the sim node runs commands locally). */
const STAGE = `${process.execPath} ${resolve(__dirname, '..', 'infra', 'sim-node', 'pod-stage.mjs')}`;

let cluster: KubeCluster;
let rgw: CephRgw;
let s3: S3Client;
let sdk: typeof import('@aws-sdk/client-s3');
const dirs: string[] = [];

const sha256 = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

function specText(steps: string, storage = `storage:\n  artifacts: ${ARTIFACTS}\n`): string {
  return `apiVersion: mlpipeline/v1
name: ${SPEC_NAME}
secrets: [S3_KEY_ID, S3_SECRET]
datasets:
  raw: {uri: ${DATASET}}
compute:
  cluster:
    type: kubernetes
    default: true
    context: mlp-test
    namespace: ${NS}
    image: busybox:1.36
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
    # The pod's S3 credentials come from the Kubernetes Secret, by reference.
    env: {AWS_ACCESS_KEY_ID: "\${secrets.S3_KEY_ID}", AWS_SECRET_ACCESS_KEY: "\${secrets.S3_SECRET}"}
${storage}steps:
${steps}`;
}

/** prepare reads the S3 dataset; train runs a script from the workspace (a declared input) on prepare's output. */
const PIPELINE = `  prepare:
    command: ${STAGE} get \${datasets.raw} data/raw/ && mkdir -p out && cat data/raw/a.csv data/raw/sub/b.csv > \${outputs.features} && ${STAGE} out
    outputs: {features: out/features.csv}
  train:
    command: ${STAGE} in && sh src/train.sh \${steps.prepare.outputs.features} && ${STAGE} out
    inputs: [src/train.sh]
    outputs: {checkpoint: models/ckpt/}
    metrics: metrics/train.json
`;

const TRAIN_SH = (version: string): string => `set -e
mkdir -p models/ckpt metrics
sort -r "$1" > models/ckpt/weights.txt
echo "${version}" > models/ckpt/config.txt
echo "{\\"rows\\": $(wc -l < "$1")}" > metrics/train.json
`;

interface Ran extends RunResult {
  workspace: string;
  log(step: string): string;
}

function workspace(): string {
  const w = mkdtempSync(join(tmpdir(), 'mlp-k8s-s3-ws-'));
  dirs.push(w);
  return w;
}

function s3Options(): S3StoreOptions {
  return { endpoint: rgw.endpoint, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey } };
}

function executor(): KubernetesExecutor {
  return new KubernetesExecutor({ kubeconfig: cluster.kubeconfig, pendingTimeoutMs: 15_000, pollMs: 500, requestTimeoutMs: 5000 });
}

async function run(ws: string, text: string, opts: { executor?: StepExecutor } = {}): Promise<Ran> {
  const specPath = join(ws, 'mlpipeline.yaml');
  writeFileSync(specPath, text);
  const planned = planRun(analyzeSpec(text));
  assert.ok(planned.ok, JSON.stringify(!planned.ok && planned.errors));
  const result = await runPlan({
    specPath,
    specText: text,
    plan: planned.plan,
    s3: s3Options(),
    secret: (n) => ({ S3_KEY_ID: rgw.accessKeyId, S3_SECRET: rgw.secretAccessKey })[n],
    kubernetesExecutor: opts.executor ?? executor(),
  });
  const store = new RunStore(join(ws, '.mlpipeline', 'runs'));
  return { ...result, workspace: ws, log: (step) => readFileSync(store.logPath(result.runId, step), 'utf8') };
}

async function jobsFor(step: string): Promise<Json[]> {
  const res = await cluster.api('GET', `/apis/batch/v1/namespaces/${NS}/jobs?labelSelector=${encodeURIComponent(`mlpipeline.dev/step=${step}`)}`);
  return res.body.items;
}

async function keysUnder(prefix: string): Promise<string[]> {
  const r = await s3.send(new sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}

/** Why a run failed, with the logs: assertion messages that explain themselves. */
const why = (r: Ran): string => `${r.record.error}\n${Object.keys(r.record.steps).map((s) => `--- ${s}\n${r.log(s)}`).join('\n')}`;

before(async () => {
  [cluster, rgw] = await Promise.all([startKubeCluster({ gpus: 1 }), startCephRgw()]);
  await cluster.api('POST', '/api/v1/namespaces', { metadata: { name: NS } });
  const secret = await cluster.api('POST', `/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'mlpipeline-secrets' }, stringData: { S3_KEY_ID: rgw.accessKeyId, S3_SECRET: rgw.secretAccessKey } });
  assert.equal(secret.status, 201);
  const deadline = Date.now() + 60_000;
  while ((await cluster.api('GET', `/api/v1/namespaces/${NS}/serviceaccounts/default`)).status !== 200) {
    if (Date.now() > deadline) throw new Error('the default service account never appeared');
    await new Promise((r) => setTimeout(r, 200));
  }
  sdk = await import('@aws-sdk/client-s3');
  s3 = new sdk.S3Client({ endpoint: rgw.endpoint, region: rgw.region, forcePathStyle: true, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  await s3.send(new sdk.CreateBucketCommand({ Bucket: BUCKET }));
  await s3.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: 'datasets/raw/a.csv', Body: 'id,churn\n1,0\n2,1\n' }));
  await s3.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: 'datasets/raw/sub/b.csv', Body: '3,0\n' }));
});

after(async () => {
  s3?.destroy();
  await Promise.all([cluster?.stop(), rgw?.stop()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('steps on Kubernetes with inputs and outputs in S3', { timeout: 600_000 }, () => {
  const ws = workspace();
  mkdirSync(join(ws, 'src'));
  writeFileSync(join(ws, 'src', 'train.sh'), TRAIN_SH('version 1'));
  let first: Ran;

  it('runs both steps as Jobs: dataset read from S3, inputs staged, outputs taken in verified, recorded with hashes, URIs and the Job', async () => {
    first = await run(ws, specText(PIPELINE));
    assert.equal(first.status, 'succeeded', why(first));
    const { prepare, train } = first.record.steps;

    // The record names the Job that ran each step; it is the Job in the cluster, and it succeeded.
    assert.deepEqual(prepare.kubernetes, { job: jobName(SPEC_NAME, 'prepare', prepare.cacheKey!, 1), namespace: NS, context: 'mlp-test' });
    const [job] = await jobsFor('prepare');
    assert.equal(job.metadata.name, prepare.kubernetes!.job);
    assert.equal(job.status.succeeded, 1);
    // The pod was told the contract in plain env; credentials only by reference to the Secret.
    const env: Json[] = job.spec.template.spec.containers[0].env;
    const value = (n: string): string | undefined => env.find((e) => e.name === n)?.value;
    assert.equal(value('MLP_DATASET_RAW_URI'), DATASET);
    assert.equal(value('MLP_OUTPUT_FEATURES_URI'), `${ARTIFACTS}prepare/features/runs/${first.runId}/`);
    assert.equal(value('AWS_ENDPOINT_URL_S3'), rgw.endpoint);
    assert.deepEqual(env.find((e) => e.name === 'AWS_SECRET_ACCESS_KEY')?.valueFrom, { secretKeyRef: { name: 'mlpipeline-secrets', key: 'S3_SECRET' } });
    assert.doesNotMatch(JSON.stringify(job), new RegExp(rgw.secretAccessKey), 'no credential in the Job');

    // prepare's output: what the pod wrote, verified and stored content-addressed, and copied into the workspace.
    const features = 'id,churn\n1,0\n2,1\n3,0\n';
    assert.deepEqual(prepare.outputs.features, { path: 'out/features.csv', hash: sha256(features), uri: `${ARTIFACTS}prepare/features/${sha256(features)}/features.csv` });
    assert.equal(readFileSync(join(ws, 'out/features.csv'), 'utf8'), features);
    assert.match(first.log('prepare'), /Took in output `features` from s3:\/\/.*runs\/.*sha256 verified/);

    // train ran the workspace's script (staged as a declared input) on prepare's stored output.
    const ckpt = train.outputs.checkpoint;
    const localHash = (await new ContentHasher({ root: ws }).hashPath('models/ckpt/')).hash;
    assert.equal(ckpt.hash, localHash, 'the folder output hashes as a local one would');
    assert.equal(ckpt.uri, `${ARTIFACTS}train/checkpoint/${localHash}/`);
    assert.equal(readFileSync(join(ws, 'models/ckpt/weights.txt'), 'utf8'), 'id,churn\n3,0\n2,1\n1,0\n');
    assert.equal(readFileSync(join(ws, 'models/ckpt/config.txt'), 'utf8'), 'version 1\n');
    assert.deepEqual(train.metrics, { rows: 4 });
    assert.equal(await new S3ArtifactStore(ARTIFACTS, s3Options()).verify({ step: 'train', output: 'checkpoint', hash: localHash }), true);
    const script = sha256(TRAIN_SH('version 1'));
    assert.deepEqual(await keysUnder(`artifacts/_inputs/src__train.sh/${script}/`), [`artifacts/_inputs/src__train.sh/${script}/train.sh`]);
    const [trainJob] = await jobsFor('train');
    const inputs = JSON.parse(trainJob.spec.template.spec.containers[0].env.find((e: Json) => e.name === 'MLP_INPUTS').value);
    assert.deepEqual(inputs, { 'src/train.sh': `${ARTIFACTS}_inputs/src__train.sh/${script}/train.sh`, 'out/features.csv': prepare.outputs.features.uri });

    // Staged copies are cleared once taken in.
    assert.deepEqual(await keysUnder(`artifacts/prepare/features/runs/`), []);
    assert.deepEqual(await keysUnder(`artifacts/train/_files/runs/`), []);

    // The lock pins the dataset, the inputs and the outputs exactly as for local steps.
    const lock = readLock(join(ws, 'mlpipeline.lock'))!;
    assert.equal(lock.steps.prepare.inputs[DATASET], lock.datasets.raw.hash);
    assert.deepEqual(lock.steps.prepare.outputs.features, prepare.outputs.features);
    assert.deepEqual(lock.steps.train.outputs.checkpoint, ckpt);
    assert.equal(lock.steps.train.inputs['src/train.sh'], script);
  });

  it('a second run is a cache hit: no new Job, stored copies checked', async () => {
    const again = await run(ws, specText(PIPELINE));
    assert.equal(again.status, 'succeeded', why(again));
    assert.deepEqual(Object.values(again.record.steps).map((s) => [s.status, s.cachedFrom]), [['cached', first.runId], ['cached', first.runId]]);
    assert.equal((await jobsFor('prepare')).length, 1);
    assert.equal((await jobsFor('train')).length, 1);
    assert.deepEqual(again.record.steps.train.outputs.checkpoint, first.record.steps.train.outputs.checkpoint);
    assert.deepEqual(again.record.steps.train.metrics, { rows: 4 });
  });

  it('a changed declared input reruns only the step that reads it, in a new Job, with the new script', async () => {
    writeFileSync(join(ws, 'src', 'train.sh'), TRAIN_SH('version 2'));
    const r = await run(ws, specText(PIPELINE));
    assert.equal(r.status, 'succeeded', why(r));
    assert.deepEqual([r.record.steps.prepare.status, r.record.steps.train.status], ['cached', 'succeeded']);
    assert.equal(readFileSync(join(ws, 'models/ckpt/config.txt'), 'utf8'), 'version 2\n');
    assert.notEqual(r.record.steps.train.outputs.checkpoint.hash, first.record.steps.train.outputs.checkpoint.hash);
    assert.equal((await jobsFor('train')).length, 2);
    assert.equal(r.record.steps.train.kubernetes!.job, jobName(SPEC_NAME, 'train', r.record.steps.train.cacheKey!, 1));
  });
});

describe('retries', { timeout: 300_000 }, () => {
  it('a retried attempt starts from empty staging prefixes: what the failed attempt uploaded does not mix in', async () => {
    const ws = workspace();
    const r = await run(ws, specText(`  flaky:
    command: mkdir -p out/m && echo "attempt $MLP_ATTEMPT" > out/m/a.txt && if [ "$MLP_ATTEMPT" = 1 ]; then echo stale > out/m/stale.txt; ${STAGE} out; exit 3; fi; ${STAGE} out
    outputs: {m: out/m/}
    retry: {max: 1, on: [failure]}
`));
    assert.equal(r.status, 'succeeded', why(r));
    const rec = r.record.steps.flaky;
    assert.equal(rec.attempts, 2);
    assert.equal(rec.kubernetes!.job, jobName(SPEC_NAME, 'flaky', rec.cacheKey!, 2), 'the record names the Job of the attempt that succeeded');
    assert.match(r.log('flaky'), /put .*stale\.txt/, 'attempt 1 did upload its partial folder');
    assert.deepEqual(await keysUnder(`artifacts/flaky/m/${rec.outputs.m.hash}/`), [`artifacts/flaky/m/${rec.outputs.m.hash}/a.txt`]);
    assert.equal(readFileSync(join(ws, 'out/m/a.txt'), 'utf8'), 'attempt 2\n');
  });
});

describe('outputs that do not arrive intact', { timeout: 600_000 }, () => {
  it('an output the pod did not write (so did not upload) fails the step with the URI it expected; nothing is recorded', async () => {
    const ws = workspace();
    const r = await run(ws, specText(`  half:
    command: mkdir -p out && echo weights > out/model.bin && ${STAGE} out
    outputs: {model: out/model.bin, report: out/report.txt}
`));
    assert.equal(r.status, 'failed');
    const rec = r.record.steps.half;
    assert.match(rec.error!, new RegExp(`exited 0 \\(Job ${NS}/mlp-k8s-s3-half-[0-9a-f]{10}-1\\), but its outputs could not be taken in from S3: Step \`half\` did not upload its output \`report\` to ${ARTIFACTS}half/report/runs/${r.runId}/`));
    assert.match(rec.error!, /Nothing was recorded as complete/);
    assert.equal(rec.kubernetes!.job, jobName(SPEC_NAME, 'half', rec.cacheKey!, 1));
    assert.deepEqual(rec.outputs, { model: { path: 'out/model.bin' }, report: { path: 'out/report.txt' } }, 'no hash recorded');
    assert.equal(readLock(join(ws, 'mlpipeline.lock'))?.steps.half, undefined, 'no lock entry');
    assert.equal(await new StepCache(join(ws, '.mlpipeline', 'cache', 'steps')).lookup(rec.cacheKey!), undefined, 'no cache entry');
  });

  it('a staged object that does not match the sha256 the pod declared fails the step; nothing is recorded or stored', async () => {
    const ws = workspace();
    const real = executor();
    let corrupted = '';
    // After the real Job succeeded, the staged object's bytes change under the pod's declared checksum
    // (as a broken upload tool or storage fault would leave it): the engine must notice, not record.
    const corrupting: StepExecutor = {
      run: async (x) => {
        const res = await real.run(x);
        const key = `artifacts/corrupt/model/runs/${x.runId}/model.bin`;
        const head = await s3.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key: key }));
        const body = Buffer.from(await (await s3.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToByteArray());
        body[3] ^= 0xff;
        await s3.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, Metadata: head.Metadata }));
        corrupted = key;
        return res;
      },
    };
    const r = await run(ws, specText(`  corrupt:
    command: mkdir -p out && echo "trained weights" > out/model.bin && ${STAGE} out
    outputs: {model: out/model.bin}
`), { executor: corrupting });
    assert.ok(corrupted, 'the staged object was there to corrupt');
    assert.equal(r.status, 'failed');
    const rec = r.record.steps.corrupt;
    assert.match(rec.error!, new RegExp(`could not be taken in from S3: Checksum mismatch for s3://${BUCKET}/${corrupted}: sha256 of the downloaded bytes is [0-9a-f]{64}, expected ${sha256('trained weights\n')}\\. Nothing was recorded as complete`));
    assert.deepEqual(rec.outputs, { model: { path: 'out/model.bin' } });
    assert.equal(readLock(join(ws, 'mlpipeline.lock'))?.steps.corrupt, undefined);
    assert.equal(await new StepCache(join(ws, '.mlpipeline', 'cache', 'steps')).lookup(rec.cacheKey!), undefined);
    assert.deepEqual((await keysUnder('artifacts/corrupt/model/')).filter((k) => !k.includes('/runs/')), [], 'nothing stored content-addressed');
    assert.deepEqual(await keysUnder(`artifacts/corrupt/model/runs/${r.runId}/`), [corrupted], 'the staged object is kept for inspection');
  });
});

describe('without an S3 artifact store', { timeout: 300_000 }, () => {
  it('a Kubernetes step that declares outputs fails before any Job is created, saying what to add', async () => {
    const ws = workspace();
    const r = await run(ws, specText(`  no-store:\n    command: echo never\n    outputs: {model: out/model.bin}\n`, ''));
    assert.equal(r.status, 'failed');
    const err = r.record.steps['no-store'].error!;
    assert.match(err, /Step `no-store` runs on Kubernetes \(target `cluster`\) and declares output `model`/);
    assert.match(err, /the spec has no `storage.artifacts`\. Add one, e\.g\. `storage: \{artifacts: s3:\/\/<bucket>\/<prefix>\/\}`/);
    assert.match(err, /No Job was created\.$/);
    assert.equal(r.record.steps['no-store'].kubernetes, undefined);
    assert.deepEqual(await jobsFor('no-store'), [], 'no Job in the cluster');
  });
});
