/**
 * How long does "did anything change?" take on a 10,000-file dataset?
 *
 *   node --import tsx bench/cache-check.ts [--files N] [--runs N]
 *
 * Builds N small files (1-4 KiB, nested folders) in a temporary folder, hashes the folder cold (no stat
 * cache), then times the no-change check the way a new `mlpipeline run` does it: a new ContentHasher that
 * loads the stat cache from disk, hashes the folder, saves. Each warm figure is the median of --runs runs,
 * measured both in this process and in fresh child processes (cold JIT, as a new CLI process would be;
 * Node's start-up is not counted). The same is then measured with one file changed before each run.
 * Target: the no-change check within 200 ms.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ContentHasher } from '../client/src/runtime/hashing';
import { mulberry32 as rng } from '../client/src/runtime/random';

const TARGET_MS = 200;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

interface Check {
  ms: number;
  /**
   * CPU time of the main thread during the check (Linux: /proc/thread-self/schedstat; elsewhere the whole
   * process's). The check is synchronous on the main thread but for two small reads, so on a busy machine
   * this is close to the wall time the same check takes on an idle one.
   */
  cpuMs: number;
  hash: string;
  filesRead: number;
  cacheHits: number;
}

/** One check as a new process would do it: construct, hash the folder, save. */
async function check(root: string): Promise<Check> {
  const c0 = threadCpuMs();
  const t0 = performance.now();
  const hasher = new ContentHasher({ root });
  const r = await hasher.hashPath('data');
  await hasher.save();
  const ms = performance.now() - t0;
  return { ms, cpuMs: threadCpuMs() - c0, hash: r.hash, filesRead: hasher.stats.filesRead, cacheHits: hasher.stats.cacheHits };
}

function threadCpuMs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Runs one check in a fresh Node process (this file with --child) and returns its own timing. */
function childCheck(root: string): Check {
  const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', root], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Check;
}


function buildDataset(root: string, files: number): number {
  const rand = rng(42);
  let bytes = 0;
  const perDir = 100;
  for (let i = 0; i < files; i++) {
    const dir = join(root, 'data', `part-${Math.floor(i / (perDir * 10)) % 100}`, `shard-${Math.floor(i / perDir) % 10}`);
    if (i % perDir === 0) mkdirSync(dir, { recursive: true });
    const size = 1024 + Math.floor(rand() * 3073);
    const buf = Buffer.allocUnsafe(size);
    for (let j = 0; j < size; j++) buf[j] = Math.floor(rand() * 256);
    writeFileSync(join(dir, `row-${String(i).padStart(6, '0')}.bin`), buf);
    bytes += size;
  }
  return bytes;
}

function fileNo(i: number): string {
  const perDir = 100;
  return join('data', `part-${Math.floor(i / (perDir * 10)) % 100}`, `shard-${Math.floor(i / perDir) % 10}`, `row-${String(i).padStart(6, '0')}.bin`);
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') {
    const r = await check(process.argv[3]);
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const files = arg('--files', 10_000);
  const runs = arg('--runs', 5);
  const load0 = loadavg().map((l) => l.toFixed(2)).join(' ');
  const root = mkdtempSync(join(tmpdir(), 'mlp-bench-'));
  try {
    const bytes = buildDataset(root, files);

    const cold = await check(root);
    if (cold.filesRead !== files) throw new Error(`cold run read ${cold.filesRead} files, expected ${files}`);
    const cacheBytes = statSync(join(root, '.mlpipeline', 'cache', 'stat-cache.txt')).size;

    const warmIn: Check[] = [];
    for (let i = 0; i < runs; i++) warmIn.push(await check(root));
    const warmChild: Check[] = [];
    for (let i = 0; i < runs; i++) warmChild.push(childCheck(root));
    for (const w of [...warmIn, ...warmChild]) {
      if (w.hash !== cold.hash) throw new Error('warm hash differs from the cold hash');
      if (w.filesRead !== 0) throw new Error(`a no-change check read ${w.filesRead} files`);
    }

    // One changed file before each run (a different file each time, same size, new bytes).
    const changedIn: Check[] = [];
    const changedChild: Check[] = [];
    for (let i = 0; i < runs * 2; i++) {
      const f = join(root, fileNo((i * 997) % files));
      const size = statSync(f).size;
      writeFileSync(f, Buffer.alloc(size, i + 1));
      const r = i < runs ? await check(root) : childCheck(root);
      if (r.hash === cold.hash) throw new Error('a changed file did not change the folder hash');
      if (r.filesRead < 1) throw new Error('the changed file was not read');
      (i < runs ? changedIn : changedChild).push(r);
    }

    const fmt = (n: number): string => n.toFixed(1).padStart(9);
    const row = (label: string, cs: Check[], target = ''): string =>
      `${label.padEnd(40)}${fmt(median(cs.map((c) => c.ms)))}${fmt(median(cs.map((c) => c.cpuMs)))}${String(Math.max(...cs.map((c) => c.filesRead))).padStart(7)}  ${target}`;
    const ok = (cs: Check[]): string => {
      const ms = median(cs.map((c) => c.ms));
      return `<= ${TARGET_MS} ms: ${ms <= TARGET_MS ? 'met' : 'MISSED'}`;
    };
    console.log(`node ${process.version}, ${cpus().length} CPUs, ${files} files, ${(bytes / 1024 / 1024).toFixed(1)} MiB, stat cache ${(cacheBytes / 1024).toFixed(0)} KiB, median of ${runs}`);
    console.log(`load average before: ${load0}, after: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (other processes compete for the CPUs when it is high)`);
    console.log(`${'check'.padEnd(40)}${'wall ms'.padStart(9)}${'cpu ms'.padStart(9)}${'reads'.padStart(7)}  target (wall)`);
    console.log(row('cold (no stat cache)', [cold]));
    console.log(row('warm, no change (same process)', warmIn, ok(warmIn)));
    console.log(row('warm, no change (fresh process)', warmChild, ok(warmChild)));
    console.log(row('warm, one file changed (same process)', changedIn));
    console.log(row('warm, one file changed (fresh process)', changedChild));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
