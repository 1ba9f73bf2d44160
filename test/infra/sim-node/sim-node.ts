/**
 * A simulated Kubernetes node (kwok-style) for tests against a real kube-apiserver that has no kubelet and
 * no scheduler. Run: `node --import tsx test/infra/sim-node/sim-node.ts --config <file.json>` (see SimNodeConfig).
 * What it does, every `pollMs`:
 *  - registers one Node (labels, taints, capacity incl. `nvidia.com/gpu`) and keeps its Ready heartbeat fresh;
 *  - schedules: binds each unbound pod that fits (nodeSelector, required node affinity, NoSchedule/NoExecute
 *    taints vs tolerations, free GPUs and CPU), or writes a `FailedScheduling` Event worded like the real
 *    scheduler's ("0/1 nodes are available: 1 Insufficient nvidia.com/gpu.") and sets PodScheduled=False;
 *  - runs bound pods. Convention (documented in README.md): a container whose pod has `restartPolicy` Never or
 *    OnFailure (Job pods) runs its `command` + `args` as a local process in a fresh temp dir, with the pod's env
 *    (`value`, `secretKeyRef` and `configMapKeyRef` read from the apiserver like a kubelet, `fieldRef` for
 *    metadata.name/namespace/uid). Its exit code decides Succeeded/Failed. Pods with restartPolicy Always
 *    (Deployments) are marked Running and Ready without running anything, unless annotated
 *    `sim.mlpipeline.dev/run: "true"`;
 *  - serves `/containerLogs/<ns>/<pod>/<container>[?follow=true]` over HTTPS, where the apiserver proxies
 *    `pods/log`, so clients stream logs through the real apiserver;
 *  - finishes graceful deletion: SIGTERM to the process group, SIGKILL after the grace period, then deletes
 *    the pod with gracePeriodSeconds=0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request as httpsRequest, type Agent } from 'node:https';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SimNodeConfig {
  server: string; // https://127.0.0.1:PORT
  token: string;
  caFile: string;
  nodeName: string;
  /** Kubelet port for containerLogs (HTTPS). */
  kubeletPort: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  gpus: number;
  cpu: string;
  memory: string;
  labels: Record<string, string>;
  taints: { key: string; value?: string; effect: string }[];
  pollMs?: number;
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const args = process.argv.slice(2);
const configPath = args[args.indexOf('--config') + 1];
const cfg = JSON.parse(readFileSync(configPath, 'utf8')) as SimNodeConfig;
const agent: Agent = new HttpsAgent({ ca: readFileSync(cfg.caFile), keepAlive: true, maxSockets: 8 });
const log = (msg: string): void => void process.stderr.write(`[sim-node] ${new Date().toISOString()} ${msg}\n`);

function api(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, cfg.server);
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = httpsRequest(url, { method, agent, headers: { authorization: `Bearer ${cfg.token}`, accept: 'application/json', ...(data ? { 'content-type': contentType, 'content-length': data.length } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Json = {};
        try {
          parsed = text ? JSON.parse(text) : {};
        } catch {
          parsed = { raw: text };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.end(data);
  });
}

// ---- containers ---------------------------------------------------------------------------------------------

interface Running {
  uid: string;
  ns: string;
  pod: string;
  container: string;
  child?: ChildProcess;
  dir?: string;
  log: Buffer[];
  done: boolean;
  exitCode?: number;
  waiters: Set<() => void>;
  startedAt: string;
  finishedAt?: string;
  killTimer?: NodeJS.Timeout;
}
const running = new Map<string, Running>(); // by pod uid
const byName = (ns: string, pod: string): Running | undefined => [...running.values()].reverse().find((r) => r.ns === ns && r.pod === pod);
let ipCounter = 10;

async function resolveEnv(pod: Json, container: Json): Promise<Record<string, string> | string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp', HOSTNAME: pod.metadata.name };
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.secretKeyRef || e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.secretKeyRef ?? e.valueFrom.configMapKeyRef;
      const kind = e.valueFrom.secretKeyRef ? 'secrets' : 'configmaps';
      const res = await api('GET', `/api/v1/namespaces/${pod.metadata.namespace}/${kind}/${ref.name}`);
      const raw = res.status === 200 ? res.body.data?.[ref.key] : undefined;
      if (raw === undefined) {
        if (ref.optional) continue;
        // Like the kubelet: the container cannot be created (CreateContainerConfigError).
        return res.status === 200 ? `couldn't find key ${ref.key} in ${kind === 'secrets' ? 'Secret' : 'ConfigMap'} ${pod.metadata.namespace}/${ref.name}` : `${kind === 'secrets' ? 'secret' : 'configmap'} "${ref.name}" not found`;
      }
      env[e.name] = kind === 'secrets' ? Buffer.from(raw, 'base64').toString('utf8') : raw;
    } else if (e.valueFrom?.fieldRef) {
      const p = e.valueFrom.fieldRef.fieldPath as string;
      env[e.name] = p === 'metadata.name' ? pod.metadata.name : p === 'metadata.namespace' ? pod.metadata.namespace : p === 'metadata.uid' ? pod.metadata.uid : p === 'spec.nodeName' ? cfg.nodeName : '';
    }
  }
  return env;
}

async function putStatus(pod: Json, status: Json): Promise<void> {
  const res = await api('PATCH', `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/status`, { status }, 'application/merge-patch+json');
  if (res.status >= 300 && res.status !== 404) log(`status of ${pod.metadata.name}: HTTP ${res.status} ${res.body.message ?? ''}`);
}

async function startPod(pod: Json): Promise<void> {
  const uid = pod.metadata.uid as string;
  const container = pod.spec.containers[0];
  const r: Running = { uid, ns: pod.metadata.namespace, pod: pod.metadata.name, container: container.name, log: [], done: false, waiters: new Set(), startedAt: new Date().toISOString() };
  running.set(uid, r);
  const podIP = `10.244.0.${ipCounter++ % 250}`;
  const runs = pod.spec.restartPolicy !== 'Always' || pod.metadata.annotations?.['sim.mlpipeline.dev/run'] === 'true';
  const env = await resolveEnv(pod, container);
  if (typeof env === 'string') {
    r.done = true;
    await putStatus(pod, { phase: 'Pending', hostIP: '127.0.0.1', containerStatuses: [{ name: container.name, image: container.image, imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'CreateContainerConfigError', message: env } } }] });
    running.delete(uid); // Retried on a later poll, like the kubelet does.
    return;
  }
  const runningStatus = (): Json => ({
    phase: 'Running',
    hostIP: '127.0.0.1',
    podIP,
    podIPs: [{ ip: podIP }],
    startTime: r.startedAt,
    conditions: [
      { type: 'Initialized', status: 'True', lastTransitionTime: r.startedAt },
      { type: 'Ready', status: 'True', lastTransitionTime: r.startedAt },
      { type: 'ContainersReady', status: 'True', lastTransitionTime: r.startedAt },
      { type: 'PodScheduled', status: 'True', lastTransitionTime: r.startedAt },
    ],
    containerStatuses: [{ name: container.name, image: container.image, imageID: `sim://${container.image}`, containerID: `sim://${uid}`, ready: true, started: true, restartCount: 0, state: { running: { startedAt: r.startedAt } } }],
  });
  if (!runs) {
    await putStatus(pod, runningStatus());
    return;
  }
  const argv = [...(container.command ?? []), ...(container.args ?? [])];
  if (argv.length === 0) argv.push('/bin/true'); // An image's default entrypoint: nothing to simulate.
  r.dir = mkdtempSync(join(tmpdir(), 'sim-pod-'));
  const child = spawn(argv[0], argv.slice(1), { cwd: r.dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  r.child = child;
  const onData = (d: Buffer): void => {
    r.log.push(d);
    for (const w of r.waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  child.on('error', (e) => onData(Buffer.from(`sim-node: cannot start ${argv[0]}: ${e.message}\n`)));
  child.on('close', (code, signal) => {
    r.done = true;
    r.exitCode = code ?? (signal ? 128 + (signal === 'SIGKILL' ? 9 : 15) : 1);
    r.finishedAt = new Date().toISOString();
    if (r.killTimer) clearTimeout(r.killTimer);
    for (const w of r.waiters) w();
    if (r.dir) rmSync(r.dir, { recursive: true, force: true });
    const ok = r.exitCode === 0;
    void putStatus(pod, {
      phase: ok ? 'Succeeded' : 'Failed',
      hostIP: '127.0.0.1',
      podIP,
      podIPs: [{ ip: podIP }],
      startTime: r.startedAt,
      conditions: [
        { type: 'Ready', status: 'False', reason: 'PodCompleted', lastTransitionTime: r.finishedAt },
        { type: 'ContainersReady', status: 'False', reason: 'PodCompleted', lastTransitionTime: r.finishedAt },
        { type: 'PodScheduled', status: 'True', lastTransitionTime: r.startedAt },
      ],
      containerStatuses: [{ name: container.name, image: container.image, imageID: `sim://${container.image}`, containerID: `sim://${uid}`, ready: false, started: false, restartCount: 0, state: { terminated: { exitCode: r.exitCode, reason: ok ? 'Completed' : 'Error', startedAt: r.startedAt, finishedAt: r.finishedAt, containerID: `sim://${uid}` } } }],
    });
  });
  await putStatus(pod, runningStatus());
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // gone
  }
}

async function finishDeletion(pod: Json): Promise<void> {
  const r = running.get(pod.metadata.uid);
  if (r?.child && !r.done) {
    if (!r.killTimer) {
      killGroup(r.child.pid, 'SIGTERM');
      const grace = Math.min(Number(pod.metadata.deletionGracePeriodSeconds ?? 30), 30) * 1000;
      r.killTimer = setTimeout(() => killGroup(r.child?.pid, 'SIGKILL'), grace);
    }
    return; // Deleted for real once the process is gone (next poll).
  }
  const res = await api('DELETE', `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`, { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: pod.metadata.uid } });
  if (res.status < 300 || res.status === 404 || res.status === 409) running.delete(pod.metadata.uid);
}

// ---- scheduling ---------------------------------------------------------------------------------------------

function quantity(q: unknown): number {
  if (q === undefined || q === null) return 0;
  const m = /^([0-9.]+)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/.exec(String(q));
  if (!m) return 0;
  const unit: Record<string, number> = { '': 1, m: 0.001, k: 1e3, Ki: 1024, M: 1e6, Mi: 1024 ** 2, G: 1e9, Gi: 1024 ** 3, T: 1e12, Ti: 1024 ** 4 };
  return Number(m[1]) * unit[m[2] ?? ''];
}
const requestOf = (pod: Json, res: string): number => (pod.spec.containers as Json[]).reduce((sum, c) => sum + quantity(c.resources?.requests?.[res] ?? c.resources?.limits?.[res]), 0);

function tolerates(pod: Json, taint: Json): boolean {
  return (pod.spec.tolerations ?? []).some((t: Json) => {
    if (t.effect && t.effect !== taint.effect) return false;
    if (t.operator === 'Exists') return !t.key || t.key === taint.key;
    return t.key === taint.key && (t.value ?? '') === (taint.value ?? '');
  });
}

function matchesExpression(labels: Record<string, string>, e: Json): boolean {
  const v = labels[e.key];
  switch (e.operator) {
    case 'In':
      return v !== undefined && (e.values ?? []).includes(v);
    case 'NotIn':
      return v === undefined || !(e.values ?? []).includes(v);
    case 'Exists':
      return v !== undefined;
    case 'DoesNotExist':
      return v === undefined;
    case 'Gt':
      return v !== undefined && Number(v) > Number(e.values?.[0]);
    case 'Lt':
      return v !== undefined && Number(v) < Number(e.values?.[0]);
    default:
      return false;
  }
}

/** The reason the node does not fit, in the scheduler's words, or undefined when it fits. */
function misfit(pod: Json, node: Json, used: { gpu: number; cpu: number }): string | undefined {
  const labels: Record<string, string> = node.metadata.labels ?? {};
  for (const [k, v] of Object.entries(pod.spec.nodeSelector ?? {})) if (labels[k] !== v) return "node(s) didn't match node selector";
  const terms: Json[] | undefined = pod.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (terms?.length && !terms.some((t) => (t.matchExpressions ?? []).every((e: Json) => matchesExpression(labels, e)))) return "node(s) didn't match node selector";
  for (const taint of node.spec.taints ?? []) {
    if ((taint.effect === 'NoSchedule' || taint.effect === 'NoExecute') && !tolerates(pod, taint)) return `node(s) had taint {${taint.key}: ${taint.value ?? ''}}, that the pod didn't tolerate`;
  }
  const gpu = requestOf(pod, 'nvidia.com/gpu');
  if (gpu > 0 && gpu > quantity(node.status.allocatable['nvidia.com/gpu']) - used.gpu) return 'Insufficient nvidia.com/gpu';
  const cpu = requestOf(pod, 'cpu');
  if (cpu > 0 && cpu > quantity(node.status.allocatable.cpu) - used.cpu) return 'Insufficient cpu';
  return undefined;
}

const lastEvent = new Map<string, { at: number; name: string; count: number; message: string }>();

async function reportUnschedulable(pod: Json, reason: string): Promise<void> {
  const message = `0/1 nodes are available: 1 ${reason}.`;
  const prev = lastEvent.get(pod.metadata.uid);
  if (prev && prev.message === message && Date.now() - prev.at < 5000) return;
  const now = new Date().toISOString();
  if (prev && prev.message === message) {
    prev.count++;
    prev.at = Date.now();
    await api('PATCH', `/api/v1/namespaces/${pod.metadata.namespace}/events/${prev.name}`, { count: prev.count, lastTimestamp: now }, 'application/merge-patch+json');
    return;
  }
  const name = `${pod.metadata.name}.${Date.now().toString(16)}`;
  await api('POST', `/api/v1/namespaces/${pod.metadata.namespace}/events`, {
    metadata: { name, namespace: pod.metadata.namespace },
    involvedObject: { kind: 'Pod', namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid, apiVersion: 'v1', resourceVersion: pod.metadata.resourceVersion },
    reason: 'FailedScheduling',
    message,
    type: 'Warning',
    source: { component: 'default-scheduler' },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
    reportingComponent: 'default-scheduler',
    reportingInstance: 'sim-node',
  });
  lastEvent.set(pod.metadata.uid, { at: Date.now(), name, count: 1, message });
  await putStatus(pod, { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastProbeTime: null, lastTransitionTime: now }] });
}

// ---- node ---------------------------------------------------------------------------------------------------

function nodeStatus(): Json {
  const now = new Date().toISOString();
  const res = { cpu: cfg.cpu, memory: cfg.memory, pods: '110', 'ephemeral-storage': '100Gi', 'nvidia.com/gpu': String(cfg.gpus) };
  return {
    capacity: res,
    allocatable: res,
    addresses: [
      { type: 'InternalIP', address: '127.0.0.1' },
      { type: 'Hostname', address: cfg.nodeName },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: cfg.kubeletPort } },
    nodeInfo: { machineID: 'sim', systemUUID: 'sim', bootID: 'sim', kernelVersion: 'sim', osImage: 'sim-node', containerRuntimeVersion: 'sim://1', kubeletVersion: 'v1.20.2', kubeProxyVersion: 'v1.20.2', operatingSystem: 'linux', architecture: 'amd64' },
    conditions: [
      { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'sim-node is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now },
      { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', message: 'ok', lastHeartbeatTime: now, lastTransitionTime: now },
      { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'ok', lastHeartbeatTime: now, lastTransitionTime: now },
      { type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID', message: 'ok', lastHeartbeatTime: now, lastTransitionTime: now },
    ],
  };
}

async function registerNode(): Promise<void> {
  const labels = { 'kubernetes.io/hostname': cfg.nodeName, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', ...cfg.labels };
  const created = await api('POST', '/api/v1/nodes', { metadata: { name: cfg.nodeName, labels }, spec: { taints: cfg.taints } });
  if (created.status >= 300 && created.status !== 409) throw new Error(`cannot register node: HTTP ${created.status} ${created.body.message ?? ''}`);
  await heartbeat();
}

async function heartbeat(): Promise<void> {
  const res = await api('PATCH', `/api/v1/nodes/${cfg.nodeName}/status`, { status: nodeStatus() }, 'application/strategic-merge-patch+json');
  if (res.status >= 300) log(`heartbeat: HTTP ${res.status} ${res.body.message ?? ''}`);
}

// ---- the loop -----------------------------------------------------------------------------------------------

let busy = false;
async function tick(): Promise<void> {
  if (busy) return;
  busy = true;
  try {
    const [podsRes, nodeRes] = await Promise.all([api('GET', '/api/v1/pods'), api('GET', `/api/v1/nodes/${cfg.nodeName}`)]);
    if (podsRes.status !== 200 || nodeRes.status !== 200) return;
    const node = nodeRes.body;
    const pods: Json[] = podsRes.body.items ?? [];
    const active = (p: Json): boolean => p.spec.nodeName === cfg.nodeName && p.status.phase !== 'Succeeded' && p.status.phase !== 'Failed';
    const used = { gpu: 0, cpu: 0 };
    for (const p of pods.filter(active)) {
      used.gpu += requestOf(p, 'nvidia.com/gpu');
      used.cpu += requestOf(p, 'cpu');
    }
    for (const pod of pods) {
      if (pod.metadata.deletionTimestamp) {
        if (pod.spec.nodeName === cfg.nodeName || !pod.spec.nodeName) await finishDeletion(pod);
        continue;
      }
      if (!pod.spec.nodeName) {
        const why = misfit(pod, node, used);
        if (why) await reportUnschedulable(pod, why);
        else {
          const res = await api('POST', `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/binding`, { apiVersion: 'v1', kind: 'Binding', metadata: { name: pod.metadata.name, uid: pod.metadata.uid }, target: { apiVersion: 'v1', kind: 'Node', name: cfg.nodeName } });
          if (res.status < 300) {
            used.gpu += requestOf(pod, 'nvidia.com/gpu');
            used.cpu += requestOf(pod, 'cpu');
            await api('POST', `/api/v1/namespaces/${pod.metadata.namespace}/events`, {
              metadata: { generateName: `${pod.metadata.name}.`, namespace: pod.metadata.namespace },
              involvedObject: { kind: 'Pod', namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid, apiVersion: 'v1' },
              reason: 'Scheduled',
              message: `Successfully assigned ${pod.metadata.namespace}/${pod.metadata.name} to ${cfg.nodeName}`,
              type: 'Normal',
              source: { component: 'default-scheduler' },
              firstTimestamp: new Date().toISOString(),
              lastTimestamp: new Date().toISOString(),
              count: 1,
            });
          }
        }
        continue;
      }
      if (pod.spec.nodeName === cfg.nodeName && pod.status.phase === 'Pending' && !running.has(pod.metadata.uid)) await startPod(pod);
    }
    // Forget pods that are gone from the server.
    const live = new Set(pods.map((p) => p.metadata.uid));
    for (const [uid, r] of running) {
      if (!live.has(uid) && r.done) running.delete(uid);
      if (!live.has(uid) && !r.done) killGroup(r.child?.pid, 'SIGKILL');
    }
  } catch (e) {
    log(`tick: ${(e as Error).message}`);
  } finally {
    busy = false;
  }
}

// ---- the kubelet's log endpoint ------------------------------------------------------------------------------

const server = createServer({ cert: readFileSync(cfg.tlsCertFile), key: readFileSync(cfg.tlsKeyFile) }, (req, res) => {
  const url = new URL(req.url ?? '/', 'https://sim');
  const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
  if (req.method !== 'GET' || !m) {
    res.writeHead(404).end('not found: the sim node serves only /containerLogs\n');
    return;
  }
  const [ns, pod] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
  const r = byName(ns, pod);
  if (!r) {
    res.writeHead(404).end(`container not found in pod ${ns}/${pod}\n`);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  let sent = 0;
  const tail = url.searchParams.get('tailLines');
  if (tail !== null) {
    const lines = Buffer.concat(r.log).toString('utf8').split(/(?<=\n)/);
    res.write(lines.slice(-Number(tail)).join(''));
    sent = r.log.length;
  }
  const flush = (): void => {
    while (sent < r.log.length) res.write(r.log[sent++]);
  };
  flush();
  if (url.searchParams.get('follow') !== 'true' || r.done || !r.child) {
    res.end();
    return;
  }
  const waiter = (): void => {
    flush();
    if (r.done) {
      r.waiters.delete(waiter);
      res.end();
    }
  };
  r.waiters.add(waiter);
  req.on('close', () => r.waiters.delete(waiter));
});

async function main(): Promise<void> {
  await new Promise<void>((resolve) => server.listen(cfg.kubeletPort, '127.0.0.1', resolve));
  await registerNode();
  log(`node ${cfg.nodeName} registered (${cfg.gpus} GPUs, kubelet on 127.0.0.1:${cfg.kubeletPort})`);
  setInterval(() => void heartbeat().catch((e: Error) => log(`heartbeat: ${e.message}`)), 10_000).unref();
  const loop = async (): Promise<void> => {
    await tick();
    setTimeout(() => void loop(), cfg.pollMs ?? 200);
  };
  void loop();
}

const shutdown = (): void => {
  for (const r of running.values()) killGroup(r.child?.pid, 'SIGKILL');
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
main().catch((e: Error) => {
  log(`fatal: ${e.message}`);
  process.exit(1);
});
