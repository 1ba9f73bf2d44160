import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';

const ROOT = resolve(__dirname, '../..');
const BIN = join(ROOT, 'bin/mlpipeline.js');
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function cli(cwd: string, ...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The shipped sample, copied so runs do not touch the repository. */
function sample(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mlp-sample-'));
  dirs.push(dir);
  cpSync(join(ROOT, 'samples/churn-local'), dir, { recursive: true, filter: (s) => !/[\\/](\.mlpipeline|models|metrics|features|mlpipeline\.lock)$/.test(s) });
  return dir;
}

describe('mlpipeline run: the sample pipeline end to end', () => {
  let dir: string;
  before(() => {
    dir = sample();
  });

  it('trains, evaluates and records the run', () => {
    const r = cli(dir, 'run');
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /train +\| epoch 20\/20/);
    assert.match(r.out, /Run \d{8}-\d{6}-[0-9a-f]{6} succeeded/);
    const runs = JSON.parse(cli(dir, 'runs', '--json').out) as { status: string; metrics: Record<string, number> }[];
    assert.equal(runs.length, 1);
    assert.ok(runs[0].metrics['evaluate.auc'] > 0.7, JSON.stringify(runs[0].metrics));
  });

  it('skips every step on a second run with nothing changed, and reruns from train when a param changes', () => {
    const again = cli(dir, 'run');
    assert.equal(again.code, 0);
    assert.equal((again.out.match(/cached \(inputs unchanged\)/g) ?? []).length, 3, again.out);
    const changed = cli(dir, 'run', '--set', 'params.epochs=5', '--label', 'short \x1b[2J<script>alert(1)</script>');
    assert.equal(changed.code, 0, changed.out + changed.err);
    assert.match(changed.out, /prepare +\| ↺ cached/);
    assert.match(changed.out, /train +\| epoch 5\/5/);
  });

  it('shows, compares, traces lineage and prints logs of recorded runs', () => {
    const runs = JSON.parse(cli(dir, 'runs', '--json').out) as { id: string; label?: string }[];
    assert.equal(runs.length, 3);
    assert.equal(runs[0].label, 'short \x1b[2J<script>alert(1)</script>', 'labels are stored verbatim');
    const listed = cli(dir, 'runs').out;
    assert.ok(!listed.includes('\x1b[2J'), 'control characters are escaped on the terminal');
    const show = cli(dir, 'show', runs[2].id.slice(0, 17));
    assert.equal(show.code, 0, show.err);
    assert.match(show.out, /evaluate +succeeded/);
    assert.match(show.out, /data\/churn.csv @[0-9a-f]{12}/);
    const cmp = cli(dir, 'compare', runs[0].id, runs[2].id, '--only-diff');
    assert.match(cmp.out, /params\.epochs +5 +20/);
    assert.doesNotMatch(cmp.out, /params\.lr/);
    const lineage = cli(dir, 'lineage', 'prepare.features');
    assert.match(lineage.out, /step:.*\/prepare +→ +output:prepare\.features@/);
    const logs = cli(dir, 'logs', runs[2].id, '--step', 'train');
    assert.match(logs.out, /epoch 20\/20 loss=/);
    assert.equal(cli(dir, 'show', 'nope').code, 2);
  });
});

describe('mlpipeline logs --follow', () => {
  it('streams a running step\'s log as it is written and stops when the run ends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mlp-follow-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'mlpipeline.yaml'), 'apiVersion: mlpipeline/v1\nname: f\nsteps:\n  tick:\n    command: for i in 1 2 3; do echo tick $i; sleep 0.7; done\n');
    const runner = spawn(process.execPath, [BIN, 'run'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
    const runnerExit = new Promise((r) => runner.on('exit', r));
    let id = '';
    for (let i = 0; i < 100 && !id; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const list = JSON.parse(cli(dir, 'runs', '--json').out || '[]') as { id: string }[];
      id = list[0]?.id ?? '';
    }
    const follower = spawn(process.execPath, [BIN, 'logs', id, '--follow'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
    const seen: { line: string; at: number }[] = [];
    follower.stdout.on('data', (d: Buffer) => String(d).split('\n').filter(Boolean).forEach((line) => seen.push({ line, at: Date.now() })));
    const code = await new Promise<number | null>((r) => follower.on('exit', r));
    await runnerExit;
    assert.equal(code, 0);
    assert.deepEqual(seen.map((s) => s.line), ['tick 1', 'tick 2', 'tick 3']);
    assert.ok(seen[2].at - seen[0].at > 800, 'lines arrived as they were written, not all at the end');
  });
});

describe('mlpipeline run: cancel and failures', () => {
  it('Ctrl+C stops the running step, records the run as cancelled and exits 130', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mlp-cancel-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'mlpipeline.yaml'), 'apiVersion: mlpipeline/v1\nname: c\nsteps:\n  long:\n    command: echo started && sleep 60\n');
    const child = spawn(process.execPath, [BIN, 'run'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    for (let i = 0; i < 200 && !out.includes('started'); i++) await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, 130);
    assert.ok(Date.now() - t0 < 7000);
    const runs = JSON.parse(cli(dir, 'runs', '--json').out) as { status: string }[];
    assert.equal(runs[0].status, 'cancelled');
  });

  it('refuses an invalid spec with its problems, and a bad --set with the reason', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mlp-bad-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'mlpipeline.yaml'), 'apiVersion: mlpipeline/v1\nname: b\nparams:\n  lr: {type: float, default: 0.1, max: 1}\nsteps:\n  a:\n    command: echo ${params.lr}\n    needs: [ghost]\n');
    const r = cli(dir, 'run');
    assert.equal(r.code, 1);
    assert.match(r.err, /MLP020 Undefined step `ghost`/);
    writeFileSync(join(dir, 'mlpipeline.yaml'), 'apiVersion: mlpipeline/v1\nname: b\nparams:\n  lr: {type: float, default: 0.1, max: 1}\nsteps:\n  a:\n    command: echo ${params.lr}\n');
    const bad = cli(dir, 'run', '--set', 'params.lr=5');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /--set params\.lr=5: above the maximum 1/);
    assert.equal(cli(dir, 'run', '--set', 'lr=5').code, 2);
  });
});

describe('mlpipeline sweep', () => {
  it('runs every trial as a recorded run, reports the best, and reuses unchanged trials', () => {
    const dir = sample();
    const r = cli(dir, 'sweep', 'lr-search', '--jobs', '2');
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /Best: trial \d \(run [0-9-a-f]+\) lr=[0-9.]+ → evaluate\.auc = 0\.[0-9]+/);
    const runs = JSON.parse(cli(dir, 'runs', '--json').out) as { sweep?: { name: string; trial: number } }[];
    assert.deepEqual(runs.map((x) => x.sweep?.trial).sort(), [1, 2, 3, 4, 5]);
    const t0 = Date.now();
    const again = cli(dir, 'sweep', 'lr-search');
    assert.equal(again.code, 0);
    assert.ok(Date.now() - t0 < 4000, `cached sweep took ${Date.now() - t0} ms`);
    assert.equal(cli(dir, 'sweep', 'nope').code, 2);
  });
});
