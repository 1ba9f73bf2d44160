import { execFile } from 'node:child_process';

export interface Gpu {
  index: number;
  name: string;
  memoryMiB: number;
}

/** GPUs that nvidia-smi reports; none when it is missing or fails (no driver, no GPU). */
export function detectGpus(timeoutMs = 5000): Promise<Gpu[]> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', ['--query-gpu=index,name,memory.total', '--format=csv,noheader,nounits'], { timeout: timeoutMs }, (err, stdout) => {
      if (err) return resolve([]);
      resolve(parseNvidiaSmi(stdout));
    });
  });
}

export function parseNvidiaSmi(out: string): Gpu[] {
  return out
    .split('\n')
    .map((l) => l.split(',').map((s) => s.trim()))
    .filter((f) => f.length >= 3 && /^[0-9]+$/.test(f[0]))
    .map((f) => ({ index: Number(f[0]), name: f[1], memoryMiB: Number(f[2]) }));
}

/** Hands out whole GPUs to steps; a step waits until enough are free. */
export class GpuPool {
  private readonly free: number[];
  private readonly waiters: { count: number; resolve: (ids: number[]) => void }[] = [];
  constructor(readonly all: number[]) {
    this.free = [...all];
  }
  get size(): number {
    return this.all.length;
  }
  acquire(count: number): Promise<number[]> {
    if (count > this.all.length) return Promise.reject(new Error(`needs ${count} GPUs, this machine has ${this.all.length}`));
    if (this.waiters.length === 0 && this.free.length >= count) return Promise.resolve(this.free.splice(0, count));
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }
  release(ids: number[]): void {
    this.free.push(...ids);
    this.free.sort((a, b) => a - b);
    while (this.waiters.length && this.free.length >= this.waiters[0].count) {
      const w = this.waiters.shift()!;
      w.resolve(this.free.splice(0, w.count));
    }
  }
}
