// Webview panels inside the real workbench (code-server): the command opens the panel, its bundle loads
// under the real CSP and resource roots and completes the `ready` handshake, it renders the run store's
// runs and reports a selection back (host -> webview -> host round trip).
// Part B adds the Lineage and Serving panels here (same pattern).
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { ExperimentsPanel } from '../../../client/src/panels/experiments-panel';
import type { RunRecord } from '../../../client/src/runtime/records';
import { RunStore } from '../../../client/src/runtime/run-store';
import { waitFor } from './util';

/** A finished run written through the real store API, in the workspace's default run store. */
async function recordRun(storeRoot: string, label: string, auc: number): Promise<string> {
  const store = new RunStore(storeRoot);
  const id = store.newRunId(new Date(Date.now() - Math.floor(Math.random() * 1e6)));
  const record: RunRecord = {
    schema: 1,
    id,
    label,
    spec: { path: 'mlpipeline.yaml', name: 'panels-e2e', hash: '0'.repeat(64) },
    status: 'running',
    startedAt: new Date().toISOString(),
    params: { model: 'xgb', lr: 0.1 },
    git: null,
    target: 'local',
    steps: { train: { status: 'succeeded', command: 'true', attempts: 1, inputs: {}, outputs: {}, metrics: { auc }, log: `${id}/logs/train.log` } },
    lineage: [],
  };
  const writer = await store.create(record);
  await writer.finish('succeeded');
  return id;
}

describe('Panels (e2e)', function () {
  this.timeout(120_000);

  it('Open Experiments shows the run store in a webview that completes the handshake and reports selections', async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'a workspace folder must be open');
    const storeRoot = path.join(folder.uri.fsPath, '.mlpipeline', 'runs');
    fs.mkdirSync(storeRoot, { recursive: true });
    const id = await recordRun(storeRoot, 'panels e2e <b>run</b>', 0.91);

    const host = (await vscode.commands.executeCommand('mlpipeline.openExperiments')) as ExperimentsPanel;
    assert.ok(host && host.panel, 'the command returns the panel host');
    await waitFor('the webview to post ready', async () => (await Promise.race([host.ready.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 500))])) || undefined, 60_000);
    assert.strictEqual(host.panel.viewType, 'mlpipeline.experiments');
    assert.strictEqual(host.panel.title, 'Experiments');

    // Round trip: the host asks the webview to select the run; the webview, once it shows that run, says so.
    host.select([id]);
    const selected = await waitFor('the webview to report the selection', () => host.selection.includes(id) && host.selection, 30_000);
    assert.deepStrictEqual(selected, [id]);
    assert.strictEqual(host.rejectedMessages, 0, 'every message from the webview passed validation');

    // The same command reveals the open panel instead of opening a second one.
    const again = (await vscode.commands.executeCommand('mlpipeline.openExperiments')) as ExperimentsPanel;
    assert.strictEqual(again, host);
    host.dispose();
  });
});
