import { spawn } from 'node:child_process';

/** One shell command, run in its own process group so cancel and timeout reach every child it started. */
export interface ProcessSpec {
  command: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Time between SIGTERM and SIGKILL when stopping. */
  graceMs?: number;
  signal?: AbortSignal;
  onOutput(chunk: Buffer, stream: 'stdout' | 'stderr'): void;
}

export interface ProcessResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  cancelled: boolean;
  durationMs: number;
  /** The process could not be started at all (missing shell or folder). */
  spawnError?: string;
}

export function runProcess(spec: ProcessSpec): Promise<ProcessResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    let timedOut = false;
    let cancelled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const child = spawn('/bin/sh', ['-c', spec.command], {
      cwd: spec.cwd,
      env: spec.env,
      // A new process group: killing -pid stops the shell and everything it started (python, dataloaders).
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stop = (): void => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid!, 'SIGKILL'), spec.graceMs ?? 5000);
    };
    const timer = spec.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          stop();
        }, spec.timeoutMs)
      : undefined;
    const onAbort = (): void => {
      cancelled = true;
      stop();
    };
    if (spec.signal?.aborted) onAbort();
    else spec.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout!.on('data', (d: Buffer) => spec.onOutput(d, 'stdout'));
    child.stderr!.on('data', (d: Buffer) => spec.onOutput(d, 'stderr'));
    const finish = (result: Omit<ProcessResult, 'durationMs' | 'timedOut' | 'cancelled'>): void => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      spec.signal?.removeEventListener('abort', onAbort);
      // The shell is gone; make sure nothing it left behind in its group keeps running.
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      resolve({ ...result, timedOut, cancelled, durationMs: performance.now() - started });
    };
    child.on('error', (e) => finish({ exitCode: null, signal: null, spawnError: e.message }));
    child.on('close', (code, signal) => finish({ exitCode: code, signal }));
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}
