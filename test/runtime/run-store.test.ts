import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, promises as fsp, readFileSync, readdirSync, renameSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import * as zlib from 'node:zlib';
import { appendLine, crc32Js, readJsonSafe, writeFileAtomic } from '../../client/src/runtime/atomic-file';
import type { RunRecord } from '../../client/src/runtime/records';
import { encodeName, INTERRUPTED_ERROR, RunStore, RunStoreError, summarize } from '../../client/src/runtime/run-store';
import { assertCompleteRun } from './fixtures/run-store-writer';

const ROOT = resolve(__dirname, '../..');
const WRITER = join(__dirname, 'fixtures/run-store-writer.ts');

const temps: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mlp-runstore-'));
  temps.push(dir);
  return dir;
}
after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** A fresh store; fsyncs off except where a test is about durability (they cost milliseconds each on disk). */
function newStore(options: { durable?: boolean; compactMinLines?: number } = {}): RunStore {
  return new RunStore(join(tempDir(), 'runs'), { durable: false, ...options });
}

function record(store: RunStore, overrides: Partial<RunRecord> = {}, at?: Date): RunRecord {
  const id = overrides.id ?? store.newRunId(at);
  return {
    schema: 1,
    id,
    spec: { path: 'mlpipeline.yaml', name: 'churn', hash: 'b'.repeat(64) },
    status: 'running',
    startedAt: (at ?? new Date()).toISOString(),
    params: { lr: 0.01, epochs: 3 },
    git: { commit: 'c0ffee', branch: 'main', dirty: false },
    target: 'local',
    steps: {
      prep: { status: 'pending', command: 'python prep.py', attempts: 0, inputs: {}, outputs: {}, log: store.logRelPath(id, 'prep') },
      train: { status: 'pending', command: 'python train.py', attempts: 0, inputs: {}, outputs: {}, log: store.logRelPath(id, 'train') },
    },
    lineage: [],
    ...overrides,
  };
}

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

function patchRunJson(store: RunStore, id: string, patch: (json: Record<string, unknown>) => void): void {
  const file = join(store.runPath(id), 'run.json');
  const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  patch(json);
  writeFileSync(file, JSON.stringify(json));
}

function indexLines(store: RunStore): string[] {
  return readFileSync(join(store.root, 'index.jsonl'), 'utf8').split('\n').filter(Boolean);
}

describe('atomic-file', () => {
  it('writeFileAtomic replaces the file and leaves no temporary file', async () => {
    const dir = tempDir();
    const file = join(dir, 'a.json');
    await writeFileAtomic(file, '{"a":1}');
    await writeFileAtomic(file, '{"a":2}', { fsync: false });
    assert.deepEqual(await readJsonSafe(file), { a: 2 });
    assert.deepEqual(readdirSync(dir), ['a.json']);
  });

  it('writeFileAtomic fails cleanly when the folder is missing', async () => {
    const dir = tempDir();
    await assert.rejects(writeFileAtomic(join(dir, 'nope', 'a.json'), 'x'), { code: 'ENOENT' });
    assert.deepEqual(readdirSync(dir), []);
  });

  it('readJsonSafe: undefined for missing, corrupt, folders and temporary files', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.json'), '{"a":');
    writeFileSync(join(dir, 'run.json.tmp-1-abcd'), '{"a":1}');
    assert.equal(await readJsonSafe(join(dir, 'missing.json')), undefined);
    assert.equal(await readJsonSafe(join(dir, 'bad.json')), undefined);
    assert.equal(await readJsonSafe(dir), undefined);
    assert.equal(await readJsonSafe(join(dir, 'run.json.tmp-1-abcd')), undefined);
  });

  it('appendLine: concurrent appenders produce whole lines', async () => {
    const file = join(tempDir(), 'lines');
    const long = 'x'.repeat(9000);
    await Promise.all(Array.from({ length: 200 }, (_, i) => appendLine(file, `${i}:${i % 3 === 0 ? long : ''}`)));
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    assert.equal(lines.length, 200);
    assert.deepEqual(new Set(lines.map((l) => Number(l.split(':')[0]))).size, 200);
    for (const l of lines) assert.match(l, /^\d+:(x{9000})?$/);
  });

  it('the JavaScript CRC-32 agrees with zlib', { skip: typeof (zlib as { crc32?: unknown }).crc32 !== 'function' }, () => {
    const crc = (zlib as unknown as { crc32: (d: Uint8Array) => number }).crc32;
    for (const text of ['', 'a', 'hello world', '✓ ünïcødé \u{1F600}', 'x'.repeat(10_000)]) {
      const data = Buffer.from(text);
      assert.equal(crc32Js(data), crc(data), text.slice(0, 20));
    }
  });
});

describe('encodeName', () => {
  it('keeps safe names, encodes the rest, never yields a path', () => {
    assert.equal(encodeName('train_v2-a'), 'train_v2-a');
    assert.equal(encodeName('../../etc/passwd'), '%2E%2E%2F%2E%2E%2Fetc%2Fpasswd');
    assert.equal(encodeName(''), '%');
    assert.equal(encodeName('a b'), 'a%20b');
    assert.equal(encodeName('\uD800x'), '%uD800x');
    assert.equal(encodeName('.hidden.png', true), '%2Ehidden.png');
    for (const hostile of ['..', '.', '/', '\\', 'a/../../b', '\0', 'x'.repeat(10_000), 'é'.repeat(300)]) {
      const enc = encodeName(hostile);
      assert.match(enc, /^[A-Za-z0-9_%~-]+$/);
      assert.ok(enc.length <= 120, `${enc.length}`);
    }
  });

  it('distinct names stay distinct', () => {
    const names = ['a', 'A', 'a b', 'a%20b', 'a+b', '\uD800', '\uFFFD', '\uDC00', 'x'.repeat(500), `${'x'.repeat(499)}y`, 'é', 'e\u0301'];
    assert.equal(new Set(names.map((n) => encodeName(n))).size, names.length);
  });
});

describe('RunStore', () => {
  it('round trip: create, update, logs, series, finish, get, list', async () => {
    const store = newStore({ durable: true });
    const rec = record(store, { label: 'baseline' });
    const writer = await store.create(rec);
    assert.equal(writer.id, rec.id);
    assert.equal((await store.get(rec.id))?.status, 'running');
    assert.equal(existsSync(join(store.root, '.gitignore')), true);

    await writer.update((r) => {
      r.steps.prep.status = 'running';
      r.steps.prep.attempts = 1;
    });
    writer.appendLog('prep', 'hello ');
    writer.appendLog('prep', Buffer.from('world\n'));
    writer.appendLog('train', 'epoch 1\n');
    await writer.update((r) => {
      r.steps.prep.status = 'succeeded';
      r.steps.prep.metrics = { rows: 1000 };
      r.steps.train.metrics = { auc: 0.91, loss: 0.2 };
    });
    const plot = join(tempDir(), 'roc.png');
    writeFileSync(plot, 'PNG');
    const series = await writer.copySeries('train', [plot, join(tempDir(), 'missing.png')]);
    assert.deepEqual(series, ['series/train/roc.png']);
    await writer.update((r) => (r.steps.train.series = series));
    writer.appendLog('train', 'epoch 2\n');
    await writer.finish('succeeded');

    const got = await store.get(rec.id);
    assert.ok(got);
    assert.equal(got.status, 'succeeded');
    assert.ok(got.finishedAt);
    assert.equal(got.label, 'baseline');
    assert.deepEqual(got.steps.train.metrics, { auc: 0.91, loss: 0.2 });
    assert.equal((got as unknown as Record<string, unknown>).writer, undefined, 'store bookkeeping is not part of the record');
    assert.equal(readFileSync(store.logPath(rec.id, 'prep'), 'utf8'), 'hello world\n');
    assert.equal(readFileSync(store.logPath(rec.id, 'train'), 'utf8'), 'epoch 1\nepoch 2\n');
    assert.equal(readFileSync(join(store.runPath(rec.id), series[0]), 'utf8'), 'PNG');

    const fresh = new RunStore(store.root);
    const list = await fresh.list();
    assert.equal(list.length, 1);
    assert.deepEqual(list[0], {
      id: rec.id,
      label: 'baseline',
      specName: 'churn',
      status: 'succeeded',
      startedAt: rec.startedAt,
      finishedAt: got.finishedAt,
      params: { lr: 0.01, epochs: 3 },
      metrics: { 'prep.rows': 1000, 'train.auc': 0.91, 'train.loss': 0.2 },
      gitCommit: 'c0ffee',
    });
    assert.equal(fresh.lastList?.badLines, 0);
    assert.equal(fresh.lastList?.healed, 0);
    // Index lines are written only when the summary changes: create, the metrics update, finish.
    assert.equal(indexLines(store).length, 3);
    assert.ok(!readdirSync(store.runPath(rec.id)).some((n) => n.includes('.tmp-')));
  });

  it('writers are transactional, serialised, and closed after finish', async () => {
    const store = newStore();
    const writer = await store.create(record(store));
    await assert.rejects(
      writer.update((r) => {
        r.label = 'half';
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal((await store.get(writer.id))?.label, undefined);
    assert.equal(writer.snapshot().label, undefined);
    await assert.rejects(writer.update((r) => (r.id = '20260101-000000-000000')), RunStoreError);
    // Many updates without awaiting: applied in order.
    await Promise.all(Array.from({ length: 20 }, (_, i) => writer.update((r) => (r.params.i = i))));
    assert.equal((await store.get(writer.id))?.params.i, 19);
    await assert.rejects(writer.finish('running' as never), { code: 'invalid' });
    await writer.finish('failed', 'step train failed');
    const got = await store.get(writer.id);
    assert.equal(got?.status, 'failed');
    assert.equal(got?.error, 'step train failed');
    await assert.rejects(writer.update(() => undefined), { code: 'closed' });
    await assert.rejects(writer.finish('succeeded'), { code: 'closed' });
    assert.doesNotThrow(() => writer.appendLog('train', 'late'));
    assert.doesNotThrow(() => writer.appendLog('train', 42 as unknown as string));
  });

  it('appendLog never throws on the caller, even when the run folder is gone', async () => {
    const store = newStore();
    const writer = await store.create(record(store));
    rmSync(store.runPath(writer.id), { recursive: true });
    writer.appendLog('prep', 'lost');
    await writer.flush();
    assert.equal((writer.logError as NodeJS.ErrnoException | undefined)?.code, 'ENOENT');
  });

  it('refuses a duplicate id and invalid records', async () => {
    const store = newStore();
    const rec = record(store);
    await store.create(rec);
    await assert.rejects(store.create(rec), { code: 'exists' });
    await assert.rejects(store.create({ ...rec, id: 'nope' }), { code: 'invalid-id' });
    await assert.rejects(store.create({ ...record(store), schema: 2 as 1 }), { code: 'unsupported' });
  });

  it('lists newest first', async () => {
    const store = newStore();
    const times = ['2026-01-02T10:00:00.000Z', '2026-03-01T09:00:00.000Z', '2025-12-31T23:59:59.000Z', '2026-02-01T00:00:00.000Z'];
    for (const t of times) await (await store.create(record(store, {}, new Date(t)))).finish('succeeded');
    const listed = (await new RunStore(store.root).list()).map((r) => r.startedAt);
    assert.deepEqual(listed, [...times].sort().reverse());
  });

  it('newRunId is sortable UTC time plus randomness', () => {
    const store = newStore();
    const id = store.newRunId(new Date('2026-11-25T10:30:00.123Z'));
    assert.match(id, /^20261125-103000-[0-9a-f]{6}$/);
    assert.notEqual(store.newRunId(), store.newRunId());
  });

  it('summarize flattens metrics as step.metric and drops non-finite values', () => {
    const store = newStore();
    const rec = record(store, { sweep: { name: 'lr', trial: 3 }, label: 'x' });
    rec.steps.prep.metrics = { rows: 5 };
    rec.steps.train.metrics = { auc: 0.9, nan: Number.NaN, inf: Number.POSITIVE_INFINITY };
    const s = summarize(rec);
    assert.deepEqual(s.metrics, { 'prep.rows': 5, 'train.auc': 0.9 });
    assert.deepEqual(s.sweep, { name: 'lr', trial: 3 });
    assert.equal(s.gitCommit, 'c0ffee');
    assert.equal(s.specName, 'churn');
    assert.equal(summarize({ ...rec, git: null }).gitCommit, undefined);
    // `__proto__` as a metric name is data, not a prototype.
    rec.steps.train.metrics = JSON.parse('{"__proto__": 1}') as Record<string, number>;
    assert.deepEqual(Object.keys(summarize(rec).metrics), ['prep.rows', 'train.__proto__']);
  });

  it('deletes runs; refuses a live running run unless forced', async () => {
    const store = newStore();
    const done = await store.create(record(store));
    await done.finish('succeeded');
    const live = await store.create(record(store));
    assert.equal(await store.delete(done.id), true);
    assert.equal(await store.delete(done.id), false);
    assert.equal(await store.get(done.id), undefined);
    await assert.rejects(store.delete(live.id), { code: 'busy' });
    assert.deepEqual((await store.list()).map((r) => r.id), [live.id]);
    assert.equal(await store.delete(live.id, { force: true }), true);
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(readdirSync(store.root).filter((n) => n.startsWith('.trash-')), []);
  });

  it('resolveId: full id, unique prefix, random-part prefix, ambiguous, unknown', async () => {
    const store = newStore();
    const ids = ['20261125-103000-1a2b3c', '20261125-103000-1a9999', '20261126-090000-abcdef'];
    for (const id of ids) await (await store.create(record(store, { id }))).finish('succeeded');
    assert.equal(await store.resolveId('20261125-103000-1a2b3c'), ids[0]);
    assert.equal(await store.resolveId('20261126'), ids[2]);
    assert.equal(await store.resolveId('abc'), ids[2]);
    assert.equal(await store.resolveId('1a2'), ids[0]);
    assert.equal(await store.resolveId(' 1A2B '), ids[0]);
    await assert.rejects(store.resolveId('1a'), (err: RunStoreError) => err.code === 'ambiguous' && err.message.includes(ids[0]) && err.message.includes(ids[1]));
    await assert.rejects(store.resolveId('2026'), { code: 'ambiguous' });
    await assert.rejects(store.resolveId('ffff'), { code: 'not-found', message: /no run matches "ffff"/ });
    await assert.rejects(store.resolveId(''), { code: 'not-found' });
    await assert.rejects(store.resolveId('../etc'), { code: 'not-found' });
    await assert.rejects(store.resolveId('x'.repeat(10_000)), (err: Error) => err.message.length < 300);
  });

  it('refuses path-traversal ids everywhere', async () => {
    const store = newStore();
    await (await store.create(record(store))).finish('succeeded');
    for (const bad of ['../../etc', '..', '', '20261125-103000-1a2b3c/../..', '20261125-103000-1A2B3C', '20261125-103000-1a2b3c\0', '/etc/passwd']) {
      await assert.rejects(store.get(bad), { code: 'invalid-id' }, JSON.stringify(bad));
      await assert.rejects(store.delete(bad), { code: 'invalid-id' });
      assert.throws(() => store.logPath(bad, 'train'), { code: 'invalid-id' });
      assert.throws(() => store.runPath(bad), { code: 'invalid-id' });
      await assert.rejects(store.create({ ...record(store), id: bad }), { code: 'invalid-id' });
    }
    // Hostile step names stay inside the run's logs folder.
    const id = store.newRunId();
    for (const step of ['../../../evil', '/abs', '..', 'a\\b', '\0']) {
      const path = store.logPath(id, step);
      assert.equal(resolve(path, '..'), join(store.root, id, 'logs'), step);
    }
  });

  it('stores hostile labels, params and step names verbatim', async () => {
    const store = newStore();
    const hostile = ['"; rm -rf /', '<script>alert(1)</script>', 'line1\nline2\r\n\u2028\u2029', 'x'.repeat(10 * 1024), 'lone \uD800 high \uDFFF low', '{"v":1,"rev":999999}\n{"v":1', '\0\u0001\u001b[31m', '$(reboot) `id`'];
    const ids: string[] = [];
    for (const [i, label] of hostile.entries()) {
      const rec = record(store, { label, params: { [label]: label, n: i } });
      rec.steps[label] = { status: 'succeeded', command: label, attempts: 1, inputs: {}, outputs: {}, log: store.logRelPath(rec.id, label), metrics: { [label]: i } };
      const writer = await store.create(rec);
      writer.appendLog(label, `${label}\n`);
      await writer.finish('succeeded', label);
      ids.push(rec.id);
    }
    const fresh = new RunStore(store.root);
    const list = await fresh.list();
    assert.equal(list.length, hostile.length);
    assert.equal(fresh.lastList?.badLines, 0);
    for (const [i, label] of hostile.entries()) {
      const summary = list.find((s) => s.id === ids[i]);
      assert.equal(summary?.label, label);
      assert.equal(summary?.params[label], label);
      assert.equal(summary?.metrics[`${label}.${label}`], i);
      const got = await fresh.get(ids[i]);
      assert.equal(got?.label, label);
      assert.equal(got?.error, label);
      assert.equal(got?.steps[label].command, label);
      // Logs of hostile step names: an encoded file inside logs/.
      assert.equal(readFileSync(fresh.logPath(ids[i], label), 'utf8').replace(/\uFFFD/g, '?'), `${label}\n`.replace(/[\uD800-\uDFFF]/g, '?'));
    }
    assert.deepEqual(readdirSync(store.root).filter((n) => !/^\d{8}-\d{6}-[0-9a-f]{6}$/.test(n)).sort(), ['.gitignore', 'index.jsonl']);
    assert.ok(!readFileSync(join(store.root, 'index.jsonl')).some((byte) => byte > 0x7f), 'index lines are ASCII');
  });

  it('skips a torn or damaged index line and recovers the line written after it', async () => {
    const store = newStore();
    const a = await store.create(record(store, { label: 'a' }));
    await a.finish('succeeded');
    const indexFile = join(store.root, 'index.jsonl');
    const lines = indexLines(store);
    // A torn write (power loss mid-line), then another process appends a full line after it.
    appendFileSync(indexFile, lines[1].slice(0, 57));
    const b = await store.create(record(store, { label: 'b' }));
    await b.finish('succeeded');
    // Garbage and a line whose checksum no longer matches (a flipped byte that still parses as JSON).
    appendFileSync(indexFile, '\0\0\0\0\n{"not":"ours"}\n');
    appendFileSync(indexFile, `${lines[1].replace('"label":"a"', '"label":"Z"')}\n`);
    appendFileSync(indexFile, lines[0].slice(0, 40)); // torn, unterminated last line

    const fresh = new RunStore(store.root);
    const list = await fresh.list();
    assert.deepEqual(list.map((s) => s.label).sort(), ['a', 'b']);
    assert.ok(list.every((s) => s.status === 'succeeded'));
    assert.equal(fresh.lastList?.badLines, 5); // the torn start, NULs, a foreign line, the flipped line, the torn tail
    assert.equal(fresh.lastList?.healed, 0, 'the line after the torn one was recovered from the index itself');
  });

  it('reads an index much larger than its read buffer, with a line longer than the buffer', async () => {
    const store = newStore({ compactMinLines: Number.MAX_SAFE_INTEGER });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const w = await store.create(record(store, { label: i === 2 ? `big ${'é'.repeat(300_000)}` : `r${i}` }));
      await w.update((r) => (r.steps.train.metrics = { auc: i }));
      await w.finish('succeeded');
      ids.push(w.id);
    }
    const file = join(store.root, 'index.jsonl');
    const once = readFileSync(file);
    assert.ok(once.length > 3 * 256 * 1024, `${once.length} bytes`);
    for (let i = 0; i < 3; i++) appendFileSync(file, once); // duplicates: harmless
    const fresh = new RunStore(store.root, { compactMinLines: Number.MAX_SAFE_INTEGER });
    const list = await fresh.list();
    assert.equal(fresh.lastList?.badLines, 0);
    assert.equal(fresh.lastList?.indexLines, 4 * 3 * 4);
    assert.deepEqual(list.map((s) => s.id).sort(), [...ids].sort());
    for (const [i, id] of ids.entries()) {
      const s = list.find((x) => x.id === id)!;
      assert.equal(s.status, 'succeeded');
      assert.deepEqual(s.metrics, { 'train.auc': i });
      assert.equal(s.label, i === 2 ? `big ${'é'.repeat(300_000)}` : `r${i}`);
    }
    // Compaction rewrites it to one line per run, oldest first.
    const compactor = new RunStore(store.root, { compactMinLines: 0 });
    assert.deepEqual(await compactor.list(), list);
    assert.equal(compactor.lastList?.compacted, true);
    const compacted = indexLines(store);
    assert.equal(compacted.length, 4);
    assert.deepEqual(compacted.map((l) => (JSON.parse(l) as { id: string }).id), ids);
  });

  it('heals an index that lost a finish line (the run folder is the truth)', async () => {
    const store = newStore();
    const w = await store.create(record(store));
    await w.update((r) => (r.steps.train.metrics = { auc: 0.5 }));
    await w.finish('succeeded');
    const file = join(store.root, 'index.jsonl');
    writeFileSync(file, `${indexLines(store).slice(0, 1).join('\n')}\n`); // only the create line survives
    const fresh = new RunStore(store.root);
    const [s] = await fresh.list();
    assert.equal(s.status, 'succeeded');
    assert.deepEqual(s.metrics, { 'train.auc': 0.5 });
    assert.equal(fresh.lastList?.healed, 1);
    // The healed line was appended, so the next reader does not need the record.
    const again = new RunStore(store.root);
    await again.list();
    assert.equal(again.lastList?.healed, 0);
  });

  it('finds run folders missing from the index (crash between run.json and the index line)', async () => {
    const store = newStore();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const w = await store.create(record(store, { label: `r${i}` }));
      await w.finish('succeeded');
      ids.push(w.id);
    }
    const kept = indexLines(store).filter((l) => !l.includes(ids[1]));
    writeFileSync(join(store.root, 'index.jsonl'), `${kept.join('\n')}\n`);
    const fresh = new RunStore(store.root);
    assert.deepEqual((await fresh.list()).map((s) => s.id).sort(), [...ids].sort());
    assert.equal(fresh.lastList?.healed, 1);
    assert.ok(indexLines(store).some((l) => l.includes(ids[1])), 're-indexed');

    // No index at all: every folder is read back, and with many the index is rebuilt in one go.
    for (let i = 0; i < 70; i++) await (await store.create(record(store))).finish('cancelled');
    unlinkSync(join(store.root, 'index.jsonl'));
    const rebuilt = new RunStore(store.root);
    assert.equal((await rebuilt.list()).length, 73);
    assert.equal(rebuilt.lastList?.compacted, true);
    assert.equal(indexLines(store).length, 73);
    // A folder left without run.json by a crash inside create() is not a run.
    mkdirSync(join(store.root, store.newRunId()));
    assert.equal((await new RunStore(store.root).list()).length, 73);
  });

  it('lists from the run folders when the index cannot be read at all', async () => {
    const store = newStore();
    const w = await store.create(record(store));
    await w.finish('succeeded');
    unlinkSync(join(store.root, 'index.jsonl'));
    mkdirSync(join(store.root, 'index.jsonl'));
    const fresh = new RunStore(store.root);
    assert.deepEqual((await fresh.list()).map((s) => s.id), [w.id]);
    assert.equal(fresh.lastList?.healed, 1);
  });

  it('drops index entries whose folder is gone', async () => {
    const store = newStore();
    const a = await store.create(record(store));
    await a.finish('succeeded');
    const b = await store.create(record(store));
    await b.finish('succeeded');
    rmSync(store.runPath(a.id), { recursive: true });
    const fresh = new RunStore(store.root);
    assert.deepEqual((await fresh.list()).map((s) => s.id), [b.id]);
    assert.equal(fresh.lastList?.dropped, 1);
  });

  it("reports a dead writer's running run as failed/interrupted, keeping what it recorded", async () => {
    const store = newStore();
    const w = await store.create(record(store, { label: 'keep me' }));
    await w.update((r) => {
      r.steps.prep.status = 'succeeded';
      r.steps.prep.metrics = { rows: 7 };
      r.steps.train.status = 'running';
    });
    w.appendLog('train', 'epoch 1\n');
    await w.flush();
    assert.equal((await new RunStore(store.root).list())[0].status, 'running', 'alive: this process');

    const pid = deadPid();
    patchRunJson(store, w.id, (j) => ((j.writer as { pid: number }).pid = pid));
    const fresh = new RunStore(store.root);
    const [s] = await fresh.list();
    assert.equal(s.status, 'failed');
    assert.deepEqual(s.metrics, { 'prep.rows': 7 });
    const got = await fresh.get(w.id);
    assert.equal(got?.status, 'failed');
    assert.equal(got?.error, INTERRUPTED_ERROR);
    assert.equal(got?.label, 'keep me');
    assert.equal(got?.steps.prep.status, 'succeeded');
    assert.equal(got?.steps.train.status, 'failed');
    assert.equal(got?.steps.train.error, INTERRUPTED_ERROR);
    assert.equal(readFileSync(fresh.logPath(w.id, 'train'), 'utf8'), 'epoch 1\n');

    // A reused pid (this process, with another start time) does not revive it.
    if (process.platform === 'linux') {
      patchRunJson(store, w.id, (j) => Object.assign(j.writer as object, { pid: process.pid, procStart: '1' }));
      assert.equal((await fresh.get(w.id))?.status, 'failed');
    }

    // Another machine's writer cannot be checked: shown as running.
    let host = '';
    patchRunJson(store, w.id, (j) => {
      host = (j.writer as { host: string }).host;
      Object.assign(j.writer as object, { host: 'elsewhere.example', pid });
    });
    assert.equal((await fresh.get(w.id))?.status, 'running');
    patchRunJson(store, w.id, (j) => Object.assign(j.writer as object, { host }));

    // recoverInterrupted() makes it permanent and removes what the dead writer left behind.
    writeFileSync(join(store.runPath(w.id), 'run.json.tmp-999999-0a0b0c0d'), '{"half":');
    const orphan = join(store.root, store.newRunId(new Date('2026-01-01T00:00:00Z')));
    mkdirSync(orphan);
    const longAgo = new Date(Date.now() - 3_600_000);
    utimesSync(orphan, longAgo, longAgo);
    assert.deepEqual(await fresh.recoverInterrupted(), [w.id]);
    const raw = JSON.parse(readFileSync(join(store.runPath(w.id), 'run.json'), 'utf8')) as RunRecord;
    assert.equal(raw.status, 'failed');
    assert.equal(raw.error, INTERRUPTED_ERROR);
    assert.deepEqual(await fresh.recoverInterrupted(), []);
    assert.deepEqual(readdirSync(store.runPath(w.id)).sort(), ['logs', 'run.json']);
    assert.equal(existsSync(orphan), false, 'a folder without a record, an hour old, is removed');
    assert.equal((await fresh.get(w.id))?.status, 'failed');
  });

  it('compacts a mostly stale index without losing anything', async () => {
    const store = newStore({ compactMinLines: 10 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const w = await store.create(record(store));
      for (let k = 0; k < 6; k++) await w.update((r) => (r.steps.train.metrics = { step: k }));
      await w.finish('succeeded');
      ids.push(w.id);
    }
    assert.equal(indexLines(store).length, 5 * 8);
    // A temporary index file a killed compaction left an hour ago.
    const leftover = join(store.root, 'index.jsonl.tmp-999999-0a0b0c0d');
    writeFileSync(leftover, 'partial');
    utimesSync(leftover, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    const before = await new RunStore(store.root, { compactMinLines: 1_000_000 }).list();
    const compactor = new RunStore(store.root, { compactMinLines: 10 });
    const listed = await compactor.list();
    assert.equal(compactor.lastList?.compacted, true);
    assert.deepEqual(listed, before);
    assert.equal(indexLines(store).length, 5);
    assert.deepEqual(await new RunStore(store.root).list(), before);
    assert.deepEqual(readdirSync(store.root).filter((n) => n.includes('.tmp-') || n === 'index.lock'), []);
  });

  it('leaves compaction to the holder of a live lock and clears a dead holder’s lock', async () => {
    const store = newStore({ compactMinLines: 0 });
    for (let i = 0; i < 3; i++) {
      const w = await store.create(record(store));
      await w.update((r) => (r.steps.train.metrics = { a: 1 }));
      await w.finish('succeeded');
    }
    const lock = join(store.root, 'index.lock');
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: 'elsewhere.example', startedAt: '' }));
    await store.list();
    assert.equal(store.lastList?.compacted, false);
    assert.ok(existsSync(lock), 'a lock held elsewhere stays');
    writeFileSync(lock, JSON.stringify({ pid: deadPid(), host: (await import('node:os')).hostname(), startedAt: '' }));
    await store.list();
    assert.equal(existsSync(lock), false, 'a dead holder’s lock is cleared');
    await store.list();
    assert.equal(store.lastList?.compacted, true);
    assert.equal(indexLines(store).length, 3);
  });

  describe('the compaction protocol, with the races forced', () => {
    /** A store with a stale index: three runs, each with several index lines. */
    async function staleStore(): Promise<{ store: RunStore; ids: string[] }> {
      const store = newStore({ compactMinLines: 0 });
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const w = await store.create(record(store));
        for (let k = 0; k < 3; k++) await w.update((r) => (r.steps.train.metrics = { k }));
        await w.finish('succeeded');
        ids.push(w.id);
      }
      return { store, ids };
    }

    function newestRevs(store: RunStore): Map<string, number> {
      const revs = new Map<string, number>();
      for (const line of indexLines(store)) {
        const e = JSON.parse(line) as { id: string; rev: number };
        revs.set(e.id, Math.max(revs.get(e.id) ?? -1, e.rev));
      }
      return revs;
    }

    it('an append that lands in the old index after the rename is appended again to the new one', async () => {
      const { store } = await staleStore();
      const late = await store.create(record(store));
      const index = join(store.root, 'index.jsonl');
      const open = fsp.open;
      let raced = false;
      // The writer opens the index to append; before it writes, a compaction renames a new index over it
      // (simulated by its last step: a copy renamed into place, so no reader heals the line from run.json).
      fsp.open = (async (path: string, ...rest: unknown[]) => {
        const handle = await (open as (...a: unknown[]) => Promise<unknown>)(path, ...rest);
        if (!raced && path === index && rest[0] === 'a') {
          raced = true;
          fsp.open = open;
          writeFileSync(`${index}.tmp-compacted`, readFileSync(index));
          renameSync(`${index}.tmp-compacted`, index);
        }
        return handle;
      }) as typeof fsp.open;
      try {
        await late.finish('succeeded');
      } finally {
        fsp.open = open;
      }
      assert.ok(raced);
      assert.equal(newestRevs(store).get(late.id), 2, 'the finish line is in the new index');
    });

    it('an append between the compactor’s last read and its rename is carried over', async () => {
      const { store } = await staleStore();
      const late = await store.create(record(store));
      const index = join(store.root, 'index.jsonl');
      const rename = fsp.rename;
      let carried = false;
      // The compactor is about to rename its new index over the old one; a writer appends to the old one first.
      fsp.rename = (async (from: string, to: string) => {
        if (!carried && to === index) {
          carried = true;
          fsp.rename = rename;
          await late.finish('succeeded');
        }
        return rename(from, to);
      }) as typeof fsp.rename;
      const compactor = new RunStore(store.root, { compactMinLines: 0, durable: false });
      try {
        await compactor.list();
      } finally {
        fsp.rename = rename;
      }
      assert.ok(carried);
      assert.equal(compactor.lastList?.compacted, true);
      assert.equal(newestRevs(store).get(late.id), 2, 'the finish line is in the new index');
      assert.equal((await new RunStore(store.root).list()).find((s) => s.id === late.id)?.status, 'succeeded');
    });
  });

  it('index lines appended while another process compacts in a loop are never lost', { timeout: 120_000 }, async () => {
    const root = join(tempDir(), 'runs');
    const children = [0, 1, 2].map(() => spawn(process.execPath, ['--import', 'tsx', WRITER, '--root', root, '--stress', '800'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] }));
    const stressed = new Map<string, number>();
    let running = children.length;
    const finished = Promise.all(
      children.map(
        (child) =>
          new Promise<void>((done, fail) => {
            let out = '';
            let err = '';
            child.stderr.on('data', (d: Buffer) => (err += d.toString()));
            child.stdout.on('data', (d: Buffer) => {
              out += d.toString();
              const m = /stressed (\S+) (\d+)\n/.exec(out);
              if (m && !stressed.has(m[1])) {
                stressed.set(m[1], Number(m[2]));
                running--;
                done();
              }
            });
            child.on('exit', (code) => fail(new Error(`stress writer exited early (${code}): ${err}`)));
          }),
      ),
    );
    // Compact as often as possible while the writers append (their writers stay alive, so nothing is healed).
    const compactor = new RunStore(root, { durable: false, compactMinLines: 0, compactRatio: 0 });
    let compactions = 0;
    await new Promise((r) => setTimeout(r, 300));
    while (running > 0) {
      await compactor.list();
      if (compactor.lastList?.compacted) compactions++;
    }
    await finished;
    // The raw index, read before anything else touches it: each run's newest line is its last update.
    const newest = new Map<string, { rev: number; i?: number }>();
    for (const line of readFileSync(join(root, 'index.jsonl'), 'utf8').split('\n').filter(Boolean)) {
      const e = JSON.parse(line) as { id: string; rev: number; run: { metrics: Record<string, number> } };
      if ((newest.get(e.id)?.rev ?? -1) < e.rev) newest.set(e.id, { rev: e.rev, i: e.run.metrics['train.i'] });
    }
    for (const child of children) child.stdin.end();
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.on('exit', r)))));
    assert.ok(compactions >= 10, `only ${compactions} compactions ran during the appends`);
    for (const [id, updates] of stressed) {
      const stored = JSON.parse(readFileSync(join(root, id, 'run.json'), 'utf8')) as { rev: number };
      assert.equal(stored.rev, updates + 1);
      assert.deepEqual(newest.get(id), { rev: updates + 1, i: updates }, `${id}: the last index line (of ${compactions} compactions)`);
    }
  });

  it('two processes writing 50 runs each at once, listing and compacting meanwhile, lose nothing', { timeout: 120_000 }, async () => {
    const root = join(tempDir(), 'runs');
    const series = join(tempDir(), 'loss.csv');
    writeFileSync(series, 'step,loss\n0,1.0\n1,0.5\n');
    const runChild = (start: number) =>
      new Promise<string[]>((done, fail) => {
        const child = spawn(process.execPath, ['--import', 'tsx', WRITER, '--root', root, '--start', String(start), '--count', '50', '--list-every', '2', '--compact-min', '0', '--compact-ratio', '1', '--durable', '0', '--series', series], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', fail);
        child.on('exit', (code) => (code === 0 ? done(out.split('\n')) : fail(new Error(`writer exited ${code}: ${err}`))));
      });
    const outputs = await Promise.all([runChild(0), runChild(1000)]);
    const done = new Map<string, number>();
    for (const lines of outputs) {
      for (const line of lines) {
        const m = /^done (\S+) (\d+)$/.exec(line);
        if (m) done.set(m[1], Number(m[2]));
      }
    }
    assert.equal(done.size, 100);
    // The index itself, before any reader heals it, has every run's finish line: compactions running
    // while the other process appended lost nothing.
    const newest = new Map<string, { rev: number; status: string }>();
    for (const line of readFileSync(join(root, 'index.jsonl'), 'utf8').split('\n').filter(Boolean)) {
      const e = JSON.parse(line) as { id: string; rev: number; run: { status: string } };
      if ((newest.get(e.id)?.rev ?? -1) < e.rev) newest.set(e.id, { rev: e.rev, status: e.run.status });
    }
    for (const id of done.keys()) assert.equal(newest.get(id)?.status, 'succeeded', `index line of ${id}`);
    const store = new RunStore(root);
    const list = await store.list();
    assert.equal(list.length, 100);
    assert.equal(store.lastList?.badLines, 0);
    assert.ok(list.every((s) => s.status === 'succeeded'));
    for (const [id, n] of done) assertCompleteRun(store, await store.get(id), id, n);
    for (const name of readdirSync(root)) {
      if (/^\d{8}-/.test(name)) assert.deepEqual(readdirSync(join(root, name)).sort(), ['logs', 'run.json', 'series']);
    }
  });
});
