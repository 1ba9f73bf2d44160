/**
 * A pipeline whose dataset is `s3://...` and whose `storage.artifacts` is `s3://...`, run by the real
 * engine against a real Ceph RADOS Gateway through the fault proxy: outputs are uploaded (multipart above
 * the part size) with checksums recorded, a second run is cached without uploading, a changed remote
 * dataset invalidates the cache, the lock pins remote hashes, bad credentials and injected faults end in
 * the right state. Needs `bash test/infra/install-ceph-rgw.sh`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { S3ArtifactStore, type S3StoreOptions } from '../../client/src/runtime/artifacts';
import { runPlan, type EngineEvent } from '../../client/src/runtime/engine';
import { readLock } from '../../client/src/runtime/lock-file';
import { StepCache } from '../../client/src/runtime/step-cache';
import { planRun } from '../../server/src/core/plan';
import { analyzeSpec } from '../../server/src/core/validate';
import { startCephRgw, type CephRgw } from '../helpers/ceph-rgw';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';

const BUCKET = 'mlp-pipeline-test';
const ARTIFACTS = `s3://${BUCKET}/artifacts/churn/`;
const DATASET = `s3://${BUCKET}/datasets/raw/`;

let rgw: CephRgw;
let proxy: FaultProxy;
let s3: S3Client;
let sdk: typeof import('@aws-sdk/client-s3');
const made: string[] = [];
const timings: string[] = [];

/**
 * prepare: concatenates the S3 dataset (read from its local copy) into a features file.
 * train: writes a 20 MB model derived from the features (multipart: over the 8 MiB part size) and metrics.
 */
const SPEC = `apiVersion: mlpipeline/v1
name: s3-churn
datasets:
  raw: {uri: ${DATASET}}
storage:
  artifacts: ${ARTIFACTS}
steps:
  prepare:
    command: mkdir -p out && cat \${datasets.raw}a.csv \${datasets.raw}sub/b.csv > \${outputs.features}
    outputs: {features: out/features.csv}
  train:
    command: >-
      n=$(wc -c < \${steps.prepare.outputs.features}) &&
      sum=$(cksum < \${steps.prepare.outputs.features} | cut -d' ' -f1) &&
      yes "model trained on features $sum" | head -c 20000000 > \${outputs.model} &&
      echo "{\\"bytes\\": $n}" > out/metrics.json
    outputs: {model: out/model.bin}
    metrics: out/metrics.json
`;

/** A workspace with the spec; a `variant` makes both steps' outputs new bytes (not yet in the store). */
function workspace(variant?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mlp-s3-pipeline-'));
  made.push(dir);
  const spec = variant ? SPEC.replace('> ${outputs.features}', `> \${outputs.features} && echo ${variant} >> \${outputs.features}`) : SPEC;
  writeFileSync(join(dir, 'mlpipeline.yaml'), spec);
  return dir;
}

function s3Options(extra: S3StoreOptions = {}): S3StoreOptions {
  return { endpoint: proxy.url, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey }, ...extra };
}

async function run(dir: string, s3opts: S3StoreOptions = s3Options()) {
  const specPath = join(dir, 'mlpipeline.yaml');
  const text = readFileSync(specPath, 'utf8');
  const planned = planRun(analyzeSpec(text));
  assert.ok(planned.ok, planned.ok ? '' : planned.errors.join('\n'));
  const events: EngineEvent[] = [];
  const n = proxy.requests.length;
  const t = performance.now();
  const result = await runPlan({ specPath, specText: text, plan: planned.plan, s3: s3opts, onEvent: (e) => events.push(e) });
  const ms = Math.round(performance.now() - t);
  const statuses = Object.fromEntries(Object.entries(result.record.steps).map(([k, v]) => [k, v.status]));
  return { ...result, events, steps: result.record.steps, statuses, requests: proxy.requests.slice(n), ms };
}

const writes = (reqs: FaultProxy['requests']): FaultProxy['requests'] => reqs.filter((q) => q.method === 'PUT' || q.method === 'POST' || q.method === 'DELETE');
const putObject = (key: string, body: string): Promise<unknown> => s3.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
const stepLog = (dir: string, runId: string, step: string): string => readFileSync(join(dir, '.mlpipeline', 'runs', runId, 'logs', `${step}.log`), 'utf8');

before(async () => {
  rgw = await startCephRgw();
  timings.push(`RGW ready in ${rgw.startMs} ms`);
  proxy = await startFaultProxy({ upstream: rgw.endpoint });
  sdk = await import('@aws-sdk/client-s3');
  s3 = new sdk.S3Client({ endpoint: rgw.endpoint, region: rgw.region, forcePathStyle: true, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  await s3.send(new sdk.CreateBucketCommand({ Bucket: BUCKET }));
  await putObject('datasets/raw/a.csv', 'id,churn\n1,0\n2,1\n');
  await putObject('datasets/raw/sub/b.csv', '3,0\n');
});

after(async () => {
  s3?.destroy();
  await proxy?.stop();
  await rgw?.stop();
  made.forEach((d) => rmSync(d, { recursive: true, force: true }));
  console.log(`# timings: ${timings.join('; ')}`);
});

describe('pipeline with an S3 dataset and S3 artifacts (Ceph RGW)', () => {
  const dir = workspace();
  let first: Awaited<ReturnType<typeof run>>;

  it('first run: downloads the dataset, uploads outputs (multipart above the part size), records URIs and checksums', async () => {
    first = await run(dir);
    timings.push(`first run ${first.ms} ms`);
    assert.equal(first.status, 'succeeded', `${first.record.error}\n${stepLog(dir, first.runId, 'prepare')}\n${stepLog(dir, first.runId, 'train')}`);
    assert.deepEqual(first.statuses, { prepare: 'succeeded', train: 'succeeded' });
    // The local step read the dataset's verified local copy.
    assert.equal(readFileSync(join(dir, 'out/features.csv'), 'utf8'), 'id,churn\n1,0\n2,1\n3,0\n');
    assert.match(first.steps.prepare.command, /cat \.mlpipeline\/datasets\/raw\/a\.csv/);

    const model = first.steps.train.outputs.model;
    assert.match(model.hash!, /^[0-9a-f]{64}$/);
    assert.equal(model.uri, `${ARTIFACTS}train/model/${model.hash}/model.bin`);
    assert.equal(first.steps.prepare.outputs.features.uri, `${ARTIFACTS}prepare/features/${first.steps.prepare.outputs.features.hash}/features.csv`);
    const parts = first.requests.filter((q) => q.method === 'PUT' && q.path.includes('/train/model/') && /partNumber=/.test(q.path));
    assert.equal(parts.length, 3, '20 MB in 8 MiB parts');
    const head = await s3.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key: `artifacts/churn/train/model/${model.hash}/model.bin` }));
    assert.equal(head.Metadata?.['mlp-sha256'], model.hash, 'the stored object carries the recorded checksum');
    assert.equal(head.ContentLength, 20_000_000);
    assert.match(stepLog(dir, first.runId, 'train'), /Stored output `model` at s3:\/\/.*sha256 verified/);

    // The lock pins the remote dataset's hash and the outputs' URIs.
    const lock = readLock(join(dir, 'mlpipeline.lock'))!;
    assert.equal(lock.datasets.raw.uri, DATASET);
    assert.match(lock.datasets.raw.hash, /^[0-9a-f]{64}$/);
    assert.deepEqual([lock.datasets.raw.files, lock.datasets.raw.bytes], [2, 21]);
    assert.equal(lock.steps.prepare.inputs[DATASET], lock.datasets.raw.hash);
    assert.equal(lock.steps.train.outputs.model.uri, model.uri);
    assert.match(readFileSync(join(dir, 'mlpipeline.lock'), 'utf8'), /uri: s3:\/\/mlp-pipeline-test\/artifacts\/churn\/train\/model\//);
  });

  it('second run: cached, nothing uploaded, stored copies checked', async () => {
    const second = await run(dir);
    timings.push(`cached run ${second.ms} ms`);
    assert.deepEqual(second.statuses, { prepare: 'cached', train: 'cached' });
    assert.deepEqual(writes(second.requests), [], 'no upload on a cached run');
    assert.ok(second.requests.some((q) => q.method === 'HEAD' && q.path.includes('/train/model/')), 'the stored model was checked');
    assert.equal(second.steps.train.outputs.model.uri, first.steps.train.outputs.model.uri);
  });

  it('an output deleted locally but intact in S3 is fetched back, verified, and the step stays cached', async () => {
    const model = first.steps.train.outputs.model;
    rmSync(join(dir, 'out/model.bin'));
    const r = await run(dir);
    assert.deepEqual(r.statuses, { prepare: 'cached', train: 'cached' });
    assert.ok(r.requests.some((q) => q.method === 'GET' && q.path.includes(`/train/model/${model.hash}/model.bin`)), 'downloaded from the store');
    assert.deepEqual(writes(r.requests), []);
    assert.equal(createHash('sha256').update(readFileSync(join(dir, 'out/model.bin'))).digest('hex'), model.hash);
    assert.match(stepLog(dir, r.runId, 'train'), /Restored output `model` \(out\/model.bin\) from s3:\/\/.*sha256 verified/);
  });

  it('a stored output that disappeared from S3 makes its step run again and upload it again', async () => {
    const model = first.steps.train.outputs.model;
    await s3.send(new sdk.DeleteObjectCommand({ Bucket: BUCKET, Key: `artifacts/churn/train/model/${model.hash}/model.bin` }));
    const r = await run(dir);
    assert.deepEqual(r.statuses, { prepare: 'cached', train: 'succeeded' });
    assert.ok(writes(r.requests).some((q) => q.path.includes('/train/model/')));
    assert.equal(await new S3ArtifactStore(ARTIFACTS, s3Options()).verify({ step: 'train', output: 'model', hash: model.hash! }), true);
  });

  it('changing the remote dataset invalidates the cache; the lock pins the new hash', async () => {
    const before = readLock(join(dir, 'mlpipeline.lock'))!;
    await putObject('datasets/raw/sub/b.csv', '3,0\n4,1\n');
    const r = await run(dir);
    assert.deepEqual(r.statuses, { prepare: 'succeeded', train: 'succeeded' });
    assert.equal(readFileSync(join(dir, 'out/features.csv'), 'utf8'), 'id,churn\n1,0\n2,1\n3,0\n4,1\n');
    const lock = readLock(join(dir, 'mlpipeline.lock'))!;
    assert.notEqual(lock.datasets.raw.hash, before.datasets.raw.hash);
    assert.equal(lock.steps.prepare.inputs[DATASET], lock.datasets.raw.hash);
    assert.notEqual(lock.steps.train.outputs.model.hash, before.steps.train.outputs.model.hash);
    assert.deepEqual(r.steps.train.metrics, { bytes: 25 });
  });

  it('a wrong secret key fails the run with a clear error and records no output', async () => {
    const fresh = workspace();
    const wrong = 'wrong-secret-key-wrong-secret-key-0000';
    const r = await run(fresh, s3Options({ credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: wrong }, maxAttempts: 1 }));
    assert.equal(r.status, 'failed');
    assert.match(r.record.error ?? '', /Could not read dataset `raw`: .*secret access key does not match the access key id/);
    assert.deepEqual(r.statuses, { prepare: 'skipped', train: 'skipped' });
    const recorded = readFileSync(join(fresh, '.mlpipeline', 'runs', r.runId, 'run.json'), 'utf8');
    assert.ok(!recorded.includes(wrong), 'the secret is not in the run record');
  });
});

describe('pipeline artifacts under injected faults', () => {
  it('500s, a 429 with Retry-After and a reset mid-upload: the run succeeds after retries, every stored output verifies', async () => {
    const dir = workspace('fault-run');
    const rules = [
      proxy.inject({ method: 'PUT', path: /\/train\/model\/.*partNumber=1&/, times: 2, action: { type: 'respond', status: 500, body: '<Error><Code>InternalError</Code></Error>' } }),
      proxy.inject({ method: 'PUT', path: /\/train\/model\/.*partNumber=2&/, times: 1, action: { type: 'reset', afterRequestBytes: 3 * 1024 * 1024 } }),
      proxy.inject({ method: 'PUT', path: /\/prepare\/features\/[0-9a-f]{64}\/features\.csv(\?|$)/, times: 1, action: { type: 'respond', status: 429, headers: { 'retry-after': '1' }, body: '<Error><Code>SlowDown</Code></Error>' } }),
    ];
    let r: Awaited<ReturnType<typeof run>>;
    try {
      r = await run(dir);
    } finally {
      proxy.clear();
    }
    timings.push(`faulty run ${r.ms} ms`);
    assert.deepEqual(rules.map((x) => x.applied), [2, 1, 1], 'every fault fired');
    assert.equal(r.status, 'succeeded', JSON.stringify(r.steps, null, 1));
    const store = new S3ArtifactStore(ARTIFACTS, s3Options());
    for (const [step, output] of [['prepare', 'features'], ['train', 'model']]) {
      const o = r.steps[step].outputs[output];
      assert.ok(o.uri, `${step}.${output} recorded with its URI`);
      assert.equal(await store.verify({ step, output, hash: o.hash! }), true);
    }
  });

  it('a store that keeps failing fails the step clearly; nothing is cached, so the next run uploads', async () => {
    const dir = workspace('store-down'); // new bytes, so the uploads must happen
    proxy.inject({ method: 'PUT', path: /\/train\/model\//, action: { type: 'respond', status: 503, body: '<Error><Code>ServiceUnavailable</Code></Error>' } });
    let r: Awaited<ReturnType<typeof run>>;
    try {
      r = await run(dir, s3Options({ maxAttempts: 2 }));
    } finally {
      proxy.clear();
    }
    assert.equal(r.status, 'failed');
    assert.equal(r.statuses.train, 'failed');
    assert.match(r.steps.train.error ?? '', /succeeded, but its output `model` could not be stored in s3:\/\/.*HTTP 503.*not cached/);
    assert.equal(r.steps.train.outputs.model.uri, undefined, 'no URI recorded for an output that was not stored');
    const lock = readLock(join(dir, 'mlpipeline.lock'))!;
    assert.equal(lock.steps.train, undefined, 'the lock has no entry for the failed step');
    const cache = new StepCache(join(dir, '.mlpipeline', 'cache', 'steps'));
    assert.equal(await cache.lookup(r.steps.train.cacheKey!), undefined, 'no cache entry');
    const open = await s3.send(new sdk.ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'artifacts/churn/train/model/' }));
    assert.deepEqual(open.Uploads ?? [], [], 'the failed multipart upload was aborted');

    const again = await run(dir);
    assert.deepEqual(again.statuses, { prepare: 'cached', train: 'succeeded' });
    assert.ok(again.steps.train.outputs.model.uri);
  });

  it('a body corrupted in transit is never recorded as a stored output', async () => {
    const dir = workspace('corrupted');
    proxy.inject({ method: 'PUT', path: /\/train\/model\/.*partNumber=2&/, action: { type: 'corrupt', target: 'request', atByte: 12345 } });
    let r: Awaited<ReturnType<typeof run>>;
    try {
      r = await run(dir);
    } finally {
      proxy.clear();
    }
    assert.equal(r.statuses.train, 'failed');
    assert.match(r.steps.train.error ?? '', /BadDigest|HTTP 400/);
    const hash = r.steps.train.outputs.model.hash!;
    assert.equal(await new S3ArtifactStore(ARTIFACTS, s3Options()).verify({ step: 'train', output: 'model', hash }), false);
  });
});

describe('the CLI with S3 settings from the environment', () => {
  it('`mlpipeline run` uses MLP_S3_ENDPOINT and the AWS_* credentials, and is cached the second time', async () => {
    const dir = workspace();
    const env: NodeJS.ProcessEnv = { ...process.env, MLP_S3_ENDPOINT: proxy.url, AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey, AWS_REGION: 'us-east-1' };
    delete env.AWS_PROFILE;
    const cli = (): Promise<{ code: number; out: string }> =>
      new Promise((resolve) => {
        execFile(process.execPath, [join(__dirname, '..', '..', 'bin', 'mlpipeline.js'), 'run', join(dir, 'mlpipeline.yaml')], { env, cwd: dir, timeout: 120_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }));
      });
    const one = await cli();
    assert.equal(one.code, 0, one.out);
    const lock = readLock(join(dir, 'mlpipeline.lock'))!;
    assert.match(lock.steps.train.outputs.model.uri ?? '', /^s3:\/\/mlp-pipeline-test\/artifacts\/churn\/train\/model\//);
    const n = proxy.requests.length;
    const two = await cli();
    assert.equal(two.code, 0, two.out);
    assert.match(two.out, /cached/i);
    assert.deepEqual(writes(proxy.requests.slice(n)), []);
  });
});
