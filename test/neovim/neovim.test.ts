import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SERVER } from '../helpers/lsp-client';

/**
 * Neovim 0.7 (Debian's) as a second LSP client: `nvim --headless` with a plain Lua config
 * (vim.lsp.start_client) runs the bundled server over stdio. test/neovim/check.lua opens a spec with an
 * error, asks for diagnostics, completion, definition and hover, writes what it got as JSON and quits.
 * Install Neovim with test/infra/install-neovim.sh; build the server with `node esbuild.mjs`.
 */

const ROOT = resolve(__dirname, '../..');
const NVIM = process.env.MLP_NVIM ?? 'nvim';
const TIMEOUT_MS = 60_000;

const SPEC = `apiVersion: mlpipeline/v1
name: nvim-test
params:
  lr: {type: float, default: 0.01, description: Learning rate}
steps:
  prepare:
    command: python prep.py --out \${outputs.data}
    outputs: {data: data/}
  train:
    needs: [prepar]
    command: python train.py --data \${steps.prepare.outputs.data} --lr \${params.lr}
  evaluate:
    needs: [train]
    command: python eval.py
`;

interface NvimResult {
  nvim: string;
  error?: string;
  attached?: boolean;
  diagnostics?: { code: string; lnum: number; col: number; end_lnum: number; end_col: number; severity: number; message: string }[];
  completion?: string[];
  definition?: { line: number; col: number; text: string };
  hover?: string | null;
}

/** Runs nvim with the config and the check script; rejects if it does not exit within the limit. */
function runNvim(spec: string, out: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((res, rej) => {
    const proc = spawn(NVIM, ['--headless', '--clean', '-u', 'test/neovim/init.lua', '-c', 'luafile test/neovim/check.lua'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MLP_SPEC: spec, MLP_RESULT: out, MLP_SERVER: SERVER, MLP_NODE: process.execPath, MLP_TIMEOUT: '10000' },
    });
    let stderr = '';
    proc.stdout.on('data', (d) => (stderr += String(d)));
    proc.stderr.on('data', (d) => (stderr += String(d)));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      rej(new Error(`nvim did not finish within ${TIMEOUT_MS} ms; output: ${stderr}`));
    }, TIMEOUT_MS);
    proc.on('error', (e) => {
      clearTimeout(timer);
      rej(new Error(`cannot run ${NVIM} (${e.message}): install it with test/infra/install-neovim.sh`));
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, stderr });
    });
  });
}

describe('Neovim 0.7 headless as an LSP client', () => {
  let dir: string;
  let result: NvimResult;

  before(async () => {
    assert.ok(existsSync(SERVER), `${SERVER} is missing: run node esbuild.mjs`);
    dir = mkdtempSync(join(tmpdir(), 'mlp-nvim-'));
    const spec = join(dir, 'mlpipeline.yaml');
    writeFileSync(spec, SPEC);
    const out = join(dir, 'result.json');
    const run = await runNvim(spec, out);
    assert.ok(existsSync(out), `nvim wrote no result (exit ${run.code}): ${run.stderr}`);
    result = JSON.parse(readFileSync(out, 'utf8')) as NvimResult;
    assert.equal(result.error, undefined, `the check script failed: ${result.error}`);
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs Neovim 0.7 or newer, attached to the server', () => {
    const [major, minor] = result.nvim.split('.').map(Number);
    assert.ok(major > 0 || minor >= 7, `nvim ${result.nvim}`);
    assert.equal(result.attached, true);
  });

  it('vim.diagnostic.get has the MLP code at the exact range', () => {
    const line = SPEC.split('\n').findIndex((l) => l.includes('needs: [prepar]'));
    const col = SPEC.split('\n')[line].indexOf('prepar');
    assert.deepEqual(
      result.diagnostics!.map((d) => [d.code, d.lnum, d.col, d.end_lnum, d.end_col, d.severity]),
      [['MLP020', line, col, line, col + 'prepar'.length, 1]],
    );
    assert.match(result.diagnostics![0].message, /Did you mean `prepare`\?/);
  });

  it('textDocument/completion in `needs: [` offers the other steps', () => {
    assert.deepEqual(result.completion, ['prepare', 'evaluate']);
  });

  it('textDocument/definition jumps to the step', () => {
    const line = SPEC.split('\n').indexOf('  prepare:');
    assert.deepEqual(result.definition, { line, col: 2, text: '  prepare:' });
  });

  it('textDocument/hover shows the param', () => {
    assert.match(String(result.hover), /\*\*param\*\* `lr` · `float`/);
  });
});
