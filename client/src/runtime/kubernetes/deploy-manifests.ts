import type { ResolvedDeployment } from '../../../../server/src/core/deploy-plan';
import type { KubernetesTargetPlan, StepResources } from '../../../../server/src/core/plan';
import { buildDeployment, type Manifest } from './manifests';

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

export function deploymentManifests(d: ResolvedDeployment, target: KubernetesTargetPlan, o: DeploymentManifestOptions): Manifest[] {
  const { resources, gpu } = deploymentResources(d, target);
  const manifests = buildDeployment({
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
  });
  // The revision names the pod template, so each deploy is a new ReplicaSet that `rollback` can return to.
  const dep = manifests[0] as Manifest & { spec: { template: { metadata: { annotations: Record<string, string> } } } };
  dep.metadata.annotations = { ...dep.metadata.annotations, 'mlpipeline.dev/revision': o.revision };
  dep.spec.template.metadata.annotations = { ...dep.spec.template.metadata.annotations, 'mlpipeline.dev/revision': o.revision };
  return manifests;
}
