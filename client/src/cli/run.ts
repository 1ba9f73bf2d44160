import { planRun, type ParamValue } from '../../../server/src/core/plan';
import { runPlan, type EngineEvent } from '../runtime/engine';
import { intOption, one, parseArgs, UsageError } from './args';
import { duration, paint, safe } from './output';
import { loadSpec } from './spec-file';

export const RUN_USAGE = `mlpipeline run [spec] [--step NAME]... [--set params.NAME=VALUE]... [--force] [--jobs N] [--label TEXT] [--target NAME]`;

/** Parses repeated `--set params.x=v` into overrides. */
export function parseSets(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set takes NAME=VALUE, e.g. --set params.lr=0.01; got \`${v}\`.`);
    const key = v.slice(0, eq);
    if (!key.startsWith('params.')) throw new UsageError(`--set only sets params: write --set params.${key}=${v.slice(eq + 1)}.`);
    out[key] = v.slice(eq + 1);
  }
  return out;
}

/** Prints engine events as a terminal log: a line per step state, output prefixed by its step. */
export function printer(stepWidth: number): (e: EngineEvent) => void {
  const partial = new Map<string, string>();
  const prefix = (step: string): string => paint('36', `${step.padEnd(stepWidth)} |`);
  return (e) => {
    switch (e.type) {
      case 'run-started':
        process.stdout.write(`${paint('1', 'run')} ${e.runId}: ${e.steps.join(' → ')}\n`);
        break;
      case 'step-started':
        process.stdout.write(`${prefix(e.step)} ${paint('34', '▶ start')}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}${e.gpus ? ` on GPU ${e.gpus.join(',')}` : ''}\n`);
        break;
      case 'step-output': {
        if (!e.step) {
          process.stderr.write(e.text);
          break;
        }
        const text = (partial.get(e.step) ?? '') + e.text;
        const lines = text.split(/\r?\n/);
        partial.set(e.step, lines.pop()!);
        for (const l of lines) process.stdout.write(`${prefix(e.step)} ${safe(l)}\n`);
        break;
      }
      case 'step-finished': {
        const rest = partial.get(e.step);
        if (rest) process.stdout.write(`${prefix(e.step)} ${safe(rest)}\n`);
        partial.delete(e.step);
        const mark = e.status === 'succeeded' ? paint('32', '✔ done') : e.status === 'cached' ? paint('32', '↺ cached (inputs unchanged)') : e.status === 'skipped' ? paint('33', '○ skipped') : e.status === 'cancelled' ? paint('33', '■ cancelled') : paint('31', '✘ failed');
        const metrics = e.metrics ? ' ' + Object.entries(e.metrics).map(([k, v]) => `${k}=${Number(v.toPrecision(4))}`).join(' ') : '';
        process.stdout.write(`${prefix(e.step)} ${mark} ${e.status === 'skipped' || e.status === 'cached' ? '' : duration(e.durationMs)}${metrics}\n`);
        if (e.error && e.status !== 'cancelled') process.stdout.write(`${prefix(e.step)} ${paint('31', e.error)}\n`);
        break;
      }
      case 'run-finished':
        break;
    }
  };
}

/** Ctrl+C cancels cleanly (children killed, run recorded as cancelled); a second Ctrl+C exits at once. */
export function cancelOnSignals(): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  let count = 0;
  const handler = (sig: NodeJS.Signals): void => {
    count++;
    if (count > 1) process.exit(130);
    process.stderr.write(`\n${sig === 'SIGINT' ? 'Ctrl+C' : sig}: cancelling (stopping running steps; press again to exit at once)…\n`);
    ac.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: ac.signal,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

export async function runCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--step', '--set', '--jobs', '--label', '--target'], ['--force', '--json']);
  if (args.positional.length > 1) throw new UsageError(`run takes one spec, got ${args.positional.length}.`);
  const spec = loadSpec(args.positional[0]);
  if (!spec) return 1;
  const planned = planRun(spec.analysis, { overrides: parseSets(args.values.get('--set') ?? []), only: args.values.get('--step'), target: one(args, '--target') });
  if (!planned.ok) {
    for (const e of planned.errors) process.stderr.write(`mlpipeline: ${e}\n`);
    return 1;
  }
  const json = args.flags.has('--json');
  const width = Math.max(...planned.plan.steps.map((s) => s.name.length));
  const cancel = cancelOnSignals();
  try {
    const result = await runPlan({
      specPath: spec.path,
      specText: spec.text,
      plan: planned.plan,
      force: args.flags.has('--force'),
      maxParallel: intOption(args, '--jobs'),
      label: one(args, '--label'),
      signal: cancel.signal,
      onEvent: json ? undefined : printer(width),
    });
    if (json) {
      process.stdout.write(JSON.stringify(result.record, null, 2) + '\n');
    } else {
      summary(result.record.id, result.status, result.record);
    }
    return result.status === 'succeeded' ? 0 : result.status === 'cancelled' ? 130 : 1;
  } finally {
    cancel.dispose();
  }
}

function summary(id: string, status: string, record: { startedAt: string; finishedAt?: string; steps: Record<string, { metrics?: Record<string, number> }>; params: Record<string, ParamValue>; error?: string }): void {
  const ms = record.finishedAt ? Date.parse(record.finishedAt) - Date.parse(record.startedAt) : undefined;
  const metrics = Object.entries(record.steps).flatMap(([s, r]) => Object.entries(r.metrics ?? {}).map(([k, v]) => `${s}.${k}=${Number(v.toPrecision(4))}`));
  const color = status === 'succeeded' ? '32' : status === 'cancelled' ? '33' : '31';
  process.stdout.write(`\n${paint(color, `Run ${id} ${status}`)} in ${duration(ms)}.\n`);
  if (record.error && status !== 'succeeded') process.stdout.write(`${record.error}\n`);
  if (metrics.length) process.stdout.write(`Metrics: ${metrics.join('  ')}\n`);
  process.stdout.write(`Details: mlpipeline show ${id}   Logs: mlpipeline logs ${id}   All runs: mlpipeline runs\n`);
}
