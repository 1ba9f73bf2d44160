/**
 * The artifact store in a local folder (the default `.mlpipeline/artifacts`, or `storage.artifacts` set to
 * a path). Same layout and guarantees as the S3 store: files are copied into a temporary folder while
 * their sha256 is computed, the folder is renamed into place only when the content hash matched, and the
 * manifest is written last (atomically).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { writeFileAtomic } from '../atomic-file';
import { contentHashOf, listOutputFiles, sha256OfFile } from './local-files';
import { assertHash, assertSegment, ChecksumMismatchError, type ArtifactFile, type ArtifactId, type ArtifactManifest, type ArtifactStore, type StoredArtifact } from './types';

export class LocalArtifactStore implements ArtifactStore {
  readonly kind = 'local' as const;
  private readonly dir: string;

  /** `root`: absolute, or relative to `workspace`. */
  constructor(readonly root: string, workspace = process.cwd()) {
    this.dir = resolve(workspace, root);
  }

  locate(id: ArtifactId, kind: 'file' | 'dir', fileName?: string): { uri: string; manifestUri: string } {
    const base = this.base(id);
    return { uri: kind === 'file' ? join(base, fileName ?? '') : `${base}/`, manifestUri: `${base}.manifest.json` };
  }

  async put(localPath: string, id: ArtifactId): Promise<StoredArtifact> {
    const existing = await this.readManifest(id);
    if (existing && (await this.check(id, existing))) return this.stored(id, existing, false);
    const { kind, files } = await listOutputFiles(localPath, `${id.step}.${id.output}`);
    const base = this.base(id);
    const staging = `${base}.tmp-${randomBytes(4).toString('hex')}`;
    const out: ArtifactFile[] = [];
    try {
      for (const f of files) {
        const dest = join(staging, f.rel);
        await fsp.mkdir(dirname(dest), { recursive: true });
        out.push({ path: f.rel, ...(await copyHashing(f.abs, dest)) });
      }
      const got = contentHashOf(kind, out);
      if (got !== id.hash) throw new ChecksumMismatchError(localPath, `its content hashes to ${got} now, but ${id.hash} when the step finished (did something change it?).`);
      await fsp.rm(base, { recursive: true, force: true });
      await fsp.rename(staging, base);
    } catch (e) {
      await fsp.rm(staging, { recursive: true, force: true });
      throw e;
    }
    const manifest: ArtifactManifest = { mlpipelineArtifact: 1, kind, step: id.step, output: id.output, hash: id.hash, files: out, bytes: out.reduce((n, f) => n + f.bytes, 0), createdAt: new Date().toISOString() };
    await writeFileAtomic(`${base}.manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`);
    return this.stored(id, manifest, true);
  }

  async verify(id: ArtifactId): Promise<boolean> {
    const m = await this.readManifest(id);
    return !!m && (await this.check(id, m));
  }

  async fetch(id: ArtifactId, dest: string): Promise<StoredArtifact> {
    const m = await this.readManifest(id);
    if (!m) throw new Error(`Artifact ${id.step}.${id.output}@${id.hash} is not in ${this.root}.`);
    const base = this.base(id);
    for (const f of m.files) {
      const target = m.kind === 'file' ? dest : join(dest, f.path);
      await fsp.mkdir(dirname(target), { recursive: true });
      const tmp = `${target}.tmp-${randomBytes(4).toString('hex')}`;
      const got = await copyHashing(join(base, f.path), tmp);
      if (got.sha256 !== f.sha256) {
        await fsp.rm(tmp, { force: true });
        throw new ChecksumMismatchError(join(base, f.path), `sha256 ${got.sha256}, expected ${f.sha256}.`);
      }
      await fsp.rename(tmp, target);
    }
    return this.stored(id, m, false);
  }

  private base(id: ArtifactId): string {
    assertSegment('step', id.step);
    assertSegment('output', id.output);
    assertHash(id.hash);
    return join(this.dir, id.step, id.output, id.hash);
  }

  private stored(id: ArtifactId, m: ArtifactManifest, uploaded: boolean): StoredArtifact {
    return { ...this.locate(id, m.kind, m.files[0]?.path), hash: id.hash, kind: m.kind, files: m.files.length, bytes: m.bytes, uploaded };
  }

  private async readManifest(id: ArtifactId): Promise<ArtifactManifest | undefined> {
    try {
      const m = JSON.parse(await fsp.readFile(`${this.base(id)}.manifest.json`, 'utf8')) as ArtifactManifest;
      return m?.mlpipelineArtifact === 1 && m.hash === id.hash && Array.isArray(m.files) ? m : undefined;
    } catch {
      return undefined; // missing or torn: not complete
    }
  }

  /** Every file present with its recorded size and sha256 (local reads are cheap enough to rehash). */
  private async check(id: ArtifactId, m: ArtifactManifest): Promise<boolean> {
    const base = this.base(id);
    for (const f of m.files) {
      const got = await copyHashing(join(base, f.path)).catch(() => undefined);
      if (!got || got.sha256 !== f.sha256 || got.bytes !== f.bytes) return false;
    }
    return contentHashOf(m.kind, m.files) === id.hash;
  }
}

/** Streams `src` (to `dest` when given), returning its sha256 and size. */
async function copyHashing(src: string, dest?: string): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      bytes += chunk.length;
      cb(null, dest ? chunk : undefined);
    },
  });
  if (!dest) return sha256OfFile(src);
  await pipeline(createReadStream(src), tap, createWriteStream(dest, { flags: 'wx' }));
  return { sha256: h.digest('hex'), bytes };
}
