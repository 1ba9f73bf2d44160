/**
 * Executor overhead per step: the time from one step's process exiting to the next one's spawning in a
 * chain of steps whose command is `true`, plus the whole run divided by the steps minus a bare
 * `sh -c true`. Target: ≤ 20 ms per step. Run: node --import tsx bench/executor.ts
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planRun } from '../server/src/core/plan';
import { analyzeSpec } from '../server/src/core/validate';
import { runPlan } from '../client/src/runtime/engine';

const STEPS = 40;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mlp-bench-exec-'));
  const spec = `apiVersion: mlpipeline/v1\nname: bench\nsteps:\n${Array.from({ length: STEPS }, (_, i) => `  s${i}:\n    command: "true"\n    cache: false\n${i ? `    needs: [s${i - 1}]\n` : ''}`).join('')}`;
  writeFileSync(join(dir, 'mlpipeline.yaml'), spec);
  const planned = planRun(analyzeSpec(spec));
  if (!planned.ok) throw new Error(planned.errors.join('\n'));

  // A bare spawn of the same command, for reference.
  const bare: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    spawnSync('/bin/sh', ['-c', 'true']);
    bare.push(performance.now() - t);
  }

  const gaps: number[] = [];
  const perStep: number[] = [];
  for (let round = 0; round < 3; round++) {
    const finished = new Map<string, number>();
    const started = new Map<string, number>();
    const t0 = performance.now();
    await runPlan({
      specPath: join(dir, 'mlpipeline.yaml'),
      specText: spec,
      plan: planned.plan,
      onEvent: (e) => {
        if (e.type === 'step-started') started.set(e.step, performance.now());
        if (e.type === 'step-finished') finished.set(e.step, performance.now());
      },
    });
    const total = performance.now() - t0;
    for (let i = 1; i < STEPS; i++) gaps.push(started.get(`s${i}`)! - finished.get(`s${i - 1}`)!);
    perStep.push(total / STEPS - median(bare));
  }
  rmSync(dir, { recursive: true, force: true });
  const rows = [
    ['bare `sh -c true` spawn (reference)', median(bare)],
    ['gap: step exit -> next step spawn (median)', median(gaps)],
    ['per step: run time / steps - bare spawn (median of 3 runs)', median(perStep)],
  ] as const;
  console.log(`executor overhead, chain of ${STEPS} steps, cache off (target ≤ 20 ms per step)`);
  for (const [name, ms] of rows) console.log(`  ${name.padEnd(58)} ${ms.toFixed(1).padStart(7)} ms`);
}

void main();
