/**
 * The artifact-store contract: where step outputs are kept, content-addressed, so that a later run (or a
 * pod on another machine) can check and fetch exactly the bytes a step wrote. Two implementations:
 * LocalArtifactStore (a folder) and S3ArtifactStore (`s3://bucket/prefix/`). See docs/storage.md.
 *
 * Layout under the store's root, for output `<output>` of step `<step>` whose content hash is `<hash>`:
 *
 *   <root>/<step>/<output>/<hash>/<file name>        a file output (its base name kept)
 *   <root>/<step>/<output>/<hash>/<relative paths>   a folder output
 *   <root>/<step>/<output>/<hash>.manifest.json      written last: the artifact is complete iff it exists
 *
 * `<hash>` is the engine's content hash (client/src/runtime/hashing.ts): sha256 of a file's bytes, or the
 * manifest hash of a folder. No `vscode` imports here.
 */
import type { ContentHash } from '../records';

/** Which artifact: the engine's content hash of output `output` of step `step`. */
export interface ArtifactId {
  step: string;
  output: string;
  hash: ContentHash;
}

export interface ArtifactFile {
  /** Relative to the artifact's folder, `/`-separated; for a file output, its base name. */
  path: string;
  sha256: ContentHash;
  bytes: number;
  /** The store's entity tag after upload (S3 ETag, unquoted); absent for the local store. */
  etag?: string;
}

/** The manifest stored next to every complete artifact (`<hash>.manifest.json`). */
export interface ArtifactManifest {
  mlpipelineArtifact: 1;
  kind: 'file' | 'dir';
  step: string;
  output: string;
  hash: ContentHash;
  files: ArtifactFile[];
  bytes: number;
  createdAt: string;
}

export interface StoredArtifact {
  /** The artifact's content: `s3://b/p/step/out/<hash>/model.pkl` for a file, `.../<hash>/` for a folder. */
  uri: string;
  /** URI of the manifest (the commit marker). */
  manifestUri: string;
  hash: ContentHash;
  kind: 'file' | 'dir';
  files: number;
  bytes: number;
  /** False when an identical, verified artifact was already there (nothing was sent). */
  uploaded: boolean;
}

export interface ArtifactStore {
  readonly kind: 'local' | 's3';
  /** The store's root as configured: a folder or `s3://bucket/prefix/`. */
  readonly root: string;
  /**
   * Stores the file or folder at `localPath` (absolute) as artifact `id`. Every byte is checked against
   * `id.hash` while it is read, and the stored copy is verified before the manifest is written; on any
   * mismatch nothing is recorded and ChecksumMismatchError is thrown. Idempotent: a complete, verified
   * artifact with the same id is not sent again.
   */
  put(localPath: string, id: ArtifactId, opts?: { signal?: AbortSignal }): Promise<StoredArtifact>;
  /** True when the artifact is complete in the store and every file still has the recorded size and checksum. */
  verify(id: ArtifactId): Promise<boolean>;
  /** Downloads artifact `id` to `dest` (a file path for file outputs, a folder for folder outputs), verifying every file. */
  fetch(id: ArtifactId, dest: string, opts?: { signal?: AbortSignal }): Promise<StoredArtifact>;
  /** Where `id` lives (whether or not it exists yet). */
  locate(id: ArtifactId, kind: 'file' | 'dir', fileName?: string): { uri: string; manifestUri: string };
}

/** Bytes did not match their checksum: during upload, after upload, or on download. Nothing was recorded. */
export class ChecksumMismatchError extends Error {
  constructor(readonly uri: string, detail: string) {
    super(`Checksum mismatch for ${uri}: ${detail} Nothing was recorded as complete; run the step again.`);
    this.name = 'ChecksumMismatchError';
  }
}

/** A storage failure in words a user can act on (credentials, bucket, endpoint, network). */
export class StorageError extends Error {
  constructor(message: string, readonly code?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/** Settings for S3 and S3-compatible stores; each falls back to the environment (see docs/storage.md). */
export interface S3StoreOptions {
  /** Custom endpoint (Ceph RGW, MinIO, R2, ...). Default: MLP_S3_ENDPOINT, then AWS_ENDPOINT_URL_S3, then AWS. */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`). Default: true when an endpoint is set. */
  forcePathStyle?: boolean;
  /** Named profile from ~/.aws/config and ~/.aws/credentials. Default: AWS_PROFILE, then the default chain. */
  profile?: string;
  /** Default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, then us-east-1. */
  region?: string;
  /** Multipart part size in bytes (>= 5 MiB); files larger than this are uploaded in parts. Default 8 MiB. */
  partSizeBytes?: number;
  /** Parts (or files) in flight at once. Default 4. */
  concurrency?: number;
  /** Attempts per request, including the first (the SDK's standard retry: backoff, Retry-After). Default 5. */
  maxAttempts?: number;
  /** Explicit credentials (tests, or the extension's secret storage); default: the AWS credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** Step and output names become key segments: keep them to the identifier characters the schema allows. */
export function assertSegment(kind: string, value: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(value) || value === '..') throw new Error(`Cannot store an artifact under ${kind} name ${JSON.stringify(value)}: use letters, digits, '_', '-' and '.'.`);
}

export function assertHash(hash: string): void {
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error(`Not a content hash (64 lowercase hex digits): ${JSON.stringify(hash)}`);
}
