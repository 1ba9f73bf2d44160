import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = resolve(__dirname, '../..');

/** Runs the in-editor mocha suite through the code-server harness and streams its output. */
function runSuite(extraArgs: string[]): Promise<number | null> {
  return new Promise((res) => {
    const logs = resolve(ROOT, '.test-output/e2e', extraArgs.includes('--untrusted') ? 'untrusted' : 'trusted');
    const child = spawn(process.execPath, [resolve(ROOT, 'test/e2e/run-extension-tests.mjs'), '--logs', logs, '--screenshots', logs, ...extraArgs], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => process.stdout.write(d));
    child.stderr.on('data', (d) => process.stderr.write(d));
    child.on('exit', (code) => res(code));
  });
}

// The extension in VS Code 1.100 (code-server): diagnostics through vscode.languages.getDiagnostics.
describe('extension in a real VS Code extension host (code-server 4.100.3)', { timeout: 600_000 }, () => {
  it('passes the in-editor suite in a trusted workspace', async () => {
    assert.equal(await runSuite([]), 0);
  });

  it('passes the same suite in Restricted Mode: editing help needs no trust', async () => {
    assert.equal(await runSuite(['--untrusted']), 0);
  });
});
