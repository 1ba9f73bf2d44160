/**
 * Alert notifications, the thin glue between the alert history (`.mlpipeline/deployments/NAME/alerts.jsonl`,
 * appended by `mlpipeline monitor` and by canary rollouts, wherever they run) and the editor: each new
 * `violated` record whose alert notifies `vscode` (or names nothing) becomes a warning with Open Serving
 * Panel, Roll Back and Show Log; a `recovered` one an information message. The Deployments view marks
 * the deployment from the same file (views/deployments.ts).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AlertRecord } from '../runtime/records';

export const ALERT_ACTIONS = ['Open Serving Panel', 'Roll Back', 'Show Log'] as const;
export type AlertAction = (typeof ALERT_ACTIONS)[number];

/** A notification this window showed, newest last (the last 50; for the tests' hook and nothing else). */
export interface ShownAlert {
  alert: AlertRecord;
  workspace: string;
  text: string;
  severity: 'warning' | 'information';
  actions: string[];
  /** The action the user picked, once they did. */
  choice?: string;
}

export class AlertNotifier {
  readonly shown: ShownAlert[] = [];
  /** Lines already handled per file, so only appended ones notify. */
  private readonly seen = new Map<string, number>();
  /** One read at a time per file: the watcher fires change and create events close together. */
  private readonly queues = new Map<string, Promise<void>>();
  /** Records evaluated before this window started watching were shown then, or missed for good. */
  private readonly since = Date.now();

  fileChanged(file: string): Promise<void> {
    const next = (this.queues.get(file) ?? Promise.resolve()).then(() => this.readNew(file)).catch(() => undefined);
    this.queues.set(file, next);
    return next;
  }

  fileDeleted(file: string): void {
    this.seen.set(file, 0);
  }

  private async readNew(file: string): Promise<void> {
    const { readFile } = await import('node:fs/promises');
    const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l.trim());
    const before = this.seen.get(file);
    this.seen.set(file, lines.length);
    // .mlpipeline/deployments/NAME/alerts.jsonl -> the spec's folder.
    const workspace = path.dirname(path.dirname(path.dirname(path.dirname(file))));
    for (const line of lines.slice(Math.min(before ?? 0, lines.length))) {
      let a: AlertRecord;
      try {
        a = JSON.parse(line) as AlertRecord;
      } catch {
        continue; // A torn line (a writer killed mid-append).
      }
      // First sight of a file that existed before: only records made since this window started are news.
      if (before === undefined && !(Date.parse(a.at) >= this.since)) continue;
      if (a.notify?.length && !a.notify.includes('vscode')) continue;
      this.show(a, workspace);
    }
  }

  private show(a: AlertRecord, workspace: string): void {
    const text = `ML Pipeline: ${a.deployment}: monitors.${a.monitor} ${a.state === 'violated' ? 'violated' : 'recovered'}${a.revision ? ` (${a.revision})` : ''}: ${a.details.join('; ')}${a.description ? ` — ${a.description}` : ''}`;
    const entry: ShownAlert = { alert: a, workspace, text, severity: a.state === 'violated' ? 'warning' : 'information', actions: a.state === 'violated' ? [...ALERT_ACTIONS] : [] };
    this.shown.push(entry);
    if (this.shown.length > 50) this.shown.shift();
    if (a.state === 'recovered') {
      void vscode.window.showInformationMessage(text);
      return;
    }
    void vscode.window.showWarningMessage(text, ...ALERT_ACTIONS).then((choice) => (choice ? this.act(entry, choice) : undefined));
  }

  /** What a click on one of the notification's buttons does. */
  async act(entry: ShownAlert, choice: string): Promise<unknown> {
    entry.choice = choice;
    const node = { kind: 'deployment', workspace: entry.workspace, name: entry.alert.deployment };
    switch (choice as AlertAction) {
      case 'Open Serving Panel':
        return vscode.commands.executeCommand('mlpipeline.openServingMetrics');
      case 'Roll Back':
        return vscode.commands.executeCommand('mlpipeline.rollbackDeployment', node);
      case 'Show Log':
        return vscode.commands.executeCommand('mlpipeline.openDeploymentLog', node);
      default:
        return undefined;
    }
  }
}
