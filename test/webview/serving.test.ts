/**
 * The Serving metrics panel's built bundle in headless Chromium under the extension's CSP: plots p50/p95/p99,
 * rps and error rate per deployment and revision with SLO lines, scrolls its window, pauses, keeps memory
 * bounded, ignores malformed host messages and never executes hostile strings. Needs `node esbuild.mjs`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { HostToServing, ServingPoint } from '../../webviews/src/protocol/serving';
import { launchBrowser, openPanel, unavailableReason, XSS_CORPUS, type PanelPage } from './harness';
import { measureCpu } from './serving-cpu';

/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const window: any;

const skip = unavailableReason('serving');
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);

const config: HostToServing = {
  type: 'config',
  deployments: [{ name: 'churn-api', slo: { p95LatencyMs: 100, errorRate: 0.01 }, source: 'scraping http://127.0.0.1:8080/metrics' }],
  windowMs: 60_000,
  intervalMs: 1000,
};

function points(from: number, n: number, step = 1000, base = 20): ServingPoint[] {
  return Array.from({ length: n }, (_x, i) => [from + i * step, base + (i % 5), base * 3 + (i % 7), base * 5, 40 + (i % 3), i % 10 === 0 ? 0.02 : 0] as ServingPoint);
}

type View = { paused: boolean; draws: number; latest: number; deployments: { name: string; error?: string; revisions: { revision: string; role: string; points: number; first: number; last: ServingPoint }[]; xMin: number; xMax: number; latencySeries: string[]; sloLatency: number[]; sloErrors: number[]; plotted: number[] }[] };
const view = (p: PanelPage): Promise<View> => p.page.evaluate(() => document.getElementById('root').servingView());

/** Waits until the panel has drawn what it was sent (redraws are coalesced to one a second). */
async function settle(p: PanelPage): Promise<void> {
  await p.page.evaluate(() => new Promise((r: any) => window.requestAnimationFrame(() => window.requestAnimationFrame(r))));
  await p.page.waitForFunction(() => !document.getElementById('root').servingView().pending);
}

describe('serving metrics panel (headless Chromium)', { skip }, () => {
  let browser: Browser;
  before(async () => (browser = await launchBrowser()));
  after(() => browser?.close());

  it('plots latency quantiles, rps and error rate per revision with SLO lines (dark and light)', async () => {
    const p = await openPanel(browser, { panel: 'serving', theme: 'dark', viewport: { width: 1200, height: 640 } });
    try {
      await p.waitForPosted((m) => m.type === 'ready');
      await p.send(config);
      await p.send({ type: 'samples', replace: true, series: [{ deployment: 'churn-api', revision: 'r1', role: 'stable', points: points(T0, 50) }, { deployment: 'churn-api', revision: 'r2', role: 'canary', points: points(T0 + 20_000, 30, 1000, 35) }] });
      await settle(p);
      const v = await view(p);
      const d = v.deployments[0];
      assert.equal(d.name, 'churn-api');
      assert.deepEqual(d.revisions.map((r) => [r.revision, r.role, r.points]), [['r1', 'stable', 50], ['r2', 'canary', 30]]);
      assert.deepEqual(d.latencySeries, ['r1 p50', 'r1 p95', 'r1 p99', 'r2 p50', 'r2 p95', 'r2 p99']);
      assert.deepEqual(d.sloLatency, [100]);
      assert.deepEqual(d.sloErrors, [1], 'error-rate SLO drawn in percent');
      assert.deepEqual(d.plotted, [50, 50, 50], 'the revisions aligned on their 50 time stamps, in each chart');
      // Hovering a chart shows the values at that time in all three legends (the cursor is synced).
      const box = (await p.page.locator('.srv-cell .u-over').first().boundingBox())!;
      await p.page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
      await p.page.waitForFunction(() => [...document.querySelectorAll('.srv-cell')].every((c: any) => /\d/.test(c.querySelectorAll('.u-legend .u-value')[1]?.textContent ?? '')));
      // A click on a legend entry hides that line.
      const entry = p.page.locator('.srv-cell .u-legend tr.u-series', { hasText: 'r2 p99' });
      await entry.click();
      assert.match((await entry.getAttribute('class')) ?? '', /u-off/);
      await entry.click();
      assert.doesNotMatch((await entry.getAttribute('class')) ?? '', /u-off/);
      await p.page.mouse.move(0, 0);
      assert.equal(d.xMax, T0 + 49_000);
      assert.equal(d.xMin, T0 + 49_000 - 60_000);
      await p.screenshot('docs/screenshots/serving-dark.png');
      await p.setTheme('light');
      await settle(p);
      await p.page.waitForTimeout(200);
      await p.screenshot('docs/screenshots/serving-light.png');
      await p.expectClean();
    } finally {
      await p.close();
    }
  });

  it('scrolls the window, keeps memory bounded, and pauses', async () => {
    const p = await openPanel(browser, { panel: 'serving', theme: 'dark' });
    try {
      await p.waitForPosted((m) => m.type === 'ready');
      await p.send({ ...config, intervalMs: 100 });
      // Two hours at 10 points a second, sent in batches.
      const total = 72_000;
      for (let i = 0; i < total; i += 6000) await p.send({ type: 'samples', replace: false, series: [{ deployment: 'churn-api', revision: 'r1', role: 'stable', points: points(T0 + i * 100, 6000, 100) }] });
      await settle(p);
      let v = await view(p);
      const r = v.deployments[0].revisions[0];
      const last = T0 + (total - 1) * 100;
      assert.equal(r.last[0], last);
      assert.ok(r.points <= 604 && r.points >= 600, `${r.points} points held for a 60 s window at 10/s`);
      assert.ok(r.first >= last - 60_000 - 300, 'nothing older than the window (and a point or two before it)');
      assert.equal(v.deployments[0].xMin, last - 60_000);

      // The window can be widened; the choice is saved.
      await p.page.selectOption('select', String(5 * 60_000));
      assert.deepEqual(await p.waitForPosted((m) => m.type === 'setWindow'), { type: 'setWindow', windowMs: 300_000 });
      assert.equal(((await p.state()) as { windowMs: number }).windowMs, 300_000);

      // Pause: the host is told, the charts freeze while data keeps arriving, resume catches up.
      await p.page.click('vscode-button:has-text("Pause")');
      assert.deepEqual(await p.waitForPosted((m) => m.type === 'pause'), { type: 'pause', paused: true });
      await settle(p);
      const frozen = await view(p);
      await p.send({ type: 'samples', replace: false, series: [{ deployment: 'churn-api', revision: 'r1', role: 'stable', points: points(last + 100, 50, 100) }] });
      await settle(p);
      v = await view(p);
      assert.equal(v.paused, true);
      assert.equal(v.draws, frozen.draws, 'no redraw while paused');
      assert.equal(v.deployments[0].xMax, frozen.deployments[0].xMax);
      // A narrower panel while paused: the frozen charts shrink, still without new data.
      const chartWidth = (): Promise<number> => p.page.$eval('.srv-cell .uplot', (e: any) => e.getBoundingClientRect().width);
      const wide = await chartWidth();
      const size = p.page.viewportSize()!;
      await p.page.setViewportSize({ width: Math.round(size.width * 0.6), height: size.height });
      await p.page.waitForFunction((w: number) => document.querySelector('.srv-cell .uplot').getBoundingClientRect().width < w - 50, wide);
      v = await view(p);
      assert.equal(v.draws, frozen.draws, 'resized, not redrawn with new data');
      assert.equal(v.deployments[0].xMax, frozen.deployments[0].xMax);
      await p.page.setViewportSize(size);
      await p.page.click('vscode-button:has-text("Resume")');
      assert.deepEqual(await p.waitForPosted((m) => m.type === 'pause' && m.paused === false), { type: 'pause', paused: false });
      await settle(p);
      v = await view(p);
      assert.equal(v.deployments[0].xMax, last + 50 * 100);
      await p.expectClean();
    } finally {
      await p.close();
    }
  });

  it('restores pause and window after a reload, and shows source errors', async () => {
    const p = await openPanel(browser, { panel: 'serving', theme: 'high-contrast', state: { v: 1, paused: true, windowMs: 900_000 } });
    try {
      await p.waitForPosted((m) => m.type === 'ready');
      assert.equal(await p.page.inputValue('select'), '900000');
      assert.equal((await p.page.locator('vscode-button').first().textContent())?.trim(), 'Resume');
      await p.send(config);
      await p.send({ type: 'sourceError', deployment: 'churn-api', revision: 'r1', message: 'cannot scrape http://127.0.0.1:8080/metrics: connect ECONNREFUSED. Is the server running?' });
      await p.page.waitForSelector('.srv-error:has-text("ECONNREFUSED")');
      await p.expectClean();
    } finally {
      await p.close();
    }
  });

  it('ignores malformed host messages', async () => {
    const p = await openPanel(browser, { panel: 'serving', theme: 'dark' });
    try {
      await p.waitForPosted((m) => m.type === 'ready');
      await p.send(config);
      await p.send({ type: 'samples', replace: true, series: [{ deployment: 'churn-api', revision: 'r1', role: 'stable', points: points(T0, 5) }] });
      for (const bad of [null, 7, 'samples', { type: 'samples' }, { type: 'samples', replace: false, series: [{ deployment: 'churn-api', revision: 'r1', role: 'stable', points: [[1, 2, 3]] }] }, { type: 'samples', replace: false, series: [{ deployment: 'x', revision: 'r', role: 'boss', points: [] }] }, { type: 'samples', replace: false, series: [{ deployment: 'churn-api', revision: 'r1', role: 'stable', points: [['t', 1, 1, 1, 1, 1]] }] }, { type: 'config', deployments: [], windowMs: -1, intervalMs: 1000 }, { type: 'sourceError' }, { type: '__proto__' }]) {
        await p.send(bad);
      }
      await settle(p);
      const v = await view(p);
      assert.equal(v.deployments.length, 1);
      assert.equal(v.deployments[0].revisions[0].points, 5);
      assert.equal(p.errors.length, 0, p.errors.join('\n'));
      await p.expectClean();
    } finally {
      await p.close();
    }
  });

  it('never executes hostile deployment names, revisions, sources and errors', async () => {
    const p = await openPanel(browser, { panel: 'serving', theme: 'dark' });
    try {
      await p.waitForPosted((m) => m.type === 'ready');
      const names = XSS_CORPUS.map((x) => x.slice(0, 256));
      await p.send({ type: 'config', windowMs: 60_000, intervalMs: 1000, deployments: names.map((n) => ({ name: n, slo: { p95LatencyMs: 50 }, source: n })) });
      await p.send({ type: 'samples', replace: true, series: names.map((n) => ({ deployment: n, revision: n, role: 'canary', points: points(T0, 3) })) });
      for (const n of names) await p.send({ type: 'sourceError', deployment: n, revision: n, message: n });
      await p.send({ type: 'notice', level: 'error', text: names.join(' ') });
      await settle(p);
      const heads: string[] = await p.page.$$eval('.srv-deployment h2', (els: any[]) => els.map((e) => e.textContent));
      assert.deepEqual(heads, names, 'names shown as text');
      // Revision names also label the charts' legends (uPlot sets them as text).
      const labels: string[] = await p.page.$$eval('.srv-deployment .u-legend div.u-label', (els: any[]) => els.map((e) => e.textContent));
      for (const n of names) assert.ok(labels.includes(`${n} (canary)`) && labels.includes(`${n} p95`), `legend shows ${JSON.stringify(n)}`);
      await p.expectClean();
    } finally {
      await p.close();
    }
  });

  it('uses little CPU at 10 updates a second', async () => {
    const p = await openPanel(browser, { panel: 'serving', theme: 'dark' });
    try {
      await p.waitForPosted((m) => m.type === 'ready');
      await p.send({ ...config, intervalMs: 100, deployments: [{ name: 'churn-api', slo: { p95LatencyMs: 100, errorRate: 0.01 } }] });
      const cpu = await measureCpu(p, 10, 8_000);
      console.log(`serving panel: ${(cpu * 100).toFixed(1)}% of a core at 10 updates/s (2 revisions, 60 s window)`);
      // The < 5% target is the bench's (bench/panels-lineage.ts, on a quiet machine); this bound catches a regression
      // such as redrawing every chart per message or unbounded series.
      assert.ok(cpu < 0.5, `${(cpu * 100).toFixed(1)}%`);
      await p.expectClean();
    } finally {
      await p.close();
    }
  });
});

