import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';

const BIN = resolve(__dirname, '../../bin/mlpipeline.js');

/** A 256 KiB tmpfs: a real full disk. Mounting needs root (CI runs as root); elsewhere the test says why it skips. */
function smallDisk(): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'mlp-full-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
  return r.status === 0 ? dir : undefined;
}

describe('a full disk', () => {
  const dir = smallDisk();
  after(() => {
    if (dir) spawnSync('umount', [dir]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // Skipped only where tmpfs cannot be mounted (not root): the reason is printed.
  it('fails the run with an error that says the disk is full, and keeps the store readable', { skip: dir ? false : 'mounting a tmpfs needs root' }, () => {
    writeFileSync(join(dir!, 'mlpipeline.yaml'), 'apiVersion: mlpipeline/v1\nname: full\nsteps:\n  fill:\n    command: head -c 400000 /dev/zero > big.bin\n    outputs: {big: big.bin}\n  after:\n    needs: [fill]\n    command: echo never\n');
    const r = spawnSync(process.execPath, [BIN, 'run'], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /disk is full|No space left on device/);
    assert.doesNotMatch(r.stdout + r.stderr, /Internal error|at .*\.js:\d+/);
    const runs = spawnSync(process.execPath, [BIN, 'runs', '--json'], { cwd: dir, encoding: 'utf8' });
    assert.equal(runs.status, 0, runs.stderr);
    const list = JSON.parse(runs.stdout) as { status: string }[];
    assert.equal(list.length, 1);
    assert.equal(list[0].status, 'failed');
  });
});
