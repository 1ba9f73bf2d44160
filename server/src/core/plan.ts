import { isScalar, isSeq, type Document, type Node } from 'yaml';
import { INTERPOLATION, type SpecModel } from './model';
import { dependencyEdges } from './semantic';
import type { SpecAnalysis } from './validate';
import { entries, get, items, stringValue } from './yaml-nodes';

/**
 * The run plan: what the engine executes, derived from a validated spec. Pure data, so the editor (from
 * the open, possibly unsaved document) and the CLI (from disk) plan identically.
 */

export type ParamValue = string | number | boolean;

export interface PlannedStep {
  name: string;
  /** `${...}` resolved; `${secrets.X}` becomes the shell variable `${X}`, filled from the secret at run time. */
  command: string;
  /** Non-secret environment, resolved. */
  env: Record<string, string>;
  /** Environment variable -> secret name; values are looked up at run time, never stored. */
  secretEnv: Record<string, string>;
  /** Every step this one depends on: `needs` plus steps whose outputs it references. */
  needs: string[];
  /** Workspace-relative paths the step reads: declared inputs and local datasets it references. */
  inputs: string[];
  /** Dataset names the step references. */
  datasets: string[];
  /** Upstream outputs the step references: `step.output`. */
  upstream: string[];
  /** Params the step references; their values enter its cache key. */
  params: string[];
  outputs: Record<string, string>;
  metrics?: string;
  plots: string[];
  target: string;
  targetType: 'local' | 'kubernetes';
  gpu?: { count: number; type?: string };
  /** Kubernetes requests/limits: the step's `resources` over its target's, key by key (`gpu` is above). */
  resources?: StepResources;
  timeoutMs?: number;
  retry: { max: number; on: string[] };
  cache: boolean;
  /** Working directory relative to the spec's folder. */
  workdir: string;
}

export interface RunPlan {
  specName: string;
  params: Record<string, ParamValue>;
  datasets: Record<string, { uri: string }>;
  /** In dependency order (document order among independent steps). */
  steps: PlannedStep[];
  targets: Record<string, { type: 'local' | 'kubernetes'; maxParallel?: number; gpus?: number[] | 'all'; kubernetes?: KubernetesTargetPlan }>;
  /** The spec's `storage:` section. `artifacts`: a folder or `s3://bucket/prefix/` outputs are copied to (docs/storage.md). */
  storage?: { artifacts?: string };
}

/**
 * Where a local step reads an `s3://` dataset: the engine downloads (and verifies) it there before the
 * step starts, and `${datasets.X}` in a local step's command resolves to this path. Stable across dataset
 * versions, so the command (and cache key) stays the same; the dataset's listing hash is the input.
 */
export function localDatasetPath(name: string, uri: string): string {
  const base = uri.endsWith('/') ? '' : uri.slice(uri.lastIndexOf('/') + 1);
  return `.mlpipeline/datasets/${name}/${base}`;
}

export interface StepResources {
  cpu?: string;
  memory?: string;
  ephemeralStorage?: string;
}

/** A `type: kubernetes` target, resolved. Steps carry their own merged `gpu` and `resources`. */
export interface KubernetesTargetPlan {
  /** kubeconfig context; undefined = the kubeconfig's current context. */
  context?: string;
  namespace: string;
  image: string;
  /** The target's default resources (steps and deployments replace them key by key). */
  resources: StepResources;
  gpu?: { count: number; type?: string };
  nodeSelector: Record<string, string>;
  tolerations: { key?: string; operator?: 'Exists' | 'Equal'; value?: string; effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[];
  spot: { policy: 'never' | 'auto' | 'always'; maxPricePerHour?: number };
  serviceAccount?: string;
  imagePullSecrets: string[];
  /** Target-level env (steps' own env wins); `${params.X}` resolved. */
  env: Record<string, string>;
  /** Target-level env variable -> secret name. */
  secretEnv: Record<string, string>;
}

export interface PlanOptions {
  /** `--set params.lr=0.01`: raw strings, parsed by each param's type. */
  overrides?: Record<string, string | ParamValue>;
  /** Run only these steps and what they depend on. */
  only?: string[];
  /** Use this compute target for steps that name none. */
  target?: string;
}

export type PlanResult = { ok: true; plan: RunPlan } | { ok: false; errors: string[] };

export function planRun(analysis: SpecAnalysis, options: PlanOptions = {}): PlanResult {
  const errors: string[] = [];
  const blocking = analysis.problems.filter((p) => p.severity === 'error');
  if (blocking.length || !analysis.model || !analysis.parsed.doc) {
    return { ok: false, errors: blocking.length ? blocking.map((p) => `${p.range.start.line + 1}:${p.range.start.character + 1} ${p.code} ${p.message}`) : ['The spec could not be read.'] };
  }
  const doc = analysis.parsed.doc;
  const model = analysis.model;
  const root = doc.contents;
  const specName = stringValue(get(doc, root, 'name')?.value) ?? 'pipeline';

  const params = resolveParams(doc, options.overrides ?? {}, errors);
  const datasets: RunPlan['datasets'] = {};
  for (const d of entries(doc, get(doc, root, 'datasets')?.value)) datasets[d.key] = { uri: stringValue(get(doc, d.value, 'uri')?.value) ?? '' };

  const targets: RunPlan['targets'] = {};
  let defaultTarget: string | undefined;
  for (const t of entries(doc, get(doc, root, 'compute')?.value)) {
    const type = stringValue(get(doc, t.value, 'type')?.value) === 'kubernetes' ? 'kubernetes' : 'local';
    const maxParallel = numberValue(get(doc, t.value, 'maxParallel')?.value);
    const gpusNode = get(doc, t.value, 'gpus')?.value;
    const gpus = stringValue(gpusNode) === 'all' ? 'all' : isSeq(gpusNode) ? items(doc, gpusNode).map((n) => numberValue(n)).filter((n): n is number => n !== undefined) : undefined;
    targets[t.key] = { type, ...(maxParallel !== undefined ? { maxParallel } : {}), ...(gpus !== undefined ? { gpus } : {}) };
    if (type === 'kubernetes') targets[t.key].kubernetes = planKubernetesTarget(doc, t.value, params);
    if (isScalar(get(doc, t.value, 'default')?.value) && (get(doc, t.value, 'default')!.value as { value: unknown }).value === true) defaultTarget = t.key;
  }
  if (options.target !== undefined) {
    if (!targets[options.target] && options.target !== 'local') errors.push(`There is no compute target \`${options.target}\`. Defined: ${Object.keys(targets).join(', ') || 'none'}.`);
    defaultTarget = options.target;
  }
  // `local`, the embedded executor, exists even when `compute:` does not name it.
  if (!targets.local) targets.local = { type: 'local' };
  defaultTarget ??= 'local';

  const edges = dependencyEdges(model);
  const order = topologicalOrder(edges);
  const steps = new Map<string, PlannedStep>();
  for (const s of entries(doc, get(doc, root, 'steps')?.value)) {
    const step = planStep(doc, model, s.key, s.value, { params, datasets, targets, defaultTarget: defaultTarget!, edges });
    steps.set(s.key, step);
  }
  let selected = order;
  if (options.only?.length) {
    for (const name of options.only) if (!steps.has(name)) errors.push(`There is no step \`${name}\`. Steps: ${[...steps.keys()].join(', ')}.`);
    const wanted = new Set<string>();
    const visit = (n: string): void => {
      if (wanted.has(n) || !steps.has(n)) return;
      wanted.add(n);
      steps.get(n)!.needs.forEach(visit);
    };
    options.only.forEach(visit);
    selected = order.filter((n) => wanted.has(n));
  }
  if (errors.length) return { ok: false, errors };
  const artifacts = stringValue(get(doc, get(doc, root, 'storage')?.value, 'artifacts')?.value);
  return { ok: true, plan: { specName, params, datasets, steps: selected.map((n) => steps.get(n)!), targets, ...(artifacts ? { storage: { artifacts } } : {}) } };
}

interface Context {
  params: Record<string, ParamValue>;
  datasets: RunPlan['datasets'];
  targets: RunPlan['targets'];
  defaultTarget: string;
  edges: Map<string, { to: string }[]>;
}

function planStep(doc: Document, model: SpecModel, name: string, node: Node | null, ctx: Context): PlannedStep {
  const outputs: Record<string, string> = {};
  for (const o of entries(doc, get(doc, node, 'outputs')?.value)) outputs[o.key] = stringValue(o.value) ?? '';
  const used = { params: new Set<string>(), datasets: new Set<string>(), upstream: new Set<string>() };
  // Commands are parsed by /bin/sh, so substituted values are quoted there; env values are not.
  const resolve = (text: string, quote: boolean): string =>
    text.replace(INTERPOLATION, (whole, escape: string, inner: string) => {
      const shellWord = quote ? quoteForShell : (v: string): string => v;
      if (escape === '$') return whole.slice(1); // `$${x}` is a literal `${x}`.
      const parts = inner.split('.');
      switch (parts[0]) {
        case 'params':
          used.params.add(parts[1]);
          return shellWord(String(ctx.params[parts[1]]));
        case 'datasets': {
          used.datasets.add(parts[1]);
          const uri = ctx.datasets[parts[1]]?.uri ?? '';
          // A local step reads an S3 dataset from its downloaded copy; a remote one gets the URI.
          const local = /^s3:\/\//i.test(uri) && (ctx.targets[stringValue(get(doc, node, 'compute')?.value) ?? ctx.defaultTarget]?.type ?? 'local') === 'local';
          return shellWord(local ? localDatasetPath(parts[1], uri) : uri);
        }
        case 'steps':
          used.upstream.add(`${parts[1]}.${parts[3]}`);
          return shellWord(stringValue(get(doc, get(doc, get(doc, get(doc, doc.contents, 'steps')?.value, parts[1])?.value, 'outputs')?.value, parts[3])?.value) ?? '');
        case 'outputs':
          return shellWord(outputs[parts[1]] ?? '');
        case 'secrets':
          return `\${${parts[1]}}`; // The shell expands it from the environment the executor sets.
        default:
          return whole; // `${HOME}` and friends belong to the shell.
      }
    });

  const command = resolve(stringValue(get(doc, node, 'command')?.value) ?? '', true);
  const { env, secretEnv } = envOf(doc, node, (raw) => resolve(raw, false));
  // Secrets referenced in the command travel as environment variables named after the secret.
  for (const ref of model.references) {
    if (ref.kind === 'secret' && ref.context.section === 'steps' && ref.context.owner === name && ref.context.field[0] === 'command') secretEnv[ref.name] = ref.name;
  }

  const declaredInputs = items(doc, get(doc, node, 'inputs')?.value).map((n) => stringValue(n)).filter((s): s is string => !!s);
  const localDatasets = [...used.datasets].map((d) => ctx.datasets[d]?.uri).filter((u): u is string => !!u && !/^[a-z][a-z0-9+.-]*:\/\//.test(u));
  const targetName = stringValue(get(doc, node, 'compute')?.value) ?? ctx.defaultTarget;
  const target = ctx.targets[targetName] ?? { type: 'local' as const };
  const targetNode = get(doc, get(doc, doc.contents, 'compute')?.value, targetName)?.value;
  const gpuNode = get(doc, get(doc, node, 'resources')?.value, 'gpu')?.value ?? get(doc, get(doc, targetNode, 'resources')?.value, 'gpu')?.value;
  const retryNode = get(doc, node, 'retry')?.value;
  const timeout = stringValue(get(doc, node, 'timeout')?.value);
  const cacheNode = get(doc, node, 'cache')?.value;
  return {
    name,
    command,
    env,
    secretEnv,
    needs: (ctx.edges.get(name) ?? []).map((e) => e.to),
    inputs: [...new Set([...declaredInputs, ...localDatasets])],
    datasets: [...used.datasets],
    upstream: [...used.upstream],
    params: [...used.params].filter((p) => p in ctx.params),
    outputs,
    metrics: stringValue(get(doc, node, 'metrics')?.value),
    plots: items(doc, get(doc, node, 'plots')?.value).map((n) => stringValue(n)).filter((s): s is string => !!s),
    target: targetName,
    targetType: target.type,
    gpu: parseGpu(isScalar(gpuNode) ? gpuNode.value : undefined),
    ...(target.type === 'kubernetes' ? { resources: mergeResources(get(doc, targetNode, 'resources')?.value, get(doc, node, 'resources')?.value, doc) } : {}),
    timeoutMs: timeout ? parseDuration(timeout) : undefined,
    retry: {
      max: numberValue(get(doc, retryNode, 'max')?.value) ?? 0,
      on: isSeq(get(doc, retryNode, 'on')?.value) ? items(doc, get(doc, retryNode, 'on')!.value).map((n) => stringValue(n) ?? '') : ['preempted', 'failure'],
    },
    cache: !(isScalar(cacheNode) && cacheNode.value === false),
    workdir: stringValue(get(doc, node, 'workdir')?.value) ?? '.',
  };
}

function planKubernetesTarget(doc: Document, node: Node | null, params: Record<string, ParamValue>): KubernetesTargetPlan {
  const str = (key: string): string | undefined => stringValue(get(doc, node, key)?.value);
  const nodeSelector: Record<string, string> = {};
  for (const e of entries(doc, get(doc, node, 'nodeSelector')?.value)) if (isScalar(e.value)) nodeSelector[e.key] = String(e.value.value);
  const tolerations: KubernetesTargetPlan['tolerations'] = items(doc, get(doc, node, 'tolerations')?.value).map((t) => {
    const out: KubernetesTargetPlan['tolerations'][number] = {};
    for (const e of entries(doc, t)) if (isScalar(e.value)) (out as Record<string, string>)[e.key] = String(e.value.value);
    return out;
  });
  const spotNode = get(doc, node, 'spot')?.value;
  const policy = stringValue(get(doc, spotNode, 'policy')?.value);
  const maxPrice = numberValue(get(doc, spotNode, 'maxPricePerHour')?.value);
  const { env, secretEnv } = envOf(doc, node, (raw) => raw.replace(/(?<!\$)\$\{params\.([A-Za-z_][A-Za-z0-9_-]*)\}/g, (w, p: string) => (p in params ? String(params[p]) : w)));
  return {
    ...(str('context') !== undefined ? { context: str('context') } : {}),
    namespace: str('namespace') ?? 'default',
    image: str('image') ?? '',
    resources: mergeResources(get(doc, node, 'resources')?.value, undefined, doc),
    ...(gpuOf(get(doc, get(doc, node, 'resources')?.value, 'gpu')?.value) ? { gpu: gpuOf(get(doc, get(doc, node, 'resources')?.value, 'gpu')?.value) } : {}),
    nodeSelector,
    tolerations,
    spot: { policy: policy === 'auto' || policy === 'always' ? policy : 'never', ...(maxPrice !== undefined ? { maxPricePerHour: maxPrice } : {}) },
    ...(str('serviceAccount') !== undefined ? { serviceAccount: str('serviceAccount') } : {}),
    imagePullSecrets: items(doc, get(doc, node, 'imagePullSecrets')?.value).map((n) => stringValue(n)).filter((s): s is string => !!s),
    env,
    secretEnv,
  };
}

/** The `env` map of a step or target: a value that is exactly `${secrets.NAME}` goes to `secretEnv` (as NAME), any other through `resolve` to `env`. */
function envOf(doc: Document, node: Node | null, resolve: (raw: string) => string): { env: Record<string, string>; secretEnv: Record<string, string> } {
  const env: Record<string, string> = {};
  const secretEnv: Record<string, string> = {};
  for (const e of entries(doc, get(doc, node, 'env')?.value)) {
    const raw = isScalar(e.value) ? String(e.value.value) : '';
    const whole = /^\$\{secrets\.([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(raw.trim());
    if (whole) secretEnv[e.key] = whole[1];
    else env[e.key] = resolve(raw);
  }
  return { env, secretEnv };
}

function gpuOf(n: Node | null | undefined): { count: number; type?: string } | undefined {
  return parseGpu(isScalar(n) ? n.value : undefined);
}

/** The step's cpu/memory/ephemeralStorage over the target's, key by key. */
function mergeResources(targetRes: Node | null | undefined, stepRes: Node | null | undefined, doc: Document): StepResources {
  const out: StepResources = {};
  for (const res of [targetRes, stepRes]) {
    for (const key of ['cpu', 'memory', 'ephemeralStorage'] as const) {
      const v = get(doc, res ?? null, key)?.value;
      if (isScalar(v) && v.value !== null && v.value !== undefined) out[key] = String(v.value);
    }
  }
  return out;
}

function resolveParams(doc: Document, overrides: Record<string, string | ParamValue>, errors: string[]): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  const defs = new Map<string, Node | null>();
  for (const p of entries(doc, get(doc, doc.contents, 'params')?.value)) {
    defs.set(p.key, p.value);
    const d = get(doc, p.value, 'default')?.value;
    if (isScalar(d) && (typeof d.value === 'string' || typeof d.value === 'number' || typeof d.value === 'boolean')) out[p.key] = d.value;
  }
  for (const [key, raw] of Object.entries(overrides)) {
    const name = key.startsWith('params.') ? key.slice('params.'.length) : key;
    const node = defs.get(name);
    if (!defs.has(name)) {
      errors.push(`--set ${key}: there is no param \`${name}\`. Params: ${[...defs.keys()].join(', ') || 'none'}.`);
      continue;
    }
    const parsed = parseParamValue(doc, node ?? null, raw);
    if (typeof parsed === 'object') errors.push(`--set ${key}=${String(raw)}: ${parsed.error}`);
    else out[name] = parsed;
  }
  return out;
}

/** Parses a value for a param by its declared type and checks bounds and allowed values. */
export function parseParamValue(doc: Document, def: Node | null, raw: string | ParamValue): ParamValue | { error: string } {
  const type = stringValue(get(doc, def, 'type')?.value);
  const min = numberValue(get(doc, def, 'min')?.value);
  const max = numberValue(get(doc, def, 'max')?.value);
  const text = String(raw).trim();
  let value: ParamValue;
  if (type === 'int' || type === 'float') {
    const n = typeof raw === 'number' ? raw : text === '' ? NaN : Number(text);
    if (!Number.isFinite(n)) return { error: `expected a number.` };
    if (type === 'int' && !Number.isInteger(n)) return { error: `expected a whole number.` };
    if (min !== undefined && n < min) return { error: `below the minimum ${min}.` };
    if (max !== undefined && n > max) return { error: `above the maximum ${max}.` };
    value = n;
  } else if (type === 'bool') {
    if (raw === true || text === 'true') value = true;
    else if (raw === false || text === 'false') value = false;
    else return { error: 'expected true or false.' };
  } else if (type === 'enum') {
    const allowed = items(doc, get(doc, def, 'values')?.value).map((n) => (isScalar(n) ? n.value : undefined));
    const hit = allowed.find((a) => String(a) === text);
    if (hit === undefined) return { error: `expected one of ${allowed.map(String).join(', ')}.` };
    value = hit as ParamValue;
  } else {
    value = typeof raw === 'string' ? raw : String(raw);
  }
  return value;
}

function parseGpu(v: unknown): PlannedStep['gpu'] {
  if (typeof v === 'number') return v > 0 ? { count: v } : undefined;
  if (typeof v !== 'string') return undefined;
  if (/^[0-9]+$/.test(v)) return Number(v) > 0 ? { count: Number(v) } : undefined;
  const m = /^([A-Za-z][A-Za-z0-9-]*)(?::([0-9]+))?$/.exec(v);
  return m ? { type: m[1], count: m[2] ? Number(m[2]) : 1 } : undefined;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `15m`, `1h30m`, `2d` -> milliseconds; undefined when it does not parse. */
export function parseDuration(text: string): number | undefined {
  const re = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)/g;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * UNIT_MS[m[2]];
    consumed += m[0].length;
  }
  return consumed === text.length && consumed > 0 ? total : undefined;
}

function numberValue(n: Node | null | undefined): number | undefined {
  return isScalar(n) && typeof n.value === 'number' ? n.value : undefined;
}

/** Kahn's algorithm; ties keep document order, so plans and logs are stable. */
function topologicalOrder(edges: Map<string, { to: string }[]>): string[] {
  const names = [...edges.keys()];
  const remaining = new Map(names.map((n) => [n, new Set(edges.get(n)!.map((e) => e.to).filter((t) => edges.has(t)))]));
  const out: string[] = [];
  while (out.length < names.length) {
    const next = names.find((n) => remaining.has(n) && remaining.get(n)!.size === 0);
    if (next === undefined) break; // A cycle: validation reports it and planning refuses earlier.
    out.push(next);
    remaining.delete(next);
    for (const deps of remaining.values()) deps.delete(next);
  }
  return out;
}

const SAFE_WORD = /^[A-Za-z0-9_./:=@%+,-]+$/;

/** Quotes a substituted value for /bin/sh unless it is plainly safe, so values can never inject commands. */
export function quoteForShell(value: string): string {
  if (value !== '' && SAFE_WORD.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
