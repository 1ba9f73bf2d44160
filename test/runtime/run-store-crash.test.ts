/**
 * kill -9 at random moments: a child process writes runs in a loop (create, updates, logs, series,
 * finish; every few runs a list() that may compact the index, and a delete), the test SIGKILLs it after a
 * random delay, opens the store fresh and checks nothing was corrupted or lost. The delays come from a
 * seeded PRNG; the seed is printed, and RUN_STORE_CRASH_SEED=<seed> replays the same schedule
 * (the child's own timing still varies). RUN_STORE_CRASH_KILLS sets the number of kills (default 40).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildSync } from 'esbuild';
import { INTERRUPTED_ERROR, RUN_ID_PATTERN, RunStore } from '../../client/src/runtime/run-store';
import { assertCompleteRun, SERIES_CONTENT } from './fixtures/run-store-writer';
import { mulberry32 as prng } from '../../client/src/runtime/random';

const ROOT = resolve(__dirname, '../..');
const WRITER = join(__dirname, 'fixtures/run-store-writer.ts');
const KILLS = Number(process.env.RUN_STORE_CRASH_KILLS ?? 40);
const SEED = Number(process.env.RUN_STORE_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Longest wait between the child saying `ready` and the kill. */
const MAX_DELAY_MS = 500;


const temp = mkdtempSync(join(tmpdir(), 'mlp-runstore-crash-'));
after(() => rmSync(temp, { recursive: true, force: true }));

/**
 * The writer bundled once to plain JavaScript (esbuild, a dev dependency), so each of the many child
 * processes starts in tens of milliseconds instead of loading tsx. Same sources as the TypeScript fixture.
 */
function bundleWriter(): string {
  const outfile = join(temp, 'run-store-writer.cjs');
  buildSync({ entryPoints: [WRITER], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile, logLevel: 'error' });
  return outfile;
}

interface Round {
  done: Map<string, number>;
  started: Map<string, number>;
  deleting: Set<string>;
  deleted: Set<string>;
  killedAfterMs: number;
}

/**
 * When to kill: `delayMs` after `ready`, or, to aim at the short windows, `delayMs` after the `nth`
 * occurrence of `trigger` (a compaction inside list(), a delete, a create).
 */
interface KillPlan {
  delayMs: number;
  trigger?: 'listing' | 'deleting' | 'start';
  nth?: number;
}

function describePlan(plan: KillPlan): string {
  return plan.trigger ? `${plan.delayMs} ms after '${plan.trigger}' #${plan.nth}` : `${plan.delayMs} ms after ready`;
}

/** Starts the writer, kills it with SIGKILL as planned, and waits until it is reaped. */
function crashRound(writer: string, root: string, series: string, start: number, plan: KillPlan): Promise<Round> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      [writer, '--root', root, '--start', String(start), '--count', '0', '--list-every', '3', '--delete-every', '5', '--compact-min', '0', '--compact-ratio', '1', '--durable', '1', '--series', series],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    let readyAt = 0;
    let armed = false;
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const arm = () => {
      armed = true;
      if (plan.delayMs === 0) child.kill('SIGKILL');
      else setTimeout(() => child.kill('SIGKILL'), plan.delayMs);
    };
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!readyAt && out.includes('ready\n')) {
        readyAt = Date.now();
        if (!plan.trigger) arm();
      }
      if (!armed && plan.trigger) {
        const seen = out.split('\n').filter((l) => l.split(' ')[0] === plan.trigger).length;
        if (seen >= (plan.nth ?? 1)) arm();
      }
    });
    child.on('error', fail);
    // 'exit' comes after the child is reaped, so its pid no longer answers process.kill(pid, 0).
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      if (signal !== 'SIGKILL') return fail(new Error(`writer ended by itself (code ${code}, signal ${signal}): ${err}`));
      if (!readyAt) return fail(new Error(`writer killed before it was ready: ${err}`));
      const round: Round = { done: new Map(), started: new Map(), deleting: new Set(), deleted: new Set(), killedAfterMs: Date.now() - readyAt };
      for (const line of out.split('\n')) {
        const [word, id, n] = line.split(' ');
        if (word === 'done') round.done.set(id, Number(n));
        else if (word === 'start') round.started.set(id, Number(n));
        else if (word === 'deleting') round.deleting.add(id);
        else if (word === 'deleted') round.deleted.add(id);
      }
      done(round);
    });
  });
}

describe('run store crash safety (kill -9)', () => {
  it(`survives ${KILLS} SIGKILLs at random moments (seed ${SEED})`, { timeout: 240_000 }, async (t) => {
    t.diagnostic(`seed ${SEED}: replay with RUN_STORE_CRASH_SEED=${SEED}`);
    console.log(`run-store crash test seed: ${SEED} (RUN_STORE_CRASH_SEED=${SEED} to replay)`);
    const random = prng(SEED);
    const writer = bundleWriter();
    const root = join(temp, 'runs');
    const series = join(temp, 'loss.csv');
    writeFileSync(series, SERIES_CONTENT);

    const done = new Map<string, number>(); // finished and not deleted
    const deleted = new Set<string>();
    const maybeDeleted = new Set<string>(); // killed during delete(): present and complete, or gone
    const interrupted = new Set<string>();
    let previous = new Set<string>();
    let finishedRuns = 0;
    let compactedSeen = 0;
    const tempFiles = new Set<string>(); // temporary files left by kills (a rename never happened)
    const locksLeft = new Set<string>(); // kills during an index compaction (the dead holder's lock is still there)

    for (let kill = 0; kill < KILLS; kill++) {
      const r = random();
      const plan: KillPlan =
        r < 0.5
          ? { delayMs: Math.floor(random() * MAX_DELAY_MS) }
          : r < 0.75
            ? { trigger: 'listing', nth: 1 + Math.floor(random() * 2), delayMs: Math.floor(random() * 9) }
            : { trigger: r < 0.875 ? 'deleting' : 'start', nth: 1 + Math.floor(random() * 2), delayMs: Math.floor(random() * 6) };
      const round = await crashRound(writer, root, series, kill * 100_000, plan);
      const where = `seed ${SEED}, kill ${kill} (${describePlan(plan)}; ${round.killedAfterMs} ms after ready)`;
      for (const [id, n] of round.done) done.set(id, n);
      finishedRuns += round.done.size;
      for (const id of round.deleted) {
        done.delete(id);
        deleted.add(id);
        maybeDeleted.delete(id);
      }
      for (const id of round.deleting) if (!round.deleted.has(id)) maybeDeleted.add(id);

      // A fresh store, as a new CLI process would open it.
      const store = new RunStore(root);
      const list = await store.list();
      const stats = store.lastList!;
      if (stats.compacted) compactedSeen++;
      // A kill can tear at most the one index line being written at that moment.
      assert.ok(stats.badLines <= kill + 1, `${where}: ${stats.badLines} damaged index lines`);
      const ids = list.map((s) => s.id);
      assert.equal(new Set(ids).size, ids.length, `${where}: duplicate ids listed`);
      for (const id of ids) assert.match(id, RUN_ID_PATTERN, where);

      const unfinished: string[] = [];
      for (const summary of list) {
        const record = await store.get(summary.id);
        assert.ok(record, `${where}: listed run ${summary.id} has no readable record`);
        assert.equal(record.id, summary.id);
        assert.equal(record.status, summary.status, `${where}: list and get disagree on ${summary.id}`);
        if (record.status !== 'succeeded') {
          assert.equal(record.status, 'failed', `${where}: ${summary.id}`);
          assert.equal(record.error, INTERRUPTED_ERROR, `${where}: ${summary.id}`);
          assert.ok(!done.has(summary.id), `${where}: finished run ${summary.id} reads as ${record.status}`);
          unfinished.push(summary.id);
        }
      }
      // Only the run in flight at the kill may be unfinished; earlier rounds' interrupted runs stay so.
      const fresh = unfinished.filter((id) => !interrupted.has(id));
      assert.ok(fresh.length <= 1, `${where}: ${fresh.length} new unfinished runs: ${fresh.join(', ')}`);
      for (const id of fresh) {
        assert.ok(!previous.has(id), `${where}: ${id} was listed finished before and is now unfinished`);
        interrupted.add(id);
      }
      for (const id of interrupted) assert.ok(ids.includes(id), `${where}: interrupted run ${id} vanished`);

      // Every run whose finish() resolved is there and complete; deleted ones are gone.
      const listed = new Set(ids);
      for (const [id, n] of done) {
        if (maybeDeleted.has(id) && !listed.has(id)) continue;
        assert.ok(listed.has(id), `${where}: finished run ${id} (n=${n}) is missing`);
        if (round.done.has(id) || kill === KILLS - 1) assertCompleteRun(store, await store.get(id), id, n);
      }
      for (const id of deleted) assert.ok(!listed.has(id), `${where}: deleted run ${id} is listed`);

      // Every record file on disk parses; temporary files are never records.
      const top = readdirSync(root);
      if (top.includes('index.lock')) locksLeft.add(readFileSync(join(root, 'index.lock'), 'utf8'));
      for (const n of top) if (n.includes('.tmp-')) tempFiles.add(n);
      for (const name of top) {
        if (!RUN_ID_PATTERN.test(name)) {
          assert.ok(name === 'index.jsonl' || name === '.gitignore' || name === 'index.lock' || name.includes('.tmp-') || name.startsWith('.trash-'), `${where}: stray ${name}`);
          continue;
        }
        const files = readdirSync(join(root, name));
        for (const f of files) if (f.includes('.tmp-')) tempFiles.add(`${name}/${f}`);
        if (files.includes('run.json')) JSON.parse(readFileSync(join(root, name, 'run.json'), 'utf8'));
        else assert.ok(!listed.has(name), `${where}: ${name} listed without run.json`);
      }
      previous = listed;
    }
    // The executor's start-up recovery finalises exactly the interrupted runs and cleans up after them.
    const store = new RunStore(root);
    const recovered = await store.recoverInterrupted();
    assert.deepEqual(new Set(recovered), interrupted, `seed ${SEED}: recovered runs`);
    for (const id of recovered) {
      const raw = JSON.parse(readFileSync(join(root, id, 'run.json'), 'utf8')) as { status: string; error?: string };
      assert.equal(raw.status, 'failed');
      assert.equal(raw.error, INTERRUPTED_ERROR);
      assert.ok(!readdirSync(join(root, id)).some((f) => f.includes('.tmp-')), `seed ${SEED}: temporary files left in ${id}`);
    }
    const relisted = await store.list();
    assert.equal(relisted.filter((s) => s.status === 'failed').length, interrupted.size);
    assert.deepEqual(await store.recoverInterrupted(), []);

    t.diagnostic(`${finishedRuns} runs finished, ${interrupted.size} interrupted, ${deleted.size} deleted, ${compactedSeen} compactions on reopen; ${tempFiles.size} temporary files left by kills, ${locksLeft.size} kills during a compaction`);
    assert.ok(finishedRuns > KILLS, `too few runs were written (${finishedRuns}) for the kills to mean much`);
  });
});
