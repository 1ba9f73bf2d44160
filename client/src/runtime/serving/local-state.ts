import { chmodSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedDeployment } from '../../../../server/src/core/deploy-plan';
import { writeFileAtomic } from '../atomic-file';
import type { DeployPhase, ModelArtifact } from './deploy-target';

/**
 * What a local deployment's supervisor writes to `.mlpipeline/deployments/<name>/state.json`: enough for
 * another process (`undeploy`, `deployments`, the extension) to find and stop it, even when the
 * supervisor itself was killed.
 */
export interface LocalRevisionState {
  revision: string;
  model: ModelArtifact;
  sourceRunId?: string;
  /** Where this revision listens (the public port in direct mode, a private one behind the proxy). */
  port: number;
  /** Process group of the server's shell; absent while it is down. */
  pgid?: number;
  phase: DeployPhase;
  weight: number;
  restarts: number;
  startedAt: string;
  lastError?: string;
  /** The command as run (`${model}` resolved); secret values never appear here. */
  command: string;
  deployment: ResolvedDeployment;
  log: string;
}

export interface LocalDeploymentState {
  schema: 1;
  name: string;
  workspace: string;
  supervisorPid: number;
  controlPort: number;
  /** Bearer token for the control endpoint; the file is readable by its owner only. */
  token: string;
  publicPort: number;
  /** `direct`: one revision listens on the public port. `proxy`: a weighted proxy there, revisions behind it. */
  mode: 'direct' | 'proxy';
  url: string;
  phase: DeployPhase;
  revisions: LocalRevisionState[];
  history: { revision: string; model: ModelArtifact; sourceRunId?: string; deployedAt: string; deployment: ResolvedDeployment }[];
  lastEvent?: { at: string; message: string };
  updatedAt: string;
}

export function deploymentsDir(workspace: string): string {
  return join(workspace, '.mlpipeline', 'deployments');
}

/** The schema's deployment-name rule; also keeps names typed on a command line from escaping the folder. */
export const DEPLOYMENT_NAME = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function deploymentDir(workspace: string, name: string): string {
  if (!DEPLOYMENT_NAME.test(name)) throw new Error(`\`${name.slice(0, 80)}\` is not a deployment name (lowercase letters, digits and -, like churn-api).`);
  return join(deploymentsDir(workspace), name);
}

/** `<name>.json` per deployment, Prometheus file_sd format: scrape them with `file_sd_configs: [{files: ['<this>/*.json']}]`. */
export function prometheusTargetsDir(workspace: string): string {
  return join(deploymentsDir(workspace), '_prometheus');
}

export function readState(workspace: string, name: string): LocalDeploymentState | undefined {
  if (!DEPLOYMENT_NAME.test(name)) return undefined;
  try {
    const s = JSON.parse(readFileSync(join(deploymentDir(workspace, name), 'state.json'), 'utf8')) as LocalDeploymentState;
    return s && s.schema === 1 && s.name === name ? s : undefined;
  } catch {
    return undefined; // Missing or torn by a crash mid-write (writes are atomic, so only missing in practice).
  }
}

export async function writeState(workspace: string, state: LocalDeploymentState): Promise<void> {
  const path = join(deploymentDir(workspace, state.name), 'state.json');
  state.updatedAt = new Date().toISOString();
  await writeFileAtomic(path, JSON.stringify(state, null, 2) + '\n', { fsync: false });
  try {
    chmodSync(path, 0o600);
  } catch {
    // Best effort on filesystems without modes.
  }
}

export function listStates(workspace: string): LocalDeploymentState[] {
  const dir = deploymentsDir(workspace);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('_'))
    .map((d) => readState(workspace, d.name))
    .filter((s): s is LocalDeploymentState => !!s);
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
