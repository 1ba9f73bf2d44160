import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lineContext, modelOf } from '../../../server/src/service/cursor';
import { analyzeSpec } from '../../../server/src/core/validate';

/** The completion context at `|`, with the prefix and the word it would replace. */
function ctx(marked: string) {
  const offset = marked.indexOf('|');
  const text = marked.slice(0, offset) + marked.slice(offset + 1);
  const c = lineContext(text, offset);
  if (!c) return undefined;
  return { path: c.path.join('/'), kind: c.kind, prefix: c.prefix, word: text.slice(c.wordStart, c.wordEnd), present: c.present, flow: c.flow, ip: c.interpolation?.inner };
}

describe('cursor: line-based context', () => {
  it('block keys: the path from indentation, the keys around', () => {
    assert.deepEqual(ctx('steps:\n  train:\n    command: x\n    comp|\n    needs: [a]\n'), { path: 'steps/train', kind: 'key', prefix: 'comp', word: 'comp', present: ['command', 'needs'], flow: false, ip: undefined });
    assert.deepEqual(ctx('|'), { path: '', kind: 'key', prefix: '', word: '', present: [], flow: false, ip: undefined });
    assert.deepEqual(ctx('apiVersion: x\nna|me: y\n')!.word, 'name');
  });

  it('values, in block and flow style, nested', () => {
    assert.equal(ctx('steps:\n  a:\n    compute: lo|cal\n')!.word, 'local');
    assert.deepEqual(ctx('steps:\n  a:\n    needs: [x, y|, z]\n'), { path: 'steps/a/needs/1', kind: 'value', prefix: 'y', word: 'y', present: ['x', 'z'], flow: true, ip: undefined });
    assert.deepEqual(ctx('params:\n  lr: {type: float, |}\n')!.kind, 'key');
    assert.deepEqual(ctx('params:\n  lr: {type: float, |}\n')!.present, ['type']);
    assert.equal(ctx('params:\n  lr: {type: |}\n')!.path, 'params/lr/type');
    assert.equal(ctx('steps: {a: {command: x, needs: [|]}}\n')!.path, 'steps/a/needs/0');
    assert.equal(ctx('compute:\n  k:\n    tolerations:\n      - {key: a, effect: |}\n')!.path, 'compute/k/tolerations/0/effect');
  });

  it('block lists: the item index, compact and indented', () => {
    assert.deepEqual(ctx('steps:\n  a:\n    needs:\n      - x\n      - |\n')!.path, 'steps/a/needs/1');
    assert.deepEqual(ctx('steps:\n  a:\n    needs:\n      - x\n      - |\n')!.present, ['x']);
    assert.equal(ctx('alerts:\n  - when: [m]\n  - when: [n]\n    |\n')!.path, 'alerts/1');
    assert.equal(ctx('alerts:\n- when: [m]\n  notify: [|]\n')!.path, 'alerts/0/notify/0');
  });

  it('`${...}`: the text typed so far, in plain and block scalars', () => {
    assert.equal(ctx('steps:\n  a:\n    command: run ${steps.b.outputs.|}\n')!.ip, 'steps.b.outputs.');
    const block = ctx('steps:\n  a:\n    command: >-\n      run --x ${para|\n      --y\n');
    assert.equal(block!.path, 'steps/a/command');
    assert.equal(block!.ip, 'para');
    assert.equal(ctx('steps:\n  a:\n    command: run $${para|\n')!.ip, undefined);
  });

  it('nothing in comments or in the indentation before a key', () => {
    assert.equal(ctx('steps:\n  a:\n    # needs: [|\n'), undefined);
    assert.equal(ctx('steps:\n  a:\n  |  command: x\n'), undefined);
  });

  it('never throws, whatever the text and offset', () => {
    for (const t of ['', '\n', '\r\n\r\n', 'a: "unterminated', "a: 'x", '- - - -', '{[{[', ':\t:', '${${${', 'a:\n\t- b', '\uFFFD']) {
      for (let o = -2; o <= t.length + 2; o++) assert.doesNotThrow(() => lineContext(t, o), `${JSON.stringify(t)} @ ${o}`);
    }
  });
});

describe('cursor: the model of a broken document', () => {
  it('comes from the parser\'s error-tolerant tree of the same parse', () => {
    const a = analyzeSpec('apiVersion: mlpipeline/v1\nname: t\nsteps:\n  prepare: {command: a}\n  train:\n    needs: [\n    command: b\n');
    assert.equal(a.model, undefined);
    assert.deepEqual([...modelOf(a)!.symbols.get('step')!.keys()], ['prepare', 'train']);
    assert.equal(modelOf(a), modelOf(a), 'built once per analysis');
    assert.equal(modelOf(analyzeSpec('steps: ' + '['.repeat(100))), undefined, 'refused before parsing: no model');
  });
});
