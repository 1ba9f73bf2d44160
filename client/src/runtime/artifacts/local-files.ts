/** Listing and hashing the local side of an artifact: the files of an output, in manifest order. */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { basename, join } from 'node:path';
import { manifestHash, SKIPPED_NAMES } from '../hashing';
import type { ContentHash } from '../records';

export interface LocalFile {
  /** `/`-separated, relative to the output folder; the base name for a file output. */
  rel: string;
  abs: string;
  size: number;
}

/**
 * The regular files of an output (a file or a folder), skipping the names the content hasher skips.
 * Symbolic links are refused: object stores cannot hold them, and following them would store bytes the
 * content hash did not cover.
 */
export async function listOutputFiles(abs: string, label: string): Promise<{ kind: 'file' | 'dir'; files: LocalFile[] }> {
  const st = await fsp.lstat(abs);
  if (st.isSymbolicLink()) throw new Error(`Output ${label} is a symbolic link; artifact stores hold regular files only. Write the file itself.`);
  if (st.isFile()) return { kind: 'file', files: [{ rel: basename(abs), abs, size: st.size }] };
  if (!st.isDirectory()) throw new Error(`Output ${label} is neither a file nor a folder.`);
  const files: LocalFile[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      if (SKIPPED_NAMES.has(e.name)) continue;
      const a = join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) throw new Error(`Output ${label} contains a symbolic link (${r}); artifact stores hold regular files only.`);
      if (e.isDirectory()) await walk(a, r);
      else if (e.isFile()) files.push({ rel: r, abs: a, size: (await fsp.stat(a)).size });
      else throw new Error(`Output ${label} contains ${r}, which is not a regular file.`);
    }
  };
  await walk(abs, '');
  files.sort((x, y) => (x.rel < y.rel ? -1 : x.rel > y.rel ? 1 : 0));
  return { kind: 'dir', files };
}

/** The engine's content hash of an output from its files' sha256s (a file's own hash, or the folder manifest hash). */
export function contentHashOf(kind: 'file' | 'dir', files: ReadonlyArray<{ path: string; sha256: ContentHash }>): ContentHash {
  if (kind === 'file') return files[0].sha256;
  return manifestHash(files.map((f) => ({ rel: f.path, kind: 'f' as const, hash: f.sha256 })));
}

export async function sha256OfFile(abs: string): Promise<{ sha256: ContentHash; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(abs)) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), bytes };
}

/** Runs `fn` over items with at most `n` in flight; the first failure stops new work and is thrown. */
export async function inPool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failed !== undefined) throw failed;
}
