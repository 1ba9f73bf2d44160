/** The Experiments panel's filter expressions and table model, in plain Node (they have no DOM). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FilterError, parseFilter, tryParseFilter } from '../../webviews/src/experiments/filter';
import { aggregate, collectColumns, computeView, differs, formatDelta, sortRuns } from '../../webviews/src/experiments/model';
import type { ExpRun } from '../../webviews/src/protocol/experiments';

const run = (id: string, params: ExpRun['params'], metrics: ExpRun['metrics'], extra: Partial<ExpRun> = {}): ExpRun => ({ id, specName: 's', status: 'succeeded', startedAt: `2026-11-25T10:00:0${id}Z`, params, metrics, ...extra });
const runs = [
  run('1', { model: 'xgb', lr: 0.1, early: true }, { 'evaluate.auc': 0.91, 'train.loss': 0.2 }),
  run('2', { model: 'xgb', lr: 0.3, early: false }, { 'evaluate.auc': 0.79 }),
  run('3', { model: 'logreg', lr: 0.1 }, { 'evaluate.auc': 0.85, 'odd name': 3 }, { status: 'failed', label: 'baseline <b>' }),
];
const ids = (src: string): string[] => runs.filter(parseFilter(src)).map((r) => r.id);

describe('filter expressions', () => {
  it('compare params and metrics with && || ! and parentheses', () => {
    assert.deepEqual(ids('metrics.evaluate.auc > 0.8 && params.model == "xgb"'), ['1']);
    assert.deepEqual(ids('metrics.evaluate.auc > 0.8 and params.model == \'xgb\''), ['1']);
    assert.deepEqual(ids('params.model == "logreg" || metrics.evaluate.auc < 0.8'), ['2', '3']);
    assert.deepEqual(ids('!(params.model == "xgb")'), ['3']);
    assert.deepEqual(ids('not params.early'), ['2', '3']);
    assert.deepEqual(ids('params.early'), ['1']);
    assert.deepEqual(ids('params.lr >= 0.1 && params.lr <= .2'), ['1', '3']);
    assert.deepEqual(ids('params.lr != 0.1'), ['2']);
    assert.deepEqual(ids('metrics["odd name"] == 3'), ['3']);
    assert.deepEqual(ids('status == "failed"'), ['3']);
    assert.deepEqual(ids('label ~ "BASE"'), ['3']);
    assert.deepEqual(ids('metrics.train.loss > -1'), ['1'], 'a missing metric never compares true');
    assert.deepEqual(ids('metrics.train.loss == null'), ['2', '3']);
    assert.deepEqual(ids('params.lr == "0.1"'), ['1', '3'], 'numbers and numeric strings compare as numbers');
    assert.deepEqual(ids('   '), ['1', '2', '3']);
  });

  it('reports what is wrong and where', () => {
    const err = (src: string): FilterError => {
      const r = tryParseFilter(src);
      assert.equal(r.ok, false, src);
      return (r as { error: FilterError }).error;
    };
    let e = err('metrics.auc > && x');
    assert.match(e.message, /expected a value/);
    assert.equal(e.start, 14);
    e = err('params.model = "xgb"');
    assert.match(e.message, /use == to compare/);
    assert.equal(e.start, 13);
    assert.match(err('auc > 0.8').message, /unknown name "auc": use params.NAME, metrics.NAME/);
    assert.match(err('params.model == "xgb').message, /unterminated string/);
    assert.match(err('(params.lr > 1').message, /expected a closing \)/);
    assert.match(err('params.lr > 1 params.lr').message, /join conditions with && or \|\|/);
    assert.match(err('metrics > 1').message, /name a metric/);
    assert.match(err('params.lr > 1 # x').message, /unexpected character "#"/);
    assert.match(err('!'.repeat(500) + 'params.early').message, /too deeply nested/);
    assert.match(err('x'.repeat(3000)).message, /longer than 2000/);
    // Never evaluates code: `constructor`, `__proto__` are just unknown names.
    assert.match(err('constructor.constructor("alert(1)")()').message, /unknown name|expected/);
    // Inherited properties are not params.
    assert.deepEqual(ids('params.__proto__ != null || params.constructor != null || params.toString'), []);
  });
});

describe('table model', () => {
  const cols = collectColumns(runs);
  it('collects param and metric columns with their types', () => {
    assert.deepEqual(cols.map((c) => `${c.key}:${c.numeric}`), ['params.early:false', 'params.lr:true', 'params.model:false', 'metrics.evaluate.auc:true', 'metrics.odd name:true', 'metrics.train.loss:true']);
  });
  it('sorts with missing values last in both directions', () => {
    assert.deepEqual(sortRuns(runs, 'metrics.train.loss', 1).map((r) => r.id), ['1', '2', '3']);
    assert.deepEqual(sortRuns(runs, 'metrics.evaluate.auc', -1).map((r) => r.id), ['1', '3', '2']);
    assert.deepEqual(sortRuns(runs, 'params.model', 1).map((r) => r.id), ['3', '1', '2']);
  });
  it('sorts like the reference comparison: stable, numbers before strings, missing last, in both directions', () => {
    // The panel sorts precomputed ranks (typed arrays), not with a comparator: it must order exactly like one.
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
    const many: ExpRun[] = [];
    for (let i = 0; i < 500; i++) {
      const params: ExpRun['params'] = {};
      const metrics: ExpRun['metrics'] = {};
      const mixed = pick<ExpRun['params'][string] | undefined>([1, 2, 2.5, -0, 0, 10, '10', '9', 'a', 'B', 'b', '', true, false, 'true', undefined]);
      if (mixed !== undefined) params.mixed = mixed;
      params.model = pick(['xgb', 'rf', 'mlp']);
      if (rnd() < 0.8) metrics.auc = Math.round(rnd() * 20) / 20; // many ties
      many.push(run(String(i), params, metrics, { startedAt: `2026-11-25T10:${String(i % 60).padStart(2, '0')}:00Z`, label: rnd() < 0.3 ? pick(['b', 'a', 'A']) : undefined }));
    }
    const cmp = (a: unknown, b: unknown): number => {
      if (typeof a === 'number' && typeof b === 'number') return a - b;
      if (typeof a === 'number') return -1;
      if (typeof b === 'number') return 1;
      return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
    };
    const value = (r: ExpRun, key: string): unknown => (key === 'label' ? (r.label ?? r.id) : key === 'startedAt' ? r.startedAt : key.startsWith('params.') ? r.params[key.slice(7)] : r.metrics[key.slice(8)]);
    const reference = (key: string, dir: 1 | -1): string[] =>
      many
        .map((r, i) => ({ r, i, v: value(r, key) }))
        .sort((x, y) => {
          const xm = x.v === undefined ? 1 : 0;
          const ym = y.v === undefined ? 1 : 0;
          return xm - ym || (xm ? 0 : dir * cmp(x.v, y.v)) || x.i - y.i;
        })
        .map((x) => x.r.id);
    for (const key of ['params.mixed', 'params.model', 'metrics.auc', 'label', 'startedAt'])
      for (const dir of [1, -1] as const) {
        assert.deepEqual(sortRuns(many, key, dir).map((r) => r.id), reference(key, dir), `${key} ${dir}`);
        // Filtered and sorted (the cached permutation, filtered) is the same as sorting the filtered runs.
        const pred = parseFilter('params.model != "rf"');
        const v = computeView(many, collectColumns(many), { predicate: pred, sort: { key, dir }, aggregate: 'mean', expanded: new Set(), onlyDiffering: false });
        assert.deepEqual(v.runs.map((r) => r.id), reference(key, dir).filter((id) => many[Number(id)].params.model !== 'rf'));
        assert.deepEqual(v.rows.map((r) => (r.kind === 'run' ? r.run.id : '')), v.runs.map((r) => r.id));
      }
    // Missing values stay last in both directions, and equal values keep the host order.
    assert.deepEqual(sortRuns(runs, 'metrics.train.loss', -1).map((r) => r.id), ['1', '2', '3']);
    assert.deepEqual(sortRuns(runs, 'params.lr', -1).map((r) => r.id), ['2', '1', '3']);
  });

  it('groups with mean / max / last and hides equal columns', () => {
    const v = computeView(runs, cols, { predicate: () => true, groupBy: 'params.model', aggregate: 'mean', expanded: new Set(['string:xgb']), onlyDiffering: false });
    assert.deepEqual(v.rows.map((r) => (r.kind === 'group' ? `g:${r.value}:${r.runs.length}` : r.run.id)), ['g:logreg:1', 'g:xgb:2', '1', '2']);
    const xgb = v.rows[1];
    assert.ok(xgb.kind === 'group');
    assert.equal(xgb.agg.get('metrics.evaluate.auc'), (0.91 + 0.79) / 2);
    assert.equal(aggregate([0.5, 0.9, undefined], 'max'), 0.9);
    assert.equal(aggregate(['a', 'a'], 'mean'), 'a');
    assert.equal(aggregate(['a', 'b'], 'mean'), '2 values');
    const last = computeView(runs, cols, { predicate: () => true, groupBy: 'params.model', aggregate: 'last', expanded: new Set(), onlyDiffering: false });
    const g = last.rows.find((r) => r.kind === 'group' && r.value === 'xgb');
    assert.ok(g && g.kind === 'group');
    assert.equal(g.agg.get('params.lr'), 0.3, 'last = the newest run (run 2 started later)');
    const two = computeView(runs, cols, { predicate: parseFilter('params.model == "xgb"'), aggregate: 'mean', expanded: new Set(), onlyDiffering: true });
    assert.deepEqual(two.columns.map((c) => c.key), ['params.early', 'params.lr', 'metrics.evaluate.auc', 'metrics.train.loss']);
    assert.equal(two.hiddenColumns, 2);
    assert.equal(differs(runs.slice(0, 1), 'params.lr'), false);
  });
  it('formats deltas with their sign', () => {
    assert.equal(formatDelta(0.0123456), '+0.012');
    assert.equal(formatDelta(-0.00001234), '−1.2e-5');
    assert.equal(formatDelta(-2), '−2');
    assert.equal(formatDelta(0), '±0');
  });
});
