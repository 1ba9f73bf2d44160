/**
 * The embedded run store: a folder inside the workspace (default `<workspace>/.mlpipeline/runs`), no server.
 *
 * Layout (everything below `root`):
 *   <id>/run.json                 the RunRecord (+ `writer` and `rev`), replaced atomically on every update
 *   <id>/logs/<step>.log          step output, appended as it streams; step names percent-encoded
 *   <id>/series/<step>/<file>     plot files copied at step end
 *   index.jsonl                   one checksummed line per summary change of a run; highest `rev` per id wins
 *   index.lock                    held only while the index is being compacted
 *   .gitignore                    `*`, so runs never make the workspace's git status dirty
 *
 * The run folders are the truth; the index is a cache that makes `list()` cheap and heals itself:
 * folders missing from it are read from their run.json, entries whose folder is gone are dropped, and
 * entries still marked `running` are checked against their run.json (and their writer's liveness).
 * Crash safety rests on three rules: a record file is only ever replaced by rename, an index line is
 * one O_APPEND write carrying its own checksum, and nothing is trusted that a later reader cannot verify.
 *
 * Node built-ins only; no `vscode` imports.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { crc32, crc32Text, fsyncDir, isTempName, readJsonSafe, tempSibling, writeAll, writeFileAtomic } from './atomic-file';
import type { RunRecord, RunStatus, RunSummary } from './records';

// ---- public constants and errors -------------------------------------------------------------------------

/** `20261125-103000-1a2b3c`: UTC date and time of creation, then 24 random bits. */
export const RUN_ID_PATTERN = /^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$/;

/** The error a run gets when the process recording it died before finishing it. */
export const INTERRUPTED_ERROR =
  'interrupted: the process recording this run stopped (killed or crashed) before it finished';

export type RunStoreErrorCode = 'invalid-id' | 'not-found' | 'ambiguous' | 'exists' | 'closed' | 'busy' | 'unsupported' | 'invalid';

export class RunStoreError extends Error {
  constructor(
    message: string,
    readonly code: RunStoreErrorCode,
  ) {
    super(message);
    this.name = 'RunStoreError';
  }
}

/** Who is recording a run: enough to tell later, on the same machine, whether that process still lives. */
export interface WriterInfo {
  pid: number;
  host: string;
  /** When the writing process started (ISO). */
  startedAt: string;
  /** Linux: the process start time in clock ticks since boot (/proc/<pid>/stat field 22), to detect pid reuse. */
  procStart?: string;
  /** Linux: /proc/sys/kernel/random/boot_id, to detect a reboot. */
  bootId?: string;
}

export interface RunStoreOptions {
  /**
   * fsync record files before renaming them, the run folder at creation and finish, logs and the index
   * line at finish (default true). Only power loss needs this; a killed process never loses written data.
   */
  durable?: boolean;
  /** Compact the index when it has more than `compactRatio × runs + compactMinLines` lines (defaults 2 and 1000). */
  compactMinLines?: number;
  compactRatio?: number;
}

export interface ListStats {
  /** Non-empty lines in index.jsonl. */
  indexLines: number;
  /** Lines that failed their checksum or did not parse (torn or damaged); skipped. */
  badLines: number;
  /** Runs listed. */
  runs: number;
  /** Runs whose summary came from run.json because the index lacked them or was behind. */
  healed: number;
  /** Index entries dropped because their folder is gone. */
  dropped: number;
  /** Whether this call rewrote the index. */
  compacted: boolean;
}

export interface RunWriter {
  readonly id: string;
  /** Applies `mutate` to a copy of the record and commits it (atomic rewrite; an index line when the summary changed). Serialised per writer; a throwing `mutate` changes nothing. */
  update(mutate: (r: RunRecord) => void): Promise<void>;
  /** Buffers output for a step's log; written in order, soon. Never throws; see `logError`. */
  appendLog(step: string, chunk: string | Uint8Array): void;
  /** Waits until every log chunk appended so far is written. */
  flush(): Promise<void>;
  /** Copies plot files into `series/<step>/`; returns their run-relative paths (missing sources are skipped). */
  copySeries(step: string, files: string[]): Promise<string[]>;
  /** Flushes logs, sets status, `finishedAt` and `error`, writes the final record durably. The writer is closed afterwards. */
  finish(status: Exclude<RunStatus, 'running'>, error?: string): Promise<void>;
  /** A copy of the record as last committed. */
  snapshot(): RunRecord;
  /** The first error writing logs hit, if any (logging never throws on the caller). */
  readonly logError: Error | undefined;
}

// ---- summaries, ids, names -------------------------------------------------------------------------------

/** The index line's view of a run; metrics flattened as `step.metric` (non-finite values left out: JSON cannot hold them). */
export function summarize(r: RunRecord): RunSummary {
  const metrics: [string, number][] = [];
  for (const [step, s] of Object.entries(r.steps ?? {})) {
    if (!s || typeof s.metrics !== 'object' || s.metrics === null) continue;
    for (const [name, value] of Object.entries(s.metrics)) {
      if (typeof value === 'number' && Number.isFinite(value)) metrics.push([`${step}.${name}`, value]);
    }
  }
  const summary: RunSummary = {
    id: r.id,
    specName: r.spec?.name ?? '',
    status: r.status,
    startedAt: r.startedAt,
    params: Object.fromEntries(Object.entries(r.params ?? {})),
    metrics: Object.fromEntries(metrics),
  };
  if (r.label !== undefined) summary.label = r.label;
  if (r.finishedAt !== undefined) summary.finishedAt = r.finishedAt;
  if (r.git?.commit) summary.gitCommit = r.git.commit;
  if (r.sweep) summary.sweep = { name: r.sweep.name, trial: r.sweep.trial };
  return summary;
}

export function isRunId(id: unknown): id is string {
  return typeof id === 'string' && RUN_ID_PATTERN.test(id);
}

function assertRunId(id: unknown): asserts id is string {
  if (!isRunId(id)) {
    const shown = typeof id === 'string' ? JSON.stringify(id.length > 60 ? `${id.slice(0, 60)}…` : id) : String(id);
    throw new RunStoreError(`invalid run id ${shown}: run ids look like 20261125-103000-1a2b3c`, 'invalid-id');
  }
}

const SAFE = /[A-Za-z0-9_-]/;

/**
 * A file-name-safe, injective encoding of user text (step names, plot names): `[A-Za-z0-9_-]` kept (and
 * `.` when `keepDots`, except leading), other code points percent-encoded as UTF-8, lone surrogates as
 * `%uXXXX`; the empty name is `%`. Long results keep a prefix and a hash, so names stay under 255 bytes.
 */
export function encodeName(name: string, keepDots = false): string {
  if (name === '') return '%';
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const ch = name[i];
    if (SAFE.test(ch) || (keepDots && ch === '.' && i > 0)) {
      out += ch;
      continue;
    }
    const code = name.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < name.length) {
      const next = name.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += percent(name.slice(i, i + 2));
        i++;
        continue;
      }
    }
    if (code >= 0xd800 && code <= 0xdfff) out += `%u${code.toString(16).toUpperCase()}`;
    else out += percent(ch);
  }
  if (out.length > 120) {
    const digest = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 16);
    const ext = keepDots ? /\.[A-Za-z0-9]{1,10}$/.exec(out)?.[0] ?? '' : '';
    out = `${out.slice(0, 90)}~${digest}${ext}`;
  }
  return out;
}

function percent(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

// ---- the writer's identity and liveness ------------------------------------------------------------------

function readProc(path: string): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** State letter and start time (ticks since boot) from /proc/<pid>/stat; the command name may hold spaces and parens. */
function procStat(pid: number | 'self'): { state: string; start: string } | undefined {
  const text = readProc(`/proc/${pid}/stat`);
  if (!text) return undefined;
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
  return fields.length > 19 ? { state: fields[0], start: fields[19] } : undefined;
}

const HOST = hostname();
const BOOT_ID = readProc('/proc/sys/kernel/random/boot_id')?.trim() || undefined;

function selfWriterInfo(): WriterInfo {
  const info: WriterInfo = {
    pid: process.pid,
    host: HOST,
    startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
  };
  const stat = procStat('self');
  if (stat) info.procStart = stat.start;
  if (BOOT_ID) info.bootId = BOOT_ID;
  return info;
}

/**
 * Whether the process that recorded a `running` run may still be recording it. True when that cannot be
 * known (no writer recorded, another host); false when it is gone, a zombie, or its pid now belongs to a
 * different process (start time differs) or the machine rebooted since.
 */
export function isWriterAlive(writer: WriterInfo | undefined): boolean {
  if (writer === undefined || writer === null) return true;
  if (typeof writer !== 'object' || !Number.isInteger(writer.pid) || writer.pid <= 0) return false;
  if (writer.host !== HOST) return true;
  if (writer.bootId && BOOT_ID && writer.bootId !== BOOT_ID) return false;
  if (writer.pid === process.pid) return !writer.procStart || writer.procStart === procStat('self')?.start;
  try {
    process.kill(writer.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: the process exists but belongs to another user.
  }
  const stat = procStat(writer.pid);
  if (stat) {
    if (stat.state === 'Z' || stat.state === 'X') return false;
    if (writer.procStart && stat.start !== writer.procStart) return false;
  }
  return true;
}

// ---- the index -------------------------------------------------------------------------------------------
//
// One line per summary change: `{"v":1,"id":"<run id>","rev":<n>,"run":<RunSummary>,"crc":"<8 hex>"}`,
// the checksum being the CRC-32 of the bytes before `,"crc"`. Lines are pure ASCII (non-ASCII characters
// are \u-escaped), and the id and rev sit at fixed places. A reader scans the file backwards in chunks
// (newest lines first, one small reused buffer), reads each line's id and rev without parsing it, and
// verifies and parses only lines newer than what it already has for that id: about one parse per run.

interface IndexEntry {
  v: 1;
  id: string;
  /** The record revision this summary was taken from; the highest wins. */
  rev: number;
  run: RunSummary;
}

/** Every line starts with this; it cannot occur inside a JSON string (quotes are escaped there), so it marks where an intact line begins. */
const LINE_PREFIX = Buffer.from('{"v":1,"id":"', 'latin1');
const ID_LENGTH = 22;
const REV_LEAD = Buffer.from('","rev":', 'latin1');
const REV_AT = LINE_PREFIX.length + ID_LENGTH + REV_LEAD.length;
/** `,"crc":"xxxxxxxx"}`: the checksum closes every line. */
const CRC_LEAD = Buffer.from(',"crc":"', 'latin1');
const CRC_SUFFIX_LENGTH = CRC_LEAD.length + 8 + 2;
const MIN_LINE = REV_AT + 1 + CRC_SUFFIX_LENGTH;
const NON_ASCII = /[\u0080-\uffff]/g;
const NEWLINE = Buffer.from('\n');
const CHUNK = 256 * 1024;

/** One index line, newline included; ASCII only. */
function encodeLineText(rev: number, summary: RunSummary): string {
  // The id is written once, in front; the reader puts it back into the summary.
  const { id, ...run } = summary;
  const json = JSON.stringify({ v: 1, id, rev, run }).replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const body = json.slice(0, -1);
  return `${body},"crc":"${crc32Text(body).toString(16).padStart(8, '0')}"}\n`;
}

/** Writes ASCII lines through one reused 1 MiB buffer (no large allocation for a large index). */
async function writeLines(handle: fsp.FileHandle, lines: string[]): Promise<void> {
  const block = Buffer.allocUnsafe(1 << 20);
  let used = 0;
  for (const line of lines) {
    if (used + line.length > block.length) {
      await writeAll(handle, block.subarray(0, used));
      used = 0;
    }
    if (line.length > block.length) await writeAll(handle, Buffer.from(line, 'latin1'));
    else used += block.write(line, used, 'latin1');
  }
  if (used > 0) await writeAll(handle, block.subarray(0, used));
}

function encodeLine(rev: number, summary: RunSummary): Buffer {
  return Buffer.from(encodeLineText(rev, summary), 'latin1');
}

function bytesAt(buf: Buffer, at: number, expected: Buffer): boolean {
  for (let i = 0; i < expected.length; i++) if (buf[at + i] !== expected[i]) return false;
  return true;
}

/** Where the intact line in segment [s, e) starts: the last line prefix in it (a torn write may precede it); -1 when there is none. */
function lineStart(buf: Buffer, s: number, e: number): number {
  if (e - s < MIN_LINE) return -1;
  const at = buf.lastIndexOf(LINE_PREFIX, e - LINE_PREFIX.length);
  return at >= s ? at : -1;
}

/** A line's rev, read from its fixed place without parsing; -1 when the line does not have the expected head. */
function lineRev(buf: Buffer, at: number, e: number): number {
  if (at + REV_AT >= e || !bytesAt(buf, at + REV_AT - REV_LEAD.length, REV_LEAD)) return -1;
  let rev = 0;
  let i = at + REV_AT;
  for (; i < e && i < at + REV_AT + 15; i++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) break;
    rev = rev * 10 + d;
  }
  return i === at + REV_AT || buf[i] !== 44 /* , */ ? -1 : rev;
}

/** Verifies the checksum of line [at, e) and parses it; undefined for anything torn, damaged or not ours. */
function verifyLine(buf: Buffer, at: number, e: number): IndexEntry | undefined {
  const lead = e - CRC_SUFFIX_LENGTH;
  if (lead <= at || buf[e - 1] !== 0x7d || buf[e - 2] !== 0x22 || !bytesAt(buf, lead, CRC_LEAD)) return undefined;
  let crc = 0;
  for (let i = lead + CRC_LEAD.length; i < e - 2; i++) {
    const c = buf[i];
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return undefined;
    crc = crc * 16 + d;
  }
  if (crc !== crc32(buf.subarray(at, lead))) return undefined;
  let entry: IndexEntry;
  try {
    entry = JSON.parse(buf.toString('latin1', at, e)) as IndexEntry;
  } catch {
    return undefined;
  }
  if (entry?.v !== 1 || !Number.isSafeInteger(entry.rev) || typeof entry.run !== 'object' || entry.run === null) return undefined;
  if (!isRunId(entry.id) || typeof entry.run.status !== 'string') return undefined;
  entry.run.id = entry.id;
  return entry;
}

interface ScanResult {
  /** Non-empty newline-delimited segments. */
  lines: number;
  /** Segments or parts of segments found damaged (only lines that could matter are verified). */
  badLines: number;
  /** File offset after the last newline. */
  consumed: number;
  /** Each run's newest valid line. */
  best: Map<string, IndexEntry>;
}

/**
 * Reads the index backwards in chunks and keeps each run's newest valid line (highest rev; the later line
 * on a tie). A line is verified and parsed only when it is newer than what is kept for its id, so a line
 * that fails is simply passed over for that id's older ones. A segment with a torn write before an intact
 * line (a crash, then another append on the same line) counts as bad and its intact line is used.
 */
async function scanIndex(handle: fsp.FileHandle, size: number): Promise<ScanResult> {
  const best = new Map<string, IndexEntry>();
  let lines = 0;
  let badLines = 0;
  let consumed = -1;
  let buf = Buffer.allocUnsafe(CHUNK * 2);
  let carry = Buffer.alloc(0); // the start of a segment whose end was in the chunk read before
  const segment = (s: number, e: number) => {
    if (e <= s) return;
    lines++;
    const at = lineStart(buf, s, e);
    if (at < 0) {
      badLines++;
      return;
    }
    if (at > s) badLines++;
    const rev = lineRev(buf, at, e);
    if (rev < 0) {
      badLines++;
      return;
    }
    const id = buf.toString('latin1', at + LINE_PREFIX.length, at + LINE_PREFIX.length + ID_LENGTH);
    const kept = best.get(id);
    if (kept && kept.rev >= rev) return;
    const entry = verifyLine(buf, at, e);
    if (entry && entry.id === id && entry.rev === rev) best.set(id, entry);
    else badLines++;
  };
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - CHUNK);
    const len = end - start;
    if (buf.length < len + carry.length) buf = Buffer.allocUnsafe((len + carry.length) * 2);
    for (let got = 0; got < len; ) {
      const { bytesRead } = await handle.read(buf, got, len - got, start + got);
      if (bytesRead === 0) throw new Error('the index shrank while being read');
      got += bytesRead;
    }
    carry.copy(buf, len);
    // buf[0, len + carry.length) is the file from `start` on, up to the end of the carried segment.
    let pos = len + carry.length;
    for (;;) {
      const nl = pos > 0 ? buf.lastIndexOf(0x0a, pos - 1) : -1;
      if (nl < 0) break;
      if (consumed < 0) consumed = start + nl + 1;
      segment(nl + 1, pos);
      pos = nl;
    }
    if (start === 0) segment(0, pos);
    else carry = Buffer.from(buf.subarray(0, pos));
    end = start;
  }
  return { lines, badLines, consumed: Math.max(consumed, 0), best };
}

/** Valid lines in `buf` (torn ones dropped), each with its newline, and the offset after the last newline. */
function validLines(buf: Buffer, includeUnterminated: boolean): { data: Buffer; next: number } {
  const parts: Buffer[] = [];
  const take = (s: number, e: number) => {
    const at = lineStart(buf, s, e);
    if (at >= 0 && verifyLine(buf, at, e)) parts.push(buf.subarray(at, e), NEWLINE);
  };
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, start);
    if (nl === -1) break;
    if (nl > start) take(start, nl);
    start = nl + 1;
  }
  if (includeUnterminated && start < buf.length) {
    take(start, buf.length);
    start = buf.length;
  }
  return { data: Buffer.concat(parts), next: start };
}

interface IndexSnapshot extends ScanResult {
  handle: fsp.FileHandle;
  ino: number;
  dev: number;
}

// ---- the store -------------------------------------------------------------------------------------------

interface StoredRun extends RunRecord {
  writer?: WriterInfo;
  rev?: number;
}

type Terminal = Exclude<RunStatus, 'running'>;
const TERMINAL: ReadonlySet<string> = new Set<Terminal>(['succeeded', 'failed', 'cancelled']);

export class RunStore {
  readonly root: string;
  readonly durable: boolean;
  readonly compactMinLines: number;
  readonly compactRatio: number;
  /** What the last `list()` found; for diagnostics, tests and the bench. */
  lastList: ListStats | undefined;
  private rootReady: Promise<void> | undefined;
  /** From the last list(): runs shown as interrupted, and folders without a record (a crash inside create()). */
  private lastDead: { interrupted: string[]; orphans: string[] } = { interrupted: [], orphans: [] };
  private writerInfo: WriterInfo | undefined;

  /** `root` is the runs folder itself, e.g. `<workspace>/.mlpipeline/runs`; it is created on the first write. */
  constructor(root: string, options: RunStoreOptions = {}) {
    this.root = root;
    this.durable = options.durable ?? true;
    this.compactMinLines = options.compactMinLines ?? 1000;
    this.compactRatio = options.compactRatio ?? 2;
  }

  /** The default store of a workspace: `<workspace>/.mlpipeline/runs`. */
  static forWorkspace(workspace: string, options?: RunStoreOptions): RunStore {
    return new RunStore(join(workspace, '.mlpipeline', 'runs'), options);
  }

  /** A sortable, unique id: UTC `YYYYMMDD-HHMMSS` of `now` and 6 random hex digits. */
  newRunId(now: Date = new Date()): string {
    const two = (n: number) => String(n).padStart(2, '0');
    const date = `${String(now.getUTCFullYear()).padStart(4, '0')}${two(now.getUTCMonth() + 1)}${two(now.getUTCDate())}`;
    const time = `${two(now.getUTCHours())}${two(now.getUTCMinutes())}${two(now.getUTCSeconds())}`;
    return `${date}-${time}-${randomBytes(3).toString('hex')}`;
  }

  private get indexPath(): string {
    return join(this.root, 'index.jsonl');
  }

  private runDir(id: string): string {
    assertRunId(id);
    return join(this.root, id);
  }

  /** Absolute path of a step's log file. */
  logPath(id: string, step: string): string {
    return join(this.runDir(id), 'logs', `${encodeName(step)}.log`);
  }

  /** Store-relative path of a step's log, as `StepRecord.log` holds it (`/` separators). */
  logRelPath(id: string, step: string): string {
    assertRunId(id);
    return `${id}/logs/${encodeName(step)}.log`;
  }

  /** Absolute path of a run's folder (series paths in the record are relative to it). */
  runPath(id: string): string {
    return this.runDir(id);
  }

  private ensureRoot(): Promise<void> {
    this.rootReady ??= (async () => {
      await fsp.mkdir(this.root, { recursive: true });
      try {
        await fsp.writeFile(join(this.root, '.gitignore'), '# mlpipeline run store: never committed\n*\n', { flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    })().catch((err) => {
      this.rootReady = undefined;
      throw err;
    });
    return this.rootReady;
  }

  /** Starts recording a run: creates its folder (the id must be new), run.json and an index line. */
  async create(record: RunRecord): Promise<RunWriter> {
    assertRunId(record?.id);
    if (record.schema !== 1) throw new RunStoreError(`run ${record.id}: unsupported record schema ${String(record.schema)}`, 'unsupported');
    await this.ensureRoot();
    const dir = this.runDir(record.id);
    try {
      await fsp.mkdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new RunStoreError(`run ${record.id} already exists`, 'exists');
      throw err;
    }
    await fsp.mkdir(join(dir, 'logs'));
    if (this.durable) await fsyncDir(this.root);
    this.writerInfo ??= selfWriterInfo();
    const writer = new FileRunWriter(this, structuredClone(record), this.writerInfo);
    await writer.commitInitial();
    return writer;
  }

  /** The record as stored, with the interrupted-run rule applied; undefined when there is no such run. */
  async get(id: string): Promise<RunRecord | undefined> {
    const stored = await this.readStored(id);
    return stored ? present(stored) : undefined;
  }

  private async readStored(id: string): Promise<StoredRun | undefined> {
    const file = join(this.runDir(id), 'run.json');
    const stored = await readJsonSafe<StoredRun>(file);
    if (!stored || typeof stored !== 'object' || stored.id !== id) return undefined;
    if (stored.schema !== 1) {
      throw new RunStoreError(`run ${id} was recorded with record schema ${String(stored.schema)}; this version reads schema 1`, 'unsupported');
    }
    return stored;
  }

  /** Ids of run folders: entries named like run ids (temporary and trash entries are not). */
  private async runNames(): Promise<string[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names.filter(isRunId);
  }

  private async readIndex(): Promise<IndexSnapshot | undefined> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(this.indexPath, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const st = await handle.stat();
      const scan = await scanIndex(handle, st.size);
      return { handle, ino: st.ino, dev: st.dev, ...scan };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Every run, newest first (by start time, then id). Reads the index and reconciles it with the run
   * folders; runs still `running` are checked against their run.json and their writer (a dead writer's run
   * is reported `failed`). Never fails on a damaged index or record; compacts the index when it is mostly stale.
   */
  async list(): Promise<RunSummary[]> {
    // An unreadable index (permissions, a folder in its place) is treated as missing: every run folder is read.
    const [snapshot, names] = await Promise.all([this.readIndex().catch(() => undefined), this.runNames()]);
    try {
      const stats: ListStats = { indexLines: snapshot?.lines ?? 0, badLines: snapshot?.badLines ?? 0, runs: 0, healed: 0, dropped: 0, compacted: false };
      const folders = new Set(names);
      /** Per id: what the index says, or should say (healed from run.json). */
      const persist: Map<string, IndexEntry> = snapshot?.best ?? new Map();
      const toCheck: string[] = [];
      for (const [id, line] of persist) {
        if (!folders.has(id)) {
          persist.delete(id);
          stats.dropped++;
        } else if (!TERMINAL.has(line.run.status)) toCheck.push(id);
      }
      for (const id of names) if (!persist.has(id)) toCheck.push(id);

      const heal: Buffer[] = [];
      const shown = new Map<string, RunSummary>();
      const dead = { interrupted: [] as string[], orphans: [] as string[] };
      await mapLimit(toCheck, 32, async (id) => {
        let stored: StoredRun | undefined;
        try {
          stored = await this.readStored(id);
        } catch {
          stored = undefined;
        }
        const known = persist.get(id);
        if (!stored) {
          // An index entry is kept as is (unreadable record); a folder without a record is a crash in create().
          if (!known) dead.orphans.push(id);
          return;
        }
        const rev = typeof stored.rev === 'number' ? stored.rev : 0;
        const alive = stored.status === 'running' && isWriterAlive(stored.writer);
        if (!known || rev > known.rev || (rev === known.rev && stored.status !== known.run.status)) {
          const summary = summarize(stripStored(stored));
          persist.set(id, { v: 1, id, rev, run: summary });
          stats.healed++;
          // A live writer appends its own line in a moment; anything else is re-indexed now.
          if (!known || !alive) heal.push(encodeLine(rev, summary));
        }
        if (stored.status === 'running' && !alive) {
          shown.set(id, { ...persist.get(id)!.run, status: 'failed' });
          dead.interrupted.push(id);
        }
      });

      const out: RunSummary[] = [];
      for (const [id, p] of persist) out.push(shown.get(id) ?? p.run);
      stats.runs = out.length;
      sortNewestFirst(out);

      const needCompaction = stats.indexLines > this.compactRatio * persist.size + this.compactMinLines || heal.length > 64;
      if (needCompaction) {
        try {
          stats.compacted = await this.compact(snapshot, persist);
        } catch {
          stats.compacted = false; // a read-only workspace or a full disk: listing still works
        }
      }
      if (!stats.compacted && heal.length > 0) {
        await this.appendIndex(Buffer.concat(heal), false).catch(() => undefined);
      }
      this.lastList = stats;
      this.lastDead = dead;
      return out;
    } finally {
      await snapshot?.handle.close().catch(() => undefined);
    }
  }

  /**
   * Appends index lines so they survive a concurrent compaction: after the write, if the path no longer
   * names the file written to (a compaction renamed a new index over it), the lines are appended again to
   * the new file. Together with the compactor re-reading the old file after its rename, no line is lost;
   * a line may appear twice, which the highest-`rev` rule makes harmless.
   * @internal (the writers' and the store's own)
   */
  async appendIndex(data: Buffer, fsync: boolean): Promise<void> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const handle = await fsp.open(this.indexPath, 'a', 0o644);
      let moved = false;
      try {
        await writeAll(handle, data);
        if (fsync) await handle.sync();
        const [mine, current] = await Promise.all([handle.stat(), fsp.stat(this.indexPath).catch(() => undefined)]);
        moved = !current || current.ino !== mine.ino || current.dev !== mine.dev;
      } finally {
        await handle.close();
      }
      if (!moved) return;
    }
  }

  /**
   * Rewrites the index with one line per run, under `index.lock` (compactions exclude each other; appenders
   * never wait). Protocol: lock; check the index is still the file that was read; write the new file with
   * the kept lines plus any lines appended since the read; rename it over the index; read the old file's
   * tail once more and append what arrived meanwhile. Returns false when another process holds the lock or
   * the index changed since it was read (the next list() tries again).
   */
  private async compact(snapshot: IndexSnapshot | undefined, persist: Map<string, IndexEntry>): Promise<boolean> {
    const release = await this.tryLock();
    if (!release) return false;
    let opened: fsp.FileHandle | undefined;
    try {
      opened = await fsp.open(this.indexPath, 'a+');
      const st = await opened.stat();
      let old: fsp.FileHandle;
      let consumed: number;
      if (snapshot) {
        if (st.ino !== snapshot.ino || st.dev !== snapshot.dev) return false;
        old = snapshot.handle;
        consumed = snapshot.consumed;
      } else {
        old = opened;
        consumed = 0;
      }
      // The map holds the newest runs first (the index is read backwards); the file keeps oldest first.
      const entries = [...persist.values()].reverse();
      const target = this.indexPath;
      const tmp = tempSibling(target);
      const out = await fsp.open(tmp, 'wx', 0o644);
      try {
        await writeLines(out, entries.map((p) => encodeLineText(p.rev, p.run)));
        const caught = await readNewLines(old, consumed);
        consumed = caught.next;
        if (caught.data.length > 0) await writeAll(out, caught.data);
        if (this.durable) await out.sync();
        await out.close();
        await fsp.rename(tmp, target);
      } catch (err) {
        await out.close().catch(() => undefined);
        await fsp.unlink(tmp).catch(() => undefined);
        throw err;
      }
      if (this.durable) await fsyncDir(this.root);
      // Lines appended to the old file between the catch-up read and the rename.
      const late = await readNewLines(old, consumed, true);
      if (late.data.length > 0) await this.appendIndex(late.data, false);
      await this.sweepTrash();
      return true;
    } finally {
      await opened?.close().catch(() => undefined);
      await release();
    }
  }

  private async tryLock(): Promise<(() => Promise<void>) | undefined> {
    const lock = join(this.root, 'index.lock');
    this.writerInfo ??= selfWriterInfo();
    try {
      await fsp.writeFile(lock, JSON.stringify(this.writerInfo), { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Held. Clear it when its holder is dead or it is old (compaction takes milliseconds); retry next time.
      try {
        const st = await fsp.stat(lock);
        const holder = await readJsonSafe<WriterInfo>(lock);
        const old = Date.now() - st.mtimeMs > 60_000;
        if (old || (holder && typeof holder === 'object' && !isWriterAlive(holder))) await fsp.unlink(lock);
      } catch {
        // gone already
      }
      return undefined;
    }
    return async () => {
      await fsp.unlink(lock).catch(() => undefined);
    };
  }

  /** Removes what killed processes left at the top of the store: half-deleted folders, temporary index files. */
  private async sweepTrash(): Promise<void> {
    try {
      for (const name of await fsp.readdir(this.root)) {
        if (name.startsWith('.trash-') || isTempName(name)) await removeIfOld(join(this.root, name));
      }
    } catch {
      // best effort
    }
  }

  /**
   * Deletes a run (its folder disappears atomically by rename, then is removed). Refuses a run whose
   * writer is still recording it unless `force`. Returns false when there was no such run.
   */
  async delete(id: string, options: { force?: boolean } = {}): Promise<boolean> {
    const dir = this.runDir(id);
    let stored: StoredRun | undefined;
    try {
      stored = await this.readStored(id);
    } catch {
      stored = undefined;
    }
    if (stored?.status === 'running' && isWriterAlive(stored.writer) && !options.force) {
      throw new RunStoreError(`run ${id} is still running (pid ${stored.writer?.pid ?? '?'}); stop it first or delete with force`, 'busy');
    }
    const trash = join(this.root, `.trash-${id}-${randomBytes(4).toString('hex')}`);
    try {
      await fsp.rename(dir, trash);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw err;
    }
    if (this.durable) await fsyncDir(this.root);
    await fsp.rm(trash, { recursive: true, force: true }).catch(() => undefined);
    return true;
  }

  /**
   * The one run an abbreviation names: a full id, a prefix of ids (`20261125-10`), or a prefix of the
   * random part (`1a2b`). Throws RunStoreError `not-found` or `ambiguous` (listing some candidates).
   */
  async resolveId(prefix: string): Promise<string> {
    const p = typeof prefix === 'string' ? prefix.trim().toLowerCase() : '';
    const shown = JSON.stringify(typeof prefix === 'string' && prefix.length > 60 ? `${prefix.slice(0, 60)}…` : prefix);
    if (!/^[0-9a-f-]{1,22}$/.test(p)) throw new RunStoreError(`no run matches ${shown}: give a run id or the start of one (see \`mlpipeline runs\`)`, 'not-found');
    let matches = (await this.runNames()).filter((id) => id.startsWith(p) || (!p.includes('-') && id.slice(16).startsWith(p)));
    if (matches.length > 1 && matches.length <= 64) {
      // Folders left without a record by a crash during create() are not runs.
      const real = await Promise.all(matches.map((id) => fsp.access(join(this.root, id, 'run.json')).then(() => true, () => false)));
      matches = matches.filter((_, i) => real[i]);
    }
    if (matches.length === 1) return matches[0];
    if (matches.length === 0) throw new RunStoreError(`no run matches ${shown}`, 'not-found');
    matches.sort().reverse();
    const some = matches.slice(0, 5).join(', ');
    throw new RunStoreError(`${shown} is ambiguous: it matches ${matches.length} runs (${some}${matches.length > 5 ? ', …' : ''}); give more characters`, 'ambiguous');
  }

  /**
   * Finalises runs whose writer died (status `failed`, error INTERRUPTED_ERROR, running steps failed), so
   * they no longer depend on a liveness check, and removes what the dead writers left behind (temporary
   * files in those runs, folders a crash inside create() left without a record, after a minute). For the
   * executor to call at start; list() and get() never rewrite records. Returns the ids it finalised.
   */
  async recoverInterrupted(): Promise<string[]> {
    await this.list();
    const { interrupted, orphans } = this.lastDead;
    const done: string[] = [];
    for (const id of interrupted) {
      let stored: StoredRun | undefined;
      try {
        stored = await this.readStored(id);
      } catch {
        continue;
      }
      if (!stored || stored.status !== 'running' || isWriterAlive(stored.writer)) continue;
      const { writer, rev } = stored;
      const record = present(stored);
      record.finishedAt ??= new Date().toISOString();
      const next = (typeof rev === 'number' ? rev : 0) + 1;
      await writeFileAtomic(join(this.root, id, 'run.json'), serialize(record, writer, next), { fsync: this.durable });
      await this.appendIndex(encodeLine(next, summarize(record)), this.durable);
      await removeTempFiles(join(this.root, id));
      done.push(id);
    }
    for (const id of orphans) {
      const dir = join(this.root, id);
      if (await fsp.access(join(dir, 'run.json')).then(() => false, () => true)) await removeIfOld(dir);
    }
    return done;
  }
}

/** Removes a file or folder whose last change is over a minute old (nothing live takes that long between writes). */
async function removeIfOld(path: string): Promise<void> {
  try {
    const st = await fsp.stat(path);
    if (Date.now() - st.mtimeMs > 60_000) await fsp.rm(path, { recursive: true, force: true });
  } catch {
    // gone already, or not ours to remove
  }
}

/** Removes `writeFileAtomic` temporary files under a finished or dead run's folder. */
async function removeTempFiles(dir: string): Promise<void> {
  try {
    for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await removeTempFiles(path);
      else if (entry.isFile() && isTempName(entry.name)) await fsp.rm(path, { force: true });
    }
  } catch {
    // best effort
  }
}

/** Valid lines of `handle` from `from` to its end (torn ones dropped), and where they stop. */
async function readNewLines(handle: fsp.FileHandle, from: number, includeUnterminated = false): Promise<{ data: Buffer; next: number }> {
  const size = (await handle.stat()).size;
  if (size <= from) return { data: Buffer.alloc(0), next: from };
  const buf = Buffer.alloc(size - from);
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await handle.read(buf, got, buf.length - got, from + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  const { data, next } = validLines(buf.subarray(0, got), includeUnterminated);
  return { data, next: from + next };
}

function stripStored(stored: StoredRun): RunRecord {
  const { writer: _writer, rev: _rev, ...record } = stored;
  return record;
}

/** The record a reader sees: store fields removed, and a dead writer's `running` run shown as interrupted. */
function present(stored: StoredRun): RunRecord {
  const record = stripStored(stored);
  if (record.status === 'running' && !isWriterAlive(stored.writer)) {
    record.status = 'failed';
    record.error = INTERRUPTED_ERROR;
    for (const step of Object.values(record.steps ?? {})) {
      if (step && step.status === 'running') {
        step.status = 'failed';
        step.error ??= INTERRUPTED_ERROR;
      }
    }
  }
  return record;
}

function serialize(record: RunRecord, writer: WriterInfo | undefined, rev: number): string {
  return `${JSON.stringify({ ...record, writer, rev }, null, 2)}\n`;
}

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/**
 * Newest first by start time, then by id. `toISOString()` times compare as strings; others are normalised
 * first. The input comes newest first already (the index is read backwards), so TimSort is close to linear.
 */
function sortNewestFirst(runs: RunSummary[]): void {
  const byIdDesc = (a: RunSummary, b: RunSummary) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
  if (runs.every((r) => typeof r.startedAt === 'string' && ISO_MS.test(r.startedAt))) {
    runs.sort((a, b) => (a.startedAt !== b.startedAt ? (a.startedAt < b.startedAt ? 1 : -1) : byIdDesc(a, b)));
    return;
  }
  const key = new Map<RunSummary, string>();
  for (const r of runs) {
    const t = Date.parse(typeof r.startedAt === 'string' ? r.startedAt : '');
    key.set(r, Number.isNaN(t) ? '' : new Date(t).toISOString());
  }
  runs.sort((a, b) => {
    const ka = key.get(a)!;
    const kb = key.get(b)!;
    return ka !== kb ? (ka < kb ? 1 : -1) : byIdDesc(a, b);
  });
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// ---- the writer ------------------------------------------------------------------------------------------

class FileRunWriter implements RunWriter {
  readonly id: string;
  private readonly dir: string;
  private record: RunRecord;
  private rev = 0;
  private lastIndexed = '';
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private pendingLogs = new Map<string, Buffer[]>();
  private logChain: Promise<void> = Promise.resolve();
  private drainScheduled = false;
  private readonly loggedSteps = new Set<string>();
  private firstLogError: Error | undefined;

  constructor(
    private readonly store: RunStore,
    record: RunRecord,
    private readonly writer: WriterInfo,
  ) {
    this.id = record.id;
    this.record = record;
    this.dir = store.runPath(record.id);
  }

  get logError(): Error | undefined {
    return this.firstLogError;
  }

  snapshot(): RunRecord {
    return structuredClone(this.record);
  }

  async commitInitial(): Promise<void> {
    await this.commit(this.record, 'create');
  }

  private async commit(next: RunRecord, kind: 'create' | 'update' | 'finish'): Promise<void> {
    const rev = this.rev + 1;
    const durable = this.store.durable;
    await writeFileAtomic(join(this.dir, 'run.json'), serialize(next, this.writer, rev), {
      fsync: durable,
      fsyncDir: durable && kind !== 'update',
    });
    this.rev = rev;
    this.record = next;
    const summary = summarize(next);
    const key = JSON.stringify(summary);
    if (key !== this.lastIndexed || kind !== 'update') {
      await this.store.appendIndex(encodeLine(rev, summary), durable && kind === 'finish');
      this.lastIndexed = key;
    }
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn);
    this.queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  update(mutate: (r: RunRecord) => void): Promise<void> {
    return this.enqueue(async () => {
      if (this.closed) throw new RunStoreError(`run ${this.id} is finished; it cannot be updated`, 'closed');
      const next = structuredClone(this.record);
      mutate(next);
      if (next.id !== this.id) throw new RunStoreError(`run ${this.id}: an update may not change the id`, 'invalid');
      await this.commit(next, 'update');
    });
  }

  finish(status: Terminal, error?: string): Promise<void> {
    return this.enqueue(async () => {
      if (this.closed) throw new RunStoreError(`run ${this.id} is already finished`, 'closed');
      if (!TERMINAL.has(status)) throw new RunStoreError(`run ${this.id}: cannot finish with status ${JSON.stringify(status)}`, 'invalid');
      await this.flushLogs(this.store.durable);
      const next = structuredClone(this.record);
      next.status = status;
      next.finishedAt ??= new Date().toISOString();
      if (error !== undefined) next.error = error;
      await this.commit(next, 'finish');
      this.closed = true;
      await this.flushLogs(false); // output that arrived while the record was written
    });
  }

  appendLog(step: string, chunk: string | Uint8Array): void {
    try {
      if (this.closed) return;
      const data = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk);
      if (data.length === 0) return;
      const key = String(step);
      let list = this.pendingLogs.get(key);
      if (!list) this.pendingLogs.set(key, (list = []));
      list.push(data);
      this.scheduleDrain();
    } catch (err) {
      this.firstLogError ??= err as Error;
    }
  }

  flush(): Promise<void> {
    return this.flushLogs(false);
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    this.logChain = this.logChain
      .then(() => {
        this.drainScheduled = false;
        return this.drainLogs();
      })
      .catch((err: Error) => {
        this.firstLogError ??= err;
      });
  }

  private async drainLogs(): Promise<void> {
    while (this.pendingLogs.size > 0) {
      const batch = this.pendingLogs;
      this.pendingLogs = new Map();
      for (const [step, chunks] of batch) {
        try {
          const handle = await fsp.open(this.store.logPath(this.id, step), 'a', 0o644);
          try {
            await writeAll(handle, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
          } finally {
            await handle.close();
          }
          this.loggedSteps.add(step);
        } catch (err) {
          this.firstLogError ??= err as Error;
        }
      }
    }
  }

  private async flushLogs(fsync: boolean): Promise<void> {
    if (this.pendingLogs.size > 0) this.scheduleDrain();
    await this.logChain;
    if (!fsync) return;
    await Promise.all(
      [...this.loggedSteps].map(async (step) => {
        try {
          const handle = await fsp.open(this.store.logPath(this.id, step), 'r+');
          try {
            await handle.sync();
          } finally {
            await handle.close();
          }
        } catch (err) {
          this.firstLogError ??= err as Error;
        }
      }),
    );
  }

  async copySeries(step: string, files: string[]): Promise<string[]> {
    if (this.closed) throw new RunStoreError(`run ${this.id} is finished; series can no longer be added`, 'closed');
    const stepDir = encodeName(step);
    const dir = join(this.dir, 'series', stepDir);
    await fsp.mkdir(dir, { recursive: true });
    const used = new Set<string>();
    const out: string[] = [];
    for (const source of files) {
      const st = await fsp.stat(source).catch(() => undefined);
      if (!st?.isFile()) continue;
      const name = uniqueName(encodeName(basename(source), true), used);
      const dest = join(dir, name);
      const tmp = tempSibling(dest);
      try {
        await fsp.copyFile(source, tmp);
        if (this.store.durable) {
          const handle = await fsp.open(tmp, 'r+');
          try {
            await handle.sync();
          } finally {
            await handle.close();
          }
        }
        await fsp.rename(tmp, dest);
      } catch (err) {
        await fsp.unlink(tmp).catch(() => undefined);
        throw err;
      }
      out.push(`series/${stepDir}/${name}`);
    }
    return out;
  }
}

function uniqueName(name: string, used: Set<string>): string {
  let candidate = name;
  const dot = name.lastIndexOf('.');
  const stem = dot > 0 ? name.slice(0, dot) : name;
  const ext = dot > 0 ? name.slice(dot) : '';
  for (let n = 2; used.has(candidate); n++) candidate = `${stem}-${n}${ext}`;
  used.add(candidate);
  return candidate;
}
