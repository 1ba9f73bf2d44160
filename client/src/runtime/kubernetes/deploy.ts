/**
 * Deployments on a Kubernetes target: Deployment + Service (+ HPA with `autoscale`), applied by create or
 * replace, a wait for the rollout (the Deployment controller's own status), undeploy by foreground
 * deletion and rollback to the previous ReplicaSet's pod template (what `kubectl rollout undo` does).
 * Implements the serving engineer's `DeployTarget`; canary traffic splitting needs a mesh or ingress and is
 * refused with a clear error (`strategy: canary` works on the local target).
 */
import type { KubernetesTargetPlan } from '../../../../server/src/core/plan';
import { DeployError, type DeployEvent, type DeployRequest, type DeployResult, type DeploymentStatus, type DeployTarget, type MetricsSource, type UndeployOptions } from '../serving/deploy-target';
import { sleep } from '../sleep';
import { connect, messageOf, statusOf, withRetries, type KubeClient } from './client';
import { deploymentManifests } from './deploy-manifests';
import { deploymentObjectName, MANAGED_BY, type Manifest } from './manifests';

export interface KubernetesDeployOptions {
  /** The compute target's name in the spec and its resolved settings. */
  targetName: string;
  target: KubernetesTargetPlan;
  kubeconfig?: string;
  /** How long to wait for the rollout. Default 300 s. */
  readyTimeoutMs?: number;
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REVISION = 'mlpipeline.dev/revision';
const MODEL = 'mlpipeline.dev/model';
const SOURCE_RUN = 'mlpipeline.dev/run-id';

export class KubernetesDeployTarget implements DeployTarget {
  readonly kind = 'kubernetes' as const;
  private client?: KubeClient;

  constructor(private readonly o: KubernetesDeployOptions) {}

  private async kube(): Promise<KubeClient> {
    this.client ??= await connect({ kubeconfig: this.o.kubeconfig, context: this.o.target.context });
    return this.client;
  }

  private api<T>(what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withRetries(what, fn, { deadlineMs: 60_000, signal });
  }

  /** autoscaling/v2 where the cluster serves it (1.23+), else v2beta2 (1.20-1.25). */
  private async hpaApi(c: KubeClient): Promise<'autoscaling/v2' | 'autoscaling/v2beta2'> {
    try {
      const groups = (await this.api('Listing API versions', () => c.objects.list('autoscaling/v2', 'HorizontalPodAutoscaler', this.o.target.namespace).then(() => true)))!;
      return groups ? 'autoscaling/v2' : 'autoscaling/v2beta2';
    } catch {
      return 'autoscaling/v2beta2';
    }
  }

  async deploy(req: DeployRequest): Promise<DeployResult> {
    const d = req.deployment;
    if (req.strategy === 'canary') throw new DeployError(`Canary rollouts need traffic splitting (a service mesh or ingress), which the Kubernetes target does not set up yet. Use \`rollout: {strategy: all-at-once}\` for ${d.name}, or deploy to the local target.`, 'unsupported');
    const c = await this.kube();
    const emit = (phase: 'starting' | 'ready' | 'failed' | 'rolling-out', message: string): void => req.onEvent?.({ type: 'phase', deployment: d.name, revision: req.revision, phase, message } satisfies DeployEvent);
    const manifests = deploymentManifests(d, this.o.target, { revision: req.revision, model: req.model.path, ...(req.sourceRunId ? { sourceRunId: req.sourceRunId } : {}), hpaApiVersion: d.autoscale ? await this.hpaApi(c) : undefined });
    emit('starting', `Applying Deployment, Service${manifests.length > 2 ? ' and HorizontalPodAutoscaler' : ''} ${this.o.target.namespace}/${manifests[0].metadata.name} (context ${c.contextName})`);
    try {
      for (const m of manifests) await this.apply(c, m, req.signal);
    } catch (e) {
      throw new DeployError(`Applying ${d.name} failed: ${messageOf(e)}`, statusOf(e) === 422 || statusOf(e) === 400 ? 'bad-request' : 'not-ready');
    }
    await this.waitForRollout(c, manifests[0].metadata.name, req, emit);
    emit('ready', `${d.name} ${req.revision} is rolled out`);
    return { status: (await this.status(d.name))! };
  }

  /** Create, or replace the existing object keeping its resourceVersion (optimistic concurrency; 409 retried). */
  private async apply(c: KubeClient, m: Manifest, signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < 5; i++) {
      try {
        await this.api(`Creating ${m.kind}`, () => c.objects.create(m as never), signal);
        return;
      } catch (e) {
        if (statusOf(e) !== 409) throw e;
      }
      const existing = (await this.api(`Reading ${m.kind}`, () => c.objects.read(m as never), signal)) as Json;
      const next: Json = { ...m, metadata: { ...m.metadata, resourceVersion: existing.metadata.resourceVersion } };
      if (m.kind === 'Service') next.spec = { ...(m as Json).spec, clusterIP: existing.spec.clusterIP };
      try {
        await this.api(`Replacing ${m.kind}`, () => c.objects.replace(next as never), signal);
        return;
      } catch (e) {
        if (statusOf(e) !== 409) throw e; // Someone changed it in between: read and try again.
      }
    }
    throw new DeployError(`${m.kind} ${m.metadata.name} kept changing while it was applied. Is another deploy running?`, 'busy');
  }

  private async waitForRollout(c: KubeClient, name: string, req: DeployRequest, emit: (p: 'rolling-out' | 'failed', m: string) => void): Promise<void> {
    const ns = this.o.target.namespace;
    const deadline = Date.now() + (this.o.readyTimeoutMs ?? 300_000);
    let last = '';
    for (;;) {
      if (req.signal?.aborted) throw new DeployError(`Waiting for ${req.deployment.name} was cancelled; the Deployment stays as applied (mlpipeline undeploy ${req.deployment.name} removes it).`, 'not-ready');
      const dep = (await this.api('Reading the Deployment', () => c.apps.readNamespacedDeployment({ name, namespace: ns }), req.signal)) as Json;
      const want = dep.spec.replicas ?? 1;
      const st = dep.status ?? {};
      const progress = `${st.updatedReplicas ?? 0}/${want} updated, ${st.availableReplicas ?? 0} available`;
      if (progress !== last) emit('rolling-out', `${name}: ${progress}`);
      last = progress;
      const stalled = (st.conditions ?? []).find((x: Json) => x.type === 'Progressing' && x.reason === 'ProgressDeadlineExceeded');
      if (stalled) throw new DeployError(`${name} did not roll out: ${stalled.message}. Check its pods: kubectl -n ${ns} describe pods -l app.kubernetes.io/instance=${name}`, 'not-ready');
      if ((st.observedGeneration ?? 0) >= dep.metadata.generation && (st.updatedReplicas ?? 0) === want && (st.availableReplicas ?? 0) >= want && (st.replicas ?? 0) === want) return;
      if (Date.now() > deadline) {
        const why = await this.podTrouble(c, name);
        throw new DeployError(`${name} was not ready after ${Math.round((this.o.readyTimeoutMs ?? 300_000) / 1000)} s (${progress})${why ? `: ${why}` : ''}.`, 'not-ready');
      }
      await sleep(500, req.signal);
    }
  }

  /** The newest FailedScheduling or waiting reason among the deployment's pods, for error messages. */
  private async podTrouble(c: KubeClient, name: string): Promise<string | undefined> {
    const ns = this.o.target.namespace;
    const pods = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${name}` }).catch(() => ({ items: [] }))) as Json;
    for (const p of pods.items) {
      const w = (p.status?.containerStatuses ?? []).find((s: Json) => s.state?.waiting)?.state.waiting;
      if (w) return `${w.reason}: ${w.message ?? ''}`;
      const ev = (await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.uid=${p.metadata.uid}` }).catch(() => ({ items: [] }))) as Json;
      const sched = (ev.items as Json[]).filter((e) => e.reason === 'FailedScheduling').pop();
      if (sched) return `FailedScheduling: ${sched.message}`;
    }
    return undefined;
  }

  async undeploy(name: string, options: UndeployOptions = {}): Promise<boolean> {
    const c = await this.kube();
    const ns = this.o.target.namespace;
    const obj = deploymentObjectName(name);
    let found = false;
    for (const apiVersion of ['autoscaling/v2', 'autoscaling/v2beta2']) {
      // Whichever HPA version the cluster serves; a missing HPA (no autoscale) is fine.
      await c.objects.delete({ apiVersion, kind: 'HorizontalPodAutoscaler', metadata: { name: obj, namespace: ns } } as never).catch(() => undefined);
    }
    for (const [apiVersion, kind] of [['v1', 'Service'], ['apps/v1', 'Deployment']] as const) {
      try {
        await this.api(`Deleting ${kind}`, () => c.objects.delete({ apiVersion, kind, metadata: { name: obj, namespace: ns } } as never, undefined, undefined, undefined, undefined, 'Foreground'), options.signal);
        found = true;
      } catch (e) {
        if (statusOf(e) !== 404) throw new DeployError(`Deleting ${kind} ${ns}/${obj} failed: ${messageOf(e)}`, 'not-ready');
      }
    }
    options.onEvent?.({ type: 'phase', deployment: name, phase: 'stopped', message: found ? `Deleting ${ns}/${obj} (foreground: pods first)` : `${name} is not deployed in ${ns}` });
    // Foreground deletion: the Deployment is gone only after its ReplicaSets and pods are.
    const deadline = Date.now() + 120_000;
    while (found && Date.now() < deadline) {
      try {
        await c.apps.readNamespacedDeployment({ name: obj, namespace: ns });
      } catch (e) {
        if (statusOf(e) === 404) break;
      }
      await sleep(300, options.signal);
    }
    return found;
  }

  async setCanaryWeight(): Promise<void> {
    throw new DeployError('Traffic splitting is not supported on Kubernetes targets yet.', 'unsupported');
  }

  async promote(): Promise<DeploymentStatus> {
    throw new DeployError('Canary promotion is not supported on Kubernetes targets yet.', 'unsupported');
  }

  /** Back to the previous ReplicaSet's pod template: a new rollout of the old revision, as `kubectl rollout undo`. */
  async rollback(name: string, reason: string, options: UndeployOptions = {}): Promise<DeploymentStatus> {
    const c = await this.kube();
    const ns = this.o.target.namespace;
    const obj = deploymentObjectName(name);
    const dep = (await this.api('Reading the Deployment', () => c.apps.readNamespacedDeployment({ name: obj, namespace: ns }).catch((e) => {
      if (statusOf(e) === 404) throw new DeployError(`${name} is not deployed in ${ns}.`, 'not-found');
      throw e;
    }))) as Json;
    const rss = ((await this.api('Listing ReplicaSets', () => c.apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${obj}` }))) as Json).items as Json[];
    const rev = (rs: Json): number => Number(rs.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0);
    const owned = rss.filter((rs) => (rs.metadata.ownerReferences ?? []).some((o: Json) => o.uid === dep.metadata.uid)).sort((a, b) => rev(b) - rev(a));
    const current = dep.metadata.annotations?.['deployment.kubernetes.io/revision'];
    const previous = owned.find((rs) => String(rev(rs)) !== current);
    if (!previous) throw new DeployError(`${name} has no earlier revision to roll back to.`, 'not-found');
    const template = structuredClone(previous.spec.template);
    delete template.metadata.labels['pod-template-hash'];
    const next: Json = { ...dep, spec: { ...dep.spec, template } };
    next.metadata.annotations = { ...dep.metadata.annotations, [REVISION]: template.metadata.annotations?.[REVISION] ?? '', 'mlpipeline.dev/rollback-reason': reason.slice(0, 500) };
    await this.api('Rolling back the Deployment', () => c.apps.replaceNamespacedDeployment({ name: obj, namespace: ns, body: next }));
    options.onEvent?.({ type: 'rolled-back', deployment: name, revision: template.metadata.annotations?.[REVISION] ?? `k8s revision ${rev(previous)}`, reason });
    await this.waitForRollout(c, obj, { deployment: { name }, revision: '', signal: options.signal } as unknown as DeployRequest, () => {});
    return (await this.status(name))!;
  }

  async status(name: string): Promise<DeploymentStatus | undefined> {
    const c = await this.kube();
    const ns = this.o.target.namespace;
    let dep: Json;
    try {
      dep = (await this.api('Reading the Deployment', () => c.apps.readNamespacedDeployment({ name: deploymentObjectName(name), namespace: ns }))) as Json;
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw e;
    }
    return this.toStatus(name, dep);
  }

  private toStatus(name: string, dep: Json): DeploymentStatus {
    const ann = dep.spec.template.metadata.annotations ?? {};
    const want = dep.spec.replicas ?? 1;
    const st = dep.status ?? {};
    const ready = (st.availableReplicas ?? 0) >= want && (st.updatedReplicas ?? 0) === want;
    return {
      name,
      target: this.o.targetName,
      targetType: 'kubernetes',
      phase: ready ? 'ready' : (st.updatedReplicas ?? 0) < want ? 'rolling-out' : 'degraded',
      // In-cluster address; reach it from here with kubectl port-forward.
      url: `http://${dep.metadata.name}.${dep.metadata.namespace}.svc.cluster.local`,
      revisions: [{ revision: ann[REVISION] ?? '', model: { path: ann[MODEL] ?? '', hash: '' }, ...(ann[SOURCE_RUN] ? { sourceRunId: ann[SOURCE_RUN] } : {}), phase: ready ? 'ready' : 'starting', weight: 100, restarts: 0, startedAt: dep.metadata.creationTimestamp ? new Date(dep.metadata.creationTimestamp).toISOString() : '' }],
      history: [],
      updatedAt: new Date().toISOString(),
    };
  }

  async list(): Promise<DeploymentStatus[]> {
    const c = await this.kube();
    const deps = (await this.api('Listing Deployments', () => c.apps.listNamespacedDeployment({ namespace: this.o.target.namespace, labelSelector: `app.kubernetes.io/managed-by=${MANAGED_BY},app.kubernetes.io/component=model-server` }))) as Json;
    return (deps.items as Json[]).map((d) => this.toStatus(d.metadata.annotations?.['mlpipeline.dev/deployment'] ?? d.metadata.name, d));
  }

  async metricsSources(name: string): Promise<MetricsSource[]> {
    const st = await this.status(name);
    return st ? [{ revision: st.revisions[0].revision, prometheusSelector: { namespace: this.o.target.namespace, service: deploymentObjectName(name) } }] : [];
  }
}
