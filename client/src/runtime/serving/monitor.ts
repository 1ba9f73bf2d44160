/**
 * Evaluating a deployment's monitors: latency/error SLOs (direct scrape windows or a Prometheus server)
 * and input drift (logged inputs against a reference table). Alerts fire on state changes and are
 * appended to the deployment's alert history. Target-neutral: metrics come from `metricsSources`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { ResolvedAlert, ResolvedMonitor } from '../../../../server/src/core/deploy-plan';
import type { AlertRecord } from '../records';
import type { MetricsSource } from './deploy-target';
import { detectDrift, parseCsv, type DriftReport, type Row } from './drift';
import { deploymentDir } from './local-state';
import { scrapeMetrics, type ServingSummary } from './metrics';
import { summarizeFromPrometheus } from './prometheus';
import { appendAlertRecord, readAlertRecords } from './records-store';
import { evaluateSlo, ScrapeWindow } from './slo';

export interface MonitorResult {
  monitor: string;
  revision?: string;
  ok: boolean;
  /** Could not be judged (no traffic yet, no logged inputs); never a breach. */
  noData: boolean;
  breaches: string[];
  summary?: ServingSummary;
  drift?: DriftReport;
  /** Set when the monitor could not be evaluated at all (unreachable Prometheus, missing reference). */
  error?: string;
  at: string;
}

/** Keeps direct-scrape windows between evaluations, per monitor and revision. */
export class SloTracker {
  private windows = new Map<string, ScrapeWindow>();

  async evaluate(monitor: ResolvedMonitor, source: MetricsSource, options: { windowMs?: number; minRequests?: number } = {}): Promise<MonitorResult> {
    const at = new Date().toISOString();
    const slo = monitor.slo!;
    const windowMs = options.windowMs ?? slo.windowMs;
    try {
      let summary: ServingSummary | undefined;
      if (monitor.prometheus) {
        if (!source.prometheusSelector) throw new Error('this target gives no Prometheus labels for the revision');
        summary = await summarizeFromPrometheus(monitor.prometheus, source.prometheusSelector, windowMs);
      } else {
        if (!source.scrapeUrl) throw new Error('this revision cannot be scraped from here; give the monitor `source: {prometheus: URL}`');
        const key = `${monitor.name}/${source.revision}`;
        let w = this.windows.get(key);
        if (!w || w.windowMs !== windowMs) this.windows.set(key, (w = new ScrapeWindow(windowMs)));
        w.add(await scrapeMetrics(source.scrapeUrl));
        summary = w.summary();
      }
      if (!summary) return { monitor: monitor.name, revision: source.revision, ok: true, noData: true, breaches: [], at };
      const r = evaluateSlo(slo, summary, options.minRequests ?? 1);
      return { monitor: monitor.name, revision: source.revision, ok: r.ok, noData: r.noData, breaches: r.breaches, summary, at };
    } catch (e) {
      return { monitor: monitor.name, revision: source.revision, ok: true, noData: true, breaches: [], error: (e as Error).message, at };
    }
  }
}

/** Where the supervisor tells servers to log their inputs (env MLPIPELINE_INPUT_LOG). */
export function inputLogDir(workspace: string, deployment: string): string {
  return join(deploymentDir(workspace, deployment), 'inputs');
}

/**
 * Logged instances: JSON lines `{"instance": {...}}` (or plain objects), oldest files first, at most
 * `limit` rows (the latest). `revisions`: only what these revisions received (the live ones, so a
 * replaced model's traffic does not count).
 */
export function readInputLogs(workspace: string, deployment: string, options: { revisions?: string[]; limit?: number; sinceMs?: number } = {}): Row[] {
  const { limit = 100_000, sinceMs } = options;
  const dir = inputLogDir(workspace, deployment);
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl') && (!options.revisions || options.revisions.includes(f.slice(0, -'.jsonl'.length))))
    .map((f) => join(dir, f)).sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  const rows: Row[] = [];
  for (const f of files) {
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const o = JSON.parse(line) as { ts?: number; instance?: Row };
        if (sinceMs !== undefined && typeof o.ts === 'number' && o.ts * 1000 < sinceMs) continue;
        rows.push(o.instance && typeof o.instance === 'object' ? o.instance : (o as Row));
      } catch {
        // A torn line: skip.
      }
    }
  }
  return rows.slice(-limit);
}

export function readReference(workspace: string, reference: string): Row[] {
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(reference)) throw new Error(`drift reference ${reference} is remote; copy it into the workspace (e.g. a dataset with a local uri) to check drift locally`);
  const path = isAbsolute(reference) ? reference : join(workspace, reference);
  if (!existsSync(path)) throw new Error(`drift reference ${reference} does not exist`);
  const text = readFileSync(path, 'utf8');
  if (/\.jsonl?$/.test(path)) return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Row);
  if (/\.csv$/.test(path)) return parseCsv(text);
  throw new Error(`drift reference ${reference}: only .csv and .jsonl files can be read here`);
}

export function evaluateDrift(workspace: string, monitor: ResolvedMonitor, current: Row[]): MonitorResult {
  const at = new Date().toISOString();
  const d = monitor.drift!;
  try {
    const reference = readReference(workspace, d.reference);
    const features = d.features ?? Object.keys(current[0] ?? reference[0] ?? {});
    const report = detectDrift(reference, current, { method: d.method, threshold: d.threshold, features });
    const judged = report.features.length > 0;
    return {
      monitor: monitor.name,
      ok: !report.drifted,
      noData: !judged,
      breaches: report.features.filter((f) => f.drifted).map((f) => `${f.feature}: ${f.detail}`),
      drift: report,
      at,
    };
  } catch (e) {
    return { monitor: monitor.name, ok: true, noData: true, breaches: [], error: (e as Error).message, at };
  }
}

/**
 * Records alerts for results whose state changed since the last recorded alert of that monitor (a breach
 * once, then a recovery once), for the alerts that name the monitor. Returns the new records.
 */
export async function recordAlerts(workspace: string, deployment: string, results: MonitorResult[], alerts: ResolvedAlert[], monitors: ResolvedMonitor[]): Promise<AlertRecord[]> {
  const history = readAlertRecords(workspace, deployment);
  const out: AlertRecord[] = [];
  for (const r of results) {
    if (r.noData) continue;
    const last = [...history].reverse().find((a) => a.monitor === r.monitor);
    const state = r.ok ? 'recovered' : 'violated';
    if ((last?.state ?? 'recovered') === state) continue;
    const matching = alerts.filter((a) => a.monitors.includes(r.monitor));
    const rec: AlertRecord = {
      schema: 1,
      deployment,
      monitor: r.monitor,
      revision: r.revision,
      state,
      at: r.at,
      details: r.ok ? ['back within limits'] : r.breaches,
      notify: [...new Set(matching.flatMap((a) => a.notify))],
      description: matching.find((a) => a.description)?.description ?? monitors.find((m) => m.name === r.monitor)?.description,
    };
    await appendAlertRecord(workspace, rec);
    out.push(rec);
  }
  return out;
}
