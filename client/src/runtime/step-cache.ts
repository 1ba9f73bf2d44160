/**
 * The step cache: has this step already run with exactly these inputs? A step's cache key is a sha256 over
 * everything that determines its outputs; an entry maps the key to the outputs (paths and content hashes)
 * and metrics of the run that produced them. Node built-ins only; no `vscode` imports.
 *
 * Layout: `<dir>/<first two hex digits of the key>/<key>.json` (git-style fan-out keeps folders small).
 *
 * Partial outputs are never recorded: the executor calls `record` only after the step exited 0 and every
 * declared output exists and was hashed. A crash between the step's end and `record` leaves no entry (a
 * miss, so the step runs again), and `record` writes atomically, so a reader never sees half an entry.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { readJsonSafe, writeFileAtomic } from './atomic-file';
import { MissingPathError, type ContentHasher } from './hashing';
import type { ContentHash, ParamValue } from './records';

/** Bump when the meaning of a key's parts changes: every old entry then misses. */
export const CACHE_KEY_VERSION = 1;

export interface CacheKeyParts {
  /** The command as run, `${...}` resolved. */
  command: string;
  /**
   * The step's declared environment. Must not contain secret values: the caller leaves secrets out (they
   * reach the process through its environment only), so rotating a secret never invalidates the cache and
   * no secret is ever hashed into a key that is written to disk.
   */
  env: Record<string, string>;
  /** The params the step uses, resolved. `1` and `"1"` are different values. */
  params: Record<string, ParamValue>;
  /** Workspace-relative input path -> content hash. */
  inputs: Record<string, ContentHash>;
  /** `step.output` the step reads -> content hash of that output. */
  upstream: Record<string, ContentHash>;
  /** Container image, for targets that run one; absent and undefined are the same. */
  image?: string;
}

export interface CacheEntry {
  key: string;
  step: string;
  /** The run whose outputs these are. */
  runId: string;
  /** `uri`: the verified copy in the artifact store, when the run had one (docs/storage.md). */
  outputs: Record<string, { path: string; hash: ContentHash; uri?: string }>;
  metrics?: Record<string, number>;
  /** ISO 8601. */
  createdAt: string;
}

const KEY_RE = /^[0-9a-f]{64}$/;

/**
 * JSON with object keys sorted (by UTF-16 code units) at every level, no whitespace. Non-finite numbers
 * (YAML's .inf and .nan, which JSON would turn into null) become `{"$number":"Infinity"}` etc., so they
 * neither collide with null nor with each other. undefined object members are left out, like JSON.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : `{"$number":${JSON.stringify(String(value))}}`;
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
      const keys = Object.keys(value as object).sort();
      const parts: string[] = [];
      for (const k of keys) {
        const v = (value as Record<string, unknown>)[k];
        if (v === undefined) continue;
        parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      throw new TypeError(`Cannot put a ${typeof value} into a cache key.`);
  }
}

/**
 * sha256 (hex) of the canonical JSON of `{ v: 1, command, env, params, inputs, upstream, image }`. Stable
 * under key order at every level; any change to any part (a param's value or type, an input's path or
 * hash, the image) changes it.
 */
export function computeCacheKey(parts: CacheKeyParts): string {
  const versioned = {
    v: CACHE_KEY_VERSION,
    command: parts.command,
    env: parts.env,
    params: parts.params,
    inputs: parts.inputs,
    upstream: parts.upstream,
    image: parts.image ?? null,
  };
  return createHash('sha256').update(canonicalJson(versioned)).digest('hex');
}

function assertKey(key: string): void {
  if (typeof key !== 'string' || !KEY_RE.test(key)) throw new TypeError(`Not a cache key (64 lowercase hex digits): ${JSON.stringify(key)}`);
}

function isRecordOf(v: unknown, ok: (x: unknown) => boolean): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every(ok);
}

/** The shape check a read entry must pass; anything else is a miss. */
function isCacheEntry(v: unknown, key: string): v is CacheEntry {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  const e = v as Record<string, unknown>;
  return (
    e.key === key &&
    typeof e.step === 'string' &&
    typeof e.runId === 'string' &&
    typeof e.createdAt === 'string' &&
    isRecordOf(e.outputs, (o) => {
      const out = o as Record<string, unknown> | null;
      return !!out && typeof out === 'object' && typeof out.path === 'string' && typeof out.hash === 'string' && KEY_RE.test(out.hash) && (out.uri === undefined || typeof out.uri === 'string');
    }) &&
    (e.metrics === undefined || isRecordOf(e.metrics, (m) => typeof m === 'number'))
  );
}

export class StepCache {
  /** Usually `<root>/.mlpipeline/cache/steps`. */
  constructor(readonly dir: string) {}

  /** Where the entry for `key` lives. */
  pathFor(key: string): string {
    assertKey(key);
    return join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  /** The entry for `key`, or undefined: none, unreadable as JSON, the wrong shape, or recorded under another key. */
  async lookup(key: string): Promise<CacheEntry | undefined> {
    const data = await readJsonSafe<unknown>(this.pathFor(key)).catch(() => undefined);
    return isCacheEntry(data, key) ? data : undefined;
  }

  /** Records a step's complete, verified outputs (call only after success; see the module comment). Atomic. */
  async record(key: string, entry: CacheEntry): Promise<void> {
    const file = this.pathFor(key);
    if (entry.key !== key) throw new Error(`Cache entry for ${entry.step} carries key ${entry.key}, not ${key}.`);
    await fsp.mkdir(join(this.dir, key.slice(0, 2)), { recursive: true });
    await writeFileAtomic(file, `${JSON.stringify(entry, null, 2)}\n`);
  }

  /** See the free function `isFresh`. */
  isFresh(entry: CacheEntry, hasher: ContentHasher, remote?: RemoteCheck): Promise<boolean> {
    return isFresh(entry, hasher, remote);
  }
}

/** Checks an output's copy in the artifact store: still there, with the recorded checksum. */
export type RemoteCheck = (name: string, output: { path: string; hash: ContentHash; uri: string }) => Promise<boolean>;

/**
 * True only when every recorded output still exists and hashes to its recorded hash: a deleted or edited
 * output forces a re-run. Outputs recorded with an artifact-store `uri` must also pass `remote` (a missing
 * `remote` then means stale: the store cannot be checked). Errors other than a missing path (permissions,
 * an unreachable store) are thrown.
 */
export async function isFresh(entry: CacheEntry, hasher: ContentHasher, remote?: RemoteCheck): Promise<boolean> {
  const fresh = await Promise.all(
    Object.entries(entry.outputs).map(async ([name, o]) => {
      try {
        if (o.uri !== undefined && !(remote && (await remote(name, { ...o, uri: o.uri })))) return false;
        return (await hasher.hashPath(o.path)).hash === o.hash;
      } catch (e) {
        if (e instanceof MissingPathError) return false;
        throw e;
      }
    }),
  );
  return fresh.every(Boolean);
}
