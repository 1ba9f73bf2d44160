/**
 * The local artifact store: the same contract and layout as the S3 one, on a folder. Content-addressed by
 * the engine's hashes, verified on the way in and out, the manifest written last.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ChecksumMismatchError, createArtifactStore, LocalArtifactStore, S3ArtifactStore } from '../../client/src/runtime/artifacts';
import { ContentHasher } from '../../client/src/runtime/hashing';

const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function ws(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mlp-art-local-'));
  made.push(dir);
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), c);
  }
  return dir;
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('local artifact store', () => {
  it('stores a file under <root>/<step>/<output>/<hash>/<name> with a manifest, once', async () => {
    const dir = ws({ 'models/model.pkl': 'weights' });
    const store = new LocalArtifactStore('.mlpipeline/artifacts', dir);
    const id = { step: 'train', output: 'model', hash: sha('weights') };
    const r = await store.put(join(dir, 'models/model.pkl'), id);
    assert.equal(r.uploaded, true);
    assert.equal(r.uri, join(dir, '.mlpipeline/artifacts/train/model', id.hash, 'model.pkl'));
    assert.equal(readFileSync(r.uri, 'utf8'), 'weights');
    const manifest = JSON.parse(readFileSync(r.manifestUri, 'utf8'));
    assert.deepEqual(manifest.files, [{ path: 'model.pkl', sha256: id.hash, bytes: 7 }]);
    assert.equal((await store.put(join(dir, 'models/model.pkl'), id)).uploaded, false);
    assert.equal(await store.verify(id), true);
  });

  it('stores a folder under the engine\'s folder hash, skipping what the hasher skips', async () => {
    const dir = ws({ 'out/f/a.txt': 'a', 'out/f/sub/b.txt': 'b', 'out/f/__pycache__/x.pyc': 'junk' });
    const hash = (await new ContentHasher({ root: dir }).hashPath('out/f')).hash;
    const store = new LocalArtifactStore(join(dir, 'store'));
    const r = await store.put(join(dir, 'out/f'), { step: 'prep', output: 'features', hash });
    assert.equal(r.kind, 'dir');
    assert.equal(r.files, 2);
    assert.deepEqual(readdirSync(join(dir, 'store/prep/features', hash), { recursive: true }).map(String).sort(), ['a.txt', 'sub', 'sub/b.txt']);
    const back = join(dir, 'restored');
    await store.fetch({ step: 'prep', output: 'features', hash }, back);
    assert.equal(readFileSync(join(back, 'sub/b.txt'), 'utf8'), 'b');
  });

  it('refuses bytes that do not hash to the id, leaving nothing behind', async () => {
    const dir = ws({ 'm.bin': 'changed after hashing' });
    const store = new LocalArtifactStore(join(dir, 'store'));
    const id = { step: 's', output: 'o', hash: sha('original') };
    await assert.rejects(store.put(join(dir, 'm.bin'), id), ChecksumMismatchError);
    assert.equal(existsSync(join(dir, 'store/s/o', id.hash)), false);
    assert.equal(existsSync(join(dir, 'store/s/o', `${id.hash}.manifest.json`)), false);
    assert.deepEqual(readdirSync(join(dir, 'store/s/o')), [], 'no staging folder left');
  });

  it('a tampered stored file fails verify and fetch; put repairs it', async () => {
    const dir = ws({ 'm.bin': 'good' });
    const store = new LocalArtifactStore(join(dir, 'store'));
    const id = { step: 's', output: 'o', hash: sha('good') };
    const r = await store.put(join(dir, 'm.bin'), id);
    writeFileSync(r.uri, 'evil');
    assert.equal(await store.verify(id), false);
    await assert.rejects(store.fetch(id, join(dir, 'back.bin')), ChecksumMismatchError);
    assert.equal(existsSync(join(dir, 'back.bin')), false);
    assert.equal((await store.put(join(dir, 'm.bin'), id)).uploaded, true);
    assert.equal(await store.verify(id), true);
  });

  it('refuses symbolic links and unsafe names', async () => {
    const dir = ws({ 'out/a.txt': 'a' });
    symlinkSync('a.txt', join(dir, 'out/link'));
    const store = new LocalArtifactStore(join(dir, 'store'));
    await assert.rejects(store.put(join(dir, 'out'), { step: 's', output: 'o', hash: sha('x') }), /symbolic link \(link\)/);
    await assert.rejects(store.put(join(dir, 'out/a.txt'), { step: '../evil', output: 'o', hash: sha('a') }), /step name/);
    await assert.rejects(store.put(join(dir, 'out/a.txt'), { step: 's', output: 'o', hash: 'not-a-hash' }), /Not a content hash/);
    assert.equal(await store.verify({ step: 's', output: 'o', hash: sha('never stored') }), false);
  });

  it('createArtifactStore picks S3 for s3:// and a folder otherwise', () => {
    assert.ok(createArtifactStore('s3://acme-ml/a/', '/ws') instanceof S3ArtifactStore);
    const local = createArtifactStore('.mlpipeline/artifacts', '/ws');
    assert.ok(local instanceof LocalArtifactStore);
    assert.equal(local.locate({ step: 's', output: 'o', hash: sha('') }, 'dir').uri, `/ws/.mlpipeline/artifacts/s/o/${sha('')}/`);
  });
});
