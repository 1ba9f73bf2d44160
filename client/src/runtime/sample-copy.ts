import { copyFile, mkdir, readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Copies the bundled sample pipeline (samples/churn-local) into a user's folder for the Getting Started
 * walkthrough. Never overwrites: when the folder already has a spec or any of the sample's files, the
 * sample goes into a fresh sub-folder instead, so nothing of the user's is lost.
 */

/** The sample's source files: what git tracks, not the outputs a run in place leaves behind. */
export const SAMPLE_FILES = ['mlpipeline.yaml', 'README.md', 'src', 'data/churn.csv', 'tools'];

export interface SampleCopy {
  /** Where the sample was written (the chosen folder, or a new sub-folder of it). */
  folder: string;
  /** Files written, relative to `folder`. */
  files: string[];
}

export async function copySample(sampleDir: string, target: string): Promise<SampleCopy> {
  const sources: string[] = [];
  for (const entry of SAMPLE_FILES) await collect(join(sampleDir, entry), sources);
  if (!sources.some((s) => s.endsWith('mlpipeline.yaml'))) throw new Error(`The sample pipeline is missing from ${sampleDir}; reinstall the extension.`);
  const rel = sources.map((s) => relative(sampleDir, s));
  const folder = freeFolder(target, rel);
  for (const r of rel) {
    const to = join(folder, r);
    await mkdir(join(to, '..'), { recursive: true });
    await copyFile(join(sampleDir, r), to);
  }
  return { folder, files: rel };
}

async function collect(path: string, out: string[]): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return;
  if (st.isFile()) out.push(path);
  else if (st.isDirectory()) {
    for (const e of (await readdir(path)).sort()) if (e !== '__pycache__' && !e.startsWith('.')) await collect(join(path, e), out);
  }
}

/** `target` itself when none of the files exist there, else the first free `churn-sample[-N]` inside it. */
function freeFolder(target: string, rel: string[]): string {
  const clashes = (dir: string): boolean => rel.some((r) => existsSync(join(dir, r))) || existsSync(join(dir, 'mlpipeline.yml'));
  if (!clashes(target)) return target;
  for (let n = 1; ; n++) {
    const dir = join(target, n === 1 ? 'churn-sample' : `churn-sample-${n}`);
    if (!existsSync(dir)) return dir;
  }
}
