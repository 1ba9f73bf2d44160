import { closeSync, existsSync, openSync, readSync, statSync, watch } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { RunRecord, RunSummary } from '../runtime/records';
import { RunStore } from '../runtime/run-store';
import { one, parseArgs, UsageError } from './args';
import { findSpecs } from './find-specs';
import { comparisonRows, runDetails } from '../runtime/run-report';
import { formatValue, paint, safe, table } from './output';

/** Run stores this command can see: `--spec`'s, the current folder's, and those of specs below it. */
function stores(spec: string | undefined): RunStore[] {
  const roots = new Set<string>();
  if (spec) roots.add(join(dirname(spec), '.mlpipeline', 'runs'));
  else {
    roots.add(join(process.cwd(), '.mlpipeline', 'runs'));
    for (const s of findSpecs(process.cwd(), 3)) roots.add(join(dirname(s), '.mlpipeline', 'runs'));
  }
  return [...roots].filter((r) => existsSync(r)).map((r) => new RunStore(r));
}

async function findRun(all: RunStore[], prefix: string): Promise<{ store: RunStore; record: RunRecord }> {
  const hits: { store: RunStore; id: string }[] = [];
  const errors: string[] = [];
  for (const store of all) {
    try {
      hits.push({ store, id: await store.resolveId(prefix) });
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  if (hits.length === 0) throw new UsageError(`No run matches \`${safe(prefix)}\`. List runs with \`mlpipeline runs\`.`);
  if (hits.length > 1) throw new UsageError(`\`${safe(prefix)}\` matches runs in several workspaces; give more of the id.`);
  const record = await hits[0].store.get(hits[0].id);
  if (!record) throw new UsageError(`Run ${hits[0].id} could not be read.`);
  return { store: hits[0].store, record };
}

const STATUS_COLOR: Record<string, string> = { succeeded: '32', cached: '32', failed: '31', cancelled: '33', skipped: '33', running: '34', pending: '2' };

export async function runsCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--spec', '--limit'], ['--json']);
  const all = stores(one(args, '--spec'));
  const runs: (RunSummary & { workspace: string })[] = [];
  for (const s of all) for (const r of await s.list()) runs.push({ ...r, workspace: relative(process.cwd(), dirname(dirname(s.root))) || '.' });
  // Newest first; ids are per second, so the start time orders runs started within the same second.
  runs.sort((a, b) => b.startedAt.localeCompare(a.startedAt) || (a.id < b.id ? 1 : -1));
  if (args.flags.has('--json')) {
    process.stdout.write(JSON.stringify(runs, null, 2) + '\n');
    return 0;
  }
  if (runs.length === 0) {
    process.stdout.write('No runs yet. Start one with `mlpipeline run`.\n');
    return 0;
  }
  const limit = Number(one(args, '--limit') ?? 50);
  // Metrics that differ between the listed runs first: they are the ones worth a column.
  const listed = runs.slice(0, limit);
  const distinct = (k: string): number => new Set(listed.map((r) => r.metrics[k])).size;
  const metricKeys = [...new Set(listed.flatMap((r) => Object.keys(r.metrics)))].sort((a, b) => distinct(b) - distinct(a) || a.localeCompare(b)).slice(0, 6);
  const rows = runs.slice(0, limit).map((r) => [
    r.id,
    r.status,
    r.specName,
    r.label ? safe(r.label).slice(0, 30) : '',
    r.gitCommit ? r.gitCommit.slice(0, 8) : '',
    Object.entries(r.params).map(([k, v]) => `${k}=${formatValue(v)}`).join(' ').slice(0, 40),
    ...metricKeys.map((k) => (k in r.metrics ? formatValue(r.metrics[k]) : '')),
  ]);
  process.stdout.write(table(['run', 'status', 'spec', 'label', 'commit', 'params', ...metricKeys], rows));
  if (runs.length > limit) process.stdout.write(`… ${runs.length - limit} older runs (--limit N to see more)\n`);
  return 0;
}

export async function showCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--spec'], ['--json']);
  if (args.positional.length !== 1) throw new UsageError('show takes one run id (or a unique prefix of one).');
  const { record: r } = await findRun(stores(one(args, '--spec')), args.positional[0]);
  if (args.flags.has('--json')) {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    return 0;
  }
  process.stdout.write(runDetails(r, { text: safe, bold: (x) => paint('1', x), status: (x) => paint(STATUS_COLOR[x] ?? '0', x), error: (x) => paint('31', x) }));
  return 0;
}

export async function compareCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--spec'], ['--json', '--only-diff']);
  if (args.positional.length < 2) throw new UsageError('compare takes two or more run ids.');
  const all = stores(one(args, '--spec'));
  const records = await Promise.all(args.positional.map(async (p) => (await findRun(all, p)).record));
  const rows = comparisonRows(records).map((row) => ({ ...row, values: row.values.map(safe) }));
  const shown = args.flags.has('--only-diff') ? rows.filter((row) => row.differs) : rows;
  if (args.flags.has('--json')) {
    process.stdout.write(JSON.stringify({ runs: records.map((r) => r.id), rows: shown }, null, 2) + '\n');
    return 0;
  }
  process.stdout.write(table(['', ...records.map((r) => r.id)], shown.map((row) => [row.key, ...row.values.map((v, i) => (row.differs && i > 0 ? paint('33', v) : v))])));
  if (args.flags.has('--only-diff') && shown.length === 0) process.stdout.write('The runs do not differ in params, metrics or outputs.\n');
  return 0;
}

export async function lineageCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--spec', '--run'], ['--json']);
  const all = stores(one(args, '--spec'));
  const runId = one(args, '--run');
  const records: RunRecord[] = [];
  if (runId) records.push((await findRun(all, runId)).record);
  else for (const s of all) for (const sum of await s.list()) {
    const r = await s.get(sum.id);
    if (r) records.push(r);
  }
  const edges = records.flatMap((r) => r.lineage.map((e) => ({ ...e, run: r.id, commit: r.git?.commit })));
  const filter = args.positional[0];
  // With an artifact (path, `step.output`, or a hash prefix), show what produced it and what used it.
  const matches = (node: string): boolean => !filter || node.includes(filter);
  const shown = filter ? edges.filter((e) => matches(e.from) || matches(e.to)) : edges;
  if (args.flags.has('--json')) {
    process.stdout.write(JSON.stringify(shown, null, 2) + '\n');
    return 0;
  }
  if (shown.length === 0) {
    process.stdout.write(filter ? `Nothing in the lineage matches \`${safe(filter)}\`.\n` : 'No lineage yet: run a pipeline first.\n');
    return filter ? 1 : 0;
  }
  const short = (n: string): string => n.replace(/@([0-9a-f]{12})[0-9a-f]+/, '@$1');
  for (const e of shown) process.stdout.write(`${safe(short(e.from))}  →  ${safe(short(e.to))}   (run ${e.run}${e.commit ? `, commit ${e.commit.slice(0, 8)}` : ''})\n`);
  return 0;
}

export async function logsCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--spec', '--step'], ['--follow']);
  if (args.positional.length !== 1) throw new UsageError('logs takes one run id.');
  const { store, record } = await findRun(stores(one(args, '--spec')), args.positional[0]);
  const wanted = args.values.get('--step');
  for (const s of wanted ?? []) if (!record.steps[s]) throw new UsageError(`Run ${record.id} has no step \`${safe(s)}\`. Steps: ${Object.keys(record.steps).join(', ')}.`);
  const steps = wanted ?? Object.keys(record.steps);
  const follow = args.flags.has('--follow');
  const offsets = new Map<string, number>();
  const pump = (): void => {
    for (const s of steps) {
      const path = store.logPath(record.id, s);
      if (!existsSync(path)) continue;
      const size = statSync(path).size;
      const from = offsets.get(s) ?? 0;
      if (size <= from) continue;
      const fd = openSync(path, 'r');
      const buf = Buffer.alloc(size - from);
      readSync(fd, buf, 0, buf.length, from);
      closeSync(fd);
      offsets.set(s, size);
      const lines = buf.toString('utf8').split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      for (const l of lines) process.stdout.write(steps.length > 1 ? `${paint('36', `${s} |`)} ${safe(l)}\n` : `${safe(l)}\n`);
    }
  };
  pump();
  if (!follow) return 0;
  // Follow until the run is no longer running (or Ctrl+C).
  await new Promise<void>((resolve) => {
    const dir = dirname(store.logPath(record.id, steps[0]));
    let watcher: ReturnType<typeof watch> | undefined;
    try {
      watcher = watch(dir, () => pump());
    } catch {
      watcher = undefined;
    }
    const timer = setInterval(async () => {
      pump();
      const now = await store.get(record.id);
      if (!now || now.status !== 'running') {
        pump();
        clearInterval(timer);
        watcher?.close();
        resolve();
      }
    }, 500);
    process.once('SIGINT', () => {
      clearInterval(timer);
      watcher?.close();
      resolve();
    });
  });
  return 0;
}
