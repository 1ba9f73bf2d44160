/**
 * The Experiments panel with 10,000 runs x 50 columns, in headless Chromium (the built bundle in the
 * extension's own page and CSP, test/webview/harness.ts). Figures come from performance marks inside the
 * panel (median of --repeat):
 *   - first paint: from the `runs` message (10,000 runs) arriving to the frame after the table rendered,
 *   - page load to ready: from navigation start to the panel's `ready` (bundle loaded, parsed, UI built),
 *   - sort: a header click to the frame after the re-sorted table rendered (a metric column, then a param).
 *     The header is scrolled into view first and the page left to settle, as a user scrolls to a column
 *     before clicking it (Playwright would otherwise scroll and click in one frame, which no user does),
 *   - filter: an expression typed into the filter box to the frame after the filtered table rendered.
 * The panel's marks start at the input event's time stamp (when the browser got the click or keystroke,
 * not when the handler began) and end in a task after the next frame was painted and committed (rAF, then
 * a timeout). Raster and display come after that, so each interaction is also measured by the browser's
 * Event Timing as INP does: the longest of the interaction's events (pointerdown ... click, keydown ...
 * input), each from its time stamp to the presentation of the next frame (8 ms granularity; events
 * under 16 ms are not reported).
 * Targets (issue 6): first paint <= 300 ms, sort/filter <= 50 ms.
 *
 *   node esbuild.mjs --production && npx tsx bench/panels.ts [--runs 10000] [--params 20] [--metrics 30] [--repeat 5]
 */
import { cpus, loadavg } from 'node:os';
import { performance as nodePerf } from 'node:perf_hooks';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { makeRuns } from '../test/webview/experiments-fixtures';
import { launchBrowser, openPanel, unavailableReason, WEBVIEW_DIST } from '../test/webview/harness';

/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const window: any;
declare const performance: any;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const f = (ms: number): string => `${ms.toFixed(1)} ms`;

async function main(): Promise<void> {
  const why = unavailableReason('experiments');
  if (why) {
    console.log(`skipped: ${why}`);
    return;
  }
  const n = arg('--runs', 10_000);
  const nParams = arg('--params', 20);
  const nMetrics = arg('--metrics', 30);
  const repeat = arg('--repeat', 5);
  const runs = makeRuns(n, { params: nParams, metrics: nMetrics });
  const bundleKiB = statSync(join(WEBVIEW_DIST, 'experiments.js')).size / 1024;
  console.log(`Experiments panel: ${n} runs x ${nParams + nMetrics} columns (${nParams} params, ${nMetrics} metrics); bundle ${bundleKiB.toFixed(0)} KiB; ${cpus().length} CPUs, load ${loadavg()[0].toFixed(2)}`);
  const t0 = nodePerf.now();
  const browser = await launchBrowser();
  console.log(`chromium start ${f(nodePerf.now() - t0)} (not counted)`);
  const measures: Record<string, number[]> = { firstPaint: [], loadToReady: [], sortMetric: [], sortParam: [], filter: [], filterClear: [], sortFar: [] };
  /** The same interactions by Event Timing (input -> frame presented). */
  const presented: Record<string, number[]> = { sortMetric: [], sortParam: [], filter: [], filterClear: [], sortFar: [] };
  try {
    for (let i = 0; i < repeat; i++) {
      const p = await openPanel(browser, { panel: 'experiments', theme: 'dark', viewport: { width: 1400, height: 900 } });
      await p.page.evaluate(() => {
        window.__mlpEvents = [];
        new window.PerformanceObserver((list: any) => {
          for (const e of list.getEntries()) window.__mlpEvents.push({ name: e.name, start: e.startTime, end: e.startTime + e.duration });
        }).observe({ type: 'event', durationThreshold: 16 });
      });
      // Post the runs the moment the panel is ready (as the host does), from inside the page so the
      // test's polling adds no delay.
      await p.page.evaluate((data: unknown) => {
        const send = (): void => window.postMessage({ type: 'runs', replace: true, runs: data }, '*');
        if (window.__mlpPosted.some((m: any) => m.type === 'ready')) send();
        else {
          const orig = window.__mlpPosted.push.bind(window.__mlpPosted);
          window.__mlpPosted.push = (m: any) => {
            const r = orig(m);
            if (m?.type === 'ready') setTimeout(send, 0);
            return r;
          };
        }
      }, runs as never);
      const waitMeasure = async (name: string): Promise<number> => {
        const h = await p.page.waitForFunction((nm: string) => performance.getEntriesByName(nm, 'measure').slice(-1)[0]?.duration, name, { timeout: 60_000, polling: 10 });
        return (await h.jsonValue()) as number;
      };
      measures.firstPaint.push(await waitMeasure('mlp:first-paint'));
      measures.loadToReady.push(await p.page.evaluate(() => performance.getEntriesByName('mlp:ready', 'mark')[0].startTime));
      const rows = await p.page.evaluate(() => document.querySelectorAll('.exp-row').length);
      if (rows < 10) throw new Error(`only ${rows} rows rendered`);
      const clear = (): Promise<void> => p.page.evaluate(() => {
        performance.clearMeasures();
        window.__mlpEvents = [];
      });
      // Event Timing entries arrive once the frame is presented: the longest event of the interaction,
      // from its time stamp to the next frame presented. NaN when every event took under 16 ms.
      const interaction = async (names: string[], last: string): Promise<number> => {
        const ok = await p.page.waitForFunction((l: string) => window.__mlpEvents.some((e: any) => e.name === l), last, { timeout: 1000, polling: 10 }).then(() => true, () => false);
        if (!ok) return NaN;
        return p.page.evaluate((ns: string[]) => {
          const es = window.__mlpEvents.filter((e: any) => ns.includes(e.name));
          return Math.max(...es.map((e: any) => e.end - e.start));
        }, names);
      };
      const CLICK = ['pointerdown', 'mousedown', 'pointerup', 'mouseup', 'click'];
      /** Scrolls a header into view and waits until the page is idle (the rows of the new columns drawn). */
      const reveal = async (selector: string): Promise<void> => {
        await p.page.evaluate((sel: string) => document.querySelector(sel).scrollIntoView({ block: 'nearest', inline: 'nearest' }), selector);
        await p.page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => requestIdleCallback(r, { timeout: 1000 })))));
        await p.page.waitForTimeout(200);
      };
      const TYPE = ['keydown', 'beforeinput', 'input', 'keyup'];
      await reveal('.exp-head [data-sort-key="metrics.evaluate.auc"]');
      await clear();
      await p.page.click('.exp-head [data-sort-key="metrics.evaluate.auc"]');
      measures.sortMetric.push(await waitMeasure('mlp:sort'));
      presented.sortMetric.push(await interaction(CLICK, 'click'));
      await reveal('.exp-head [data-sort-key="params.model"]');
      await clear();
      await p.page.click('.exp-head [data-sort-key="params.model"]');
      measures.sortParam.push(await waitMeasure('mlp:sort'));
      presented.sortParam.push(await interaction(CLICK, 'click'));
      await clear();
      await p.page.fill('#exp-filter input', 'metrics.evaluate.auc > 0.8 && params.model == "xgb"');
      measures.filter.push(await waitMeasure('mlp:filter'));
      presented.filter.push(await interaction(TYPE, 'input'));
      const shown = await p.page.evaluate(() => document.querySelector('.exp-count').textContent);
      if (!/ of /.test(shown)) throw new Error(`the filter did not apply: ${shown}`);
      await clear();
      await p.page.fill('#exp-filter input', '');
      measures.filterClear.push(await waitMeasure('mlp:filter'));
      presented.filterClear.push(await interaction(TYPE, 'input'));
      // Not a target: a header out of view, scrolled to and clicked in the same frame (the frame also
      // draws the columns scrolled to).
      await clear();
      await p.page.click('.exp-head [data-sort-key="metrics.evaluate.m29"]');
      measures.sortFar.push(await waitMeasure('mlp:sort'));
      presented.sortFar.push(await interaction(CLICK, 'click'));
      await p.expectClean();
      await p.close();
    }
  } finally {
    await browser.close();
  }
  const line = (label: string, raw: number[], target?: number): void => {
    // NaN (no Event Timing entry: under 16 ms) counts as 16 ms, an upper bound.
    const xs = raw.map((x) => (Number.isNaN(x) ? 16 : x));
    console.log(`${label.padEnd(44)} ${f(median(xs)).padStart(10)}  (min ${f(Math.min(...xs))}, max ${f(Math.max(...xs))})${target ? `  target <= ${target} ms: ${median(xs) <= target ? 'ok' : 'MISSED'}` : ''}`);
  };
  line('first paint (runs message -> painted)', measures.firstPaint, 300);
  line('page load to ready (bundle parsed, UI built)', measures.loadToReady);
  line('sort by a metric (click -> painted)', measures.sortMetric, 50);
  line('  the same, click -> presented (Event Timing)', presented.sortMetric, 50);
  line('sort by a param (click -> painted)', measures.sortParam, 50);
  line('  the same, click -> presented (Event Timing)', presented.sortParam, 50);
  line('filter "metrics.auc > 0.8 && model == xgb"', measures.filter, 50);
  line('  the same, input -> presented (Event Timing)', presented.filter, 50);
  line('clear the filter', measures.filterClear, 50);
  line('  the same, input -> presented (Event Timing)', presented.filterClear, 50);
  line('sort by a column out of view, scroll+click in one frame', measures.sortFar);
  line('  the same, click -> presented (Event Timing)', presented.sortFar);
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
