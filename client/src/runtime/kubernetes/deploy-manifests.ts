import type { ResolvedDeployment } from '../../../../server/src/core/deploy-plan';
import type { KubernetesTargetPlan, StepResources } from '../../../../server/src/core/plan';
import { buildDeployment, deploymentObjectName, labelValue, type Manifest } from './manifests';

/** A deployment's own `resources` over its target's, key by key (pure, shared by `plan` and `deploy`). */
export function deploymentResources(d: ResolvedDeployment, target: KubernetesTargetPlan): { resources: StepResources; gpu?: { count: number; type?: string } } {
  const own = d.resources ?? {};
  const resources: StepResources = { ...target.resources };
  for (const k of ['cpu', 'memory', 'ephemeralStorage'] as const) if (own[k] !== undefined && own[k] !== null) resources[k] = String(own[k]);
  let gpu = target.gpu;
  if (own.gpu !== undefined) {
    const v = String(own.gpu);
    const m = /^([A-Za-z][A-Za-z0-9-]*)(?::([0-9]+))?$/.exec(v);
    gpu = /^[0-9]+$/.test(v) ? (Number(v) > 0 ? { count: Number(v) } : undefined) : m ? { type: m[1], count: m[2] ? Number(m[2]) : 1 } : gpu;
  }
  return { resources, ...(gpu ? { gpu } : {}) };
}

export interface DeploymentManifestOptions {
  revision: string;
  /** The model path or URI the server reads, recorded as an annotation. */
  model?: string;
  sourceRunId?: string;
  hpaApiVersion?: 'autoscaling/v2' | 'autoscaling/v2beta2';
}

/**
 * Canaries on Kubernetes, without a service mesh: a second Deployment `<name>-canary` whose pods carry the
 * same `app.kubernetes.io/instance` + `component` labels the Service selects, so the Service spreads
 * connections over stable and canary pods alike. Each Deployment selects only its own track
 * (`mlpipeline.dev/track`), so neither adopts the other's pods. The traffic share is the share of pods.
 */
export const TRACK_LABEL = 'mlpipeline.dev/track';
/** On pod templates, so Prometheus can tell revisions apart (relabel it to `revision`; docs/kubernetes.md). */
export const REVISION_LABEL = 'mlpipeline.dev/revision';
export const CANARY_ANNOTATION = {
  /** Pods the weights are computed over (stable + canary), fixed for the whole rollout. */
  total: 'mlpipeline.dev/canary-total',
  /** The stable Deployment's replicas when the canary started: what rollback and promotion return it to. */
  stableReplicas: 'mlpipeline.dev/stable-replicas',
  stableRevision: 'mlpipeline.dev/stable-revision',
  /** The weight last asked for, and what the replica ratio made of it. */
  weight: 'mlpipeline.dev/canary-weight',
  /** Each step's weight as pods, for people reading `plan` or `kubectl describe`. */
  plan: 'mlpipeline.dev/canary-plan',
  /** The stable HPA (JSON), removed while the canary runs so it does not undo the replica ratio. */
  savedHpa: 'mlpipeline.dev/saved-hpa',
  /** The new revision's HPA (JSON), applied when the canary is promoted. */
  hpa: 'mlpipeline.dev/promoted-hpa',
} as const;
/** At least this many pods may be used to approximate small weights (more when `replicas.max` allows). */
export const CANARY_MIN_POD_BUDGET = 10;

export function canaryObjectName(name: string): string {
  return `${deploymentObjectName(name)}-canary`;
}

/**
 * Pods per track for `percent` of N pods: round(percent × N / 100), but at least one canary pod for any
 * weight above 0 and at least one stable pod for any weight below 100 (otherwise the step would not be a
 * canary at all). `effective` is the share the Service actually gives the canary, in percent.
 */
export function canarySplit(total: number, percent: number): { canary: number; stable: number; effective: number } {
  const n = Math.max(1, Math.floor(total));
  let canary = percent <= 0 ? 0 : percent >= 100 ? n : Math.round((percent * n) / 100);
  if (percent > 0 && percent < 100) canary = Math.min(Math.max(canary, 1), Math.max(1, n - 1));
  const stable = n - canary;
  return { canary, stable, effective: Math.round((canary / n) * 1000) / 10 };
}

/**
 * N, the pods a rollout's weights are computed over. Achievable weights are multiples of 100/N %, so N is
 * the smallest count from max(replicas.min, the stable pods running now) up to max(10, replicas.max) that
 * puts every step within 1 percentage point of its weight; when none does, the one with the smallest worst
 * error (a 1% step needs 100 pods, so it becomes 1 of 10 pods = 10%). Only weights strictly between 0 and
 * 100 matter: 0 and 100 are exact with any N.
 */
export function canaryTotal(d: Pick<ResolvedDeployment, 'replicas' | 'rollout'>, stableReplicas = 0): number {
  const base = Math.max(1, d.replicas.min, stableReplicas);
  const partial = d.rollout.steps.map((s) => s.weight).filter((w) => w > 0 && w < 100);
  if (partial.length === 0) return base;
  const budget = Math.max(base, CANARY_MIN_POD_BUDGET, d.replicas.max ?? 0);
  let best = base;
  let bestError = Infinity;
  for (let n = Math.max(base, 2); n <= budget; n++) {
    const error = Math.max(...partial.map((w) => Math.abs(canarySplit(n, w).effective - w)));
    if (error <= 1) return n;
    if (error < bestError - 1e-9) [best, bestError] = [n, error];
  }
  return Math.max(best, 2);
}

/** The rollout as pods: what `plan` shows and the canary Deployment records. */
export function canaryPlan(d: Pick<ResolvedDeployment, 'replicas' | 'rollout'>, stableReplicas = 0): { total: number; steps: { weight: number; canary: number; stable: number; effective: number }[] } {
  const total = canaryTotal(d, stableReplicas);
  return { total, steps: d.rollout.steps.map((s) => ({ weight: s.weight, ...canarySplit(total, s.weight) })) };
}

export function describeCanaryPlan(plan: ReturnType<typeof canaryPlan>): string {
  return plan.steps.map((s) => `${s.weight}% -> ${s.canary} of ${plan.total} pods (${s.effective}%)`).join('; ');
}

type DeploymentManifest = Manifest & { spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> } } } };

/** Deployment, Service and (with autoscale) HPA of the stable track: what `deploy` applies and `plan` prints. */
export function deploymentManifests(d: ResolvedDeployment, target: KubernetesTargetPlan, o: DeploymentManifestOptions): Manifest[] {
  const { resources, gpu } = deploymentResources(d, target);
  // A copy: buildDeployment shares its label and selector objects between the Deployment and the Service.
  const manifests = structuredClone(
    buildDeployment({
      specName: d.specName,
      name: d.name,
      target,
      command: d.runtime.command,
      port: d.runtime.port,
      readiness: d.runtime.readiness,
      metrics: d.runtime.metrics,
      replicas: d.replicas,
      ...(d.autoscale ? { autoscale: d.autoscale } : {}),
      resources,
      ...(gpu ? { gpu } : {}),
      env: d.runtime.env,
      secretEnv: d.runtime.secretEnv,
      ...(o.model ? { model: o.model } : {}),
      ...(o.sourceRunId ? { runId: o.sourceRunId } : {}),
      ...(o.hpaApiVersion ? { hpaApiVersion: o.hpaApiVersion } : {}),
    }),
  );
  // The revision names the pod template, so each deploy is a new ReplicaSet that `rollback` can return to.
  const dep = manifests[0] as DeploymentManifest;
  dep.metadata.annotations = { ...dep.metadata.annotations, [REVISION_LABEL]: o.revision };
  dep.spec.template.metadata.annotations = { ...dep.spec.template.metadata.annotations, [REVISION_LABEL]: o.revision };
  // The Service keeps selecting instance + component (both tracks); the Deployment only its own track.
  dep.metadata.labels = { ...dep.metadata.labels, [TRACK_LABEL]: 'stable' };
  dep.spec.selector.matchLabels = { ...dep.spec.selector.matchLabels, [TRACK_LABEL]: 'stable' };
  dep.spec.template.metadata.labels = { ...dep.spec.template.metadata.labels, [TRACK_LABEL]: 'stable', [REVISION_LABEL]: labelValue(o.revision) || 'none' };
  return manifests;
}

/**
 * The canary Deployment of a rollout: the new revision's pod template on the `canary` track, created with
 * 0 pods (weight 0: a pod behind the Service takes traffic as soon as it is ready). `stableReplicas` is
 * what the stable Deployment runs now.
 */
export function canaryManifest(d: ResolvedDeployment, target: KubernetesTargetPlan, o: DeploymentManifestOptions & { stableReplicas: number; stableRevision?: string }): Manifest {
  const dep = deploymentManifests(d, target, o)[0] as DeploymentManifest;
  const plan = canaryPlan(d, o.stableReplicas);
  dep.metadata.name = canaryObjectName(d.name);
  dep.metadata.labels = { ...dep.metadata.labels, [TRACK_LABEL]: 'canary' };
  dep.metadata.annotations = {
    ...dep.metadata.annotations,
    [CANARY_ANNOTATION.total]: String(plan.total),
    [CANARY_ANNOTATION.stableReplicas]: String(o.stableReplicas),
    ...(o.stableRevision ? { [CANARY_ANNOTATION.stableRevision]: o.stableRevision } : {}),
    [CANARY_ANNOTATION.weight]: '0',
    [CANARY_ANNOTATION.plan]: describeCanaryPlan(plan),
  };
  dep.spec.replicas = 0;
  dep.spec.selector.matchLabels = { ...dep.spec.selector.matchLabels, [TRACK_LABEL]: 'canary' };
  dep.spec.template.metadata.labels = { ...dep.spec.template.metadata.labels, [TRACK_LABEL]: 'canary' };
  return dep;
}
