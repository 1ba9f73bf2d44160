import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  ContentHasher,
  InvalidPathError,
  linkHash,
  manifestHash,
  MANIFEST_HEADER,
  MissingPathError,
  normalizeRelPath,
} from '../../client/src/runtime/hashing';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A temporary workspace with these files (content strings or buffers); mtimes set 60 s in the past. */
function workspace(files: Record<string, string | Buffer> = {}): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mlp-hash-'));
  dirs.push(root);
  for (const [rel, content] of Object.entries(files)) write(root, rel, content);
  return root;
}

/** Writes a file with an mtime well in the past, so its stat cache entry is not racy. */
function write(root: string, rel: string, content: string | Buffer, mtimeSec = Date.now() / 1000 - 60): void {
  const abs = path.join(root, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, content);
  fs.utimesSync(abs, mtimeSec, mtimeSec);
}

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A readStream hook that counts reads (and the most at once). */
function countingReader(): { reads: string[]; maxConcurrent: number; readStream: (abs: string) => AsyncIterable<Uint8Array> } {
  const state = { reads: [] as string[], maxConcurrent: 0, readStream: undefined as unknown as (abs: string) => AsyncIterable<Uint8Array> };
  let active = 0;
  state.readStream = (abs: string) =>
    (async function* () {
      state.reads.push(abs);
      active++;
      state.maxConcurrent = Math.max(state.maxConcurrent, active);
      try {
        await sleep(1);
        yield await fs.promises.readFile(abs);
      } finally {
        active--;
      }
    })();
  return state;
}

describe('ContentHasher: files', () => {
  it('hashes a file to the sha256 of its bytes; same content, same hash', async () => {
    const root = workspace({ 'a.txt': 'hello\n', 'b/c.txt': 'hello\n' });
    const h = new ContentHasher({ root });
    assert.equal(await h.hashFile('a.txt'), sha('hello\n'));
    assert.equal(await h.hashFile('b/c.txt'), await h.hashFile('a.txt'));
    assert.deepEqual(await h.hashPath('a.txt'), { hash: sha('hello\n'), kind: 'file', files: 1, bytes: 6 });
  });

  it('one changed byte changes the hash', async () => {
    const root = workspace({ 'a.bin': Buffer.from([1, 2, 3, 4]), 'b.bin': Buffer.from([1, 2, 3, 5]) });
    const h = new ContentHasher({ root });
    assert.notEqual(await h.hashFile('a.bin'), await h.hashFile('b.bin'));
  });

  it('streams large files (several read chunks)', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    const root = workspace({ 'big.bin': big });
    assert.equal(await new ContentHasher({ root }).hashFile('big.bin'), sha(big));
  });

  it('throws MissingPathError, with the path, for a missing file or a path through a file', async () => {
    const root = workspace({ 'a.txt': 'x' });
    const h = new ContentHasher({ root });
    await assert.rejects(h.hashPath('nope/data.csv'), (e: unknown) => e instanceof MissingPathError && e.path === 'nope/data.csv' && /does not exist/.test(e.message));
    await assert.rejects(h.hashPath('a.txt/inner'), MissingPathError);
  });

  it('rejects absolute paths and paths escaping the root with ..', async () => {
    const root = workspace({ 'a.txt': 'x' });
    const h = new ContentHasher({ root });
    for (const bad of ['/etc/passwd', '..', '../x', 'a/../../x', 'C:\\x', 'C:/x', '\\\\server\\share', '']) {
      await assert.rejects(h.hashPath(bad), InvalidPathError, bad);
    }
    assert.equal(normalizeRelPath('sub/../a.txt'), 'a.txt');
    assert.equal(normalizeRelPath('./data/'), 'data');
    assert.equal(await h.hashFile('sub/../a.txt'), sha('x'));
  });

  it('hashes paths outside the workspace only when allowed (dataset URIs may be absolute)', async () => {
    const outside = workspace({ 'd.csv': 'a,b\n' });
    const root = workspace();
    const h = new ContentHasher({ root });
    await assert.rejects(h.hashPath(path.join(outside, 'd.csv')), InvalidPathError);
    assert.equal((await h.hashPath(path.join(outside, 'd.csv'), { allowOutsideRoot: true })).hash, sha('a,b\n'));
    const rel = path.relative(root, path.join(outside, 'd.csv'));
    assert.equal((await h.hashPath(rel, { allowOutsideRoot: true })).hash, sha('a,b\n'));
  });

  it('hashFile refuses a folder', async () => {
    const root = workspace({ 'd/a.txt': 'x' });
    await assert.rejects(new ContentHasher({ root }).hashFile('d'), /is a folder/);
  });
});

describe('ContentHasher: folders', () => {
  it('hashes the sorted manifest of (relative path, file hash); renames, edits and additions change it', async () => {
    const root = workspace({ 'd/a.txt': 'A', 'd/sub/b.txt': 'B' });
    const h = () => new ContentHasher({ root, cacheFile: path.join(root, 'nocache', `${Math.random()}.txt`) });
    const r = await h().hashPath('d');
    assert.equal(r.kind, 'dir');
    assert.equal(r.files, 2);
    assert.equal(r.bytes, 2);
    const expected = sha(`${MANIFEST_HEADER}f ${sha('A')} "a.txt"\nf ${sha('B')} "sub/b.txt"\n`);
    assert.equal(r.hash, expected);
    assert.equal(manifestHash([{ rel: 'sub/b.txt', kind: 'f', hash: sha('B') }, { rel: 'a.txt', kind: 'f', hash: sha('A') }]), expected);

    fs.renameSync(path.join(root, 'd/sub/b.txt'), path.join(root, 'd/sub/c.txt'));
    const renamed = await h().hashPath('d');
    assert.notEqual(renamed.hash, r.hash, 'a rename inside the folder changes its hash');

    fs.renameSync(path.join(root, 'd/sub/c.txt'), path.join(root, 'd/sub/b.txt'));
    assert.equal((await h().hashPath('d')).hash, r.hash, 'renamed back: the same hash again');

    write(root, 'd/sub/b.txt', 'C');
    assert.notEqual((await h().hashPath('d')).hash, r.hash, 'a content change changes it');
    write(root, 'd/sub/b.txt', 'B');
    write(root, 'd/new.txt', '');
    assert.notEqual((await h().hashPath('d')).hash, r.hash, 'a new (even empty) file changes it');
  });

  it('lists files in full-path order even where folder and file names share prefixes', async () => {
    // '-', '.', ' ', '!' sort before '/', and '0', 'B', '_', 'é' after it: a naive per-folder order gets these wrong.
    const rels = [
      'a-b', 'a.txt', 'a b', 'a!', 'a0', 'aB', 'a_', 'aé', 'a-b-dir/q', 'a.d/r', 'a/-', 'a/dot.', 'a/x-y/1', 'a/x/2',
      'a/x.txt', 'a/x0', 'a/y/z', 'a/y-', 'a/y.', 'a/y0', 'b/a', 'B', '-', 'Z/zz', 'z', '🙂/1', 'ü', '\u00e9/nfc',
    ];
    const files: Record<string, string> = {};
    for (const r of rels) files[`d/${r}`] = `content of ${r}`;
    const root = workspace(files);
    const expected = Object.entries(files).map(([p, c]) => ({ rel: p.slice(2), kind: 'f' as const, hash: sha(c) }));
    assert.equal((await new ContentHasher({ root }).hashPath('d')).hash, manifestHash(expected));

    const root2 = workspace({ 'd/a': '1', 'd/a-b/c': '2', 'd/a0': '3', 'd/a.b/c': '4', 'd/ab/c': '5' });
    const expected2 = [
      { rel: 'a', kind: 'f' as const, hash: sha('1') },
      { rel: 'a-b/c', kind: 'f' as const, hash: sha('2') },
      { rel: 'a0', kind: 'f' as const, hash: sha('3') },
      { rel: 'a.b/c', kind: 'f' as const, hash: sha('4') },
      { rel: 'ab/c', kind: 'f' as const, hash: sha('5') },
    ];
    assert.equal((await new ContentHasher({ root: root2 }).hashPath('d')).hash, manifestHash(expected2));
  });

  it('does not depend on where the folder is (moving the whole folder keeps its hash)', async () => {
    const root = workspace({ 'x/d/a.txt': 'A', 'y/z/d/a.txt': 'A' });
    const h = new ContentHasher({ root });
    assert.equal((await h.hashPath('x/d')).hash, (await h.hashPath('y/z/d')).hash);
  });

  it('an empty folder has a fixed hash; empty subfolders add nothing', async () => {
    const root = workspace();
    fs.mkdirSync(path.join(root, 'e1'));
    fs.mkdirSync(path.join(root, 'e2/deeper/still'), { recursive: true });
    const h = new ContentHasher({ root });
    const e1 = await h.hashPath('e1');
    assert.deepEqual(e1, { hash: sha(MANIFEST_HEADER), kind: 'dir', files: 0, bytes: 0 });
    assert.equal((await h.hashPath('e2')).hash, e1.hash);
    assert.equal((await new ContentHasher({ root }).hashPath('e1')).hash, e1.hash);
  });

  it('skips .git, __pycache__ and .mlpipeline at any depth', async () => {
    const root = workspace({ 'd/a.txt': 'A' });
    const h = new ContentHasher({ root });
    const before = await h.hashPath('d');
    write(root, 'd/.git/HEAD', 'ref');
    write(root, 'd/sub/__pycache__/m.pyc', 'pyc');
    write(root, 'd/.mlpipeline/cache/x', 'x');
    assert.equal((await h.hashPath('d')).hash, before.hash);
    assert.equal((await h.hashPath('d')).files, 1);
  });

  it('quotes odd names so they cannot forge manifest lines', async () => {
    const root = workspace({ 'd/a"b.txt': '1', 'd/new\nline.txt': '2', 'd/é.txt': '3' });
    const r = await new ContentHasher({ root, cacheFile: path.join(root, 'other-cache.txt') }).hashPath('d');
    const entries = [
      { rel: 'a"b.txt', kind: 'f' as const, hash: sha('1') },
      { rel: 'new\nline.txt', kind: 'f' as const, hash: sha('2') },
      { rel: 'é.txt', kind: 'f' as const, hash: sha('3') },
    ];
    assert.equal(r.hash, manifestHash(entries));
    const text = `${MANIFEST_HEADER}f ${sha('1')} "a\\"b.txt"\nf ${sha('2')} "new\\nline.txt"\nf ${sha('3')} "é.txt"\n`;
    assert.equal(r.hash, sha(text));

    // and the stat cache keeps such names across a save
    const h = new ContentHasher({ root });
    await h.hashPath('d');
    await h.save();
    const again = new ContentHasher({ root });
    assert.equal((await again.hashPath('d')).hash, r.hash);
    assert.equal(again.stats.filesRead, 0);
  });

  it('hashes thousands of files with bounded concurrency', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 2000; i++) files[`d/p${i % 20}/f${i}.txt`] = `file ${i}`;
    const root = workspace(files);
    const reader = countingReader();
    const h = new ContentHasher({ root, concurrency: 4, readStream: reader.readStream });
    const r = await h.hashPath('d');
    assert.equal(r.files, 2000);
    assert.equal(reader.reads.length, 2000);
    assert.ok(reader.maxConcurrent <= 4, `at most 4 reads at once, saw ${reader.maxConcurrent}`);
    assert.ok(reader.maxConcurrent >= 2, 'reads do run in parallel');
  });
});

describe('ContentHasher: symbolic links', { skip: process.platform === 'win32' ? 'symlinks need privileges on Windows' : false }, () => {
  it('hashes a link as link:<target>, never following it', async () => {
    const outside = workspace({ 'secret.txt': 'outside' });
    const root = workspace({ 'd/a.txt': 'A' });
    const target = path.join(outside, 'secret.txt');
    fs.symlinkSync(target, path.join(root, 'd/link'));
    fs.symlinkSync('does-not-exist', path.join(root, 'dangling'));
    const h = new ContentHasher({ root });
    assert.deepEqual(await h.hashPath('d/link'), { hash: linkHash(target), kind: 'symlink', files: 1, bytes: 0 });
    assert.equal(linkHash(target), sha(`link:${target}`));
    assert.equal((await h.hashPath('dangling')).hash, sha('link:does-not-exist'));

    const dir = await h.hashPath('d');
    assert.equal(dir.hash, manifestHash([{ rel: 'a.txt', kind: 'f', hash: sha('A') }, { rel: 'link', kind: 'l', hash: linkHash(target) }]));
    write(outside, 'secret.txt', 'changed behind the link');
    assert.equal((await h.hashPath('d')).hash, dir.hash, 'the target is not read');
    fs.unlinkSync(path.join(root, 'd/link'));
    fs.symlinkSync(path.join(outside, 'other'), path.join(root, 'd/link'));
    assert.notEqual((await h.hashPath('d')).hash, dir.hash, 'a new target changes the hash');
  });

  it('does not descend into a linked folder', async () => {
    const outside = workspace({ 'big/1.txt': '1', 'big/2.txt': '2' });
    const root = workspace({ 'd/a.txt': 'A' });
    fs.symlinkSync(path.join(outside, 'big'), path.join(root, 'd/big'));
    const r = await new ContentHasher({ root }).hashPath('d');
    assert.equal(r.files, 2);
    assert.equal(r.bytes, 1);
  });

  it('a file and a link with the same text do not give the same folder hash', async () => {
    const a = workspace({ 'd/x': 'link:t' });
    const b = workspace();
    fs.mkdirSync(path.join(b, 'd'));
    fs.symlinkSync('t', path.join(b, 'd/x'));
    assert.notEqual((await new ContentHasher({ root: a }).hashPath('d')).hash, (await new ContentHasher({ root: b }).hashPath('d')).hash);
  });
});

describe('ContentHasher: the stat cache', () => {
  it('does not read unchanged files again, in this process or after save() in a new one', async () => {
    const root = workspace({ 'd/a.txt': 'A', 'd/b.txt': 'B', 'c.txt': 'C' });
    const r1 = countingReader();
    const h1 = new ContentHasher({ root, readStream: r1.readStream });
    const first = await h1.hashPath('d');
    await h1.hashFile('c.txt');
    assert.equal(r1.reads.length, 3);
    assert.equal((await h1.hashPath('d')).hash, first.hash);
    assert.equal(r1.reads.length, 3, 'same process: no new reads');
    await h1.save();
    assert.ok(fs.existsSync(path.join(root, '.mlpipeline/cache/stat-cache.txt')));

    const r2 = countingReader();
    const h2 = new ContentHasher({ root, readStream: r2.readStream });
    assert.deepEqual(await h2.hashPath('d'), first);
    assert.equal(await h2.hashFile('c.txt'), sha('C'));
    assert.equal(r2.reads.length, 0, 'new hasher from the saved cache: no reads');
    assert.equal(h2.stats.cacheHits, 3);

    write(root, 'd/b.txt', 'BB');
    const r3 = countingReader();
    const h3 = new ContentHasher({ root, readStream: r3.readStream });
    assert.notEqual((await h3.hashPath('d')).hash, first.hash);
    assert.deepEqual(r3.reads, [path.join(root, 'd', 'b.txt')], 'only the changed file is read');
  });

  it('trusts size + mtime + inode (+ ctime): same-size bytes behind a restored mtime are only seen through ctime', async () => {
    const root = workspace({ 'a.txt': 'aaaa' });
    const abs = path.join(root, 'a.txt');
    const h1 = new ContentHasher({ root });
    assert.equal(await h1.hashFile('a.txt'), sha('aaaa'));
    await h1.save();
    const before = fs.statSync(abs);
    await sleep(30); // past any coarse timestamp tick, so the rewrite gets a new ctime

    fs.writeFileSync(abs, 'bbbb'); // same size, same inode (the file is truncated and rewritten in place)
    fs.utimesSync(abs, before.atime, before.mtime);
    const after = fs.statSync(abs);
    assert.equal(after.ino, before.ino);
    assert.equal(after.size, before.size);
    assert.equal(after.mtimeMs, before.mtimeMs);

    // With ctime ignored, the stat cache answers without reading: the stale hash proves it was not read.
    const blind = new ContentHasher({ root, trustCtime: false });
    assert.equal(await blind.hashFile('a.txt'), sha('aaaa'));
    assert.equal(blind.stats.filesRead, 0);
    // By default ctime (which no program can set back) gives the rewrite away.
    const h2 = new ContentHasher({ root });
    assert.equal(await h2.hashFile('a.txt'), sha('bbbb'));
    assert.equal(h2.stats.filesRead, 1);

    // A changed size is noticed even with ctime ignored.
    fs.writeFileSync(abs, 'ccccc');
    fs.utimesSync(abs, before.atime, before.mtime);
    assert.equal(await new ContentHasher({ root, trustCtime: false }).hashFile('a.txt'), sha('ccccc'));
  });

  it('never trusts a racy entry: a file modified no earlier than the hash was taken is read again', async () => {
    const root = workspace();
    const future = Date.now() / 1000 + 3600; // an mtime that is "now or later" for the whole test
    write(root, 'a.txt', 'A', future);
    const h1 = new ContentHasher({ root });
    assert.equal(await h1.hashFile('a.txt'), sha('A'));
    await h1.save();
    fs.writeFileSync(path.join(root, 'a.txt'), 'B'); // same size, then the same mtime again
    fs.utimesSync(path.join(root, 'a.txt'), future, future);
    const h2 = new ContentHasher({ root, trustCtime: false });
    assert.equal(await h2.hashFile('a.txt'), sha('B'));
    assert.equal(h2.stats.filesRead, 1);
    assert.equal(await h2.hashFile('a.txt'), sha('B'));
    assert.equal(h2.stats.filesRead, 2, 'still racy: read every time');
  });

  it('a file written just now is hashed correctly, and trusted from the next check at the latest', async () => {
    const root = workspace();
    fs.writeFileSync(path.join(root, 'fresh.txt'), 'new output');
    const h1 = new ContentHasher({ root });
    assert.equal(await h1.hashFile('fresh.txt'), sha('new output'));
    await h1.save();
    const h2 = new ContentHasher({ root });
    assert.equal(await h2.hashFile('fresh.txt'), sha('new output'));
    await h2.save();
    const h3 = new ContentHasher({ root });
    assert.equal(await h3.hashFile('fresh.txt'), sha('new output'));
    assert.equal(h3.stats.filesRead, 0);
  });

  it('ignores a corrupt, truncated or foreign cache file without throwing, and replaces it on save', async () => {
    const root = workspace({ 'd/a.txt': 'A', 'd/b.txt': 'B' });
    const cacheFile = path.join(root, '.mlpipeline/cache/stat-cache.txt');
    const h1 = new ContentHasher({ root });
    const good = await h1.hashPath('d');
    await h1.save();
    const valid = fs.readFileSync(cacheFile);

    const variants: Array<[string, string | Buffer]> = [
      ['garbage', Buffer.from([0xff, 0x00, 0x13, 0x37])],
      ['truncated', valid.subarray(0, Math.floor(valid.length / 2))],
      ['last byte cut', valid.subarray(0, valid.length - 1)],
      ['json', '{"v":1,"entries":{}}'],
      ['empty', ''],
      ['flipped hash digit', Buffer.from(valid.toString('utf8').replace(sha('A'), sha('A').replace(/^./, (c) => (c === '0' ? '1' : '0'))))],
    ];
    for (const [what, bytes] of variants) {
      fs.writeFileSync(cacheFile, bytes);
      const reader = countingReader();
      const h = new ContentHasher({ root, readStream: reader.readStream });
      assert.deepEqual(await h.hashPath('d'), good, what);
      assert.equal(reader.reads.length, 2, `${what}: everything is read again`);
      await h.save();
      const h2 = new ContentHasher({ root });
      await h2.hashPath('d');
      assert.equal(h2.stats.filesRead, 0, `${what}: the cache file was rewritten`);
    }
  });

  it('tolerates a cache folder that cannot be written (the hashes still come out)', async () => {
    const root = workspace({ 'a.txt': 'A' });
    write(root, 'blocker', 'a file where the cache folder should be');
    const h = new ContentHasher({ root, cacheFile: path.join(root, 'blocker', 'stat-cache.txt') });
    assert.equal(await h.hashFile('a.txt'), sha('A'));
    await assert.rejects(h.save());
  });

  it('save() is crash-safe (no temporary files left) and prunes entries of deleted files', async () => {
    const root = workspace({ 'd/a.txt': 'A', 'd/b.txt': 'B', 'top.txt': 'T', 'd/.git/config': 'x' });
    const cacheFile = path.join(root, '.mlpipeline/cache/stat-cache.txt');
    const h1 = new ContentHasher({ root });
    await h1.hashPath('d');
    await h1.hashFile('top.txt');
    await h1.hashFile('d/.git/config');
    await h1.save();
    const keys = (): string[] =>
      fs
        .readFileSync(cacheFile, 'utf8')
        .split('\n')
        .slice(1, -2)
        .map((l) => l.split('\t')[0])
        .sort();
    assert.deepEqual(keys(), ['d/.git/config', 'd/a.txt', 'd/b.txt', 'top.txt']);
    assert.deepEqual(fs.readdirSync(path.dirname(cacheFile)).filter((n) => n.includes('.tmp-')), []);

    // Deleted below a folder that is hashed again: pruned without a stat. Not hashed this time: pruned by a stat.
    fs.unlinkSync(path.join(root, 'd/b.txt'));
    fs.unlinkSync(path.join(root, 'top.txt'));
    const h2 = new ContentHasher({ root });
    await h2.hashPath('d');
    await h2.save();
    assert.deepEqual(keys(), ['d/.git/config', 'd/a.txt']);

    // A new process that hashes nothing still prunes what is gone.
    fs.unlinkSync(path.join(root, 'd/.git/config'));
    await new ContentHasher({ root }).save();
    assert.deepEqual(keys(), ['d/a.txt']);
  });

  it('does not rewrite the cache file when nothing changed', async () => {
    const root = workspace({ 'd/a.txt': 'A' });
    const cacheFile = path.join(root, '.mlpipeline/cache/stat-cache.txt');
    const h1 = new ContentHasher({ root });
    await h1.hashPath('d');
    await h1.save();
    const ino = fs.statSync(cacheFile).ino;
    const h2 = new ContentHasher({ root });
    await h2.hashPath('d');
    await h2.save();
    assert.equal(fs.statSync(cacheFile).ino, ino, 'no atomic replace happened');
  });

  it('gives the same answers when lstat is slow and the rest of a folder is stat\'ed in parallel', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) files[`d/p${i % 7}/f${i}.txt`] = `f${i}`;
    const root = workspace(files);
    const h1 = new ContentHasher({ root });
    const first = await h1.hashPath('d');
    await h1.save();
    fs.unlinkSync(path.join(root, 'd/p3/f3.txt'));
    write(root, 'd/p0/f7.txt', 'changed');
    const fast = await new ContentHasher({ root }).hashPath('d');
    const h2 = new ContentHasher({ root, slowStatMs: 0 }); // "slow" after the first 256 files
    const parallel = await h2.hashPath('d');
    assert.deepEqual(parallel, fast);
    assert.notEqual(parallel.hash, first.hash);
    assert.equal(parallel.files, 999);
    assert.equal(h2.stats.filesRead, 1);
    assert.equal(h2.stats.cacheHits, 998);
    await h2.save();
    await new ContentHasher({ root, slowStatMs: 0 }).save(); // the prune pass goes parallel too
  });

  it('answers concurrent calls for overlapping paths consistently, reading each file once', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 50; i++) files[`d/s/f${i}.txt`] = `f${i}`;
    const root = workspace(files);
    const reader = countingReader();
    const h = new ContentHasher({ root, readStream: reader.readStream });
    const [a, b, c] = await Promise.all([h.hashPath('d'), h.hashPath('d/s'), h.hashPath('d')]);
    assert.deepEqual(a, c);
    assert.equal(b.files, 50);
    assert.equal(reader.reads.length, 50);
  });
});
