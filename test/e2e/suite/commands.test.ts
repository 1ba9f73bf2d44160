// The extension's commands, runs and views in the real extension host: commands registered, activation
// time, the sample pipeline run from a command (recorded in the run store, shown in the Runs view),
// Cancel Run on a long step, unsaved edits in the plan, and Workspace Trust (the suite also runs with
// --untrusted: running is refused with a message, validation and past runs still work).
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { MlPipelineApi } from '../../../client/src/extension';
import type { LaunchResult } from '../../../client/src/run-controller';
import type { RunRecord } from '../../../client/src/runtime/records';
import { RunStore } from '../../../client/src/runtime/run-store';
import { allRunNodes } from '../../../client/src/views/runs';
import { waitFor } from './util';

const EXTENSION_ID = 'mlpipeline.mlpipeline';
/** The sample's files that the run needs (copied into the workspace, so the repository stays clean). */
const SAMPLE_FILES = ['mlpipeline.yaml', 'data/churn.csv', 'src/prepare.py', 'src/train.py', 'src/evaluate.py'];

function workspaceRoot(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'a workspace folder must be open');
  return folder.uri.fsPath;
}

function readRecord(storeRoot: string, id: string): RunRecord {
  return JSON.parse(fs.readFileSync(path.join(storeRoot, id, 'run.json'), 'utf8')) as RunRecord;
}

describe('ML Pipeline commands, runs and views (e2e)', function () {
  this.timeout(120_000);
  let api: MlPipelineApi;
  let churn: vscode.Uri;

  before(async () => {
    const ext = vscode.extensions.getExtension<MlPipelineApi>(EXTENSION_ID);
    assert.ok(ext, `extension ${EXTENSION_ID} is not installed in the extension host`);
    api = await ext.activate();
    const dir = path.join(workspaceRoot(), 'churn');
    for (const f of SAMPLE_FILES) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.copyFileSync(path.join(ext.extensionPath, 'samples/churn-local', f), path.join(dir, f));
    }
    churn = vscode.Uri.file(path.join(dir, 'mlpipeline.yaml'));
    await vscode.commands.executeCommand('mlpipeline.refreshRuns');
  });

  afterEach(async () => {
    for (const doc of vscode.workspace.textDocuments) {
      if (doc.isDirty && doc.uri.scheme === 'file') {
        await vscode.window.showTextDocument(doc);
        await vscode.commands.executeCommand('workbench.action.files.revert');
      }
    }
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('registers every contributed command and activates in at most 150 ms (target 50 ms: bench/activation.ts)', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const contributed = (ext.packageJSON.contributes.commands as { command: string }[]).map((c) => c.command);
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const id of contributed) assert.ok(registered.has(id), `command ${id} is contributed but not registered`);
    assert.deepStrictEqual([...api.commands].sort(), [...contributed].sort(), 'the command table and package.json list the same commands');
    for (const id of ['mlpipeline.runPipeline', 'mlpipeline.runStep', 'mlpipeline.runSweep', 'mlpipeline.cancelRun', 'mlpipeline.openRunLogs', 'mlpipeline.validateWorkspace', 'mlpipeline.selectComputeTarget', 'mlpipeline.setSecret', 'mlpipeline.refreshRuns']) {
      assert.ok(contributed.includes(id), `${id} is contributed`);
    }
    console.log(
      `mlpipeline-e2e: activation ${api.activationMs.toFixed(2)} ms (module evaluation ${api.moduleEvalMs.toFixed(2)} ms + activate() ${api.activateCallMs.toFixed(2)} ms); ` +
        `module load to the end of activate() ${api.loadToActivatedMs.toFixed(2)} ms wall clock, the extension host's own work in between included`,
    );
    // The <= 50 ms target is the bench's (bench/activation.ts, median of three hosts on a quiet machine): one
    // activation under CI load measured 51.6 ms where the next took 23.4. This bound, three times the target,
    // catches a gross regression without failing on load.
    assert.ok(api.activationMs <= 150, `activation took ${api.activationMs.toFixed(1)} ms, more than 150 ms`);
  });

  it('validates the workspace (trusted or not) and counts the known error', async () => {
    const result = (await vscode.commands.executeCommand('mlpipeline.validateWorkspace')) as { specs: number; errors: number };
    assert.ok(result.specs >= 3, `found ${result.specs} specs`);
    assert.ok(result.errors >= 1, 'the root mlpipeline.yaml has MLP020 (needs: [nope])');
  });

  it('shows compute targets and datasets of the specs', async () => {
    const roots = await api.computeProvider.getChildren();
    const group = roots.find((n) => (n as { spec?: vscode.Uri }).spec?.fsPath === churn.fsPath);
    assert.ok(group, 'the churn spec has a group in Compute Targets');
    const targets = await api.computeProvider.getChildren(group);
    const local = targets.find((t) => (t as { name?: string }).name === 'local');
    assert.ok(local, 'the local target is listed');
    const facts = await api.computeProvider.getChildren(local);
    assert.ok(facts.some((f) => (f as { label?: string }).label === 'CPU'), 'the local target lists the CPU');
    const dsGroup = (await api.datasetsProvider.getChildren()).find((n) => (n as { spec?: vscode.Uri }).spec?.fsPath === churn.fsPath);
    const datasets = await api.datasetsProvider.getChildren(dsGroup);
    assert.ok(datasets.some((d) => (d as { name?: string }).name === 'raw'), 'dataset raw is listed');
  });

  describe('in a trusted workspace', () => {
    before(function () {
      if (!vscode.workspace.isTrusted) this.skip();
    });

    it('runs the sample pipeline from a command: recorded in the run store and shown in the Runs view', async () => {
      const result = (await vscode.commands.executeCommand('mlpipeline.runPipeline', churn)) as LaunchResult | undefined;
      assert.ok(result, 'the command returns the run');
      assert.strictEqual(result.status, 'succeeded', `run ${result.runId}: ${result.record?.error ?? ''}`);
      assert.strictEqual(result.storeRoot, path.join(path.dirname(churn.fsPath), '.mlpipeline', 'runs'));
      const record = readRecord(result.storeRoot, result.runId);
      assert.strictEqual(record.status, 'succeeded');
      assert.deepStrictEqual(Object.keys(record.steps), ['prepare', 'train', 'evaluate']);
      assert.ok((record.steps.evaluate.metrics?.auc ?? 0) > 0.5, 'evaluate wrote its AUC');
      const node = await waitFor('the run in the Runs view', async () => (await allRunNodes(api.runsProvider)).find((n) => n.summary.id === result.runId && n.summary.status === 'succeeded'));
      const item = api.runsProvider.getTreeItem(node);
      assert.strictEqual((item.iconPath as vscode.ThemeIcon).id, 'pass-filled');
      assert.match(String(item.contextValue), /^run\.succeeded$/);
      const steps = await api.runsProvider.getChildren(node);
      assert.deepStrictEqual(steps.map((s) => (s.kind === 'step' ? `${s.name}:${s.status}` : '?')), ['prepare:succeeded', 'train:succeeded', 'evaluate:succeeded']);
      // The details document (`mlpipeline show`) of the run.
      const doc = (await vscode.commands.executeCommand('mlpipeline.openRun', node)) as vscode.TextDocument;
      assert.match(doc.getText(), new RegExp(`Run ${result.runId}\\s+succeeded`));
    });

    it('runs one step with Run Step... and compares two runs', async () => {
      const result = (await vscode.commands.executeCommand('mlpipeline.runStep', churn, 'prepare')) as LaunchResult;
      assert.strictEqual(result.status, 'succeeded');
      const record = readRecord(result.storeRoot, result.runId);
      assert.deepStrictEqual(Object.keys(record.steps), ['prepare'], 'only the step and what it needs');
      assert.strictEqual(record.steps.prepare.status, 'cached', 'inputs unchanged since the full run');
      const nodes = (await allRunNodes(api.runsProvider)).filter((n) => n.spec.fsPath === churn.fsPath);
      assert.ok(nodes.length >= 2, 'both churn runs are in the Runs view');
      const doc = (await vscode.commands.executeCommand('mlpipeline.compareRuns', nodes[0], nodes.slice(0, 2))) as vscode.TextDocument;
      assert.match(doc.getText(), /# Compare 2 runs/);
      assert.match(doc.getText(), /metrics\.evaluate\.auc/);
    });

    it('plans from the open document: unsaved edits count', async () => {
      const uri = vscode.Uri.file(path.join(workspaceRoot(), 'quick', 'mlpipeline.yaml'));
      const doc = await vscode.workspace.openTextDocument(uri);
      await vscode.window.showTextDocument(doc);
      const at = doc.getText().indexOf('from the saved file');
      const edit = new vscode.WorkspaceEdit();
      edit.replace(uri, new vscode.Range(doc.positionAt(at), doc.positionAt(at + 'from the saved file'.length)), 'from the unsaved editor');
      assert.ok(await vscode.workspace.applyEdit(edit));
      assert.ok(doc.isDirty);
      const result = (await vscode.commands.executeCommand('mlpipeline.runPipeline', uri)) as LaunchResult;
      assert.strictEqual(result.status, 'succeeded');
      const record = readRecord(result.storeRoot, result.runId);
      assert.strictEqual(record.steps.hello.command, 'echo hello from the unsaved editor');
      // 'server' once server.ts registers mlpipeline/runPlan; the in-process fallback plans from the same text.
      console.log(`mlpipeline-e2e: the plan came from ${api.runs.lastPlanVia === 'server' ? 'the language server (mlpipeline/runPlan)' : 'the in-process fallback'}`);
      const log = fs.readFileSync(new RunStore(result.storeRoot).logPath(result.runId, 'hello'), 'utf8');
      assert.match(log, /hello from the unsaved editor/);
    });

    it('cancels a long-running step with Cancel Run', async () => {
      const uri = vscode.Uri.file(path.join(workspaceRoot(), 'slow', 'mlpipeline.yaml'));
      const started = Date.now();
      const pending = vscode.commands.executeCommand('mlpipeline.runPipeline', uri) as Thenable<LaunchResult>;
      const live = await waitFor('the run to start its step', () => api.runs.running.find((r) => r.runId && r.current === 'wait'));
      const node = await waitFor('the running run in the Runs view', async () => (await allRunNodes(api.runsProvider)).find((n) => n.summary.id === live.runId && n.summary.status === 'running'));
      assert.match(String(api.runsProvider.getTreeItem(node).contextValue), /\.live$/, 'a run of this window can be cancelled from the view');
      assert.strictEqual(await vscode.commands.executeCommand('mlpipeline.cancelRun'), true);
      const result = await pending;
      assert.strictEqual(result.status, 'cancelled');
      assert.ok(Date.now() - started < 30_000, 'the sleep 60 step was stopped, not waited for');
      const record = readRecord(result.storeRoot, result.runId);
      assert.strictEqual(record.status, 'cancelled');
      assert.strictEqual(record.steps.wait.status, 'cancelled');
      await waitFor('the cancelled run in the Runs view', async () => (await allRunNodes(api.runsProvider)).find((n) => n.summary.id === result.runId && n.summary.status === 'cancelled'));
      assert.strictEqual(api.runs.running.length, 0);
    });
  });

  describe('in Restricted Mode', () => {
    before(function () {
      if (vscode.workspace.isTrusted) this.skip();
    });

    it('refuses to run, with the message, and records nothing', async () => {
      const result = (await vscode.commands.executeCommand('mlpipeline.runPipeline', churn)) as { refused?: string; message?: string };
      assert.strictEqual(result?.refused, 'untrusted');
      assert.match(String(result.message), /trusted workspace/);
      for (const id of ['mlpipeline.runStep', 'mlpipeline.runSweep', 'mlpipeline.rerun']) {
        assert.strictEqual(((await vscode.commands.executeCommand(id, churn)) as { refused?: string })?.refused, 'untrusted', `${id} is refused`);
      }
      assert.ok(!fs.existsSync(path.join(path.dirname(churn.fsPath), '.mlpipeline', 'runs')), 'no run store was created');
    });

    it('still shows past runs in the Runs view', async () => {
      const storeRoot = path.join(workspaceRoot(), 'slow', '.mlpipeline', 'runs');
      const store = new RunStore(storeRoot, { durable: false });
      const id = store.newRunId();
      const writer = await store.create({ schema: 1, id, spec: { path: path.join(workspaceRoot(), 'slow', 'mlpipeline.yaml'), name: 'e2e-slow', hash: '0'.repeat(64) }, status: 'running', startedAt: new Date().toISOString(), params: {}, git: null, target: 'local', steps: {}, lineage: [] });
      await writer.finish('succeeded');
      await vscode.commands.executeCommand('mlpipeline.refreshRuns');
      await waitFor('the recorded run in the Runs view', async () => (await allRunNodes(api.runsProvider)).find((n) => n.summary.id === id && n.summary.status === 'succeeded'));
    });
  });
});
