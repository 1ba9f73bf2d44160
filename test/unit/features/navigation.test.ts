import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import type { TextEdit, WorkspaceEdit } from 'vscode-languageserver';
import { definition, prepareRename, references, rename } from '../../../server/src/service/navigation';
import { analyzeSpec } from '../../../server/src/core/validate';
import { applyEdits, cursor } from '../../helpers/cursor';
import { markAt as at, textAt } from '../../helpers/spec';

const URI = 'file:///ws/mlpipeline.yaml';
const CHURN = readFileSync('samples/churn-local/mlpipeline.yaml', 'utf8');
const SWEEP = readFileSync('samples/sweep-deploy/mlpipeline.yaml', 'utf8');
const K8S = readFileSync('samples/gpu-k8s-s3/mlpipeline.yaml', 'utf8');


/** The line and the text of each location, e.g. `12:prepare`. */
function places(text: string, locs: { range: { start: { line: number } } & Parameters<typeof textAt>[1] }[]): string[] {
  return locs.map((l) => `${l.range.start.line + 1}:${textAt(text, l.range)}`);
}

function renamed(marked: string, newName: string): string {
  const c = cursor(marked);
  const r = rename(c.analysis, URI, c.position, newName) as WorkspaceEdit;
  assert.ok(r && !('error' in r), JSON.stringify(r));
  return applyEdits(c.text, r.changes![URI] as TextEdit[]);
}

function renameError(marked: string, newName: string): string {
  const c = cursor(marked);
  const r = rename(c.analysis, URI, c.position, newName);
  assert.ok(r && 'error' in r, `expected an error, got ${JSON.stringify(r)}`);
  return (r as { error: string }).error;
}

describe('go to definition', () => {
  const def = (marked: string): string[] => {
    const c = cursor(marked);
    return places(c.text, definition(c.analysis, URI, c.position));
  };

  it('from needs, ${...} parts, compute, sweeps, monitors, gates, to the name where it is defined', () => {
    assert.deepEqual(def(at(CHURN, 'needs: [prepare]', 10)), ['22:prepare']);
    assert.deepEqual(def(at(CHURN, '${params.epochs}', 11)), ['9:epochs']);
    assert.deepEqual(def(at(CHURN, '${datasets.raw}', 12)), ['13:raw']);
    assert.deepEqual(def(at(CHURN, '${steps.prepare.outputs.features}', 10)), ['22:prepare']);
    assert.deepEqual(def(at(CHURN, '${steps.prepare.outputs.features}', 26)), ['27:features']);
    assert.deepEqual(def(at(CHURN, '--out ${outputs.features}', 17)), ['27:features']);
    assert.deepEqual(def(at(CHURN, 'compute: local\n', 10)), ['19:local']);
    assert.deepEqual(def(at(CHURN, 'step: train', 7)), ['29:train']);
    assert.deepEqual(def(at(CHURN, 'metric: evaluate.auc', 9)), ['42:evaluate']);
    assert.deepEqual(def(at(CHURN, 'gate: evaluate.auc', 7)), ['42:evaluate']);
    assert.deepEqual(def(at(CHURN, 'deployment: churn-api', 13)), ['62:churn-api']);
    assert.deepEqual(def(at(CHURN, 'when: [monitors.churn-api-latency]', 17)), ['74:churn-api-latency']);
    assert.deepEqual(def(at(K8S, '"${secrets.HF_TOKEN}"', 12)), ['66:HF_TOKEN']);
  });

  it('on a sweep parameter key: the param; nothing on plain text or undefined names', () => {
    assert.deepEqual(def(at(SWEEP, '      max_depth: [4', 8)), ['11:max_depth']);
    assert.deepEqual(def(at(CHURN, 'python3 src/prepare.py', 3)), []);
    assert.deepEqual(def('apiVersion: mlpipeline/v1\nname: t\nsteps:\n  a: {command: x, needs: [gh|ost]}\n'), []);
  });
});

describe('find references', () => {
  const refs = (marked: string, decl = true): string[] => {
    const c = cursor(marked);
    return places(c.text, references(c.analysis, URI, c.position, decl));
  };

  it('a step: definition, needs, ${steps...}, sweep step and metric uses', () => {
    assert.deepEqual(refs(at(CHURN, '  train:\n', 3)), ['29:train', '44:train', '46:train', '54:train', '64:train']);
    assert.deepEqual(refs(at(CHURN, '  evaluate:\n', 3), false), ['58:evaluate', '65:evaluate']);
  });

  it('a param from its use; an output (own `${outputs.x}` and others\' `${steps.x.outputs.x}`)', () => {
    assert.deepEqual(refs(at(CHURN, '${params.lr}', 10)), ['8:lr', '34:lr', '57:lr']);
    assert.deepEqual(refs(at(CHURN, '      features: data', 7)), ['24:features', '27:features', '33:features', '47:features']);
  });

  it('a monitor and a deployment', () => {
    assert.deepEqual(refs(at(SWEEP, '  fraud-api-slo:', 3)), ['117:fraud-api-slo', '120:fraud-api-slo', '137:fraud-api-slo']);
    assert.deepEqual(refs(at(SWEEP, '  fraud-api:\n', 3)), ['97:fraud-api', '122:fraud-api', '127:fraud-api']);
  });
});

describe('rename', () => {
  it('a step: the definition and every use, in needs, ${...}, sweeps and metric strings', () => {
    const out = renamed(at(CHURN, '  train:\n', 3), 'fit');
    const expected = CHURN.replace('  train:\n', '  fit:\n')
      .replace('needs: [train]', 'needs: [fit]')
      .replaceAll('${steps.train.outputs.model}', '${steps.fit.outputs.model}')
      .replace('step: train', 'step: fit');
    assert.equal(out, expected);
    assert.deepEqual(analyzeSpec(out).problems, []);
  });

  it('from a use inside ${...}: a param, a dataset; an output renames `${outputs.x}` too', () => {
    assert.equal(renamed(at(CHURN, '${params.l2}', 10), 'weight_decay'), CHURN.replace('  l2:     {', '  weight_decay:     {').replace('${params.l2}', '${params.weight_decay}'));
    assert.equal(renamed(at(CHURN, '${datasets.raw}', 12), 'customers'), CHURN.replace('  raw:\n', '  customers:\n').replace('${datasets.raw}', '${datasets.customers}'));
    const out = renamed(at(CHURN, '${outputs.model}', 12), 'weights');
    assert.equal(out, CHURN.replace('--model ${outputs.model}', '--model ${outputs.weights}').replace('      model: models/model.json', '      weights: models/model.json').replaceAll('${steps.train.outputs.model}', '${steps.train.outputs.weights}'));
    assert.deepEqual(analyzeSpec(out).problems, []);
  });

  it('monitors, deployments, compute targets and secrets', () => {
    const m = renamed(at(SWEEP, 'rollbackOn: [monitors.fraud-api-slo]', 23), 'latency');
    assert.equal(m.split('monitors.latency').length - 1, 2);
    assert.match(m, /\n {2}latency:\n/);
    assert.deepEqual(analyzeSpec(m).problems, []);
    const d = renamed(at(SWEEP, '  fraud-api:\n', 3), 'scores-api');
    assert.equal(d.split('deployment: scores-api').length - 1, 2);
    const c = renamed(at(K8S, 'compute: cpu-pool', 11), 'cpu');
    assert.match(c, /\n {2}cpu:\n {4}type: kubernetes/);
    assert.match(c, /compute: cpu\n/);
    const s = renamed(at(K8S, 'secrets: [HF_TOKEN]', 11), 'HUGGINGFACE_TOKEN');
    assert.equal(s.split('${secrets.HUGGINGFACE_TOKEN}').length - 1, 2);
    assert.match(s, /secrets: \[HUGGINGFACE_TOKEN\]/);
    assert.deepEqual(analyzeSpec(s).problems, []);
  });

  it('refuses names the schema does not allow, and names already taken, with the reason', () => {
    assert.match(renameError(at(CHURN, '${params.l2}', 10), 'weight-decay'), /`weight-decay` is not a valid param name\. Param names start with a letter or `_` and use only letters, digits and `_`/);
    assert.match(renameError(at(CHURN, '  churn-api:\n', 3), 'Churn_API'), /not a valid deployment name/);
    assert.match(renameError(at(K8S, 'secrets: [HF_TOKEN]', 11), 'hf_token'), /Secret names use upper case letters/);
    assert.match(renameError(at(CHURN, '  train:\n', 3), 'evaluate'), /A step named `evaluate` already exists under `steps`/);
    assert.match(renameError(at(CHURN, '  train:\n', 3), 'true'), /YAML/);
    assert.match(renameError(at(CHURN, '  train:\n', 3), ''), /cannot be empty/);
  });

  it('prepareRename: the name under the cursor, or why it cannot be renamed', () => {
    const c = cursor(at(CHURN, '${steps.prepare.outputs.features}', 12));
    const p = prepareRename(c.analysis, c.position) as { range: Parameters<typeof textAt>[1]; placeholder: string };
    assert.equal(p.placeholder, 'prepare');
    assert.equal(textAt(c.text, p.range), 'prepare');
    const plain = cursor(at(CHURN, 'python3 src/prepare.py', 3));
    assert.equal(prepareRename(plain.analysis, plain.position), null);
    const undef = cursor('apiVersion: mlpipeline/v1\nname: t\nsteps:\n  a: {command: x, needs: [gh|ost]}\n');
    assert.match((prepareRename(undef.analysis, undef.position) as { error: string }).error, /`ghost` is not a defined step/);
  });

  it('quoted keys and list items keep their quotes', () => {
    const out = renamed('apiVersion: mlpipeline/v1\nname: t\nsecrets: ["TO|KEN"]\nsteps:\n  "a": {command: x, env: {T: "${secrets.TOKEN}"}}\n  b: {command: y, needs: ["a"]}\n', 'KEY');
    assert.equal(out, 'apiVersion: mlpipeline/v1\nname: t\nsecrets: ["KEY"]\nsteps:\n  "a": {command: x, env: {T: "${secrets.KEY}"}}\n  b: {command: y, needs: ["a"]}\n');
    const step = renamed('apiVersion: mlpipeline/v1\nname: t\nsteps:\n  "a|": {command: x}\n  b: {command: y, needs: ["a"]}\n', 'c');
    assert.equal(step, 'apiVersion: mlpipeline/v1\nname: t\nsteps:\n  "c": {command: x}\n  b: {command: y, needs: ["c"]}\n');
  });

  it('never throws', () => {
    for (const text of ['', 'steps: [', '{{', 'a: *b', '\u0000']) {
      const a = analyzeSpec(text);
      for (const p of [{ line: 0, character: 1 }, { line: 7, character: 70 }]) {
        assert.doesNotThrow(() => [definition(a, URI, p), references(a, URI, p), prepareRename(a, p), rename(a, URI, p, 'x')]);
      }
    }
  });
});
