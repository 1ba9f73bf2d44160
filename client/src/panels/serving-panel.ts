/**
 * The Serving metrics panel's host: a ServingFeed (client/src/runtime/serving-feed.ts) polls every
 * revision of the deployments running from this workspace's specs (their `/metrics`, or Prometheus when a
 * monitor names one), keeps bounded per-revision history, and streams new points to the webview; SLO lines
 * come from the specs' monitors. The feed runs only while the panel is open.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { isServingToHost, SERVING_VIEW_TYPE, type HostToServing, type ServingDeploymentInfo, type ServingToHost, type SloLines } from '../../../webviews/src/protocol/serving';
import type { Ctx } from '../ctx';
import type { ServingFeed, ServingSource } from '../runtime/serving-feed';
import { PanelHost, panelLog, type PanelSpec } from './panel-host';

export const SERVING_PANEL: PanelSpec<ServingToHost> = { viewType: SERVING_VIEW_TYPE, bundle: 'serving', title: 'Serving Metrics', isWebviewMessage: isServingToHost };

const INTERVAL_MS = 1000;
const DEFAULT_WINDOW_MS = 5 * 60_000;

export class ServingPanel extends PanelHost<HostToServing, ServingToHost> {
  private feed: ServingFeed | undefined;
  private paused = false;
  private infos: ServingDeploymentInfo[] = [];
  private infoKey = '';
  private prometheus: Record<string, string> = {};
  private configAt = 0;

  constructor(
    private readonly ctx: Ctx,
    panel: vscode.WebviewPanel,
  ) {
    super(ctx.extension.extensionUri, panel, SERVING_PANEL);
    this.disposables.push({ dispose: () => this.feed?.stop() }, ctx.specs.onDidChange(() => (this.configAt = 0)));
  }

  protected async onReady(state: unknown): Promise<void> {
    this.paused = !!(state as { paused?: unknown } | undefined)?.paused;
    await this.refreshConfig(true);
    if (!this.feed) {
      const { ServingFeed } = await import('../runtime/serving-feed');
      this.feed = new ServingFeed({
        intervalMs: INTERVAL_MS,
        sources: () => this.sources(),
        onSamples: (series) => {
          if (!this.paused) void this.post({ type: 'samples', series, replace: false });
        },
        onError: (s, message) => {
          panelLog().info(`Serving metrics: ${s.deployment}/${s.revision}: ${message}`);
          void this.post({ type: 'sourceError', deployment: s.deployment, revision: s.revision, message });
        },
      });
      this.feed.start();
    } else await this.post({ type: 'samples', series: this.feed.snapshot(), replace: true });
  }

  protected async onMessage(m: ServingToHost): Promise<void> {
    switch (m.type) {
      case 'pause':
        this.paused = m.paused;
        // Points kept arriving in the feed's buffers while paused: catch the panel up at once.
        if (!m.paused && this.feed) await this.post({ type: 'samples', series: this.feed.snapshot(), replace: true });
        return;
      case 'setWindow':
        // The feed keeps an hour; the panel trims to the window it shows.
        return;
      case 'refresh':
        await this.refreshConfig(true);
        return;
    }
  }

  /** Deployments of the workspace's specs (and their SLOs), re-read every 10 s or when specs change. */
  private async refreshConfig(force: boolean): Promise<void> {
    if (!force && Date.now() - this.configAt < 10_000) return;
    this.configAt = Date.now();
    const [{ analyzeSpec }, { deploymentNames, planDeployment }, { listStates }] = await Promise.all([import('../../../server/src/core/validate'), import('../../../server/src/core/deploy-plan'), import('../runtime/serving/local-state')]);
    const infos = new Map<string, ServingDeploymentInfo>();
    const prometheus: Record<string, string> = {};
    for (const spec of await this.ctx.specs.all()) {
      let text: string;
      try {
        text = (await vscode.workspace.openTextDocument(spec)).getText();
      } catch {
        continue;
      }
      const analysis = analyzeSpec(text);
      for (const name of deploymentNames(analysis)) {
        const planned = planDeployment(analysis, name);
        const slo: SloLines = {};
        if (planned.ok) {
          for (const mon of planned.deployment.monitors) {
            if (mon.prometheus) prometheus[name] = mon.prometheus;
            const s = mon.slo;
            if (!s) continue;
            // Several monitors: the strictest limit of each kind.
            for (const k of ['p50LatencyMs', 'p95LatencyMs', 'p99LatencyMs', 'errorRate'] as const) if (s[k] !== undefined) slo[k] = Math.min(slo[k] ?? Infinity, s[k]!);
          }
        }
        infos.set(name, { name, slo, source: prometheus[name] ? `Prometheus at ${prometheus[name]}` : `scraping each revision's ${planned.ok ? planned.deployment.runtime.metrics : '/metrics'}` });
      }
      // Deployments running from this spec's folder that the spec no longer names still show.
      for (const s of listStates(path.dirname(spec.fsPath))) if (!infos.has(s.name)) infos.set(s.name, { name: s.name, slo: {}, source: `scraping ${s.url}` });
    }
    this.prometheus = prometheus;
    const list = [...infos.values()];
    const key = JSON.stringify(list);
    if (force || key !== this.infoKey) {
      this.infoKey = key;
      this.infos = list;
      await this.post({ type: 'config', deployments: this.infos, windowMs: DEFAULT_WINDOW_MS, intervalMs: INTERVAL_MS });
    }
  }

  private async sources(): Promise<ServingSource[]> {
    await this.refreshConfig(false);
    const [{ listStates }, { sourcesFromLocalStates }] = await Promise.all([import('../runtime/serving/local-state'), import('../runtime/serving-feed')]);
    const dirs = new Set((await this.ctx.specs.all()).map((s) => path.dirname(s.fsPath)));
    return [...dirs].flatMap((d) => sourcesFromLocalStates(listStates(d), this.prometheus));
  }
}
