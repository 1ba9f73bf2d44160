import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeSpec } from '../../../server/src/core/validate';
import { completion } from '../../../server/src/service/completion';

describe('completion on very large specs', () => {
  const steps = Array.from({ length: 1500 }, (_, i) => `  s${i}:\n    command: x\n`).join('');
  const text = `apiVersion: mlpipeline/v1\nname: big\nsteps:\n${steps}  last:\n    command: y\n    needs: [s14`;
  const at = (t: string) => {
    const lines = t.split('\n');
    return { line: lines.length - 1, character: lines[lines.length - 1].length };
  };

  it('narrows a list of thousands to what is typed, marked incomplete, so every name stays reachable', () => {
    const list = completion(analyzeSpec(text), at(text));
    assert.equal(list.isIncomplete, true);
    assert.ok(list.items.length <= 200);
    assert.ok(list.items.length > 0 && list.items.every((i) => i.label.includes('s14')), list.items.slice(0, 5).map((i) => i.label).join());
    assert.equal(list.items[0].label.startsWith('s14'), true);
    const deeper = `${text.slice(0, -3)}s1499`;
    assert.deepEqual(completion(analyzeSpec(deeper), at(deeper)).items.map((i) => i.label), ['s1499']);
  });
});
