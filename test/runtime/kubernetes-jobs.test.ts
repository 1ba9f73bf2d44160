/**
 * Steps as Kubernetes Jobs against a real kube-apiserver 1.20.2 + kube-controller-manager (the Job
 * controller and garbage collector are the real ones) and the simulated GPU node (test/infra/sim-node),
 * with the fault proxy (test/helpers/fault-proxy.ts) in front of the apiserver for 500/409/429 and drops.
 * The first run builds the binaries (test/infra/install-kube.sh, minutes); later runs reuse them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { planRun } from '../../server/src/core/plan';
import { analyzeSpec } from '../../server/src/core/validate';
import { runPlan, type EngineEvent, type RunResult } from '../../client/src/runtime/engine';
import { KubernetesExecutor, type KubernetesExecutorOptions } from '../../client/src/runtime/kubernetes/executor';
import { jobName } from '../../client/src/runtime/kubernetes/manifests';
import { RunStore } from '../../client/src/runtime/run-store';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { startKubeCluster, type KubeCluster } from '../helpers/kube-cluster';

const ROOT = resolve(__dirname, '..', '..');
const NS = 'ml';
const SECRET = 'sk-test-0123456789';
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let cluster: KubeCluster;
const dirs: string[] = [];

function specText(steps: string, target = ''): string {
  return `apiVersion: mlpipeline/v1
name: k8s-test
secrets: [HF_TOKEN]
compute:
  gpu-cluster:
    type: kubernetes
    default: true
    context: mlp-test
    namespace: ${NS}
    image: busybox:1.36
    # The sim node carries the usual GPU-pool taint; CPU-only steps may use it too.
    tolerations: [{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}, {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
${target}steps:
${steps}`;
}

interface Ran extends RunResult {
  events: EngineEvent[];
  log(step: string): string;
  workspace: string;
}

async function run(text: string, opts: { executor?: KubernetesExecutorOptions; kubeconfig?: string; signal?: AbortSignal; force?: boolean; workspace?: string; onEvent?: (e: EngineEvent) => void } = {}): Promise<Ran> {
  const workspace = opts.workspace ?? mkdtempSync(join(tmpdir(), 'mlp-k8s-ws-'));
  if (!opts.workspace) dirs.push(workspace);
  const specPath = join(workspace, 'mlpipeline.yaml');
  writeFileSync(specPath, text);
  const planned = planRun(analyzeSpec(text));
  assert.ok(planned.ok, JSON.stringify(!planned.ok && planned.errors));
  const events: EngineEvent[] = [];
  const result = await runPlan({
    specPath,
    specText: text,
    plan: planned.plan,
    force: opts.force,
    signal: opts.signal,
    secret: (n) => (n === 'HF_TOKEN' ? SECRET : undefined),
    kubernetesExecutor: new KubernetesExecutor({ kubeconfig: opts.kubeconfig ?? cluster.kubeconfig, pendingTimeoutMs: 4000, pollMs: 500, requestTimeoutMs: 4000, ...opts.executor }),
    onEvent: (e) => {
      events.push(e);
      opts.onEvent?.(e);
    },
  });
  const store = new RunStore(join(workspace, '.mlpipeline', 'runs'));
  return { ...result, events, workspace, log: (step) => readFileSync(store.logPath(result.runId, step), 'utf8') };
}

async function jobsFor(step: string): Promise<Json[]> {
  const res = await cluster.api('GET', `/apis/batch/v1/namespaces/${NS}/jobs?labelSelector=${encodeURIComponent(`mlpipeline.dev/step=${step}`)}`);
  return res.body.items;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const runningPod = (step: string) => () =>
  cluster.api('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent(`mlpipeline.dev/step=${step}`)}`).then((r) => (r.body.items as Json[]).find((p) => p.status.phase === 'Running'));

before(async () => {
  cluster = await startKubeCluster({ gpus: 2 });
  await cluster.api('POST', '/api/v1/namespaces', { metadata: { name: NS } });
  const s = await cluster.api('POST', `/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'mlpipeline-secrets' }, stringData: { HF_TOKEN: SECRET } });
  assert.equal(s.status, 201);
  // The namespace's default service account must exist before pods can be created.
  await until('default service account', async () => (await cluster.api('GET', `/api/v1/namespaces/${NS}/serviceaccounts/default`)).status === 200);
});

after(async () => {
  await cluster?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('kubernetes Jobs', { timeout: 600_000 }, () => {
  it('runs a step as a Job with labels, name, GPU resources and tolerations, and streams its log live', async () => {
    const text = specText(
      `  train:
    command: echo "hello from the pod"; echo "token=$HF_TOKEN"; sleep 2; echo "epoch 1 done"
    env: {HF_TOKEN: "\${secrets.HF_TOKEN}", MODE: fast}
    resources: {gpu: A100:1, cpu: 500m, memory: 256Mi}
`,
    );
    let outputBeforeFinish = false;
    const r = await run(text, {
      onEvent: (e) => {
        if (e.type === 'step-output' && e.text.includes('hello from the pod')) outputBeforeFinish = true;
      },
    });
    assert.equal(r.status, 'succeeded', r.record.error);
    const rec = r.record.steps.train;
    assert.equal(rec.status, 'succeeded');
    assert.equal(rec.exitCode, 0);
    assert.equal(rec.attempts, 1);
    assert.ok(rec.cacheKey);
    assert.equal(r.record.target, 'gpu-cluster');
    assert.ok(outputBeforeFinish, 'log lines arrive as step-output events while the step runs');

    const log = r.log('train');
    assert.match(log, /hello from the pod/);
    assert.match(log, /epoch 1 done/);
    assert.match(log, /token=\*\*\*/, 'secret values are masked in the log');
    assert.doesNotMatch(log, new RegExp(SECRET));

    const jobs = await jobsFor('train');
    assert.equal(jobs.length, 1);
    const job = jobs[0];
    assert.equal(job.metadata.name, jobName('k8s-test', 'train', rec.cacheKey!, 1));
    assert.equal(job.metadata.labels['app.kubernetes.io/managed-by'], 'mlpipeline');
    assert.equal(job.metadata.labels['app.kubernetes.io/part-of'], 'k8s-test');
    assert.equal(job.metadata.annotations['mlpipeline.dev/run-id'], r.runId);
    const pod = job.spec.template.spec;
    assert.equal(pod.containers[0].resources.limits['nvidia.com/gpu'], '1');
    assert.equal(pod.containers[0].resources.requests.memory, '256Mi');
    assert.ok(pod.tolerations.some((t: Json) => t.key === 'nvidia.com/gpu'));
    assert.ok(pod.tolerations.some((t: Json) => t.key === 'dedicated'));
    assert.ok(JSON.stringify(pod.affinity).includes(cluster.gpuProduct));
    assert.doesNotMatch(JSON.stringify(job), new RegExp(SECRET), 'the secret is never inline in the manifest');
    assert.deepEqual(pod.containers[0].env.find((e: Json) => e.name === 'HF_TOKEN').valueFrom.secretKeyRef, { name: 'mlpipeline-secrets', key: 'HF_TOKEN' });
    // The real Job controller counted the pod the simulated node ran.
    assert.equal(job.status.succeeded, 1);

    // Recorded like a local run: the store lists it with its status.
    const listed = await new RunStore(join(r.workspace, '.mlpipeline', 'runs')).list();
    assert.deepEqual(listed.map((s) => [s.id, s.status]), [[r.runId, 'succeeded']]);
  });

  it('fails an unschedulable GPU request with the FailedScheduling Event, and deletes the Job', async () => {
    const r = await run(specText(`  too-big:\n    command: echo never\n    resources: {gpu: A100:8}\n`));
    assert.equal(r.status, 'failed');
    const err = r.record.steps['too-big'].error!;
    assert.match(err, /0\/1 nodes are available: 1 Insufficient nvidia\.com\/gpu/);
    assert.match(err, /Lower `resources`/);
    await until('job deletion', async () => ((await jobsFor('too-big')).length === 0 ? true : undefined));
  });

  it('says which node label did not match for an unknown GPU type', async () => {
    const r = await run(specText(`  wrong-type:\n    command: echo never\n    resources: {gpu: H100:1}\n`));
    assert.equal(r.status, 'failed');
    assert.match(r.record.steps['wrong-type'].error!, /didn't match node selector/);
  });

  it('cancels by deleting the Job (foreground): pods and Job are gone', async () => {
    const ac = new AbortController();
    const pending = run(specText(`  cancel-me:\n    command: echo started; sleep 120\n`), { signal: ac.signal });
    await until('running pod', runningPod('cancel-me'));
    ac.abort();
    const r = await pending;
    assert.equal(r.status, 'cancelled');
    assert.equal(r.record.steps['cancel-me'].status, 'cancelled');
    assert.equal((await jobsFor('cancel-me')).length, 0);
    const pods = await cluster.api('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent('mlpipeline.dev/step=cancel-me')}`);
    assert.equal(pods.body.items.length, 0, 'foreground deletion removed the pods first');
  });

  it('retries per `retry`: one Job per attempt, the second succeeds', async () => {
    const r = await run(specText(`  flaky:\n    command: echo "attempt $MLP_ATTEMPT"; test "$MLP_ATTEMPT" = 2 || exit 3\n    retry: {max: 2, on: [failure]}\n`));
    assert.equal(r.status, 'succeeded', r.record.error);
    assert.equal(r.record.steps.flaky.attempts, 2);
    const log = r.log('flaky');
    assert.match(log, /attempt 1/);
    assert.match(log, /attempt 2/);
    const names = (await jobsFor('flaky')).map((j) => j.metadata.name).sort();
    assert.deepEqual(names, [jobName('k8s-test', 'flaky', r.record.steps.flaky.cacheKey!, 1), jobName('k8s-test', 'flaky', r.record.steps.flaky.cacheKey!, 2)]);
  });

  it('a failing step records its exit code and is not retried without `retry`', async () => {
    const r = await run(specText(`  broken:\n    command: echo oops >&2; exit 7\n`));
    assert.equal(r.status, 'failed');
    assert.equal(r.record.steps.broken.attempts, 1);
    assert.equal(r.record.steps.broken.exitCode, 7);
    assert.match(r.record.steps.broken.error!, /exit code 7/);
    assert.match(r.log('broken'), /oops/);
  });

  it('a missing secret key fails at once with the kubectl command that fixes it', async () => {
    const text = specText(`  needs-secret:\n    command: echo x\n    env: {OTHER: "\${secrets.OTHER_TOKEN}"}\n`).replace('secrets: [HF_TOKEN]', 'secrets: [HF_TOKEN, OTHER_TOKEN]');
    const r = await run(text);
    assert.equal(r.status, 'failed');
    assert.match(r.record.steps['needs-secret'].error!, /has no key OTHER_TOKEN.*kubectl -n ml patch secret mlpipeline-secrets/);
    assert.equal((await jobsFor('needs-secret')).length, 0, 'no Job is created');
  });
});

describe('kubernetes Jobs through faults', { timeout: 600_000 }, () => {
  let proxy: FaultProxy;
  let proxiedConfig: string;
  before(async () => {
    proxy = await startFaultProxy({
      upstream: cluster.server,
      upstreamCa: readFileSync(cluster.caFile),
      tls: { cert: readFileSync(join(cluster.dir, 'apiserver.crt')), key: readFileSync(join(cluster.dir, 'apiserver.key')) },
    });
    const d = mkdtempSync(join(tmpdir(), 'mlp-k8s-proxy-'));
    dirs.push(d);
    proxiedConfig = join(d, 'kubeconfig');
    cluster.writeKubeconfig(proxiedConfig, proxy.url);
  });
  after(async () => proxy?.stop());

  it('reaches the right state through 500s, a 409, 429 + Retry-After and dropped watch and log streams', async () => {
    proxy.clear();
    const create = proxy.inject({ method: 'POST', path: /\/jobs$/, times: 1, action: { type: 'respond', status: 500, body: '{"kind":"Status","code":500,"message":"etcd hiccup"}', headers: { 'content-type': 'application/json' } } });
    const conflict = proxy.inject({ method: 'POST', path: /\/jobs$/, times: 1, action: { type: 'respond', status: 409, body: '{"kind":"Status","code":409,"reason":"AlreadyExists","message":"conflict"}', headers: { 'content-type': 'application/json' } } });
    const throttled = proxy.inject({ method: 'GET', path: /\/jobs\/mlp-/, times: 2, action: { type: 'respond', status: 429, headers: { 'retry-after': '1', 'content-type': 'application/json' }, body: '{"kind":"Status","code":429,"message":"slow down"}' } });
    const watches = proxy.inject({ path: /watch=true/, times: 6, action: { type: 'cut', afterMs: 300 } });
    const logs = proxy.inject({ path: /\/log\?.*follow=true/, times: 2, action: { type: 'cut', afterBytes: 12 } });
    const r = await run(specText(`  faulty:\n    command: for i in 1 2 3 4 5 6; do echo "line-$i"; sleep 0.5; done\n`), { kubeconfig: proxiedConfig });
    assert.equal(r.status, 'succeeded', r.record.error);
    assert.equal(create.applied, 1);
    assert.equal(conflict.applied, 1);
    assert.equal(throttled.applied, 2);
    assert.ok(watches.applied >= 1, 'a watch stream was dropped');
    assert.ok(logs.applied >= 1, 'a log stream was dropped');
    const log = r.log('faulty');
    for (let i = 1; i <= 6; i++) assert.equal(log.split(`line-${i}\n`).length - 1, 1, `line-${i} exactly once in:\n${log}`);
    assert.match(log, /etcd hiccup; retrying/);
    assert.equal((await jobsFor('faulty')).length, 1, 'no duplicate Job');
  });

  it('a create whose response is lost is adopted, not duplicated', async () => {
    proxy.clear();
    const lost = proxy.inject({ method: 'POST', path: /\/jobs$/, times: 1, action: { type: 'cut', afterBytes: 0 } });
    const r = await run(specText(`  lost-response:\n    command: echo made-once\n`), { kubeconfig: proxiedConfig });
    assert.equal(r.status, 'succeeded', r.record.error);
    assert.equal(lost.applied, 1);
    assert.equal((await jobsFor('lost-response')).length, 1);
    assert.match(r.log('lost-response'), /Adopted Job/);
  });

  it('a second run after a dropped connection adopts the running Job instead of creating another', async () => {
    proxy.clear();
    const text = specText(`  long-train:\n    command: echo begin; sleep 6; echo finished-in-pod\n`);
    const workspace = mkdtempSync(join(tmpdir(), 'mlp-k8s-ws-'));
    dirs.push(workspace);
    const first = run(text, { kubeconfig: proxiedConfig, workspace, executor: { apiDeadlineMs: 2000 } });
    await until('running pod', runningPod('long-train'));
    proxy.inject({ action: { type: 'reset' } }); // The network to the cluster is gone for run 1.
    const r1 = await first;
    assert.equal(r1.status, 'failed');
    assert.match(r1.record.steps['long-train'].error!, /kept failing/);
    const [job] = await jobsFor('long-train');
    assert.equal(job.metadata.annotations['mlpipeline.dev/run-id'], r1.runId);
    assert.ok(!job.status.succeeded, 'the Job is still running after run 1 gave up');

    const r2 = await run(text, { workspace });
    assert.equal(r2.status, 'succeeded', r2.record.error);
    assert.match(r2.log('long-train'), new RegExp(`created by run ${r1.runId}`));
    assert.match(r2.log('long-train'), /finished-in-pod/);
    const jobs = await jobsFor('long-train');
    assert.equal(jobs.length, 1, 'still exactly one Job');
    assert.equal(jobs[0].metadata.uid, job.metadata.uid);
  });
});

describe('reachability (the Compute Targets view)', { timeout: 60_000 }, () => {
  it('reports the version of a reachable cluster, and in words why another is not', async () => {
    const { checkReachability } = await import('../../client/src/runtime/kubernetes/reachability');
    const ok = await checkReachability({ kubeconfig: cluster.kubeconfig });
    assert.ok(ok.ok, JSON.stringify(ok));
    assert.match(ok.version, /^v1\.20\.2/);
    const noContext = await checkReachability({ kubeconfig: cluster.kubeconfig, context: 'no-such-context' });
    assert.ok(!noContext.ok && /no context `no-such-context`/.test(noContext.reason), JSON.stringify(noContext));
    // The same credentials against a port where nothing listens: a connection error, within the timeout.
    const dir = mkdtempSync(join(tmpdir(), 'mlp-reach-'));
    const closed = join(dir, 'kubeconfig');
    cluster.writeKubeconfig(closed, 'https://127.0.0.1:1');
    const t0 = Date.now();
    const down = await checkReachability({ kubeconfig: closed }, 3000);
    assert.ok(!down.ok && down.reason.length > 0, JSON.stringify(down));
    assert.ok(Date.now() - t0 < 10_000);
  });
});

describe('plan --target', { timeout: 300_000 }, () => {
  it('prints manifests that the apiserver accepts with kubectl apply --dry-run=server', async () => {
    const cli = join(ROOT, 'bin', 'mlpipeline.js');
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((res) =>
      execFile(process.execPath, [cli, 'plan', join(ROOT, 'samples/k8s-local/mlpipeline.yaml'), '--target', 'test-cluster', '--hpa-api', 'autoscaling/v2beta2'], (err, stdout, stderr) => res({ code: err ? 1 : 0, stdout, stderr })),
    );
    assert.equal(out.code, 0, out.stderr);
    const kinds = [...out.stdout.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]);
    assert.deepEqual(kinds, ['Job', 'Job', 'Deployment', 'Service', 'HorizontalPodAutoscaler']);
    let res = await cluster.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], out.stdout);
    // kubectl 1.20 takes --validate as a boolean (strict arrived in 1.25); true is its strict client-side schema check.
    if (res.code !== 0 && /validate/.test(res.stderr) && /strict/.test(res.stderr)) res = await cluster.kubectl(['apply', '--dry-run=server', '--validate=true', '-f', '-'], out.stdout);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /job\.batch\/mlp-k8s-local-train-[0-9a-f]{10}-1 created \(server dry run\)/);
    assert.match(res.stdout, /deployment\.apps\/churn-api created \(server dry run\)/);
    assert.match(res.stdout, /horizontalpodautoscaler\.autoscaling\/churn-api created \(server dry run\)/);
    // A field the server does not know is refused: the check is real.
    const bad = out.stdout.replace('backoffLimit: 0', 'backoffLimit: 0\n  noSuchField: 1');
    const refused = await cluster.kubectl(['apply', '--dry-run=server', '--validate=true', '-f', '-'], bad);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /noSuchField/);
  });
});

describe('deploy on Kubernetes', { timeout: 300_000 }, () => {
  it('deploys Deployment + Service + HPA, waits for the rollout, rolls back and undeploys', async () => {
    const { planDeployment } = await import('../../server/src/core/deploy-plan');
    const { KubernetesDeployTarget } = await import('../../client/src/runtime/kubernetes/deploy');
    const text = readFileSync(join(ROOT, 'samples/k8s-local/mlpipeline.yaml'), 'utf8');
    const analysis = analyzeSpec(text);
    const planned = planRun(analysis);
    assert.ok(planned.ok);
    const d = planDeployment(analysis, 'churn-api');
    assert.ok(d.ok, JSON.stringify(!d.ok && d.errors));
    const target = new KubernetesDeployTarget({ targetName: 'test-cluster', target: planned.plan.targets['test-cluster'].kubernetes!, kubeconfig: cluster.kubeconfig, readyTimeoutMs: 60_000 });
    const phases: string[] = [];
    const deployOnce = (revision: string, model: string) =>
      target.deploy({ deployment: d.deployment, model: { path: model, hash: 'h' }, revision, strategy: 'replace', workspace: ROOT, onEvent: (e) => e.type === 'phase' && phases.push(e.phase) });

    const r1 = await deployOnce('r1', 'models/v1.pkl');
    assert.equal(r1.status.phase, 'ready');
    assert.equal(r1.status.revisions[0].revision, 'r1');
    assert.ok(phases.includes('rolling-out') && phases.at(-1) === 'ready');
    const dep = await cluster.api('GET', `/apis/apps/v1/namespaces/${NS}/deployments/churn-api`);
    assert.equal(dep.body.status.availableReplicas, 1);
    assert.equal(dep.body.metadata.labels['app.kubernetes.io/component'], 'model-server');
    const hpa = await cluster.api('GET', `/apis/autoscaling/v2beta2/namespaces/${NS}/horizontalpodautoscalers/churn-api`);
    assert.equal(hpa.status, 200, 'the HPA uses autoscaling/v2beta2 on a 1.20 cluster');
    assert.equal(hpa.body.spec.maxReplicas, 3);
    // The real EndpointSlice controller found the ready pod behind the Service.
    const slices = await until('endpoint slice with the pod', async () => {
      const s = await cluster.api('GET', `/apis/discovery.k8s.io/v1beta1/namespaces/${NS}/endpointslices?labelSelector=${encodeURIComponent('kubernetes.io/service-name=churn-api')}`);
      return (s.body.items as Json[]).some((x) => (x.endpoints ?? []).length > 0) ? s.body.items : undefined;
    });
    assert.ok(slices.length >= 1);

    await deployOnce('r2', 'models/v2.pkl');
    const after2 = await cluster.api('GET', `/apis/apps/v1/namespaces/${NS}/deployments/churn-api`);
    assert.equal(after2.body.spec.template.metadata.annotations['mlpipeline.dev/model'], 'models/v2.pkl');

    const back = await target.rollback('churn-api', 'test: latency regression');
    assert.equal(back.revisions[0].revision, 'r1');
    assert.equal(back.revisions[0].model.path, 'models/v1.pkl');
    assert.equal(back.phase, 'ready');
    assert.deepEqual((await target.list()).map((s) => s.name), ['churn-api']);

    assert.equal(await target.undeploy('churn-api'), true);
    assert.equal((await cluster.api('GET', `/apis/apps/v1/namespaces/${NS}/deployments/churn-api`)).status, 404);
    assert.equal((await cluster.api('GET', `/api/v1/namespaces/${NS}/services/churn-api`)).status, 404);
    assert.equal((await cluster.api('GET', `/apis/autoscaling/v2beta2/namespaces/${NS}/horizontalpodautoscalers/churn-api`)).status, 404);
    assert.equal(await target.undeploy('churn-api'), false, 'undeploying twice says it was not deployed');
  });
});
