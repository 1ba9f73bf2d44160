/**
 * The Lineage and Serving metrics panels in headless Chromium (the built bundles in the extension's own
 * page and CSP, test/webview/harness.ts):
 *   - lineage: a 5,000-node graph (many runs of a three-step pipeline sharing datasets and files) from the
 *     `graph` message to laid out (ELK) and to drawn (ECharts); a fresh page each time (median of --repeat),
 *   - serving: share of one core the panel's main thread is busy (CDP TaskDuration) while fed 10 sample
 *     messages a second (two revisions), after the 60 s window filled; and the time of one redraw.
 * Targets (issue 6): lineage 5,000 nodes <= 1 s; serving at 10 updates/s < 5% of a core.
 *
 *   node esbuild.mjs --production && npx tsx bench/panels-lineage.ts [--nodes 5000] [--repeat 3] [--seconds 10] [--only lineage|serving]
 * With --only serving, the serving measurement runs --repeat times (median reported).
 */
import { cpus, loadavg } from 'node:os';
import { graphFromRuns } from '../client/src/runtime/lineage-graph';
import { launchBrowser, openPanel, unavailableReason } from '../test/webview/harness';
import { bigLineage } from '../test/webview/lineage-fixture';
import { measureCpu } from '../test/webview/serving-cpu';

/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const oi = process.argv.indexOf('--only');
  const only = oi >= 0 ? process.argv[oi + 1] : undefined;
  const why = (only === 'serving' ? undefined : unavailableReason('lineage')) ?? (only === 'lineage' ? undefined : unavailableReason('serving'));
  if (why) {
    console.log(`skipped: ${why}`);
    return;
  }
  const n = arg('--nodes', 5000);
  const repeat = arg('--repeat', 3);
  const seconds = arg('--seconds', 10);
  const graph = graphFromRuns(bigLineage(n).runs);
  console.log(`${cpus().length} CPUs, load ${loadavg()[0].toFixed(2)}`);
  const browser = await launchBrowser();
  try {
    const layout: number[] = [];
    const drawn: number[] = [];
    for (let i = 0; i < (only === 'serving' ? 0 : repeat); i++) {
      const p = await openPanel(browser, { panel: 'lineage', theme: 'dark', viewport: { width: 1400, height: 900 } });
      await p.waitForPosted((m) => m.type === 'ready');
      // The panel warms ELK up on load while the host gathers the graph; give it the time a host would.
      await p.page.waitForTimeout(1000);
      await p.send({ type: 'graph', graph, runs: [], specAvailable: true });
      await p.page.waitForFunction(() => document.getElementById('root').dataset.drawnMs !== undefined, undefined, { timeout: 120_000 });
      layout.push(Number(await p.page.evaluate(() => document.getElementById('root').dataset.layoutMs)));
      drawn.push(Number(await p.page.evaluate(() => document.getElementById('root').dataset.drawnMs)));
      await p.close();
    }
    const lm = median(layout);
    if (only !== 'serving') console.log(`lineage: ${graph.nodes.length} nodes, ${graph.edges.length} edges: layout ${lm} ms (median of ${layout.join(', ')}), laid out + drawn ${median(drawn)} ms   target <= 1000 ms: ${lm <= 1000 ? 'ok' : 'MISSED'}`);

    if (only === 'lineage') return;
    const cpus: number[] = [];
    /** Main-thread time of one redraw (the panel's own counter: building the data, uPlot drawing). */
    const perDraw: number[] = [];
    for (let i = 0; i < (only === 'serving' ? repeat : 1); i++) {
      const p = await openPanel(browser, { panel: 'serving', theme: 'dark', viewport: { width: 1400, height: 900 } });
      await p.waitForPosted((m) => m.type === 'ready');
      await p.send({ type: 'config', deployments: [{ name: 'churn-api', slo: { p95LatencyMs: 100, errorRate: 0.01 } }], windowMs: 60_000, intervalMs: 100 });
      cpus.push(await measureCpu(p, 10, seconds * 1000));
      const v = await p.page.evaluate(() => document.getElementById('root').servingView());
      perDraw.push(v.drawMs / Math.max(1, v.draws));
      await p.close();
    }
    const cpu = median(cpus);
    console.log(`serving: ${(cpu * 100).toFixed(1)}% of a core at 10 updates/s over ${seconds} s${cpus.length > 1 ? ` (median of ${cpus.map((c) => (c * 100).toFixed(1)).join(', ')})` : ''}   target < 5%: ${cpu < 0.05 ? 'ok' : 'MISSED'}`);
    console.log(`serving: one redraw (data and charts, at most one a second) ${median(perDraw).toFixed(1)} ms (median of ${perDraw.map((x) => x.toFixed(1)).join(', ')})`);
  } finally {
    await browser.close();
  }
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
