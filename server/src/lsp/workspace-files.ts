import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { LockedDataset } from '../service/hover';

/**
 * The little file-system access the editing features need, for `file:` specs only: whether a path
 * next to the spec exists (document links) and the dataset hashes pinned in its `mlpipeline.lock`
 * (hover). Nothing is executed and nothing is written, so this is safe in untrusted workspaces.
 */

/** The spec's folder as a URI ending in `/`. */
export function folderUri(uri: string): string {
  const i = uri.lastIndexOf('/');
  return i >= 0 ? uri.slice(0, i + 1) : uri;
}

function specPath(uri: string): string | undefined {
  if (!uri.startsWith('file:')) return undefined;
  try {
    return fileURLToPath(uri);
  } catch {
    return undefined;
  }
}

/** `fileExists(relative)` for the spec's folder; answers are cached for a second (links are asked for often). */
export function fileExistsNear(uri: string): (relativePath: string) => boolean {
  const file = specPath(uri);
  if (!file) return () => false;
  const dir = dirname(file);
  return (rel) => {
    const key = join(dir, rel);
    const hit = existsCache.get(key);
    const now = Date.now();
    if (hit && now - hit.at < 1000) return hit.exists;
    let exists = false;
    try {
      exists = fs.existsSync(key);
    } catch {
      exists = false;
    }
    if (existsCache.size > 10_000) existsCache.clear();
    existsCache.set(key, { exists, at: now });
    return exists;
  };
}
const existsCache = new Map<string, { exists: boolean; at: number }>();

/** `x/mlpipeline.yaml` -> `x/mlpipeline.lock`, `x/foo.mlpipeline.yml` -> `x/foo.mlpipeline.lock` (as the executor writes it). */
export function lockPathFor(file: string): string {
  const name = basename(file);
  const stem = name.replace(/\.ya?ml$/i, '');
  return join(dirname(file), stem === name ? `${name}.lock` : `${stem}.lock`);
}

const MAX_LOCK_BYTES = 4 * 1024 * 1024;
const lockCache = new Map<string, { mtimeMs: number; size: number; datasets: Record<string, LockedDataset> }>();

/** `lockedDataset(name)` from the spec's lock file; missing, large or malformed lock files pin nothing. */
export function lockedDatasetReader(uri: string): (name: string) => LockedDataset | undefined {
  return (name) => {
    const file = specPath(uri);
    if (!file) return undefined;
    const lock = lockPathFor(file);
    try {
      const st = fs.statSync(lock);
      if (!st.isFile() || st.size > MAX_LOCK_BYTES) return undefined;
      let cached = lockCache.get(lock);
      if (!cached || cached.mtimeMs !== st.mtimeMs || cached.size !== st.size) {
        const data = parse(fs.readFileSync(lock, 'utf8'), { maxAliasCount: 100 }) as { datasets?: Record<string, unknown> } | null;
        const datasets: Record<string, LockedDataset> = {};
        for (const [k, v] of Object.entries(data?.datasets ?? {})) {
          const d = v as Partial<LockedDataset> | null;
          if (d && typeof d.hash === 'string') datasets[k] = { hash: d.hash, files: typeof d.files === 'number' ? d.files : undefined, bytes: typeof d.bytes === 'number' ? d.bytes : undefined, uri: typeof d.uri === 'string' ? d.uri : undefined };
        }
        cached = { mtimeMs: st.mtimeMs, size: st.size, datasets };
        lockCache.set(lock, cached);
      }
      return cached.datasets[name];
    } catch {
      return undefined;
    }
  };
}
