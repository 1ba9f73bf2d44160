/** `s3://bucket/key` parsing, shared by the artifact store and dataset hashing. Pure; no SDK here. */

export interface S3Location {
  bucket: string;
  /** The key or prefix, without a leading `/`; a prefix ends with `/` (or is empty: the whole bucket). */
  key: string;
}

export function isS3Uri(uri: string): boolean {
  return /^s3:\/\//i.test(uri);
}

/** Parses `s3://bucket/key`. Throws an error that says what a valid URI looks like. */
export function parseS3Uri(uri: string): S3Location {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/i.exec(uri);
  const bucket = m?.[1] ?? '';
  // S3 bucket naming rules (3-63 characters, lowercase letters, digits, dots and hyphens).
  if (!m || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new Error(`${JSON.stringify(uri)} is not an S3 URI like s3://my-bucket/path/ (a lowercase bucket name of 3-63 letters, digits, '.' or '-').`);
  }
  const key = (m[2] ?? '').replace(/^\/+/, '');
  if (key.split('/').some((s) => s === '..' || s === '.')) throw new Error(`${JSON.stringify(uri)} contains '.' or '..' segments; S3 keys are not paths, so write the key exactly.`);
  return { bucket, key };
}

export function formatS3Uri(loc: S3Location): string {
  return `s3://${loc.bucket}/${loc.key}`;
}

/** Joins key segments with single `/`s; a trailing `/` on the last segment is kept. */
export function joinKey(...parts: string[]): string {
  const kept = parts.filter((p) => p !== '');
  return kept.map((p, i) => (i === 0 ? p.replace(/\/+$/, '') : i === kept.length - 1 ? p.replace(/^\/+/, '') : p.replace(/^\/+|\/+$/g, ''))).join('/');
}
