/**
 * How long does listing 10,000 runs take?
 *
 *   node --import tsx bench/runs-list.ts [--runs N] [--repeat N] [--keep]
 *
 * Populates a run store in a temporary folder with N finished runs through the real API (create, a
 * metrics update, finish; 3 steps, 5 params, 6 metrics, a label and git provenance each; fsync off while
 * populating), then times `list()` and `get()` with a fresh RunStore each time (no state carried over, as
 * a new CLI process would start), each figure the median of --repeat runs:
 *   - the first list() after populating, which finds 3 index lines per run and compacts the index,
 *   - list() on the compacted index (the steady state),
 *   - list() on an index just under the compaction threshold (2 lines per run + 1000, the worst steady case),
 *   - list() in a fresh child process: this file bundled by esbuild and run by plain node, as the CLI
 *     ships (cold JIT; the process start-up is not counted, it is reported apart),
 *   - get() of one run, resolveId() of a 6-character prefix.
 * The page cache is warm (the files were just written). Target: list() within 200 ms.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { RunRecord } from '../client/src/runtime/records';
import { RunStore } from '../client/src/runtime/run-store';

const TARGET_MS = 200;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function realisticRecord(store: RunStore, i: number, startedAt: Date): RunRecord {
  const id = store.newRunId(startedAt);
  const step = (name: string, command: string): RunRecord['steps'][string] => ({
    status: 'pending',
    command,
    attempts: 0,
    inputs: { 'data/raw.csv': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
    outputs: {},
    log: store.logRelPath(id, name),
  });
  return {
    schema: 1,
    id,
    label: i % 3 === 0 ? `baseline sweep ${i}` : undefined,
    spec: { path: 'mlpipeline.yaml', name: 'churn-local', hash: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' },
    status: 'running',
    startedAt: startedAt.toISOString(),
    params: { lr: 0.001 * (1 + (i % 10)), epochs: 10 + (i % 5), batch_size: 64, model: i % 2 ? 'xgboost' : 'logreg', use_gpu: i % 4 === 0 },
    git: { commit: 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3', branch: 'main', dirty: i % 7 === 0 },
    target: 'local',
    sweep: i % 5 === 0 ? { name: 'lr-sweep', trial: i } : undefined,
    steps: {
      prepare: step('prepare', 'python src/prepare.py --in data/raw.csv --out data/features.parquet'),
      train: step('train', 'python src/train.py --lr 0.001 --epochs 10 --batch-size 64'),
      evaluate: step('evaluate', 'python src/evaluate.py --model models/model.pkl --data data/features.parquet'),
    },
    lineage: [],
  };
}

async function populate(store: RunStore, runs: number): Promise<void> {
  const start = Date.UTC(2026, 0, 1);
  let next = 0;
  const worker = async () => {
    while (next < runs) {
      const i = next++;
      const writer = await store.create(realisticRecord(store, i, new Date(start + i * 60_000)));
      await writer.update((r) => {
        for (const [name, s] of Object.entries(r.steps)) {
          s.status = 'succeeded';
          s.attempts = 1;
          s.exitCode = 0;
          s.durationMs = 1000 + i;
          s.startedAt = r.startedAt;
          s.finishedAt = r.startedAt;
          s.outputs = { out: { path: `outputs/${name}`, hash: 'ab'.repeat(32) } };
        }
        r.steps.prepare.metrics = { rows: 10_000 + i };
        r.steps.train.metrics = { loss: 1 / (i + 1), accuracy: 0.8 + (i % 100) / 1000, auc: 0.85 + (i % 50) / 1000 };
        r.steps.evaluate.metrics = { f1: 0.7 + (i % 30) / 100, precision: 0.75 };
      });
      await writer.finish('succeeded');
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

async function timeList(root: string, repeat: number, options: { compactMinLines?: number } = {}): Promise<{ ms: number[]; cpu: number[]; runs: number; lines: number; compacted: boolean }> {
  const ms: number[] = [];
  const cpu: number[] = [];
  let runs = 0;
  let lines = 0;
  let compacted = false;
  for (let i = 0; i < repeat; i++) {
    const store = new RunStore(root, options);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const list = await store.list();
    ms.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    runs = list.length;
    lines = store.lastList?.indexLines ?? 0;
    compacted ||= store.lastList?.compacted ?? false;
  }
  return { ms, cpu, runs, lines, compacted };
}

/** The child mode: one list() in this (fresh) process, printed as JSON. */
async function child(root: string): Promise<void> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const list = await new RunStore(root).list();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  process.stdout.write(JSON.stringify({ ms, cpu: (c.user + c.system) / 1000, runs: list.length, uptimeMs: process.uptime() * 1000 }));
}

async function main(): Promise<void> {
  const childAt = process.argv.indexOf('--child-list');
  if (childAt >= 0) return child(process.argv[childAt + 1]);

  const runs = arg('--runs', 10_000);
  const repeat = arg('--repeat', 5);
  const dir = mkdtempSync(join(tmpdir(), 'mlp-bench-runs-'));
  const root = join(dir, 'runs');
  const rows: [string, string, string, string, string][] = [];
  const fmt = (x: number) => `${x.toFixed(1)} ms`;
  const verdict = (x: number) => (x <= TARGET_MS ? `≤ ${TARGET_MS} ms ✓` : `≤ ${TARGET_MS} ms ✗`);
  try {
    process.stdout.write(`populating ${runs} runs in ${root} ... `);
    const t0 = performance.now();
    await populate(new RunStore(root, { durable: false }), runs);
    const indexFile = join(root, 'index.jsonl');
    console.log(`${((performance.now() - t0) / 1000).toFixed(1)} s; index ${(statSync(indexFile).size / 1e6).toFixed(1)} MB`);

    const first = await timeList(root, 1);
    rows.push([`list(), first after populating (${first.lines} index lines; compacts: ${first.compacted})`, fmt(first.ms[0]), '', fmt(first.cpu[0]), verdict(first.ms[0])]);

    const steady = await timeList(root, repeat);
    if (steady.runs !== runs) throw new Error(`listed ${steady.runs} runs, expected ${runs}`);
    rows.push([`list(), compacted index (${steady.lines} lines, ${(statSync(indexFile).size / 1e6).toFixed(1)} MB), median of ${repeat}`, fmt(median(steady.ms)), fmt(Math.min(...steady.ms)), fmt(median(steady.cpu)), verdict(median(steady.ms))]);

    // The worst steady case: just under the compaction threshold (2 lines per run + 1000).
    const compacted = readFileSync(indexFile);
    const lines = compacted.toString('utf8').split('\n').filter(Boolean);
    appendFileSync(indexFile, compacted);
    appendFileSync(indexFile, `${lines.slice(0, 999).join('\n')}\n`);
    const worst = await timeList(root, repeat, { compactMinLines: Number.MAX_SAFE_INTEGER });
    rows.push([`list(), index at the compaction threshold (${worst.lines} lines), median of ${repeat}`, fmt(median(worst.ms)), fmt(Math.min(...worst.ms)), fmt(median(worst.cpu)), verdict(median(worst.ms))]);
    writeFileSync(indexFile, compacted);

    // The child is this file bundled by esbuild and run by plain node, as the shipped CLI is (no tsx).
    const bundle = join(dir, 'runs-list-bench.cjs');
    const { buildSync } = await import('esbuild'); // loaded here only: the child never needs it
    buildSync({ entryPoints: [__filename], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: bundle, external: ['esbuild'], logLevel: 'error' });
    const inChild: number[] = [];
    const inChildCpu: number[] = [];
    const startup: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const r = spawnSync(process.execPath, [bundle, '--child-list', root], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
      const out = JSON.parse(r.stdout) as { ms: number; cpu: number; runs: number; uptimeMs: number };
      if (out.runs !== runs) throw new Error(`child listed ${out.runs} runs`);
      inChild.push(out.ms);
      inChildCpu.push(out.cpu);
      startup.push(out.uptimeMs - out.ms);
    }
    rows.push([`list() in a fresh node process (bundled like the CLI; cold JIT), median of ${repeat}`, fmt(median(inChild)), fmt(Math.min(...inChild)), fmt(median(inChildCpu)), verdict(median(inChild))]);
    rows.push([`  (that process's start-up before list(): node + the bundle)`, fmt(median(startup)), '', '', '']);

    const some = (await new RunStore(root).list())[Math.floor(runs / 2)];
    const gets: number[] = [];
    const resolves: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const store = new RunStore(root);
      let t = performance.now();
      const rec = await store.get(some.id);
      gets.push(performance.now() - t);
      if (rec?.id !== some.id) throw new Error('get() returned the wrong run');
      t = performance.now();
      await store.resolveId(some.id.slice(16));
      resolves.push(performance.now() - t);
    }
    rows.push([`get() of one run, median of ${repeat}`, fmt(median(gets)), fmt(Math.min(...gets)), '', '']);
    rows.push([`resolveId() of a 6-hex prefix (reads the folder names), median of ${repeat}`, fmt(median(resolves)), fmt(Math.min(...resolves)), '', '']);

    const w = Math.max(...rows.map((r) => r[0].length));
    console.log(`\n${'measurement'.padEnd(w)} | ${'wall'.padStart(9)} | ${'best'.padStart(9)} | ${'cpu'.padStart(9)} | target (on wall)`);
    console.log(`${'-'.repeat(w)}-|-${'-'.repeat(9)}-|-${'-'.repeat(9)}-|-${'-'.repeat(9)}-|-${'-'.repeat(16)}`);
    for (const [name, t, best, cpu, target] of rows) console.log(`${name.padEnd(w)} | ${t.padStart(9)} | ${best.padStart(9)} | ${cpu.padStart(9)} | ${target}`);
    console.log(`\nNode ${process.version}, ${process.platform}/${process.arch}, ${cpus().length} CPUs, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ${runs} runs, page cache warm.`);
    console.log('wall: median elapsed time (the target); best: fastest of the runs; cpu: median user+system CPU time of the');
    console.log('measuring process in the same interval (GC and I/O threads included; less sensitive to other load than wall).');
  } finally {
    if (process.argv.includes('--keep')) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
