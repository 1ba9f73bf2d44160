/**
 * The S3 artifact store and S3 datasets against a real Ceph RADOS Gateway (real SigV4, real multipart),
 * with the fault proxy in front for 500s, 429 + Retry-After, connection resets mid-upload and corrupted
 * bytes. Needs `bash test/infra/install-ceph-rgw.sh`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { ChecksumMismatchError, hashS3Dataset, materializeS3Dataset, S3ArtifactStore, StorageError, type S3StoreOptions } from '../../client/src/runtime/artifacts';
import { ContentHasher } from '../../client/src/runtime/hashing';
import { startCephRgw, type CephRgw } from '../helpers/ceph-rgw';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';

const MiB = 1024 * 1024;
const BUCKET = 'mlp-store-test';
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

let rgw: CephRgw;
let proxy: FaultProxy;
let s3: S3Client;
let sdk: typeof import('@aws-sdk/client-s3');
let dir: string;
const timings: string[] = [];

/** A store talking through the fault proxy (or directly), with small parts so multipart is cheap to test. */
function store(prefix: string, extra: S3StoreOptions = {}): S3ArtifactStore {
  return new S3ArtifactStore(`s3://${BUCKET}/${prefix}/`, { endpoint: proxy.url, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey }, partSizeBytes: 5 * MiB, ...extra });
}

function file(name: string, data: Buffer | string): string {
  const p = join(dir, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, data);
  return p;
}

async function exists(key: string): Promise<boolean> {
  try {
    await s3.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    return true;
  } catch {
    return false;
  }
}

async function keysUnder(prefix: string): Promise<string[]> {
  const r = await s3.send(new sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}

const since = (n: number): typeof proxy.requests => proxy.requests.slice(n);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mlp-s3-store-'));
  rgw = await startCephRgw();
  timings.push(`RGW ready in ${rgw.startMs} ms`);
  proxy = await startFaultProxy({ upstream: rgw.endpoint });
  sdk = await import('@aws-sdk/client-s3');
  s3 = new sdk.S3Client({ endpoint: rgw.endpoint, region: rgw.region, forcePathStyle: true, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  const t = performance.now();
  await s3.send(new sdk.CreateBucketCommand({ Bucket: BUCKET }));
  timings.push(`first CreateBucket ${Math.round(performance.now() - t)} ms`);
});

after(async () => {
  s3?.destroy();
  await proxy?.stop();
  await rgw?.stop();
  rmSync(dir, { recursive: true, force: true });
  console.log(`# timings: ${timings.join('; ')}`);
});

describe('S3 artifact store on Ceph RGW', () => {
  it('stores a small file with one verified PUT, and does not send it again', async () => {
    const data = Buffer.from('model bytes\n'.repeat(100));
    const p = file('small/model.pkl', data);
    const st = store('a');
    const id = { step: 'train', output: 'model', hash: sha256(data) };
    const n = proxy.requests.length;
    const t = performance.now();
    const r = await st.put(p, id);
    timings.push(`first PutObject path ${Math.round(performance.now() - t)} ms`);
    assert.equal(r.uploaded, true);
    assert.equal(r.uri, `s3://${BUCKET}/a/train/model/${id.hash}/model.pkl`);
    assert.equal(r.manifestUri, `s3://${BUCKET}/a/train/model/${id.hash}.manifest.json`);
    const head = await s3.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key: `a/train/model/${id.hash}/model.pkl` }));
    assert.equal(head.Metadata?.['mlp-sha256'], id.hash);
    assert.equal(head.ContentLength, data.length);
    assert.ok(since(n).some((q) => q.method === 'PUT' && q.path.startsWith(`/${BUCKET}/a/train/model/${id.hash}/model.pkl`)));

    const m = proxy.requests.length;
    const again = await st.put(p, id);
    assert.equal(again.uploaded, false);
    assert.deepEqual(since(m).filter((q) => q.method === 'PUT' || q.method === 'POST'), [], 'nothing sent the second time');
    assert.equal(await st.verify(id), true);

    const back = join(dir, 'back/model.pkl');
    await st.fetch(id, back);
    assert.deepEqual(readFileSync(back), data);
  });

  it('uploads a file over the part size as a multipart upload and checks the composite ETag without reading it back', async () => {
    const data = randomBytes(12 * MiB + 123);
    const p = file('big/weights.bin', data);
    const id = { step: 'train', output: 'weights', hash: sha256(data) };
    const n = proxy.requests.length;
    const t = performance.now();
    const r = await store('a').put(p, id);
    timings.push(`12 MiB multipart put ${Math.round(performance.now() - t)} ms`);
    assert.equal(r.uploaded, true);
    const reqs = since(n);
    const parts = reqs.filter((q) => q.method === 'PUT' && /partNumber=\d+/.test(q.path));
    assert.equal(parts.length, 3, 'three 5 MiB parts');
    assert.ok(reqs.some((q) => q.method === 'POST' && /\?uploads/.test(q.path)), 'CreateMultipartUpload');
    assert.ok(reqs.some((q) => q.method === 'POST' && /uploadId=/.test(q.path)), 'CompleteMultipartUpload');
    assert.ok(!reqs.some((q) => q.method === 'GET' && q.path.includes('weights.bin')), 'the MD5-of-MD5s ETag matched, so no verification download');
    const head = await s3.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key: `a/train/weights/${id.hash}/weights.bin` }));
    assert.match(head.ETag ?? '', /-3"$/);
    const back = join(dir, 'back/weights.bin');
    await store('a').fetch(id, back);
    assert.equal(sha256(readFileSync(back)), id.hash);
  });

  it('round-trips 64 MiB with the default 8 MiB parts (timings reported)', async () => {
    const data = randomBytes(64 * MiB);
    const p = file('bench/big.bin', data);
    const id = { step: 'bench', output: 'big', hash: sha256(data) };
    const st = store('bench', { partSizeBytes: undefined });
    let t = performance.now();
    const r = await st.put(p, id);
    const putMs = performance.now() - t;
    assert.equal(r.bytes, 64 * MiB);
    t = performance.now();
    await st.fetch(id, join(dir, 'bench/back.bin'));
    const getMs = performance.now() - t;
    assert.equal(sha256(readFileSync(join(dir, 'bench/back.bin'))), id.hash);
    timings.push(`64 MiB put ${Math.round(putMs)} ms (${(64 / (putMs / 1000)).toFixed(0)} MiB/s, 8 parts), fetch ${Math.round(getMs)} ms (${(64 / (getMs / 1000)).toFixed(0)} MiB/s)`);
    rmSync(join(dir, 'bench'), { recursive: true, force: true });
  });

  it('stores a folder under its manifest hash; verify fails once an object is deleted or overwritten', async () => {
    const folder = join(dir, 'ws/features');
    file('ws/features/part-0.csv', 'a,b\n1,2\n');
    file('ws/features/sub/part-1.csv', 'a,b\n3,4\n');
    const hash = (await new ContentHasher({ root: join(dir, 'ws') }).hashPath('features')).hash;
    const st = store('a');
    const id = { step: 'prepare', output: 'features', hash };
    const r = await st.put(folder, id);
    assert.equal(r.kind, 'dir');
    assert.equal(r.files, 2);
    assert.equal(r.uri, `s3://${BUCKET}/a/prepare/features/${hash}/`);
    assert.deepEqual(await keysUnder(`a/prepare/features/${hash}`), [`a/prepare/features/${hash}.manifest.json`, `a/prepare/features/${hash}/part-0.csv`, `a/prepare/features/${hash}/sub/part-1.csv`]);
    assert.equal(await st.verify(id), true);

    await s3.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: `a/prepare/features/${hash}/sub/part-1.csv`, Body: 'a,b\n9,9\n' }));
    assert.equal(await st.verify(id), false, 'an overwritten object no longer verifies');
    await assert.rejects(st.fetch(id, join(dir, 'back/features')), ChecksumMismatchError);

    const again = await st.put(folder, id);
    assert.equal(again.uploaded, true, 'a broken artifact is uploaded again');
    assert.equal(await st.verify(id), true);
    await s3.send(new sdk.DeleteObjectCommand({ Bucket: BUCKET, Key: `a/prepare/features/${hash}/part-0.csv` }));
    assert.equal(await st.verify(id), false, 'a deleted object no longer verifies');
  });

  it('refuses bytes that do not match the content hash: nothing recorded, nothing left behind', async () => {
    const p = file('wrong/model.pkl', 'these are not the bytes that were hashed');
    const id = { step: 'train', output: 'model', hash: sha256('other bytes') };
    await assert.rejects(store('w').put(p, id), (e: Error) => e instanceof ChecksumMismatchError && /did something change it/.test(e.message));
    assert.deepEqual(await keysUnder('w/'), []);
    assert.equal(await store('w').verify(id), false);
  });
});

describe('S3 artifact store under injected faults', () => {
  it('retries 500s on a part and completes a verified upload', async () => {
    const data = randomBytes(11 * MiB);
    const p = file('f500/m.bin', data);
    const id = { step: 's', output: 'o', hash: sha256(data) };
    const rule = proxy.inject({ method: 'PUT', path: /partNumber=2&/, times: 2, action: { type: 'respond', status: 500, body: '<Error><Code>InternalError</Code></Error>' } });
    try {
      const r = await store('faults').put(p, id);
      assert.equal(r.uploaded, true);
    } finally {
      proxy.clear();
    }
    assert.equal(rule.applied, 2);
    assert.equal(await store('faults').verify(id), true);
  });

  it('waits for Retry-After on 429 before retrying', async () => {
    const data = Buffer.from('throttled\n');
    const p = file('f429/m.txt', data);
    const id = { step: 's', output: 'throttled', hash: sha256(data) };
    const rule = proxy.inject({ method: 'PUT', path: `/${BUCKET}/faults/s/throttled/`, times: 1, action: { type: 'respond', status: 429, headers: { 'retry-after': '2' }, body: '<Error><Code>SlowDown</Code></Error>' } });
    const t = performance.now();
    try {
      await store('faults').put(p, id);
    } finally {
      proxy.clear();
    }
    const waited = performance.now() - t;
    timings.push(`429 + Retry-After: 2 -> put took ${Math.round(waited)} ms`);
    assert.equal(rule.applied, 1);
    assert.ok(waited >= 1900, `waited ${Math.round(waited)} ms, Retry-After said 2 s`);
    assert.equal(await store('faults').verify(id), true);
  });

  it('survives a connection reset in the middle of a part upload', async () => {
    const data = randomBytes(11 * MiB);
    const p = file('freset/m.bin', data);
    const id = { step: 's', output: 'reset', hash: sha256(data) };
    const rule = proxy.inject({ method: 'PUT', path: /partNumber=1&/, times: 1, action: { type: 'reset', afterRequestBytes: 2 * MiB } });
    try {
      await store('faults').put(p, id);
    } finally {
      proxy.clear();
    }
    assert.equal(rule.applied, 1);
    const reset = proxy.requests.find((q) => q.fault === 'reset')!;
    assert.ok(reset.requestBytes >= 2 * MiB && reset.requestBytes < 5 * MiB, `reset after ${reset.requestBytes} bytes`);
    const back = join(dir, 'back/reset.bin');
    await store('faults').fetch(id, back);
    assert.equal(sha256(readFileSync(back)), id.hash);
  });

  it('a body corrupted on the way is rejected by Content-MD5 and never recorded', async () => {
    const data = randomBytes(64 * 1024);
    const p = file('fcorrupt/m.bin', data);
    const id = { step: 's', output: 'corrupt', hash: sha256(data) };
    proxy.inject({ method: 'PUT', path: `/${BUCKET}/faults/s/corrupt/`, action: { type: 'corrupt', target: 'request', atByte: 1000 } });
    try {
      await assert.rejects(store('faults').put(p, id), (e: Error) => e instanceof StorageError && /BadDigest|Content-MD5|HTTP 400/i.test(e.message));
    } finally {
      proxy.clear();
    }
    assert.equal(await exists(`faults/s/corrupt/${id.hash}.manifest.json`), false);
    assert.equal(await store('faults').verify(id), false);
  });

  it('gives up on a server that keeps failing with a clear error, aborts the multipart upload, records nothing', async () => {
    const data = randomBytes(11 * MiB);
    const p = file('fdown/m.bin', data);
    const id = { step: 's', output: 'down', hash: sha256(data) };
    proxy.inject({ method: 'PUT', path: /partNumber=2&/, action: { type: 'respond', status: 503, body: '<Error><Code>ServiceUnavailable</Code></Error>' } });
    try {
      await assert.rejects(store('faults', { maxAttempts: 3 }).put(p, id), (e: Error) => {
        assert.ok(e instanceof StorageError, String(e));
        assert.match(e.message, /part 2 of 3/);
        assert.match(e.message, /HTTP 503/);
        assert.match(e.message, /after 3 attempts/);
        return true;
      });
    } finally {
      proxy.clear();
    }
    assert.equal(await exists(`faults/s/down/${id.hash}.manifest.json`), false);
    const open = await s3.send(new sdk.ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'faults/s/down/' }));
    assert.deepEqual(open.Uploads ?? [], [], 'the failed upload was aborted');
  });

  it('a download corrupted or cut on the way fails verification and is retried; a persistent corruption fails clearly', async () => {
    const data = Buffer.from('x'.repeat(50_000));
    const p = file('fdl/m.txt', data);
    const id = { step: 's', output: 'dl', hash: sha256(data) };
    await store('faults').put(p, id);
    const key = `/${BUCKET}/faults/s/dl/${id.hash}/m.txt`;
    proxy.inject({ method: 'GET', path: key, times: 1, action: { type: 'corrupt', target: 'response', atByte: 10 } });
    await store('faults').fetch(id, join(dir, 'back/dl1.txt'));
    assert.deepEqual(readFileSync(join(dir, 'back/dl1.txt')), data);
    proxy.clear();
    // A download cut halfway (a dropped connection) is retried too.
    const cut = proxy.inject({ method: 'GET', path: key, times: 1, action: { type: 'cut', afterBytes: 20_000 } });
    await store('faults').fetch(id, join(dir, 'back/dl-cut.txt'));
    assert.equal(cut.applied, 1);
    assert.deepEqual(readFileSync(join(dir, 'back/dl-cut.txt')), data);
    proxy.clear();
    proxy.inject({ method: 'GET', path: key, action: { type: 'corrupt', target: 'response', atByte: 10 } });
    try {
      await assert.rejects(store('faults', { maxAttempts: 2 }).fetch(id, join(dir, 'back/dl2.txt')), ChecksumMismatchError);
    } finally {
      proxy.clear();
    }
    assert.throws(() => readFileSync(join(dir, 'back/dl2.txt')), /ENOENT/, 'no unverified file left at the destination');
  });
});

describe('outputs uploaded by a remote step (the Kubernetes contract)', () => {
  it('adopts a staged folder and a staged file into the content-addressed layout, verified, and clears the staging prefix', async () => {
    const runs = 'a/train/report/runs/20261125-000000-abcdef/';
    await s3.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: `${runs}index.html`, Body: '<h1>report</h1>' }));
    await s3.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: `${runs}img/roc.svg`, Body: '<svg/>' }));
    const ws = join(dir, 'adopt-ws');
    const r = await store('a').adopt(`s3://${BUCKET}/${runs}`, { step: 'train', output: 'report', kind: 'dir' }, join(ws, 'out/report'));
    const hash = (await new ContentHasher({ root: ws }).hashPath('out/report')).hash;
    assert.equal(r.hash, hash, 'the same hash the engine takes of a local output');
    assert.equal(r.uri, `s3://${BUCKET}/a/train/report/${hash}/`);
    assert.equal(readFileSync(join(ws, 'out/report/img/roc.svg'), 'utf8'), '<svg/>');
    assert.equal(await store('a').verify({ step: 'train', output: 'report', hash }), true);
    assert.deepEqual(await keysUnder(runs), [], 'staging prefix cleared');

    const fileRuns = 'a/train/model/runs/20261125-000000-abcdef/';
    await s3.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: `${fileRuns}model.pkl`, Body: 'remote weights' }));
    const m = await store('a').adopt(`s3://${BUCKET}/${fileRuns}`, { step: 'train', output: 'model', kind: 'file' }, join(ws, 'models/model.pkl'));
    assert.equal(m.hash, sha256('remote weights'));
    assert.equal(readFileSync(join(ws, 'models/model.pkl'), 'utf8'), 'remote weights');
    assert.equal(await store('a').verify({ step: 'train', output: 'model', hash: m.hash }), true);
  });

  it('says clearly when the remote step uploaded nothing, or several objects for a file output', async () => {
    await assert.rejects(store('a').adopt(`s3://${BUCKET}/a/s/o/runs/none/`, { step: 's', output: 'o', kind: 'dir' }, join(dir, 'adopt-none')), /did not upload its output `o`/);
    await s3.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: 'a/s/f/runs/two/a', Body: 'a' }));
    await s3.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: 'a/s/f/runs/two/b', Body: 'b' }));
    await assert.rejects(store('a').adopt(`s3://${BUCKET}/a/s/f/runs/two/`, { step: 's', output: 'f', kind: 'file' }, join(dir, 'adopt-two')), /is a file, but .* holds 2 objects/);
  });
});

describe('S3 credentials and endpoints', () => {
  it('a wrong secret key gives a clear error that never shows the secret', async () => {
    const wrong = 'definitely-not-the-right-secret-key-000';
    const st = new S3ArtifactStore(`s3://${BUCKET}/creds/`, { endpoint: rgw.endpoint, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: wrong } });
    const p = file('creds/x.txt', 'x');
    await assert.rejects(st.put(p, { step: 's', output: 'o', hash: sha256('x') }), (e: Error) => {
      assert.ok(e instanceof StorageError);
      assert.match(e.message, /secret access key does not match/);
      assert.match(e.message, /AWS_SECRET_ACCESS_KEY/);
      assert.ok(!e.message.includes(wrong) && !e.message.includes(rgw.secretAccessKey));
      return true;
    });
  });

  it('uses the standard credential chain with AWS_PROFILE, and MLP_S3_ENDPOINT for the endpoint', async () => {
    const aws = join(dir, 'aws');
    mkdirSync(aws, { recursive: true });
    writeFileSync(join(aws, 'credentials'), `[default]\naws_access_key_id = WRONGDEFAULT\naws_secret_access_key = wrong\n\n[mlp-test]\naws_access_key_id = ${rgw.accessKeyId}\naws_secret_access_key = ${rgw.secretAccessKey}\n`);
    writeFileSync(join(aws, 'config'), '[profile mlp-test]\nregion = us-east-1\n');
    const saved = { ...process.env };
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL_S3', 'AWS_REGION']) delete process.env[k];
    Object.assign(process.env, { AWS_SHARED_CREDENTIALS_FILE: join(aws, 'credentials'), AWS_CONFIG_FILE: join(aws, 'config'), AWS_PROFILE: 'mlp-test', MLP_S3_ENDPOINT: rgw.endpoint });
    try {
      const st = new S3ArtifactStore(`s3://${BUCKET}/profile/`);
      assert.equal(st.options.endpoint, rgw.endpoint);
      assert.equal(st.options.forcePathStyle, true);
      const p = file('profile/x.txt', 'via profile');
      const r = await st.put(p, { step: 's', output: 'o', hash: sha256('via profile') });
      assert.equal(r.uploaded, true);
      // The default profile has wrong keys: the named profile is what made it work.
      const viaDefault = new S3ArtifactStore(`s3://${BUCKET}/profile/`, { profile: 'default' });
      await assert.rejects(viaDefault.verify({ step: 's', output: 'o', hash: sha256('via profile') }), /does not know the access key id/);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  it('an unreachable endpoint is named in the error', async () => {
    const st = new S3ArtifactStore(`s3://${BUCKET}/x/`, { endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 });
    await assert.rejects(st.verify({ step: 's', output: 'o', hash: sha256('') }), /Cannot reach S3 at http:\/\/127\.0\.0\.1:9.*MLP_S3_ENDPOINT/s);
  });
});

describe('S3 datasets', () => {
  const opts = (): S3StoreOptions => ({ endpoint: proxy.url, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey } });
  const put = (key: string, body: string): Promise<unknown> => s3.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));

  it('hashes a prefix by its listing: stable, and changed by an edit, an added object or a removed one', async () => {
    await put('data/raw/a.csv', 'a\n1\n');
    await put('data/raw/sub/b.csv', 'b\n2\n');
    await put('data/raw-other/c.csv', 'not in the dataset');
    const first = await hashS3Dataset(`s3://${BUCKET}/data/raw/`, opts());
    assert.deepEqual([first.kind, first.files, first.bytes], ['dir', 2, 8]);
    assert.deepEqual(first.objects.map((o) => o.rel).sort(), ['a.csv', 'sub/b.csv']);
    assert.equal((await hashS3Dataset(`s3://${BUCKET}/data/raw/`, opts())).hash, first.hash);

    await put('data/raw/sub/b.csv', 'b\n3\n'); // same size, other bytes
    const edited = await hashS3Dataset(`s3://${BUCKET}/data/raw/`, opts());
    assert.notEqual(edited.hash, first.hash);
    await put('data/raw/c.csv', 'c\n');
    const added = await hashS3Dataset(`s3://${BUCKET}/data/raw/`, opts());
    assert.notEqual(added.hash, edited.hash);
    await s3.send(new sdk.DeleteObjectCommand({ Bucket: BUCKET, Key: 'data/raw/c.csv' }));
    assert.equal((await hashS3Dataset(`s3://${BUCKET}/data/raw/`, opts())).hash, edited.hash, 'removing it restores the hash');
  });

  it('pages through listings longer than one page', async () => {
    await Promise.all(Array.from({ length: 1005 }, (_, i) => put(`data/many/f${String(i).padStart(4, '0')}.txt`, `${i}`)));
    const l = await hashS3Dataset(`s3://${BUCKET}/data/many/`, opts());
    assert.equal(l.files, 1005);
  });

  it('hashes a single object; a missing one or an empty prefix is a clear error', async () => {
    const one = await hashS3Dataset(`s3://${BUCKET}/data/raw/a.csv`, opts());
    assert.deepEqual([one.kind, one.files, one.objects[0].rel], ['file', 1, 'a.csv']);
    await assert.rejects(hashS3Dataset(`s3://${BUCKET}/data/nope.csv`, opts()), /does not exist\. If it is a folder \(a prefix\), end the URI with '\/'/);
    await assert.rejects(hashS3Dataset(`s3://${BUCKET}/data/nothing-here/`, opts()), /is empty or does not exist/);
    await assert.rejects(hashS3Dataset('s3://No_Such/x', opts()), /not an S3 URI/);
  });

  it('downloads a verified copy once and reuses it while the listing is unchanged', async () => {
    const dest = join(dir, 'ds/raw');
    const l = await hashS3Dataset(`s3://${BUCKET}/data/raw/`, opts());
    const first = await materializeS3Dataset(l, dest, opts());
    assert.equal(first.downloaded, true);
    assert.equal(readFileSync(join(dest, 'sub/b.csv'), 'utf8'), 'b\n3\n');
    const n = proxy.requests.length;
    assert.equal((await materializeS3Dataset(l, dest, opts())).downloaded, false);
    assert.equal(since(n).length, 0, 'no request when the copy is current');

    await put('data/raw/a.csv', 'a\n100\n');
    const changed = await hashS3Dataset(`s3://${BUCKET}/data/raw/`, opts());
    assert.equal((await materializeS3Dataset(changed, dest, opts())).downloaded, true);
    assert.equal(readFileSync(join(dest, 'a.csv'), 'utf8'), 'a\n100\n');
  });

  it('refuses an object that changed between listing and download (If-Match)', async () => {
    const l = await hashS3Dataset(`s3://${BUCKET}/data/raw/`, opts());
    await put('data/raw/a.csv', 'a\n200\n');
    await assert.rejects(materializeS3Dataset(l, join(dir, 'ds/stale'), opts()), /changed after it was listed/);
    assert.throws(() => readFileSync(join(dir, 'ds/stale/a.csv')), /ENOENT/);
  });
});
