/**
 * The Lineage panel's host: builds the graph of one spec (client/src/runtime/lineage-graph.ts) from its
 * run store and deployment history, or from the spec itself before anything ran, sends it to the webview,
 * and answers its requests: open a node (spec definition, run logs, file), compare two runs, switch source.
 * The graph's module and the spec analysis load on first use, not at activation.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { isLineageToHost, LINEAGE_VIEW_TYPE, type GraphNode, type HostToLineage, type LineageToHost } from '../../../webviews/src/protocol/lineage';
import type { Ctx } from '../ctx';
import type { DeploymentRecord, RunRecord } from '../runtime/records';
import { storeRootFor } from '../specs';
import { openStore } from '../views/runs';
import { PanelHost, panelLog, type PanelSpec } from './panel-host';

export const LINEAGE_PANEL: PanelSpec<LineageToHost> = { viewType: LINEAGE_VIEW_TYPE, bundle: 'lineage', title: 'Lineage', isWebviewMessage: isLineageToHost };

/** Runs drawn at most (newest first): beyond this the graph is not readable anyway. */
const MAX_RUNS = 800;

export class LineagePanel extends PanelHost<HostToLineage, LineageToHost> {
  private specUri: vscode.Uri | undefined;
  private source: 'runs' | 'spec' = 'runs';
  private nodes = new Map<string, GraphNode>();
  private runs = new Map<string, RunRecord>();
  private reloadTimer: ReturnType<typeof setTimeout> | undefined;
  private watcher: vscode.FileSystemWatcher | undefined;

  constructor(
    private readonly ctx: Ctx,
    panel: vscode.WebviewPanel,
  ) {
    super(ctx.extension.extensionUri, panel, LINEAGE_PANEL);
    this.disposables.push(
      ctx.runs.onDidChange(() => this.scheduleReload()),
      ctx.specs.onDidChange(() => this.scheduleReload()),
      vscode.workspace.onDidSaveTextDocument((d) => {
        if (this.specUri && d.uri.toString() === this.specUri.toString()) this.scheduleReload();
      }),
      { dispose: () => this.watcher?.dispose() },
      { dispose: () => this.reloadTimer && clearTimeout(this.reloadTimer) },
    );
  }

  /** Shows this spec's lineage (the code lens and the command pass the spec; otherwise the active or first one). */
  async showSpec(spec: vscode.Uri | undefined, focus?: string): Promise<void> {
    if (spec && this.specUri?.toString() !== spec.toString()) {
      this.specUri = spec;
      this.source = 'runs';
      await this.reload();
    }
    if (focus) await this.post({ type: 'focus', nodeId: focus });
  }

  /** Whether the graph last sent to the panel has this node (tests wait on it). */
  hasNode(id: string): boolean {
    return this.nodes.has(id);
  }

  protected async onReady(state: unknown): Promise<void> {
    const s = state as { source?: unknown } | undefined;
    if (s && (s.source === 'spec' || s.source === 'runs')) this.source = s.source;
    await this.reload();
  }

  protected async onMessage(m: LineageToHost): Promise<void> {
    switch (m.type) {
      case 'jump':
        return this.jump(m.nodeId);
      case 'diffRuns': {
        const a = this.runs.get(m.a);
        const b = this.runs.get(m.b);
        if (!a || !b) {
          await this.post({ type: 'notice', level: 'error', text: 'One of the runs is no longer in the run store; Refresh and pick again.' });
          return;
        }
        const { diffRuns } = await import('../runtime/lineage-graph');
        await this.post({ type: 'diff', diff: diffRuns(a, b) });
        return;
      }
      case 'setSource':
        this.source = m.source;
        return this.reload();
      case 'refresh':
        return this.reload();
    }
  }

  private scheduleReload(): void {
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = undefined;
      void this.reload().catch((e: unknown) => panelLog().error(`Lineage: ${(e as Error).message}`));
    }, 300);
  }

  private async pickSpec(): Promise<vscode.Uri | undefined> {
    if (this.specUri) return this.specUri;
    const specs = await this.ctx.specs.all();
    const active = vscode.window.activeTextEditor?.document.uri;
    this.specUri = specs.find((s) => s.toString() === active?.toString()) ?? specs[0];
    return this.specUri;
  }

  private async reload(): Promise<void> {
    if (!this.isReady) return;
    const spec = await this.pickSpec();
    if (!spec) {
      await this.post({ type: 'graph', graph: { source: 'spec', nodes: [], edges: [] }, runs: [], specAvailable: false });
      await this.post({ type: 'notice', level: 'info', text: 'No mlpipeline.yaml in this workspace: open a folder with a spec to see its lineage.' });
      return;
    }
    const [{ analyzeSpec }, lg, { deploymentNames }, { readDeploymentRecords }] = await Promise.all([
      import('../../../server/src/core/validate'),
      import('../runtime/lineage-graph'),
      import('../../../server/src/core/deploy-plan'),
      import('../runtime/serving/records-store'),
    ]);
    const text = (await vscode.workspace.openTextDocument(spec)).getText();
    const analysis = analyzeSpec(text);
    const specPath = vscode.workspace.asRelativePath(spec, false);
    const dir = path.dirname(spec.fsPath);
    const root = storeRootFor(spec);
    this.watch(root);

    const records: RunRecord[] = [];
    let omitted = 0;
    const errors: string[] = [];
    try {
      const store = await openStore(root);
      const listed = lg.newestRuns(await store.list(), MAX_RUNS);
      omitted = listed.omitted;
      for (const s of listed.runs) {
        const r = await store.get(s.id).catch(() => undefined);
        if (r) records.push(r);
      }
    } catch (e) {
      errors.push(`The run store at ${root} could not be read: ${(e as Error).message}`);
    }
    const deployments: DeploymentRecord[] = [];
    for (const name of deploymentNames(analysis)) {
      try {
        deployments.push(...readDeploymentRecords(dir, name));
      } catch (e) {
        errors.push(`Deployment history of ${name}: ${(e as Error).message}`);
      }
    }
    this.runs = new Map(records.map((r) => [r.id, r]));
    // Nothing ran yet: the spec's DAG is what there is to show.
    const source = this.source === 'runs' && records.length === 0 ? 'spec' : this.source;
    const graph = source === 'spec' ? lg.graphFromSpec(analysis, specPath) : lg.graphFromRuns(records, { spec: lg.indexSpec(analysis, specPath), deployments });
    this.nodes = new Map(graph.nodes.map((n) => [n.id, n]));
    await this.post({ type: 'graph', graph, runs: records.map((r) => ({ id: r.id, label: r.label, startedAt: r.startedAt })), specAvailable: true, truncated: omitted > 0 });
    if (errors.length) await this.post({ type: 'notice', level: 'error', text: errors.join(' ') });
  }

  private watchedRoot: string | undefined;
  private watch(root: string): void {
    if (this.watchedRoot === root) return;
    this.watcher?.dispose();
    this.watchedRoot = root;
    this.watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(root), '{index.jsonl,*/run.json}'));
    const r = (): void => this.scheduleReload();
    this.watcher.onDidChange(r);
    this.watcher.onDidCreate(r);
    this.watcher.onDidDelete(r);
  }

  /** Opens what a node stands for. The target comes from the host's own graph, never from the webview. */
  private async jump(id: string): Promise<void> {
    const node = this.nodes.get(id);
    if (!node || !this.specUri) {
      panelLog().warn(`Lineage: the panel asked to open a node that is not in the graph (${id.slice(0, 80)}).`);
      return;
    }
    const j = node.jump;
    const dir = path.dirname(this.specUri.fsPath);
    switch (j.kind) {
      case 'spec': {
        const doc = await vscode.workspace.openTextDocument(this.specUri);
        const range = new vscode.Range(j.range.start.line, j.range.start.character, j.range.end.line, j.range.end.character);
        await vscode.window.showTextDocument(doc, { selection: range, viewColumn: vscode.ViewColumn.One });
        return;
      }
      case 'run':
        await vscode.commands.executeCommand(j.step ? 'mlpipeline.openRunLogs' : 'mlpipeline.openRun', { runId: j.runId, storeRoot: storeRootFor(this.specUri), ...(j.step ? { step: j.step } : {}) });
        return;
      case 'file': {
        const file = path.resolve(dir, j.path);
        if (!existsSync(file)) {
          await this.post({ type: 'notice', level: 'error', text: `${j.path} is not there any more (moved, deleted, or written by a run elsewhere).` });
          return;
        }
        const uri = vscode.Uri.file(file);
        const stat = await vscode.workspace.fs.stat(uri);
        if (stat.type & vscode.FileType.Directory) await vscode.commands.executeCommand('revealInExplorer', uri);
        else await vscode.window.showTextDocument(uri, { viewColumn: vscode.ViewColumn.One, preview: true });
        return;
      }
      case 'none':
        return;
    }
  }
}
