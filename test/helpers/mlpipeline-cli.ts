/** The built CLI (bin/mlpipeline.js) as the serving tests drive it, and the churn sample they deploy from. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
export const MLPIPELINE_BIN = join(ROOT, 'bin/mlpipeline.js');

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

/** Runs the CLI to completion (90 s at most) in `cwd` with `env`. */
export function runCli(cwd: string, args: string[], env: NodeJS.ProcessEnv): CliResult {
  const r = spawnSync(process.execPath, [MLPIPELINE_BIN, ...args], { cwd, encoding: 'utf8', env, timeout: 90_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Parses a command's JSON output; a failed command fails with what it printed. */
export function json<T = any>(r: CliResult): T {
  assert.equal(r.code, 0, `exit ${r.code}\n${r.out}\n${r.err}`);
  return JSON.parse(r.out.slice(r.out.search(/[[{]/))) as T;
}

/** A fresh temporary copy of samples/churn-local, without what runs and deploys leave behind. */
export function copyChurnSample(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cpSync(join(ROOT, 'samples/churn-local'), dir, { recursive: true, filter: (s) => !/[\\/](\.mlpipeline|models|metrics|features|mlpipeline\.lock)$/.test(s) });
  return dir;
}
