/**
 * Canary rollouts on a Kubernetes target, against a real kube-apiserver 1.20.2 + kube-controller-manager
 * (the Deployment, ReplicaSet, EndpointSlice and HPA controllers are the real ones) and the simulated node
 * (test/infra/sim-node: Deployment pods become Ready but run nothing), plus a real Prometheus.
 *
 * Weights are pod ratios behind one Service, so the tests read the replica counts and the Service's
 * EndpointSlices at every step. The monitors judge the canary through Prometheus, as on a real cluster.
 * Since the simulated pods serve nothing, a small exporter in this file stands in for their /metrics: it
 * follows the model-server pods the apiserver has (one scrape target per Running pod, labelled from the
 * pod's labels the way docs/kubernetes.md's relabelling does) and serves for each pod a request-latency
 * histogram that grows at 20 requests/s with the latency the test set for that pod's revision. A breach
 * therefore shows up only when pods of the slow revision exist and carry the labels the monitor selects.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { planDeployment, type ResolvedDeployment } from '../../server/src/core/deploy-plan';
import { planRun } from '../../server/src/core/plan';
import { analyzeSpec } from '../../server/src/core/validate';
import { KubernetesDeployTarget } from '../../client/src/runtime/kubernetes/deploy';
import type { DeployEvent } from '../../client/src/runtime/serving/deploy-target';
import { runRollout } from '../../client/src/runtime/serving/rollout';
import { startKubeCluster, type KubeCluster } from '../helpers/kube-cluster';
import { freePort } from '../helpers/net';
import { startPrometheus, type Prometheus } from '../helpers/prometheus';

const ROOT = resolve(__dirname, '..', '..');
const CLI = join(ROOT, 'bin', 'mlpipeline.js');
const NS = 'ml';
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let cluster: KubeCluster;
let prom: Prometheus;
let exporter: PodExporter;
const dirs: string[] = [];

function specText(name: string, promUrl: string, extra = ''): string {
  return `apiVersion: mlpipeline/v1
name: canary-test
compute:
  test-cluster:
    type: kubernetes
    context: mlp-test
    namespace: ${NS}
    image: docker.io/library/python:3.12-slim
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
steps:
  noop:
    command: "true"
deployments:
  ${name}:
    model: models/model.pkl
    compute: test-cluster
    runtime:
      command: python -m http.server \${PORT}
      port: 8080
      readiness: /
    replicas: {min: 2, max: 3}
    autoscale: {metric: cpu, target: 70}
    rollout:
      strategy: canary
      steps: [{weight: 25, hold: 8s}, {weight: 50, hold: 8s}, {weight: 100, hold: 4s}]
      rollbackOn: [monitors.${name}-latency]
monitors:
  ${name}-latency:
    deployment: ${name}
    slo: {p95LatencyMs: 100, window: 5s}
    source: {prometheus: "${promUrl}"}
alerts:
  - when: [monitors.${name}-latency]
    notify: [log]
${extra}`;
}

function resolved(name: string): { d: ResolvedDeployment; target: KubernetesDeployTarget } {
  const analysis = analyzeSpec(specText(name, prom.url));
  const planned = planRun(analysis);
  assert.ok(planned.ok, JSON.stringify(!planned.ok && planned.errors));
  const d = planDeployment(analysis, name);
  assert.ok(d.ok, JSON.stringify(!d.ok && d.errors));
  return { d: d.deployment, target: new KubernetesDeployTarget({ targetName: 'test-cluster', target: planned.plan.targets['test-cluster'].kubernetes!, kubeconfig: cluster.kubeconfig, readyTimeoutMs: 60_000 }) };
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const getDeployment = (name: string) => cluster.api('GET', `/apis/apps/v1/namespaces/${NS}/deployments/${name}`);
const getHpa = (name: string) => cluster.api('GET', `/apis/autoscaling/v2beta2/namespaces/${NS}/horizontalpodautoscalers/${name}`);

/** Replicas asked for and available, per track, as the apiserver has them now. */
async function tracks(name: string): Promise<{ stable: [number, number]; canary?: [number, number] }> {
  const [s, c] = await Promise.all([getDeployment(name), getDeployment(`${name}-canary`)]);
  const pair = (d: Json): [number, number] => [d.spec.replicas, d.status?.availableReplicas ?? 0];
  return { stable: pair(s.body), ...(c.status === 200 ? { canary: pair(c.body) } : {}) };
}

/** The pods behind the Service, by track, from the EndpointSlices the real controller keeps. */
async function endpointTracks(name: string): Promise<Record<string, number>> {
  const slices = await cluster.api('GET', `/apis/discovery.k8s.io/v1beta1/namespaces/${NS}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${name}`)}`);
  const pods = await cluster.api('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent(`app.kubernetes.io/instance=${name}`)}`);
  const trackOf = new Map((pods.body.items as Json[]).map((p) => [p.metadata.name, p.metadata.labels['mlpipeline.dev/track']]));
  const out: Record<string, number> = {};
  for (const s of slices.body.items as Json[]) {
    for (const e of s.endpoints ?? []) {
      if (e.conditions?.ready === false) continue;
      const t = trackOf.get(e.targetRef?.name) ?? 'unknown';
      out[t] = (out[t] ?? 0) + 1;
    }
  }
  return out;
}

/**
 * Stands in for the model servers' /metrics (see the file comment): one Prometheus target per Running
 * model-server pod, written as a file_sd file every 300 ms, and per pod an `http_request_duration_seconds`
 * histogram growing at 20 requests/s with the latency set for its `<deployment>/<revision>`.
 */
class PodExporter {
  private server?: http.Server;
  private port = 0;
  private timers: NodeJS.Timeout[] = [];
  private readonly pods = new Map<string, { key: string; buckets: number[]; sum: number; count: number }>();
  readonly latencyMs = new Map<string, number>();
  static readonly LE = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

  constructor(private readonly sdFile: string) {}

  async start(): Promise<void> {
    this.port = await freePort();
    this.server = http.createServer((req, res) => {
      const pod = this.pods.get(decodeURIComponent((req.url ?? '').replace(/^\/metrics\//, '')));
      if (!pod) return void res.writeHead(404).end();
      const l = 'path="/predict",method="POST",status="200"';
      const lines = ['# TYPE http_request_duration_seconds histogram'];
      PodExporter.LE.forEach((le, i) => lines.push(`http_request_duration_seconds_bucket{${l},le="${le}"} ${pod.buckets[i]}`));
      lines.push(`http_request_duration_seconds_bucket{${l},le="+Inf"} ${pod.count}`, `http_request_duration_seconds_sum{${l}} ${pod.sum}`, `http_request_duration_seconds_count{${l}} ${pod.count}`);
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(lines.join('\n') + '\n');
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
    let syncing = false;
    this.timers.push(
      setInterval(() => {
        if (syncing) return;
        syncing = true;
        void this.sync().finally(() => (syncing = false));
      }, 300),
      // 2 requests per pod every 100 ms, each taking its revision's latency (±10%).
      setInterval(() => {
        for (const p of this.pods.values()) {
          for (let k = 0; k < 2; k++) {
            const s = ((this.latencyMs.get(p.key) ?? 20) * (0.9 + Math.random() * 0.2)) / 1000;
            PodExporter.LE.forEach((le, i) => (p.buckets[i] += s <= le ? 1 : 0));
            p.sum += s;
            p.count++;
          }
        }
      }, 100),
    );
  }

  private async sync(): Promise<void> {
    // Bounded: one request that never answers must not stop the targets from following the pods.
    const res = await Promise.race([
      cluster.api('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent('app.kubernetes.io/component=model-server')}`).catch(() => undefined),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000).unref()),
    ]);
    if (res?.status !== 200) return;
    const live = (res.body.items as Json[]).filter((p) => p.status?.phase === 'Running' && !p.metadata.deletionTimestamp);
    const names = new Set(live.map((p) => p.metadata.name as string));
    for (const n of [...this.pods.keys()]) if (!names.has(n)) this.pods.delete(n);
    const groups = live.map((p) => {
      const labels = p.metadata.labels as Record<string, string>;
      const key = `${labels['mlpipeline.dev/deployment']}/${labels['mlpipeline.dev/revision']}`;
      if (!this.pods.has(p.metadata.name)) this.pods.set(p.metadata.name, { key, buckets: PodExporter.LE.map(() => 0), sum: 0, count: 0 });
      // What the relabelling in docs/kubernetes.md makes of a pod behind the deployment's Service.
      return { targets: [`127.0.0.1:${this.port}`], labels: { __metrics_path__: `/metrics/${p.metadata.name}`, namespace: p.metadata.namespace, service: labels['app.kubernetes.io/instance'], pod: p.metadata.name, deployment: labels['mlpipeline.dev/deployment'], revision: labels['mlpipeline.dev/revision'] } };
    });
    writeFileSync(this.sdFile + '.tmp', JSON.stringify(groups));
    renameSync(this.sdFile + '.tmp', this.sdFile);
  }

  async stop(): Promise<void> {
    this.timers.forEach(clearInterval);
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

before(async () => {
  cluster = await startKubeCluster({ gpus: 1 });
  await cluster.api('POST', '/api/v1/namespaces', { metadata: { name: NS } });
  await until('default service account', async () => (await cluster.api('GET', `/api/v1/namespaces/${NS}/serviceaccounts/default`)).status === 200);
  const sd = mkdtempSync(join(tmpdir(), 'mlp-canary-sd-'));
  dirs.push(sd);
  prom = await startPrometheus({ fileSdGlob: join(sd, '*.json') });
  exporter = new PodExporter(join(sd, 'pods.json'));
  await exporter.start();
});

after(async () => {
  await exporter?.stop();
  await prom?.stop();
  await cluster?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('canary rollouts on Kubernetes (pod ratios behind one Service)', { timeout: 600_000 }, () => {
  const name = 'churn-api';

  it('moves traffic step by step as pod ratios, judges the canary through Prometheus, and promotes it', async () => {
    const { d, target } = resolved(name);
    await target.deploy({ deployment: d, model: { path: 'models/v1.pkl', hash: 'h1' }, revision: 'r1', strategy: 'replace', workspace: ROOT });
    assert.deepEqual((await tracks(name)).stable, [2, 2]);
    assert.equal((await getHpa(name)).status, 200);

    const started: DeployEvent[] = [];
    await target.deploy({ deployment: d, model: { path: 'models/v2.pkl', hash: 'h2' }, revision: 'r2', strategy: 'canary', workspace: ROOT, onEvent: (e) => started.push(e) });
    const canary = (await getDeployment(`${name}-canary`)).body;
    assert.equal(canary.spec.replicas, 0, 'the canary starts at weight 0: no pods');
    assert.equal(canary.metadata.annotations['mlpipeline.dev/canary-total'], '4', '25% and 50% are exact with 4 pods');
    assert.equal(canary.spec.template.metadata.labels['mlpipeline.dev/track'], 'canary');
    assert.equal(canary.spec.template.metadata.labels['mlpipeline.dev/revision'], 'r2');
    const svc = (await cluster.api('GET', `/api/v1/namespaces/${NS}/services/${name}`)).body;
    for (const [k, v] of Object.entries(svc.spec.selector as Record<string, string>)) assert.equal(canary.spec.template.metadata.labels[k], v, `the Service selects canary pods too (${k})`);
    assert.equal((await getHpa(name)).status, 404, 'the stable autoscaler is paused during the rollout');
    assert.ok(started.some((e) => e.type === 'phase' && /25% -> 1 of 4 pods \(25%\); 50% -> 2 of 4 pods \(50%\); 100% -> 4 of 4 pods/.test(e.message)), JSON.stringify(started));

    const atStep: Promise<{ weight: number; tracks: Awaited<ReturnType<typeof tracks>>; endpoints: Record<string, number> }>[] = [];
    const events: DeployEvent[] = [];
    const outcome = await runRollout({
      target,
      deployment: d,
      canary: 'r2',
      // 12 s holds: time for Prometheus to find the new pods and scrape them a few times on a busy machine.
      holdScale: 1.5,
      onEvent: (e) => {
        events.push(e);
        // The cluster right after each weight was set, before the hold.
        // Replicas at once (the step's own numbers); the Service's endpoints once the controller caught up.
        if (e.type === 'weights') {
          atStep.push(
            tracks(name).then(async (t) => ({
              weight: e.weights.r2,
              tracks: t,
              endpoints: await until(`the Service's endpoints at ${e.weights.r2}%`, async () => {
                const ep = await endpointTracks(name);
                return (ep.stable ?? 0) === t.stable[0] && (ep.canary ?? 0) === (t.canary?.[0] ?? 0) && ep;
              }),
            })),
          );
        }
      },
    });
    assert.deepEqual(outcome, { outcome: 'promoted' });
    const steps = await Promise.all(atStep);
    // [weight, stable pods, canary pods]: 4 pods in all, the stable track first grows to 3 to keep 75%.
    assert.deepEqual(steps.map((s) => [s.weight, s.tracks.stable[0], s.tracks.canary?.[0]]), [
      [25, 3, 1],
      [50, 2, 2],
      [100, 0, 4],
    ]);
    // The growing track was scaled first and waited for: its pods were available before the hold began.
    assert.deepEqual(steps.map((s) => s.tracks.canary?.[1]), [1, 2, 4]);
    assert.equal(steps[0].tracks.stable[1], 3);
    assert.deepEqual(steps.map((s) => s.endpoints), [{ stable: 3, canary: 1 }, { stable: 2, canary: 2 }, { canary: 4 }], 'the Service sends to both tracks in the ratio of their ready pods');
    const messages = events.filter((e) => e.type === 'phase').map((e) => (e as { message: string }).message);
    assert.ok(messages.includes('step 1/3: 25% to r2 (1 of 4 pods), holding 12.0 s'), messages.join('\n'));
    const judged = events.filter((e): e is Extract<DeployEvent, { type: 'monitor' }> => e.type === 'monitor' && /^ok: p95/.test(e.summary));
    assert.ok(judged.length >= 2, `the canary was judged on data, not just "no traffic": ${JSON.stringify(events.filter((e) => e.type === 'monitor'))}`);
    assert.ok(events.some((e) => e.type === 'promoted' && e.revision === 'r2'));

    // Promoted: the new revision is the stable track with the replicas from before, the canary is gone.
    assert.equal((await getDeployment(`${name}-canary`)).status, 404);
    const stable = (await getDeployment(name)).body;
    assert.equal(stable.spec.replicas, 2);
    assert.equal(stable.status.availableReplicas, 2);
    assert.equal(stable.spec.template.metadata.labels['mlpipeline.dev/revision'], 'r2');
    assert.equal(stable.spec.template.metadata.labels['mlpipeline.dev/track'], 'stable');
    assert.equal(stable.metadata.annotations['mlpipeline.dev/model'], 'models/v2.pkl');
    assert.equal((await getHpa(name)).status, 200, 'the autoscaler is back');
    const st = await target.status(name);
    assert.deepEqual(st?.revisions.map((r) => [r.revision, r.weight]), [['r2', 100]]);
    assert.equal(st?.phase, 'ready');
    await until('the Service to have only the promoted pods', async () => JSON.stringify(await endpointTracks(name)) === JSON.stringify({ stable: 2 }));
  });

  it('rolls a canary whose p95 breaches back, with the measured numbers, and restores the stable pods', async () => {
    const { d, target } = resolved(name);
    exporter.latencyMs.set(`${name}/r3`, 300);
    await target.deploy({ deployment: d, model: { path: 'models/v3.pkl', hash: 'h3' }, revision: 'r3', strategy: 'canary', workspace: ROOT });
    const events: DeployEvent[] = [];
    // Long holds: the breach must be found however slowly the machine runs; a found breach ends the hold.
    const outcome = await runRollout({ target, deployment: d, canary: 'r3', holdScale: 3, onEvent: (e) => events.push(e) });
    assert.equal(outcome.outcome, 'rolled-back', JSON.stringify(events));
    assert.match((outcome as { reason: string }).reason, /^monitors\.churn-api-latency breached on r3: p95 latency [0-9.]+ ms > 100 ms/);
    const p95 = Number(/p95 latency ([0-9.]+) ms/.exec((outcome as { reason: string }).reason)![1]);
    assert.ok(p95 > 250 && p95 <= 500, `p95 ${p95} ms comes from the 300 ms the canary's pods took`);
    assert.ok(!events.some((e) => e.type === 'phase' && /step 3\/3/.test(e.message)), 'rolled back before the canary took all traffic');
    assert.equal((await getDeployment(`${name}-canary`)).status, 404, 'the canary is deleted');
    const stable = (await getDeployment(name)).body;
    assert.deepEqual([stable.spec.replicas, stable.status.availableReplicas], [2, 2], 'the stable track is back to full');
    assert.equal(stable.spec.template.metadata.labels['mlpipeline.dev/revision'], 'r2', 'the stable revision is untouched');
    assert.match(stable.metadata.annotations['mlpipeline.dev/rollback-reason'], /p95 latency/);
    assert.equal((await getHpa(name)).status, 200, 'the autoscaler is restored');
    assert.deepEqual((await target.status(name))?.revisions.map((r) => [r.revision, r.weight]), [['r2', 100]]);
  });

  it('rolls back when the canary pods cannot start, with the scheduler\'s reason', async () => {
    const { d } = resolved(name);
    const planned = planRun(analyzeSpec(specText(name, prom.url)));
    assert.ok(planned.ok);
    const impatient = new KubernetesDeployTarget({ targetName: 'test-cluster', target: planned.plan.targets['test-cluster'].kubernetes!, kubeconfig: cluster.kubeconfig, readyTimeoutMs: 6000 });
    // The node has 1 GPU: a canary that asks for 4 is never scheduled.
    const greedy = { ...d, resources: { gpu: 4 } };
    await impatient.deploy({ deployment: greedy, model: { path: 'm', hash: 'h' }, revision: 'r3b', strategy: 'canary', workspace: ROOT });
    const outcome = await runRollout({ target: impatient, deployment: greedy, canary: 'r3b' });
    assert.equal(outcome.outcome, 'rolled-back');
    assert.match((outcome as { reason: string }).reason, /^could not move 25% of traffic to r3b: canary r3b of churn-api \(1 pod\) was not ready after 6 s \([01]\/1 updated, 0 available\): FailedScheduling: 0\/1 nodes are available: 1 Insufficient nvidia\.com\/gpu\.$/);
    assert.equal((await getDeployment(`${name}-canary`)).status, 404);
    assert.deepEqual(await tracks(name), { stable: [2, 2] }, 'the stable track took all traffic back');
    assert.equal((await getHpa(name)).status, 200);
  });

  it('refuses a canary whose monitor cannot see the pods, and a second canary while one rolls out', async () => {
    const { d, target } = resolved(name);
    const blind = { ...d, monitors: d.monitors.map((m) => ({ ...m, prometheus: undefined })) };
    await assert.rejects(target.deploy({ deployment: blind, model: { path: 'm', hash: 'h' }, revision: 'r4', strategy: 'canary', workspace: ROOT }), /monitors\.churn-api-latency would judge the canary of churn-api, but pods on test-cluster cannot be scraped from here\. Give it `source: \{prometheus: URL\}`/);
    assert.equal((await getDeployment(`${name}-canary`)).status, 404, 'nothing was created');
    await target.deploy({ deployment: d, model: { path: 'm', hash: 'h' }, revision: 'r4', strategy: 'canary', workspace: ROOT });
    await assert.rejects(target.deploy({ deployment: d, model: { path: 'm', hash: 'h' }, revision: 'r5', strategy: 'canary', workspace: ROOT }), /A canary of churn-api \(revision r4\) is still in ml: promote it or roll it back first/);
    await target.setCanaryWeight(name, 25);
    assert.deepEqual((await target.status(name))?.revisions.map((r) => [r.revision, r.weight]), [['r2', 75], ['r4', 25]]);
    // What `mlpipeline rollback` does from another terminal: everything it needs is in the cluster.
    const fresh = resolved(name).target;
    const back = await fresh.rollback(name, 'rolled back by the user');
    assert.deepEqual(back.revisions.map((r) => [r.revision, r.weight]), [['r2', 100]]);
    assert.deepEqual(await tracks(name), { stable: [2, 2] });
    assert.equal(await target.undeploy(name), true);
    assert.equal((await getDeployment(name)).status, 404);
  });
});

describe('mlpipeline plan and deploy --target with a canary rollout', { timeout: 600_000 }, () => {
  const name = 'cli-api';
  let ws: string;
  const cli = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((res) =>
      execFile(process.execPath, [CLI, ...args], { cwd: ws, env: { ...process.env, KUBECONFIG: cluster.kubeconfig, NO_COLOR: '1' }, timeout: 240_000 }, (err, stdout, stderr) => res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
    );

  before(() => {
    ws = mkdtempSync(join(tmpdir(), 'mlp-canary-cli-'));
    dirs.push(ws);
    mkdirSync(join(ws, 'models'));
    writeFileSync(join(ws, 'models', 'model.pkl'), 'model v1\n');
    writeFileSync(join(ws, 'mlpipeline.yaml'), specText(name, prom.url));
  });

  it('plan prints the canary Deployment with each step as pods, and the apiserver accepts it', async () => {
    const out = await cli('plan', '--target', 'test-cluster', '--hpa-api', 'autoscaling/v2beta2');
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual([...out.stdout.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]), ['Job', 'Deployment', 'Service', 'HorizontalPodAutoscaler', 'Deployment']);
    assert.match(out.stdout, /name: cli-api-canary/);
    assert.match(out.stdout, /mlpipeline\.dev\/canary-plan: 25% -> 1 of 4 pods \(25%\); 50% -> 2 of 4 pods \(50%\); 100% -> 4 of 4 pods \(100%\)/);
    const res = await cluster.kubectl(['apply', '--dry-run=server', '--validate=true', '-f', '-'], out.stdout);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /deployment\.apps\/cli-api-canary created \(server dry run\)/);
  });

  it('deploy --target rolls a slow canary back and exits 1 with the reason; a healthy one is promoted', async () => {
    const first = await cli('deploy', name, '--target', 'test-cluster');
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /cli-api is serving at http:\/\/cli-api\.ml\.svc\.cluster\.local \(revision r1, target test-cluster\)/);

    exporter.latencyMs.set(`${name}/r2`, 300);
    writeFileSync(join(ws, 'models', 'model.pkl'), 'model v2\n');
    const slow = await cli('deploy', name, '--target', 'test-cluster', '--hold-scale', '3');
    assert.equal(slow.code, 1, slow.stdout + slow.stderr);
    assert.match(slow.stdout, /Canary r2 is ready next to r1; rolling out/);
    assert.match(slow.stdout, /step 1\/3: 25% to r2 \(1 of 4 pods\), holding 24\.0 s/);
    assert.match(slow.stderr, /Canary r2 was rolled back: monitors\.cli-api-latency breached on r2: p95 latency [0-9.]+ ms > 100 ms/);
    const history = readFileSync(join(ws, '.mlpipeline/deployments/cli-api/history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(history.map((h) => [h.revision, h.outcome]), [['r1', 'deployed'], ['r2', 'rolled-back']]);
    const alerts = readFileSync(join(ws, '.mlpipeline/deployments/cli-api/alerts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual([alerts.at(-1).state, alerts.at(-1).revision, alerts.at(-1).monitor], ['violated', 'r2', 'cli-api-latency']);
    assert.equal((await getDeployment(`${name}-canary`)).status, 404);
    assert.equal((await getDeployment(name)).body.spec.template.metadata.labels['mlpipeline.dev/revision'], 'r1');

    writeFileSync(join(ws, 'models', 'model.pkl'), 'model v3\n');
    const good = await cli('deploy', name, '--target', 'test-cluster', '--hold-scale', '0.5');
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /step 2\/3: 50% to r3 \(2 of 4 pods\), holding 4\.0 s/);
    assert.match(good.stdout, /promoted r3/);
    assert.equal((await getDeployment(name)).body.spec.template.metadata.labels['mlpipeline.dev/revision'], 'r3');

    const down = await cli('undeploy', name);
    assert.equal(down.code, 0, down.stdout + down.stderr);
    assert.equal((await getDeployment(name)).status, 404);
  });
});
