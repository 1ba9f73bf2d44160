/**
 * The local deployment target: a detached supervisor per deployment (see supervisor.ts), driven through
 * its control API. Implements the target-neutral `DeployTarget`, so the CLI, the rollout controller and
 * the extension treat it exactly like the Kubernetes target.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { DeployError, type DeployRequest, type DeployResult, type DeploymentStatus, type DeployTarget, type MetricsSource, type UndeployOptions } from './deploy-target';
import { deploymentDir, isAlive, listStates, readState, type LocalDeploymentState } from './local-state';
import { portFree, type StartRevisionBody } from './supervisor';

export interface LocalTargetOptions {
  /** The spec's folder: state and logs go to `.mlpipeline/deployments/` below it. */
  workspace: string;
  /** argv that starts this program's CLI (`node dist/cli/main.js`); `__supervise ...` is appended. Default: the running CLI. */
  cliCommand?: string[];
  /** Extra environment for the supervisor (e.g. ELECTRON_RUN_AS_NODE=1 when the editor's Electron runs the CLI). */
  cliEnv?: Record<string, string>;
  targetName?: string;
}

export class LocalTarget implements DeployTarget {
  readonly kind = 'local' as const;
  constructor(private readonly options: LocalTargetOptions) {}

  private get workspace(): string {
    return this.options.workspace;
  }

  /** The state of a deployment whose supervisor is alive; a dead one's leftovers are cleaned up. */
  private live(name: string): LocalDeploymentState | undefined {
    const s = readState(this.workspace, name);
    if (!s || s.phase === 'stopped') return undefined;
    if (!isAlive(s.supervisorPid)) {
      // The supervisor was killed: stop the servers it left running, so the port and memory are freed.
      for (const r of s.revisions) if (r.pgid) killGroup(r.pgid, 'SIGKILL');
      return undefined;
    }
    return s;
  }

  private async control(s: LocalDeploymentState, method: string, path: string, body?: unknown, timeoutMs = 120_000): Promise<LocalDeploymentState> {
    const { status, json } = await request(s.controlPort, s.token, method, path, body, timeoutMs);
    if (status >= 400) throw new DeployError(`${s.name}: ${String((json as { error?: string }).error ?? `HTTP ${status}`)}`, status === 409 ? 'busy' : status === 400 ? 'bad-request' : 'not-ready');
    return json as LocalDeploymentState;
  }

  async deploy(req: DeployRequest): Promise<DeployResult> {
    const d = req.deployment;
    const name = d.name;
    let s = this.live(name);
    const publicPort = req.port ?? d.runtime.port;
    const emit = (phase: 'starting' | 'ready' | 'failed', message: string): void => req.onEvent?.({ type: 'phase', deployment: name, revision: req.revision, phase, message });
    if (!s) {
      const mode = d.rollout.strategy === 'canary' ? 'proxy' : 'direct';
      if (mode === 'direct' && publicPort !== d.runtime.port && !d.runtime.usesPortEnv) {
        throw new DeployError(`--port ${publicPort} differs from runtime.port ${d.runtime.port}, but runtime.command does not read $PORT. Write \`--port \${PORT}\` in the command (the supervisor sets PORT) or leave out --port.`, 'bad-request');
      }
      if (mode === 'proxy' && !d.runtime.usesPortEnv) {
        throw new DeployError(`Deployment ${name} rolls out as a canary, so its revisions run side by side on private ports behind a proxy on port ${publicPort}. Make runtime.command listen on $PORT, e.g. \`--port \${PORT}\`.`, 'bad-request');
      }
      if (!(await portFree(publicPort))) {
        throw new DeployError(`Port ${publicPort} is already in use on 127.0.0.1 (another deployment? \`mlpipeline deployments\` lists them). Stop what uses it, or deploy with --port N.`, 'port-in-use');
      }
      s = await this.startSupervisor(name, publicPort, mode);
      emit('starting', `supervisor ${s.supervisorPid} started (${mode === 'proxy' ? `canary proxy on port ${publicPort}` : `port ${publicPort}`}); logs in ${join(deploymentDir(this.workspace, name), 'logs')}`);
    } else if (req.port !== undefined && req.port !== s.publicPort) {
      throw new DeployError(`${name} is already deployed on port ${s.publicPort}; undeploy it first to move it to port ${req.port}.`, 'busy');
    }
    const body: StartRevisionBody = { deployment: d, model: req.model, sourceRunId: req.sourceRunId, revision: req.revision, strategy: req.strategy, secrets: req.secrets };
    emit('starting', `starting revision ${req.revision}: ${d.runtime.command}`);
    const onAbort = (): void => void this.undeploy(name).catch(() => undefined);
    req.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const state = await this.control(s, 'POST', '/revisions', body, 10 * 60_000);
      emit('ready', `revision ${req.revision} is ready at ${state.url}`);
      return { status: toStatus(state, this.options.targetName ?? 'local') };
    } finally {
      req.signal?.removeEventListener('abort', onAbort);
    }
  }

  private async startSupervisor(name: string, port: number, mode: 'direct' | 'proxy'): Promise<LocalDeploymentState> {
    const dir = deploymentDir(this.workspace, name);
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const log = openSync(join(dir, 'supervisor.log'), 'a');
    const cli = this.options.cliCommand ?? [process.execPath, ...process.execArgv, process.argv[1]];
    const before = readState(this.workspace, name)?.updatedAt;
    const child = spawn(cli[0], [...cli.slice(1), '__supervise', this.workspace, name, String(port), mode], {
      cwd: this.workspace,
      detached: true, // Its own session: it outlives this process and the terminal's Ctrl+C.
      stdio: ['ignore', log, log],
      env: { ...process.env, ...this.options.cliEnv }, // Secrets reach the servers through the control request, never the supervisor's environment.
    });
    child.unref();
    closeSync(log);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const s = readState(this.workspace, name);
      if (s && s.supervisorPid === child.pid && s.updatedAt !== before) {
        if (s.phase === 'failed') throw new DeployError(`The supervisor could not start: ${s.lastEvent?.message ?? 'see supervisor.log'} (${join(dir, 'supervisor.log')}).`, 'port-in-use');
        if (s.controlPort) return s;
      }
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new DeployError(`The deployment supervisor did not start; see ${join(dir, 'supervisor.log')}.`, 'not-ready');
  }

  async undeploy(name: string, options: UndeployOptions = {}): Promise<boolean> {
    const s = readState(this.workspace, name);
    if (!s || s.phase === 'stopped') return false;
    options.onEvent?.({ type: 'phase', deployment: name, phase: 'stopped', message: `stopping ${name}` });
    if (isAlive(s.supervisorPid)) {
      try {
        await this.control(s, 'POST', '/stop', {}, 5000);
      } catch {
        process.kill(s.supervisorPid, 'SIGTERM');
      }
      const deadline = Date.now() + 10_000;
      while (isAlive(s.supervisorPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (isAlive(s.supervisorPid)) process.kill(s.supervisorPid, 'SIGKILL');
    }
    // Whatever is still recorded as running (a supervisor killed with SIGKILL cannot clean up).
    const after = readState(this.workspace, name) ?? s;
    for (const r of after.revisions) if (r.pgid && r.phase !== 'stopped') killGroup(r.pgid, 'SIGKILL');
    if (after.phase !== 'stopped') {
      const { writeState } = await import('./local-state');
      await writeState(this.workspace, { ...after, phase: 'stopped', revisions: after.revisions.map((r) => ({ ...r, phase: 'stopped', pgid: undefined, weight: 0 })) });
    }
    return true;
  }

  private need(name: string): LocalDeploymentState {
    const s = this.live(name);
    if (!s) throw new DeployError(`${name} is not deployed on this machine. Deploy it with \`mlpipeline deploy ${name}\`.`, 'not-found');
    return s;
  }

  async setCanaryWeight(name: string, percent: number): Promise<void> {
    await this.control(this.need(name), 'POST', '/weight', { percent });
  }

  async promote(name: string): Promise<DeploymentStatus> {
    return toStatus(await this.control(this.need(name), 'POST', '/promote'), this.options.targetName ?? 'local');
  }

  async rollback(name: string, reason: string): Promise<DeploymentStatus> {
    return toStatus(await this.control(this.need(name), 'POST', '/rollback', { reason }), this.options.targetName ?? 'local');
  }

  async status(name: string): Promise<DeploymentStatus | undefined> {
    const s = readState(this.workspace, name);
    if (!s) return undefined;
    const alive = s.phase !== 'stopped' && isAlive(s.supervisorPid);
    return toStatus(alive ? s : { ...s, phase: s.phase === 'stopped' ? 'stopped' : 'failed', revisions: [] }, this.options.targetName ?? 'local');
  }

  async list(): Promise<DeploymentStatus[]> {
    const out: DeploymentStatus[] = [];
    for (const s of listStates(this.workspace)) {
      const st = await this.status(s.name);
      if (st) out.push(st);
    }
    return out;
  }

  async metricsSources(name: string): Promise<MetricsSource[]> {
    const s = this.need(name);
    return s.revisions.map((r) => ({
      revision: r.revision,
      scrapeUrl: `http://127.0.0.1:${r.port}${r.deployment.runtime.metrics}`,
      prometheusSelector: { deployment: name, revision: r.revision },
    }));
  }
}

export function toStatus(s: LocalDeploymentState, target: string): DeploymentStatus {
  return {
    name: s.name,
    target,
    targetType: 'local',
    phase: s.phase,
    url: s.phase === 'stopped' ? undefined : s.url,
    revisions: s.revisions.map((r) => ({
      revision: r.revision,
      model: r.model,
      sourceRunId: r.sourceRunId,
      phase: r.phase,
      weight: r.weight,
      url: `http://127.0.0.1:${r.port}`,
      restarts: r.restarts,
      startedAt: r.startedAt,
      lastError: r.lastError,
    })),
    history: s.history.map((h) => ({ revision: h.revision, model: h.model, sourceRunId: h.sourceRunId, deployedAt: h.deployedAt })),
    updatedAt: s.updatedAt,
  };
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Gone already.
  }
}

function request(port: number, token: string, method: string, path: string, body: unknown, timeoutMs: number): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, method, path, timeout: timeoutMs, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(data ? { 'content-length': Buffer.byteLength(data) } : {}) } }, (res) => {
      let raw = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (raw += c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 500, json: raw ? JSON.parse(raw) : {} });
        } catch {
          reject(new DeployError(`The deployment supervisor answered something that is not JSON (HTTP ${res.statusCode}).`, 'not-ready'));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', (e) => reject(new DeployError(`Cannot reach the deployment supervisor: ${e.message}.`, 'not-ready')));
    if (data) req.write(data);
    req.end();
  });
}
