/**
 * Deployments on a Kubernetes target: Deployment + Service (+ HPA with `autoscale`), applied by create or
 * replace, a wait for the rollout (the Deployment controller's own status), undeploy by foreground
 * deletion and rollback to the previous ReplicaSet's pod template (what `kubectl rollout undo` does).
 * Implements the serving engineer's `DeployTarget`.
 *
 * Canaries need no service mesh: the new revision runs as a second Deployment (`<name>-canary`) behind the
 * same Service, and a weight is the canary's share of the pods (deploy-manifests.ts has the rounding). The
 * Service balances connections, not requests, so the split is approximate; docs/kubernetes.md says more.
 * Everything a later command needs (the pod count, the stable replicas to return to, the HPA to restore)
 * is kept in annotations on the canary Deployment, so `mlpipeline rollback` from another terminal works.
 */
import type { KubernetesTargetPlan } from '../../../../server/src/core/plan';
import { DeployError, type DeployEvent, type DeployRequest, type DeployResult, type DeploymentStatus, type DeployTarget, type MetricsSource, type RevisionStatus, type UndeployOptions, type WeightApplied } from '../serving/deploy-target';
import { sleep } from '../sleep';
import { connect, messageOf, statusOf, withRetries, type KubeClient } from './client';
import { CANARY_ANNOTATION, canaryManifest, canaryObjectName, canarySplit, deploymentManifests, REVISION_LABEL, TRACK_LABEL } from './deploy-manifests';
import { deploymentObjectName, labelValue, MANAGED_BY, type Manifest } from './manifests';

export interface KubernetesDeployOptions {
  /** The compute target's name in the spec and its resolved settings. */
  targetName: string;
  target: KubernetesTargetPlan;
  kubeconfig?: string;
  /** How long to wait for the rollout (and for canary pods at each step). Default 300 s. */
  readyTimeoutMs?: number;
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REVISION = REVISION_LABEL;
const MODEL = 'mlpipeline.dev/model';
const SOURCE_RUN = 'mlpipeline.dev/run-id';
const HPA_VERSIONS = ['autoscaling/v2', 'autoscaling/v2beta2'] as const;

export class KubernetesDeployTarget implements DeployTarget {
  readonly kind = 'kubernetes' as const;
  private client?: KubeClient;

  constructor(private readonly o: KubernetesDeployOptions) {}

  private get ns(): string {
    return this.o.target.namespace;
  }

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
      const groups = (await this.api('Listing API versions', () => c.objects.list('autoscaling/v2', 'HorizontalPodAutoscaler', this.ns).then(() => true)))!;
      return groups ? 'autoscaling/v2' : 'autoscaling/v2beta2';
    } catch {
      return 'autoscaling/v2beta2';
    }
  }

  /** The Deployment, or undefined when it does not exist. */
  private async readDeployment(c: KubeClient, name: string, signal?: AbortSignal): Promise<Json | undefined> {
    try {
      return (await this.api(`Reading Deployment ${name}`, () => c.apps.readNamespacedDeployment({ name, namespace: this.ns }), signal)) as Json;
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw e;
    }
  }

  async deploy(req: DeployRequest): Promise<DeployResult> {
    const d = req.deployment;
    const c = await this.kube();
    const emit = (phase: 'starting' | 'ready' | 'failed' | 'rolling-out', message: string): void => req.onEvent?.({ type: 'phase', deployment: d.name, revision: req.revision, phase, message } satisfies DeployEvent);
    const canary = await this.readDeployment(c, canaryObjectName(d.name), req.signal);
    if (canary) throw new DeployError(`A canary of ${d.name} (revision ${canary.metadata.annotations?.[REVISION] ?? '?'}) is still in ${this.ns}: promote it or roll it back first (mlpipeline rollback ${d.name}).`, 'busy');
    if (req.strategy === 'canary') return this.deployCanary(c, req, emit);
    const manifests = deploymentManifests(d, this.o.target, { revision: req.revision, model: req.model.path, ...(req.sourceRunId ? { sourceRunId: req.sourceRunId } : {}), hpaApiVersion: d.autoscale ? await this.hpaApi(c) : undefined });
    emit('starting', `Applying Deployment, Service${manifests.length > 2 ? ' and HorizontalPodAutoscaler' : ''} ${this.ns}/${manifests[0].metadata.name} (context ${c.contextName})`);
    try {
      for (const m of manifests) await this.apply(c, m, req.signal);
    } catch (e) {
      if (e instanceof DeployError) throw e;
      throw new DeployError(`Applying ${d.name} failed: ${messageOf(e)}`, statusOf(e) === 422 || statusOf(e) === 400 ? 'bad-request' : 'not-ready');
    }
    await this.waitForRollout(c, manifests[0].metadata.name, { signal: req.signal, what: `${d.name} ${req.revision}`, emit: (m) => emit('rolling-out', m) });
    emit('ready', `${d.name} ${req.revision} is rolled out`);
    return { status: (await this.status(d.name))! };
  }

  /**
   * The canary Deployment with 0 pods next to the stable one. The stable HPA is taken away for the rollout
   * (kept in an annotation): it would scale the stable track back and change the ratio under the rollout.
   */
  private async deployCanary(c: KubeClient, req: DeployRequest, emit: (phase: 'starting' | 'ready', message: string) => void): Promise<DeployResult> {
    const d = req.deployment;
    // The pods are in the cluster: a monitor can judge them only through a Prometheus that scrapes them.
    const blind = d.monitors.filter((m) => d.rollout.rollbackOn.includes(m.name) && m.slo && !m.prometheus);
    if (blind.length) {
      throw new DeployError(`${blind.map((m) => `monitors.${m.name}`).join(', ')} would judge the canary of ${d.name}, but pods on ${this.o.targetName} cannot be scraped from here. Give ${blind.length > 1 ? 'them' : 'it'} \`source: {prometheus: URL}\` (a Prometheus that scrapes the pods; docs/kubernetes.md shows the relabelling for the \`revision\` label).`, 'bad-request');
    }
    const obj = deploymentObjectName(d.name);
    const stable = await this.readDeployment(c, obj, req.signal);
    if (!stable) throw new DeployError(`${d.name} is not deployed in ${this.ns}, so there is no stable revision to compare a canary with. Deploy it once first (the first deploy takes all traffic).`, 'not-found');
    const stableReplicas = stable.spec.replicas ?? 1;
    const hpaVersion = d.autoscale ? await this.hpaApi(c) : undefined;
    const manifest = canaryManifest(d, this.o.target, { revision: req.revision, model: req.model.path, ...(req.sourceRunId ? { sourceRunId: req.sourceRunId } : {}), hpaApiVersion: hpaVersion, stableReplicas, stableRevision: stable.metadata.annotations?.[REVISION] });
    const saved = await this.readHpa(c, obj);
    const promotedHpa = deploymentManifests(d, this.o.target, { revision: req.revision, hpaApiVersion: hpaVersion })[2];
    manifest.metadata.annotations = { ...manifest.metadata.annotations, ...(saved ? { [CANARY_ANNOTATION.savedHpa]: JSON.stringify(saved) } : {}), ...(promotedHpa ? { [CANARY_ANNOTATION.hpa]: JSON.stringify(promotedHpa) } : {}) };
    try {
      await this.api('Creating the canary Deployment', () => c.objects.create(manifest as never), req.signal);
    } catch (e) {
      if (statusOf(e) === 409) throw new DeployError(`A canary of ${d.name} was created meanwhile by someone else; roll it back first (mlpipeline rollback ${d.name}).`, 'busy');
      throw new DeployError(`Creating the canary of ${d.name} failed: ${messageOf(e)}`, statusOf(e) === 422 || statusOf(e) === 400 ? 'bad-request' : 'not-ready');
    }
    if (saved) await this.deleteHpa(c, obj);
    const total = manifest.metadata.annotations![CANARY_ANNOTATION.total];
    emit('starting', `Canary Deployment ${this.ns}/${manifest.metadata.name} created with 0 pods next to ${obj} (${stableReplicas} pod${stableReplicas === 1 ? '' : 's'}, revision ${stable.metadata.annotations?.[REVISION] ?? '?'})${saved ? '; its autoscaler is paused until the rollout ends' : ''}`);
    emit('ready', `Weights are pod ratios over ${total} pods behind Service ${obj}: ${manifest.metadata.annotations![CANARY_ANNOTATION.plan]}`);
    return { status: (await this.status(d.name))! };
  }

  /** The deployment's HPA as applied (name, labels, spec), whichever API version serves it; undefined without one. */
  private async readHpa(c: KubeClient, obj: string): Promise<Manifest | undefined> {
    for (const apiVersion of HPA_VERSIONS) {
      try {
        const h = (await this.api('Reading the HorizontalPodAutoscaler', () => c.objects.read({ apiVersion, kind: 'HorizontalPodAutoscaler', metadata: { name: obj, namespace: this.ns } } as never))) as Json;
        return { apiVersion, kind: 'HorizontalPodAutoscaler', metadata: { name: obj, namespace: this.ns, labels: h.metadata.labels ?? {}, ...(h.metadata.annotations ? { annotations: h.metadata.annotations } : {}) }, spec: h.spec };
      } catch (e) {
        if (statusOf(e) !== 404) throw e; // 404: no such object, or this version is not served.
      }
    }
    return undefined;
  }

  private async deleteHpa(c: KubeClient, obj: string): Promise<void> {
    for (const apiVersion of HPA_VERSIONS) {
      // Whichever HPA version the cluster serves; a missing HPA is fine.
      await c.objects.delete({ apiVersion, kind: 'HorizontalPodAutoscaler', metadata: { name: obj, namespace: this.ns } } as never).catch(() => undefined);
    }
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
      // A Deployment's selector cannot change; one made before tracks existed keeps its wider selector,
      // which the new pod labels still match.
      if (m.kind === 'Deployment') next.spec = { ...(m as Json).spec, selector: existing.spec.selector };
      try {
        await this.api(`Replacing ${m.kind}`, () => c.objects.replace(next as never), signal);
        return;
      } catch (e) {
        if (statusOf(e) !== 409) throw e; // Someone changed it in between: read and try again.
      }
    }
    throw new DeployError(`${m.kind} ${m.metadata.name} kept changing while it was applied. Is another deploy running?`, 'busy');
  }

  /** Read, change, replace; a 409 (someone else wrote in between) is read again. */
  private async update(c: KubeClient, name: string, change: (dep: Json) => void, signal?: AbortSignal): Promise<Json> {
    for (let i = 0; i < 5; i++) {
      const dep = await this.readDeployment(c, name, signal);
      if (!dep) throw new DeployError(`Deployment ${this.ns}/${name} is gone (deleted meanwhile?).`, 'not-found');
      change(dep);
      try {
        return (await this.api(`Updating Deployment ${name}`, () => c.apps.replaceNamespacedDeployment({ name, namespace: this.ns, body: dep as never }), signal)) as Json;
      } catch (e) {
        if (statusOf(e) !== 409) throw new DeployError(`Updating Deployment ${this.ns}/${name} failed: ${messageOf(e)}`, 'not-ready');
      }
    }
    throw new DeployError(`Deployment ${name} kept changing while it was updated. Is another deploy running?`, 'busy');
  }

  /** Until every replica of the Deployment is updated and available (0 replicas: at once). */
  private async waitForRollout(c: KubeClient, name: string, o: { signal?: AbortSignal; what: string; emit?(message: string): void; track?: 'stable' | 'canary' }): Promise<void> {
    const timeoutMs = this.o.readyTimeoutMs ?? 300_000;
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      if (o.signal?.aborted) throw new DeployError(`Waiting for ${o.what} was cancelled; the Deployment stays as applied (mlpipeline undeploy removes it).`, 'not-ready');
      const dep = await this.readDeployment(c, name, o.signal);
      if (!dep) throw new DeployError(`Deployment ${this.ns}/${name} was deleted while ${o.what} rolled out.`, 'not-found');
      const want = dep.spec.replicas ?? 1;
      const st = dep.status ?? {};
      const progress = `${st.updatedReplicas ?? 0}/${want} updated, ${st.availableReplicas ?? 0} available`;
      if (progress !== last) o.emit?.(`${name}: ${progress}`);
      last = progress;
      const stalled = (st.conditions ?? []).find((x: Json) => x.type === 'Progressing' && x.reason === 'ProgressDeadlineExceeded');
      if (stalled) throw new DeployError(`${o.what} did not roll out: ${stalled.message}. Check its pods: kubectl -n ${this.ns} describe pods -l app.kubernetes.io/instance=${deploymentObjectName(dep.metadata.annotations?.['mlpipeline.dev/deployment'] ?? name)}`, 'not-ready');
      if ((st.observedGeneration ?? 0) >= dep.metadata.generation && (st.updatedReplicas ?? 0) === want && (st.availableReplicas ?? 0) >= want && (st.replicas ?? 0) === want) return;
      if (Date.now() > deadline) {
        const why = await this.podTrouble(c, dep, o.track);
        throw new DeployError(`${o.what} was not ready after ${Math.round(timeoutMs / 1000)} s (${progress})${why ? `: ${why.trim().replace(/\.$/, '')}` : ''}.`, 'not-ready');
      }
      await sleep(500, o.signal);
    }
  }

  /** The newest FailedScheduling or waiting reason among the Deployment's pods, for error messages. */
  private async podTrouble(c: KubeClient, dep: Json, track?: 'stable' | 'canary'): Promise<string | undefined> {
    const instance = dep.spec.selector?.matchLabels?.['app.kubernetes.io/instance'] ?? dep.metadata.name;
    const pods = (await c.core.listNamespacedPod({ namespace: this.ns, labelSelector: `app.kubernetes.io/instance=${instance}${track ? `,${TRACK_LABEL}=${track}` : ''}` }).catch(() => ({ items: [] }))) as Json;
    for (const p of pods.items) {
      const w = (p.status?.containerStatuses ?? []).find((s: Json) => s.state?.waiting)?.state.waiting;
      if (w) return `${w.reason}: ${w.message ?? ''}`;
      const ev = (await c.core.listNamespacedEvent({ namespace: this.ns, fieldSelector: `involvedObject.uid=${p.metadata.uid}` }).catch(() => ({ items: [] }))) as Json;
      const sched = (ev.items as Json[]).filter((e) => e.reason === 'FailedScheduling').pop();
      if (sched) return `FailedScheduling: ${sched.message}`;
    }
    return undefined;
  }

  /** Foreground deletion of a Deployment; resolves once it (and so its pods) is gone. False if there was none. */
  private async deleteDeployment(c: KubeClient, name: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.api(`Deleting Deployment ${name}`, () => c.objects.delete({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: this.ns } } as never, undefined, undefined, undefined, undefined, 'Foreground'), signal);
    } catch (e) {
      if (statusOf(e) === 404) return false;
      throw new DeployError(`Deleting Deployment ${this.ns}/${name} failed: ${messageOf(e)}`, 'not-ready');
    }
    // Foreground deletion: the Deployment is gone only after its ReplicaSets and pods are.
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && !signal?.aborted) {
      if (!(await this.readDeployment(c, name, signal).catch(() => ({})))) break;
      await sleep(300, signal);
    }
    return true;
  }

  async undeploy(name: string, options: UndeployOptions = {}): Promise<boolean> {
    const c = await this.kube();
    const obj = deploymentObjectName(name);
    await this.deleteHpa(c, obj);
    let found = false;
    try {
      await this.api('Deleting Service', () => c.objects.delete({ apiVersion: 'v1', kind: 'Service', metadata: { name: obj, namespace: this.ns } } as never), options.signal);
      found = true;
    } catch (e) {
      if (statusOf(e) !== 404) throw new DeployError(`Deleting Service ${this.ns}/${obj} failed: ${messageOf(e)}`, 'not-ready');
    }
    options.onEvent?.({ type: 'phase', deployment: name, phase: 'stopped', message: `Deleting ${this.ns}/${obj} (foreground: pods first)` });
    const [stable, canary] = await Promise.all([this.deleteDeployment(c, obj, options.signal), this.deleteDeployment(c, canaryObjectName(name), options.signal)]);
    found ||= stable || canary;
    if (!found) options.onEvent?.({ type: 'phase', deployment: name, phase: 'stopped', message: `${name} is not deployed in ${this.ns}` });
    return found;
  }

  /**
   * Sets the pod counts for `percent`. Whichever track grows is scaled first and waited for until its pods
   * are available, then the other shrinks, so the deployment never has fewer ready pods than before.
   */
  async setCanaryWeight(name: string, percent: number): Promise<WeightApplied> {
    const c = await this.kube();
    const obj = deploymentObjectName(name);
    const canaryName = canaryObjectName(name);
    const canary = await this.readDeployment(c, canaryName);
    if (!canary) throw new DeployError(`No canary of ${name} is rolling out in ${this.ns}.`, 'not-found');
    const stable = await this.readDeployment(c, obj);
    if (!stable) throw new DeployError(`${name} has a canary but no stable Deployment ${this.ns}/${obj}; roll the canary back (mlpipeline rollback ${name}) and deploy again.`, 'not-found');
    const total = Number(canary.metadata.annotations?.[CANARY_ANNOTATION.total]) || Math.max(2, (stable.spec.replicas ?? 1) + (canary.spec.replicas ?? 0));
    const split = canarySplit(total, percent);
    const rev = canary.metadata.annotations?.[REVISION] ?? canaryName;
    const want: [string, number, 'stable' | 'canary'][] = [
      [obj, split.stable, 'stable'],
      [canaryName, split.canary, 'canary'],
    ];
    const current = (n: string): number => ((n === obj ? stable : canary).spec.replicas ?? 0);
    const weightNote = (dep: Json): void => {
      if (dep.metadata.name === canaryName) dep.metadata.annotations = { ...dep.metadata.annotations, [CANARY_ANNOTATION.weight]: `${percent} (${split.canary} of ${total} pods = ${split.effective}%)` };
    };
    for (const [n, replicas, track] of want.filter(([n, r]) => r > current(n))) {
      await this.update(c, n, (dep) => {
        dep.spec.replicas = replicas;
        weightNote(dep);
      });
      const pods = `${replicas} pod${replicas === 1 ? '' : 's'}`;
      await this.waitForRollout(c, n, { what: track === 'canary' ? `canary ${rev} of ${name} (${pods})` : `${name} (${pods} on the stable track)`, track });
    }
    for (const [n, replicas] of want.filter(([n, r]) => r < current(n) || (n === canaryName && r === current(n)))) {
      await this.update(c, n, (dep) => {
        dep.spec.replicas = replicas;
        weightNote(dep);
      });
    }
    return { percent: split.effective, detail: `${split.canary} of ${total} pods` };
  }

  /**
   * The canary's pod template (on the stable track) replaces the stable Deployment's, scaled back to the
   * replicas it had before the rollout; once that rollout is done the canary Deployment is deleted and the
   * new revision's HPA applied. The stable Deployment's ReplicaSet history keeps the old revision for
   * a later `rollback`.
   */
  async promote(name: string): Promise<DeploymentStatus> {
    const c = await this.kube();
    const obj = deploymentObjectName(name);
    const canary = await this.readDeployment(c, canaryObjectName(name));
    if (!canary) throw new DeployError(`No canary of ${name} is rolling out in ${this.ns}.`, 'not-found');
    const ann = canary.metadata.annotations ?? {};
    const template = structuredClone(canary.spec.template);
    template.metadata.labels = { ...template.metadata.labels, [TRACK_LABEL]: 'stable' };
    const replicas = Number(ann[CANARY_ANNOTATION.stableReplicas]) || canary.spec.replicas || 1;
    await this.update(c, obj, (dep) => {
      dep.spec.template = template;
      dep.spec.replicas = replicas;
      const a: Record<string, string> = { ...dep.metadata.annotations };
      for (const k of [REVISION, MODEL, SOURCE_RUN, 'mlpipeline.dev/rollback-reason']) delete a[k];
      for (const k of [REVISION, MODEL, SOURCE_RUN]) if (ann[k] !== undefined) a[k] = ann[k];
      dep.metadata.annotations = a;
    });
    await this.waitForRollout(c, obj, { what: `${name} ${ann[REVISION] ?? ''} on the stable track`, track: 'stable' });
    await this.deleteDeployment(c, canaryObjectName(name));
    await this.restoreHpa(c, ann[CANARY_ANNOTATION.hpa]);
    return (await this.status(name))!;
  }

  private async restoreHpa(c: KubeClient, json: string | undefined): Promise<void> {
    if (!json) return;
    let m: Manifest;
    try {
      m = JSON.parse(json) as Manifest;
    } catch {
      return; // Someone edited the annotation; the deployment works without its autoscaler.
    }
    await this.apply(c, m);
  }

  /**
   * With a canary: the stable Deployment back to its replicas from before the rollout (waited for), the
   * canary deleted, the stable HPA restored. Without one: the previous ReplicaSet's pod template, as
   * `kubectl rollout undo`.
   */
  async rollback(name: string, reason: string, options: UndeployOptions = {}): Promise<DeploymentStatus> {
    const c = await this.kube();
    const obj = deploymentObjectName(name);
    const canary = await this.readDeployment(c, canaryObjectName(name), options.signal);
    if (canary) {
      const ann = canary.metadata.annotations ?? {};
      const stable = await this.readDeployment(c, obj, options.signal);
      if (stable) {
        const replicas = Number(ann[CANARY_ANNOTATION.stableReplicas]) || stable.spec.replicas || 1;
        await this.update(c, obj, (dep) => {
          dep.spec.replicas = replicas;
          dep.metadata.annotations = { ...dep.metadata.annotations, 'mlpipeline.dev/rollback-reason': reason.slice(0, 500) };
        }, options.signal);
        // Stable pods ready before the canary's go away: no moment without a ready pod behind the Service.
        await this.waitForRollout(c, obj, { signal: options.signal, what: `${name} (stable, ${replicas} pods)`, track: 'stable' });
      }
      await this.deleteDeployment(c, canaryObjectName(name), options.signal);
      await this.restoreHpa(c, ann[CANARY_ANNOTATION.savedHpa]);
      options.onEvent?.({ type: 'rolled-back', deployment: name, revision: ann[REVISION] ?? 'canary', reason });
      const st = await this.status(name);
      if (!st) throw new DeployError(`The canary of ${name} was removed, but there is no stable Deployment ${this.ns}/${obj} left. Deploy ${name} again.`, 'not-found');
      return st;
    }
    const dep = await this.readDeployment(c, obj, options.signal);
    if (!dep) throw new DeployError(`${name} is not deployed in ${this.ns}.`, 'not-found');
    const rss = ((await this.api('Listing ReplicaSets', () => c.apps.listNamespacedReplicaSet({ namespace: this.ns, labelSelector: `app.kubernetes.io/instance=${obj}` }))) as Json).items as Json[];
    const rev = (rs: Json): number => Number(rs.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0);
    const owned = rss.filter((rs) => (rs.metadata.ownerReferences ?? []).some((o: Json) => o.uid === dep.metadata.uid)).sort((a, b) => rev(b) - rev(a));
    const current = dep.metadata.annotations?.['deployment.kubernetes.io/revision'];
    const previous = owned.find((rs) => String(rev(rs)) !== current);
    if (!previous) throw new DeployError(`${name} has no earlier revision to roll back to.`, 'not-found');
    const template = structuredClone(previous.spec.template);
    delete template.metadata.labels['pod-template-hash'];
    // Whatever the selector requires (a template from before tracks existed has no track label).
    template.metadata.labels = { ...template.metadata.labels, ...dep.spec.selector.matchLabels };
    const next: Json = { ...dep, spec: { ...dep.spec, template } };
    next.metadata.annotations = { ...dep.metadata.annotations, [REVISION]: template.metadata.annotations?.[REVISION] ?? '', 'mlpipeline.dev/rollback-reason': reason.slice(0, 500) };
    for (const k of [MODEL, SOURCE_RUN]) {
      if (template.metadata.annotations?.[k] !== undefined) next.metadata.annotations[k] = template.metadata.annotations[k];
      else delete next.metadata.annotations[k];
    }
    await this.api('Rolling back the Deployment', () => c.apps.replaceNamespacedDeployment({ name: obj, namespace: this.ns, body: next as never }));
    options.onEvent?.({ type: 'rolled-back', deployment: name, revision: template.metadata.annotations?.[REVISION] ?? `k8s revision ${rev(previous)}`, reason });
    await this.waitForRollout(c, obj, { signal: options.signal, what: `${name} (rollback)` });
    return (await this.status(name))!;
  }

  async status(name: string): Promise<DeploymentStatus | undefined> {
    const c = await this.kube();
    const [dep, canary] = await Promise.all([this.readDeployment(c, deploymentObjectName(name)), this.readDeployment(c, canaryObjectName(name))]);
    return dep ? this.toStatus(name, dep, canary) : undefined;
  }

  private revisionOf(dep: Json, weight: number): RevisionStatus {
    const ann = dep.spec.template.metadata.annotations ?? {};
    const want = dep.spec.replicas ?? 1;
    const st = dep.status ?? {};
    const ready = (st.availableReplicas ?? 0) >= want && (st.updatedReplicas ?? 0) === want;
    return {
      revision: ann[REVISION] ?? '',
      model: { path: ann[MODEL] ?? '', hash: '' },
      ...(ann[SOURCE_RUN] ? { sourceRunId: ann[SOURCE_RUN] } : {}),
      phase: ready ? 'ready' : 'starting',
      weight,
      restarts: 0,
      startedAt: dep.metadata.creationTimestamp ? new Date(dep.metadata.creationTimestamp).toISOString() : '',
    };
  }

  private toStatus(name: string, dep: Json, canary?: Json): DeploymentStatus {
    const want = dep.spec.replicas ?? 1;
    const st = dep.status ?? {};
    const ready = (st.availableReplicas ?? 0) >= want && (st.updatedReplicas ?? 0) === want;
    // With a canary, the weights are the pod shares the Service sees (spec replicas; the rollout waits for them).
    const c = canary?.spec.replicas ?? 0;
    const canaryWeight = canary ? (want + c > 0 ? Math.round((c / (want + c)) * 1000) / 10 : 0) : 0;
    const revisions = [this.revisionOf(dep, canary ? Math.round((100 - canaryWeight) * 10) / 10 : 100), ...(canary ? [this.revisionOf(canary, canaryWeight)] : [])];
    return {
      name,
      target: this.o.targetName,
      targetType: 'kubernetes',
      phase: canary ? 'rolling-out' : ready ? 'ready' : (st.updatedReplicas ?? 0) < want ? 'rolling-out' : 'degraded',
      // In-cluster address; reach it from here with kubectl port-forward.
      url: `http://${dep.metadata.name}.${dep.metadata.namespace}.svc.cluster.local`,
      revisions,
      history: [],
      updatedAt: new Date().toISOString(),
    };
  }

  async list(): Promise<DeploymentStatus[]> {
    const c = await this.kube();
    const deps = ((await this.api('Listing Deployments', () => c.apps.listNamespacedDeployment({ namespace: this.ns, labelSelector: `app.kubernetes.io/managed-by=${MANAGED_BY},app.kubernetes.io/component=model-server` }))) as Json).items as Json[];
    const nameOf = (d: Json): string => d.metadata.annotations?.['mlpipeline.dev/deployment'] ?? d.metadata.name;
    const canaries = new Map(deps.filter((d) => d.metadata.labels?.[TRACK_LABEL] === 'canary').map((d) => [nameOf(d), d]));
    return deps.filter((d) => d.metadata.labels?.[TRACK_LABEL] !== 'canary').map((d) => this.toStatus(nameOf(d), d, canaries.get(nameOf(d))));
  }

  /**
   * One Prometheus selector per revision: `namespace`, `service` (the standard endpoints scrape job sets
   * both) and `revision`, which the scrape config maps from the pod label `mlpipeline.dev/revision`.
   */
  async metricsSources(name: string): Promise<MetricsSource[]> {
    const st = await this.status(name);
    return (st?.revisions ?? []).map((r) => ({ revision: r.revision, prometheusSelector: { namespace: this.ns, service: deploymentObjectName(name), revision: labelValue(r.revision) || 'none' } }));
  }
}
