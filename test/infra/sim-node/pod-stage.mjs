#!/usr/bin/env node
/**
 * The "step's own tooling" of a test pod: a small, real S3 client that does what the storage contract
 * (docs/storage.md, "Steps that run elsewhere") asks of a pod, the way `aws s3 cp` would in a real image.
 * The sim node runs pod commands on this machine, so a test step calls it as `node <this file> ...`.
 *
 *   in                 fetch every entry of MLP_INPUTS (path -> URI; a URI ending in / is a folder)
 *   get <uri> <path>   fetch one object, or every object under a prefix ending in / (a dataset)
 *   out                upload every entry of MLP_OUTPUTS (path -> prefix): a file to <prefix><name>,
 *                      a folder's files to <prefix><relative path>; each PUT carries Content-MD5 and the
 *                      file's sha256 as `x-amz-meta-mlp-sha256`, so the engine can verify what arrived
 *
 * Endpoint: AWS_ENDPOINT_URL_S3 (path-style); credentials: the AWS chain (the pod's env, from a Kubernetes
 * Secret). Prints one line per object; exits 1 with the reason on any failure.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

const endpoint = process.env.AWS_ENDPOINT_URL_S3;
const s3 = new S3Client({
  ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
  region: process.env.AWS_REGION ?? 'us-east-1',
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});

function parse(uri) {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri ?? '');
  if (!m) throw new Error(`not an s3:// URI: ${JSON.stringify(uri)}`);
  return { bucket: m[1], key: m[2] };
}

async function getObject(bucket, key, dest) {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  await fsp.mkdir(dirname(dest), { recursive: true });
  await pipeline(res.Body, createWriteStream(dest));
  console.log(`pod-stage: got s3://${bucket}/${key} -> ${dest}`);
}

async function get(uri, dest) {
  const { bucket, key } = parse(uri);
  if (!key.endsWith('/') && key !== '') return getObject(bucket, key, dest);
  let token;
  let n = 0;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      if (o.Key.endsWith('/')) continue;
      await getObject(bucket, o.Key, join(dest, ...o.Key.slice(key.length).split('/')));
      n++;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  if (!n) throw new Error(`nothing under ${uri}`);
}

async function filesOf(path) {
  const st = await fsp.stat(path);
  if (st.isFile()) return [{ abs: path, rel: path.split(sep).pop() }];
  const out = [];
  const walk = async (dir) => {
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      const abs = join(dir, e.name);
      if (e.isDirectory()) await walk(abs);
      else if (e.isFile()) out.push({ abs, rel: relative(path, abs).split(sep).join('/') });
    }
  };
  await walk(path);
  return out;
}

async function put(path, prefix) {
  const { bucket, key } = parse(prefix);
  for (const f of await filesOf(path)) {
    const body = await fsp.readFile(f.abs);
    const sha256 = createHash('sha256').update(body).digest('hex');
    const md5 = createHash('md5').update(body).digest('base64');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key + f.rel, Body: body, ContentLength: body.length, ContentMD5: md5, Metadata: { 'mlp-sha256': sha256 } }));
    console.log(`pod-stage: put ${f.abs} -> s3://${bucket}/${key}${f.rel} (${body.length} bytes)`);
  }
}

const json = (name) => JSON.parse(process.env[name] || '{}');

async function main() {
  const [cmd, a, b] = process.argv.slice(2);
  if (cmd === 'in') for (const [path, uri] of Object.entries(json('MLP_INPUTS'))) await get(uri, path.replace(/\/+$/, ''));
  else if (cmd === 'get') await get(a, b.replace(/\/+$/, ''));
  else if (cmd === 'out') {
    // Missing outputs are skipped: the engine, not this tool, decides what a missing output means.
    for (const [path, prefix] of Object.entries(json('MLP_OUTPUTS'))) {
      if (await fsp.stat(path).then(() => true, () => false)) await put(path.replace(/\/+$/, ''), prefix);
      else console.log(`pod-stage: ${path} does not exist; not uploaded`);
    }
  } else throw new Error('usage: pod-stage.mjs in | get <uri> <path> | out');
}

main().catch((e) => {
  console.error(`pod-stage: ${e.name ?? 'Error'}: ${e.message}`);
  process.exit(1);
});
