import type { PlannedStep, RunPlan } from '../../../server/src/core/plan';
import { runProcess, type ProcessResult } from './process';

/**
 * The seam between the engine (scheduling, caching, records) and where a step's command runs: a local
 * process group, or a Kubernetes Job. One attempt per call; the engine decides about retries.
 */
export interface StepExecution {
  step: PlannedStep;
  plan: RunPlan;
  runId: string;
  attempt: number;
  /** The step's cache key: executors that name remote objects after it stay idempotent across runs. */
  cacheKey: string;
  /** Absolute working directory (local executor). */
  cwd: string;
  /** Full environment for a local process, secret values included. Remote executors must not ship it. */
  env: NodeJS.ProcessEnv;
  /** Run even when an earlier identical attempt already succeeded remotely (`--force`). */
  force: boolean;
  /**
   * Plain environment for a remote step on top of the spec's (the storage contract: input URIs, upload
   * prefixes; docs/storage.md). Never secret values. Local executors ignore it.
   */
  remoteEnv?: Record<string, string>;
  signal: AbortSignal;
  onOutput(chunk: Buffer, stream: 'stdout' | 'stderr'): void;
  /** Called once a remote executor knows which object runs this attempt (created, or adopted from an earlier run). */
  onRemote?(run: RemoteRun): void;
}

/** The object that runs an attempt remotely: for Kubernetes, the Job. */
export interface RemoteRun {
  kind: 'kubernetes-job';
  name: string;
  namespace: string;
  /** kubeconfig context. */
  context: string;
  /** The run that created it (another run's id when this one follows a Job that run started). */
  createdBy?: string;
  /** The plain environment the pod really got (an adopted Job keeps its creator's), secrets left out. */
  env: Record<string, string>;
}

export interface StepExecutionResult extends ProcessResult {
  /**
   * Set by executors that know better than an exit code why an attempt failed (a pod that could not be
   * scheduled, a preempted node, an API error): the engine records `message` and retries by `reason`.
   */
  failure?: { reason: 'failure' | 'timeout' | 'oom' | 'preempted' | 'unschedulable' | 'error'; message: string };
}

export interface StepExecutor {
  run(x: StepExecution): Promise<StepExecutionResult>;
}

export const localExecutor: StepExecutor = {
  run: (x) => runProcess({ command: x.step.command, cwd: x.cwd, env: x.env, timeoutMs: x.step.timeoutMs, signal: x.signal, onOutput: x.onOutput }),
};
