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
  signal: AbortSignal;
  onOutput(chunk: Buffer, stream: 'stdout' | 'stderr'): void;
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
