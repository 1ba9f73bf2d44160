/** Run fixtures for the Experiments panel's browser test and bench (deterministic: seeded). */
import { mulberry32 } from '../../client/src/runtime/random';
import type { ExpRun, ExpSeries } from '../../webviews/src/protocol/experiments';

const MODELS = ['xgb', 'logreg', 'mlp', 'rf'];

/** `n` runs with `params` param columns and `metrics` metric columns (at least 4 and 3: model, lr, depth, seed / auc, loss, f1). */
export function makeRuns(n: number, opts: { params?: number; metrics?: number; seed?: number } = {}): ExpRun[] {
  const r = mulberry32(opts.seed ?? 1);
  const nParams = Math.max(4, opts.params ?? 4);
  const nMetrics = Math.max(3, opts.metrics ?? 3);
  const base = Date.UTC(2026, 10, 1);
  const runs: ExpRun[] = [];
  for (let i = 0; i < n; i++) {
    const model = MODELS[i % MODELS.length];
    const lr = [0.01, 0.05, 0.1, 0.3][Math.floor(r() * 4)];
    const depth = 2 + Math.floor(r() * 8);
    const params: ExpRun['params'] = { model, lr, depth, seed: 42 };
    for (let p = 4; p < nParams; p++) params[`p${String(p).padStart(2, '0')}`] = p % 3 === 0 ? `v${Math.floor(r() * 5)}` : Math.round(r() * 1000) / 10;
    const auc = Math.round((0.6 + (model === 'xgb' ? 0.25 : 0.15) * r() + depth * 0.005) * 10000) / 10000;
    const metrics: ExpRun['metrics'] = { 'evaluate.auc': auc, 'train.loss': Math.round((1 - auc + r() * 0.05) * 10000) / 10000, 'evaluate.f1': Math.round((auc - 0.1 + r() * 0.05) * 10000) / 10000 };
    for (let m = 3; m < nMetrics; m++) metrics[`evaluate.m${String(m).padStart(2, '0')}`] = Math.round(r() * 10000) / 10000;
    const started = new Date(base + (n - i) * 60_000);
    const id = `${started.toISOString().slice(0, 10).replace(/-/g, '')}-${started.toISOString().slice(11, 19).replace(/:/g, '')}-${(i + 0x100000).toString(16).slice(-6)}`;
    runs.push({ id, label: i % 7 === 0 ? `trial ${i}` : undefined, specName: 'churn', status: i % 23 === 5 ? 'failed' : 'succeeded', startedAt: started.toISOString(), finishedAt: new Date(started.getTime() + 30_000).toISOString(), params, metrics, gitCommit: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678' });
  }
  for (const run of runs) if (run.label === undefined) delete run.label;
  return runs;
}

/** A loss curve (`train/loss.csv`: step, loss, val_loss) for a run. */
export function makeSeries(runId: string, steps = 50, seed = 3): ExpSeries[] {
  const r = mulberry32(seed);
  const loss: [number, number | null][] = [];
  const val: [number, number | null][] = [];
  for (let s = 0; s < steps; s++) {
    loss.push([s, Math.round((1 / (1 + s * 0.15) + r() * 0.02) * 1e4) / 1e4]);
    val.push([s, Math.round((1.1 / (1 + s * 0.12) + r() * 0.03) * 1e4) / 1e4]);
  }
  return [
    { runId, step: 'train', file: 'loss.csv', name: 'loss', x: 'step', points: loss },
    { runId, step: 'train', file: 'loss.csv', name: 'val_loss', x: 'step', points: val },
  ];
}
