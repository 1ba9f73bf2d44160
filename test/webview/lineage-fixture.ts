/**
 * Run and deployment records shaped as the engine and the deploy command write them, for the lineage
 * graph's unit tests and the Lineage panel's browser tests: two runs of the churn sample (the second
 * with another train.py and lr, prepare cached) and one deployment of the second run's model.
 */
import type { DeploymentRecord, RunRecord, StepRecord } from '../../client/src/runtime/records';

export const H = {
  raw: 'a1'.repeat(32),
  prepPy: 'b2'.repeat(32),
  trainPyA: 'c3'.repeat(32),
  trainPyB: 'c4'.repeat(32),
  evalPy: 'd5'.repeat(32),
  features: 'e6'.repeat(32),
  modelA: 'f7'.repeat(32),
  modelB: 'f8'.repeat(32),
};
export const RUN_A = '20261125-100000-aaaaaa';
export const RUN_B = '20261125-110000-bbbbbb';

function step(inputs: Record<string, string>, outputs: StepRecord['outputs'], extra: Partial<StepRecord> = {}): StepRecord {
  return { status: 'succeeded', command: 'python3 x.py', attempts: 1, inputs, outputs, log: 'logs/x.log', ...extra };
}

/** `label` goes into user-visible strings (run label, a file path), for the XSS corpus. */
export function churnRuns(hostile = ''): { runs: RunRecord[]; deployments: DeploymentRecord[] } {
  const trainFile = `src/train${hostile}.py`;
  const mk = (id: string, trainHash: string, modelHash: string, lr: number, commit: string, cached: boolean): RunRecord => ({
    schema: 1,
    id,
    label: hostile ? `run ${hostile}` : undefined,
    spec: { path: 'mlpipeline.yaml', name: 'churn-local', hash: '00'.repeat(32) },
    status: 'succeeded',
    startedAt: id === RUN_A ? '2026-11-25T10:00:00.000Z' : '2026-11-25T11:00:00.000Z',
    params: { lr, epochs: 20 },
    git: { commit, branch: 'main', dirty: false },
    target: 'local',
    steps: {
      prepare: step({ 'src/prepare.py': H.prepPy, 'data/churn.csv': H.raw }, { features: { path: 'data/features/', hash: H.features } }, cached ? { status: 'cached', cachedFrom: RUN_A } : {}),
      train: step({ [trainFile]: trainHash }, { model: { path: 'models/model.json', hash: modelHash } }),
      evaluate: step({ 'src/evaluate.py': H.evalPy }, {}, { metrics: { auc: 0.8 } }),
    },
    lineage: [
      { from: `dataset:raw@${H.raw}`, to: `step:${id}/prepare` },
      { from: `file:src/prepare.py@${H.prepPy}`, to: `step:${id}/prepare` },
      { from: `step:${id}/prepare`, to: `output:prepare.features@${H.features}` },
      { from: `file:${trainFile}@${trainHash}`, to: `step:${id}/train` },
      { from: `output:prepare.features@${H.features}`, to: `step:${id}/train` },
      { from: `step:${id}/train`, to: `output:train.model@${modelHash}` },
      { from: `file:src/evaluate.py@${H.evalPy}`, to: `step:${id}/evaluate` },
      { from: `output:train.model@${modelHash}`, to: `step:${id}/evaluate` },
      { from: `output:prepare.features@${H.features}`, to: `step:${id}/evaluate` },
    ],
  });
  const runs = [mk(RUN_A, H.trainPyA, H.modelA, 0.01, '1111111111111111111111111111111111111111', false), mk(RUN_B, H.trainPyB, H.modelB, 0.03, '2222222222222222222222222222222222222222', true)];
  const deployments: DeploymentRecord[] = [
    {
      schema: 1,
      deployment: 'churn-api',
      revision: 'r1',
      target: 'local',
      model: { path: 'models/model.json', hash: H.modelB, output: 'train.model' },
      sourceRunId: RUN_B,
      at: '2026-11-25T12:00:00.000Z',
      outcome: 'deployed',
      lineage: [{ from: `output:train.model@${H.modelB}`, to: 'deployment:churn-api/r1' }],
    },
  ];
  return { runs, deployments };
}

/** A lineage-shaped graph of about `n` nodes: many runs of a three-step pipeline sharing datasets and files. */
export function bigLineage(n: number): { runs: RunRecord[] } {
  const runs: RunRecord[] = [];
  const hex = (i: number, w = 64): string => i.toString(16).padStart(w, '0');
  let count = 50;
  for (let r = 0; count < n; r++) {
    const id = `20261125-${String(100000 + r).padStart(6, '0')}-${hex(r, 6)}`;
    const ds = `dataset:raw${r % 20}@${hex(r % 20)}`;
    const f1 = `file:src/f${r % 30}.py@${hex(1000 + (r % 30))}`;
    const f2 = `file:src/f${(r + 7) % 30}.py@${hex(1000 + ((r + 7) % 30))}`;
    const o = (s: string): string => `output:${s}.out@${hex(r * 3 + s.length)}`;
    runs.push({
      schema: 1,
      id,
      spec: { path: 'mlpipeline.yaml', name: 'big', hash: hex(0) },
      status: 'succeeded',
      startedAt: new Date(Date.UTC(2026, 10, 25) + r * 1000).toISOString(),
      params: { lr: r },
      git: null,
      target: 'local',
      steps: {},
      lineage: [
        { from: ds, to: `step:${id}/a` },
        { from: f1, to: `step:${id}/a` },
        { from: `step:${id}/a`, to: o('a') },
        { from: o('a'), to: `step:${id}/bb` },
        { from: f2, to: `step:${id}/bb` },
        { from: `step:${id}/bb`, to: o('bb') },
        { from: o('bb'), to: `step:${id}/ccc` },
        { from: o('a'), to: `step:${id}/ccc` },
        { from: `step:${id}/ccc`, to: o('ccc') },
      ],
    });
    count += 6;
  }
  return { runs };
}
