import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { codeLenses } from '../../../server/src/service/code-lenses';
import { analyzeSpec } from '../../../server/src/core/validate';
import { textAt } from '../../helpers/spec';

const SPEC = 'apiVersion: mlpipeline/v1\nname: l\nsteps:\n  prepare:\n    command: a\n  train:\n    needs: [prepare]\n    command: b\n';
const BOTH = new Set(['mlpipeline.runPipeline', 'mlpipeline.runStep']);

describe('code lenses', () => {
  it('offers Run pipeline on `steps:` and Run step on each step, with the arguments the commands take', () => {
    const lenses = codeLenses(analyzeSpec(SPEC), 'file:///w/mlpipeline.yaml', BOTH);
    assert.deepEqual(
      lenses.map((l) => [textAt(SPEC, l.range), l.command?.title, l.command?.command, l.command?.arguments]),
      [
        ['steps', '▶ Run pipeline', 'mlpipeline.runPipeline', ['file:///w/mlpipeline.yaml']],
        ['prepare', '▶ Run step', 'mlpipeline.runStep', ['file:///w/mlpipeline.yaml', 'prepare']],
        ['train', '▶ Run step', 'mlpipeline.runStep', ['file:///w/mlpipeline.yaml', 'train']],
      ],
    );
  });

  it('offers nothing a client cannot run, and nothing for a spec with errors', () => {
    assert.deepEqual(codeLenses(analyzeSpec(SPEC), 'file:///w/x', new Set()), []);
    assert.deepEqual(codeLenses(analyzeSpec(SPEC), 'file:///w/x', new Set(['mlpipeline.runPipeline'])).map((l) => l.command?.command), ['mlpipeline.runPipeline']);
    assert.deepEqual(codeLenses(analyzeSpec(SPEC.replace('[prepare]', '[nope]')), 'file:///w/x', BOTH), []);
    assert.deepEqual(codeLenses(analyzeSpec('steps: [unclosed'), 'file:///w/x', BOTH), []);
  });
});
