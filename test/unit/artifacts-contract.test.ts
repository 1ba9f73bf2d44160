/**
 * The artifact-store pieces that need no server: S3 URI parsing, the listing hash of remote datasets, the
 * environment contract for remote steps, option resolution from the environment, error wording, the
 * planner's handling of `storage:` and S3 datasets, and that the AWS SDK is not loaded until used.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeS3Error, listingHash, parseS3Uri, remoteStepEnv, resolveS3Options, StorageError } from '../../client/src/runtime/artifacts';
import { envName } from '../../client/src/runtime/artifacts/contract';
import { joinKey } from '../../client/src/runtime/artifacts/s3-uri';
import { localDatasetPath, planRun } from '../../server/src/core/plan';
import { analyzeSpec } from '../../server/src/core/validate';

describe('s3:// URIs', () => {
  it('parses bucket and key, keeping a trailing slash as a prefix', () => {
    assert.deepEqual(parseS3Uri('s3://acme-ml/churn/raw/'), { bucket: 'acme-ml', key: 'churn/raw/' });
    assert.deepEqual(parseS3Uri('s3://acme-ml'), { bucket: 'acme-ml', key: '' });
    assert.deepEqual(parseS3Uri('s3://acme-ml/'), { bucket: 'acme-ml', key: '' });
    assert.deepEqual(parseS3Uri('s3://a.b-c/x.csv'), { bucket: 'a.b-c', key: 'x.csv' });
  });

  it('rejects bad bucket names and dot segments with a message that shows a valid URI', () => {
    for (const bad of ['s3://', 's3://Upper/x', 's3://ab/x', 'http://acme/x', 's3://acme_ml/x', `s3://${'a'.repeat(64)}/x`]) {
      assert.throws(() => parseS3Uri(bad), /not an S3 URI like s3:\/\/my-bucket\/path\//, bad);
    }
    assert.throws(() => parseS3Uri('s3://acme/a/../b'), /'\.' or '\.\.' segments/);
  });

  it('joins key segments with single slashes', () => {
    assert.equal(joinKey('a/', 'train', 'model', 'h'), 'a/train/model/h');
    assert.equal(joinKey('', 'train', 'x/'), 'train/x/');
    assert.equal(joinKey('root/', '/sub/'), 'root/sub/');
  });
});

describe('listing hash of an S3 dataset', () => {
  const objs = [
    { rel: 'b.csv', size: 4, etag: '11111111111111111111111111111111' },
    { rel: 'a.csv', size: 3, etag: '22222222222222222222222222222222-2' },
  ];
  it('does not depend on listing order', () => {
    assert.equal(listingHash(objs), listingHash([...objs].reverse()));
    assert.match(listingHash(objs), /^[0-9a-f]{64}$/);
  });
  it('changes with any key, size or ETag, and with an added or removed object', () => {
    const base = listingHash(objs);
    const variants = [
      [{ ...objs[0], rel: 'c.csv' }, objs[1]],
      [{ ...objs[0], size: 5 }, objs[1]],
      [{ ...objs[0], etag: '33333333333333333333333333333333' }, objs[1]],
      [objs[0]],
      [...objs, { rel: 'z', size: 0, etag: 'd41d8cd98f00b204e9800998ecf8427e' }],
    ];
    const hashes = new Set([base, ...variants.map((v) => listingHash(v))]);
    assert.equal(hashes.size, variants.length + 1);
  });
  it('cannot be confused by keys containing the separators', () => {
    assert.notEqual(listingHash([{ rel: 'a 1 x', size: 2, etag: 'e' }]), listingHash([{ rel: 'a', size: 1, etag: 'x 2 e' }]));
    assert.notEqual(listingHash([{ rel: 'a\n', size: 1, etag: 'e' }]), listingHash([{ rel: 'a', size: 1, etag: 'e' }]));
  });
});

describe('remote step environment contract', () => {
  it('names the artifacts root, datasets, upstream inputs and run-scoped output prefixes; never credentials', () => {
    const env = remoteStepEnv({
      artifacts: 's3://acme-ml/artifacts/churn/',
      runId: '20261125-130000-abcdef',
      step: 'train',
      outputs: { model: 'models/model.pkl', 'eval-report': 'out/report/' },
      datasets: { raw: 's3://acme-ml/churn/raw/' },
      upstream: { 'prepare.features': 's3://acme-ml/artifacts/churn/prepare/features/abc/' },
      endpoint: 'http://127.0.0.1:7480',
    });
    assert.deepEqual(env, {
      MLP_ARTIFACTS: 's3://acme-ml/artifacts/churn/',
      MLP_RUN_ID: '20261125-130000-abcdef',
      MLP_STEP: 'train',
      MLP_DATASET_RAW_URI: 's3://acme-ml/churn/raw/',
      MLP_INPUT_PREPARE_FEATURES_URI: 's3://acme-ml/artifacts/churn/prepare/features/abc/',
      MLP_OUTPUT_MODEL_PATH: 'models/model.pkl',
      MLP_OUTPUT_MODEL_URI: 's3://acme-ml/artifacts/churn/train/model/runs/20261125-130000-abcdef/',
      MLP_OUTPUT_EVAL_REPORT_PATH: 'out/report/',
      MLP_OUTPUT_EVAL_REPORT_URI: 's3://acme-ml/artifacts/churn/train/eval-report/runs/20261125-130000-abcdef/',
      MLP_OUTPUTS: JSON.stringify({ 'models/model.pkl': 's3://acme-ml/artifacts/churn/train/model/runs/20261125-130000-abcdef/', 'out/report/': 's3://acme-ml/artifacts/churn/train/eval-report/runs/20261125-130000-abcdef/' }),
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:7480',
    });
    assert.ok(!Object.keys(env).some((k) => /SECRET|ACCESS_KEY|TOKEN/.test(k)));
    assert.equal(envName('a-b.c'), 'A_B_C');
  });
});

describe('S3 options from the environment', () => {
  it('MLP_S3_ENDPOINT wins over AWS_ENDPOINT_URL_S3; an endpoint turns on path-style addressing', () => {
    const o = resolveS3Options({}, { MLP_S3_ENDPOINT: 'http://a:1', AWS_ENDPOINT_URL_S3: 'http://b:2', AWS_PROFILE: 'p', AWS_REGION: 'eu-west-1' });
    assert.deepEqual([o.endpoint, o.forcePathStyle, o.profile, o.region], ['http://a:1', true, 'p', 'eu-west-1']);
    assert.equal(resolveS3Options({}, { AWS_ENDPOINT_URL_S3: 'http://b:2' }).endpoint, 'http://b:2');
    assert.equal(resolveS3Options({}, { AWS_DEFAULT_REGION: 'us-west-2' }).region, 'us-west-2');
  });
  it('constructor options win over the environment; no endpoint means AWS with virtual-hosted addressing', () => {
    const o = resolveS3Options({ endpoint: 'http://c:3', profile: 'q', region: 'r' }, { MLP_S3_ENDPOINT: 'http://a:1', AWS_PROFILE: 'p', AWS_REGION: 'x' });
    assert.deepEqual([o.endpoint, o.profile, o.region], ['http://c:3', 'q', 'r']);
    const aws = resolveS3Options({}, {});
    assert.deepEqual([aws.endpoint, aws.forcePathStyle, aws.partSizeBytes, aws.maxAttempts], [undefined, false, 8 * 1024 * 1024, 5]);
  });
  it('refuses a part size below the S3 minimum of 5 MiB', () => {
    assert.throws(() => resolveS3Options({ partSizeBytes: 1024 }, {}), /at least 5 MiB/);
  });
});

describe('S3 errors in words a user can act on', () => {
  const sdkError = (name: string, status?: number, attempts?: number): Error => Object.assign(new Error(`${name} message`), { name, $metadata: { httpStatusCode: status, attempts } });
  it('names the fix for each kind of failure', () => {
    const cases: [Error, RegExp][] = [
      [sdkError('SignatureDoesNotMatch', 403), /secret access key does not match.*AWS_SECRET_ACCESS_KEY/],
      [sdkError('InvalidAccessKeyId', 403), /does not know the access key id.*AWS_ACCESS_KEY_ID/],
      [sdkError('AccessDenied', 403), /lack permission/],
      [sdkError('NoSuchBucket', 404), /bucket of s3:\/\/b\/k does not exist/],
      [sdkError('CredentialsProviderError'), /No AWS credentials found.*AWS_PROFILE/],
      [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), /Cannot reach S3 at http:\/\/e:1.*MLP_S3_ENDPOINT/],
      [sdkError("InternalError", 500, 5), /after 5 attempts.*HTTP 500 InternalError.*try again later/],
      [sdkError('SlowDown', 503, 5), /throttling/],
    ];
    for (const [e, re] of cases) {
      const d = describeS3Error(e, 'uploading', 's3://b/k', 'http://e:1');
      assert.ok(d instanceof StorageError);
      assert.match(d.message, re);
    }
  });
});

describe('planning storage and S3 datasets', () => {
  const spec = `apiVersion: mlpipeline/v1
name: t
datasets:
  raw: {uri: "s3://acme-ml/churn/raw/"}
  one: {uri: "s3://acme-ml/churn/holdout.csv"}
  local: {uri: data/x.csv}
compute:
  local: {type: local, default: true}
  k8s: {type: kubernetes, namespace: ml, image: "ghcr.io/acme/t:1"}
storage:
  artifacts: s3://acme-ml/artifacts/churn/
steps:
  here:
    command: python p.py \${datasets.raw} \${datasets.one} \${datasets.local}
  there:
    command: python p.py \${datasets.raw}
    compute: k8s
`;
  it('copies storage.artifacts into the plan', () => {
    const r = planRun(analyzeSpec(spec));
    assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
    assert.deepEqual(r.plan.storage, { artifacts: 's3://acme-ml/artifacts/churn/' });
  });
  it('a local step reads S3 datasets from their local copies; a Kubernetes step gets the URI', () => {
    const r = planRun(analyzeSpec(spec));
    assert.ok(r.ok);
    const [here, there] = r.plan.steps;
    assert.equal(here.command, 'python p.py .mlpipeline/datasets/raw/ .mlpipeline/datasets/one/holdout.csv data/x.csv');
    assert.equal(there.command, 'python p.py s3://acme-ml/churn/raw/');
    assert.deepEqual(here.inputs, ['data/x.csv'], 'S3 datasets are not workspace inputs (the engine hashes their listing)');
    assert.deepEqual(here.datasets.sort(), ['local', 'one', 'raw']);
  });
  it('has no storage when the spec has none', () => {
    const r = planRun(analyzeSpec('apiVersion: mlpipeline/v1\nname: t\nsteps:\n  a: {command: "true"}\n'));
    assert.ok(r.ok);
    assert.equal(r.plan.storage, undefined);
    assert.equal(localDatasetPath('d', 's3://b/k/'), '.mlpipeline/datasets/d/');
  });
});

describe('lazy loading', () => {
  it('importing the engine and the artifact stores does not load the AWS SDK', async () => {
    await import('../../client/src/runtime/engine');
    await import('../../client/src/runtime/artifacts');
    const loaded = Object.keys(require.cache).filter((p) => p.includes('@aws-sdk') || p.includes('@smithy'));
    assert.deepEqual(loaded, []);
  });
});
