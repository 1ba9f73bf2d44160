import * as vscode from 'vscode';
import { LanguageClientHost } from './language-client';
import { EXPERIMENTS_PANEL, ExperimentsPanel } from './panels/experiments-panel';
import { LINEAGE_PANEL, LineagePanel } from './panels/lineage-panel';
import { SERVING_PANEL, ServingPanel } from './panels/serving-panel';
import { PanelRegistry } from './panels/panel-host';
import { RunController } from './run-controller';
import { RUN_SCHEME, RunDocumentProvider } from './run-documents';
import { SpecIndex } from './specs';
import { ComputeProvider, DatasetsProvider } from './views/spec-views';
import { RunsProvider } from './views/runs';

const TARGET_KEY = 'mlpipeline.activeTarget';

/**
 * The one object every command and view gets: the extension context, the language client, the run
 * controller, the views' providers and the status bar. Cheap to build (nothing heavy is loaded here).
 */
export class Ctx implements vscode.Disposable {
  readonly specs = new SpecIndex();
  readonly languageClient: LanguageClientHost;
  readonly runs: RunController;
  readonly runsProvider: RunsProvider;
  readonly computeProvider: ComputeProvider;
  readonly datasetsProvider: DatasetsProvider;
  readonly documents = new RunDocumentProvider();
  readonly statusBar: vscode.StatusBarItem;
  readonly runsView: vscode.TreeView<unknown>;
  /** Webview panels: one registry each (create or reveal, restore after reload). */
  readonly experiments: PanelRegistry<ExperimentsPanel>;
  readonly lineage: PanelRegistry<LineagePanel>;
  readonly serving: PanelRegistry<ServingPanel>;

  constructor(readonly extension: vscode.ExtensionContext) {
    this.languageClient = new LanguageClientHost(extension);
    this.runs = new RunController(extension.secrets, this.languageClient, () => this.target);
    this.runsProvider = new RunsProvider(this.specs, this.runs);
    this.computeProvider = new ComputeProvider(this.specs, () => this.target);
    this.datasetsProvider = new DatasetsProvider(this.specs);
    this.runsView = vscode.window.createTreeView('mlpipeline.runs', { treeDataProvider: this.runsProvider, canSelectMany: true, showCollapseAll: true }) as vscode.TreeView<unknown>;
    this.statusBar = vscode.window.createStatusBarItem('mlpipeline.status', vscode.StatusBarAlignment.Left, 50);
    this.statusBar.name = 'ML Pipeline';
    this.statusBar.command = 'mlpipeline.selectComputeTarget';
    this.experiments = new PanelRegistry(extension, EXPERIMENTS_PANEL, (panel) => new ExperimentsPanel(this, panel));
    this.lineage = new PanelRegistry(extension, LINEAGE_PANEL, (panel) => new LineagePanel(this, panel));
    this.serving = new PanelRegistry(extension, SERVING_PANEL, (panel) => new ServingPanel(this, panel));
    extension.subscriptions.push(
      this,
      this.specs,
      this.languageClient,
      this.runs,
      this.runsProvider,
      this.computeProvider,
      this.datasetsProvider,
      this.documents,
      this.runsView,
      this.statusBar,
      vscode.window.registerTreeDataProvider('mlpipeline.compute', this.computeProvider),
      vscode.window.registerTreeDataProvider('mlpipeline.datasets', this.datasetsProvider),
      vscode.workspace.registerTextDocumentContentProvider(RUN_SCHEME, this.documents),
      this.runs.onDidChange(() => this.updateStatusBar()),
      this.specs.onDidChange(() => this.updateStatusBar()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('mlpipeline.runs.storeLocation')) this.runsProvider.refresh();
        if (e.affectsConfiguration('mlpipeline.run.defaultTarget')) this.updateStatusBar();
      }),
    );
    this.updateStatusBar();
  }

  /** The compute target chosen with Select Compute Target (this workspace), else `mlpipeline.run.defaultTarget`. */
  get target(): string | undefined {
    return this.extension.workspaceState.get<string>(TARGET_KEY) || vscode.workspace.getConfiguration('mlpipeline').get<string>('run.defaultTarget')?.trim() || undefined;
  }

  async setTarget(name: string | undefined): Promise<void> {
    await this.extension.workspaceState.update(TARGET_KEY, name);
    this.updateStatusBar();
    this.computeProvider.refresh();
  }

  updateStatusBar(): void {
    const n = this.runs.running.length;
    void vscode.commands.executeCommand('setContext', 'mlpipeline.hasLiveRuns', n > 0);
    this.statusBar.text = `$(server-environment) ${this.target ?? 'default target'}${n ? `  $(sync~spin) ${n} running` : ''}`;
    this.statusBar.tooltip = `ML Pipeline: runs go to ${this.target ? `compute target "${this.target}"` : "each spec's default compute target"}${n ? `; ${n} run${n > 1 ? 's' : ''} running in this window` : ''}. Click to choose the target.`;
    void this.specs.all().then((specs) => {
      if (specs.length > 0 || n > 0) this.statusBar.show();
      else this.statusBar.hide();
      void vscode.commands.executeCommand('setContext', 'mlpipeline.hasSpecs', specs.length > 0);
    });
  }

  dispose(): void {
    // Each part is disposed through extension.subscriptions.
  }
}
