/**
 * Small file primitives for crash-safe stores: whole-file replacement that is never seen half-written,
 * JSON reads that treat missing or damaged files as absent, and single-write line appends that
 * concurrent appenders interleave as whole lines. Node built-ins only; no `vscode` imports.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as zlib from 'node:zlib';

/** Marker in the name of every temporary file `writeFileAtomic` creates: `<name>.tmp-<pid>-<hex>`. */
export const TMP_MARKER = '.tmp-';

/** True for names `writeFileAtomic` uses for its temporary files; such files are never records. */
export function isTempName(name: string): boolean {
  return name.includes(TMP_MARKER);
}

export interface WriteAtomicOptions {
  /** fsync the file before the rename (default true). Without it a power loss may leave an empty file. */
  fsync?: boolean;
  /** fsync the directory after the rename, so the new name itself survives a power loss (default: `fsync`). */
  fsyncDir?: boolean;
}

/**
 * Replaces `path` with `data` so that readers (and a process killed at any moment) see either the old
 * content or the new, never a mix: write `<path>.tmp-<pid>-<rand>`, fsync it, rename it over `path`,
 * fsync the directory. The temporary file is removed when anything fails.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: WriteAtomicOptions = {}): Promise<void> {
  const fsync = options.fsync ?? true;
  const tmp = `${path}${TMP_MARKER}${process.pid}-${randomBytes(4).toString('hex')}`;
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(tmp, 'wx', 0o644);
    await handle.writeFile(data);
    if (fsync) await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(tmp, path);
  } catch (err) {
    if (handle) await handle.close().catch(() => undefined);
    await fsp.unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (options.fsyncDir ?? fsync) await fsyncDir(dirname(path));
}

/** fsync a directory so renames and creations in it are durable. A no-op where directories cannot be opened (Windows). */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // Windows cannot open directories; some file systems refuse fsync on them. Durability only, never correctness.
  } finally {
    if (handle) await handle.close().catch(() => undefined);
  }
}

/**
 * Reads and parses a JSON file. Returns undefined when the file is missing, is not a regular file, or
 * does not parse (an interrupted foreign write, a damaged disk). Other errors (permissions) are thrown.
 * Temporary files of `writeFileAtomic` are refused: they are never records.
 */
export async function readJsonSafe<T>(path: string): Promise<T | undefined> {
  if (isTempName(basename(path))) return undefined;
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

export interface AppendOptions {
  /** fsync after the write (default false). */
  fsync?: boolean;
}

/**
 * Appends one line (a trailing newline is added when missing) with O_APPEND and a single write, so lines
 * from concurrent appenders (processes included) never interleave inside each other on local file systems
 * (not on NFS, whose O_APPEND is not atomic).
 */
export async function appendLine(path: string, line: string, options: AppendOptions = {}): Promise<void> {
  const data = Buffer.from(line.endsWith('\n') ? line : `${line}\n`, 'utf8');
  const handle = await fsp.open(path, 'a', 0o644);
  try {
    await writeAll(handle, data);
    if (options.fsync) await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes all of `data` at the handle's position. One write call in practice; a short write (disk full,
 * a fatal signal between pages) is continued, and a reader's checksum catches a line torn that way.
 */
export async function writeAll(handle: fsp.FileHandle, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    offset += bytesWritten;
  }
}

// ---- CRC-32 (IEEE 802.3), for line checksums ------------------------------------------------------------

let table: Int32Array | undefined;

function crcTable(): Int32Array {
  if (table) return table;
  table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
}

/** CRC-32 in plain JavaScript (the fallback for Node releases before 20.15, which lack `zlib.crc32`). */
export function crc32Js(data: Uint8Array, initial = 0): number {
  const t = crcTable();
  let crc = ~initial;
  for (let i = 0; i < data.length; i++) crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array | string, value?: number) => number }).crc32;

/** CRC-32 (IEEE) of bytes, as an unsigned 32-bit number. Native when Node has it. */
export function crc32(data: Uint8Array): number {
  return nativeCrc32 ? nativeCrc32(data) : crc32Js(data);
}

/** CRC-32 (IEEE) of a string's UTF-8 bytes (for ASCII text: of its characters). */
export function crc32Text(text: string): number {
  return nativeCrc32 ? nativeCrc32(text) : crc32Js(Buffer.from(text, 'utf8'));
}

/** A file name for a sibling temporary file in the same folder (same file system, so rename is atomic). */
export function tempSibling(path: string): string {
  return join(dirname(path), `${basename(path)}${TMP_MARKER}${process.pid}-${randomBytes(4).toString('hex')}`);
}
