/**
 * The Experiments panel's built bundle (dist/webviews/experiments.js) in headless Chromium, in the page the
 * extension's own HTML builder makes (same CSP, nonce), with a stub acquireVsCodeApi:
 * fixtures render, sort / filter / group / only-differing columns / baseline deltas work, interactions
 * post the right messages, charts draw, malformed host messages are ignored, hostile strings stay text
 * and the CSP holds, state survives a reload. Screenshots (light, dark) go to docs/screenshots/.
 *
 *   node esbuild.mjs && node --import tsx --test test/webview/experiments.test.ts
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { ExpRun } from '../../webviews/src/protocol/experiments';
import { makeRuns, makeSeries } from './experiments-fixtures';
import { launchBrowser, openPanel, REPO_ROOT, unavailableReason, XSS_CORPUS, type PanelPage } from './harness';

/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const window: any;

const skip = unavailableReason('experiments');
const SHOTS = join(REPO_ROOT, 'docs', 'screenshots');

/** Run ids of the rendered rows, top to bottom. */
const rowIds = (p: PanelPage): Promise<string[]> =>
  p.page.evaluate(() => [...document.querySelectorAll('.exp-row:not([hidden])')].sort((a: any, b: any) => a.offsetTop - b.offsetTop).map((r: any) => r.dataset.runId ?? `group:${r.dataset.group}`));
const headerKeys = (p: PanelPage): Promise<string[]> => p.page.evaluate(() => [...document.querySelectorAll('.exp-head [data-sort-key]')].map((b: any) => b.dataset.sortKey));
const countText = (p: PanelPage): Promise<string> => p.page.evaluate(() => document.querySelector('.exp-count').textContent);
/** The text of a row's cell for a column key (via the header's position). */
const cellText = (p: PanelPage, rowIndex: number, key: string): Promise<string> =>
  p.page.evaluate(
    ({ rowIndex, key }: { rowIndex: number; key: string }) => {
      const heads = [...document.querySelectorAll('.exp-head .exp-hcell')];
      const col = heads.findIndex((hc: any) => hc.querySelector(`[data-sort-key="${key}"]`));
      const row = [...document.querySelectorAll('.exp-row:not([hidden])')].sort((a: any, b: any) => a.offsetTop - b.offsetTop)[rowIndex];
      return row ? row.children[col]?.textContent ?? '' : '';
    },
    { rowIndex, key },
  );
const settle = (p: PanelPage): Promise<void> => p.page.evaluate(() => new Promise<void>((r) => window.requestAnimationFrame(() => setTimeout(r, 0))));
async function setFilter(p: PanelPage, text: string): Promise<void> {
  await p.page.fill('#exp-filter input', text);
  await settle(p);
}
async function setSelect(p: PanelPage, id: string, value: string): Promise<void> {
  await p.page.evaluate(
    ({ id, value }: { id: string; value: string }) => {
      const el = document.getElementById(id);
      el.value = value;
      el.dispatchEvent(new Event('change', { bubbles: true }));
    },
    { id, value },
  );
  await settle(p);
}
async function loaded(p: PanelPage, runs: ExpRun[]): Promise<void> {
  await p.waitForPosted((m) => m.type === 'ready');
  await p.send({ type: 'runs', replace: true, runs });
  await settle(p);
}
const fmt = (v: number): string => (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4))));

describe('Experiments panel (headless Chromium)', { skip }, () => {
  let browser: Browser;
  const runs = makeRuns(300, { params: 4, metrics: 5 });
  before(async () => {
    browser = await launchBrowser();
    mkdirSync(SHOTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
  });

  it('says ready, renders the runs with param and metric columns, and restores nothing it was not given', async () => {
    const p = await openPanel(browser, { panel: 'experiments', theme: 'dark' });
    try {
      const ready = await p.waitForPosted((m) => m.type === 'ready');
      assert.equal(ready.protocol, 1);
      assert.equal(ready.state, undefined);
      await p.send({ type: 'runs', replace: true, runs });
      await settle(p);
      assert.equal(await countText(p), '300 runs');
      assert.deepEqual((await rowIds(p)).slice(0, 3), runs.slice(0, 3).map((r) => r.id), 'host order (newest first) is kept');
      const keys = await headerKeys(p);
      for (const k of ['label', 'status', 'params.model', 'params.lr', 'metrics.evaluate.auc', 'metrics.train.loss']) assert.ok(keys.includes(k), `column ${k}`);
      assert.equal(await cellText(p, 0, 'params.model'), String(runs[0].params.model));
      // Virtualized: 300 runs, a few dozen rows in the DOM.
      const inDom = await p.page.evaluate(() => document.querySelectorAll('.exp-row:not([hidden])').length);
      assert.ok(inDom < 80, `${inDom} rows rendered`);
      // Scrolling renders the rows that come into view.
      await p.page.evaluate(() => (document.getElementById('exp-grid').scrollTop = 24 * 200));
      await settle(p);
      assert.ok((await rowIds(p)).includes(runs[205].id));
      // Live update: an upsert changes one run's status, a new run appears first, a removal drops one.
      const changed = { ...runs[0], status: 'running' as const, live: true };
      const fresh = { ...runs[1], id: '20261201-000000-ffffff', label: 'fresh run' };
      await p.send({ type: 'runs', replace: false, runs: [changed, fresh] });
      await p.send({ type: 'removed', ids: [runs[2].id] });
      await p.page.evaluate(() => (document.getElementById('exp-grid').scrollTop = 0));
      await settle(p);
      const ids = await rowIds(p);
      assert.equal(ids[0], fresh.id);
      assert.ok(!ids.includes(runs[2].id));
      assert.equal(await countText(p), '300 runs');
      assert.match(await cellText(p, 1, 'status'), /running/);
      await p.expectClean();
    } finally {
      await p.close();
    }
  });

  it('sorts by a column, filters by expression with inline errors, groups with an aggregate, hides equal columns, shows baseline deltas', async () => {
    const p = await openPanel(browser, { panel: 'experiments', theme: 'light', viewport: { width: 1440, height: 720 } });
    try {
      await loaded(p, runs);
      // Sort: metrics sort best (highest) first, then ascending, then off.
      await p.page.click('.exp-head [data-sort-key="metrics.evaluate.auc"]');
      await settle(p);
      const byAuc = [...runs].sort((a, b) => b.metrics['evaluate.auc'] - a.metrics['evaluate.auc']);
      assert.equal((await rowIds(p))[0], byAuc[0].id);
      await p.page.click('.exp-head [data-sort-key="metrics.evaluate.auc"]');
      await settle(p);
      assert.equal((await rowIds(p))[0], byAuc[byAuc.length - 1].id);
      // Sorting a param column: strings ascending.
      await p.page.click('.exp-head [data-sort-key="params.model"]');
      await settle(p);
      assert.equal(await cellText(p, 0, 'params.model'), 'logreg');

      // Filter.
      const expected = runs.filter((r) => r.metrics['evaluate.auc'] > 0.8 && r.params.model === 'xgb');
      assert.ok(expected.length > 0 && expected.length < runs.length);
      await setFilter(p, 'metrics.evaluate.auc > 0.8 && params.model == "xgb"');
      assert.equal(await countText(p), `${expected.length} of 300 runs`);
      for (const id of await rowIds(p)) assert.ok(expected.some((r) => r.id === id), `${id} passes the filter`);
      assert.equal(await p.page.isHidden('#exp-filter-error'), true);
      // A broken filter: inline error with a caret under the problem; the last good filter stays applied.
      await setFilter(p, 'metrics.evaluate.auc > && params.model == "xgb"');
      assert.equal(await p.page.isVisible('#exp-filter-error'), true);
      const err = await p.page.textContent('#exp-filter-error');
      assert.match(err ?? '', /expected a value/);
      assert.match(err ?? '', /\n {23}\^\^/, 'caret under "&&"');
      assert.equal(await countText(p), `${expected.length} of 300 runs`);
      await setFilter(p, 'bogus > 1');
      assert.match((await p.page.textContent('#exp-filter-error')) ?? '', /unknown name "bogus": use params.NAME, metrics.NAME/);
      await setFilter(p, 'params.model ~ "LOG" || (metrics.train.loss < 0.1 and not params.lr == 0.01)');
      const expected2 = runs.filter((r) => String(r.params.model).includes('log') || (r.metrics['train.loss'] < 0.1 && r.params.lr !== 0.01));
      assert.equal(await countText(p), `${expected2.length} of 300 runs`);
      await setFilter(p, '');
      assert.equal(await countText(p), '300 runs');

      // Group by model, mean then max of auc.
      await setSelect(p, 'exp-group', 'params.model');
      let ids = await rowIds(p);
      assert.deepEqual(ids, ['group:string:logreg', 'group:string:mlp', 'group:string:rf', 'group:string:xgb']);
      const xgb = runs.filter((r) => r.params.model === 'xgb').map((r) => r.metrics['evaluate.auc']);
      const mean = xgb.reduce((s, v) => s + v, 0) / xgb.length;
      assert.equal(await cellText(p, 3, 'metrics.evaluate.auc'), fmt(mean));
      assert.match(await cellText(p, 3, 'label'), new RegExp(`model = xgb · ${xgb.length} runs`));
      await setSelect(p, 'exp-agg', 'max');
      assert.equal(await cellText(p, 3, 'metrics.evaluate.auc'), fmt(Math.max(...xgb)));
      // Expand a group: its runs follow it.
      await p.page.click('.exp-row[data-group="string:rf"] .exp-cell:nth-child(3)');
      await settle(p);
      ids = await rowIds(p);
      assert.equal(ids[2], 'group:string:rf');
      assert.equal(ids[3], runs.find((r) => r.params.model === 'rf')!.id);
      await setSelect(p, 'exp-group', '');

      // Only columns that differ: `seed` is 42 in every run.
      assert.ok((await headerKeys(p)).includes('params.seed'));
      await p.page.click('#exp-diff');
      await settle(p);
      assert.ok(!(await headerKeys(p)).includes('params.seed'));
      assert.ok((await headerKeys(p)).includes('params.lr'));
      assert.match(await countText(p), /1 equal columns hidden/);
      await p.page.click('#exp-diff');
      await settle(p);

      // Baseline: pin the first row; the others show value and delta.
      await p.page.click('.exp-head [data-sort-key="params.model"]'); // descending, then off (third click)
      await p.page.click('.exp-head [data-sort-key="params.model"]');
      await settle(p);
      assert.equal(await p.page.evaluate(() => document.querySelector('.exp-head [aria-sort]')), null, 'unsorted');
      const [id0, id1] = await rowIds(p);
      const r0 = runs.find((r) => r.id === id0)!;
      const r1 = runs.find((r) => r.id === id1)!;
      await p.page.click(`.exp-row[data-run-id="${id0}"] .exp-pin`);
      await settle(p);
      const d = r1.metrics['evaluate.auc'] - r0.metrics['evaluate.auc'];
      const sign = d > 0 ? '+' : d < 0 ? '−' : '±';
      const cell = await cellText(p, 1, 'metrics.evaluate.auc');
      assert.ok(cell.startsWith(fmt(r1.metrics['evaluate.auc'])), cell);
      assert.ok(cell.includes(`${sign}${d === 0 ? '0' : String(Number(Math.abs(d).toPrecision(2)))}`), `delta in "${cell}"`);
      assert.equal(await cellText(p, 0, 'metrics.evaluate.auc'), fmt(r0.metrics['evaluate.auc']), 'no delta on the baseline itself');
      assert.equal(await p.page.getAttribute(`.exp-row[data-run-id="${id0}"] .exp-pin`, 'aria-pressed'), 'true');
      await p.screenshot(join(SHOTS, 'experiments-light.png'));
      await p.expectClean();
    } finally {
      await p.close();
    }
  });

  it('sorts and filters a wide table scrolled right or down: the rows in view are rewritten in place, the header keeps the focus', async () => {
    const wide = makeRuns(2000, { params: 20, metrics: 30 });
    const p = await openPanel(browser, { panel: 'experiments', theme: 'dark', viewport: { width: 1200, height: 700 } });
    try {
      await loaded(p, wide);
      await p.page.evaluate(() => (window.__rowsBefore = [...document.querySelectorAll('.exp-row')]));
      // The header is far right: Playwright scrolls to it and clicks in the same frame.
      await p.page.click('.exp-head [data-sort-key="metrics.evaluate.m29"]');
      await settle(p);
      const byM29 = [...wide].sort((a, b) => b.metrics['evaluate.m29'] - a.metrics['evaluate.m29'] || wide.indexOf(a) - wide.indexOf(b));
      assert.equal(await cellText(p, 0, 'metrics.evaluate.m29'), fmt(byM29[0].metrics['evaluate.m29']));
      assert.equal(await cellText(p, 5, 'metrics.evaluate.m29'), fmt(byM29[5].metrics['evaluate.m29']));
      assert.deepEqual((await rowIds(p)).slice(0, 6), byM29.slice(0, 6).map((r) => r.id));
      // The row elements are the same ones (updated, not rebuilt), and the clicked button still has the focus.
      assert.equal(await p.page.evaluate(() => window.__rowsBefore.length > 10 && window.__rowsBefore.every((el: any) => el.isConnected)), true);
      assert.equal(await p.page.evaluate(() => document.activeElement?.dataset?.sortKey), 'metrics.evaluate.m29');
      assert.equal(await p.page.getAttribute('.exp-head [aria-sort]', 'aria-sort'), 'descending');
      // Enter on the focused header sorts the other way (keyboard).
      await p.page.keyboard.press('Enter');
      await settle(p);
      assert.equal(await p.page.getAttribute('.exp-head [aria-sort]', 'aria-sort'), 'ascending');
      assert.equal((await rowIds(p))[0], [...wide].sort((a, b) => a.metrics['evaluate.m29'] - b.metrics['evaluate.m29'])[0].id);
      // Back to the left: the cells of the first columns show the sorted runs.
      await p.page.evaluate(() => (document.getElementById('exp-grid').scrollLeft = 0));
      await settle(p);
      const asc = (await rowIds(p))[0];
      const first = wide.find((r) => r.id === asc)!;
      assert.equal(await cellText(p, 0, 'label'), first.label ?? first.id);
      assert.equal(await cellText(p, 0, 'params.model'), String(first.params.model));
      // Scrolled far down, a filter that leaves a few runs shows them (the scroll position is clamped).
      await p.page.evaluate(() => (document.getElementById('exp-grid').scrollTop = 24 * 1500));
      await settle(p);
      await setFilter(p, 'params.p05 > 99');
      await settle(p);
      const few = wide.filter((r) => (r.params.p05 as number) > 99);
      assert.ok(few.length > 0 && few.length < 40, `${few.length} runs`);
      const ids = await rowIds(p);
      assert.deepEqual([...ids].sort(), few.map((r) => r.id).sort());
      await p.expectClean();
    } finally {
      await p.close();
    }
  });

  it('posts selection, logs, spec and run requests from mouse and keyboard', async () => {
    const p = await openPanel(browser, { panel: 'experiments', theme: 'dark' });
    try {
      await loaded(p, runs);
      await p.clearPosted();
      await p.page.click(`.exp-row[data-run-id="${runs[0].id}"] .exp-select`);
      assert.deepEqual((await p.waitForPosted((m) => m.type === 'selection')).ids, [runs[0].id]);
      await p.page.click(`.exp-row[data-run-id="${runs[2].id}"] .exp-select`);
      const posted = await p.posted();
      assert.deepEqual(posted.filter((m) => m.type === 'selection').pop()!.ids, [runs[0].id, runs[2].id]);
      await p.page.hover(`.exp-row[data-run-id="${runs[1].id}"]`);
      await p.page.click(`.exp-row[data-run-id="${runs[1].id}"] .exp-logs`);
      assert.deepEqual(await p.waitForPosted((m) => m.type === 'openLogs'), { type: 'openLogs', runId: runs[1].id });
      await p.page.click(`.exp-row[data-run-id="${runs[1].id}"] .exp-spec`);
      assert.deepEqual(await p.waitForPosted((m) => m.type === 'openSpec'), { type: 'openSpec', runId: runs[1].id });
      await p.page.click(`.exp-row[data-run-id="${runs[1].id}"] .exp-name`);
      assert.deepEqual(await p.waitForPosted((m) => m.type === 'openRun'), { type: 'openRun', runId: runs[1].id });

      // Keyboard only: Tab reaches the table; arrows move, Space selects, Enter opens logs, S the spec, B pins.
      await p.clearPosted();
      await p.page.focus('#exp-grid');
      await p.page.keyboard.press('Home');
      await p.page.keyboard.press('ArrowDown');
      await p.page.keyboard.press('ArrowDown');
      await p.page.keyboard.press('ArrowDown');
      await p.page.keyboard.press('Space');
      assert.deepEqual((await p.waitForPosted((m) => m.type === 'selection')).ids, [runs[0].id, runs[2].id, runs[3].id]);
      await p.page.keyboard.press('Enter');
      assert.deepEqual(await p.waitForPosted((m) => m.type === 'openLogs'), { type: 'openLogs', runId: runs[3].id });
      await p.page.keyboard.press('s');
      assert.deepEqual(await p.waitForPosted((m) => m.type === 'openSpec'), { type: 'openSpec', runId: runs[3].id });
      await p.page.keyboard.press('b');
      await settle(p);
      assert.equal(await p.page.getAttribute(`.exp-row[data-run-id="${runs[3].id}"] .exp-pin`, 'aria-pressed'), 'true');
      assert.equal(await p.page.getAttribute('#exp-grid', 'aria-activedescendant'), 'exp-row-3');
      await p.page.keyboard.press('End');
      await settle(p);
      assert.ok((await rowIds(p)).includes(runs[runs.length - 1].id), 'End scrolls to the last run');

      // The host selects (Compare from the Runs view): the panel applies it and reports it back.
      await p.clearPosted();
      await p.send({ type: 'select', ids: [runs[7].id] });
      assert.deepEqual((await p.waitForPosted((m) => m.type === 'selection')).ids, [runs[7].id]);
      await p.page.click('#exp-clear');
      assert.deepEqual((await p.waitForPosted((m) => m.type === 'selection', { from: 1 })).ids, []);
      await p.expectClean();
    } finally {
      await p.close();
    }
  });

  it('draws metric series (live), a scatter of two columns and parallel coordinates with ECharts', async () => {
    const p = await openPanel(browser, { panel: 'experiments', theme: 'dark', viewport: { width: 1440, height: 760 } });
    try {
      await loaded(p, runs);
      await p.send({ type: 'select', ids: [runs[0].id, runs[1].id] });
      await p.clearPosted();
      await p.page.click('#exp-open-charts');
      const req = await p.waitForPosted((m) => m.type === 'requestSeries');
      assert.deepEqual(req.ids, [runs[0].id, runs[1].id]);
      await p.send({ type: 'series', runId: runs[0].id, series: makeSeries(runs[0].id, 50), live: false });
      await p.send({ type: 'series', runId: runs[1].id, series: makeSeries(runs[1].id, 20, 7), live: true });
      const chart = async (): Promise<Record<string, string>> => {
        await p.page.waitForTimeout(150);
        return p.page.evaluate(() => ({ ...document.getElementById('exp-chart').dataset }));
      };
      let c = await chart();
      assert.equal(c.chart, 'lines');
      assert.equal(c.seriesCount, '2');
      assert.equal(c.pointCount, String(50 + 20));
      // Live: more points of the running run arrive and the chart follows.
      await p.send({ type: 'series', runId: runs[1].id, series: makeSeries(runs[1].id, 30, 7), live: true });
      c = await chart();
      assert.equal(c.pointCount, String(50 + 30));
      // Another series of the same files.
      await setSelect(p, 'exp-series-name', 'train/loss.csv: val_loss');
      c = await chart();
      assert.match((await p.page.getAttribute('#exp-chart', 'aria-label')) ?? '', /val_loss over step/);
      // The canvas has drawn something (more than one colour).
      const colours = await p.page.evaluate(() => {
        const cv = document.querySelector('#exp-chart canvas');
        const data = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
        const seen = new Set();
        for (let i = 0; i < data.length; i += 4 * 97) seen.add(`${data[i]},${data[i + 1]},${data[i + 2]},${data[i + 3]}`);
        return seen.size;
      });
      assert.ok(colours > 3, `${colours} colours on the canvas`);
      await p.screenshot(join(SHOTS, 'experiments-dark.png'));

      await p.page.click('#exp-tab-scatter');
      c = await chart();
      assert.equal(c.chart, 'scatter');
      assert.equal(c.pointCount, String(runs.length));
      await setSelect(p, 'exp-scatter-y', 'metrics.evaluate.f1');
      assert.match((await p.page.getAttribute('#exp-chart', 'aria-label')) ?? '', /metrics.evaluate.f1 against params\.depth/);
      await setFilter(p, 'params.model == "rf"');
      c = await chart();
      assert.equal(c.pointCount, String(runs.filter((r) => r.params.model === 'rf').length), 'the scatter follows the filter');

      await p.page.click('#exp-tab-parallel');
      c = await chart();
      assert.equal(c.chart, 'parallel');
      assert.equal(c.pointCount, String(runs.filter((r) => r.params.model === 'rf').length));
      await p.page.click('#exp-close-charts');
      assert.equal(await p.page.isHidden('#exp-charts'), true);
      await p.expectClean();
    } finally {
      await p.close();
    }
  });

  it('ignores malformed messages from the host', async () => {
    const p = await openPanel(browser, { panel: 'experiments', theme: 'dark' });
    try {
      await loaded(p, runs.slice(0, 20));
      const bad: unknown[] = [
        null,
        'runs',
        42,
        [],
        { type: 'runs' },
        { type: 'runs', replace: true, runs: 'nope' },
        { type: 'runs', replace: true, runs: [{ id: 'x' }] },
        { type: 'runs', replace: true, runs: [{ ...runs[0], status: 'exploded' }] },
        { type: 'runs', replace: true, runs: [{ ...runs[0], metrics: { auc: 'high' } }] },
        { type: 'runs', replace: true, runs: [{ ...runs[0], params: { lr: { nested: 1 } } }] },
        { type: 'runs', replace: true, runs: [{ ...runs[0], id: 'x'.repeat(5000) }] },
        { type: 'removed', ids: [1, 2] },
        { type: 'series', runId: runs[0].id, series: [{ name: 'loss', points: [[0, 'NaN']] }], live: false },
        { type: 'select', ids: 'all' },
        { type: 'notice', level: 'shout', text: 'x' },
        { type: '__proto__' },
        { type: 'toString' },
        { type: 'constructor', ids: [] },
      ];
      for (const m of bad) await p.send(m);
      await settle(p);
      assert.equal(await countText(p), '20 runs', 'nothing changed');
      assert.equal((await rowIds(p))[0], runs[0].id);
      assert.equal(p.consoleMessages.filter((m) => m.includes('ignored a malformed message')).length, bad.length);
      // A good message still works afterwards.
      await p.send({ type: 'runs', replace: true, runs: runs.slice(0, 5) });
      await settle(p);
      assert.equal(await countText(p), '5 runs');
      await p.expectClean();
    } finally {
      await p.close();
    }
  });

  it('shows hostile strings only as text (run names, params, metric names, series, paths, notices) and the CSP holds', async () => {
    const p = await openPanel(browser, { panel: 'experiments', theme: 'dark' });
    try {
      await p.waitForPosted((m) => m.type === 'ready');
      const evil: ExpRun[] = XSS_CORPUS.map((s, i) => ({
        id: `20261125-10000${i % 10}-${(0xabc000 + i).toString(16)}`,
        label: s,
        specName: s,
        status: 'succeeded',
        startedAt: s,
        params: { [s]: s, model: s, lr: i },
        metrics: { [s]: i / 10, 'evaluate.auc': 0.5 + i / 100 },
        gitCommit: s,
        sweep: { name: s, trial: i },
      }));
      await p.send({ type: 'runs', replace: true, runs: evil });
      await p.send({ type: 'notice', level: 'error', text: XSS_CORPUS.join(' ') });
      await settle(p);
      // The strings are there, verbatim, as text.
      const text = await p.page.evaluate(() => document.body.innerText);
      assert.ok(text.includes(XSS_CORPUS[1]), 'the payload is shown as text');
      assert.equal(await p.page.textContent(`.exp-row[data-run-id="${evil[0].id}"] .exp-name`), XSS_CORPUS[0]);
      // Through every view: group by a hostile param, filter on one, errors that echo one, charts with hostile names.
      await setSelect(p, 'exp-group', `params.model`);
      await setSelect(p, 'exp-group', '');
      await setFilter(p, `params.model == ${JSON.stringify(XSS_CORPUS[0])} || params.model ~ "<"`);
      await setFilter(p, XSS_CORPUS[1]);
      assert.equal(await p.page.isVisible('#exp-filter-error'), true);
      await setFilter(p, '');
      await p.send({ type: 'select', ids: evil.map((r) => r.id) });
      await p.page.click('#exp-open-charts');
      for (const r of evil.slice(0, 3)) await p.send({ type: 'series', runId: r.id, series: makeSeries(r.id, 10).map((s) => ({ ...s, name: XSS_CORPUS[2], file: XSS_CORPUS[0], step: XSS_CORPUS[6] })), live: false });
      await p.page.waitForTimeout(200);
      await p.page.click('#exp-tab-scatter');
      await p.page.hover('#exp-chart', { position: { x: 300, y: 150 } });
      await p.page.click('#exp-tab-parallel');
      await p.page.waitForTimeout(300);
      await p.page.click(`.exp-row[data-run-id="${evil[0].id}"] .exp-pin`);
      await p.page.hover(`.exp-row[data-run-id="${evil[1].id}"]`);
      await settle(p);
      await p.expectClean();
      assert.deepEqual(await p.injected(), []);

      // The CSP is really in force: an inline script without the nonce is refused (and reported).
      const ran = await p.page.evaluate(() => {
        const s = document.createElement('script');
        s.textContent = 'window.__inlineRan = true';
        document.body.appendChild(s);
        return window.__inlineRan === true;
      });
      assert.equal(ran, false);
      await p.page.waitForTimeout(100);
      assert.ok((await p.violations()).some((v) => v.startsWith('script-src')), 'the refused inline script is reported');
      const csp = await p.page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
      assert.match(csp ?? '', new RegExp(`script-src 'nonce-${p.nonce}'`));
      assert.doesNotMatch(csp ?? '', /unsafe-eval|unsafe-inline/);
    } finally {
      await p.close();
    }
  });

  it('saves its state and restores it after a reload', async () => {
    const p = await openPanel(browser, { panel: 'experiments', theme: 'dark' });
    let state: any;
    const xgb = runs.filter((r) => r.params.model === 'xgb').sort((a, b) => b.metrics['evaluate.auc'] - a.metrics['evaluate.auc']);
    const [sel, base] = [xgb[0], xgb[2]];
    try {
      await loaded(p, runs);
      await setFilter(p, 'params.model == "xgb"');
      await p.page.click('.exp-head [data-sort-key="metrics.evaluate.auc"]');
      await settle(p);
      await p.page.click(`.exp-row[data-run-id="${sel.id}"] .exp-select`);
      await p.page.click(`.exp-row[data-run-id="${base.id}"] .exp-pin`);
      await p.page.waitForTimeout(200);
      state = await p.state();
      assert.equal(state.filter, 'params.model == "xgb"');
      assert.deepEqual(state.sort, { key: 'metrics.evaluate.auc', dir: -1 });
      assert.deepEqual(state.selected, [sel.id]);
      assert.equal(state.baseline, base.id);
    } finally {
      await p.close();
    }
    // A new page with that state (as VS Code gives getState() after a reload).
    const q = await openPanel(browser, { panel: 'experiments', theme: 'high-contrast', state });
    try {
      const ready = await q.waitForPosted((m) => m.type === 'ready');
      assert.deepEqual((ready.state as any).selected, [sel.id], 'ready carries the saved state to the host');
      await q.send({ type: 'runs', replace: true, runs });
      await settle(q);
      assert.equal(await q.page.inputValue('#exp-filter input'), 'params.model == "xgb"');
      assert.equal((await rowIds(q))[0], xgb[0].id);
      assert.equal(await q.page.getAttribute(`.exp-row[data-run-id="${sel.id}"]`, 'aria-selected'), 'true');
      assert.equal(await q.page.getAttribute(`.exp-row[data-run-id="${base.id}"] .exp-pin`, 'aria-pressed'), 'true');
      // Themed through the variables only: the high-contrast background is the variable's value.
      const bg = await q.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(bg, 'rgb(0, 0, 0)');
      await q.setTheme('light');
      assert.equal(await q.page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(255, 255, 255)');
      await q.expectClean();
    } finally {
      await q.close();
    }
  });
});

declare function getComputedStyle(el: unknown): { backgroundColor: string };
