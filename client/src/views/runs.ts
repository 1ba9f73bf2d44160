import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RunController } from '../run-controller';
import { formatDuration as formatMs } from '../runtime/run-report';
import type { RunRecord, RunStatus, RunSummary, StepStatus } from '../runtime/records';
import type { RunStore } from '../runtime/run-store';
import { storeRootFor, type SpecIndex } from '../specs';

export type RunsNode =
  | { kind: 'spec'; spec: vscode.Uri; storeRoot: string }
  | { kind: 'run'; spec: vscode.Uri; storeRoot: string; summary: RunSummary; live: boolean }
  | { kind: 'step'; runId: string; storeRoot: string; name: string; status: StepStatus; durationMs?: number; error?: string; metrics?: Record<string, number> }
  | { kind: 'message'; text: string };

const STATUS_ICON: Record<RunStatus | StepStatus, [string, string | undefined]> = {
  succeeded: ['pass-filled', 'testing.iconPassed'],
  cached: ['history', 'testing.iconPassed'],
  failed: ['error', 'testing.iconFailed'],
  cancelled: ['circle-slash', 'testing.iconSkipped'],
  skipped: ['debug-step-over', 'testing.iconSkipped'],
  running: ['sync~spin', 'testing.iconQueued'],
  pending: ['circle-outline', undefined],
};

export function statusIcon(status: RunStatus | StepStatus): vscode.ThemeIcon {
  const [id, color] = STATUS_ICON[status] ?? ['question', undefined];
  return new vscode.ThemeIcon(id, color ? new vscode.ThemeColor(color) : undefined);
}

let storeModule: Promise<typeof import('../runtime/run-store')> | undefined;
/** The run store module, loaded when the Runs view first lists runs. */
export async function openStore(root: string): Promise<RunStore> {
  storeModule ??= import('../runtime/run-store');
  const { RunStore } = await storeModule;
  return new RunStore(root);
}

/**
 * The Runs view: the run store of each spec's folder, newest first. Refreshes when a store's index
 * changes on disk (also runs started from a terminal) and on the engine's events for runs of this window.
 */
export class RunsProvider implements vscode.TreeDataProvider<RunsNode>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<RunsNode | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly watchers = new Map<string, vscode.FileSystemWatcher>();
  private readonly subs: vscode.Disposable[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** How many runs each spec shows. */
  limit = 100;

  constructor(
    private readonly specs: SpecIndex,
    private readonly runs: RunController,
  ) {
    this.subs.push(specs.onDidChange(() => this.refresh()), runs.onDidChange(() => this.refresh()));
  }

  /** Debounced: bursts of index lines and engine events refresh once. */
  refresh(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.emitter.fire(undefined);
    }, 150);
  }

  private watch(storeRoot: string): void {
    if (this.watchers.has(storeRoot)) return;
    const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(storeRoot), '{index.jsonl,*/run.json}'));
    const r = (): void => this.refresh();
    w.onDidChange(r);
    w.onDidCreate(r);
    w.onDidDelete(r);
    this.watchers.set(storeRoot, w);
  }

  async getChildren(node?: RunsNode): Promise<RunsNode[]> {
    if (!node) {
      const specs = await this.specs.all();
      if (specs.length === 0) return [{ kind: 'message', text: 'No mlpipeline.yaml in this workspace.' }];
      if (specs.length > 1) return specs.map((spec) => ({ kind: 'spec', spec, storeRoot: storeRootFor(spec) }));
      const runs = await this.runsOf(specs[0], storeRootFor(specs[0]));
      // No runs of the only spec: an empty tree shows the view's welcome content (a Run Pipeline button).
      return runs.length === 1 && runs[0].kind === 'message' && runs[0].text.startsWith('No runs yet') ? [] : runs;
    }
    if (node.kind === 'spec') return this.runsOf(node.spec, node.storeRoot);
    if (node.kind === 'run') {
      const record = await (await openStore(node.storeRoot)).get(node.summary.id).catch(() => undefined);
      if (!record) return [{ kind: 'message', text: 'The run record could not be read.' }];
      return Object.entries(record.steps).map(([name, s]) => ({ kind: 'step', runId: record.id, storeRoot: node.storeRoot, name, status: s.status, durationMs: s.durationMs, error: s.error, metrics: s.metrics }));
    }
    return [];
  }

  private async runsOf(spec: vscode.Uri, storeRoot: string): Promise<RunsNode[]> {
    this.watch(storeRoot);
    let list: RunSummary[];
    try {
      list = await (await openStore(storeRoot)).list();
    } catch (e) {
      return [{ kind: 'message', text: `Runs could not be read: ${(e as Error).message}` }];
    }
    // A shared storeLocation holds the runs of several specs: each spec's node shows them all.
    const mine = list;
    if (mine.length === 0) return [{ kind: 'message', text: 'No runs yet: ML Pipeline: Run Pipeline starts one.' }];
    return mine.slice(0, this.limit).map((summary) => ({ kind: 'run', spec, storeRoot, summary, live: !!this.runs.findLive(summary.id) }));
  }

  getTreeItem(node: RunsNode): vscode.TreeItem {
    switch (node.kind) {
      case 'message': {
        const item = new vscode.TreeItem(node.text);
        item.contextValue = 'message';
        return item;
      }
      case 'spec': {
        const item = new vscode.TreeItem(vscode.workspace.asRelativePath(node.spec), vscode.TreeItemCollapsibleState.Expanded);
        item.id = `spec:${node.spec.toString()}`;
        item.iconPath = new vscode.ThemeIcon('file');
        item.resourceUri = node.spec;
        item.tooltip = `Runs of ${node.spec.fsPath}, recorded in ${node.storeRoot}`;
        item.contextValue = 'spec';
        return item;
      }
      case 'run': {
        const s = node.summary;
        const item = new vscode.TreeItem(s.label ? `${s.label}` : s.id, vscode.TreeItemCollapsibleState.Collapsed);
        item.id = `run:${node.storeRoot}/${s.id}`;
        item.iconPath = statusIcon(s.status);
        const params = Object.entries(s.params).map(([k, v]) => `${k}=${fmt(v)}`).join(' ');
        item.description = `${s.status}${s.label ? ` · ${s.id}` : ''}${params ? ` · ${params}` : ''}`;
        item.tooltip = runTooltip(s);
        item.contextValue = `run.${s.status}${node.live ? '.live' : ''}`;
        item.command = { command: 'mlpipeline.openRun', title: 'Open Run', arguments: [node] };
        return item;
      }
      case 'step': {
        const item = new vscode.TreeItem(node.name);
        item.id = `step:${node.storeRoot}/${node.runId}/${node.name}`;
        item.iconPath = statusIcon(node.status);
        const metrics = Object.entries(node.metrics ?? {}).map(([k, v]) => `${k}=${fmt(v)}`).join(' ');
        item.description = `${node.status}${node.durationMs !== undefined && node.status !== 'cached' ? ` · ${formatMs(node.durationMs)}` : ''}${metrics ? ` · ${metrics}` : ''}`;
        item.tooltip = node.error ?? undefined;
        item.contextValue = 'step';
        item.command = { command: 'mlpipeline.openRunLogs', title: 'Open Logs', arguments: [{ runId: node.runId, storeRoot: node.storeRoot, step: node.name }] };
        return item;
      }
    }
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.dispose();
    for (const s of this.subs) s.dispose();
    this.emitter.dispose();
  }
}

function runTooltip(s: RunSummary): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  md.isTrusted = false;
  md.appendMarkdown(`**Run \`${s.id}\`** $(${STATUS_ICON[s.status]?.[0]?.replace('~spin', '') ?? 'question'}) ${s.status}\n\n`);
  if (s.label) md.appendText(`label: ${s.label}\n\n`);
  md.appendMarkdown(`spec \`${s.specName}\` · started ${new Date(s.startedAt).toLocaleString()}`);
  if (s.finishedAt) md.appendMarkdown(` · took ${formatMs(Date.parse(s.finishedAt) - Date.parse(s.startedAt))}`);
  if (s.gitCommit) md.appendMarkdown(` · commit \`${s.gitCommit.slice(0, 8)}\``);
  md.appendMarkdown('\n\n');
  const table = (title: string, rows: [string, unknown][]): void => {
    if (!rows.length) return;
    md.appendMarkdown(`| ${title} | |\n|---|---|\n`);
    for (const [k, v] of rows) md.appendMarkdown(`| ${escapeCell(k)} | ${escapeCell(fmt(v))} |\n`);
    md.appendMarkdown('\n');
  };
  table('param', Object.entries(s.params));
  table('metric', Object.entries(s.metrics));
  return md;
}

function escapeCell(s: string): string {
  return s.replace(/[|\\`*_[\]<>]/g, (c) => `\\${c}`).replace(/\n/g, ' ');
}

export function fmt(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  return String(v);
}

/** Every run node under the view's roots (for pickers and tests). */
export async function allRunNodes(provider: RunsProvider): Promise<Extract<RunsNode, { kind: 'run' }>[]> {
  const out: Extract<RunsNode, { kind: 'run' }>[] = [];
  for (const n of await provider.getChildren()) {
    if (n.kind === 'run') out.push(n);
    else if (n.kind === 'spec') for (const c of await provider.getChildren(n)) if (c.kind === 'run') out.push(c);
  }
  return out;
}

export function specFolderName(spec: vscode.Uri): string {
  return path.basename(path.dirname(spec.fsPath));
}

export type { RunRecord };
