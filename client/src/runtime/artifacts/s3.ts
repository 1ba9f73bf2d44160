/**
 * The artifact store on S3 and S3-compatible servers (Ceph RGW, MinIO, ...), and the S3 side of
 * datasets (hashing a listing, downloading verified copies). The AWS SDK is imported at first use only,
 * so loading this module costs nothing until a run touches S3.
 *
 * Integrity, end to end (docs/storage.md):
 * - upload: every file is read once; its sha256 is checked against the content hash the engine took after
 *   the step exited, every request carries Content-MD5 (the server rejects a corrupted body with BadDigest),
 *   and the object's ETag is compared with the MD5 (single PUT) or MD5-of-part-MD5s (multipart) computed
 *   locally. If the ETag cannot be compared (SSE-KMS stores return other ETags), the object is downloaded
 *   and its sha256 checked. Only then is the manifest written; the manifest is the commit marker.
 * - verify (cache hits): the manifest exists and every object has the recorded size, ETag and sha256
 *   metadata.
 * - download: `If-Match` the recorded ETag (so the bytes are the ones that were verified), and sha256
 *   (plus MD5 when the ETag is one) computed while streaming to a temporary file, renamed into place
 *   only when it matched.
 * Retries: the SDK's standard strategy (exponential backoff with jitter, honours Retry-After and
 * x-amz-retry-after, retries 5xx, 429/SlowDown and connection resets), `maxAttempts` per request; bodies
 * are in-memory buffers, so a retried part resends exactly the same bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ContentHash } from '../records';
import { contentHashOf, inPool, listOutputFiles, sha256OfFile, type LocalFile } from './local-files';
import { formatS3Uri, joinKey, parseS3Uri, type S3Location } from './s3-uri';
import { assertHash, assertSegment, ChecksumMismatchError, StorageError, type ArtifactFile, type ArtifactId, type ArtifactManifest, type ArtifactStore, type S3StoreOptions, type StoredArtifact } from './types';

const MiB = 1024 * 1024;
export const DEFAULT_PART_SIZE = 8 * MiB;
/** The metadata key (x-amz-meta-mlp-sha256) holding each object's sha256. */
export const SHA256_META = 'mlp-sha256';

type SdkModule = typeof import('@aws-sdk/client-s3');
let sdkPromise: Promise<SdkModule> | undefined;
/** The SDK, loaded once, at first use. */
function sdk(): Promise<SdkModule> {
  sdkPromise ??= import('@aws-sdk/client-s3');
  return sdkPromise;
}

/** Options with the environment filled in: MLP_S3_ENDPOINT / AWS_ENDPOINT_URL_S3, AWS_PROFILE, AWS_REGION. */
export function resolveS3Options(opts: S3StoreOptions = {}, env: NodeJS.ProcessEnv = process.env): S3StoreOptions {
  const endpoint = opts.endpoint || env.MLP_S3_ENDPOINT || env.AWS_ENDPOINT_URL_S3 || undefined;
  const region = opts.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined;
  const profile = opts.profile || env.AWS_PROFILE || undefined;
  const partSizeBytes = opts.partSizeBytes ?? DEFAULT_PART_SIZE;
  if (partSizeBytes < 5 * MiB) throw new Error(`The S3 part size must be at least 5 MiB (S3's minimum), not ${partSizeBytes} bytes.`);
  return { ...opts, endpoint, region, profile, partSizeBytes, concurrency: Math.max(1, opts.concurrency ?? 4), maxAttempts: Math.max(1, opts.maxAttempts ?? 5), forcePathStyle: opts.forcePathStyle ?? !!endpoint };
}

/** An S3 client configured for AWS or an S3-compatible endpoint; credentials from the standard AWS chain. */
export async function createS3Client(options: S3StoreOptions = {}): Promise<S3Client> {
  const o = resolveS3Options(options);
  // The SDK is pinned (package.json), so its "future releases need Node 22" notice is not actionable for
  // a user of the CLI or the extension; a user who wants it can set the variable to false.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { S3Client } = await sdk();
  return new S3Client({
    ...(o.endpoint ? { endpoint: o.endpoint } : { followRegionRedirects: true }),
    // A custom endpoint without a region still needs one to sign with; AWS itself gets redirects followed.
    region: o.region ?? 'us-east-1',
    ...(o.profile ? { profile: o.profile } : {}),
    ...(o.credentials ? { credentials: o.credentials } : {}),
    forcePathStyle: o.forcePathStyle,
    // S3-compatible stores (Ceph RGW 16, older MinIO) reject the SDK's default flexible checksums on
    // streamed bodies (HTTP 411); integrity comes from Content-MD5 and our own sha256 instead.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: o.maxAttempts,
    retryMode: 'standard',
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
  });
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

/** True for "this object is not there" answers. */
function isNotFound(e: unknown): boolean {
  const err = e as SdkError;
  return err?.name === 'NotFound' || err?.name === 'NoSuchKey' || err?.$metadata?.httpStatusCode === 404 && err?.name !== 'NoSuchBucket';
}

/**
 * An SDK failure in words a user can act on. Never includes credentials: the SDK's messages name the
 * access key id at most, and we do not repeat even that.
 */
export function describeS3Error(e: unknown, doing: string, uri: string, endpoint?: string): Error {
  if (e instanceof StorageError || e instanceof ChecksumMismatchError) return e;
  const err = (e ?? {}) as SdkError;
  const status = err.$metadata?.httpStatusCode;
  const attempts = err.$metadata?.attempts;
  const where = endpoint ? ` at ${endpoint}` : '';
  const after = attempts && attempts > 1 ? ` (after ${attempts} attempts)` : '';
  // Network failures arrive as plain Errors with a Node error code.
  const name = (err.name === 'Error' || !err.name) && err.code ? err.code : (err.name ?? err.Code ?? err.code ?? 'Error');
  let msg: string;
  switch (name) {
    case 'SignatureDoesNotMatch':
      msg = `S3${where} rejected the request signature while ${doing} ${uri}: the secret access key does not match the access key id. Check AWS_SECRET_ACCESS_KEY, or the profile's aws_secret_access_key (AWS_PROFILE).`;
      break;
    case 'InvalidAccessKeyId':
      msg = `S3${where} does not know the access key id used while ${doing} ${uri}. Check AWS_ACCESS_KEY_ID or the profile (AWS_PROFILE), and that the endpoint is the right one.`;
      break;
    case 'AccessDenied':
    case 'Forbidden':
      msg = `Access denied while ${doing} ${uri}${where}: the credentials work but lack permission (s3:GetObject, s3:PutObject, s3:ListBucket on the bucket).`;
      break;
    case 'NoSuchBucket':
      msg = `The bucket of ${uri} does not exist${where}. Create it, or fix the s3:// URI.`;
      break;
    case 'CredentialsProviderError':
      msg = `No AWS credentials found while ${doing} ${uri}. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ~/.aws/credentials, or run where an IAM role is available. (${err.message ?? ''})`;
      break;
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ETIMEDOUT':
    case 'TimeoutError':
      msg = `Cannot reach S3${where} while ${doing} ${uri}${after}: ${name}. Check the endpoint setting (MLP_S3_ENDPOINT / AWS_ENDPOINT_URL_S3) and the network.`;
      break;
    default:
      if (/region/i.test(err.message ?? '') && !status) msg = `No AWS region is configured while ${doing} ${uri}. Set AWS_REGION or the profile's region.`;
      else msg = `S3${where} failed while ${doing} ${uri}${after}: ${status ? `HTTP ${status} ` : ''}${name}${err.message && err.message !== name ? `: ${err.message}` : ''}.${status === 429 || name === 'SlowDown' ? ' The server is throttling requests; try again later or lower the concurrency.' : status && status >= 500 ? ' The server kept failing; try again later.' : ''}`;
  }
  return new StorageError(msg, name, { cause: e });
}

/** Reads `length` bytes at `position` (fewer only at the end of the file). */
async function readChunk(fh: fsp.FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let off = 0;
  while (off < length) {
    const { bytesRead } = await fh.read(buf, off, length - off, position + off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return off === length ? buf : buf.subarray(0, off);
}

const unquote = (etag: string | undefined): string => (etag ?? '').replace(/^W\//, '').replace(/"/g, '');
const md5 = (b: Buffer): Buffer => createHash('md5').update(b).digest();

export class S3ArtifactStore implements ArtifactStore {
  readonly kind = 's3' as const;
  readonly options: S3StoreOptions;
  private readonly loc: S3Location;
  private clientPromise?: Promise<S3Client>;

  constructor(readonly root: string, options: S3StoreOptions = {}) {
    this.loc = parseS3Uri(root);
    this.options = resolveS3Options(options);
  }

  /** The client, created at first use (the SDK loads then). */
  client(): Promise<S3Client> {
    this.clientPromise ??= createS3Client(this.options);
    return this.clientPromise;
  }

  locate(id: ArtifactId, kind: 'file' | 'dir', fileName?: string): { uri: string; manifestUri: string } {
    const base = this.baseKey(id);
    return { uri: formatS3Uri({ bucket: this.loc.bucket, key: kind === 'file' ? joinKey(base, fileName ?? '') : `${base}/` }), manifestUri: formatS3Uri({ bucket: this.loc.bucket, key: `${base}.manifest.json` }) };
  }

  async put(localPath: string, id: ArtifactId, opts: { signal?: AbortSignal } = {}): Promise<StoredArtifact> {
    const base = this.baseKey(id);
    const existing = await this.readManifest(id);
    if (existing && (await this.check(existing))) return this.stored(id, existing, false);
    const { kind, files } = await listOutputFiles(localPath, `${id.step}.${id.output}`);
    const out: ArtifactFile[] = new Array(files.length);
    // Small files go several at a time; a large file's parts are parallel inside uploadFile.
    const indexed = files.map((f, i) => ({ f, i }));
    await inPool(indexed, this.options.concurrency!, async ({ f, i }) => {
      opts.signal?.throwIfAborted();
      out[i] = await this.uploadFile(f, joinKey(base, f.rel), opts.signal);
    });
    const got = contentHashOf(kind, out);
    if (got !== id.hash) {
      await this.deleteKeys(out.map((f) => joinKey(base, f.path)));
      throw new ChecksumMismatchError(formatS3Uri({ bucket: this.loc.bucket, key: `${base}/` }), `the files read for upload hash to ${got}, but the output hashed to ${id.hash} when the step finished (did something change it during the upload?).`);
    }
    const manifest: ArtifactManifest = { mlpipelineArtifact: 1, kind, step: id.step, output: id.output, hash: id.hash, files: out, bytes: out.reduce((n, f) => n + f.bytes, 0), createdAt: new Date().toISOString() };
    const body = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
    await this.send('storing the manifest of', `${base}.manifest.json`, async (s3, m) =>
      s3.send(new m.PutObjectCommand({ Bucket: this.loc.bucket, Key: `${base}.manifest.json`, Body: body, ContentLength: body.length, ContentMD5: md5(body).toString('base64'), ContentType: 'application/json', Metadata: { [SHA256_META]: createHash('sha256').update(body).digest('hex') } }), { abortSignal: opts.signal }),
    );
    return this.stored(id, manifest, true);
  }

  async verify(id: ArtifactId): Promise<boolean> {
    const m = await this.readManifest(id);
    return !!m && (await this.check(m));
  }

  async fetch(id: ArtifactId, dest: string, opts: { signal?: AbortSignal } = {}): Promise<StoredArtifact> {
    const m = await this.readManifest(id);
    if (!m) throw new StorageError(`Artifact ${id.step}.${id.output}@${id.hash.slice(0, 12)} is not complete in ${this.root} (no manifest at ${this.locate(id, 'dir').manifestUri}). Run step \`${id.step}\` again.`);
    const base = this.baseKey(id);
    await inPool(m.files, this.options.concurrency!, async (f) => {
      const key = joinKey(base, f.path);
      try {
        await this.download(key, m.kind === 'file' ? dest : join(dest, f.path), { sha256: f.sha256, bytes: f.bytes, etag: f.etag }, opts.signal);
      } catch (e) {
        // For an artifact, another ETag means the object was replaced after it was stored and verified.
        if (e instanceof StorageError && e.code === 'PreconditionFailed') throw new ChecksumMismatchError(formatS3Uri({ bucket: this.loc.bucket, key }), `the object was replaced after it was stored (its ETag is no longer ${f.etag}).`);
        throw e;
      }
    });
    return this.stored(id, m, false);
  }

  /** Streams object `key` to `dest` through a temporary file; renamed into place only when size, sha256 (and MD5, when the ETag is one) match. */
  async download(key: string, dest: string, expect: { sha256?: string; bytes?: number; etag?: string }, signal?: AbortSignal): Promise<void> {
    const uri = formatS3Uri({ bucket: this.loc.bucket, key });
    await fsp.mkdir(dirname(dest), { recursive: true });
    // The SDK retries requests, not a body stream that breaks halfway: retry those here, a few times.
    for (let attempt = 1; ; attempt++) {
      const tmp = `${dest}.mlp-tmp-${randomBytes(4).toString('hex')}`;
      try {
        const res = await this.send('downloading', key, (s3, m) => s3.send(new m.GetObjectCommand({ Bucket: this.loc.bucket, Key: key, ...(expect.etag ? { IfMatch: `"${expect.etag}"` } : {}) }), { abortSignal: signal }));
        const sha = createHash('sha256');
        const md5h = createHash('md5');
        let bytes = 0;
        const file = createWriteStream(tmp, { flags: 'wx' });
        try {
          for await (const chunk of res.Body as Readable) {
            sha.update(chunk as Buffer);
            md5h.update(chunk as Buffer);
            bytes += (chunk as Buffer).length;
            if (!file.write(chunk)) await new Promise<void>((r) => file.once("drain", () => r()));
          }
        } finally {
          await new Promise<void>((r, j) => file.end((e?: Error | null) => (e ? j(e) : r())));
        }
        const gotSha = sha.digest('hex');
        const etag = unquote(res.ETag);
        const wantSha = expect.sha256 ?? res.Metadata?.[SHA256_META];
        if (expect.bytes !== undefined && bytes !== expect.bytes) throw new ChecksumMismatchError(uri, `received ${bytes} bytes, expected ${expect.bytes}.`);
        if (wantSha && gotSha !== wantSha) throw new ChecksumMismatchError(uri, `sha256 of the downloaded bytes is ${gotSha}, expected ${wantSha}.`);
        if (/^[0-9a-f]{32}$/.test(etag) && !wantSha && md5h.digest('hex') !== etag) throw new ChecksumMismatchError(uri, `MD5 of the downloaded bytes does not match its ETag ${etag}.`);
        await fsp.rename(tmp, dest);
        return;
      } catch (e) {
        await fsp.rm(tmp, { force: true });
        const code = (e as NodeJS.ErrnoException).code;
        const broken = !(e instanceof StorageError) && (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || e instanceof ChecksumMismatchError || /aborted|socket hang up/i.test((e as Error).message));
        if (broken && attempt < this.options.maxAttempts! && !signal?.aborted) {
          await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
          continue;
        }
        if ((e as SdkError).$metadata?.httpStatusCode === 412) throw new StorageError(`${uri} changed after it was listed (its ETag is no longer ${expect.etag}). Run again to pick up the new version.`, 'PreconditionFailed', { cause: e });
        throw e instanceof Error && (e instanceof StorageError || e instanceof ChecksumMismatchError) ? e : describeS3Error(e, 'downloading', uri, this.options.endpoint);
      }
    }
  }

  /** Runs one SDK call with its failure translated into a StorageError naming the object. */
  async send<T>(doing: string, key: string, fn: (s3: S3Client, m: SdkModule) => Promise<T>): Promise<T> {
    const [s3, m] = await Promise.all([this.client(), sdk()]);
    try {
      return await fn(s3, m);
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      if (isNotFound(e) || (e as SdkError).$metadata?.httpStatusCode === 412) throw e; // callers decide what a missing or changed object means
      throw describeS3Error(e, doing, formatS3Uri({ bucket: this.loc.bucket, key }), this.options.endpoint);
    }
  }

  /**
   * Takes in an output a remote step uploaded to its run-scoped prefix (`MLP_OUTPUT_<NAME>_URI`, see
   * contract.ts): downloads every object to `dest` verified (size, `If-Match`, the object's `mlp-sha256`
   * metadata when it has one, else MD5 when the ETag is one), hashes it as the engine hashes local outputs,
   * stores it content-addressed with `put` (all of put's checks), and then deletes the staged objects
   * (unless `keepStaged`: the caller clears them once everything is recorded). A file output must be
   * exactly one object. `auto`: a single object named like `dest` is a file, anything else a folder.
   */
  async adopt(stagedUri: string, at: { step: string; output: string; kind: 'file' | 'dir' | 'auto' }, dest: string, opts: { signal?: AbortSignal; keepStaged?: boolean } = {}): Promise<StoredArtifact> {
    const staged = parseS3Uri(stagedUri);
    if (staged.bucket !== this.loc.bucket) throw new StorageError(`The staged output ${stagedUri} is not in the artifact store's bucket (${this.loc.bucket}).`);
    let listing: S3DatasetListing;
    try {
      listing = await hashS3Dataset(stagedUri, this.options);
    } catch (e) {
      if (e instanceof StorageError && /is empty or does not exist/.test(e.message)) throw new StorageError(`Step \`${at.step}\` did not upload its output \`${at.output}\` to ${stagedUri}: there is no object under that prefix.`, 'NotFound', { cause: e });
      throw new StorageError(`Step \`${at.step}\` did not upload its output \`${at.output}\` to ${stagedUri}: ${(e as Error).message}`, 'NotFound', { cause: e });
    }
    const kind = at.kind !== 'auto' ? at.kind : listing.objects.length === 1 && listing.objects[0].rel === basename(dest) ? 'file' : 'dir';
    if (kind === 'file' && listing.objects.length !== 1) throw new StorageError(`Output \`${at.output}\` of step \`${at.step}\` is a file, but ${stagedUri} holds ${listing.objects.length} objects. Upload exactly one.`);
    await materializeS3Dataset(listing, kind === 'file' ? `${dest}.mlp-adopt` : dest, this.options, opts.signal);
    if (kind === 'file') {
      await fsp.rm(dest, { recursive: true, force: true }); // A folder left at the path by an earlier run would block the rename.
      await fsp.rename(join(`${dest}.mlp-adopt`, listing.objects[0].rel), dest);
      await fsp.rm(`${dest}.mlp-adopt`, { recursive: true, force: true });
    } else {
      await fsp.rm(join(dest, DATASET_MARKER), { force: true });
    }
    const { kind: got, files } = await listOutputFiles(dest, `${at.step}.${at.output}`);
    const hashed: ArtifactFile[] = [];
    for (const f of files) hashed.push({ path: f.rel, ...(await sha256OfFile(f.abs)) });
    const stored = await this.put(dest, { step: at.step, output: at.output, hash: contentHashOf(got, hashed) }, opts);
    if (!opts.keepStaged) await this.deleteKeys(listing.objects.map((o) => o.key));
    return stored;
  }

  /** Deletes every object under `uri` (a prefix in this store's bucket, ending with `/`). Returns how many. */
  async deletePrefix(uri: string, signal?: AbortSignal): Promise<number> {
    const loc = parseS3Uri(uri);
    if (loc.bucket !== this.loc.bucket || !loc.key.endsWith('/')) throw new StorageError(`Refusing to delete ${uri}: not a prefix in the artifact store's bucket (${this.loc.bucket}).`);
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.send('listing', loc.key, (s3, m) => s3.send(new m.ListObjectsV2Command({ Bucket: loc.bucket, Prefix: loc.key, ContinuationToken: token }), { abortSignal: signal }));
      for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    // Unlike deleteKeys (cleanup after a failure), a delete that fails here fails the call: a retried
    // attempt must not find the previous attempt's objects among its own.
    await inPool(keys, 8, async (key) => {
      await this.send('deleting', key, (s3, m) => s3.send(new m.DeleteObjectCommand({ Bucket: loc.bucket, Key: key }), { abortSignal: signal }));
    });
    return keys.length;
  }

  private baseKey(id: ArtifactId): string {
    assertSegment('step', id.step);
    assertSegment('output', id.output);
    assertHash(id.hash);
    return joinKey(this.loc.key, id.step, id.output, id.hash);
  }

  private stored(id: ArtifactId, m: ArtifactManifest, uploaded: boolean): StoredArtifact {
    return { ...this.locate(id, m.kind, m.files[0]?.path), hash: id.hash, kind: m.kind, files: m.files.length, bytes: m.bytes, uploaded };
  }

  private async readManifest(id: ArtifactId): Promise<ArtifactManifest | undefined> {
    const key = `${this.baseKey(id)}.manifest.json`;
    let text: string;
    try {
      const res = await this.send('reading the manifest', key, (s3, m) => s3.send(new m.GetObjectCommand({ Bucket: this.loc.bucket, Key: key })));
      text = await (res.Body as { transformToString(): Promise<string> }).transformToString();
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    try {
      const m = JSON.parse(text) as ArtifactManifest;
      const ok = m?.mlpipelineArtifact === 1 && m.hash === id.hash && (m.kind === 'file' || m.kind === 'dir') && Array.isArray(m.files) && m.files.every((f) => typeof f.path === 'string' && /^[0-9a-f]{64}$/.test(f.sha256) && Number.isSafeInteger(f.bytes));
      return ok && contentHashOf(m.kind, m.files) === id.hash ? m : undefined;
    } catch {
      return undefined; // an unreadable manifest is no manifest: the artifact is uploaded again
    }
  }

  /** Every object of the manifest is there with its recorded size, ETag and sha256 metadata. */
  private async check(m: ArtifactManifest): Promise<boolean> {
    const base = this.baseKey(m);
    let ok = true;
    await inPool(m.files, 8, async (f) => {
      if (!ok) return;
      const key = joinKey(base, f.path);
      try {
        const h = await this.send('checking', key, (s3, sdkm) => s3.send(new sdkm.HeadObjectCommand({ Bucket: this.loc.bucket, Key: key })));
        if (h.ContentLength !== f.bytes || h.Metadata?.[SHA256_META] !== f.sha256 || (f.etag && unquote(h.ETag) !== f.etag)) ok = false;
      } catch (e) {
        if (isNotFound(e)) ok = false;
        else throw e;
      }
    });
    return ok;
  }

  /** One file: a single PUT up to the part size, multipart above it. Returns the verified manifest entry. */
  private async uploadFile(f: LocalFile, key: string, signal?: AbortSignal): Promise<ArtifactFile> {
    // S3 allows at most 10,000 parts: very large files get larger parts.
    const partSize = Math.max(this.options.partSizeBytes!, Math.ceil(f.size / 10_000));
    const fh = await fsp.open(f.abs, 'r');
    const sha = createHash('sha256');
    let bytes = 0;
    let expectedEtag: string;
    let sha256: string;
    try {
      if (f.size <= partSize) {
        const body = await readChunk(fh, 0, f.size);
        sha.update(body);
        bytes = body.length;
        sha256 = sha.digest('hex');
        const digest = md5(body);
        expectedEtag = digest.toString('hex');
        await this.send('uploading', key, (s3, m) =>
          s3.send(new m.PutObjectCommand({ Bucket: this.loc.bucket, Key: key, Body: body, ContentLength: body.length, ContentMD5: digest.toString('base64'), Metadata: { [SHA256_META]: sha256 } }), { abortSignal: signal }),
        );
      } else {
        // The sha256 must be known before the upload starts (it is metadata), so hash first: one extra
        // read of the file, cheaper than a copy to set the metadata afterwards.
        for (let pos = 0; pos < f.size; pos += partSize) sha.update(await readChunk(fh, pos, Math.min(partSize, f.size - pos)));
        sha256 = sha.digest('hex');
        const r = await this.multipart(fh, f.size, partSize, key, sha256, signal);
        expectedEtag = r.etag;
        bytes = r.bytes;
        if (r.sha256 !== sha256) {
          await this.deleteKeys([key]);
          throw new ChecksumMismatchError(formatS3Uri({ bucket: this.loc.bucket, key }), `the file changed while it was being uploaded.`);
        }
      }
    } finally {
      await fh.close();
    }
    const uri = formatS3Uri({ bucket: this.loc.bucket, key });
    const head = await this.send('checking', key, (s3, m) => s3.send(new m.HeadObjectCommand({ Bucket: this.loc.bucket, Key: key })));
    const etag = unquote(head.ETag);
    if (head.ContentLength !== bytes) {
      await this.deleteKeys([key]);
      throw new ChecksumMismatchError(uri, `the stored object has ${head.ContentLength} bytes, the file ${bytes}.`);
    }
    if (etag !== expectedEtag) {
      // Stores with SSE-KMS (and some S3-compatible ones) do not use MD5 ETags: compare the bytes instead.
      const probe = join(tmpdir(), `mlp-verify-${randomBytes(6).toString('hex')}`);
      try {
        await this.download(key, probe, { sha256, bytes, etag }, signal);
      } catch (e) {
        if (e instanceof ChecksumMismatchError) await this.deleteKeys([key]);
        throw e;
      } finally {
        await fsp.rm(probe, { force: true });
      }
    }
    return { path: f.rel, sha256, bytes, etag };
  }

  /** Multipart upload with Content-MD5 per part; aborted on any failure so no orphaned parts are billed. */
  private async multipart(fh: fsp.FileHandle, size: number, partSize: number, key: string, sha256: string, signal?: AbortSignal): Promise<{ etag: string; bytes: number; sha256: string }> {
    const created = await this.send('starting the upload of', key, (s3, m) => s3.send(new m.CreateMultipartUploadCommand({ Bucket: this.loc.bucket, Key: key, Metadata: { [SHA256_META]: sha256 } }), { abortSignal: signal }));
    const uploadId = created.UploadId;
    if (!uploadId) throw new StorageError(`S3 did not return an upload id for ${formatS3Uri({ bucket: this.loc.bucket, key })}.`);
    const count = Math.ceil(size / partSize);
    const digests: Buffer[] = new Array(count);
    const etags: string[] = new Array(count);
    const reread = createHash('sha256');
    let bytes = 0;
    let nextToRead = 0;
    try {
      // Parts are read in order (so the second sha256 covers exactly the bytes sent) and sent in parallel.
      let readChain = Promise.resolve();
      await inPool(Array.from({ length: count }, (_, i) => i), this.options.concurrency!, async (i) => {
        signal?.throwIfAborted();
        let body!: Buffer;
        readChain = readChain.then(async () => {
          if (nextToRead !== i) throw new Error('parts read out of order');
          body = await readChunk(fh, i * partSize, Math.min(partSize, size - i * partSize));
          reread.update(body);
          bytes += body.length;
          nextToRead++;
        });
        await readChain;
        digests[i] = md5(body);
        const res = await this.send(`uploading part ${i + 1} of ${count} of`, key, (s3, m) =>
          s3.send(new m.UploadPartCommand({ Bucket: this.loc.bucket, Key: key, UploadId: uploadId, PartNumber: i + 1, Body: body, ContentLength: body.length, ContentMD5: digests[i].toString('base64') }), { abortSignal: signal }),
        );
        const got = unquote(res.ETag);
        // An ETag that is not this part's MD5 means the server stored other bytes (or is not MD5-based; then the final check decides).
        if (/^[0-9a-f]{32}$/.test(got) && got !== digests[i].toString('hex')) throw new ChecksumMismatchError(formatS3Uri({ bucket: this.loc.bucket, key }), `part ${i + 1} was stored with ETag ${got}, not its MD5 ${digests[i].toString('hex')}.`);
        etags[i] = res.ETag ?? `"${digests[i].toString('hex')}"`;
      });
      await this.send('completing the upload of', key, (s3, m) =>
        s3.send(new m.CompleteMultipartUploadCommand({ Bucket: this.loc.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }), { abortSignal: signal }),
      );
    } catch (e) {
      await this.send('aborting the upload of', key, (s3, m) => s3.send(new m.AbortMultipartUploadCommand({ Bucket: this.loc.bucket, Key: key, UploadId: uploadId }))).catch(() => {});
      throw e;
    }
    return { etag: `${md5(Buffer.concat(digests)).toString('hex')}-${count}`, bytes, sha256: reread.digest('hex') };
  }

  private async deleteKeys(keys: string[]): Promise<void> {
    await inPool(keys, 8, async (key) => {
      await this.send('deleting', key, (s3, m) => s3.send(new m.DeleteObjectCommand({ Bucket: this.loc.bucket, Key: key }))).catch(() => {});
    });
  }
}

// ---- Datasets on S3 -------------------------------------------------------------------------------------

export interface S3Object {
  /** Full key. */
  key: string;
  /** Relative to the dataset prefix (`/`-separated); the base name for a single-object dataset. */
  rel: string;
  size: number;
  etag: string;
}

export interface S3DatasetListing {
  uri: string;
  /** sha256 over the sorted (relative key, size, ETag) lines: see `listingHash`. */
  hash: ContentHash;
  kind: 'file' | 'dir';
  files: number;
  bytes: number;
  objects: S3Object[];
}

/** First line of the listing manifest; bump on any change to its format. */
export const LISTING_HEADER = 'mlpipeline-s3-listing v1\n';

/**
 * The content hash of a remote dataset: sha256 of a manifest of its objects (relative key, size, ETag),
 * sorted by key. An object's ETag changes whenever its bytes are rewritten (it is the MD5 for simple
 * uploads, an MD5 of part MD5s for multipart ones, an opaque per-write value under SSE-KMS), so any change
 * to the data, an added or removed object gives a new hash without reading the data. A rewrite with the
 * same bytes may also give a new hash (another part size): a cache miss, never a wrong hit.
 */
export function listingHash(objects: ReadonlyArray<Pick<S3Object, 'rel' | 'size' | 'etag'>>): ContentHash {
  const sorted = [...objects].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const h = createHash('sha256').update(LISTING_HEADER);
  for (const o of sorted) h.update(`${JSON.stringify(o.rel)} ${o.size} ${o.etag}\n`);
  return h.digest('hex');
}

/** Lists and hashes `s3://bucket/prefix/` (a folder: ends with `/`) or `s3://bucket/key` (one object). */
export async function hashS3Dataset(uri: string, options: S3StoreOptions = {}): Promise<S3DatasetListing> {
  const loc = parseS3Uri(uri);
  const store = new S3ArtifactStore(formatS3Uri({ bucket: loc.bucket, key: '' }), options);
  const objects: S3Object[] = [];
  if (loc.key === '' || loc.key.endsWith('/')) {
    let token: string | undefined;
    do {
      const page = await store.send('listing', loc.key, (s3, m) => s3.send(new m.ListObjectsV2Command({ Bucket: loc.bucket, Prefix: loc.key, ContinuationToken: token })));
      for (const o of page.Contents ?? []) {
        if (!o.Key || o.Key.endsWith('/')) continue; // "folder" marker objects carry no data
        objects.push({ key: o.Key, rel: o.Key.slice(loc.key.length), size: o.Size ?? 0, etag: unquote(o.ETag) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    if (!objects.length) throw new StorageError(`Dataset ${uri} is empty or does not exist: no objects under that prefix. Check the URI, or upload the data.`);
    return { uri, hash: listingHash(objects), kind: 'dir', files: objects.length, bytes: objects.reduce((n, o) => n + o.size, 0), objects };
  }
  try {
    const h = await store.send('reading', loc.key, (s3, m) => s3.send(new m.HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key })));
    const o = { key: loc.key, rel: posix.basename(loc.key), size: h.ContentLength ?? 0, etag: unquote(h.ETag) };
    return { uri, hash: listingHash([o]), kind: 'file', files: 1, bytes: o.size, objects: [o] };
  } catch (e) {
    if (isNotFound(e)) throw new StorageError(`Dataset ${uri} does not exist. If it is a folder (a prefix), end the URI with '/'.`, 'NotFound', { cause: e });
    throw e;
  }
}

/** Marker written into a downloaded dataset folder: which listing it holds. */
const DATASET_MARKER = '.mlpipeline-dataset.json';

/**
 * Makes `destDir` hold exactly the listed version of an S3 dataset: reused when its marker names the same
 * listing hash, otherwise downloaded (every object `If-Match` its listed ETag, checked by size, MD5 or
 * sha256) into a staging folder that replaces `destDir` only when complete. Returns whether it downloaded.
 */
export async function materializeS3Dataset(listing: S3DatasetListing, destDir: string, options: S3StoreOptions = {}, signal?: AbortSignal): Promise<{ downloaded: boolean; path: string }> {
  const path = listing.kind === 'file' ? join(destDir, listing.objects[0].rel) : destDir;
  try {
    const marker = JSON.parse(await fsp.readFile(join(destDir, DATASET_MARKER), 'utf8')) as { hash?: string };
    if (marker.hash === listing.hash) {
      const sizes = await Promise.all(listing.objects.map((o) => fsp.stat(join(destDir, o.rel)).then((s) => s.size, () => -1)));
      if (sizes.every((s, i) => s === listing.objects[i].size)) return { downloaded: false, path };
    }
  } catch {
    // no marker yet: download
  }
  const loc = parseS3Uri(listing.uri);
  const store = new S3ArtifactStore(formatS3Uri({ bucket: loc.bucket, key: '' }), options);
  const staging = `${destDir}.mlp-staging-${randomBytes(4).toString('hex')}`;
  try {
    await inPool(listing.objects, store.options.concurrency!, async (o) => {
      if (o.rel.split('/').some((s) => s === '..' || s === '.' || s === '') ) throw new StorageError(`Dataset ${listing.uri} has an object whose key cannot be a local path: ${JSON.stringify(o.key)}. Rename it.`);
      await store.download(o.key, join(staging, o.rel), { bytes: o.size, etag: o.etag }, signal);
    });
    await fsp.writeFile(join(staging, DATASET_MARKER), `${JSON.stringify({ uri: listing.uri, hash: listing.hash, files: listing.files, bytes: listing.bytes })}\n`);
    await fsp.rm(destDir, { recursive: true, force: true });
    await fsp.mkdir(dirname(destDir), { recursive: true });
    await fsp.rename(staging, destDir);
  } catch (e) {
    await fsp.rm(staging, { recursive: true, force: true });
    throw e;
  }
  return { downloaded: true, path };
}
