// Imported first: its body is the first code of the bundle that runs (activation time starts here).
import { moduleLoadedAt } from './load-time';
import * as vscode from 'vscode';
import { COMMANDS, registerCommands } from './commands';
import { Ctx } from './ctx';
import type { RunController } from './run-controller';
import { isSpecDocument, SPEC_PATTERNS } from './specs';
import type { ComputeProvider, DatasetsProvider } from './views/spec-views';
import type { RunsProvider } from './views/runs';

export { SPEC_PATTERNS };

/** What activate() returns: for tests and for other extensions. */
export interface MlPipelineApi {
  runsProvider: RunsProvider;
  computeProvider: ComputeProvider;
  datasetsProvider: DatasetsProvider;
  runs: RunController;
  /** Ids of the registered commands. */
  commands: string[];
  /**
   * Our share of activation, in ms: evaluating this bundle's eagerly loaded modules plus the activate()
   * call itself. The extension host's own work between the two (it creates the ExtensionContext and its
   * storages) is not ours, and is in `loadToActivatedMs`.
   */
  activationMs: number;
  /** Wall clock from this module's first line to the end of activate(), the host's work between included. */
  loadToActivatedMs: number;
  /** Evaluating the modules (module load to the end of this file's top level). */
  moduleEvalMs: number;
  /** The activate() call. */
  activateCallMs: number;
}

let ctx: Ctx | undefined;

/**
 * Activation stays cheap: commands, views and the status bar are registered, nothing heavy is loaded.
 * The language server starts when a spec is first opened; the run engine, the run store, the YAML
 * parser and vscode-languageclient are loaded with dynamic imports when first needed.
 */
export function activate(context: vscode.ExtensionContext): MlPipelineApi {
  const called = performance.now();
  try {
    ctx = new Ctx(context);
    registerCommands(ctx);
    const c = ctx;
    const startIfSpec = (doc: vscode.TextDocument): void => {
      if (!c.languageClient.running && isSpecDocument(doc)) void c.languageClient.start().catch(() => undefined);
    };
    vscode.workspace.textDocuments.forEach(startIfSpec);
    context.subscriptions.push(vscode.workspace.onDidOpenTextDocument(startIfSpec));
    const end = performance.now();
    const moduleEvalMs = moduleEvaluatedAt - moduleLoadedAt;
    const activateCallMs = end - called;
    return {
      runsProvider: c.runsProvider,
      computeProvider: c.computeProvider,
      datasetsProvider: c.datasetsProvider,
      runs: c.runs,
      commands: Object.keys(COMMANDS),
      activationMs: moduleEvalMs + activateCallMs,
      loadToActivatedMs: end - moduleLoadedAt,
      moduleEvalMs,
      activateCallMs,
    };
  } catch (e) {
    void vscode.window.showErrorMessage(`ML Pipeline failed to activate: ${(e as Error).message}`);
    throw e;
  }
}

export async function deactivate(): Promise<void> {
  await ctx?.languageClient.stop();
  ctx = undefined;
}

// The last top-level statement of the bundle's entry: every eagerly imported module has been evaluated.
const moduleEvaluatedAt = performance.now();
