// Workflows beyond a plain run, in the real extension host: the Getting Started sample, secrets from
// SecretStorage reaching a step (and nowhere else), a sweep started from the editor, deleting a run.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { MlPipelineApi } from '../../../client/src/extension';
import type { LaunchResult } from '../../../client/src/run-controller';
import type { SweepResult } from '../../../client/src/sweep-runner';
import { allRunNodes } from '../../../client/src/views/runs';
import * as http from 'http';
import { freePort } from '../../helpers/net';
import { waitFor } from './util';

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, { timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
    }).on('error', reject);
  });
}

const EXTENSION_ID = 'mlpipeline.mlpipeline';

function workspaceRoot(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'a workspace folder must be open');
  return folder.uri.fsPath;
}

/** Writes a spec into its own folder of the workspace and returns its URI. */
function writeSpec(folder: string, text: string): vscode.Uri {
  const dir = path.join(workspaceRoot(), folder);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'mlpipeline.yaml'), text);
  return vscode.Uri.file(path.join(dir, 'mlpipeline.yaml'));
}

/** Every file under `dir`, read as text (the run store is small in these tests). */
function allText(dir: string): string {
  let out = '';
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out += e.isDirectory() ? allText(p) : fs.readFileSync(p, 'utf8');
  }
  return out;
}

describe('ML Pipeline workflows (e2e)', function () {
  this.timeout(120_000);
  let api: MlPipelineApi;

  before(async () => {
    api = await vscode.extensions.getExtension<MlPipelineApi>(EXTENSION_ID)!.activate();
  });

  it('creates the Getting Started sample, never over existing files, and opens its spec', async () => {
    const target = path.join(workspaceRoot(), 'getting-started');
    fs.mkdirSync(target, { recursive: true });
    const first = (await vscode.commands.executeCommand('mlpipeline.createSamplePipeline', vscode.Uri.file(target))) as string;
    assert.strictEqual(first, path.join(target, 'mlpipeline.yaml'));
    for (const f of ['mlpipeline.yaml', 'README.md', 'src/train.py', 'src/serve.py', 'data/churn.csv', 'tools/make_data.py']) assert.ok(fs.existsSync(path.join(target, f)), `${f} was copied`);
    assert.strictEqual(vscode.window.activeTextEditor?.document.uri.fsPath, first, 'the new spec is open');
    // A user edit must survive a second "Create Sample Pipeline" in the same folder.
    fs.writeFileSync(first, `${fs.readFileSync(first, 'utf8')}\n# my edit\n`);
    const second = (await vscode.commands.executeCommand('mlpipeline.createSamplePipeline', vscode.Uri.file(target))) as string;
    assert.strictEqual(second, path.join(target, 'churn-sample', 'mlpipeline.yaml'));
    assert.match(fs.readFileSync(first, 'utf8'), /# my edit/);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  describe('in a trusted workspace', () => {
    before(function () {
      if (!vscode.workspace.isTrusted) this.skip();
    });

    it('passes a secret set with Set Secret to the step, and writes it nowhere', async () => {
      const value = 'e2e-s3cr3t-value-4242';
      const spec = writeSpec(
        'secret',
        'apiVersion: mlpipeline/v1\nname: e2e-secret\nsecrets: [E2E_TOKEN]\nsteps:\n  use:\n' +
          '    command: echo "token of length $(printf %s \"$TOKEN\" | wc -c), value $TOKEN"\n' +
          '    env: {TOKEN: "${secrets.E2E_TOKEN}"}\n    cache: false\n',
      );
      assert.strictEqual(await vscode.commands.executeCommand('mlpipeline.setSecret', 'E2E_TOKEN', value), true);
      const result = (await vscode.commands.executeCommand('mlpipeline.runPipeline', spec)) as LaunchResult;
      assert.strictEqual(result.status, 'succeeded', result.record?.error);
      const stored = allText(result.storeRoot);
      assert.match(stored, new RegExp(`token of length ${value.length}, value`), 'the step saw the value and its log was kept');
      assert.ok(!stored.includes(value), 'the value is in no run record or log');
      assert.ok(!fs.readFileSync(spec.fsPath, 'utf8').includes(value));
    });

    it('runs a sweep from the editor and reports the best trial', async () => {
      const spec = writeSpec(
        'sweep',
        'apiVersion: mlpipeline/v1\nname: e2e-sweep\nparams:\n  x: {type: int, default: 1}\nsteps:\n  score:\n' +
          '    command: |\n      printf \'{"score": %s}\' ${params.x} > metrics.json\n    metrics: metrics.json\n' +
          'sweeps:\n  xs:\n    step: score\n    method: grid\n    parameters: {x: [1, 3, 2]}\n    objective: {metric: score.score, goal: maximize}\n',
      );
      const result = (await vscode.commands.executeCommand('mlpipeline.runSweep', spec, 'xs')) as SweepResult;
      assert.deepStrictEqual(result.trials.map((t) => [t.params.x, t.result?.status ?? t.error]), [[1, 'succeeded'], [3, 'succeeded'], [2, 'succeeded']]);
      assert.deepStrictEqual({ trial: result.best?.trial, value: result.best?.value }, { trial: 2, value: 3 });
      // Each trial ran in its own workspace copy and is an ordinary recorded run.
      const ids = new Set(result.trials.map((t) => t.result!.runId));
      assert.strictEqual(ids.size, 3);
    });

    it('deploys a model from a run with Deploy, serves it, and stops it with Undeploy', async function () {
      this.timeout(180_000);
      const port = await freePort();
      const spec = writeSpec(
        'serving',
        'apiVersion: mlpipeline/v1\nname: e2e-serving\nsteps:\n  make:\n    command: mkdir -p site && echo model-v1 > site/model.txt\n    outputs: {model: site/model.txt}\n' +
          'deployments:\n  tiny:\n    model: ${steps.make.outputs.model}\n    compute: local\n    runtime:\n' +
          `      command: python3 -m http.server ${port} --bind 127.0.0.1 --directory site\n      port: ${port}\n      readiness: /model.txt\n`,
      );
      const run = (await vscode.commands.executeCommand('mlpipeline.runPipeline', spec)) as LaunchResult;
      assert.strictEqual(run.status, 'succeeded', run.record?.error);
      const workspace = path.dirname(spec.fsPath);
      const terminal = (await vscode.commands.executeCommand('mlpipeline.deploy', spec, 'tiny')) as vscode.Terminal;
      assert.ok(terminal, 'Deploy runs the CLI in a terminal');
      let stopped: unknown;
      try {
        const stateFile = path.join(workspace, '.mlpipeline', 'deployments', 'tiny', 'state.json');
        await waitFor('the deployment to be ready', () => (fs.existsSync(stateFile) && JSON.parse(fs.readFileSync(stateFile, 'utf8')).phase === 'ready') || undefined, 90_000);
        assert.strictEqual(await httpGet(`http://127.0.0.1:${port}/model.txt`), 'model-v1\n');
        const history = fs.readFileSync(path.join(workspace, '.mlpipeline', 'deployments', 'tiny', 'history.jsonl'), 'utf8');
        assert.match(history, new RegExp(run.runId), 'the deployment records the run its model came from');
      } finally {
        // Stop the server even when an assertion above failed (that failure is the one reported).
        stopped = await vscode.commands.executeCommand('mlpipeline.undeploy', { workspace, deployment: 'tiny' });
        terminal.dispose();
      }
      assert.strictEqual(stopped, true, 'Undeploy stopped the running deployment');
      await waitFor('the server to stop', async () => ((await httpGet(`http://127.0.0.1:${port}/model.txt`).catch(() => 'down')) === 'down' ? true : undefined), 20_000);
    });

    it('deletes a run from the Runs view (confirmation turned off in settings)', async () => {
      const spec = writeSpec('deleting', 'apiVersion: mlpipeline/v1\nname: e2e-delete\nsteps:\n  hi:\n    command: echo hi\n    cache: false\n');
      const result = (await vscode.commands.executeCommand('mlpipeline.runPipeline', spec)) as LaunchResult;
      assert.strictEqual(result.status, 'succeeded');
      await vscode.workspace.getConfiguration('mlpipeline').update('runs.confirmDelete', false, vscode.ConfigurationTarget.Global);
      try {
        await vscode.commands.executeCommand('mlpipeline.refreshRuns');
        const node = (await allRunNodes(api.runsProvider)).find((n) => n.summary.id === result.runId);
        assert.ok(node, 'the run is in the Runs view');
        assert.strictEqual(await vscode.commands.executeCommand('mlpipeline.deleteRun', node), 1);
        assert.ok(!fs.existsSync(path.join(result.storeRoot, result.runId)), 'its record and logs are gone');
        assert.ok(!(await allRunNodes(api.runsProvider)).some((n) => n.summary.id === result.runId), 'and it left the view');
      } finally {
        await vscode.workspace.getConfiguration('mlpipeline').update('runs.confirmDelete', undefined, vscode.ConfigurationTarget.Global);
      }
    });
  });
});
