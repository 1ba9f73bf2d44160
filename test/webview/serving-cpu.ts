/** CPU use of the Serving metrics panel under a steady feed, for its browser test and the bench. */
import type { PanelPage } from './harness';

/* eslint-disable @typescript-eslint/no-explicit-any */
declare const window: any;

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);

/**
 * Feeds the panel `rate` sample messages a second from inside the page (two revisions, as the host would
 * send them) and returns the share of one core the page's main thread was busy (CDP TaskDuration).
 */
export async function measureCpu(p: PanelPage, rate: number, ms: number): Promise<number> {
  const cdp = await p.page.context().newCDPSession(p.page);
  await cdp.send('Performance.enable');
  await p.page.evaluate(
    ({ rate, t0 }: { rate: number; t0: number }) => {
      let t = t0;
      window.__feed = window.setInterval(() => {
        t += 1000 / rate;
        const pt = (b: number) => [t, b, b * 3, b * 5, 40, 0];
        window.postMessage({ type: 'samples', replace: false, series: [{ deployment: 'churn-api', revision: 'r1', role: 'stable', points: [pt(20)] }, { deployment: 'churn-api', revision: 'r2', role: 'canary', points: [pt(30)] }] }, '*');
      }, 1000 / rate);
    },
    { rate, t0: T0 },
  );
  // Let the window fill first (steady state), then measure.
  await p.page.waitForTimeout(2000);
  const metric = async (): Promise<number> => ((await cdp.send('Performance.getMetrics')) as { metrics: { name: string; value: number }[] }).metrics.find((m) => m.name === 'TaskDuration')!.value;
  const a = await metric();
  const w0 = Date.now();
  await p.page.waitForTimeout(ms);
  const b = await metric();
  const wall = (Date.now() - w0) / 1000;
  await p.page.evaluate(() => window.clearInterval(window.__feed));
  return (b - a) / wall;
}
