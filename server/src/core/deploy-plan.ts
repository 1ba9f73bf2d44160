import { parseDuration, planRun, quoteForShell, type ParamValue, type PlanOptions } from './plan';
import type { SpecAnalysis } from './validate';

/**
 * Resolves one deployment of a validated spec into what a deploy target executes: the model reference,
 * the server command with `${model}`/params substituted (shell-quoted, as `plan.ts` does for steps), port,
 * probes, environment, rollout and the monitors/alerts that watch it. Pure: IO comes in as arguments.
 */

export type CompareOp = '>=' | '>' | '<=' | '<' | '==' | '!=';

export interface GateClause {
  /** `evaluate.auc`: step, then the metric key (which may itself contain dots). */
  step: string;
  metric: string;
  op: CompareOp;
  value: number;
  text: string;
}

export type ModelRef =
  | { kind: 'step-output'; step: string; output: string; /** Workspace-relative path the step writes. */ path: string }
  | { kind: 'path'; path: string }
  | { kind: 's3'; uri: string };

export interface ResolvedSlo {
  p50LatencyMs?: number;
  p95LatencyMs?: number;
  p99LatencyMs?: number;
  errorRate?: number;
  windowMs: number;
}

export interface ResolvedDrift {
  /** Workspace-relative path or URI of the reference data (datasets resolved). */
  reference: string;
  method: 'psi' | 'ks' | 'chi2';
  /** psi: breach when PSI > threshold (default 0.2); ks, chi2: breach when the p-value < threshold (default 0.05). */
  threshold?: number;
  features?: string[];
  scheduleMs: number;
}

export interface ResolvedMonitor {
  name: string;
  description?: string;
  deployment: string;
  slo?: ResolvedSlo;
  drift?: ResolvedDrift;
  prometheus?: string;
}

export interface ResolvedAlert {
  index: number;
  monitors: string[];
  notify: ('vscode' | 'log')[];
  description?: string;
}

export interface ResolvedDeployment {
  name: string;
  description?: string;
  specName: string;
  model: ModelRef;
  gate?: { text: string; clauses: GateClause[] };
  target: string;
  targetType: 'local' | 'kubernetes';
  runtime: {
    /** `${model}`, params, datasets and step outputs substituted and shell-quoted. */
    command: string;
    port: number;
    readiness: string;
    metrics: string;
    env: Record<string, string>;
    /** Environment variable -> secret name, looked up at deploy time, never stored. */
    secretEnv: Record<string, string>;
    /** True when the command reads `$PORT`, so a revision can be started on a private port (canary). */
    usesPortEnv: boolean;
  };
  resources?: Record<string, unknown>;
  replicas: { min: number; max: number };
  autoscale?: { metric: 'rps' | 'cpu' | 'latency'; target: number };
  rollout: { strategy: 'all-at-once' | 'canary'; steps: { weight: number; holdMs: number }[]; rollbackOn: string[] };
  /** Monitors whose `deployment` is this one, in document order. */
  monitors: ResolvedMonitor[];
  /** Alerts that name any of those monitors. */
  alerts: ResolvedAlert[];
  params: Record<string, ParamValue>;
}

export interface DeployPlanOptions {
  overrides?: PlanOptions['overrides'];
  /** The local path the server should read (e.g. an s3:// model downloaded first); default: the spec's path. */
  modelPath?: string;
}

export type DeployPlanResult = { ok: true; deployment: ResolvedDeployment } | { ok: false; errors: string[] };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

const CLAUSE = /^\s*([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_.-]*)\s*(>=|<=|==|!=|>|<)\s*(-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*$/;

/** The gate grammar the schema and the semantic check accept: `STEP.METRIC OP NUMBER` joined by `&&`. */
export function parseGate(text: string): { ok: true; clauses: GateClause[] } | { ok: false; error: string } {
  const clauses: GateClause[] = [];
  for (const part of text.split('&&')) {
    const m = CLAUSE.exec(part);
    if (!m) return { ok: false, error: `\`${part.trim()}\` is not a comparison; write \`<step>.<metric> <op> <number>\`, e.g. \`evaluate.auc >= 0.85\`.` };
    clauses.push({ step: m[1], metric: m[2], op: m[3] as CompareOp, value: Number(m[4]), text: part.trim() });
  }
  return { ok: true, clauses };
}

export function compare(actual: number, op: CompareOp, expected: number): boolean {
  switch (op) {
    case '>=': return actual >= expected;
    case '>': return actual > expected;
    case '<=': return actual <= expected;
    case '<': return actual < expected;
    case '==': return actual === expected;
    case '!=': return actual !== expected;
  }
}

export function deploymentNames(analysis: SpecAnalysis): string[] {
  const root = analysis.parsed.value;
  return isObj(root) && isObj(root.deployments) ? Object.keys(root.deployments) : [];
}

export function planDeployment(analysis: SpecAnalysis, name: string, options: DeployPlanOptions = {}): DeployPlanResult {
  const run = planRun(analysis, { overrides: options.overrides });
  if (!run.ok) return run;
  const root = analysis.parsed.value as Obj;
  const deployments = isObj(root.deployments) ? root.deployments : {};
  const d = deployments[name];
  if (!isObj(d)) {
    const names = Object.keys(deployments);
    return { ok: false, errors: [`There is no deployment \`${name}\`. ${names.length ? `Deployments: ${names.join(', ')}.` : 'The spec defines none (add one under `deployments:`).'}`] };
  }
  const errors: string[] = [];
  const { plan } = run;
  const steps = isObj(root.steps) ? root.steps : {};
  const datasets = plan.datasets;

  const modelText = str(d.model) ?? '';
  let model: ModelRef;
  const stepRef = /^\$\{steps\.([A-Za-z][A-Za-z0-9_-]*)\.outputs\.([A-Za-z][A-Za-z0-9_-]*)\}$/.exec(modelText);
  if (stepRef) {
    const step = steps[stepRef[1]];
    const out = isObj(step) && isObj(step.outputs) ? str(step.outputs[stepRef[2]]) : undefined;
    if (out === undefined) errors.push(`The model \`${modelText}\` of deployment \`${name}\` names no declared output.`);
    model = { kind: 'step-output', step: stepRef[1], output: stepRef[2], path: out ?? '' };
  } else if (modelText.startsWith('s3://')) model = { kind: 's3', uri: modelText };
  else model = { kind: 'path', path: modelText };
  const modelPath = options.modelPath ?? (model.kind === 's3' ? model.uri : model.path);

  const resolve = (text: string, quote: boolean): string =>
    text.replace(/\$(\$?)\{([^}\n]*)\}/g, (whole, escape: string, inner: string) => {
      const word = quote ? quoteForShell : (v: string): string => v;
      if (escape === '$') return whole.slice(1);
      const parts = inner.split('.');
      switch (parts[0]) {
        case 'model':
          return word(modelPath);
        case 'params':
          return word(String(plan.params[parts[1]] ?? ''));
        case 'datasets':
          return word(datasets[parts[1]]?.uri ?? '');
        case 'steps': {
          const s = steps[parts[1]];
          return word((isObj(s) && isObj(s.outputs) ? str(s.outputs[parts[3]]) : undefined) ?? '');
        }
        case 'secrets':
          return `\${${parts[1]}}`;
        default:
          return whole; // `${PORT}`, `${HOME}`: the shell's.
      }
    });

  const rt = isObj(d.runtime) ? d.runtime : {};
  const rawCommand = str(rt.command) ?? '';
  const env: Record<string, string> = {};
  const secretEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(isObj(rt.env) ? rt.env : {})) {
    const raw = String(v);
    const secret = /^\$\{secrets\.([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(raw.trim());
    if (secret) secretEnv[k] = secret[1];
    else env[k] = resolve(raw, false);
  }

  let gate: ResolvedDeployment['gate'];
  if (str(d.gate)) {
    const g = parseGate(str(d.gate)!);
    if (g.ok) gate = { text: str(d.gate)!.trim(), clauses: g.clauses };
    else errors.push(`The gate of deployment \`${name}\`: ${g.error}`);
  }

  const targetName = str(d.compute) ?? Object.entries(plan.targets).find(([, t]) => t.type === 'local')?.[0] ?? 'local';
  const compute = isObj(root.compute) ? root.compute : {};
  const targetType = isObj(compute[targetName]) && compute[targetName].type === 'kubernetes' ? 'kubernetes' : 'local';

  const ro = isObj(d.rollout) ? d.rollout : {};
  const strategy = ro.strategy === 'canary' ? 'canary' : 'all-at-once';
  const rolloutSteps = (Array.isArray(ro.steps) ? ro.steps : []).filter(isObj).map((s) => ({ weight: num(s.weight) ?? 100, holdMs: str(s.hold) ? parseDuration(str(s.hold)!) ?? 0 : 0 }));
  const rollbackOn = (Array.isArray(ro.rollbackOn) ? ro.rollbackOn : []).map((r) => String(r).replace(/^monitors\./, ''));

  const monitors: ResolvedMonitor[] = [];
  for (const [mName, m] of Object.entries(isObj(root.monitors) ? root.monitors : {})) {
    if (!isObj(m) || m.deployment !== name) continue;
    const slo = isObj(m.slo) ? m.slo : undefined;
    const drift = isObj(m.drift) ? m.drift : undefined;
    const source = isObj(m.source) ? m.source : {};
    monitors.push({
      name: mName,
      description: str(m.description),
      deployment: name,
      slo: slo && { p50LatencyMs: num(slo.p50LatencyMs), p95LatencyMs: num(slo.p95LatencyMs), p99LatencyMs: num(slo.p99LatencyMs), errorRate: num(slo.errorRate), windowMs: parseDuration(str(slo.window) ?? '5m') ?? 300_000 },
      drift: drift && {
        reference: resolve(str(drift.reference) ?? '', false),
        method: drift.method === 'ks' || drift.method === 'chi2' ? drift.method : 'psi',
        threshold: num(drift.threshold),
        features: Array.isArray(drift.features) ? drift.features.map(String) : undefined,
        scheduleMs: parseDuration(str(drift.schedule) ?? '1h') ?? 3_600_000,
      },
      prometheus: str(source.prometheus),
    });
  }
  for (const r of rollbackOn) if (!monitors.some((m) => m.name === r)) errors.push(`rollbackOn names \`monitors.${r}\`, which does not watch deployment \`${name}\`.`);
  const mine = new Set(monitors.map((m) => m.name));
  const alerts: ResolvedAlert[] = [];
  (Array.isArray(root.alerts) ? root.alerts : []).forEach((a, index) => {
    if (!isObj(a)) return;
    const when = (Array.isArray(a.when) ? a.when : []).map((w) => String(w).replace(/^monitors\./, ''));
    if (!when.some((w) => mine.has(w))) return;
    const notify = (Array.isArray(a.notify) ? a.notify : ['vscode']).filter((n): n is 'vscode' | 'log' => n === 'vscode' || n === 'log');
    alerts.push({ index, monitors: when.filter((w) => mine.has(w)), notify, description: str(a.description) });
  });

  const replicasRaw = d.replicas;
  const replicas = typeof replicasRaw === 'number' ? { min: replicasRaw, max: replicasRaw } : isObj(replicasRaw) ? { min: num(replicasRaw.min) ?? 1, max: num(replicasRaw.max) ?? 1 } : { min: 1, max: 1 };
  const autoscale = isObj(d.autoscale) ? { metric: d.autoscale.metric as 'rps' | 'cpu' | 'latency', target: num(d.autoscale.target) ?? 0 } : undefined;

  if (errors.length) return { ok: false, errors };
  return {
    ok: true,
    deployment: {
      name,
      description: str(d.description),
      specName: plan.specName,
      model,
      gate,
      target: targetName,
      targetType,
      runtime: {
        command: resolve(rawCommand, true),
        port: num(rt.port) ?? 8080,
        readiness: str(rt.readiness) ?? '/healthz',
        metrics: str(rt.metrics) ?? '/metrics',
        env,
        secretEnv,
        usesPortEnv: /\$\{?PORT\b/.test(rawCommand),
      },
      resources: isObj(d.resources) ? d.resources : undefined,
      replicas,
      autoscale,
      rollout: { strategy, steps: strategy === 'canary' ? rolloutSteps : [], rollbackOn },
      monitors,
      alerts,
      params: plan.params,
    },
  };
}
