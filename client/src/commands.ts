import * as vscode from 'vscode';
import type { Ctx } from './ctx';
import { secretKey, type LaunchResult, type LiveRun } from './run-controller';
import { runDocumentUri } from './run-documents';
import { readSpecInfo } from './specs';
import { refuseUntrusted } from './trust';
import { allRunNodes, openStore, type RunsNode } from './views/runs';
import { DEPLOYMENT_COMMANDS } from './views/deployments';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Cmd = (...args: any[]) => unknown;

/**
 * A command is a factory from the context to its handler (the rust-analyzer editors/code style).
 * `trusted` names what the command would start: in Restricted Mode it is refused with a message
 * instead (the palette already hides it through `isWorkspaceTrusted`).
 */
export interface CommandFactory {
  run: (ctx: Ctx) => Cmd;
  trusted?: string;
}

type RunNode = Extract<RunsNode, { kind: 'run' }>;
/** A run as commands receive it: a Runs view node, or `{ runId, storeRoot }` (toasts, tests). */
type RunRef = RunNode | { runId: string; storeRoot: string; step?: string };

const refOf = (a: unknown): { runId: string; storeRoot: string; step?: string; spec?: vscode.Uri } | undefined => {
  const n = a as RunRef | undefined;
  if (!n || typeof n !== 'object') return undefined;
  if ('kind' in n && n.kind === 'run') return { runId: n.summary.id, storeRoot: n.storeRoot, spec: n.spec };
  if ('runId' in n && typeof n.runId === 'string' && typeof n.storeRoot === 'string') return n;
  return undefined;
};

/** The spec a command is about: a Uri (menus), a tree node with `spec`, or a URI string (code lenses). */
const uriOf = (a: unknown): vscode.Uri | undefined => {
  if (a instanceof vscode.Uri) return a;
  if ((a as { spec?: unknown })?.spec instanceof vscode.Uri) return (a as { spec: vscode.Uri }).spec;
  if (typeof a === 'string' && /^(file|untitled):/.test(a)) return vscode.Uri.parse(a);
  return undefined;
};

/** A run from the Runs view, picked by the user. */
async function pickRun(ctx: Ctx, title: string, exclude?: string): Promise<RunNode | undefined> {
  const nodes = (await allRunNodes(ctx.runsProvider)).filter((n) => n.summary.id !== exclude);
  if (nodes.length === 0) {
    void vscode.window.showInformationMessage('ML Pipeline: there are no recorded runs yet.');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    nodes.map((n) => ({ label: n.summary.label ?? n.summary.id, description: `${n.summary.status} · ${n.summary.specName}`, detail: Object.entries(n.summary.params).map(([k, v]) => `${k}=${v}`).join(' '), node: n })),
    { title: `ML Pipeline: ${title}`, matchOnDescription: true, matchOnDetail: true },
  );
  return picked?.node;
}

const runPipeline = (ctx: Ctx): Cmd => async (arg?: unknown): Promise<LaunchResult | undefined> => {
  const spec = uriOf(arg) ?? (await ctx.specs.pick('Run Pipeline'));
  return spec ? ctx.runs.launch(spec) : undefined;
};

const runStep = (ctx: Ctx): Cmd => async (arg?: unknown, step?: string): Promise<LaunchResult | undefined> => {
  const spec = uriOf(arg) ?? (await ctx.specs.pick('Run Step'));
  if (!spec) return undefined;
  let name = typeof step === 'string' ? step : undefined;
  if (!name) {
    const info = await readSpecInfo(spec);
    name = await vscode.window.showQuickPick(info.steps, { title: 'ML Pipeline: Run Step', placeHolder: 'Which step? The steps it depends on run too (or are reused from the cache).' });
  }
  return name ? ctx.runs.launch(spec, { only: [name] }) : undefined;
};

const runSweep = (ctx: Ctx): Cmd => async (arg?: unknown, sweep?: string) => {
  const spec = uriOf(arg) ?? (await ctx.specs.pick('Run Sweep'));
  if (!spec) return undefined;
  let name = typeof sweep === 'string' ? sweep : undefined;
  if (!name) {
    const info = await readSpecInfo(spec);
    const items = Object.entries(info.sweeps).map(([label, s]) => ({ label, description: s.step ? `step ${s.step}` : undefined, detail: s.description }));
    if (items.length === 0) {
      void vscode.window.showInformationMessage(`ML Pipeline: ${vscode.workspace.asRelativePath(spec)} defines no sweeps (\`sweeps:\`).`);
      return undefined;
    }
    name = (await vscode.window.showQuickPick(items, { title: 'ML Pipeline: Run Sweep' }))?.label;
  }
  if (!name) return undefined;
  const { runSweep: sweepRunner } = await import('./sweep-runner');
  return sweepRunner(ctx.runs, spec, name);
};

const cancelRun = (ctx: Ctx): Cmd => async (arg?: unknown): Promise<boolean> => {
  const ref = refOf(arg);
  let run: LiveRun | undefined = ref ? ctx.runs.findLive(ref.runId) : undefined;
  if (!run) {
    const live = ctx.runs.running;
    if (ref || live.length === 0) {
      void vscode.window.showInformationMessage(ref ? `ML Pipeline: run ${ref.runId} is not running in this window.` : 'ML Pipeline: no run is running in this window.');
      return false;
    }
    run = live.length === 1 ? live[0] : (await vscode.window.showQuickPick(live.map((r) => ({ label: r.runId ?? '(starting)', description: `${r.specName} · ${r.done}/${r.total} steps`, run: r })), { title: 'ML Pipeline: Cancel Run' }))?.run;
  }
  if (!run) return false;
  ctx.runs.cancel(run);
  return true;
};

const openRunLogs = (ctx: Ctx): Cmd => async (arg?: unknown) => {
  const ref = refOf(arg) ?? (await pickRun(ctx, 'Open Run Logs').then((n) => refOf(n)));
  if (!ref) return undefined;
  const channel = ref.step ? undefined : ctx.runs.channelOf(ref.runId);
  if (channel) {
    channel.show(true);
    return channel.name;
  }
  const doc = await vscode.workspace.openTextDocument(runDocumentUri({ view: 'logs', storeRoot: ref.storeRoot, runId: ref.runId, ...(ref.step ? { step: ref.step } : {}) }));
  await vscode.window.showTextDocument(doc, { preview: true });
  return doc.uri.toString();
};

const openRun = (ctx: Ctx): Cmd => async (arg?: unknown) => {
  const ref = refOf(arg) ?? (await pickRun(ctx, 'Open Run').then((n) => refOf(n)));
  if (!ref) return undefined;
  const doc = await vscode.workspace.openTextDocument(runDocumentUri({ view: 'show', storeRoot: ref.storeRoot, runId: ref.runId }));
  await vscode.window.showTextDocument(doc, { preview: true });
  return doc;
};

const compareRuns = (ctx: Ctx): Cmd => async (arg?: unknown, selected?: unknown[]) => {
  const refs = (Array.isArray(selected) ? selected : [arg]).map(refOf).filter((r): r is NonNullable<typeof r> => !!r);
  if (refs.length < 2) {
    const first = refs[0] ?? refOf(await pickRun(ctx, 'Compare Runs: first run'));
    if (!first) return undefined;
    const second = refOf(await pickRun(ctx, `Compare ${first.runId} with`, first.runId));
    if (!second) return undefined;
    refs.splice(0, refs.length, first, second);
  }
  const doc = await vscode.workspace.openTextDocument(runDocumentUri({ view: 'compare', runs: refs.map((r) => ({ runId: r.runId, storeRoot: r.storeRoot })) }));
  await Promise.resolve(vscode.languages.setTextDocumentLanguage(doc, 'markdown')).catch(() => doc);
  await vscode.window.showTextDocument(doc, { preview: true });
  return doc;
};

const rerun = (ctx: Ctx): Cmd => async (arg?: unknown): Promise<LaunchResult | undefined> => {
  const node = arg && (arg as RunsNode).kind === 'run' ? (arg as RunNode) : await pickRun(ctx, 'Rerun');
  if (!node) return undefined;
  const record = await (await openStore(node.storeRoot)).get(node.summary.id);
  if (!record) {
    void vscode.window.showErrorMessage(`ML Pipeline: run ${node.summary.id} could not be read.`);
    return undefined;
  }
  const info = await readSpecInfo(node.spec);
  const steps = Object.keys(record.steps).filter((s) => info.steps.includes(s));
  const overrides = Object.fromEntries(Object.entries(record.params).map(([k, v]) => [k, String(v)]));
  return ctx.runs.launch(node.spec, { overrides, ...(steps.length && steps.length < info.steps.length ? { only: steps } : {}), label: record.label ?? `rerun of ${record.id}` });
};

const deleteRun = (ctx: Ctx): Cmd => async (arg?: unknown, selected?: unknown[]): Promise<number> => {
  const nodes = (Array.isArray(selected) && selected.length ? selected : [arg]).filter((n): n is RunNode => (n as RunsNode)?.kind === 'run');
  if (nodes.length === 0) return 0;
  if (nodes.some((n) => ctx.runs.findLive(n.summary.id))) {
    void vscode.window.showWarningMessage('ML Pipeline: a run that is still running cannot be deleted; cancel it first.');
    return 0;
  }
  const what = nodes.length === 1 ? `run ${nodes[0].summary.id}` : `${nodes.length} runs`;
  if (vscode.workspace.getConfiguration('mlpipeline').get<boolean>('runs.confirmDelete') !== false) {
    const ok = await vscode.window.showWarningMessage(`Delete ${what}? Its record and logs are removed from the run store; this cannot be undone.`, { modal: true }, 'Delete');
    if (ok !== 'Delete') return 0;
  }
  let deleted = 0;
  for (const n of nodes) {
    try {
      if (await (await openStore(n.storeRoot)).delete(n.summary.id)) deleted++;
    } catch (e) {
      void vscode.window.showErrorMessage(`ML Pipeline: ${(e as Error).message}`);
    }
  }
  ctx.runsProvider.refresh();
  return deleted;
};

const validateWorkspace = (ctx: Ctx): Cmd => async (): Promise<{ specs: number; errors: number; warnings: number }> => {
  const specs = await ctx.specs.all();
  if (specs.length === 0) {
    void vscode.window.showInformationMessage('ML Pipeline: there is no mlpipeline.yaml in this workspace.');
    return { specs: 0, errors: 0, warnings: 0 };
  }
  // Opening each spec hands it to the language server, so its problems appear in the Problems panel; the
  // counts come from the same analysis in process (same function, same text: identical problems).
  void ctx.languageClient.start().catch(() => undefined);
  const { analyzeSpec } = await import('../../server/src/core/validate');
  let errors = 0;
  let warnings = 0;
  for (const s of specs) {
    const doc = await vscode.workspace.openTextDocument(s);
    const maxKiB = vscode.workspace.getConfiguration('mlpipeline', s).get<number>('validation.maxFileSize') ?? 2048;
    for (const p of analyzeSpec(doc.getText(), { limits: { maxBytes: maxKiB * 1024 }, unusedHints: false }).problems) {
      if (p.severity === 'error') errors++;
      else if (p.severity === 'warning') warnings++;
    }
  }
  const msg = `ML Pipeline: validated ${specs.length} spec${specs.length > 1 ? 's' : ''}: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}.`;
  if (errors || warnings) {
    void vscode.window.showWarningMessage(msg, 'Show Problems').then((c) => c && vscode.commands.executeCommand('workbench.actions.view.problems'));
  } else void vscode.window.showInformationMessage(msg);
  return { specs: specs.length, errors, warnings };
};

const selectComputeTarget = (ctx: Ctx): Cmd => async (name?: string): Promise<string | undefined> => {
  if (typeof name === 'string') {
    await ctx.setTarget(name || undefined);
    return ctx.target;
  }
  const spec = await ctx.specs.pick('Select Compute Target');
  const info = spec ? await readSpecInfo(spec) : undefined;
  const targets = Object.entries(info?.compute ?? {});
  if (!targets.some(([n]) => n === 'local')) targets.push(['local', { type: 'local' }]);
  const current = ctx.target;
  const items: (vscode.QuickPickItem & { value: string | undefined })[] = [
    { label: `${current ? '' : '$(check) '}Spec default`, description: 'each spec\'s `default: true` target, else local', value: undefined },
    ...targets.map(([n, t]) => ({ label: `${current === n ? '$(check) ' : ''}${n}`, description: `${t.type}${t.default ? ' · default' : ''}`, detail: t.description, value: n })),
  ];
  const picked = await vscode.window.showQuickPick(items, { title: 'ML Pipeline: Select Compute Target', placeHolder: 'Steps that name no compute target run here' });
  if (!picked) return current;
  await ctx.setTarget(picked.value);
  return ctx.target;
};

const setSecret = (ctx: Ctx): Cmd => async (name?: string, value?: string): Promise<boolean> => {
  if (typeof name !== 'string' || !name) {
    const names = new Set<string>();
    for (const s of await ctx.specs.all()) for (const n of (await readSpecInfo(s)).secrets) names.add(n);
    const other = '$(edit) Another name…';
    const picked = await vscode.window.showQuickPick([...[...names].sort(), other], { title: 'ML Pipeline: Set Secret', placeHolder: 'Which secret? (names from `secrets:` in the specs)' });
    if (!picked) return false;
    name = picked === other ? await vscode.window.showInputBox({ title: 'ML Pipeline: secret name', prompt: 'Upper case, like an environment variable', validateInput: (v) => (/^[A-Z_][A-Z0-9_]*$/.test(v) ? undefined : 'Use A-Z, 0-9 and _, starting with a letter or _') }) : picked;
    if (!name) return false;
  }
  if (typeof value !== 'string') {
    value = await vscode.window.showInputBox({ title: `ML Pipeline: value of ${name}`, prompt: 'Kept in VS Code\'s secret storage (the OS keychain); never written to files, logs or run records. Leave empty to remove it.', password: true, ignoreFocusOut: true });
    if (value === undefined) return false;
  }
  if (value === '') await ctx.extension.secrets.delete(secretKey(name));
  else await ctx.extension.secrets.store(secretKey(name), value);
  void vscode.window.showInformationMessage(`ML Pipeline: secret ${name} ${value === '' ? 'removed' : 'saved'}.`);
  return true;
};

/** Getting Started: copies the bundled sample into a workspace folder (never over existing files) and opens its spec. */
const createSamplePipeline = (ctx: Ctx): Cmd => async (arg?: unknown): Promise<string | undefined> => {
  let folder = arg instanceof vscode.Uri ? arg : undefined;
  if (!folder) {
    const folders = vscode.workspace.workspaceFolders ?? [];
    folder = folders.length === 1 ? folders[0].uri : folders.length > 1 ? (await vscode.window.showWorkspaceFolderPick({ placeHolder: 'Where should the sample pipeline go?' }))?.uri : (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Create Sample Here', title: 'ML Pipeline: folder for the sample pipeline' }))?.[0];
  }
  if (!folder) return undefined;
  const { copySample } = await import('./runtime/sample-copy');
  try {
    const made = await copySample(vscode.Uri.joinPath(ctx.extension.extensionUri, 'samples', 'churn-local').fsPath, folder.fsPath);
    const spec = vscode.Uri.file(`${made.folder}/mlpipeline.yaml`);
    ctx.specs.invalidate();
    await vscode.window.showTextDocument(spec);
    void vscode.window.showInformationMessage(`ML Pipeline: sample pipeline created in ${vscode.workspace.asRelativePath(made.folder) || made.folder} (${made.files.length} files). Run it with ▶ in the editor title.`);
    return spec.fsPath;
  } catch (e) {
    void vscode.window.showErrorMessage(`ML Pipeline: could not create the sample pipeline: ${(e as Error).message}`);
    return undefined;
  }
};

/** Opens (or reveals) the Experiments panel; from the Runs view, with the chosen runs selected. Returns the panel host. */
const openExperiments = (ctx: Ctx): Cmd => (arg?: unknown, selected?: unknown[]) => {
  const ids = (Array.isArray(selected) && selected.length ? selected : [arg]).map(refOf).filter((r): r is NonNullable<typeof r> => !!r).map((r) => r.runId);
  const host = ctx.experiments.show();
  if (ids.length) host.select(ids);
  return host;
};

/** Opens (or reveals) the Lineage panel, for the spec the code lens or the editor names. Returns the panel host. */
const openLineage = (ctx: Ctx): Cmd => (arg?: unknown) => {
  const uri = typeof arg === 'string' ? vscode.Uri.parse(arg) : arg instanceof vscode.Uri ? arg : undefined;
  const host = ctx.lineage.show();
  void host.showSpec(uri);
  return host;
};

/** Opens (or reveals) the Serving metrics panel. Returns the panel host. */
const openServingMetrics = (ctx: Ctx): Cmd => () => ctx.serving.show();

const refreshRuns = (ctx: Ctx): Cmd => () => {
  ctx.specs.invalidate();
  ctx.runsProvider.refresh();
  ctx.computeProvider.refresh();
  ctx.datasetsProvider.refresh();
};

/** Every command the extension registers; package.json contributes the same ids. */
export const COMMANDS: Record<string, CommandFactory> = {
  'mlpipeline.runPipeline': { run: runPipeline, trusted: 'The run' },
  'mlpipeline.runStep': { run: runStep, trusted: 'The run' },
  'mlpipeline.runSweep': { run: runSweep, trusted: 'The sweep' },
  'mlpipeline.cancelRun': { run: cancelRun },
  'mlpipeline.openRunLogs': { run: openRunLogs },
  'mlpipeline.validateWorkspace': { run: validateWorkspace },
  'mlpipeline.selectComputeTarget': { run: selectComputeTarget },
  'mlpipeline.setSecret': { run: setSecret },
  'mlpipeline.refreshRuns': { run: refreshRuns },
  'mlpipeline.openExperiments': { run: openExperiments },
  'mlpipeline.openLineage': { run: openLineage },
  'mlpipeline.openServingMetrics': { run: openServingMetrics },
  'mlpipeline.createSamplePipeline': { run: createSamplePipeline },
  // Runs view items (and the finish toast's "Open Run").
  'mlpipeline.openRun': { run: openRun },
  'mlpipeline.compareRuns': { run: compareRuns },
  'mlpipeline.rerun': { run: rerun, trusted: 'The rerun' },
  'mlpipeline.deleteRun': { run: deleteRun },
  // Deployments view and serving (client/src/views/deployments.ts).
  ...DEPLOYMENT_COMMANDS,
};

export function registerCommands(ctx: Ctx): void {
  for (const [id, factory] of Object.entries(COMMANDS)) {
    const handler = factory.run(ctx);
    const guarded: Cmd = factory.trusted ? (...args) => (vscode.workspace.isTrusted ? handler(...args) : refuseUntrusted(factory.trusted!)) : handler;
    ctx.extension.subscriptions.push(vscode.commands.registerCommand(id, guarded));
  }
}

