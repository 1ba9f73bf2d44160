/**
 * The canary rollout controller, target-neutral: moves traffic through `rollout.steps`, evaluates the
 * `rollbackOn` monitors on the canary during every hold, rolls back with the reason on the first breach,
 * and promotes after the last step. Holds scale by `holdScale` (tests and dry runs use e.g. 0.001).
 */
import type { ResolvedDeployment } from '../../../../server/src/core/deploy-plan';
import { sleep } from '../sleep';
import { DeployError, type DeployEvent, type DeployTarget, type WeightApplied } from './deploy-target';
import { SloTracker, type MonitorResult } from './monitor';

export interface RolloutOptions {
  target: DeployTarget;
  deployment: ResolvedDeployment;
  /** The canary revision, already started at weight 0 by `target.deploy({strategy: 'canary'})`. */
  canary: string;
  holdScale?: number;
  /** How often monitors are evaluated during a hold (default: a tenth of the hold, 1-15 s). */
  intervalMs?: number;
  /** Requests the canary must have served in the window before an SLO can be judged (default 5). */
  minRequests?: number;
  signal?: AbortSignal;
  onEvent?(e: DeployEvent): void;
  /** Each evaluation, for alert history and UIs. */
  onResults?(results: MonitorResult[]): void | Promise<void>;
}

export type RolloutOutcome = { outcome: 'promoted' } | { outcome: 'rolled-back'; reason: string; results: MonitorResult[] };

export async function runRollout(o: RolloutOptions): Promise<RolloutOutcome> {
  const d = o.deployment;
  const scale = o.holdScale ?? 1;
  const monitors = d.monitors.filter((m) => d.rollout.rollbackOn.includes(m.name) && m.slo);
  const tracker = new SloTracker();
  const emit = (e: DeployEvent): void => o.onEvent?.(e);
  const rollback = async (reason: string, results: MonitorResult[]): Promise<RolloutOutcome> => {
    await o.target.rollback(d.name, reason);
    emit({ type: 'rolled-back', deployment: d.name, revision: o.canary, reason });
    return { outcome: 'rolled-back', reason, results };
  };
  const steps = d.rollout.steps.length ? d.rollout.steps : [{ weight: 100, holdMs: 0 }];
  for (const [i, step] of steps.entries()) {
    if (o.signal?.aborted) return rollback('the rollout was cancelled', []);
    const weight = Math.min(100, Math.max(0, step.weight));
    let applied: WeightApplied | void;
    try {
      applied = await o.target.setCanaryWeight(d.name, weight);
    } catch (e) {
      // E.g. the canary's pods never became ready: the stable revision must take the traffic back.
      if (e instanceof DeployError) return rollback(`could not move ${weight}% of traffic to ${o.canary}: ${e.message}`, []);
      throw e;
    }
    emit({ type: 'weights', deployment: d.name, weights: { [o.canary]: applied?.percent ?? weight } });
    const hold = Math.round(step.holdMs * scale);
    const note = applied ? [applied.percent !== weight ? `${applied.percent}% realized` : '', applied.detail ?? ''].filter(Boolean).join(': ') : '';
    const realized = note ? ` (${note})` : '';
    emit({ type: 'phase', deployment: d.name, revision: o.canary, phase: 'rolling-out', message: `step ${i + 1}/${steps.length}: ${weight}% to ${o.canary}${realized}${hold ? `, holding ${fmt(hold)}` : ''}` });
    if (hold <= 0 || monitors.length === 0) {
      if (hold > 0) await sleep(hold, o.signal);
      continue;
    }
    const sources = (await o.target.metricsSources(d.name)).filter((s) => s.revision === o.canary);
    const source = sources[0];
    if (!source) return rollback(`the canary ${o.canary} has no metrics endpoint to judge it by`, []);
    const interval = o.intervalMs ?? Math.min(15_000, Math.max(1000, hold / 10));
    const end = Date.now() + hold;
    // The window never reaches back before this step, so the previous weight's traffic does not count.
    for (;;) {
      const left = end - Date.now();
      await sleep(Math.min(interval, Math.max(0, left)), o.signal);
      if (o.signal?.aborted) return rollback('the rollout was cancelled', []);
      const results = await Promise.all(monitors.map((m) => tracker.evaluate(m, source, { windowMs: Math.min(m.slo!.windowMs, hold), minRequests: o.minRequests ?? 5 })));
      await o.onResults?.(results);
      for (const r of results) emit({ type: 'monitor', deployment: d.name, monitor: r.monitor, ok: r.ok, summary: r.error ?? (r.noData ? 'no traffic yet' : r.ok ? describe(r) : r.breaches.join('; ')) });
      const breached = results.filter((r) => !r.ok);
      if (breached.length) return rollback(breached.map((r) => `monitors.${r.monitor} breached on ${o.canary}: ${r.breaches.join('; ')}`).join('\n'), results);
      if (Date.now() >= end) break;
    }
  }
  await o.target.promote(d.name);
  emit({ type: 'promoted', deployment: d.name, revision: o.canary });
  return { outcome: 'promoted' };
}

function describe(r: MonitorResult): string {
  const s = r.summary;
  if (!s) return 'ok';
  return `ok: p95 ${(s.p95 * 1000).toFixed(1)} ms, errors ${(Number.isNaN(s.errorRate) ? 0 : s.errorRate * 100).toFixed(2)}%, ${Math.round(s.requests)} requests`;
}

function fmt(ms: number): string {
  return ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 1000).toFixed(1)} s`;
}
