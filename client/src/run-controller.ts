import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RunPlan } from '../../server/src/core/plan';
import { RUN_PLAN_REQUEST, type RunPlanParams, type RunPlanResult } from '../../server/src/protocol/requests';
import type { LanguageClientHost } from './language-client';
import type { EngineEvent } from './runtime/engine';
import type { RunRecord, RunStatus } from './runtime/records';
import { readSpecInfo, storeRootFor } from './specs';
import { formatDuration as formatMs } from './runtime/run-report';

/** What a finished launch reports (commands return it, so tests and other extensions can use it). */
export interface LaunchResult {
  runId: string;
  status: RunStatus;
  storeRoot: string;
  record?: RunRecord;
}

export interface LaunchOptions {
  only?: string[];
  overrides?: Record<string, string>;
  label?: string;
  force?: boolean;
}

/** A run this window started and that has not finished. */
export interface LiveRun {
  readonly key: number;
  readonly spec: vscode.Uri;
  readonly specName: string;
  readonly storeRoot: string;
  readonly abort: AbortController;
  runId?: string;
  channel?: vscode.LogOutputChannel;
  /** Steps done / all steps, for progress. */
  done: number;
  total: number;
  current?: string;
}

/** The secret key under which SecretStorage keeps a spec secret's value. */
export const secretKey = (name: string): string => `mlpipeline.secret.${name}`;

const MAX_CHANNELS = 10;

/**
 * Runs plans with the local engine inside the extension host: the plan comes from the language server
 * (the open document's text), logs stream into one LogOutputChannel per run, progress shows in a
 * cancellable notification. The engine module is loaded on the first run only.
 */
export class RunController implements vscode.Disposable {
  private nextKey = 1;
  private readonly live = new Map<number, LiveRun>();
  /** Channels of runs, by run id (live and recent ones); the oldest are disposed beyond MAX_CHANNELS. */
  private readonly channels = new Map<string, vscode.LogOutputChannel>();
  private readonly emitter = new vscode.EventEmitter<LiveRun | undefined>();
  /** Fires when a live run starts, progresses or ends. */
  readonly onDidChange = this.emitter.event;

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly languageClient: LanguageClientHost,
    /** The compute target chosen in this window (status bar), if any. */
    private readonly target: () => string | undefined,
  ) {}

  /** Who made the last plan: the language server (the usual way) or this process (no server, or an old one). */
  lastPlanVia: 'server' | 'in-process' | undefined;

  get running(): LiveRun[] {
    return [...this.live.values()];
  }

  findLive(runId: string): LiveRun | undefined {
    return this.running.find((r) => r.runId === runId);
  }

  channelOf(runId: string): vscode.LogOutputChannel | undefined {
    return this.channels.get(runId);
  }

  /** Asks the language server for the plan of the open document; plans in process when the server cannot. */
  async plan(spec: vscode.Uri, options: Omit<RunPlanParams, 'uri'>): Promise<{ result: RunPlanResult; text: string }> {
    const doc = await vscode.workspace.openTextDocument(spec);
    const text = doc.getText();
    try {
      const client = await this.languageClient.start();
      const result = await client.sendRequest<RunPlanResult>(RUN_PLAN_REQUEST, { uri: doc.uri.toString(), ...options } satisfies RunPlanParams);
      if (result && typeof result === 'object' && 'ok' in result) {
        this.lastPlanVia = 'server';
        return { result, text };
      }
    } catch {
      // An older server without the request, or no server: plan here, from the same text.
    }
    const [{ analyzeSpec }, { planRun }] = await Promise.all([import('../../server/src/core/validate'), import('../../server/src/core/plan')]);
    this.lastPlanVia = 'in-process';
    return { result: planRun(analyzeSpec(text, { unusedHints: false }), options), text };
  }

  /** The target to plan with: the one chosen in the status bar, else the setting, if the spec defines it. */
  async targetFor(spec: vscode.Uri): Promise<string | undefined> {
    const chosen = this.target() || vscode.workspace.getConfiguration('mlpipeline', spec).get<string>('run.defaultTarget')?.trim();
    if (!chosen) return undefined;
    const info = await readSpecInfo(spec);
    return chosen === 'local' || chosen in info.compute ? chosen : undefined;
  }

  /** Plans and runs a spec; resolves when the run has finished (or undefined when it never started). */
  async launch(spec: vscode.Uri, options: LaunchOptions = {}): Promise<LaunchResult | undefined> {
    if (spec.scheme !== 'file') {
      void vscode.window.showErrorMessage('ML Pipeline: save the spec to a file first; runs start from the spec\'s folder.');
      return undefined;
    }
    const target = await this.targetFor(spec);
    const { result, text } = await this.plan(spec, { ...(options.only ? { only: options.only } : {}), ...(options.overrides ? { overrides: options.overrides } : {}), ...(target ? { target } : {}) });
    if (!result.ok) {
      const shown = result.errors.slice(0, 3).join(' · ') + (result.errors.length > 3 ? ` (and ${result.errors.length - 3} more)` : '');
      void vscode.window.showErrorMessage(`ML Pipeline: ${path.basename(spec.fsPath)} cannot run: ${shown}`, 'Show Problems').then((c) => {
        if (c) void vscode.commands.executeCommand('workbench.actions.view.problems');
      });
      return undefined;
    }
    return this.execute(spec, text, result.plan, options);
  }

  /** Secrets the plan's steps use: SecretStorage, then the environment, then the user is asked (and the answer kept). */
  async collectSecrets(plan: RunPlan): Promise<Map<string, string>> {
    const names = [...new Set(plan.steps.flatMap((s) => Object.values(s.secretEnv)))];
    const values = new Map<string, string>();
    for (const name of names) {
      let value = (await this.secrets.get(secretKey(name))) ?? process.env[name];
      if (value === undefined) {
        value = await vscode.window.showInputBox({
          title: `ML Pipeline: secret ${name}`,
          prompt: `The pipeline uses the secret ${name}. Its value is kept in VS Code's secret storage, never in files, logs or run records.`,
          password: true,
          ignoreFocusOut: true,
        });
        if (value !== undefined) await this.secrets.store(secretKey(name), value);
      }
      if (value !== undefined) values.set(name, value);
    }
    return values;
  }

  /** Runs a plan; shows progress, streams logs, toasts the outcome. */
  async execute(spec: vscode.Uri, text: string, plan: RunPlan, options: LaunchOptions & { specPath?: string; sweep?: { name: string; trial: number }; channel?: vscode.LogOutputChannel; progress?: false } = {}): Promise<LaunchResult | undefined> {
    const secretValues = await this.collectSecrets(plan);
    const storeRoot = storeRootFor(spec);
    const run: LiveRun = { key: this.nextKey++, spec, specName: plan.specName, storeRoot, abort: new AbortController(), done: 0, total: plan.steps.length };
    this.live.set(run.key, run);
    this.emitter.fire(run);
    const maxParallel = vscode.workspace.getConfiguration('mlpipeline', spec).get<number>('run.maxParallel') ?? 0;
    const width = Math.max(4, ...plan.steps.map((s) => s.name.length));
    const partial = new Map<string, string>();
    const onEvent = (e: EngineEvent): void => {
      const ch = run.channel;
      switch (e.type) {
        case 'run-started':
          run.runId = e.runId;
          run.channel = options.channel ?? this.newChannel(e.runId, plan.specName);
          run.channel.info(`run ${e.runId} of ${plan.specName}: ${e.steps.join(' → ')}`);
          run.channel.info(`record: ${e.storePath}`);
          break;
        case 'step-started':
          run.current = e.step;
          ch?.info(`${e.step.padEnd(width)} | ▶ start${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}${e.gpus ? ` on GPU ${e.gpus.join(',')}` : ''}`);
          break;
        case 'step-output': {
          if (!e.step) {
            ch?.warn(e.text.trimEnd());
            break;
          }
          const lines = ((partial.get(e.step) ?? '') + e.text).split(/\r?\n/);
          partial.set(e.step, lines.pop()!);
          for (const l of lines) ch?.info(`${e.step.padEnd(width)} | ${l}`);
          return; // output does not change progress
        }
        case 'step-finished': {
          const rest = partial.get(e.step);
          if (rest) ch?.info(`${e.step.padEnd(width)} | ${rest}`);
          partial.delete(e.step);
          run.done++;
          const metrics = e.metrics ? ' ' + Object.entries(e.metrics).map(([k, v]) => `${k}=${Number(v.toPrecision(4))}`).join(' ') : '';
          const line = `${e.step.padEnd(width)} | ${e.status}${e.status === 'cached' ? ' (inputs unchanged)' : ` in ${formatMs(e.durationMs)}`}${metrics}`;
          if (e.status === 'failed') ch?.error(`${line}: ${e.error ?? ''}`);
          else if (e.status === 'skipped' || e.status === 'cancelled') ch?.warn(`${line}${e.error ? `: ${e.error}` : ''}`);
          else ch?.info(line);
          break;
        }
        case 'run-finished':
          ch?.info(`run ${e.runId} ${e.status} in ${formatMs(e.durationMs)}${e.error ? `: ${e.error}` : ''}`);
          break;
      }
      this.emitter.fire(run);
    };

    const work = async (progress?: vscode.Progress<{ message?: string; increment?: number }>): Promise<LaunchResult> => {
      const { runPlan } = await import('./runtime/engine');
      let reported = 0;
      const sub = progress
        ? this.onDidChange((r) => {
            if (r !== run) return;
            const pct = run.total ? (run.done / run.total) * 100 : 0;
            progress.report({ message: `${run.current ?? ''} (${run.done}/${run.total} steps)`, increment: pct - reported });
            reported = pct;
          })
        : undefined;
      try {
        const res = await runPlan({
          specPath: options.specPath ?? spec.fsPath,
          specText: text,
          plan,
          storeRoot,
          force: options.force,
          ...(maxParallel > 0 ? { maxParallel } : {}),
          ...(options.label ? { label: options.label } : {}),
          ...(options.sweep ? { sweep: options.sweep } : {}),
          signal: run.abort.signal,
          secret: (name) => secretValues.get(name) ?? process.env[name],
          onEvent,
          ...(await clusterSettings(spec)),
        });
        return { runId: res.runId, status: res.status, storeRoot, record: res.record };
      } finally {
        sub?.dispose();
      }
    };

    try {
      const result =
        options.progress === false
          ? await work()
          : await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `ML Pipeline: running ${plan.specName}`, cancellable: true }, (progress, token) => {
              token.onCancellationRequested(() => run.abort.abort());
              return work(progress);
            });
      this.pushMetrics(spec, result.record);
      if (options.progress !== false) this.toast(result);
      return result;
    } catch (e) {
      run.channel?.error(`The run could not be recorded: ${(e as Error).message}`);
      void vscode.window.showErrorMessage(`ML Pipeline: the run of ${plan.specName} failed to start: ${(e as Error).message}`);
      return undefined;
    } finally {
      this.live.delete(run.key);
      this.emitter.fire(undefined);
    }
  }

  /** Cancels a live run (its steps' process groups get SIGTERM, then SIGKILL). */
  cancel(run: LiveRun): void {
    run.channel?.warn('Cancel requested: stopping the running steps…');
    run.abort.abort();
  }

  newChannel(id: string, specName: string): vscode.LogOutputChannel {
    const ch = vscode.window.createOutputChannel(`ML Pipeline Run ${specName} ${id}`, { log: true });
    this.channels.set(id, ch);
    while (this.channels.size > MAX_CHANNELS) {
      const [oldest] = [...this.channels.keys()].filter((k) => !this.findLive(k));
      if (!oldest) break;
      this.channels.get(oldest)?.dispose();
      this.channels.delete(oldest);
    }
    return ch;
  }

  private toast(r: LaunchResult): void {
    // The last steps' metrics first: evaluation usually comes last.
    const metrics = Object.entries(r.record?.steps ?? {}).reverse().flatMap(([s, st]) => Object.entries(st.metrics ?? {}).map(([k, v]) => `${s}.${k}=${Number(v.toPrecision(4))}`));
    const took = r.record?.finishedAt ? ` in ${formatMs(Date.parse(r.record.finishedAt) - Date.parse(r.record.startedAt))}` : '';
    const name = r.record?.spec.name ?? 'pipeline';
    const msg = `ML Pipeline: run ${r.runId} of ${name} ${r.status}${took}.${metrics.length ? ' ' + metrics.slice(0, 4).join(' ') : ''}${r.status === 'failed' && r.record?.error ? ' ' + r.record.error : ''}`;
    const show = (m: string, ...items: string[]): Thenable<string | undefined> =>
      r.status === 'succeeded' ? vscode.window.showInformationMessage(m, ...items) : r.status === 'cancelled' ? vscode.window.showWarningMessage(m, ...items) : vscode.window.showErrorMessage(m, ...items);
    const ref = { runId: r.runId, storeRoot: r.storeRoot };
    void show(msg, 'Open Experiments', 'Show Logs', 'Open Run').then((choice) => {
      if (choice === 'Open Experiments') void vscode.commands.executeCommand('mlpipeline.openExperiments', ref);
      if (choice === 'Show Logs') void vscode.commands.executeCommand('mlpipeline.openRunLogs', ref);
      if (choice === 'Open Run') void vscode.commands.executeCommand('mlpipeline.openRun', ref);
    });
  }

  /** Hover and completion in the editor show the last run's metrics. */
  private pushMetrics(spec: vscode.Uri, record: RunRecord | undefined): void {
    const client = this.languageClient.running;
    if (!client || !record || record.status !== 'succeeded') return;
    const metrics: Record<string, number> = {};
    for (const [s, st] of Object.entries(record.steps)) for (const [k, v] of Object.entries(st.metrics ?? {})) metrics[`${s}.${k}`] = v;
    void client.sendNotification('mlpipeline/setRunMetrics', { uri: spec.toString(), metrics }).catch(() => undefined);
  }

  dispose(): void {
    for (const r of this.live.values()) r.abort.abort();
    for (const ch of this.channels.values()) ch.dispose();
    this.emitter.dispose();
  }
}

/**
 * `mlpipeline.s3.*` and `mlpipeline.kubernetes.kubeconfig` for the engine; empty settings leave the
 * standard chains (AWS_* variables and profiles, $KUBECONFIG) in charge, as in the CLI.
 */
async function clusterSettings(spec: vscode.Uri): Promise<Pick<import('./runtime/engine').RunOptions, 's3' | 'kubernetesExecutor'>> {
  const cfg = vscode.workspace.getConfiguration('mlpipeline', spec);
  const str = (key: string): string | undefined => cfg.get<string>(key)?.trim() || undefined;
  const s3 = { endpoint: str('s3.endpoint'), profile: str('s3.profile'), region: str('s3.region') };
  const kubeconfig = str('kubernetes.kubeconfig');
  const out: Pick<import('./runtime/engine').RunOptions, 's3' | 'kubernetesExecutor'> = {};
  if (s3.endpoint || s3.profile || s3.region) out.s3 = Object.fromEntries(Object.entries(s3).filter(([, v]) => v)) as typeof out.s3;
  if (kubeconfig) {
    const { KubernetesExecutor } = await import('./runtime/kubernetes/executor');
    out.kubernetesExecutor = new KubernetesExecutor({ kubeconfig: kubeconfig.replace(/^~(?=\/)/, process.env.HOME ?? '~') });
  }
  return out;
}
