/**
 * The local deployment supervisor: one detached process per deployment (`mlpipeline __supervise DIR`),
 * so a deployment outlives the CLI that started it. It owns the model server processes (each in its own
 * process group), polls readiness, restarts a crashed server with exponential backoff, appends their
 * output to a log per revision, runs the weighted proxy for canaries, and answers a small control API on
 * 127.0.0.1 (bearer token in state.json, readable by the owner only). State goes to state.json after
 * every change, so `undeploy` can stop everything even if this process was killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import type { ResolvedDeployment } from '../../../../server/src/core/deploy-plan';
import type { ModelArtifact } from './deploy-target';
import { writeFileAtomic } from '../atomic-file';
import { deploymentDir, prometheusTargetsDir, writeState, type LocalDeploymentState, type LocalRevisionState } from './local-state';
import { WeightedProxy } from './proxy';

export interface StartRevisionBody {
  deployment: ResolvedDeployment;
  model: ModelArtifact;
  sourceRunId?: string;
  revision: string;
  strategy: 'replace' | 'canary';
  /** Secret values for the server's environment: held in memory only, masked in logs. */
  secrets?: Record<string, string>;
}

const READY_TIMEOUT_MS = Number(process.env.MLPIPELINE_READY_TIMEOUT_MS ?? 60_000);
const BACKOFF_BASE_MS = Number(process.env.MLPIPELINE_RESTART_BACKOFF_MS ?? 1000);
const BACKOFF_MAX_MS = 30_000;
/** A server that stayed up this long counts as healthy again: the next crash restarts after the base delay. */
const HEALTHY_RESET_MS = 60_000;
const STOP_GRACE_MS = 5000;

interface Running {
  state: LocalRevisionState;
  child?: ChildProcess;
  secrets: Record<string, string>;
  stopping: boolean;
  restartTimer?: NodeJS.Timeout;
  healthySince?: number;
  consecutiveCrashes: number;
}

export async function superviseMain(workspace: string, name: string, publicPort: number, mode: 'direct' | 'proxy'): Promise<void> {
  const dir = deploymentDir(workspace, name);
  mkdirSync(join(dir, 'logs'), { recursive: true });
  mkdirSync(join(dir, 'inputs'), { recursive: true });
  // One folder of file_sd files for all deployments: Prometheus globs only the last path component.
  const promDir = prometheusTargetsDir(workspace);
  mkdirSync(promDir, { recursive: true });
  const token = randomBytes(24).toString('hex');
  const running = new Map<string, Running>();
  const proxy = mode === 'proxy' ? new WeightedProxy() : undefined;
  const state: LocalDeploymentState = {
    schema: 1,
    name,
    workspace,
    supervisorPid: process.pid,
    controlPort: 0,
    token,
    publicPort,
    mode,
    url: `http://127.0.0.1:${publicPort}`,
    phase: 'starting',
    revisions: [],
    history: [],
    updatedAt: new Date().toISOString(),
  };
  const say = (message: string): void => {
    state.lastEvent = { at: new Date().toISOString(), message };
    process.stdout.write(`${state.lastEvent.at} ${message}\n`);
  };
  let saving = Promise.resolve();
  const save = (): Promise<void> => {
    state.revisions = [...running.values()].map((r) => r.state);
    const live = state.revisions;
    state.phase = live.length === 0 ? 'stopped' : live.some((r) => r.phase === 'failed' || r.phase === 'degraded') ? 'degraded' : live.length > 1 ? 'rolling-out' : live[0].phase;
    proxy?.setBackends(live.filter((r) => r.phase === 'ready' || r.phase === 'degraded').map((r) => ({ id: r.revision, port: r.port, weight: r.weight })));
    // Prometheus file_sd targets, one group per live revision (docs/serving.md has the scrape config).
    const targets = live
      .filter((r) => r.phase !== 'stopped')
      .map((r) => ({ targets: [`127.0.0.1:${r.port}`], labels: { deployment: name, revision: r.revision, __metrics_path__: r.deployment.runtime.metrics } }));
    saving = saving
      .then(() => writeState(workspace, state))
      .then(() => writeFileAtomic(join(promDir, `${name}.json`), JSON.stringify(targets, null, 2) + '\n', { fsync: false }))
      .catch((e) => say(`cannot write state: ${(e as Error).message}`));
    return saving;
  };

  const mask = (text: string, secrets: Record<string, string>): string => {
    let out = text;
    for (const v of Object.values(secrets)) if (v.length >= 3) out = out.split(v).join('***');
    return out;
  };

  const startProcess = (r: Running): void => {
    const d = r.state.deployment;
    // PORT: where to listen. MLPIPELINE_INPUT_LOG: where a server may log its inputs for drift monitors.
    const env = { ...process.env, ...d.runtime.env, ...r.secrets, PORT: String(r.state.port), MLPIPELINE_INPUT_LOG: join(dir, 'inputs', `${r.state.revision}.jsonl`), MLPIPELINE_DEPLOYMENT: name, MLPIPELINE_REVISION: r.state.revision };
    const child = spawn('/bin/sh', ['-c', r.state.command], { cwd: workspace, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    r.child = child;
    r.state.pgid = child.pid;
    const log = (chunk: Buffer): void => {
      try {
        appendFileSync(r.state.log, mask(chunk.toString('utf8'), r.secrets));
      } catch {
        // A full disk must not stop the server; its output is then lost, not the service.
      }
    };
    child.stdout!.on('data', log);
    child.stderr!.on('data', log);
    child.on('error', (e) => log(Buffer.from(`[supervisor] cannot start: ${e.message}\n`)));
    child.on('exit', (code, signal) => {
      if (child.pid) killGroup(child.pid, 'SIGKILL'); // Whatever the shell left behind in its group.
      if (r.child !== child) return;
      r.child = undefined;
      r.state.pgid = undefined;
      if (r.stopping) return;
      const why = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      r.state.lastError = `the server ${why}`;
      if (r.state.phase === 'starting') return; // waitReady reports it.
      // Crashed after being ready: restart with backoff.
      if (r.healthySince && Date.now() - r.healthySince > HEALTHY_RESET_MS) r.consecutiveCrashes = 0;
      r.consecutiveCrashes++;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (r.consecutiveCrashes - 1));
      r.state.phase = 'degraded';
      appendFileSync(r.state.log, `[supervisor] server ${why}; restart ${r.state.restarts + 1} in ${delay} ms\n`);
      say(`${name}/${r.state.revision}: the server ${why}; restarting in ${(delay / 1000).toFixed(1)} s (restart ${r.state.restarts + 1})`);
      void save();
      r.restartTimer = setTimeout(() => {
        r.restartTimer = undefined;
        if (r.stopping) return;
        r.state.restarts++;
        startProcess(r);
        void waitReady(r, READY_TIMEOUT_MS).then((ok) => {
          if (r.stopping) return;
          if (ok) {
            r.state.phase = 'ready';
            r.healthySince = Date.now();
            say(`${name}/${r.state.revision}: ready again after restart ${r.state.restarts}`);
          }
          void save();
        });
      }, delay);
    });
  };

  const waitReady = async (r: Running, timeoutMs: number): Promise<boolean> => {
    const url = `http://127.0.0.1:${r.state.port}${r.state.deployment.runtime.readiness}`;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !r.stopping) {
      if (!r.child) return false;
      if (await probe(url)) return true;
      await sleep(150);
    }
    return false;
  };

  const stopRevision = async (r: Running): Promise<void> => {
    r.stopping = true;
    if (r.restartTimer) clearTimeout(r.restartTimer);
    const child = r.child;
    if (child?.pid) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      killGroup(child.pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child.pid!, 'SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    r.state.phase = 'stopped';
    running.delete(r.state.revision);
  };

  const startRevision = async (body: StartRevisionBody): Promise<{ ok: true } | { ok: false; error: string; status: number }> => {
    if (running.has(body.revision)) return { ok: false, status: 409, error: `revision ${body.revision} is already running` };
    if (body.strategy === 'canary' && mode !== 'proxy') return { ok: false, status: 400, error: 'this deployment was started without the canary proxy (its rollout was not `strategy: canary` then); undeploy it and deploy again to roll out canaries' };
    const stable = [...running.values()];
    if (body.strategy === 'canary' && stable.length !== 1) return { ok: false, status: 409, error: stable.length ? 'a canary is already rolling out; promote or roll it back first' : 'there is no stable revision to compare a canary with; deploy without a canary first' };
    const direct = mode === 'direct';
    if (direct) for (const r of stable) await stopRevision(r); // One port: the old server must go first.
    const port = direct ? publicPort : await freePort();
    const r: Running = {
      secrets: body.secrets ?? {},
      stopping: false,
      consecutiveCrashes: 0,
      state: {
        revision: body.revision,
        model: body.model,
        sourceRunId: body.sourceRunId,
        port,
        phase: 'starting',
        weight: 0,
        restarts: 0,
        startedAt: new Date().toISOString(),
        command: body.deployment.runtime.command,
        deployment: body.deployment,
        log: join(dir, 'logs', `${body.revision}.log`),
      },
    };
    running.set(body.revision, r);
    say(`${name}/${body.revision}: starting \`${body.deployment.runtime.command}\` on port ${port}`);
    appendFileSync(r.state.log, `[supervisor] ${new Date().toISOString()} starting on port ${port}: ${body.deployment.runtime.command}\n`);
    await save();
    startProcess(r);
    const ok = await waitReady(r, READY_TIMEOUT_MS);
    if (!ok) {
      const why = r.state.lastError ?? `nothing answered 2xx on http://127.0.0.1:${port}${body.deployment.runtime.readiness} within ${READY_TIMEOUT_MS / 1000} s`;
      await stopRevision(r);
      say(`${name}/${body.revision}: failed to start: ${why}`);
      await save();
      const hint = mode === 'proxy' && !body.deployment.runtime.usesPortEnv ? ' The revision runs behind the canary proxy on a private port: make runtime.command listen on $PORT (e.g. `--port ${PORT}`).' : '';
      return { ok: false, status: 502, error: `revision ${body.revision} did not become ready: ${why}.${hint} Its output: ${r.state.log}` };
    }
    r.state.phase = 'ready';
    r.healthySince = Date.now();
    if (body.strategy === 'replace') {
      r.state.weight = 100;
      for (const old of stable) {
        if (!direct) {
          old.state.weight = 0;
          await save(); // The proxy stops sending new requests before the old server goes.
          await stopRevision(old);
        }
        state.history.unshift({ revision: old.state.revision, model: old.state.model, sourceRunId: old.state.sourceRunId, deployedAt: old.state.startedAt, deployment: old.state.deployment });
      }
    }
    say(`${name}/${body.revision}: ready on port ${port}${body.strategy === 'canary' ? ' (canary, weight 0)' : ''}`);
    await save();
    return { ok: true };
  };

  const canaryAndStable = (): { stable?: Running; canary?: Running } => {
    const all = [...running.values()];
    return all.length === 2 ? { stable: all[0], canary: all[1] } : { stable: all[0] };
  };

  let shuttingDown = false;
  const shutdown = async (): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    say(`${name}: stopping`);
    await Promise.all([...running.values()].map(stopRevision));
    await proxy?.close();
    await save();
    control.close();
    process.exit(0);
  };

  const control = http.createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${token}`) return reply(401, { error: 'bad token' });
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      raw += c;
      if (raw.length > 4 * 1024 * 1024) req.destroy();
    });
    req.on('end', () => {
      void (async () => {
        let body: Record<string, unknown> = {};
        try {
          body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
        } catch {
          return reply(400, { error: 'body is not JSON' });
        }
        const { stable, canary } = canaryAndStable();
        switch (`${req.method} ${req.url}`) {
          case 'GET /status':
            return reply(200, state);
          case 'POST /revisions': {
            const result = await startRevision(body as unknown as StartRevisionBody);
            if (!result.ok) {
              reply(result.status, { error: result.error });
              if (running.size === 0) void shutdown();
              return;
            }
            return reply(200, state);
          }
          case 'POST /weight': {
            const pct = Number(body.percent);
            if (!canary || !stable) return reply(409, { error: 'no canary is rolling out' });
            if (!(pct >= 0 && pct <= 100)) return reply(400, { error: 'percent must be 0-100' });
            canary.state.weight = pct;
            stable.state.weight = 100 - pct;
            say(`${name}: weights ${stable.state.revision}=${stable.state.weight} ${canary.state.revision}=${canary.state.weight}`);
            await save();
            return reply(200, state);
          }
          case 'POST /promote': {
            if (!canary || !stable) return reply(409, { error: 'no canary is rolling out' });
            canary.state.weight = 100;
            stable.state.weight = 0;
            await save();
            await stopRevision(stable);
            state.history.unshift({ revision: stable.state.revision, model: stable.state.model, sourceRunId: stable.state.sourceRunId, deployedAt: stable.state.startedAt, deployment: stable.state.deployment });
            say(`${name}: promoted ${canary.state.revision}`);
            await save();
            return reply(200, state);
          }
          case 'POST /rollback': {
            const reason = String(body.reason ?? 'rolled back by the user');
            if (canary && stable) {
              stable.state.weight = 100;
              canary.state.weight = 0;
              await save();
              await stopRevision(canary);
              say(`${name}: rolled back ${canary.state.revision}: ${reason}`);
              await save();
              return reply(200, state);
            }
            const prev = state.history[0];
            if (!prev) return reply(409, { error: 'there is no earlier revision to roll back to' });
            const result = await startRevision({ deployment: prev.deployment, model: prev.model, sourceRunId: prev.sourceRunId, revision: `${prev.revision}-rb${Date.now().toString(36)}`, strategy: 'replace', secrets: stable?.secrets });
            if (!result.ok) return reply(result.status, { error: result.error });
            say(`${name}: rolled back to ${prev.revision}: ${reason}`);
            await save();
            return reply(200, state);
          }
          case 'POST /stop':
            reply(200, { stopping: true });
            return void shutdown();
          default:
            return reply(404, { error: `unknown control request ${req.method} ${req.url}` });
        }
      })().catch((e) => reply(500, { error: (e as Error).message }));
    });
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  state.controlPort = (control.address() as net.AddressInfo).port;
  if (proxy) {
    try {
      await proxy.listen(publicPort);
    } catch (e) {
      say(`${name}: cannot listen on port ${publicPort}: ${(e as Error).message}`);
      state.phase = 'failed';
      state.lastEvent = { at: new Date().toISOString(), message: `port ${publicPort} is in use` };
      await writeState(workspace, state);
      process.exit(1);
    }
  }
  // The workspace (or its .mlpipeline folder) deleted under us: nobody can find or stop these servers any
  // more, so stop them now rather than leave orphans holding the port.
  setInterval(() => {
    if (!existsSync(join(dir, 'state.json'))) void shutdown();
  }, 2000).unref();
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  process.on('SIGHUP', () => undefined); // The terminal that started the deploy closing must not stop it.
  await save();
  say(`${name}: supervisor ${process.pid} ready (control on 127.0.0.1:${state.controlPort}, ${mode} on port ${publicPort})`);
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function probe(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1000 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
