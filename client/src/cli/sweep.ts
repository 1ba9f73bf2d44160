import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { isScalar, isSeq, type Document } from 'yaml';
import { planRun, type ParamValue } from '../../../server/src/core/plan';
import { entries, get, items, stringValue } from '../../../server/src/core/yaml-nodes';
import { runPlan, type RunResult } from '../runtime/engine';
import { mulberry32 } from '../runtime/random';
import { intOption, parseArgs, UsageError } from './args';
import { formatValue, paint, table } from './output';
import { cancelOnSignals, printer } from './run';
import { loadSpec } from './spec-file';

/** Not copied into trial workspaces: run state, VCS data and installed packages. */
const SKIP_IN_TRIALS = new Set(['.mlpipeline', '.git', 'node_modules', '.venv', 'venv']);

export interface SweepDef {
  name: string;
  step: string;
  method: 'grid' | 'random';
  parameters: Record<string, ParamValue[] | { min: number; max: number; distribution: string }>;
  samples?: number;
  seed: number;
  objective?: { step: string; metric: string; goal: 'minimize' | 'maximize' };
  maxParallel: number;
}

export function readSweep(doc: Document, name: string): SweepDef {
  const sweeps = get(doc, doc.contents, 'sweeps')?.value;
  const node = get(doc, sweeps, name)?.value;
  if (!node) throw new UsageError(`There is no sweep \`${name}\`. Sweeps: ${entries(doc, sweeps).map((e) => e.key).join(', ') || 'none'}.`);
  const parameters: SweepDef['parameters'] = {};
  for (const p of entries(doc, get(doc, node, 'parameters')?.value)) {
    if (isSeq(p.value)) parameters[p.key] = items(doc, p.value).map((n) => (isScalar(n) ? (n.value as ParamValue) : String(n)));
    else {
      const num = (k: string): number => Number((get(doc, p.value, k)?.value as { value?: unknown } | undefined)?.value);
      parameters[p.key] = { min: num('min'), max: num('max'), distribution: stringValue(get(doc, p.value, 'distribution')?.value) ?? 'uniform' };
    }
  }
  const obj = get(doc, node, 'objective')?.value;
  const metric = stringValue(get(doc, obj, 'metric')?.value);
  const scalar = (k: string): unknown => (get(doc, node, k)?.value as { value?: unknown } | undefined)?.value;
  return {
    name,
    step: stringValue(get(doc, node, 'step')?.value) ?? '',
    method: stringValue(get(doc, node, 'method')?.value) === 'random' ? 'random' : 'grid',
    parameters,
    samples: typeof scalar('samples') === 'number' ? (scalar('samples') as number) : undefined,
    seed: typeof scalar('seed') === 'number' ? (scalar('seed') as number) : 0,
    objective: metric ? { step: metric.slice(0, metric.indexOf('.')), metric: metric.slice(metric.indexOf('.') + 1), goal: stringValue(get(doc, obj, 'goal')?.value) === 'minimize' ? 'minimize' : 'maximize' } : undefined,
    maxParallel: typeof scalar('maxParallel') === 'number' ? (scalar('maxParallel') as number) : 1,
  };
}

/** Grid: the cartesian product, in the order written. Random: `samples` seeded draws. */
export function expandTrials(def: SweepDef): Record<string, ParamValue>[] {
  const names = Object.keys(def.parameters);
  if (def.method === 'grid') {
    let trials: Record<string, ParamValue>[] = [{}];
    for (const n of names) {
      const values = def.parameters[n];
      if (!Array.isArray(values)) throw new UsageError(`Grid sweep \`${def.name}\` needs a list of values for \`${n}\`.`);
      trials = trials.flatMap((t) => values.map((v) => ({ ...t, [n]: v })));
    }
    return trials;
  }
  const rand = mulberry32(def.seed);
  return Array.from({ length: def.samples ?? 10 }, () => {
    const t: Record<string, ParamValue> = {};
    for (const n of names) {
      const spec = def.parameters[n];
      if (Array.isArray(spec)) t[n] = spec[Math.floor(rand() * spec.length)];
      else if (spec.distribution === 'log-uniform') t[n] = Number(Math.exp(Math.log(spec.min) + rand() * (Math.log(spec.max) - Math.log(spec.min))).toPrecision(6));
      else if (spec.distribution === 'int-uniform') t[n] = Math.floor(spec.min + rand() * (spec.max - spec.min + 1));
      else t[n] = Number((spec.min + rand() * (spec.max - spec.min)).toPrecision(6));
    }
    return t;
  });
}

export async function sweepCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--jobs'], ['--force']);
  if (args.positional.length < 1 || args.positional.length > 2) throw new UsageError('sweep takes a sweep name and optionally a spec: mlpipeline sweep lr-search [spec]');
  const [name, specArg] = args.positional;
  const spec = loadSpec(specArg);
  if (!spec) return 1;
  const def = readSweep(spec.analysis.parsed.doc!, name);
  const trials = expandTrials(def);
  const parallel = Math.max(1, intOption(args, '--jobs') ?? def.maxParallel);
  const only = [...new Set([def.step, ...(def.objective ? [def.objective.step] : [])])];
  const workspace = dirname(spec.path);
  const storeRoot = join(workspace, '.mlpipeline', 'runs');
  process.stdout.write(`${paint('1', `sweep ${name}`)}: ${trials.length} trials of ${def.step} (${def.method}), ${parallel} at a time${def.objective ? `, ${def.objective.goal} ${def.objective.step}.${def.objective.metric}` : ''}\n`);

  // Trials write the same output paths, so each runs in its own copy of the workspace (without
  // .mlpipeline, .git, node_modules), kept per param set: a trial whose inputs are unchanged since the
  // last sweep finds its outputs and cache there, and is not run again.
  const sweepDir = join(workspace, '.mlpipeline', 'sweeps', name);
  const cancel = cancelOnSignals();
  const results: { trial: number; params: Record<string, ParamValue>; result?: RunResult; error?: string }[] = trials.map((params, i) => ({ trial: i + 1, params }));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < trials.length && !cancel.signal.aborted) {
      const slot = results[next++];
      const planned = planRun(spec.analysis, { overrides: slot.params, only });
      if (!planned.ok) {
        slot.error = planned.errors.join(' ');
        continue;
      }
      let specPath = spec.path;
      {
        const dir = join(sweepDir, createHash('sha256').update(JSON.stringify(Object.entries(slot.params).sort())).digest('hex').slice(0, 12));
        mkdirSync(dir, { recursive: true });
        // Outputs are not copied: the trial's own (from its last run) are what its cache vouches for.
        const produced = new Set(planned.plan.steps.flatMap((st) => [...Object.values(st.outputs), st.metrics, ...st.plots]).filter((p): p is string => !!p).map((p) => resolve(workspace, p).replace(/\/+$/, '')));
        for (const entry of readdirSync(workspace)) {
          if (!SKIP_IN_TRIALS.has(entry)) cpSync(join(workspace, entry), join(dir, entry), { recursive: true, filter: (src) => !produced.has(src.replace(/\/+$/, '')) });
        }
        specPath = join(dir, basename(spec.path));
      }
      const label = Object.entries(slot.params).map(([k, v]) => `${k}=${formatValue(v)}`).join(' ');
      process.stdout.write(`${paint('1', `trial ${slot.trial}/${trials.length}`)} ${label}\n`);
      slot.result = await runPlan({
        specPath,
        specText: spec.text,
        plan: planned.plan,
        storeRoot,
        force: args.flags.has('--force'),
        label,
        sweep: { name, trial: slot.trial },
        signal: cancel.signal,
        onEvent: parallel > 1 ? undefined : printer(Math.max(...planned.plan.steps.map((s) => s.name.length))),
      });
      process.stdout.write(`${paint('1', `trial ${slot.trial}`)} ${slot.result.status} (run ${slot.result.runId})\n`);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(parallel, trials.length) }, worker));
  } finally {
    cancel.dispose();
  }

  const objective = (r: (typeof results)[number]): number | undefined => (def.objective ? r.result?.record.steps[def.objective.step]?.metrics?.[def.objective.metric] : undefined);
  const scored = results.filter((r) => r.result?.status === 'succeeded' && objective(r) !== undefined);
  const best = def.objective ? scored.sort((a, b) => (def.objective!.goal === 'maximize' ? objective(b)! - objective(a)! : objective(a)! - objective(b)!))[0] : undefined;
  process.stdout.write('\n' + table(['trial', 'run', 'status', ...Object.keys(def.parameters), ...(def.objective ? [`${def.objective.step}.${def.objective.metric}`] : [])], results.map((r) => [String(r.trial), r.result?.runId ?? '', r.result?.status ?? (r.error ? 'invalid' : 'not run'), ...Object.keys(def.parameters).map((k) => formatValue(r.params[k])), ...(def.objective ? [objective(r) === undefined ? '' : formatValue(objective(r))] : [])])));
  for (const r of results) if (r.error) process.stdout.write(`trial ${r.trial}: ${r.error}\n`);
  if (best) process.stdout.write(`\n${paint('32', 'Best')}: trial ${best.trial} (run ${best.result!.runId}) ${Object.entries(best.params).map(([k, v]) => `${k}=${formatValue(v)}`).join(' ')} → ${def.objective!.step}.${def.objective!.metric} = ${formatValue(objective(best))}\n`);
  process.stdout.write(`Trial workspaces: ${relative(process.cwd(), sweepDir)}\n`);
  if (cancel.signal.aborted) return 130;
  return results.every((r) => r.result?.status === 'succeeded') ? 0 : 1;
}
