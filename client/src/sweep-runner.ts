import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as vscode from 'vscode';
import type { ParamValue } from '../../server/src/core/plan';
import type { LaunchResult, RunController } from './run-controller';
import { specText } from './specs';

/** Not copied into trial workspaces (as the CLI): run state, VCS data and installed packages. */
const SKIP_IN_TRIALS = new Set(['.mlpipeline', '.git', 'node_modules', '.venv', 'venv']);

export interface SweepResult {
  name: string;
  trials: { trial: number; params: Record<string, ParamValue>; result?: LaunchResult; error?: string }[];
  best?: { trial: number; runId: string; value: number };
  cancelled: boolean;
}

/**
 * Runs a sweep like `mlpipeline sweep`: each trial is an ordinary recorded run, planned by the language
 * server with the trial's params, in its own copy of the workspace under `.mlpipeline/sweeps/<name>/`.
 */
export async function runSweep(runs: RunController, spec: vscode.Uri, name: string): Promise<SweepResult | undefined> {
  const [{ readSweep, expandTrials }, YAML] = await Promise.all([import('./cli/sweep'), import('yaml')]);
  const text = await specText(spec);
  let def;
  try {
    def = readSweep(YAML.parseDocument(text), name);
  } catch (e) {
    void vscode.window.showErrorMessage(`ML Pipeline: ${(e as Error).message}`);
    return undefined;
  }
  const trials = expandTrials(def);
  const only = [...new Set([def.step, ...(def.objective ? [def.objective.step] : [])])];
  const workspace = dirname(spec.fsPath);
  const sweepDir = join(workspace, '.mlpipeline', 'sweeps', name);
  const out: SweepResult = { name, trials: trials.map((params, i) => ({ trial: i + 1, params })), cancelled: false };
  const abort = new AbortController();
  const channel = runs.newChannel(`sweep ${name} ${new Date().toISOString().slice(11, 19)}`, 'sweep');
  channel.info(`sweep ${name}: ${trials.length} trials of ${def.step} (${def.method}), ${def.maxParallel} at a time`);
  channel.show(true);

  await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `ML Pipeline: sweep ${name}`, cancellable: true }, async (progress, token) => {
    token.onCancellationRequested(() => {
      abort.abort();
      for (const r of runs.running) if (r.spec.toString() === spec.toString()) runs.cancel(r);
    });
    let next = 0;
    let finished = 0;
    const worker = async (): Promise<void> => {
      while (next < trials.length && !abort.signal.aborted) {
        const slot = out.trials[next++];
        const overrides = Object.fromEntries(Object.entries(slot.params).map(([k, v]) => [k, String(v)]));
        const planned = await runs.plan(spec, { overrides, only });
        if (!planned.result.ok) {
          slot.error = planned.result.errors.join(' ');
          channel.error(`trial ${slot.trial}: ${slot.error}`);
          continue;
        }
        const plan = planned.result.plan;
        const dir = join(sweepDir, createHash('sha256').update(JSON.stringify(Object.entries(slot.params).sort())).digest('hex').slice(0, 12));
        mkdirSync(dir, { recursive: true });
        const produced = new Set(plan.steps.flatMap((st) => [...Object.values(st.outputs), st.metrics, ...st.plots]).filter((p): p is string => !!p).map((p) => resolve(workspace, p).replace(/\/+$/, '')));
        for (const entry of readdirSync(workspace)) {
          if (!SKIP_IN_TRIALS.has(entry)) cpSync(join(workspace, entry), join(dir, entry), { recursive: true, filter: (src) => !produced.has(src.replace(/\/+$/, '')) });
        }
        const label = Object.entries(slot.params).map(([k, v]) => `${k}=${v}`).join(' ');
        channel.info(`trial ${slot.trial}/${trials.length}: ${label}`);
        slot.result = await runs.execute(spec, planned.text, plan, { specPath: join(dir, basename(spec.fsPath)), label, sweep: { name, trial: slot.trial }, channel, progress: false });
        finished++;
        channel.info(`trial ${slot.trial}: ${slot.result?.status ?? 'not run'}${slot.result ? ` (run ${slot.result.runId})` : ''}`);
        progress.report({ message: `${finished}/${trials.length} trials`, increment: 100 / trials.length });
      }
    };
    await Promise.all(Array.from({ length: Math.min(Math.max(1, def.maxParallel), trials.length) }, worker));
  });
  out.cancelled = abort.signal.aborted;

  if (def.objective) {
    const { step, metric, goal } = def.objective;
    for (const t of out.trials) {
      const v = t.result?.status === 'succeeded' ? t.result.record?.steps[step]?.metrics?.[metric] : undefined;
      if (v === undefined) continue;
      if (!out.best || (goal === 'maximize' ? v > out.best.value : v < out.best.value)) out.best = { trial: t.trial, runId: t.result!.runId, value: v };
    }
  }
  const ok = out.trials.filter((t) => t.result?.status === 'succeeded').length;
  const summary = `ML Pipeline: sweep ${name} ${out.cancelled ? 'cancelled' : 'finished'}: ${ok}/${trials.length} trials succeeded.${out.best ? ` Best: trial ${out.best.trial} (run ${out.best.runId}) ${def.objective!.step}.${def.objective!.metric} = ${Number(out.best.value.toPrecision(4))}.` : ''}`;
  channel.info(summary);
  void (ok === trials.length ? vscode.window.showInformationMessage(summary, 'Show Logs') : vscode.window.showWarningMessage(summary, 'Show Logs')).then((c) => {
    if (c) channel.show();
  });
  return out;
}
