import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { documentLinks, pathTokens } from '../../../server/src/service/links';
import { inlayHints } from '../../../server/src/service/inlay-hints';
import { SEMANTIC_LEGEND, semanticTokens } from '../../../server/src/service/semantic-tokens';
import { analyzeSpec } from '../../../server/src/core/validate';
import { LineIndex } from '../../../server/src/core/problems';
import { textAt } from '../../helpers/spec';

const CHURN = readFileSync('samples/churn-local/mlpipeline.yaml', 'utf8');
const K8S = readFileSync('samples/gpu-k8s-s3/mlpipeline.yaml', 'utf8');

describe('document links', () => {
  const files = new Set(['src/prepare.py', 'src/train.py', 'src/evaluate.py', 'src/serve.py', 'data/churn.csv', 'data/features/', 'metrics/eval.json']);
  const links = (text: string) => documentLinks(analyzeSpec(text), { baseUri: 'file:///work/my%20ws/', fileExists: (p) => files.has(p) });

  it('paths in commands that exist, and declared inputs, outputs, metrics, plots and dataset URIs that exist', () => {
    const got = links(CHURN).map((l) => [textAt(CHURN, l.range), l.target]);
    assert.deepEqual(got, [
      ['data/churn.csv', 'file:///work/my%20ws/data/churn.csv'],
      ['src/prepare.py', 'file:///work/my%20ws/src/prepare.py'],
      ['src/prepare.py', 'file:///work/my%20ws/src/prepare.py'],
      ['data/features/', 'file:///work/my%20ws/data/features/'],
      ['src/train.py', 'file:///work/my%20ws/src/train.py'],
      ['src/train.py', 'file:///work/my%20ws/src/train.py'],
      ['src/evaluate.py', 'file:///work/my%20ws/src/evaluate.py'],
      ['metrics/eval.json', 'file:///work/my%20ws/metrics/eval.json'],
      ['src/evaluate.py', 'file:///work/my%20ws/src/evaluate.py'],
      ['metrics/eval.json', 'file:///work/my%20ws/metrics/eval.json'],
      ['src/serve.py', 'file:///work/my%20ws/src/serve.py'],
    ]);
    assert.equal(links(CHURN)[1].tooltip, 'Open src/prepare.py');
  });

  it('nothing for paths that do not exist, URIs, absolute paths or `${...}`', () => {
    assert.deepEqual(links('apiVersion: mlpipeline/v1\nname: t\ndatasets:\n  d: {uri: "s3://b/k"}\nsteps:\n  a:\n    command: python /abs/src/train.py ${datasets.d} ../src/train.py other/x.py\n    inputs: [missing.py]\n'), []);
    assert.deepEqual(pathTokens('python3 src/a.py --config=conf/b.yaml --lr 0.1 -o out/ ${x} "q/r.txt"').map((t) => t.path), ['src/a.py', 'conf/b.yaml', 'out/', 'q/r.txt']);
  });
});

describe('inlay hints', () => {
  it('`= value` after each `${params.x}` in commands and env values', () => {
    const hints = inlayHints(analyzeSpec(CHURN));
    const lines = new LineIndex(CHURN);
    const got = hints.map((h) => {
      const before = CHURN.slice(0, lines.offset(h.position));
      return [before.slice(before.lastIndexOf('${')), h.label, h.paddingLeft];
    });
    assert.deepEqual(got, [['${params.lr}', '= 0.01', true], ['${params.epochs}', '= 20', true], ['${params.l2}', '= 0.0001', true]]);
    assert.match((hints[0].tooltip as { value: string }).value, /\*\*param\*\* `lr`/);
    const k8s = inlayHints(analyzeSpec(K8S)).map((h) => h.label);
    assert.deepEqual(k8s, ['= distilbert-base-uncased', '= 256', '= distilbert-base-uncased', '= 3.0e-5', '= 3', '= 32', '= true']);
  });

  it('only within the requested range; none for undefined params', () => {
    const text = 'apiVersion: mlpipeline/v1\nname: t\nparams:\n  a: {type: int, default: 1}\nsteps:\n  s:\n    command: x ${params.a} ${params.zz}\n  t:\n    command: y ${params.a}\n';
    assert.deepEqual(inlayHints(analyzeSpec(text)).map((h) => [h.position.line, h.label]), [[6, '= 1'], [8, '= 1']]);
    assert.deepEqual(inlayHints(analyzeSpec(text), { start: { line: 7, character: 0 }, end: { line: 9, character: 0 } }).map((h) => h.position.line), [8]);
  });
});

describe('semantic tokens', () => {
  /** Decodes the token stream to [text, type, modifiers]. */
  function decode(text: string): [string, string, string[]][] {
    const data = semanticTokens(analyzeSpec(text)).data;
    const lines = text.split('\n');
    const out: [string, string, string[]][] = [];
    let line = 0;
    let char = 0;
    for (let i = 0; i < data.length; i += 5) {
      line += data[i];
      char = data[i] === 0 ? char + data[i + 1] : data[i + 1];
      const mods = SEMANTIC_LEGEND.tokenModifiers.filter((_, b) => data[i + 4] & (1 << b));
      out.push([lines[line].slice(char, char + data[i + 2]), SEMANTIC_LEGEND.tokenTypes[data[i + 3]], mods]);
    }
    return out;
  }

  it('namespace and name parts of every reference', () => {
    const text = 'apiVersion: mlpipeline/v1\nname: t\nsecrets: [T]\nsteps:\n  a:\n    command: x ${params.lr} ${datasets.raw} ${outputs.m} $${params.no} ${HOME}\n    env: {T: "${secrets.T}"}\n  b:\n    command: y ${steps.a.outputs.m}\ndeployments:\n  d:\n    model: m.pkl\n    gate: b.auc >= 0.5\n    runtime: {command: "serve ${model}"}\n    rollout: {strategy: canary, steps: [{weight: 100}], rollbackOn: [monitors.slo]}\n';
    assert.deepEqual(decode(text), [
      ['params', 'namespace', []],
      ['lr', 'parameter', []],
      ['datasets', 'namespace', []],
      ['raw', 'variable', []],
      ['outputs', 'namespace', []],
      ['m', 'property', []],
      ['secrets', 'namespace', []],
      ['T', 'variable', ['readonly']],
      ['steps', 'namespace', []],
      ['a', 'function', []],
      ['outputs', 'namespace', []],
      ['m', 'property', []],
      ['b', 'function', []],
      ['auc', 'property', []],
      ['model', 'variable', ['defaultLibrary']],
      ['monitors', 'namespace', []],
      ['slo', 'event', []],
    ]);
  });

  it('the legend is the documented one; a broken document still gets tokens; never throws', () => {
    assert.deepEqual(SEMANTIC_LEGEND, { tokenTypes: ['namespace', 'parameter', 'variable', 'function', 'property', 'event'], tokenModifiers: ['readonly', 'defaultLibrary'] });
    assert.deepEqual(decode('steps:\n  a:\n    needs: [\n    command: x ${params.lr}\n').map((t) => t[0]), ['params', 'lr']);
    for (const t of ['', '{{', '${', '\u0000']) assert.doesNotThrow(() => semanticTokens(analyzeSpec(t)));
  });
});
