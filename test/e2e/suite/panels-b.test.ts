// The Lineage and Serving metrics panels inside the real workbench (code-server): each command opens its
// panel, the bundle loads under the real CSP and resource roots, completes the `ready` handshake, and the
// host's messages reach it (lineage: a run's graph, then a jump back to the host opens the node's file;
// serving: a real local model server's /metrics scraped by the feed).
import * as assert from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import * as vscode from 'vscode';
import type { LineagePanel } from '../../../client/src/panels/lineage-panel';
import type { ServingPanel } from '../../../client/src/panels/serving-panel';
import type { RunRecord } from '../../../client/src/runtime/records';
import { RunStore } from '../../../client/src/runtime/run-store';
import { waitFor } from './util';

const ready = (host: { ready: Promise<void> }) => waitFor('the webview to post ready', async () => (await Promise.race([host.ready.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 500))])) || undefined, 60_000);

describe('Lineage and Serving panels (e2e)', function () {
  this.timeout(120_000);

  it('Open Lineage shows a recorded run and opens what a node stands for', async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'a workspace folder must be open');
    const specs = await vscode.workspace.findFiles('**/mlpipeline.yaml', '**/node_modules/**', 1);
    assert.ok(specs.length, 'the test workspace has a spec');
    const dir = path.dirname(specs[0].fsPath);
    const storeRoot = path.join(dir, '.mlpipeline', 'runs');
    fs.mkdirSync(storeRoot, { recursive: true });
    const store = new RunStore(storeRoot);
    const id = store.newRunId(new Date(Date.now() - 5000));
    const script = 'lineage-e2e-input.py';
    fs.writeFileSync(path.join(dir, script), '# input of the lineage e2e run\n');
    const record: RunRecord = {
      schema: 1,
      id,
      label: 'lineage e2e <img src=x>',
      spec: { path: 'mlpipeline.yaml', name: 'lineage-e2e', hash: '0'.repeat(64) },
      status: 'running',
      startedAt: new Date().toISOString(),
      params: {},
      git: null,
      target: 'local',
      steps: { train: { status: 'succeeded', command: 'true', attempts: 1, inputs: { [script]: 'a'.repeat(64) }, outputs: { model: { path: script, hash: 'b'.repeat(64) } }, log: `${id}/logs/train.log` } },
      lineage: [
        { from: `file:${script}@${'a'.repeat(64)}`, to: `step:${id}/train` },
        { from: `step:${id}/train`, to: `output:train.model@${'b'.repeat(64)}` },
      ],
    };
    const writer = await store.create(record);
    await writer.finish('succeeded');

    const host = (await vscode.commands.executeCommand('mlpipeline.openLineage', specs[0].toString())) as LineagePanel;
    assert.ok(host && host.panel, 'the command returns the panel host');
    await ready(host);
    assert.strictEqual(host.panel.viewType, 'mlpipeline.lineage');
    await waitFor('the host to send the run\'s graph', () => host.hasNode(`file:${script}@${'a'.repeat(64)}`) && host.hasNode(`step:${id}/train`));
    // The webview's jump request goes through the host's validation and opens the file.
    await (host as unknown as { onMessage(m: unknown): Promise<void> }).onMessage({ type: 'jump', nodeId: `file:${script}@${'a'.repeat(64)}` });
    await waitFor('the input file to open', () => vscode.window.activeTextEditor?.document.uri.fsPath === path.join(dir, script));
    assert.strictEqual(host.rejectedMessages, 0, 'every message from the webview passed validation');
    const again = (await vscode.commands.executeCommand('mlpipeline.openLineage')) as LineagePanel;
    assert.strictEqual(again, host, 'the command reveals the open panel');
    host.dispose();
  });

  it('Open Serving Metrics opens the panel and scrapes a running local revision', async () => {
    // A model server's /metrics, and the supervisor state file that says where the revision listens.
    let scrapes = 0;
    const server = http.createServer((_req, res) => {
      scrapes++;
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`http_request_duration_seconds_bucket{le="0.1"} ${scrapes * 10}\nhttp_request_duration_seconds_bucket{le="+Inf"} ${scrapes * 10}\nhttp_request_duration_seconds_count{status="200"} ${scrapes * 10}\n`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const specs = await vscode.workspace.findFiles('**/mlpipeline.yaml', '**/node_modules/**', 1);
    const depDir = path.join(path.dirname(specs[0].fsPath), '.mlpipeline', 'deployments', 'e2e-api');
    fs.mkdirSync(depDir, { recursive: true });
    const now = new Date().toISOString();
    fs.writeFileSync(
      path.join(depDir, 'state.json'),
      JSON.stringify({ schema: 1, name: 'e2e-api', workspace: path.dirname(specs[0].fsPath), supervisorPid: process.pid, controlPort: 1, token: 'x', publicPort: port, mode: 'direct', url: `http://127.0.0.1:${port}`, phase: 'ready', revisions: [{ revision: 'r1', model: { path: 'm' }, port, phase: 'ready', weight: 100, restarts: 0, startedAt: now, command: 'serve', deployment: { runtime: { metrics: '/metrics' } }, log: 'x' }], history: [], updatedAt: now }),
    );
    try {
      const host = (await vscode.commands.executeCommand('mlpipeline.openServingMetrics')) as ServingPanel;
      assert.ok(host && host.panel);
      await ready(host);
      assert.strictEqual(host.panel.viewType, 'mlpipeline.servingMetrics');
      await waitFor('the feed to scrape the revision twice', () => scrapes >= 2, 30_000);
      assert.strictEqual(host.rejectedMessages, 0);
      host.dispose();
    } finally {
      server.close();
      fs.rmSync(depDir, { recursive: true, force: true });
    }
  });
});
