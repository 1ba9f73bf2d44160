import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { analyzeSpec } from '../../server/src/core/validate';

const ROOT = resolve(__dirname, '../..');
const BIN = join(ROOT, 'bin/mlpipeline.js');

function cli(args: string[], cwd = ROOT): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function workspace(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mlp-cli-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

const GOOD = 'apiVersion: mlpipeline/v1\nname: good\nsteps:\n  a:\n    command: echo hi\n';
const BAD = 'apiVersion: mlpipeline/v1\nname: bad\nsteps:\n  a:\n    command: echo hi\n    needs: [nope]\n';
const WARN = 'apiVersion: mlpipeline/v1\nname: warn\nsecrets: [T]\nsteps:\n  a:\n    command: login ${secrets.T}\n';

describe('mlpipeline validate', () => {
  it('validates the shipped samples clean (exit 0)', () => {
    const r = cli(['validate', 'samples/churn-local/mlpipeline.yaml', 'samples/gpu-k8s-s3/mlpipeline.yaml', 'samples/sweep-deploy/mlpipeline.yaml']);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /3 files checked: 0 errors, 0 warnings, 0 hints\./);
  });

  it('exits 1 on errors and prints file:line:col with the code', () => {
    const dir = workspace({ 'mlpipeline.yaml': BAD });
    const r = cli(['validate', 'mlpipeline.yaml'], dir);
    assert.equal(r.code, 1);
    assert.match(r.out, /^mlpipeline\.yaml:6:13: error MLP020 Undefined step `nope` in `needs`\./m);
  });

  it('exits 0 when there are only warnings', () => {
    const dir = workspace({ 'mlpipeline.yaml': WARN });
    const r = cli(['validate'], dir);
    assert.equal(r.code, 0);
    assert.match(r.out, /warning MLP033/);
  });

  it('finds mlpipeline.yaml and *.mlpipeline.yaml below the folder, skipping node_modules', () => {
    const dir = workspace({ 'a/mlpipeline.yaml': GOOD, 'b/x.mlpipeline.yml': BAD, 'node_modules/p/mlpipeline.yaml': BAD, 'c/other.yaml': BAD });
    const r = cli(['validate', '--format', 'json'], dir);
    assert.equal(r.code, 1);
    const json = JSON.parse(r.out) as { files: { file: string }[] };
    assert.deepEqual(json.files.map((f) => f.file), ['a/mlpipeline.yaml', 'b/x.mlpipeline.yml']);
  });

  it('--format json carries the same codes and zero-based ranges as the editor', () => {
    const dir = workspace({ 'mlpipeline.yaml': BAD });
    const r = cli(['validate', '--format=json', 'mlpipeline.yaml'], dir);
    const json = JSON.parse(r.out) as { files: { problems: unknown[] }[]; summary: { errors: number } };
    assert.deepEqual(json.files[0].problems, JSON.parse(JSON.stringify(analyzeSpec(BAD).problems)));
    assert.equal(json.summary.errors, 1);
  });

  it('--format sarif writes SARIF 2.1.0 with rules and 1-based regions', () => {
    const dir = workspace({ 'mlpipeline.yaml': BAD });
    const r = cli(['validate', '--format', 'sarif'], dir);
    assert.equal(r.code, 1);
    const sarif = JSON.parse(r.out);
    assert.equal(sarif.version, '2.1.0');
    const run = sarif.runs[0];
    assert.equal(run.tool.driver.name, 'mlpipeline');
    const result = run.results[0];
    assert.equal(result.ruleId, 'MLP020');
    assert.equal(run.tool.driver.rules[result.ruleIndex].id, 'MLP020');
    assert.equal(result.level, 'error');
    assert.deepEqual(result.locations[0].physicalLocation.region, { startLine: 6, startColumn: 13, endLine: 6, endColumn: 17 });
    assert.equal(result.locations[0].physicalLocation.artifactLocation.uri, 'mlpipeline.yaml');
  });

  it('reports invalid UTF-8 and binary files as problems, not crashes', () => {
    const dir = workspace({ 'mlpipeline.yaml': Buffer.concat([Buffer.from('apiVersion: mlpipeline/v1\nname: x\ndescription: caf'), Buffer.from([0xe9]), Buffer.from('\nsteps:\n  a: {command: x}\n')]), 'z.mlpipeline.yaml': Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 0x80]) });
    const r = cli(['validate', '--format', 'json'], dir);
    assert.equal(r.code, 1);
    const json = JSON.parse(r.out) as { files: { file: string; problems: { code: string }[] }[] };
    assert.deepEqual(json.files[0].problems.map((p) => p.code), ['MLP005']);
    assert.ok(json.files[1].problems.length > 0);
    assert.equal(r.err, '');
  });

  it('exits 2 with a clear message for unreadable files, unknown options and no specs', () => {
    const dir = workspace({});
    let r = cli(['validate', 'missing.yaml'], dir);
    assert.equal(r.code, 2);
    assert.match(r.err, /cannot read missing\.yaml: ENOENT/);
    r = cli(['validate', '--fromat', 'json'], dir);
    assert.equal(r.code, 2);
    assert.match(r.err, /Unknown option `--fromat`/);
    r = cli(['validate', '--format', 'xml'], dir);
    assert.equal(r.code, 2);
    r = cli(['validate'], dir);
    assert.equal(r.code, 2);
    assert.match(r.err, /no mlpipeline\.yaml/);
    r = cli(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.err, /Unknown command `frobnicate`/);
  });

  it('--no-hints leaves hints out', () => {
    const dir = workspace({ 'mlpipeline.yaml': 'apiVersion: mlpipeline/v1\nname: h\nparams:\n  idle: {type: int, default: 1}\nsteps:\n  a: {command: x}\n' });
    assert.match(cli(['validate'], dir).out, /hint MLP060/);
    assert.doesNotMatch(cli(['validate', '--no-hints'], dir).out, /MLP060/);
  });
});

describe('mlpipeline plan', () => {
  it("puts the S3 contract env a run would give each Job's pod, with run-time values as placeholders", () => {
    const r = cli(['plan', 'samples/gpu-k8s-s3/mlpipeline.yaml', '--target', 'a100-pool', '--format', 'json']);
    assert.equal(r.code, 0, r.err);
    const job = (JSON.parse(r.out) as { items: { kind: string; metadata: { annotations: Record<string, string> }; spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } } }[] }).items.find((m) => m.kind === 'Job' && m.metadata.annotations['mlpipeline.dev/step'] === 'finetune');
    assert.ok(job, r.out.slice(0, 500));
    const env: Record<string, string> = Object.fromEntries(job.spec.template.spec.containers[0].env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
    assert.equal(env.MLP_ARTIFACTS, 's3://acme-ml/artifacts/ticket-classifier/');
    assert.equal(env.MLP_OUTPUT_CHECKPOINT_URI, 's3://acme-ml/artifacts/ticket-classifier/finetune/checkpoint/runs/plan/');
    assert.equal(JSON.parse(env.MLP_OUTPUTS)['models/checkpoint/'], env.MLP_OUTPUT_CHECKPOINT_URI);
    assert.match(env.MLP_INPUT_TOKENIZE_TOKENS_URI, /known once it has run/);
    // The secret stays a reference to a Kubernetes Secret.
    assert.ok(!JSON.stringify(job).includes('"HF_TOKEN","value"'));
  });
});
