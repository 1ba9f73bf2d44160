/**
 * A real Kubernetes control plane for tests: etcd 3.4 (Debian), kube-apiserver and kube-controller-manager
 * 1.20.2 (built by test/infra/install-kube.sh) and the simulated GPU node (test/infra/sim-node), all on free
 * 127.0.0.1 ports, with a throwaway CA (openssl), a static token for a `system:masters` user and a kubeconfig
 * whose context `mlp-test` points at it. Everything is stopped by PID in `stop()`.
 *
 * MLP_KUBE_KEEP=1 leaves the cluster running after stop() and prints its kubeconfig, for debugging by hand.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest, Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from './net';

export { freePort }; // kept for callers that took it from here

const ROOT = resolve(__dirname, '..', '..');

export interface KubeClusterOptions {
  gpus?: number;
  gpuProduct?: string;
  /** Extra node labels (e.g. a spot capacity-type label). */
  labels?: Record<string, string>;
  /** Node taints; default: `nvidia.com/gpu=present:NoSchedule`, as GPU node pools usually have. */
  taints?: { key: string; value?: string; effect: string }[];
}

export interface KubeCluster {
  server: string;
  kubeconfig: string;
  context: string;
  token: string;
  caFile: string;
  dir: string;
  binDir: string;
  nodeName: string;
  gpuProduct: string;
  /** The apiserver's port: a fault proxy sits in front of it by rewriting `server`. */
  apiPort: number;
  /** Writes a kubeconfig pointing at another server URL (e.g. a fault proxy) with the same credentials. */
  writeKubeconfig(path: string, server: string, context?: string): void;
  api(method: string, path: string, body?: unknown, contentType?: string): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

/** Runs test/infra/install-kube.sh (a no-op when the binaries are cached) and returns the binary folder. */
export function ensureKubeBinaries(): string {
  if (process.env.MLP_KUBE_BIN_DIR) return process.env.MLP_KUBE_BIN_DIR; // Binaries built elsewhere.
  const out = execFileSync('bash', [join(ROOT, 'test/infra/install-kube.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 30 * 60_000 });
  return out.trim().split('\n').pop()!;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makePki(dir: string): void {
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3', '-subj', '/CN=mlpipeline-test-ca']);
  const sign = (name: string, cn: string, san: string): void => {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '3', '-extfile', `${name}.ext`]);
  };
  sign('apiserver', 'kube-apiserver', 'IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc');
  sign('kubelet', 'sim-node', 'IP:127.0.0.1,DNS:localhost');
  openssl(dir, ['genrsa', '-out', 'sa.key', '2048']);
  openssl(dir, ['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

function kubeconfigText(server: string, caFile: string, token: string, context: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${context}`,
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority: ${caFile}`,
    'users:',
    `- name: ${context}-admin`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    `- name: ${context}`,
    '  context:',
    `    cluster: ${context}`,
    `    user: ${context}-admin`,
    '    namespace: default',
    `current-context: ${context}`,
    '',
  ].join('\n');
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, logs: string[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) {
      const tails = logs.map((f) => `--- ${f}\n${safeTail(f)}`).join('\n');
      throw new Error(`${what} not ready after ${timeoutMs} ms.\n${tails}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function safeTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-25).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function startKubeCluster(options: KubeClusterOptions = {}): Promise<KubeCluster> {
  const binDir = ensureKubeBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'mlp-kube-'));
  mkdirSync(join(dir, 'etcd'));
  makePki(dir);
  const token = randomBytes(16).toString('hex');
  writeFileSync(join(dir, 'tokens.csv'), `${token},mlp-admin,mlp-admin-uid,"system:masters"\n`);
  const [etcdPort, etcdPeer, apiPort, kubeletPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const server = `https://127.0.0.1:${apiPort}`;
  const caFile = join(dir, 'ca.crt');
  const context = 'mlp-test';
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigText(server, caFile, token, context));

  const procs: ChildProcess[] = [];
  const logs: string[] = [];
  const start = (name: string, cmd: string, args: string[], cwd = dir): ChildProcess => {
    const logFile = join(dir, `${name}.log`);
    logs.push(logFile);
    const fd = openSync(logFile, 'a');
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], cwd });
    // A missing binary must fail the readiness wait with the log, not crash the test process.
    child.on('error', (e) => writeFileSync(logFile, `cannot start ${cmd}: ${e.message}\n`, { flag: 'a' }));
    procs.push(child);
    closeSync(fd); // The child has its own copy.
    return child;
  };
  const stopAll = (): void => {
    for (const p of procs.reverse()) if (p.pid && p.exitCode === null) process.kill(p.pid, 'SIGKILL');
  };
  const onExit = (): void => stopAll();
  process.on('exit', onExit);
  // A test run killed with SIGTERM/SIGINT does not run 'exit' handlers by itself: stop the servers first.
  const onSignal = (sig: NodeJS.Signals): void => {
    stopAll();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);

  try {
    start('etcd', 'etcd', [
      '--data-dir', join(dir, 'etcd'),
      '--listen-client-urls', `http://127.0.0.1:${etcdPort}`,
      '--advertise-client-urls', `http://127.0.0.1:${etcdPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${etcdPeer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeer}`,
      '--initial-cluster', `default=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync', // Throwaway data: fsync only slows the shared disk down.
    ]);
    start('kube-apiserver', join(binDir, 'kube-apiserver'), [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      '--insecure-port=0',
      `--cert-dir=${dir}`,
      `--tls-cert-file=${join(dir, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
      `--client-ca-file=${caFile}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      '--service-cluster-ip-range=10.96.0.0/16',
      // Core/v1 Endpoints reject loopback addresses, so the apiserver must not publish its own.
      '--endpoint-reconciler-type=none',
      '--kubelet-preferred-address-types=InternalIP',
      '--feature-gates=TTLAfterFinished=true',
      '--allow-privileged=true',
      '--v=1',
    ]);
    const agent = new Agent({ ca: readFileSync(caFile) });
    const api: KubeCluster['api'] = (method, path, body, contentType = 'application/json') =>
      new Promise((res, rej) => {
        const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
        const req = httpsRequest(new URL(path, server), { method, agent, headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(data ? { 'content-type': contentType } : {}) } }, (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // plain text (healthz, logs)
            }
            res({ status: r.statusCode ?? 0, body: parsed });
          });
        });
        req.on('error', rej);
        req.end(data);
      });
    await waitFor('kube-apiserver', async () => (await api('GET', '/readyz')).status === 200, 90_000, logs);

    start('kube-controller-manager', join(binDir, 'kube-controller-manager'), [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      '--port=0',
      '--secure-port=0',
      `--service-account-private-key-file=${join(dir, 'sa.key')}`,
      `--root-ca-file=${caFile}`,
      '--use-service-account-credentials=false',
      '--controllers=*,-nodeipam,-cloud-node-lifecycle,-route,-service,-persistentvolume-binder,-attachdetach,-csrsigning,-csrapproving,-bootstrapsigner,-tokencleaner',
      '--feature-gates=TTLAfterFinished=true',
      '--concurrent-gc-syncs=5',
      '--v=1',
    ]);
    // The service-account controller creating `default` proves the controllers run.
    await waitFor('kube-controller-manager', async () => (await api('GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200, 90_000, logs);

    const nodeName = 'sim-gpu-node';
    const gpuProduct = options.gpuProduct ?? 'NVIDIA-A100-SXM4-80GB';
    const simConfig = join(dir, 'sim-node.json');
    writeFileSync(
      simConfig,
      JSON.stringify({
        server,
        token,
        caFile,
        nodeName,
        kubeletPort,
        tlsCertFile: join(dir, 'kubelet.crt'),
        tlsKeyFile: join(dir, 'kubelet.key'),
        gpus: options.gpus ?? 2,
        cpu: '8',
        memory: '32Gi',
        labels: { 'nvidia.com/gpu.product': gpuProduct, 'nvidia.com/gpu.count': String(options.gpus ?? 2), ...options.labels },
        taints: options.taints ?? [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }],
      }),
    );
    start('sim-node', process.execPath, ['--import', 'tsx', join(ROOT, 'test/infra/sim-node/sim-node.ts'), '--config', simConfig], ROOT); // tsx resolves from the repo.
    await waitFor(
      'sim-node',
      async () => {
        const n = await api('GET', `/api/v1/nodes/${nodeName}`);
        return n.status === 200 && (n.body.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True');
      },
      30_000,
      logs,
    );

    const cluster: KubeCluster = {
      server,
      kubeconfig,
      context,
      token,
      caFile,
      dir,
      binDir,
      nodeName,
      gpuProduct,
      apiPort,
      writeKubeconfig: (path, srv, ctx = context) => writeFileSync(path, kubeconfigText(srv, caFile, token, ctx)),
      api,
      kubectl: (a, input) =>
        new Promise((res) => {
          const child = execFile(join(binDir, 'kubectl'), [`--kubeconfig=${kubeconfig}`, ...a], { timeout: 60_000 }, (err, stdout, stderr) => {
            res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
          });
          if (input !== undefined) child.stdin!.end(input);
        }),
      stop: async () => {
        process.off('exit', onExit);
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        if (process.env.MLP_KUBE_KEEP === '1') {
          console.error(`MLP_KUBE_KEEP=1: cluster left running; KUBECONFIG=${kubeconfig} (pids ${procs.map((p) => p.pid).join(' ')})`);
          return;
        }
        for (const p of [...procs].reverse()) {
          if (!p.pid || p.exitCode !== null) continue;
          const exited = new Promise((r) => p.once('exit', r));
          process.kill(p.pid, 'SIGTERM');
          const t = setTimeout(() => p.exitCode === null && process.kill(p.pid!, 'SIGKILL'), 5000);
          await exited;
          clearTimeout(t);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return cluster;
  } catch (e) {
    stopAll();
    process.off('exit', onExit);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    throw e;
  }
}
