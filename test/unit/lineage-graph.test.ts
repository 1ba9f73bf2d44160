import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { diffRuns, downstreamOf, graphFromRuns, graphFromSpec, indexSpec, newestRuns, parseLineageId, upstreamOf } from '../../client/src/runtime/lineage-graph';
import { codeLenses } from '../../server/src/service/code-lenses';
import { analyzeSpec } from '../../server/src/core/validate';
import { isLineageGraph, isRunDiff } from '../../webviews/src/protocol/lineage';
import { churnRuns, H, RUN_A, RUN_B } from '../webview/lineage-fixture';

const SPEC = readFileSync('samples/churn-local/mlpipeline.yaml', 'utf8');

describe('lineage graph', () => {
  it('reads lineage ids, paths with @ and / included', () => {
    assert.deepEqual(parseLineageId(`file:src/a@b/c.py@${H.raw}`), { kind: 'file', name: 'src/a@b/c.py', hash: H.raw });
    assert.deepEqual(parseLineageId(`step:${RUN_A}/train`), { kind: 'step', name: 'train', runId: RUN_A });
    assert.deepEqual(parseLineageId('deployment:churn-api/r3'), { kind: 'deployment', name: 'churn-api', revision: 'r3' });
    assert.equal(parseLineageId('weird').kind, 'other');
  });

  it('builds dataset -> step run -> output -> model -> deployment, with commits and jump targets', () => {
    const { runs, deployments } = churnRuns();
    const spec = indexSpec(analyzeSpec(SPEC), 'samples/churn-local/mlpipeline.yaml');
    const g = graphFromRuns(runs, { spec, deployments });
    assert.ok(isLineageGraph(g), 'the graph passes the protocol guard');
    const node = (id: string) => g.nodes.find((n) => n.id === id);
    // Shared nodes appear once: both runs read the same dataset and prepare's output.
    assert.equal(g.nodes.filter((n) => n.id === `dataset:raw@${H.raw}`).length, 1);
    assert.equal(node(`dataset:raw@${H.raw}`)!.kind, 'dataset');
    assert.deepEqual(node(`dataset:raw@${H.raw}`)!.jump, { kind: 'file', path: 'data/churn.csv' });
    assert.deepEqual(node(`step:${RUN_B}/train`)!.jump, { kind: 'run', runId: RUN_B, step: 'train' });
    assert.equal(node(`step:${RUN_B}/prepare`)!.status, 'cached');
    assert.equal(node(`output:train.model@${H.modelB}`)!.kind, 'model');
    assert.deepEqual(node(`output:train.model@${H.modelB}`)!.jump, { kind: 'file', path: 'models/model.json' });
    assert.equal(node(`output:prepare.features@${H.features}`)!.kind, 'output');
    const dep = node('deployment:churn-api/r1')!;
    assert.equal(dep.kind, 'deployment');
    assert.equal(dep.jump.kind, 'spec');
    if (dep.jump.kind === 'spec') assert.equal(SPEC.split('\n')[dep.jump.range.start.line].trim(), 'churn-api:');
    assert.ok(g.edges.some((e) => e.from === `output:train.model@${H.modelB}` && e.to === 'deployment:churn-api/r1'));
    assert.ok(g.edges.some((e) => e.from === 'commit:2222222222222222222222222222222222222222' && e.to === `step:${RUN_B}/train`));
    // No duplicate edges.
    assert.equal(new Set(g.edges.map((e) => `${e.from}>${e.to}`)).size, g.edges.length);
  });

  it('knows what a deployment came from and what a dataset fed', () => {
    const { runs, deployments } = churnRuns();
    const g = graphFromRuns(runs, { deployments, commits: false });
    const up = upstreamOf(g, 'deployment:churn-api/r1');
    assert.ok(up.has(`output:train.model@${H.modelB}`));
    assert.ok(up.has(`step:${RUN_B}/train`));
    assert.ok(up.has(`file:src/train.py@${H.trainPyB}`));
    assert.ok(up.has(`dataset:raw@${H.raw}`));
    assert.ok(!up.has(`file:src/train.py@${H.trainPyA}`), 'run A\'s train.py did not make the deployed model');
    assert.ok(!up.has(`step:${RUN_A}/train`));
    const down = downstreamOf(g, `file:src/train.py@${H.trainPyA}`);
    assert.deepEqual([...down].sort(), [`output:train.model@${H.modelA}`, `step:${RUN_A}/evaluate`, `step:${RUN_A}/train`].sort());
    assert.ok(downstreamOf(g, `dataset:raw@${H.raw}`).has('deployment:churn-api/r1'));
  });

  it('says which inputs changed between two runs', () => {
    const { runs } = churnRuns();
    const d = diffRuns(runs[0], runs[1]);
    assert.ok(isRunDiff(d));
    const train = d.changes.filter((c) => c.step === 'train');
    assert.deepEqual(train, [{ step: 'train', kind: 'file', name: 'src/train.py', a: H.trainPyA, b: H.trainPyB }]);
    // evaluate read the new model: an upstream output changed.
    assert.deepEqual(d.changes.filter((c) => c.step === 'evaluate'), [{ step: 'evaluate', kind: 'output', name: 'train.model', a: H.modelA, b: H.modelB }]);
    assert.equal(d.changes.filter((c) => c.step === 'prepare').length, 0, 'prepare read the same inputs');
    assert.deepEqual(d.changes.find((c) => c.kind === 'param'), { step: '', kind: 'param', name: 'lr', a: '0.01', b: '0.03' });
    assert.ok(d.changes.some((c) => c.kind === 'commit'));
    assert.ok(d.changedNodes.includes(`file:src/train.py@${H.trainPyA}`) && d.changedNodes.includes(`file:src/train.py@${H.trainPyB}`));
    assert.ok(!d.changedNodes.includes(`dataset:raw@${H.raw}`));
    assert.deepEqual(diffRuns(runs[0], runs[0]).changes, []);
  });

  it('draws the spec DAG before anything ran, with spec ranges to jump to', () => {
    const g = graphFromSpec(analyzeSpec(SPEC), 'mlpipeline.yaml');
    assert.equal(g.source, 'spec');
    assert.ok(isLineageGraph(g));
    const has = (from: string, to: string) => g.edges.some((e) => e.from === from && e.to === to);
    assert.ok(has('spec-dataset:raw', 'spec-step:prepare'));
    assert.ok(has('spec-file:src/prepare.py', 'spec-step:prepare'));
    assert.ok(has('spec-step:prepare', 'spec-output:prepare.features'));
    assert.ok(has('spec-output:prepare.features', 'spec-step:train'));
    assert.ok(has('spec-output:train.model', 'spec-step:evaluate'));
    assert.ok(has('spec-output:train.model', 'spec-deployment:churn-api'));
    // needs: [train] with data flowing through train.model adds no extra step -> step edge.
    assert.ok(!has('spec-step:train', 'spec-step:evaluate'));
    const model = g.nodes.find((n) => n.id === 'spec-output:train.model')!;
    assert.equal(model.kind, 'model');
    const train = g.nodes.find((n) => n.id === 'spec-step:train')!;
    assert.equal(train.jump.kind, 'spec');
    if (train.jump.kind === 'spec') {
      const line = SPEC.split('\n')[train.jump.range.start.line];
      assert.equal(line.slice(train.jump.range.start.character, train.jump.range.end.character), 'train');
    }
  });

  it('keeps a needs-only dependency as a step -> step edge, and survives a broken spec', () => {
    const g = graphFromSpec(analyzeSpec('apiVersion: mlpipeline/v1\nname: x\nsteps:\n  a: {command: echo}\n  b: {command: echo, needs: [a]}\n'), 'x.yaml');
    assert.ok(g.edges.some((e) => e.from === 'spec-step:a' && e.to === 'spec-step:b'));
    const broken = graphFromSpec(analyzeSpec('steps: [\n'), 'x.yaml');
    assert.deepEqual(broken.nodes, []);
  });

  it('ignores malformed lineage edges in records instead of crashing', () => {
    const { runs } = churnRuns();
    const bad = { ...runs[0], lineage: [null, { from: 1 }, ...runs[0].lineage] } as unknown as typeof runs[0];
    const g = graphFromRuns([bad]);
    assert.ok(g.nodes.length > 5);
  });

  it('keeps the newest runs', () => {
    const { runs } = churnRuns();
    const r = newestRuns(runs, 1);
    assert.equal(r.runs[0].id, RUN_B);
    assert.equal(r.omitted, 1);
  });
});

describe('Show lineage code lens', () => {
  it('is offered on `steps:` with the spec uri only to clients that declare mlpipeline.openLineage', () => {
    const lenses = codeLenses(analyzeSpec(SPEC), 'file:///w/mlpipeline.yaml', new Set(['mlpipeline.openLineage']));
    assert.deepEqual(lenses.map((l) => [SPEC.split('\n')[l.range.start.line].trim(), l.command?.title, l.command?.command, l.command?.arguments]), [['steps:', 'Show lineage', 'mlpipeline.openLineage', ['file:///w/mlpipeline.yaml']]]);
    assert.deepEqual(codeLenses(analyzeSpec(SPEC), 'file:///w/mlpipeline.yaml', new Set(['mlpipeline.runStep'])).filter((l) => l.command?.command === 'mlpipeline.openLineage'), []);
  });
});
