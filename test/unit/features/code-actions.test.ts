import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import type { CodeAction, TextEdit } from 'vscode-languageserver';
import { codeActions } from '../../../server/src/service/code-actions';
import { toDiagnostics } from '../../../server/src/service/diagnostics';
import { analyzeSpec } from '../../../server/src/core/validate';
import { applyEdits } from '../../helpers/cursor';

const URI = 'file:///ws/mlpipeline.yaml';

interface Fix {
  title: string;
  preferred: boolean;
  result: string;
}

/** Every fix offered for the diagnostics with this code, applied to the text. */
function fixes(text: string, code: string, nth = 0): Fix[] {
  const a = analyzeSpec(text);
  const diag = toDiagnostics(a.problems, URI).filter((d) => d.code === code)[nth];
  assert.ok(diag, `no ${code} in ${a.problems.map((p) => p.code).join(', ')}`);
  return codeActions(a, URI, diag.range, [diag]).map((act: CodeAction) => {
    assert.equal(act.kind, 'quickfix');
    assert.deepEqual(act.diagnostics, [diag]);
    return { title: act.title, preferred: !!act.isPreferred, result: applyEdits(text, act.edit!.changes![URI] as TextEdit[]) };
  });
}
const codes = (text: string): string[] => analyzeSpec(text).problems.map((p) => p.code);
const spec = (body: string): string => `apiVersion: mlpipeline/v1\nname: t\n${body}`;

describe('quick fixes: undefined references', () => {
  const text = spec('params:\n  lr: {type: float, default: 0.1}\ndatasets:\n  raw: {uri: d.csv}\nsteps:\n  prepare:\n    command: run ${params.lr} ${datasets.rw} ${params.epochs}\n  train:\n    needs: [prepair]\n    compute: gpu\n');

  it('did you mean: the closest name, preferred; plus a stub for the missing step', () => {
    const [change, create] = fixes(text, 'MLP020');
    assert.deepEqual([change.title, change.preferred], ['Change to `prepare`', true]);
    assert.equal(change.result, text.replace('needs: [prepair]', 'needs: [prepare]'));
    assert.deepEqual([create.title, create.preferred], ['Create step `prepair`', false]);
    assert.equal(create.result, text.replace('    compute: gpu\n', '    compute: gpu\n  prepair:\n    command: echo TODO\n'));
  });

  it('in ${...}: datasets and params; a param stub is a valid param', () => {
    const [change, createDataset] = fixes(text, 'MLP023');
    assert.equal(change.result, text.replace('${datasets.rw}', '${datasets.raw}'));
    assert.equal(createDataset.result, text.replace('  raw: {uri: d.csv}\n', '  raw: {uri: d.csv}\n  rw:\n    uri: data/rw\n'));
    const [createParam] = fixes(text, 'MLP022');
    assert.equal(createParam.title, 'Create param `epochs`');
    assert.equal(createParam.result, text.replace('  lr: {type: float, default: 0.1}\n', '  lr: {type: float, default: 0.1}\n  epochs: {type: string, default: ""}\n'));
    assert.ok(!codes(createParam.result).includes('MLP022'));
  });

  it('a compute target stub creates the section when there is none', () => {
    const [create] = fixes(text, 'MLP021');
    assert.equal(create.title, 'Create compute target `gpu`');
    assert.equal(create.result, text + 'compute:\n  gpu:\n    type: local\n');
    assert.ok(!codes(create.result).includes('MLP021'));
  });

  it('outputs, secrets, monitors and deployments get did-you-mean; a secret can be added to `secrets`', () => {
    const t = spec('secrets: [HF_TOKEN]\nsteps:\n  a:\n    command: x\n    outputs: {model: m.pkl}\n    env: {T: "${secrets.HF_TOKN}"}\n  b:\n    command: use ${steps.a.outputs.modl}\ndeployments:\n  api:\n    model: m.pkl\n    runtime: {command: serve}\nmonitors:\n  slo: {deployment: apii}\nalerts:\n  - when: [monitors.sloo]\n');
    assert.equal(fixes(t, 'MLP024')[0].result, t.replace('outputs.modl', 'outputs.model'));
    const [secretChange, secretAdd] = fixes(t, 'MLP025');
    assert.equal(secretChange.result, t.replace('secrets.HF_TOKN', 'secrets.HF_TOKEN'));
    assert.equal(secretAdd.result, t.replace('secrets: [HF_TOKEN]', 'secrets: [HF_TOKEN, HF_TOKN]'));
    assert.equal(fixes(t, 'MLP026')[0].result, t.replace('deployment: apii', 'deployment: api'));
    assert.equal(fixes(t, 'MLP027')[0].result, t.replace('monitors.sloo', 'monitors.slo'));
  });
});

describe('quick fixes: schema problems', () => {
  it('MLP011 unknown key: rename to the closest allowed key (preferred), or remove it', () => {
    const text = spec('steps:\n  a:\n    comand: x\n    timeout: 1h\n');
    const [change, remove] = fixes(text, 'MLP011');
    assert.deepEqual([change.title, change.preferred], ['Change to `command`', true]);
    assert.equal(change.result, text.replace('comand', 'command'));
    assert.deepEqual(codes(change.result), []);
    assert.equal(remove.title, 'Remove `comand`');
    assert.equal(remove.result, text.replace('    comand: x\n', ''));
  });

  it('MLP013 value not allowed: the closest enum value; apiVersion to its only value', () => {
    const text = spec('datasets:\n  raw: {uri: d.csv, format: parket}\nsteps:\n  a: {command: "x ${datasets.raw}"}\n');
    const [change] = fixes(text, 'MLP013');
    assert.deepEqual([change.title, change.preferred], ['Change to `parquet`', true]);
    assert.deepEqual(codes(change.result), []);
    const v2 = 'apiVersion: mlpipeline/v2\nname: t\nsteps:\n  a: {command: x}\n';
    assert.equal(fixes(v2, 'MLP013')[0].result, v2.replace('v2', 'v1'));
  });

  it('MLP044 unknown GPU type: the closest known type, keeping the count', () => {
    const text = spec('compute:\n  k: {type: kubernetes, image: x, resources: {gpu: "A1000:4"}}\nsteps:\n  a: {command: x, compute: k}\n');
    const [change] = fixes(text, 'MLP044');
    assert.deepEqual([change.title, change.preferred], ['Change to `A100`', true]);
    assert.equal(change.result, text.replace('A1000:4', 'A100:4'));
    assert.deepEqual(codes(change.result), []);
  });

  it('MLP010 missing key: added with a placeholder from the schema, block or flow', () => {
    const block = spec('steps:\n  a:\n    description: no command yet\n  b:\n    command: y\n');
    const [add] = fixes(block, 'MLP010');
    assert.deepEqual([add.title, add.preferred], ['Add `command`', true]);
    assert.equal(add.result, block.replace('    description: no command yet\n', '    description: no command yet\n    command: echo TODO\n'));
    assert.deepEqual(codes(add.result), []);
    const flow = spec('steps:\n  a:\n    command: x\n    retry: {on: [preempted]}\n');
    assert.equal(fixes(flow, 'MLP010')[0].result, flow.replace('{on: [preempted]}', '{on: [preempted], max: 0}'));
    const nested = spec('steps:\n  a:\n    command: x\n    outputs: {m: m.pkl}\ndeployments:\n  api:\n    model: ${steps.a.outputs.m}\n');
    const fixed = fixes(nested, 'MLP010')[0].result;
    assert.equal(fixed, nested + '    runtime:\n      command: echo TODO\n');
    assert.deepEqual(codes(fixed), []);
    const root = 'name: t\nsteps:\n  a: {command: x}\n';
    assert.equal(fixes(root, 'MLP010')[0].result, 'name: t\nsteps:\n  a: {command: x}\napiVersion: mlpipeline/v1\n');
  });
});

describe('quick fixes: unused names and YAML syntax', () => {
  it('removes an unused param, dataset or secret, in flow or block style; an emptied section goes too', () => {
    const text = spec('params:\n  lr: {type: float, default: 0.1}\n  idle: {type: int, default: 1}\ndatasets:\n  raw:\n    uri: d.csv\n    format: csv\nsecrets: [A, B]\nsteps:\n  a:\n    command: x ${params.lr}\n    env: {A: "${secrets.A}"}\n');
    const [param] = fixes(text, 'MLP060');
    assert.equal(param.title, 'Remove unused param `idle`');
    assert.equal(param.result, text.replace('  idle: {type: int, default: 1}\n', ''));
    assert.equal(fixes(text, 'MLP061')[0].result, text.replace('datasets:\n  raw:\n    uri: d.csv\n    format: csv\n', ''));
    assert.equal(fixes(text, 'MLP062')[0].result, text.replace('secrets: [A, B]', 'secrets: [A]'));
    const block = spec('secrets:\n  - A\n  - B\nsteps:\n  a: {command: x, env: {B: "${secrets.B}"}}\n');
    assert.equal(fixes(block, 'MLP062')[0].result, block.replace('  - A\n', ''));
    for (const f of [param, ...fixes(text, 'MLP061'), ...fixes(text, 'MLP062')]) assert.deepEqual(codes(f.result).filter((c) => c !== 'MLP060' && c !== 'MLP061' && c !== 'MLP062'), []);
  });

  it('MLP001: quotes a `${...}` written unquoted in a flow mapping', () => {
    const text = spec('secrets: [T]\nsteps:\n  a:\n    command: x\n    env: {T: ${secrets.T}, U: 1}\n');
    const [quote] = fixes(text, 'MLP001');
    assert.deepEqual([quote.title, quote.preferred], ['Quote the `${...}` value', true]);
    assert.equal(quote.result, text.replace('{T: ${secrets.T}, U: 1}', '{T: "${secrets.T}", U: 1}'));
    assert.deepEqual(codes(quote.result), []);
  });

  it('stale diagnostics (from an older version) and other sources get no fix; never throws', () => {
    const a = analyzeSpec(spec('steps:\n  a: {command: x, needs: [b]}\n'));
    const moved = { range: { start: { line: 0, character: 0 }, end: { line: 0, character: 3 } }, code: 'MLP020', source: 'mlpipeline', message: 'x' };
    assert.deepEqual(codeActions(a, URI, moved.range, [moved]), []);
    const other = { ...toDiagnostics(a.problems, URI)[0], source: 'yaml' };
    assert.deepEqual(codeActions(a, URI, other.range, [other]), []);
    assert.doesNotThrow(() => codeActions(analyzeSpec('{{'), URI, moved.range, [moved, { ...moved, code: 'MLP001' }]));
  });
});

describe('quick fixes on the invalid samples', () => {
  it('every preferred fix removes its diagnostic', () => {
    for (const name of ['undefined-references', 'schema-errors', 'hints-and-warnings']) {
      const text = readFileSync(`samples/invalid/${name}.yaml`, 'utf8');
      const a = analyzeSpec(text);
      for (const d of toDiagnostics(a.problems, URI)) {
        for (const act of codeActions(a, URI, d.range, [d]).filter((x) => x.isPreferred)) {
          const after = analyzeSpec(applyEdits(text, act.edit!.changes![URI] as TextEdit[]));
          const still = after.problems.filter((p) => p.code === d.code && p.range.start.line === d.range.start.line && p.range.start.character === d.range.start.character);
          assert.deepEqual(still, [], `${name}: ${act.title} for ${d.code} ${d.message}`);
        }
      }
    }
  });
});

describe('quick fixes in CRLF documents', () => {
  it('new lines use the document\'s line ending', () => {
    const text = spec('steps:\n  a:\n    description: d\n  b:\n    command: y\n').replace(/\n/g, '\r\n');
    const [add] = fixes(text, 'MLP010');
    assert.equal(add.result, text.replace('    description: d\r\n', '    description: d\r\n    command: echo TODO\r\n'));
  });
});

describe('quick fixes in CRLF documents: removal', () => {
  it('removes whole lines, line endings included', () => {
    const text = spec('datasets:\n  raw: {uri: a.csv}\n  idle:\n    uri: b.csv\nsteps:\n  a: {command: "x ${datasets.raw}"}\n').replace(/\n/g, '\r\n');
    assert.equal(fixes(text, 'MLP061')[0].result, text.replace('  idle:\r\n    uri: b.csv\r\n', ''));
  });
});
