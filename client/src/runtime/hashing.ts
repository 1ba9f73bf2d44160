/**
 * Content hashes of workspace files and folders, with a persistent stat cache so that an unchanged file is
 * never read twice (like git's index or DVC's state database). Node built-ins only; no `vscode` imports.
 *
 * ## Hashes
 * - A regular file hashes to the sha256 of its bytes (hex).
 * - A symbolic link is never followed: it hashes to sha256(`link:` + the bytes of its target).
 * - A folder hashes to the sha256 of its manifest (format v1, below). Its `files` count every regular file
 *   and link in the manifest; `bytes` sums the regular files' sizes.
 *
 * ## Folder manifest, format v1
 * ```
 * mlpipeline-dir-manifest v1\n
 * <kind> <sha256 hex> <path as a JSON string>\n      (one line per entry)
 * ```
 * `kind` is `f` (regular file) or `l` (symlink; the hash is the link hash above). `path` is relative to the
 * folder with `/` separators, JSON-quoted so names holding spaces, quotes or newlines cannot forge lines.
 * Lines are sorted by path (JavaScript string order, i.e. UTF-16 code units; the same on every platform).
 * Every regular file and link below the folder is listed, recursively; entries named `.git`,
 * `__pycache__` or `.mlpipeline` are skipped at any depth, and so are sockets, FIFOs and devices. Folders
 * are not entries of their own: an empty folder (at any depth) adds nothing, and the manifest of an empty
 * folder is the header alone, a fixed hash. Renaming, adding, removing or editing any file changes the
 * hash; moving the whole folder does not. Names are hashed as the file system reports them (no Unicode
 * normalisation).
 *
 * ## The stat cache and racy timestamps
 * The cache (`<root>/.mlpipeline/cache/stat-cache.txt`, format at the end of this file) maps a
 * workspace-relative path to `{ size, mtimeMs, ctimeMs, ino, hash }`. A file whose size, mtime, ctime and
 * inode all match its entry is not read. ctime is compared on top of size, mtime and inode because no
 * program can set it: `cp -p`, `rsync -t` or `touch -d` can put an old mtime back over new bytes of the
 * same size, and then only ctime tells. Like git's `core.trustctime`, that can be turned off
 * (`trustCtime: false`).
 *
 * Racy timestamps. A timestamp has a granularity (a kernel tick on Linux, 1 s on HFS+, 2 s on FAT, the
 * server's clock on NFS). A file written again within the same tick as the version we hashed keeps its
 * mtime, and with the same size (and a ctime as coarse) the cache would return the old hash. So an entry is
 * only made when the file's mtime is *older* than a clock reading taken, on the same file system's clock,
 * *before* the file was opened. This is git's "racily clean" rule (git compares entries with the index
 * file's own mtime, and smudges racy entries so they are checked again): just before a file is read, the
 * hasher writes a probe file next to the cache (`<cache folder>/clock-probe`) and takes its mtime as
 * `trustBefore`. Any later write to the file gets a timestamp >= `trustBefore`, so an entry with
 * `mtimeMs < trustBefore` notices it. A file modified in the probe's tick or later is *racy*: its hash is
 * returned but no entry is kept, and it is read again next time. When the probe cannot be written, or the
 * file is on another device than the probe (a mount inside the workspace), the process clock is used
 * instead, minus `racyMarginMs` (default 2 s, covering coarse file systems). The price is at most one
 * extra read of a file hashed right after it was written (an output hashed in the tick the step finished
 * writing it). Files whose mtime lies in the future (clock skew, archives) are never cached: always read,
 * slower but correct.
 *
 * The cache is an optimisation only: a missing, corrupt or truncated cache file means every file is read
 * once more. Concurrent savers: the last one wins.
 */
import { isAscii } from 'node:buffer';
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as setImmediateP } from 'node:timers/promises';
import { crc32, writeFileAtomic } from './atomic-file';
import type { ContentHash } from './records';

/** Names skipped at any depth below a hashed folder. */
export const SKIPPED_NAMES: ReadonlySet<string> = new Set(['.git', '__pycache__', '.mlpipeline']);
/** First line of every folder manifest; bump the version on any change to the format. */
export const MANIFEST_HEADER = 'mlpipeline-dir-manifest v1\n';
/** Version of the stat cache file format; a file of another version is ignored. */
export const STAT_CACHE_VERSION = 2;

const DEFAULT_CONCURRENCY = 16;
const DEFAULT_RACY_MARGIN_MS = 2000;
const READ_CHUNK = 1 << 20;
/** Synchronous listing and lstat yield to the event loop after this much work. */
const SLICE_MS = 10;
/** Average synchronous lstat cost above which the rest of a folder is stat'ed in parallel (network file systems). */
const DEFAULT_SLOW_STAT_MS = 0.25;
const HEX64 = /^[0-9a-f]{64}$/;
/** Characters JSON.stringify would escape (surrogates included, paired or not: those take the slow path). */
const NEEDS_JSON_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

/** The path does not exist (or a folder on the way to it is a file). */
export class MissingPathError extends Error {
  readonly code = 'MLP_MISSING_PATH';
  /** The path as the caller gave it. */
  readonly path: string;
  constructor(p: string, options?: { cause?: unknown }) {
    super(`${p} does not exist`, options);
    this.name = 'MissingPathError';
    this.path = p;
  }
}

/** The path is absolute, leaves the workspace with `..`, or is otherwise unusable. */
export class InvalidPathError extends Error {
  readonly code = 'MLP_INVALID_PATH';
  readonly path: string;
  constructor(p: string, reason: string) {
    super(`Invalid workspace path ${JSON.stringify(p)}: ${reason}`);
    this.name = 'InvalidPathError';
    this.path = p;
  }
}

export interface ContentHasherOptions {
  /** The workspace folder; every path is relative to it. */
  root: string;
  /** Where the stat cache persists. Default `<root>/.mlpipeline/cache/stat-cache.txt`. Keep it on the workspace's file system. */
  cacheFile?: string;
  /** Files read (and folders listed) at once, per hasher. Default 16; bounds open file descriptors. */
  concurrency?: number;
  /** Margin for the process-clock fallback of the racy-timestamp rule (see the module comment). Default 2000. */
  racyMarginMs?: number;
  /** Compare ctime too (default true), like git's `core.trustctime`. */
  trustCtime?: boolean;
  /**
   * Average synchronous lstat time (ms) above which a folder's remaining files are stat'ed in parallel
   * instead (network file systems). Default 0.25; 0 goes parallel after the first 256 files.
   */
  slowStatMs?: number;
  /** Supplies a file's bytes (tests count reads with it). Default: reads the file in 1 MiB chunks. */
  readStream?: (absPath: string) => AsyncIterable<Uint8Array>;
}

export interface PathHash {
  hash: ContentHash;
  /** `symlink`: the path itself is a link; it was not followed (its hash is the link hash). */
  kind: 'file' | 'dir' | 'symlink';
  /** Regular files and links hashed (1 for a file or link). */
  files: number;
  /** Sum of the regular files' sizes. */
  bytes: number;
}

export interface HashPathOptions {
  /**
   * Allow absolute paths and paths that leave the workspace with `..` (resolved against the root). For
   * dataset URIs, which the schema allows to be absolute. Default false: such paths throw InvalidPathError.
   */
  allowOutsideRoot?: boolean;
}

export interface HasherStats {
  /** Files whose bytes were read. */
  filesRead: number;
  bytesRead: number;
  /** Files answered from the stat cache without reading. */
  cacheHits: number;
  /** Files read whose entry was not stored: modified too close to the read to be trusted (read again next time). */
  racyFiles: number;
}

interface Probe {
  mtimeMs: number;
  dev: number;
}

/** Per-call state: the clock probe is taken at most once per call, and only when a file must be read. */
interface CallContext {
  probe?: Promise<Probe | undefined>;
}

/** sha256 hex of bytes or a UTF-8 string. */
export function sha256Hex(data: string | Uint8Array): ContentHash {
  return createHash('sha256').update(data).digest('hex');
}

/** The hash of a symbolic link with this target (never followed). */
export function linkHash(target: string | Uint8Array): ContentHash {
  return createHash('sha256').update('link:').update(target).digest('hex');
}

/** The manifest hash of a folder from its entries (any order; sorted here). Exported for tools and tests. */
export function manifestHash(entries: ReadonlyArray<{ rel: string; kind: 'f' | 'l'; hash: ContentHash }>): ContentHash {
  for (const e of entries) if (!HEX64.test(e.hash) || (e.kind !== 'f' && e.kind !== 'l')) throw new TypeError(`Not a manifest entry: ${JSON.stringify(e)}`);
  const sorted = [...entries].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const h = createHash('sha256').update(MANIFEST_HEADER);
  for (const e of sorted) h.update(manifestLine(e.rel, e.kind, e.hash));
  return h.digest('hex');
}

/** One manifest line: `<kind> <hash> <path as a JSON string>\n`. */
function manifestLine(rel: string, kind: 'f' | 'l', hash: ContentHash): string {
  return `${kind} ${hash} ${NEEDS_JSON_ESCAPE.test(rel) ? JSON.stringify(rel) : `"${rel}"`}\n`;
}

/**
 * One folder of the depth-first walk. `items` are the entry names sorted, a folder's name with `/`
 * appended: that orders them the way their full paths compare (`a-b` (0x2d) before folder `a/` (0x2f)
 * before `a0`, and a file `a` before `a-b`). As all paths below a folder share its `name/` prefix they
 * are contiguous in the sorted list of all paths, so the walk meets files exactly in manifest order.
 */
interface WalkFrame {
  relDir: string;
  dirAbs: string;
  items: string[];
  /** Names among `items` that are symbolic links. */
  links?: Set<string>;
  next: number;
}

/**
 * Normalises a workspace-relative path to `a/b/c` form (`.` for the root). Throws InvalidPathError for
 * empty paths, NUL bytes, absolute paths (POSIX, Windows drive or UNC) and paths escaping with `..`.
 * Backslashes are separators on Windows only (elsewhere they are legal in names).
 */
export function normalizeRelPath(relPath: string): string {
  if (typeof relPath !== 'string' || relPath.length === 0) throw new InvalidPathError(String(relPath), 'the path is empty.');
  if (relPath.includes('\0')) throw new InvalidPathError(relPath, 'the path contains a NUL character.');
  if (path.posix.isAbsolute(relPath) || path.win32.isAbsolute(relPath) || /^[A-Za-z]:/.test(relPath)) {
    throw new InvalidPathError(relPath, 'absolute paths are not allowed here; use a path relative to the workspace folder.');
  }
  const p = process.platform === 'win32' ? relPath.replace(/\\/g, '/') : relPath;
  let n = path.posix.normalize(p);
  while (n.length > 1 && n.endsWith('/')) n = n.slice(0, -1);
  if (n === '..' || n.startsWith('../')) throw new InvalidPathError(relPath, 'the path leaves the workspace folder with `..`.');
  return n;
}

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

function isMissing(e: unknown): boolean {
  const c = errCode(e);
  return c === 'ENOENT' || c === 'ENOTDIR';
}

/** Runs `fn` over items with at most `n` in flight; stops taking new items after the first failure. */
async function pool<T>(items: readonly T[], n: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        await fn(items[i], i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < Math.min(n, items.length); i++) workers.push(worker());
  await Promise.all(workers);
}

/** A counting semaphore for operations that hold file descriptors, shared by every call on one hasher. */
class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly max: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active < this.max) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve)); // the releaser hands its slot over
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** Yields to the event loop every ~10 ms of synchronous work, so a long walk never freezes the process. */
class Slicer {
  private deadline = performance.now() + SLICE_MS;
  private n = 0;
  /** Call once per unit of work; resolves at once except when a slice is used up. */
  tick(): Promise<void> | undefined {
    if ((++this.n & 63) !== 0 || performance.now() < this.deadline) return undefined;
    return setImmediateP().then(() => {
      this.deadline = performance.now() + SLICE_MS;
    });
  }
}

/**
 * Synchronous lstat in slices (see `hashDir`), with a running check of its cost: `slow` turns true when
 * 256 calls averaged over `slowStatMs` each (a network file system), and the caller goes parallel instead.
 */
class SyncStatter {
  slow = false;
  constructor(private readonly slowStatMs: number) {}
  private readonly slicer = new Slicer();
  private sampleStart = performance.now();
  private sampled = 0;

  /** lstat without following links; undefined when the path is gone. Other errors are thrown. */
  stat(abs: string): fs.Stats | undefined {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(abs, { throwIfNoEntry: false });
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
    if (++this.sampled === 256) {
      const now = performance.now();
      this.slow = (now - this.sampleStart) / 256 > this.slowStatMs;
      this.sampleStart = now;
      this.sampled = 0;
    }
    return st;
  }

  /** Call after each unit of work; await the result when there is one (the end of a slice). */
  pause(): Promise<void> | undefined {
    const y = this.slicer.tick();
    return y?.then(() => {
      this.sampleStart = performance.now();
      this.sampled = 0;
    });
  }
}

export class ContentHasher {
  readonly root: string;
  readonly cacheFile: string;
  private readonly concurrency: number;
  private readonly racyMarginMs: number;
  private readonly trustCtime: boolean;
  private readonly slowStatMs: number;
  private readonly readStream?: (absPath: string) => AsyncIterable<Uint8Array>;
  private readonly limiter: Limiter;

  /** Key -> entry, as the text of its line after the key (`size\tmtimeMs\tctimeMs\tino\thash`), parsed when used. */
  private readonly entries = new Map<string, string>();
  /** Keys verified (hit), stored or found racy in this session: they exist. */
  private readonly seen = new Set<string>();
  /** Folder keys listed completely in this session: an unseen entry below one of them is gone. */
  private readonly walked = new Set<string>();
  private readonly inflight = new Map<string, Promise<{ hash: ContentHash; size: number }>>();
  private loaded?: Promise<void>;
  private dirty = false;
  private probeDirReady = false;
  private readonly counters: HasherStats = { filesRead: 0, bytesRead: 0, cacheHits: 0, racyFiles: 0 };

  constructor(opts: ContentHasherOptions) {
    this.root = path.resolve(opts.root);
    this.cacheFile = path.resolve(this.root, opts.cacheFile ?? path.join('.mlpipeline', 'cache', 'stat-cache.txt'));
    this.concurrency = Math.max(1, Math.floor(opts.concurrency ?? DEFAULT_CONCURRENCY));
    this.racyMarginMs = Math.max(0, opts.racyMarginMs ?? DEFAULT_RACY_MARGIN_MS);
    this.trustCtime = opts.trustCtime ?? true;
    this.slowStatMs = opts.slowStatMs ?? DEFAULT_SLOW_STAT_MS;
    this.readStream = opts.readStream;
    this.limiter = new Limiter(this.concurrency);
  }

  /** Counters since construction (a copy). */
  get stats(): HasherStats {
    return { ...this.counters };
  }

  /** sha256 of a file's bytes (a link hashes as its target text; it is not followed). Folders throw. */
  async hashFile(relPath: string, options?: HashPathOptions): Promise<ContentHash> {
    const r = await this.hashPath(relPath, options);
    if (r.kind === 'dir') throw new Error(`${relPath} is a folder, not a file.`);
    return r.hash;
  }

  /** Hash of a file, link or folder (see the module comment). Missing paths throw MissingPathError. */
  async hashPath(relPath: string, options: HashPathOptions = {}): Promise<PathHash> {
    const key = this.keyFor(relPath, options);
    await this.load();
    const abs = path.resolve(this.root, key);
    let st: fs.Stats;
    try {
      st = await fsp.lstat(abs);
    } catch (e) {
      if (isMissing(e)) throw new MissingPathError(relPath, { cause: e });
      throw e;
    }
    const ctx: CallContext = {};
    if (st.isSymbolicLink()) return { hash: await this.hashLink(abs), kind: 'symlink', files: 1, bytes: 0 };
    if (st.isFile()) {
      const hit = this.cached(key, st);
      const r = hit !== undefined ? { hash: hit, size: st.size } : await this.readAndStore(ctx, key, abs);
      return { hash: r.hash, kind: 'file', files: 1, bytes: r.size };
    }
    if (st.isDirectory()) return this.hashDir(ctx, relPath, key, abs);
    throw new Error(`${relPath} is neither a regular file nor a folder (a socket, FIFO or device cannot be hashed).`);
  }

  /**
   * Writes the stat cache crash-safely (temporary file, fsync, rename). Entries of files that are gone are
   * pruned first: those below a folder listed in this session for free, the others with one lstat each.
   * Nothing is written when nothing changed. Concurrent writers: the last one wins (it is only a cache).
   */
  async save(): Promise<void> {
    await this.load();
    const toCheck: string[] = [];
    for (const key of this.entries.keys()) {
      if (this.seen.has(key)) continue;
      if (this.belowWalkedFolder(key)) {
        this.entries.delete(key);
        this.dirty = true;
      } else toCheck.push(key);
    }
    const check = (key: string, st: fs.Stats | undefined): void => {
      const v = this.entries.get(key);
      if (v === undefined || !st || !st.isFile() || entryHash(v, st, this.trustCtime) === undefined) {
        this.entries.delete(key);
        this.dirty = true;
      } else this.seen.add(key);
    };
    const statter = new SyncStatter(this.slowStatMs);
    const later: string[] = [];
    for (const key of toCheck) {
      if (statter.slow) {
        later.push(key);
        continue;
      }
      let st: fs.Stats | undefined;
      try {
        st = statter.stat(path.resolve(this.root, key));
      } catch {
        continue; // unreadable now (permissions): keep the entry, it is checked on use
      }
      check(key, st);
      const y = statter.pause();
      if (y) await y;
    }
    await pool(later, this.concurrency, async (key) => {
      let st: fs.Stats | undefined;
      try {
        st = await fsp.lstat(path.resolve(this.root, key));
      } catch (err) {
        if (!isMissing(err)) return;
      }
      check(key, st);
    });
    if (!this.dirty) return;
    await fsp.mkdir(path.dirname(this.cacheFile), { recursive: true });
    await writeFileAtomic(this.cacheFile, serializeCache(this.entries));
    this.dirty = false;
  }

  // ---- internals -----------------------------------------------------------------------------------------

  private keyFor(relPath: string, options: HashPathOptions): string {
    if (!options.allowOutsideRoot) return normalizeRelPath(relPath);
    if (typeof relPath !== 'string' || relPath.length === 0 || relPath.includes('\0')) return normalizeRelPath(relPath);
    const abs = path.resolve(this.root, relPath);
    const rel = path.relative(this.root, abs);
    if (rel === '') return '.';
    if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) return abs; // outside: keyed by its absolute path
    return rel.split(path.sep).join('/');
  }

  private load(): Promise<void> {
    this.loaded ??= fsp.readFile(this.cacheFile).then(
      (buf) => {
        if (!parseCache(buf, this.entries)) {
          this.entries.clear();
          this.dirty = true; // corrupt: ignored, and replaced on the next save
        }
      },
      () => undefined, // missing or unreadable: start empty
    );
    return this.loaded;
  }

  /** The cached hash when the entry for `key` matches `st`; counts the hit. */
  private cached(key: string, st: fs.Stats): ContentHash | undefined {
    const v = this.entries.get(key);
    const hash = v === undefined ? undefined : entryHash(v, st, this.trustCtime);
    if (hash === undefined) return undefined;
    this.counters.cacheHits++;
    this.seen.add(key);
    return hash;
  }

  /**
   * True when an ancestor folder of `key` was listed completely in this session (so a key not seen then
   * is gone) and no name between them is one the listing skips.
   */
  private belowWalkedFolder(key: string): boolean {
    if (this.walked.size === 0) return false;
    let end = key.length;
    for (;;) {
      const slash = key.lastIndexOf('/', end - 1);
      const name = key.slice(slash + 1, end);
      if (SKIPPED_NAMES.has(name)) return false;
      if (slash < 0) return this.walked.has('.') && !path.isAbsolute(key);
      if (slash === 0) return false; // an absolute key's top: only roots listed by absolute key count
      if (this.walked.has(key.slice(0, slash))) return true;
      end = slash;
    }
  }

  private async hashLink(abs: string): Promise<ContentHash> {
    return linkHash(await fsp.readlink(abs, { encoding: 'buffer' }));
  }

  /** Reads a file (deduplicated while in flight), hashes it and stores its entry unless it is racy. */
  private readAndStore(ctx: CallContext, key: string, abs: string): Promise<{ hash: ContentHash; size: number }> {
    let p = this.inflight.get(key);
    if (!p) {
      p = this.readAndStoreOnce(ctx, key, abs).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async readAndStoreOnce(ctx: CallContext, key: string, abs: string): Promise<{ hash: ContentHash; size: number }> {
    ctx.probe ??= this.takeProbe();
    const probe = await ctx.probe;
    const processClock = Date.now(); // taken before the file is opened, like the probe
    return this.limiter.run(async () => {
      let fh: fsp.FileHandle;
      try {
        fh = await fsp.open(abs, fs.constants.O_RDONLY | O_NOFOLLOW);
      } catch (err) {
        if (isMissing(err)) throw new MissingPathError(key, { cause: err });
        if (errCode(err) === 'ELOOP') throw new Error(`${key} turned into a symbolic link while it was being hashed; run again.`);
        throw err;
      }
      try {
        const st = await fh.stat(); // the very file that is read, not whatever the name points to later
        if (!st.isFile()) throw new Error(`${key} is no longer a regular file; run again.`);
        const h = createHash('sha256');
        let bytes = 0;
        if (this.readStream) {
          for await (const chunk of this.readStream(abs)) {
            h.update(chunk);
            bytes += chunk.length;
          }
        } else bytes = await readAll(fh, st.size, h);
        const hash = h.digest('hex');
        this.counters.filesRead++;
        this.counters.bytesRead += bytes;
        // The racy-timestamp rule (module comment): only an entry whose mtime is older than a clock reading
        // taken before the read is stored; any later write then gives the file a different mtime.
        const trustBefore = probe && probe.dev === st.dev ? probe.mtimeMs : processClock - this.racyMarginMs;
        this.seen.add(key);
        if (st.mtimeMs < trustBefore && bytes === st.size) {
          this.entries.set(key, formatEntry(st, hash));
          this.dirty = true;
        } else {
          this.counters.racyFiles++;
          if (this.entries.delete(key)) this.dirty = true; // read again next time
        }
        return { hash, size: bytes };
      } finally {
        await fh.close();
      }
    });
  }

  /** The file system's "now": the mtime of a probe file written next to the cache. Undefined when it cannot be written. */
  private async takeProbe(): Promise<Probe | undefined> {
    const dir = path.dirname(this.cacheFile);
    try {
      if (!this.probeDirReady) {
        await fsp.mkdir(dir, { recursive: true });
        this.probeDirReady = true;
      }
      return await this.limiter.run(async () => {
        const fh = await fsp.open(path.join(dir, 'clock-probe'), 'w');
        try {
          await fh.write(String(Date.now()));
          const st = await fh.stat();
          return { mtimeMs: st.mtimeMs, dev: st.dev };
        } finally {
          await fh.close();
        }
      });
    } catch {
      return undefined;
    }
  }

  /**
   * A folder: walk it, lstat every file and answer what the stat cache can, read the rest, then hash the
   * manifest.
   *
   * The walk is depth-first with each folder's entries sorted by name, a folder's name counted with its
   * trailing `/`: that visits files exactly in the manifest's order (sorted by full relative path; see
   * `WalkFrame`), so no sort of all paths is needed. Listing and lstat run synchronously, in slices of
   * ~10 ms with a yield to the event loop between slices: on local disks a synchronous lstat costs a few
   * microseconds where a promise through libuv's thread pool costs several times that, and the no-change
   * check is nothing but lstat calls. When lstat turns out slow (a network file system: over 250 us on
   * average over 256 calls), the remaining files are stat'ed in parallel instead. Reads always run in
   * parallel, `concurrency` at once.
   */
  private async hashDir(ctx: CallContext, relPath: string, key: string, abs: string): Promise<PathHash> {
    const prefix = key === '.' ? '' : `${key}/`;
    // One slot per file or link, in manifest order; `hashes[i]` stays undefined for one that vanished.
    const rels: string[] = [];
    const kinds: Array<'f' | 'l'> = [];
    const hashes: Array<ContentHash | undefined> = [];
    const sizes: number[] = [];
    const toStat: Array<[index: number, abs: string]> = [];
    const toRead: Array<[index: number, abs: string]> = [];
    const links: Array<[index: number, abs: string]> = [];

    const examine = (i: number, fileAbs: string, st: fs.Stats | undefined): void => {
      if (!st) return; // removed while hashing
      if (st.isFile()) {
        const hit = this.cached(prefix + rels[i], st);
        if (hit === undefined) toRead.push([i, fileAbs]);
        else {
          hashes[i] = hit;
          sizes[i] = st.size;
        }
      } else if (st.isSymbolicLink()) {
        kinds[i] = 'l';
        links.push([i, fileAbs]);
      }
      // became a folder or something else since the listing: left out, as if listed a moment later
    };

    const statter = new SyncStatter(this.slowStatMs);
    const list = (relDir: string, dirAbs: string): WalkFrame | undefined => {
      let dirents: fs.Dirent[];
      try {
        dirents = fs.readdirSync(dirAbs, { withFileTypes: true });
      } catch (e) {
        if (!isMissing(e)) throw e;
        if (relDir === '') throw new MissingPathError(relPath, { cause: e });
        return undefined; // removed while walking
      }
      // Plain strings, not objects: a folder's name gets its `/` (its walk order, see WalkFrame), links
      // (rare) are remembered apart.
      const items: string[] = [];
      let links: Set<string> | undefined;
      for (const d of dirents) {
        const name = d.name;
        if (SKIPPED_NAMES.has(name)) continue;
        if (d.isDirectory()) items.push(`${name}/`);
        else if (d.isFile()) items.push(name);
        else if (d.isSymbolicLink()) {
          items.push(name);
          (links ??= new Set()).add(name);
        }
        // sockets, FIFOs, devices: skipped (reading a FIFO would block)
      }
      items.sort(); // UTF-16 code unit order, like the manifest
      return { relDir, dirAbs, items, links, next: 0 };
    };

    const stack: WalkFrame[] = [list('', abs)!];
    while (stack.length) {
      const frame = stack[stack.length - 1];
      if (frame.next === frame.items.length) {
        stack.pop();
        continue;
      }
      const item = frame.items[frame.next++];
      const isDir = item.charCodeAt(item.length - 1) === 0x2f; /* / */
      const name = isDir ? item.slice(0, -1) : item;
      const rel = frame.relDir ? `${frame.relDir}/${name}` : name;
      const childAbs = frame.dirAbs + path.sep + name;
      if (isDir) {
        const sub = list(rel, childAbs);
        if (sub) stack.push(sub);
      } else {
        const link = frame.links?.has(name) ?? false;
        const i = rels.length;
        rels.push(rel);
        kinds.push(link ? 'l' : 'f');
        hashes.push(undefined);
        sizes.push(0);
        if (link) links.push([i, childAbs]);
        else if (statter.slow) toStat.push([i, childAbs]);
        else examine(i, childAbs, statter.stat(childAbs));
      }
      const y = statter.pause();
      if (y) await y;
    }

    await pool(toStat, this.concurrency, async ([i, fileAbs]) => {
      let st: fs.Stats | undefined;
      try {
        st = await fsp.lstat(fileAbs);
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
      examine(i, fileAbs, st);
    });
    await pool(toRead, this.concurrency, async ([i, fileAbs]) => {
      try {
        const r = await this.readAndStore(ctx, prefix + rels[i], fileAbs);
        hashes[i] = r.hash;
        sizes[i] = r.size;
      } catch (e) {
        if (!(e instanceof MissingPathError)) throw e; // removed while hashing
      }
    });
    await pool(links, this.concurrency, async ([i, fileAbs]) => {
      try {
        hashes[i] = await this.hashLink(fileAbs);
      } catch (e) {
        if (!isMissing(e) && errCode(e) !== 'EINVAL') throw e; // removed, or no longer a link
      }
    });

    const h = createHash('sha256').update(MANIFEST_HEADER);
    let chunk = '';
    let files = 0;
    let bytes = 0;
    for (let i = 0; i < rels.length; i++) {
      const hash = hashes[i];
      if (hash === undefined) continue;
      chunk += manifestLine(rels[i], kinds[i], hash);
      if (chunk.length > 65536) {
        h.update(chunk);
        chunk = '';
      }
      files++;
      if (kinds[i] === 'f') bytes += sizes[i];
    }
    this.walked.add(key);
    return { hash: h.update(chunk).digest('hex'), kind: 'dir', files, bytes };
  }
}

// ---- the stat cache file --------------------------------------------------------------------------------
//
// Text, one entry a line, each line parsed only when its file is looked up (JSON.parse of 10,000 entries
// alone took a fifth of the no-change budget on a 2-core machine):
//
//   mlpipeline-stat-cache 2
//   <key>\t<size>\t<mtimeMs>\t<ctimeMs, empty when equal to mtimeMs>\t<ino>\t<sha256 hex>
//   end <entry count> <crc32 of every byte before this line, 8 hex digits>
//
// Only trusted entries are ever stored (the racy rule is applied when an entry is made), so no timestamp
// of the hashing itself needs to be kept. A key holding a tab, CR, LF or starting with `"` is written as a
// JSON string. A file whose header, trailer, count or checksum is wrong (truncated, damaged, another
// version) is ignored as a whole; the CRC keeps a flipped bit from turning into a wrong cached hash.

const CACHE_HEADER = `mlpipeline-stat-cache ${STAT_CACHE_VERSION}\n`;

function formatEntry(st: fs.Stats, hash: ContentHash): string {
  return `${st.size}\t${st.mtimeMs}\t${st.ctimeMs === st.mtimeMs ? '' : st.ctimeMs}\t${st.ino}\t${hash}`;
}

/** The entry's hash when its size, mtime, inode (and ctime) equal `st`'s; undefined otherwise or when damaged. */
function entryHash(v: string, st: fs.Stats, trustCtime: boolean): ContentHash | undefined {
  const t1 = v.indexOf('\t');
  const t2 = v.indexOf('\t', t1 + 1);
  const t3 = v.indexOf('\t', t2 + 1);
  const t4 = v.indexOf('\t', t3 + 1);
  if (t1 <= 0 || t4 < 0 || v.length - t4 !== 65) return undefined;
  if (digits(v, 0, t1) !== st.size || digits(v, t3 + 1, t4) !== st.ino) return undefined;
  const mtime = Number(v.slice(t1 + 1, t2));
  if (mtime !== st.mtimeMs) return undefined;
  if (trustCtime && (t3 === t2 + 1 ? mtime : Number(v.slice(t2 + 1, t3))) !== st.ctimeMs) return undefined;
  // Lines are CRC-checked on load and made here, so the 64 characters are hex; no regex on the hot path.
  return v.slice(t4 + 1);
}

/** The decimal integer in v[from, to) without allocating; NaN when it is not one (or is too long to be exact). */
function digits(v: string, from: number, to: number): number {
  if (to <= from || to - from > 15) return to - from > 15 ? Number(v.slice(from, to)) : NaN;
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = v.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return NaN;
    n = n * 10 + c;
  }
  return n;
}

function serializeCache(entries: Map<string, string>): string {
  const lines: string[] = [CACHE_HEADER];
  for (const [k, v] of entries) {
    const key = /[\t\r\n]/.test(k) || k.startsWith('"') ? JSON.stringify(k) : k;
    lines.push(`${key}\t${v}\n`);
  }
  const body = lines.join('');
  return `${body}end ${entries.size} ${crc32(Buffer.from(body, 'utf8')).toString(16).padStart(8, '0')}\n`;
}

/** Fills `into` from a cache file's bytes; false when the file is not an intact cache file. */
function parseCache(buf: Buffer, into: Map<string, string>): boolean {
  let end = buf.length;
  if (end === 0 || buf[end - 1] !== 0x0a) return false;
  end--;
  const lastNl = buf.lastIndexOf(0x0a, end - 1);
  if (lastNl < 0) return false;
  const m = /^end (\d+) ([0-9a-f]{8})$/.exec(buf.toString('latin1', lastNl + 1, end));
  if (!m) return false;
  const body = buf.subarray(0, lastNl + 1);
  if (crc32(body) !== parseInt(m[2], 16)) return false;
  const text = isAscii(body) ? body.toString('latin1') : body.toString('utf8'); // latin1: the cheap decode of ASCII
  if (!text.startsWith(CACHE_HEADER)) return false;
  let pos = CACHE_HEADER.length;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    let tab: number;
    let key: string;
    if (text.charCodeAt(pos) === 0x22 /* " */) {
      tab = text.indexOf('"\t', pos + 1) + 1;
      if (tab <= 0 || tab > nl) return false;
      try {
        key = JSON.parse(text.slice(pos, tab)) as string;
      } catch {
        return false;
      }
    } else {
      tab = text.indexOf('\t', pos);
      if (tab < 0 || tab > nl) return false;
      key = text.slice(pos, tab);
    }
    into.set(key, text.slice(tab + 1, nl));
    pos = nl + 1;
  }
  return into.size === Number(m[1]);
}

/** Reads a whole file through its handle into the hash, in chunks of at most 1 MiB; returns the bytes read. */
async function readAll(fh: fsp.FileHandle, sizeHint: number, h: Hash): Promise<number> {
  const buf = Buffer.allocUnsafe(Math.min(Math.max(sizeHint + 1, 4096), READ_CHUNK));
  let total = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, null);
    if (bytesRead === 0) return total;
    h.update(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
    total += bytesRead;
  }
}
