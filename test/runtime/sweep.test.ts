import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expandTrials, type SweepDef } from '../../client/src/cli/sweep';

const base: SweepDef = { name: 's', step: 'train', method: 'grid', parameters: {}, seed: 0, maxParallel: 1 };

describe('sweep trials', () => {
  it('grid: the cartesian product, in the order written', () => {
    const trials = expandTrials({ ...base, parameters: { lr: [0.1, 0.01], model: ['xgb', 'mlp'] } });
    assert.deepEqual(trials, [
      { lr: 0.1, model: 'xgb' },
      { lr: 0.1, model: 'mlp' },
      { lr: 0.01, model: 'xgb' },
      { lr: 0.01, model: 'mlp' },
    ]);
  });

  it('random: `samples` draws, the same for the same seed, inside the ranges and lists', () => {
    const def: SweepDef = { ...base, method: 'random', samples: 50, seed: 7, parameters: { lr: { min: 1e-5, max: 0.1, distribution: 'log-uniform' }, layers: { min: 1, max: 4, distribution: 'int-uniform' }, drop: { min: 0, max: 0.5, distribution: 'uniform' }, model: ['a', 'b'] } };
    const a = expandTrials(def);
    assert.equal(a.length, 50);
    assert.deepEqual(expandTrials(def), a, 'same seed, same trials');
    assert.notDeepEqual(expandTrials({ ...def, seed: 8 }), a);
    for (const t of a) {
      assert.ok((t.lr as number) >= 1e-5 && (t.lr as number) <= 0.1);
      assert.ok(Number.isInteger(t.layers) && (t.layers as number) >= 1 && (t.layers as number) <= 4);
      assert.ok((t.drop as number) >= 0 && (t.drop as number) <= 0.5);
      assert.ok(t.model === 'a' || t.model === 'b');
    }
    assert.deepEqual(new Set(a.map((t) => t.layers)), new Set([1, 2, 3, 4]), 'int-uniform reaches both ends');
    // Log-uniform spreads over the decades rather than crowding the top one.
    assert.ok(a.filter((t) => (t.lr as number) < 1e-3).length >= 15);
  });

  it('a grid over a range is refused with a clear message', () => {
    assert.throws(() => expandTrials({ ...base, parameters: { lr: { min: 0, max: 1, distribution: 'uniform' } } }), /needs a list of values for `lr`/);
  });
});
