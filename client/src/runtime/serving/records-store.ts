import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { appendLine } from '../atomic-file';
import type { AlertRecord, DeploymentRecord } from '../records';
import { DEPLOYMENT_NAME, deploymentDir } from './local-state';

/**
 * Deployment history and alert history, one JSON line each, next to the run store. Append-only with
 * fsync; a torn last line (crash mid-append) is skipped when reading, never fatal.
 */
export async function appendDeploymentRecord(workspace: string, rec: DeploymentRecord): Promise<void> {
  const dir = deploymentDir(workspace, rec.deployment);
  mkdirSync(dir, { recursive: true });
  await appendLine(join(dir, 'history.jsonl'), JSON.stringify(rec), { fsync: true });
}

export async function appendAlertRecord(workspace: string, rec: AlertRecord): Promise<void> {
  const dir = deploymentDir(workspace, rec.deployment);
  mkdirSync(dir, { recursive: true });
  await appendLine(join(dir, 'alerts.jsonl'), JSON.stringify(rec), { fsync: true });
}

function readLines<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  const out: T[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // A line torn by a crash: skip it.
    }
  }
  return out;
}

export function readDeploymentRecords(workspace: string, name: string): DeploymentRecord[] {
  if (!DEPLOYMENT_NAME.test(name)) return [];
  return readLines<DeploymentRecord>(join(deploymentDir(workspace, name), 'history.jsonl'));
}

export function readAlertRecords(workspace: string, name: string): AlertRecord[] {
  if (!DEPLOYMENT_NAME.test(name)) return [];
  return readLines<AlertRecord>(join(deploymentDir(workspace, name), 'alerts.jsonl'));
}

/** `r1`, `r2`, ...: one more than any revision this deployment has started here (refused deploys start none). */
export function nextRevision(workspace: string, name: string): string {
  const n = readDeploymentRecords(workspace, name)
    .filter((r) => r.outcome !== 'refused')
    .map((r) => /^r([0-9]+)$/.exec(r.revision)?.[1])
    .filter((x): x is string => !!x)
    .reduce((m, x) => Math.max(m, Number(x)), 0);
  return `r${n + 1}`;
}
