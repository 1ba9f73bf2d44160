import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  emptyLock,
  formatLock,
  LOCK_HEADER,
  LockFileError,
  lockPathFor,
  readLock,
  retainLockEntries,
  updateLockDataset,
  updateLockStep,
  writeLock,
  type LockFile,
} from '../../client/src/runtime/lock-file';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mlp-lock-'));
  dirs.push(d);
  return d;
}

const H1 = `${'1'.repeat(62)}e5`; // reads as a float in YAML unless quoted
const H2 = 'c'.repeat(64);
const H3 = '0123456789abcdef'.repeat(4);
const H4 = '0'.repeat(64); // reads as an integer unless quoted

function sample(): LockFile {
  let lock = emptyLock('churn');
  lock = updateLockDataset(lock, 'raw', { uri: 'data/churn.csv', hash: H1, files: 1, bytes: 1234 });
  lock = updateLockStep(lock, 'train', {
    cacheKey: H2,
    command: 'python src/train.py --lr 0.1 --note "a: b" # not a comment',
    inputs: { 'src/train.py': H3, 'data/churn.csv': H1 },
    outputs: { model: { path: 'models/model.pkl', hash: H3 } },
    params: { lr: 0.1, epochs: 3, shuffle: true, name: 'x', version: '1.0', flag: 'true', big: 1e21, nan: NaN, multi: 'line 1\nline 2' },
  });
  lock = updateLockStep(lock, 'prepare', { cacheKey: H4, command: 'python src/prepare.py', inputs: {}, outputs: {}, params: {} });
  return lock;
}

describe('lockPathFor', () => {
  it('puts the lock next to the spec, named after it', () => {
    assert.equal(lockPathFor(path.join('x', 'mlpipeline.yaml')), path.join('x', 'mlpipeline.lock'));
    assert.equal(lockPathFor(path.join('x', 'mlpipeline.yml')), path.join('x', 'mlpipeline.lock'));
    assert.equal(lockPathFor(path.join('x', 'foo.mlpipeline.yaml')), path.join('x', 'foo.mlpipeline.lock'));
    assert.equal(lockPathFor(path.join('x', 'foo.mlpipeline.yml')), path.join('x', 'foo.mlpipeline.lock'));
    assert.equal(lockPathFor('/abs/dir/mlpipeline.yaml'), path.join('/abs/dir', 'mlpipeline.lock'));
  });
});

describe('readLock / writeLock', () => {
  it('round-trips, keeping every type (strings that look like numbers or booleans stay strings)', () => {
    const file = path.join(tmp(), 'mlpipeline.lock');
    const lock = sample();
    writeLock(file, lock);
    assert.deepEqual(readLock(file), lock);
    const text = fs.readFileSync(file, 'utf8');
    assert.ok(text.startsWith(LOCK_HEADER));
    assert.match(LOCK_HEADER, /Generated/);
    assert.match(LOCK_HEADER, /Commit/);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['mlpipeline.lock'], 'no temporary file left');
  });

  it('writes the same bytes whatever order things were added in, keys sorted', () => {
    const a = sample();
    let b = emptyLock('churn');
    b = updateLockStep(b, 'prepare', a.steps.prepare);
    const t = a.steps.train;
    b = updateLockStep(b, 'train', {
      params: Object.fromEntries(Object.entries(t.params).reverse()),
      outputs: t.outputs,
      inputs: Object.fromEntries(Object.entries(t.inputs).reverse()),
      command: t.command,
      cacheKey: t.cacheKey,
    });
    b = updateLockDataset(b, 'raw', { bytes: 1234, files: 1, hash: H1, uri: 'data/churn.csv' });
    assert.equal(formatLock(a), formatLock(b));

    const text = formatLock(a);
    const topKeys = text.split('\n').filter((l) => /^[a-zA-Z]/.test(l)).map((l) => l.split(':')[0]);
    assert.deepEqual(topKeys, ['lockVersion', 'spec', 'datasets', 'steps']);
    assert.ok(text.indexOf('  prepare:') < text.indexOf('  train:'), 'steps sorted');
    const trainKeys = text.slice(text.indexOf('  train:')).split('\n').filter((l) => /^ {4}[a-zA-Z]/.test(l)).map((l) => l.trim().split(':')[0]);
    assert.deepEqual(trainKeys, ['cacheKey', 'command', 'inputs', 'outputs', 'params']);
    assert.ok(text.indexOf('data/churn.csv: ') < text.indexOf('src/train.py: '), 'inputs sorted');
  });

  it('missing file -> undefined', () => {
    assert.equal(readLock(path.join(tmp(), 'mlpipeline.lock')), undefined);
  });

  it('malformed files throw LockFileError saying to delete or fix the file', () => {
    const dir = tmp();
    const file = path.join(dir, 'mlpipeline.lock');
    const good = formatLock(sample());
    const cases: Array<[string, string, RegExp]> = [
      ['broken YAML', 'lockVersion: 1\nspec: [unclosed\n', /does not parse \(line \d+\)/],
      ['duplicate key', 'lockVersion: 1\nspec: a\nspec: b\n', /does not parse/],
      ['empty', '', /not a YAML mapping/],
      ['a list', '- 1\n- 2\n', /not a YAML mapping/],
      ['no version', 'spec: a\n', /lockVersion/],
      ['bad hash', good.replace(H2, 'zzz'), /steps\.train\.cacheKey/],
      ['bad output', good.replace('path: models/model.pkl', 'path: [1]'), /steps\.train\.outputs\.model\.path/],
      ['bad param', good.replace('lr: 0.1', 'lr: {a: 1}'), /steps\.train\.params\.lr/],
      ['bad count', good.replace('files: 1', 'files: -1'), /datasets\.raw\.files/],
      ['steps not a map', 'lockVersion: 1\nspec: a\nsteps: [a]\n', /`steps` must be a mapping/],
    ];
    for (const [what, text, re] of cases) {
      fs.writeFileSync(file, text);
      assert.throws(
        () => readLock(file),
        (e: unknown) => e instanceof LockFileError && re.test(e.message) && /Delete it .* or fix it\./.test(e.message) && e.message.includes(file),
        what,
      );
    }
    fs.writeFileSync(file, 'lockVersion: 2\nspec: a\n');
    assert.throws(() => readLock(file), /newer mlpipeline.*Update mlpipeline/);
    fs.rmSync(file);
    fs.mkdirSync(file);
    assert.throws(() => readLock(file), LockFileError, 'a folder where the file should be');
  });

  it('refuses alias bombs', () => {
    const file = path.join(tmp(), 'mlpipeline.lock');
    let text = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i < 12; i++) text += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
    fs.writeFileSync(file, `lockVersion: 1\nspec: a\n${text}`);
    assert.throws(() => readLock(file), LockFileError);
  });
});

describe('lock helpers', () => {
  it('updateLockStep / updateLockDataset return new locks and leave the old one (and the argument) alone', () => {
    const a = sample();
    const snapshot = structuredClone(a);
    const step = { cacheKey: H1, command: 'c', inputs: { x: H2 }, outputs: {}, params: {} };
    const b = updateLockStep(a, 'evaluate', step);
    step.inputs.x = H3;
    const c = updateLockDataset(b, 'raw', { uri: 'data/other.csv', hash: H2, files: 2, bytes: 9 });
    assert.deepEqual(a, snapshot);
    assert.equal(b.steps.evaluate.inputs.x, H2, 'the entry was copied');
    assert.equal(b.datasets.raw.uri, 'data/churn.csv');
    assert.equal(c.datasets.raw.uri, 'data/other.csv');
    assert.deepEqual(Object.keys(retainLockEntries(c, ['train'], []).steps), ['train']);
    assert.deepEqual(retainLockEntries(c, ['train'], []).datasets, {});
  });
});
