import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { planRun, type PlanOptions } from '../../server/src/core/plan';
import { analyzeSpec } from '../../server/src/core/validate';
import { runPlan, type EngineEvent, type RunOptions } from '../../client/src/runtime/engine';

const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A temp workspace with a spec and files; returns its folder. */
function workspace(spec: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'mlp-engine-'));
  made.push(dir);
  writeFileSync(join(dir, 'mlpipeline.yaml'), `apiVersion: mlpipeline/v1\nname: t\n${spec}`);
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), c);
  }
  return dir;
}

async function run(dir: string, plan: PlanOptions = {}, extra: Partial<RunOptions> = {}) {
  const specPath = join(dir, 'mlpipeline.yaml');
  const text = readFileSync(specPath, 'utf8');
  const analysis = analyzeSpec(text);
  const planned = planRun(analysis, plan);
  assert.ok(planned.ok, planned.ok ? '' : planned.errors.join('\n'));
  const events: EngineEvent[] = [];
  const result = await runPlan({ specPath, specText: text, plan: planned.plan, onEvent: (e) => events.push(e), ...extra });
  return { ...result, events, steps: result.record.steps };
}

function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (readFileSync(p).includes(needle)) hits.push(p);
    }
  };
  walk(dir);
  return hits;
}

const statuses = (r: { steps: Record<string, { status: string }> }): Record<string, string> => Object.fromEntries(Object.entries(r.steps).map(([k, v]) => [k, v.status]));

describe('local engine: order, parallelism, outputs', () => {
  it('runs steps in dependency order, passes resolved params and records outputs, metrics and lineage', async () => {
    const dir = workspace(
      `params:\n  n: {type: int, default: 3}\ndatasets:\n  raw: {uri: data/raw.txt}\nsteps:\n  prepare:\n    command: mkdir -p out && sort \${datasets.raw} > \${outputs.sorted}\n    outputs: {sorted: out/sorted.txt}\n  train:\n    command: >-\n      head -n \${params.n} \${steps.prepare.outputs.sorted} > \${outputs.model}\n      && echo '{"loss": 0.5, "nested": {"acc": 0.9}}' > m.json\n    outputs: {model: out/model.txt}\n    metrics: m.json\n`,
      { 'data/raw.txt': 'c\na\nd\nb\ne\n' },
    );
    const r = await run(dir);
    assert.equal(r.status, 'succeeded');
    assert.deepEqual(statuses(r), { prepare: 'succeeded', train: 'succeeded' });
    assert.equal(readFileSync(join(dir, 'out/model.txt'), 'utf8'), 'a\nb\nc\n');
    assert.deepEqual(r.steps.train.metrics, { loss: 0.5, 'nested.acc': 0.9 });
    assert.match(r.steps.train.outputs.model.hash!, /^[0-9a-f]{64}$/);
    assert.ok(Date.parse(r.steps.train.startedAt!) >= Date.parse(r.steps.prepare.finishedAt!));
    const lineage = r.record.lineage.map((e) => `${e.from.split('@')[0]} -> ${e.to.split('@')[0]}`);
    assert.ok(lineage.includes(`dataset:raw -> step:${r.runId}/prepare`), lineage.join('\n'));
    assert.ok(lineage.includes(`output:prepare.sorted -> step:${r.runId}/train`), lineage.join('\n'));
    assert.ok(lineage.includes(`step:${r.runId}/train -> output:train.model`), lineage.join('\n'));
    assert.ok(existsSync(join(dir, 'mlpipeline.lock')));
  });

  it('runs independent steps in parallel, bounded by --jobs', async () => {
    const steps = ['a', 'b', 'c'].map((n) => `  ${n}:\n    command: date +%s%N > ${n}.start && sleep 0.6 && date +%s%N > ${n}.end\n    cache: false\n`).join('');
    const dir = workspace(`steps:\n${steps}`);
    const t0 = Date.now();
    assert.equal((await run(dir, {}, { maxParallel: 3 })).status, 'succeeded');
    const parallelMs = Date.now() - t0;
    const starts = ['a', 'b', 'c'].map((n) => Number(readFileSync(join(dir, `${n}.start`), 'utf8')) / 1e6);
    const ends = ['a', 'b', 'c'].map((n) => Number(readFileSync(join(dir, `${n}.end`), 'utf8')) / 1e6);
    assert.ok(Math.max(...starts) < Math.min(...ends), 'all three overlapped');
    assert.ok(parallelMs < 1700, `took ${parallelMs} ms`);
    await run(dir, {}, { maxParallel: 1 });
    const s2 = ['a', 'b', 'c'].map((n) => Number(readFileSync(join(dir, `${n}.start`), 'utf8')) / 1e6);
    const e2 = ['a', 'b', 'c'].map((n) => Number(readFileSync(join(dir, `${n}.end`), 'utf8')) / 1e6);
    assert.ok(s2[1] >= e2[0] && s2[2] >= e2[1], 'one at a time with --jobs 1');
  });

  it('--step runs the step and what it depends on, nothing downstream', async () => {
    const dir = workspace(`steps:\n  a:\n    command: echo a > a.txt\n    outputs: {o: a.txt}\n  b:\n    command: cat \${steps.a.outputs.o} > b.txt\n  c:\n    needs: [b]\n    command: echo c > c.txt\n`);
    const r = await run(dir, { only: ['b'] });
    assert.deepEqual(Object.keys(r.steps), ['a', 'b']);
    assert.ok(!existsSync(join(dir, 'c.txt')));
  });

  it('quotes substituted values so a param cannot inject shell commands', async () => {
    const dir = workspace(`params:\n  msg: {type: string, default: hi}\nsteps:\n  a:\n    command: printf '%s' \${params.msg} > out.txt\n`);
    const r = await run(dir, { overrides: { 'params.msg': 'x; touch pwned $(touch pwned2)' } });
    assert.equal(r.status, 'succeeded');
    assert.equal(readFileSync(join(dir, 'out.txt'), 'utf8'), 'x; touch pwned $(touch pwned2)');
    assert.ok(!existsSync(join(dir, 'pwned')) && !existsSync(join(dir, 'pwned2')));
  });
});

describe('local engine: caching by content', () => {
  const spec = `params:\n  k: {type: int, default: 1}\nsteps:\n  prep:\n    command: cat in.txt > mid.txt && echo run >> prep.count\n    inputs: [in.txt]\n    outputs: {mid: mid.txt}\n  train:\n    command: cat \${steps.prep.outputs.mid} > out.txt && echo \${params.k} >> out.txt && echo run >> train.count\n    outputs: {out: out.txt}\n`;
  const count = (dir: string, f: string): number => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).length : 0);

  it('skips unchanged steps, reruns what an input change reaches, and --force reruns all', async () => {
    const dir = workspace(spec, { 'in.txt': 'v1\n' });
    assert.deepEqual(statuses(await run(dir)), { prep: 'succeeded', train: 'succeeded' });
    const second = await run(dir);
    assert.deepEqual(statuses(second), { prep: 'cached', train: 'cached' });
    assert.ok(second.steps.prep.cachedFrom);
    assert.equal(count(dir, 'prep.count'), 1);

    assert.deepEqual(statuses(await run(dir, { overrides: { 'params.k': '2' } })), { prep: 'cached', train: 'succeeded' });
    writeFileSync(join(dir, 'in.txt'), 'v2\n');
    assert.deepEqual(statuses(await run(dir, { overrides: { 'params.k': '2' } })), { prep: 'succeeded', train: 'succeeded' });
    assert.deepEqual(statuses(await run(dir, { overrides: { 'params.k': '2' } }, { force: true })), { prep: 'succeeded', train: 'succeeded' });
    assert.equal(count(dir, 'prep.count'), 3);
  });

  it('reruns a step whose output was deleted or edited', async () => {
    const dir = workspace(spec, { 'in.txt': 'v1\n' });
    await run(dir);
    rmSync(join(dir, 'out.txt'));
    assert.deepEqual(statuses(await run(dir)), { prep: 'cached', train: 'succeeded' });
    // prep reruns and restores the same content, so train's inputs are unchanged: content addressing.
    writeFileSync(join(dir, 'mid.txt'), 'tampered\n');
    assert.deepEqual(statuses(await run(dir)), { prep: 'succeeded', train: 'cached' });
    assert.equal(readFileSync(join(dir, 'mid.txt'), 'utf8'), 'v1\n');
  });

  it('never reports a cached step whose metrics file another run has since rewritten', async () => {
    const dir = workspace(`params:\n  k: {type: int, default: 1}\nsteps:\n  ev:\n    command: >-\n      echo "{\\"k\\": \${params.k}}" > m.json\n    metrics: m.json\n`);
    await run(dir);
    await run(dir, { overrides: { 'params.k': '2' } });
    const again = await run(dir);
    assert.equal(again.steps.ev.status, 'succeeded', 'm.json held k=2, so k=1 had to run again');
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'm.json'), 'utf8')), { k: 1 });
    assert.equal((await run(dir)).steps.ev.status, 'cached');
  });

  it('pins dataset and output hashes in mlpipeline.lock', async () => {
    const dir = workspace(`datasets:\n  d: {uri: d.csv}\nsteps:\n  a:\n    command: cp \${datasets.d} \${outputs.o}\n    outputs: {o: o.csv}\n`, { 'd.csv': 'x,y\n1,2\n' });
    await run(dir);
    const lock = readFileSync(join(dir, 'mlpipeline.lock'), 'utf8');
    const sha = execFileSync('sha256sum', [join(dir, 'd.csv')], { encoding: 'utf8' }).split(' ')[0];
    assert.ok(lock.includes(sha), lock);
  });
});

describe('local engine: failures are clear and never cached', () => {
  it('a missing output fails the step, names it, and is not cached', async () => {
    const dir = workspace(`steps:\n  a:\n    command: echo nothing\n    outputs: {model: model.pkl}\n  b:\n    needs: [a]\n    command: echo b\n`);
    const r = await run(dir);
    assert.equal(r.status, 'failed');
    assert.deepEqual(statuses(r), { a: 'failed', b: 'skipped' });
    assert.match(r.steps.a.error!, /did not write its output `model` at `model.pkl`/);
    assert.match(r.steps.b.error!, /step `a` it depends on did not succeed/);
    writeFileSync(join(dir, 'model.pkl'), 'x');
    assert.equal(statuses(await run(dir)).a, 'succeeded', 'the failure was not cached');
  });

  it('invalid metrics JSON fails with the parse error', async () => {
    const dir = workspace(`steps:\n  a:\n    command: >-\n      echo '{"auc": ' > m.json\n    metrics: m.json\n`);
    const r = await run(dir);
    assert.equal(r.steps.a.status, 'failed');
    assert.match(r.steps.a.error!, /metrics file `m.json` of step `a` is not valid JSON/);
    const dir2 = workspace(`steps:\n  a:\n    command: >-\n      echo '{"auc": "high"}' > m.json\n    metrics: m.json\n`);
    assert.match((await run(dir2)).steps.a.error!, /not a number at `auc`/);
  });

  it('a command that is not found says so', async () => {
    const dir = workspace(`steps:\n  a:\n    command: definitely-not-a-program --x\n`);
    const r = await run(dir);
    assert.equal(r.steps.a.exitCode, 127);
    assert.match(r.steps.a.error!, /command not found/);
  });

  it('a step killed from outside (SIGKILL, as the OOM killer does) is reported as such', async () => {
    const dir = workspace(`steps:\n  a:\n    command: kill -9 $$\n  b:\n    needs: [a]\n    command: echo b\n`);
    const r = await run(dir);
    assert.equal(r.steps.a.signal, 'SIGKILL');
    assert.match(r.steps.a.error!, /was killed \(SIGKILL\), most often by the kernel's out-of-memory killer/);
    assert.equal(r.steps.b.status, 'skipped');
  });

  it('a missing input file names the input and the step', async () => {
    const dir = workspace(`steps:\n  a:\n    command: echo a\n    inputs: [src/missing.py]\n`);
    const r = await run(dir);
    assert.match(r.steps.a.error!, /Input `src\/missing.py` of step `a` does not exist/);
  });

  it('retries on failure as configured and records the attempts', async () => {
    const dir = workspace(`steps:\n  flaky:\n    command: echo x >> tries && [ $(wc -l < tries) -ge 2 ]\n    retry: {max: 2, on: [failure]}\n    cache: false\n`);
    const r = await run(dir);
    assert.equal(r.steps.flaky.status, 'succeeded');
    assert.equal(r.steps.flaky.attempts, 2);
  });

  it('stops a step at its timeout, retries when asked, and says so', async () => {
    const dir = workspace(`steps:\n  slow:\n    command: sleep 20\n    timeout: 1s\n    retry: {max: 1, on: [timeout]}\n`);
    const t0 = Date.now();
    const r = await run(dir);
    assert.ok(Date.now() - t0 < 6000);
    assert.equal(r.steps.slow.status, 'failed');
    assert.equal(r.steps.slow.attempts, 2);
    assert.match(r.steps.slow.error!, /timed out after 1.0 s/);
  });
});

describe('local engine: cancel, GPUs, secrets, git', () => {
  it('cancel kills the whole process tree and records the run as cancelled', async () => {
    const dir = workspace(`steps:\n  long:\n    command: sh -c 'echo $$ > child.pid; sleep 30' & wait\n  after:\n    needs: [long]\n    command: echo never\n`);
    const ac = new AbortController();
    const p = run(dir, {}, { signal: ac.signal });
    for (let i = 0; i < 100 && !existsSync(join(dir, 'child.pid')); i++) await new Promise((r) => setTimeout(r, 50));
    const childPid = Number(readFileSync(join(dir, 'child.pid'), 'utf8'));
    ac.abort();
    const r = await p;
    assert.equal(r.status, 'cancelled');
    assert.deepEqual(statuses(r), { long: 'cancelled', after: 'cancelled' });
    await new Promise((res) => setTimeout(res, 200));
    // Gone, or a zombie waiting for a reaper (containers often run without an init that reaps).
    const state = existsSync(`/proc/${childPid}/stat`) ? readFileSync(`/proc/${childPid}/stat`, 'utf8').split(') ')[1]?.[0] : 'gone';
    assert.ok(state === 'gone' || state === 'Z', `the grandchild is still running (state ${state})`);
  });

  it('gives each GPU step its own devices and fails fast when too few exist', async () => {
    const dir = workspace(`steps:\n  a:\n    command: echo "$CUDA_VISIBLE_DEVICES" > a.gpu && sleep 0.3\n    resources: {gpu: 2}\n    cache: false\n  b:\n    command: echo "$CUDA_VISIBLE_DEVICES" > b.gpu && sleep 0.3\n    resources: {gpu: "A100:2"}\n    cache: false\n  c:\n    command: echo "[$CUDA_VISIBLE_DEVICES]" > c.gpu\n    cache: false\n`);
    const r = await run(dir, {}, { gpus: [0, 1, 2] });
    assert.equal(r.status, 'succeeded');
    const a = readFileSync(join(dir, 'a.gpu'), 'utf8').trim();
    const b = readFileSync(join(dir, 'b.gpu'), 'utf8').trim();
    assert.equal(a.split(',').length, 2);
    assert.equal(b.split(',').length, 2);
    assert.equal(readFileSync(join(dir, 'c.gpu'), 'utf8').trim(), '[]', 'a step without a GPU request sees none');
    const none = await run(dir, {}, { gpus: [] });
    assert.match(none.steps.a.error!, /asks for 2 GPUs, but this machine has 0/);
  });

  it('passes secrets through the environment only, and redacts them from logs and records', async () => {
    const dir = workspace(`secrets: [API_TOKEN]\nsteps:\n  a:\n    command: echo "token is $TOKEN" && test "$(printf %s "$TOKEN" | wc -c)" -eq 12\n    env: {TOKEN: "\${secrets.API_TOKEN}"}\n`);
    const r = await run(dir, {}, { secret: (n) => (n === 'API_TOKEN' ? 's3cr3t-value' : undefined) });
    assert.equal(r.status, 'succeeded');
    const output = r.events.filter((e) => e.type === 'step-output').map((e) => (e as { text: string }).text).join('');
    assert.match(output, /token is \*\*\*/);
    assert.deepEqual(filesContaining(join(dir, '.mlpipeline'), 's3cr3t-value'), [], 'no record, log or cache file holds the value');
    assert.ok(!readFileSync(join(dir, 'mlpipeline.lock'), 'utf8').includes('s3cr3t-value'));
    const missing = await run(dir, {}, { secret: () => undefined, force: true });
    assert.match(missing.steps.a.error!, /Secret `API_TOKEN` is not set/);
  });

  it('records the git commit and dirty state, and works outside git', async () => {
    const dir = workspace(`steps:\n  a:\n    command: echo a\n`);
    assert.equal((await run(dir)).record.git, null);
    const git = (...a: string[]) => execFileSync('git', ['-c', 'user.email=t@t', '-c', 'user.name=t', ...a], { cwd: dir, encoding: 'utf8' });
    git('init', '-q');
    git('add', 'mlpipeline.yaml');
    git('commit', '-qm', 'spec');
    const head = git('rev-parse', 'HEAD').trim();
    const r = await run(dir);
    assert.equal(r.record.git?.commit, head);
    assert.equal(r.record.git?.dirty, true, '.mlpipeline and the lock are untracked');
  });
});
