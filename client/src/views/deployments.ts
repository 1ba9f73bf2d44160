/**
 * The Deployments view and the serving commands: deployments of each spec's folder (read from the
 * supervisors' state files, so deployments started from a terminal show too), their revisions, and an
 * alert marker while a monitor is violated. New alert records (written by `mlpipeline monitor` and by
 * canary rollouts) become notifications with actions (deployment-alerts.ts). Deploys run the bundled CLI
 * in a terminal, so the gate check, startup and rollout progress are visible exactly as on the command line.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CommandFactory, Cmd } from '../commands';
import type { Ctx } from '../ctx';
import type { AlertRecord } from '../runtime/records';
import type { LocalDeploymentState } from '../runtime/serving/local-state';
import { readSpecInfo } from '../specs';
import { AlertNotifier } from './deployment-alerts';

type DeploymentNode =
  | { kind: 'deployment'; spec: vscode.Uri; workspace: string; name: string; state?: LocalDeploymentState; alerts: AlertRecord[] }
  | { kind: 'revision'; workspace: string; deployment: string; revision: LocalDeploymentState['revisions'][number]; canary: boolean }
  | { kind: 'message'; text: string };

const PHASE_ICON: Record<string, [string, string | undefined]> = {
  ready: ['pass-filled', 'testing.iconPassed'],
  starting: ['sync~spin', 'testing.iconQueued'],
  'rolling-out': ['sync~spin', 'testing.iconQueued'],
  degraded: ['warning', 'list.warningForeground'],
  failed: ['error', 'testing.iconFailed'],
  stopped: ['circle-outline', undefined],
};

let serving: Promise<{ state: typeof import('../runtime/serving/local-state'); records: typeof import('../runtime/serving/records-store') }> | undefined;
/** The serving modules, loaded when the view first lists deployments (activation stays cheap). */
function modules(): NonNullable<typeof serving> {
  serving ??= Promise.all([import('../runtime/serving/local-state'), import('../runtime/serving/records-store')]).then(([state, records]) => ({ state, records }));
  return serving;
}

/**
 * Monitors whose latest alert record says violated, about a revision that still runs here: a canary that
 * was rolled back for its breach leaves the deployment healthy. Without local state (another target, or
 * not running) every violation counts.
 */
function violated(alerts: AlertRecord[], state?: LocalDeploymentState): AlertRecord[] {
  const last = new Map<string, AlertRecord>();
  for (const a of alerts) last.set(a.monitor, a);
  const live = state?.revisions.map((r) => r.revision);
  return [...last.values()].filter((a) => a.state === 'violated' && (!a.revision || !live || live.includes(a.revision)));
}

export class DeploymentsProvider implements vscode.TreeDataProvider<DeploymentNode>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<DeploymentNode | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly watcher: vscode.FileSystemWatcher;
  private readonly subs: vscode.Disposable[] = [];
  readonly alerts = new AlertNotifier();
  private timer: NodeJS.Timeout | undefined;
  /** `.mlpipeline/deployments/NAME` of every deployment the specs define, and what their files looked like. */
  private polled: string[] = [];
  private readonly stamps = new Map<string, string>();
  private poller: NodeJS.Timeout | undefined;
  private rescanning: Promise<void> | undefined;

  constructor(private readonly ctx: Ctx) {
    this.watcher = vscode.workspace.createFileSystemWatcher('**/.mlpipeline/deployments/**/{state.json,alerts.jsonl}');
    const changed = (uri: vscode.Uri): void => {
      if (uri.fsPath.endsWith('alerts.jsonl')) void this.alerts.fileChanged(uri.fsPath);
      this.refresh();
    };
    const deleted = (uri: vscode.Uri): void => {
      if (uri.fsPath.endsWith('alerts.jsonl')) this.alerts.fileDeleted(uri.fsPath);
      this.refresh();
    };
    this.subs.push(this.watcher, this.watcher.onDidChange(changed), this.watcher.onDidCreate(changed), this.watcher.onDidDelete(deleted), ctx.specs.onDidChange(() => (this.refresh(), void this.rescan())));
    // The watcher alone misses files in folders made after it started (code-server's does, and the CLI
    // makes `.mlpipeline/deployments/NAME/` at the first deploy), so both files are also polled: two
    // stat calls per deployment every 2 s. The first scan waits a moment: activation stays cheap.
    this.poller = setTimeout(() => {
      void this.rescan();
      let busy = false;
      this.poller = setInterval(() => {
        if (busy) return;
        busy = true;
        void this.poll().finally(() => (busy = false));
      }, 2000);
    }, 1000);
  }

  /** Which deployment folders to poll: those of the deployments the specs define. */
  private rescan(): Promise<void> {
    this.rescanning ??= (async () => {
      const dirs: string[] = [];
      for (const spec of await this.ctx.specs.all()) {
        const info = await readSpecInfo(spec).catch(() => undefined);
        for (const name of Object.keys(info?.deployments ?? {})) dirs.push(path.join(path.dirname(spec.fsPath), '.mlpipeline', 'deployments', name));
      }
      this.polled = dirs;
    })().finally(() => (this.rescanning = undefined));
    return this.rescanning;
  }

  private async poll(): Promise<void> {
    const { stat } = await import('node:fs/promises');
    let changed = false;
    for (const dir of this.polled) {
      for (const file of ['alerts.jsonl', 'state.json']) {
        const p = path.join(dir, file);
        const st = await stat(p).catch(() => undefined);
        const stamp = st ? `${st.size}:${st.mtimeMs}` : '-';
        const before = this.stamps.get(p);
        this.stamps.set(p, stamp);
        if (before === stamp || (before === undefined && stamp === '-')) continue;
        changed = true;
        if (file === 'alerts.jsonl') {
          if (st) void this.alerts.fileChanged(p);
          else this.alerts.fileDeleted(p);
        }
      }
    }
    if (changed) this.refresh();
  }

  refresh(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.emitter.fire(undefined), 150);
  }

  getTreeItem(n: DeploymentNode): vscode.TreeItem {
    if (n.kind === 'message') return new vscode.TreeItem(n.text);
    if (n.kind === 'revision') {
      const r = n.revision;
      const item = new vscode.TreeItem(`${r.revision}${n.canary ? ' (canary)' : ''}`);
      item.description = `${r.weight}% · ${r.phase}${r.restarts ? ` · ${r.restarts} restart${r.restarts > 1 ? 's' : ''}` : ''} · @${r.model.hash.slice(0, 12)}`;
      item.tooltip = new vscode.MarkdownString(`**${r.revision}** on port ${r.port}\n\nModel \`${path.basename(r.model.path)}\` sha256 \`${r.model.hash.slice(0, 16)}\`${r.sourceRunId ? `\n\nFrom run \`${r.sourceRunId}\`` : ''}${r.lastError ? `\n\nLast error: ${r.lastError}` : ''}`);
      const [icon, color] = PHASE_ICON[r.phase] ?? ['question', undefined];
      item.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
      item.contextValue = 'deploymentRevision';
      return item;
    }
    const s = n.state;
    const phase = s ? s.phase : 'not deployed';
    const alerts = violated(n.alerts, s);
    const item = new vscode.TreeItem(n.name, s && s.phase !== 'stopped' ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
    item.description = `${alerts.length ? `⚠ ${alerts.map((a) => `monitors.${a.monitor}`).join(', ')} · ` : ''}${phase}${s && s.phase !== 'stopped' ? ` · ${s.url}` : ''}`;
    const [icon, color] = alerts.length ? ['warning', 'list.warningForeground'] : PHASE_ICON[s?.phase ?? 'stopped'] ?? ['circle-outline', undefined];
    item.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
    item.tooltip = new vscode.MarkdownString(`**${n.name}** (${vscode.workspace.asRelativePath(n.spec)})${s?.lastEvent ? `\n\n${s.lastEvent.at}: ${s.lastEvent.message}` : ''}${alerts.map((a) => `\n\n⚠ monitors.${a.monitor}: ${a.details.join('; ')}`).join('')}`);
    item.contextValue = s && s.phase !== 'stopped' ? 'deployment.live' : 'deployment';
    return item;
  }

  async getChildren(n?: DeploymentNode): Promise<DeploymentNode[]> {
    if (n?.kind === 'revision' || n?.kind === 'message') return [];
    if (n?.kind === 'deployment') {
      const live = n.state?.revisions ?? [];
      return live.map((revision, i) => ({ kind: 'revision', workspace: n.workspace, deployment: n.name, revision, canary: live.length > 1 && i === live.length - 1 }));
    }
    const { state, records } = await modules();
    const out: DeploymentNode[] = [];
    for (const spec of await this.ctx.specs.all()) {
      const info = await readSpecInfo(spec).catch(() => undefined);
      const workspace = path.dirname(spec.fsPath);
      for (const name of Object.keys(info?.deployments ?? {})) {
        const st = state.readState(workspace, name);
        const alive = st && st.phase !== 'stopped' && state.isAlive(st.supervisorPid);
        out.push({ kind: 'deployment', spec, workspace, name, state: alive ? st : undefined, alerts: records.readAlertRecords(workspace, name) });
      }
    }
    return out.length ? out : [{ kind: 'message', text: 'No deployments in the specs of this workspace.' }];
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.poller) clearInterval(this.poller); // Clears the first timeout too (one id space in Node).

    this.subs.forEach((d) => d.dispose());
    this.emitter.dispose();
  }
}

let provider: DeploymentsProvider | undefined;
/** Created with the first command factory, i.e. at activation, registered once. */
function view(ctx: Ctx): DeploymentsProvider {
  if (!provider) {
    provider = new DeploymentsProvider(ctx);
    ctx.extension.subscriptions.push(provider, vscode.window.registerTreeDataProvider('mlpipeline.deployments', provider), { dispose: () => (provider = undefined) });
    if (ctx.extension.extensionMode === vscode.ExtensionMode.Test) registerTestHooks(ctx, provider);
  }
  return provider;
}

/**
 * For the extension's own e2e tests only (registered when VS Code runs it under test, never contributed):
 * the extension host API cannot read notifications or rendered tree items, so these report what this code
 * handed to VS Code, and run a notification's action as its button does.
 */
function registerTestHooks(ctx: Ctx, p: DeploymentsProvider): void {
  ctx.extension.subscriptions.push(
    vscode.commands.registerCommand('mlpipeline._test.shownAlerts', () =>
      p.alerts.shown.map((s) => ({ text: s.text, severity: s.severity, actions: s.actions, choice: s.choice, workspace: s.workspace, deployment: s.alert.deployment, monitor: s.alert.monitor, revision: s.alert.revision, state: s.alert.state })),
    ),
    vscode.commands.registerCommand('mlpipeline._test.alertAction', (index: number, choice: string) => {
      const shown = p.alerts.shown[index];
      if (!shown) throw new Error(`no alert notification #${index} was shown`);
      if (!shown.actions.includes(choice)) throw new Error(`the notification has no action \`${choice}\` (it has: ${shown.actions.join(', ') || 'none'})`);
      return p.alerts.act(shown, choice);
    }),
    vscode.commands.registerCommand('mlpipeline._test.deploymentItems', async () => {
      const nodes = (await p.getChildren()).filter((n): n is Extract<DeploymentNode, { kind: 'deployment' }> => n.kind === 'deployment');
      return nodes.map((n) => {
        const item = p.getTreeItem(n);
        return { name: n.name, workspace: n.workspace, description: item.description, icon: (item.iconPath as vscode.ThemeIcon | undefined)?.id, contextValue: item.contextValue, tooltip: (item.tooltip as vscode.MarkdownString | undefined)?.value };
      });
    }),
  );
}

/**
 * The extension's own CLI (`bin/mlpipeline.js`), run by the editor's Node. A script path, not `node -e`:
 * the CLI starts a deployment's supervisor by re-running itself (`process.argv[1]`).
 */
function cliCommand(ctx: Ctx): [string, string] {
  return [process.execPath, vscode.Uri.joinPath(ctx.extension.extensionUri, 'bin', 'mlpipeline.js').fsPath];
}

function cliTerminal(ctx: Ctx, title: string, cwd: string, args: string[]): vscode.Terminal {
  const [node, cli] = cliCommand(ctx);
  const terminal = vscode.window.createTerminal({ name: title, cwd, shellPath: node, shellArgs: [cli, ...args], env: { ELECTRON_RUN_AS_NODE: '1' }, iconPath: new vscode.ThemeIcon('cloud-upload') });
  terminal.show();
  return terminal;
}

const nodeOf = (a: unknown): { workspace: string; name: string } | undefined => {
  const n = a as { kind?: string; workspace?: unknown; name?: unknown; deployment?: unknown };
  if (n && typeof n.workspace === 'string' && typeof n.name === 'string' && n.kind === 'deployment') return { workspace: n.workspace, name: n.name };
  if (n && typeof n.workspace === 'string' && typeof n.deployment === 'string') return { workspace: n.workspace, name: n.deployment };
  return undefined;
};

async function pickDeployment(ctx: Ctx, title: string, liveOnly: boolean): Promise<{ workspace: string; name: string; spec: vscode.Uri } | undefined> {
  const nodes = ((await view(ctx).getChildren()) as DeploymentNode[]).filter((n): n is Extract<DeploymentNode, { kind: 'deployment' }> => n.kind === 'deployment' && (!liveOnly || !!n.state));
  if (nodes.length === 0) {
    void vscode.window.showInformationMessage(liveOnly ? 'ML Pipeline: no deployment is running.' : 'ML Pipeline: the specs in this workspace define no deployments (`deployments:`).');
    return undefined;
  }
  if (nodes.length === 1) return nodes[0];
  const picked = await vscode.window.showQuickPick(
    nodes.map((n) => ({ label: n.name, description: `${n.state?.phase ?? 'not deployed'} · ${vscode.workspace.asRelativePath(n.spec)}`, node: n })),
    { title: `ML Pipeline: ${title}` },
  );
  return picked?.node;
}

const deploy = (ctx: Ctx): Cmd => {
  view(ctx);
  return async (arg?: unknown, name?: string) => {
    let spec = arg instanceof vscode.Uri ? arg : undefined;
    let deployment = typeof name === 'string' ? name : nodeOf(arg)?.name;
    const ref = nodeOf(arg);
    if (!spec && ref) {
      const nodes = (await view(ctx).getChildren()) as DeploymentNode[];
      const hit = nodes.find((n): n is Extract<DeploymentNode, { kind: 'deployment' }> => n.kind === 'deployment' && n.name === ref.name && n.workspace === ref.workspace);
      spec = hit?.spec;
    }
    if (!spec || !deployment) {
      const picked = await pickDeployment(ctx, 'Deploy', false);
      if (!picked) return undefined;
      spec = picked.spec;
      deployment = picked.name;
    }
    return cliTerminal(ctx, `Deploy ${deployment}`, path.dirname(spec.fsPath), ['deploy', deployment, spec.fsPath]);
  };
};

const undeploy = (ctx: Ctx): Cmd => async (arg?: unknown): Promise<boolean> => {
  const d = nodeOf(arg) ?? (await pickDeployment(ctx, 'Undeploy', true));
  if (!d) return false;
  const { LocalTarget } = await import('../runtime/serving/local-target');
  const stopped = await new LocalTarget({ workspace: d.workspace }).undeploy(d.name);
  void vscode.window.showInformationMessage(stopped ? `ML Pipeline: ${d.name} stopped.` : `ML Pipeline: ${d.name} was not running.`);
  view(ctx).refresh();
  return stopped;
};

const rollback = (ctx: Ctx): Cmd => async (arg?: unknown): Promise<boolean> => {
  const d = nodeOf(arg) ?? (await pickDeployment(ctx, 'Roll Back', true));
  if (!d) return false;
  const { LocalTarget } = await import('../runtime/serving/local-target');
  try {
    // Rolling back may start a supervisor: through the CLI, with Electron's Node running as plain Node.
    const st = await new LocalTarget({ workspace: d.workspace, cliCommand: cliCommand(ctx), cliEnv: { ELECTRON_RUN_AS_NODE: '1' } }).rollback(d.name, 'rolled back from VS Code');
    void vscode.window.showInformationMessage(`ML Pipeline: ${d.name} rolled back; ${st.revisions[0]?.revision} takes all traffic.`);
    return true;
  } catch (e) {
    void vscode.window.showErrorMessage(`ML Pipeline: ${(e as Error).message}`);
    return false;
  } finally {
    view(ctx).refresh();
  }
};

const openLog = (ctx: Ctx): Cmd => async (arg?: unknown) => {
  const d = nodeOf(arg) ?? (await pickDeployment(ctx, 'Open Deployment Log', false));
  if (!d) return undefined;
  const { state } = await modules();
  const st = state.readState(d.workspace, d.name);
  const rev = (arg as { revision?: { revision?: string } })?.revision?.revision ?? st?.revisions.at(-1)?.revision;
  const file = rev ? path.join(state.deploymentDir(d.workspace, d.name), 'logs', `${rev}.log`) : path.join(state.deploymentDir(d.workspace, d.name), 'supervisor.log');
  return vscode.window.showTextDocument(vscode.Uri.file(file), { preview: true });
};

const monitor = (ctx: Ctx): Cmd => async (arg?: unknown) => {
  const d = nodeOf(arg) ?? (await pickDeployment(ctx, 'Monitor', true));
  if (!d) return undefined;
  return cliTerminal(ctx, `Monitor ${d.name}`, d.workspace, ['monitor', d.name, '--every', '30s']);
};

/** Spread into the command table in commands.ts; package.json contributes the same ids. */
export const DEPLOYMENT_COMMANDS: Record<string, CommandFactory> = {
  'mlpipeline.deploy': { run: deploy, trusted: 'The deploy' },
  'mlpipeline.undeploy': { run: undeploy, trusted: 'The undeploy' },
  'mlpipeline.rollbackDeployment': { run: rollback, trusted: 'The rollback' },
  'mlpipeline.openDeploymentLog': { run: openLog },
  'mlpipeline.monitorDeployment': { run: monitor, trusted: 'Monitoring' },
  'mlpipeline.refreshDeployments': { run: (ctx) => () => view(ctx).refresh() },
};
