import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { ContentHasher } from '../../client/src/runtime/hashing';
import { canonicalJson, computeCacheKey, isFresh, StepCache, type CacheEntry, type CacheKeyParts } from '../../client/src/runtime/step-cache';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mlp-stepcache-'));
  dirs.push(d);
  return d;
}

const H1 = 'a'.repeat(64);
const H2 = 'b'.repeat(64);

const base: CacheKeyParts = {
  command: 'python src/train.py --lr 0.1',
  env: { SEED: '1', MODE: 'fast' },
  params: { lr: 0.1, epochs: 3, shuffle: true, name: 'x' },
  inputs: { 'src/train.py': H1, 'data/churn.csv': H2 },
  upstream: { 'prepare.features': H1 },
};

describe('computeCacheKey', () => {
  it('is a sha256 hex that does not depend on key order at any level', () => {
    const key = computeCacheKey(base);
    assert.match(key, /^[0-9a-f]{64}$/);
    const reordered: CacheKeyParts = {
      upstream: { 'prepare.features': H1 },
      inputs: { 'data/churn.csv': H2, 'src/train.py': H1 },
      params: { name: 'x', shuffle: true, epochs: 3, lr: 0.1 },
      env: { MODE: 'fast', SEED: '1' },
      command: 'python src/train.py --lr 0.1',
    };
    assert.equal(computeCacheKey(reordered), key);
    assert.equal(computeCacheKey({ ...base, image: undefined }), key, 'an undefined image is no image');
  });

  it('changes with each part', () => {
    const key = computeCacheKey(base);
    const variants: Array<[string, CacheKeyParts]> = [
      ['command', { ...base, command: 'python src/train.py --lr 0.2' }],
      ['env value', { ...base, env: { ...base.env, SEED: '2' } }],
      ['env name', { ...base, env: { SEED: '1', MODE2: 'fast' } }],
      ['env added', { ...base, env: { ...base.env, EXTRA: '' } }],
      ['param value', { ...base, params: { ...base.params, lr: 0.01 } }],
      ['param type', { ...base, params: { ...base.params, epochs: '3' } }],
      ['param bool', { ...base, params: { ...base.params, shuffle: false } }],
      ['input hash', { ...base, inputs: { ...base.inputs, 'src/train.py': H2 } }],
      ['input path', { ...base, inputs: { 'src/train2.py': H1, 'data/churn.csv': H2 } }],
      ['input removed', { ...base, inputs: { 'src/train.py': H1 } }],
      ['upstream hash', { ...base, upstream: { 'prepare.features': H2 } }],
      ['upstream name', { ...base, upstream: { 'prepare.other': H1 } }],
      ['image', { ...base, image: 'python:3.12-slim' }],
    ];
    const seen = new Set([key]);
    for (const [what, parts] of variants) {
      const k = computeCacheKey(parts);
      assert.notEqual(k, key, what);
      assert.ok(!seen.has(k), `${what} collides with another variant`);
      seen.add(k);
    }
  });

  it('keeps parts apart (moving text between parts changes the key)', () => {
    const a = computeCacheKey({ ...base, env: { A: 'B' }, params: {} });
    const b = computeCacheKey({ ...base, env: {}, params: { A: 'B' } });
    assert.notEqual(a, b);
  });

  it('canonical JSON: sorted keys, no whitespace, non-finite numbers kept apart from null', () => {
    assert.equal(canonicalJson({ b: [2, { d: 1, c: null }], a: 'x' }), '{"a":"x","b":[2,{"c":null,"d":1}]}');
    const keys = new Set([NaN, Infinity, -Infinity, null, 'NaN'].map((v) => canonicalJson({ p: v })));
    assert.equal(keys.size, 5);
    assert.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}');
  });
});

function entry(key: string, outputs: CacheEntry['outputs'] = {}): CacheEntry {
  return { key, step: 'train', runId: '20261125-103000-1a2b3c', outputs, metrics: { auc: 0.91 }, createdAt: '2026-11-25T10:30:00.000Z' };
}

describe('StepCache', () => {
  it('misses, then hits after record(); entries are fanned out by the key prefix', async () => {
    const dir = path.join(tmp(), 'steps');
    const cache = new StepCache(dir);
    const key = computeCacheKey(base);
    assert.equal(await cache.lookup(key), undefined);
    const e = entry(key, { model: { path: 'models/model.pkl', hash: H1 } });
    await cache.record(key, e);
    assert.deepEqual(await cache.lookup(key), e);
    assert.ok(fs.existsSync(path.join(dir, key.slice(0, 2), `${key}.json`)));
    assert.deepEqual(fs.readdirSync(path.join(dir, key.slice(0, 2))), [`${key}.json`], 'no temporary files left');
    assert.equal(await cache.lookup(computeCacheKey({ ...base, command: 'other' })), undefined);
  });

  it('reads a corrupt, truncated, foreign or misplaced entry as a miss', async () => {
    const cache = new StepCache(path.join(tmp(), 'steps'));
    const key = computeCacheKey(base);
    await cache.record(key, entry(key));
    const file = cache.pathFor(key);
    const good = fs.readFileSync(file, 'utf8');
    const other = computeCacheKey({ ...base, command: 'x' });
    for (const bad of [
      '{"key": ',
      good.slice(0, good.length / 2),
      '',
      '[]',
      'null',
      JSON.stringify({ ...entry(key), outputs: { m: { path: 'x', hash: 'not-a-hash' } } }),
      JSON.stringify({ ...entry(key), metrics: { auc: 'high' } }),
      JSON.stringify({ ...entry(key), runId: 7 }),
      JSON.stringify(entry(other)), // recorded under another key
    ]) {
      fs.writeFileSync(file, bad);
      assert.equal(await cache.lookup(key), undefined, bad.slice(0, 60));
    }
    fs.rmSync(file);
    fs.mkdirSync(file); // a folder where the file should be
    assert.equal(await cache.lookup(key), undefined);
  });

  it('refuses malformed keys and an entry recorded under another key', async () => {
    const cache = new StepCache(path.join(tmp(), 'steps'));
    await assert.rejects(cache.lookup('../../etc/passwd'), TypeError);
    await assert.rejects(cache.record('ABC', entry('ABC')), TypeError);
    const key = computeCacheKey(base);
    await assert.rejects(cache.record(key, entry(computeCacheKey({ ...base, command: 'y' }))), /carries key/);
  });

  it('isFresh: true while every output is there with its hash; false once one is deleted or edited', async () => {
    const root = tmp();
    fs.mkdirSync(path.join(root, 'models/parts'), { recursive: true });
    fs.writeFileSync(path.join(root, 'models/model.pkl'), 'weights');
    fs.writeFileSync(path.join(root, 'models/parts/a.bin'), 'a');
    const h0 = new ContentHasher({ root });
    const outputs = {
      model: { path: 'models/model.pkl', hash: await h0.hashFile('models/model.pkl') },
      parts: { path: 'models/parts', hash: (await h0.hashPath('models/parts')).hash },
    };
    const cache = new StepCache(path.join(root, '.mlpipeline/cache/steps'));
    const key = computeCacheKey(base);
    await cache.record(key, entry(key, outputs));
    const hit = (await cache.lookup(key))!;
    assert.equal(await cache.isFresh(hit, new ContentHasher({ root })), true);
    assert.equal(await isFresh(hit, new ContentHasher({ root })), true);

    fs.writeFileSync(path.join(root, 'models/parts/b.bin'), 'b'); // a folder output gains a file
    assert.equal(await cache.isFresh(hit, new ContentHasher({ root })), false);
    fs.rmSync(path.join(root, 'models/parts/b.bin'));
    assert.equal(await cache.isFresh(hit, new ContentHasher({ root })), true);

    fs.writeFileSync(path.join(root, 'models/model.pkl'), 'WEIGHTS'); // edited, same size
    assert.equal(await cache.isFresh(hit, new ContentHasher({ root })), false);
    fs.writeFileSync(path.join(root, 'models/model.pkl'), 'weights');
    assert.equal(await cache.isFresh(hit, new ContentHasher({ root })), true);

    fs.rmSync(path.join(root, 'models/model.pkl')); // deleted
    assert.equal(await cache.isFresh(hit, new ContentHasher({ root })), false);
  });
});
