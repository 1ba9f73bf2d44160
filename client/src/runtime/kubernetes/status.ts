/**
 * Reading Job, pod and Event status into the engine's words (pure: unit-tested on recorded objects).
 */

export interface PodLike {
  metadata?: { name?: string; uid?: string; creationTimestamp?: unknown; deletionTimestamp?: unknown };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    conditions?: { type?: string; status?: string; reason?: string; message?: string }[];
    containerStatuses?: { name?: string; state?: { waiting?: { reason?: string; message?: string }; terminated?: { exitCode?: number; reason?: string; message?: string } } }[];
  };
}
export interface JobLike {
  status?: { succeeded?: number; failed?: number; active?: number; conditions?: { type?: string; status?: string; reason?: string; message?: string }[] };
}
export interface EventLike {
  reason?: string;
  message?: string;
  type?: string;
  count?: number;
  lastTimestamp?: unknown;
  eventTime?: unknown;
}

export type FailureReason = 'failure' | 'timeout' | 'oom' | 'preempted' | 'unschedulable' | 'error';

/** Pod reasons that mean the node went away under it (spot reclaim, drain, eviction), not a bug in the step. */
const PREEMPTED = new Set(['Evicted', 'Preempting', 'NodeLost', 'Shutdown', 'NodeShutdown', 'Terminated', 'DeletionByTaintManager', 'TerminationByKubelet']);

/** undefined while the Job has not failed; otherwise why, with the container's exit code when there is one. */
export function jobFailure(job: JobLike, pods: PodLike[]): { reason: FailureReason; message: string; exitCode?: number } | undefined {
  const failed = (job.status?.conditions ?? []).find((c) => c.type === 'Failed' && c.status === 'True');
  if (!failed) return undefined;
  const pod = [...pods].reverse().find((p) => p.status?.phase === 'Failed') ?? pods[pods.length - 1];
  const term = pod?.status?.containerStatuses?.find((c) => c.state?.terminated)?.state?.terminated;
  const exitCode = term?.exitCode;
  if (failed.reason === 'DeadlineExceeded') return { reason: 'timeout', message: failed.message ?? 'the Job ran past activeDeadlineSeconds', ...(exitCode !== undefined ? { exitCode } : {}) };
  const disrupted = pod?.status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  if ((pod?.status?.reason && PREEMPTED.has(pod.status.reason)) || disrupted) {
    return { reason: 'preempted', message: `was preempted: its pod was stopped by the cluster (${pod?.status?.reason ?? disrupted?.reason}${pod?.status?.message ? `: ${pod.status.message}` : ''})` };
  }
  if (term?.reason === 'OOMKilled') return { reason: 'oom', message: 'was killed for running out of memory (OOMKilled); raise `resources.memory` or lower the batch size', ...(exitCode !== undefined ? { exitCode } : {}) };
  if (exitCode !== undefined) return { reason: 'failure', message: `failed with exit code ${exitCode}`, exitCode };
  return { reason: 'failure', message: `failed: ${failed.reason ?? 'Failed'}${failed.message ? ` (${failed.message})` : ''}` };
}

/** Waiting reasons that will not fix themselves. */
const FATAL_WAITING = new Set(['CreateContainerConfigError', 'InvalidImageName', 'CreateContainerError', 'RunContainerError']);
const SLOW_WAITING = new Set(['ErrImagePull', 'ImagePullBackOff', 'CrashLoopBackOff', 'ErrImageNeverPull']);

/**
 * Why a Pending pod does not run: the newest FailedScheduling Event ("0/3 nodes are available: 3
 * Insufficient nvidia.com/gpu.") or a waiting container (image pull, missing Secret key). `fatal` problems
 * fail the step at once; the others after the executor's pending timeout (autoscalers may still add a node).
 */
export function podProblem(pod: PodLike, events: EventLike[]): { reason: FailureReason; message: string; fatal: boolean } | undefined {
  for (const c of pod.status?.containerStatuses ?? []) {
    const w = c.state?.waiting;
    if (!w?.reason) continue;
    if (FATAL_WAITING.has(w.reason)) return { reason: 'error', message: `${w.reason}: ${w.message ?? ''}`.trim(), fatal: true };
    if (SLOW_WAITING.has(w.reason)) return { reason: 'error', message: `${w.reason}: ${w.message ?? ''}`.trim(), fatal: false };
  }
  const sched = events
    .filter((e) => e.reason === 'FailedScheduling')
    .sort((a, b) => String(a.lastTimestamp ?? a.eventTime ?? '').localeCompare(String(b.lastTimestamp ?? b.eventTime ?? '')))
    .pop();
  if (sched) return { reason: 'unschedulable', message: `FailedScheduling: ${sched.message ?? 'no node fits the pod'}`, fatal: false };
  const cond = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable');
  if (cond) return { reason: 'unschedulable', message: `Unschedulable: ${cond.message ?? 'no node fits the pod'}`, fatal: false };
  return undefined;
}
