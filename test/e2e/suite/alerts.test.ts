// A monitor breach reaching the user, in the real extension host: the churn sample's model server deployed
// twice from the editor (r1, then r2 with injected latency), real traffic, the Monitor Deployment command
// (the CLI in a terminal) evaluating the latency SLO and appending the breach to the alert history, and the
// extension turning that record into a warning notification with actions and a marker in the Deployments
// view. The extension host API cannot read notifications, so the extension's test-only commands
// (`mlpipeline._test.*`, registered in ExtensionMode.Test) report what it showed; the primary button is
// pressed through the workbench's own `notification.acceptPrimaryAction`.
import * as assert from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import * as vscode from 'vscode';
import type { LaunchResult } from '../../../client/src/run-controller';
import { SERVING_VIEW_TYPE } from '../../../webviews/src/protocol/serving';
import { freePort } from '../../helpers/net';
import { waitFor } from './util';

const EXTENSION_ID = 'mlpipeline.mlpipeline';
const SAMPLE_FILES = ['mlpipeline.yaml', 'data/churn.csv', 'src/prepare.py', 'src/train.py', 'src/evaluate.py', 'src/serve.py'];
const INSTANCE = { tenure_months: 29, monthly_charges: 22.51, total_charges: 634.55, contract: 'month-to-month', internet_service: 'none', payment_method: 'electronic_check', support_calls: 0, senior: 1 };

interface ShownAlert {
  text: string;
  severity: string;
  actions: string[];
  choice?: string;
  workspace: string;
  deployment: string;
  monitor: string;
  revision?: string;
  state: string;
}
interface DeploymentItem {
  name: string;
  workspace: string;
  description?: string;
  icon?: string;
  contextValue?: string;
  tooltip?: string;
}

function post(url: string, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', timeout: 5000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

function readState(workspace: string): { phase: string; revisions: { revision: string; phase: string; deployment: { runtime: { env: Record<string, string> } } }[] } | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(workspace, '.mlpipeline', 'deployments', 'churn-api', 'state.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

describe('Monitor alerts in the editor (e2e)', function () {
  this.timeout(300_000);

  before(async function () {
    if (!vscode.workspace.isTrusted) this.skip();
    await vscode.extensions.getExtension(EXTENSION_ID)!.activate();
  });

  it('a latency breach shows a warning with Open Serving Panel and Roll Back, marks the deployment, and both actions work', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const workspace = path.join(vscode.workspace.workspaceFolders![0].uri.fsPath, 'alerting');
    for (const f of SAMPLE_FILES) {
      fs.mkdirSync(path.dirname(path.join(workspace, f)), { recursive: true });
      fs.copyFileSync(path.join(ext.extensionPath, 'samples/churn-local', f), path.join(workspace, f));
    }
    // The sample's deployment on a free port; a second spec serves the same deployment 250 ms slower.
    const port = await freePort();
    const text = fs.readFileSync(path.join(workspace, 'mlpipeline.yaml'), 'utf8').replace(/8080/g, String(port));
    assert.match(text, /notify: \[vscode, log\]/, 'the sample alert notifies the editor');
    fs.writeFileSync(path.join(workspace, 'mlpipeline.yaml'), text);
    fs.writeFileSync(path.join(workspace, 'slow.mlpipeline.yaml'), text.replace('      metrics: /metrics\n', '      metrics: /metrics\n      env: {SERVE_LATENCY_MS: "250"}\n'));
    const spec = vscode.Uri.file(path.join(workspace, 'mlpipeline.yaml'));
    const slow = vscode.Uri.file(path.join(workspace, 'slow.mlpipeline.yaml'));

    const run = (await vscode.commands.executeCommand('mlpipeline.runPipeline', spec)) as LaunchResult;
    assert.strictEqual(run.status, 'succeeded', run.record?.error);

    const terminals: vscode.Terminal[] = [];
    let loading = true;
    const load = (async () => {
      // About 20 requests/s, enough for the monitor's 5 s sample to judge p95.
      while (loading) {
        await post(`http://127.0.0.1:${port}/predict`, JSON.stringify({ instances: [INSTANCE] }));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      terminals.push((await vscode.commands.executeCommand('mlpipeline.deploy', spec, 'churn-api')) as vscode.Terminal);
      await waitFor('r1 to be ready', () => readState(workspace)?.phase === 'ready' && readState(workspace)?.revisions[0]?.revision === 'r1', 90_000);
      terminals.push((await vscode.commands.executeCommand('mlpipeline.deploy', slow, 'churn-api')) as vscode.Terminal);
      await waitFor('the slow r2 to replace r1', () => readState(workspace)?.phase === 'ready' && readState(workspace)?.revisions[0]?.revision === 'r2', 90_000);
      await vscode.commands.executeCommand('notifications.clearAll');

      const before = ((await vscode.commands.executeCommand('mlpipeline._test.shownAlerts')) as ShownAlert[]).length;
      terminals.push((await vscode.commands.executeCommand('mlpipeline.monitorDeployment', { kind: 'deployment', workspace, name: 'churn-api' })) as vscode.Terminal);
      const shownAlerts = async (): Promise<ShownAlert[]> => (await vscode.commands.executeCommand('mlpipeline._test.shownAlerts')) as ShownAlert[];
      const alertsFile = path.join(workspace, '.mlpipeline', 'deployments', 'churn-api', 'alerts.jsonl');
      const index = await waitFor('the breach notification', async () => {
        const i = (await shownAlerts()).findIndex((a, k) => k >= before && a.deployment === 'churn-api' && a.state === 'violated');
        return i >= 0 ? i : undefined;
      }, 90_000).catch((e: Error) => {
        // Which half failed: the monitor (no record) or the extension (a record, but no notification).
        throw new Error(`${e.message}; alerts.jsonl: ${fs.existsSync(alertsFile) ? fs.readFileSync(alertsFile, 'utf8') : '(none)'}; state: ${JSON.stringify(readState(workspace))}`);
      });
      const shown = (await shownAlerts())[index];
      assert.strictEqual(shown.severity, 'warning');
      assert.strictEqual(shown.revision, 'r2');
      assert.match(shown.text, /^ML Pipeline: churn-api: monitors\.churn-api-latency violated \(r2\): p95 latency [0-9.]+ ms > 100 ms — The churn API is slow or failing/);
      assert.deepStrictEqual(shown.actions, ['Open Serving Panel', 'Roll Back', 'Show Log']);

      // The alert history is kept with the deployment, next to the run store.
      const history = fs.readFileSync(alertsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.deepStrictEqual([history.at(-1).state, history.at(-1).monitor, history.at(-1).revision, history.at(-1).notify], ['violated', 'churn-api-latency', 'r2', ['vscode', 'log']]);

      // The Deployments view marks the deployment while the monitor is violated.
      const item = await waitFor('the marked tree item', async () => {
        const items = (await vscode.commands.executeCommand('mlpipeline._test.deploymentItems')) as DeploymentItem[];
        return items.find((i) => i.name === 'churn-api' && i.workspace === workspace && i.icon === 'warning');
      });
      assert.match(String(item.description), /^⚠ monitors\.churn-api-latency · ready · http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(String(item.tooltip), /⚠ monitors\.churn-api-latency: p95 latency [0-9.]+ ms > 100 ms/);
      assert.strictEqual(item.contextValue, 'deployment.live', 'Roll Back and Undeploy stay on the item');

      // The notification's first button, pressed the way its keybinding does: the Serving Metrics panel opens.
      const servingTab = (): boolean => vscode.window.tabGroups.all.flatMap((g) => g.tabs).some((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith(SERVING_VIEW_TYPE));
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      assert.ok(!servingTab(), 'no Serving Metrics panel is open before the click');
      await vscode.commands.executeCommand('notification.acceptPrimaryAction');
      await waitFor('the choice to be handled', async () => (await shownAlerts())[index]?.choice === 'Open Serving Panel', 10_000);
      await waitFor('the Serving Metrics panel', servingTab, 20_000);

      // Roll Back, as its button runs it: the previous revision (r1, without the latency) serves again.
      await vscode.commands.executeCommand('mlpipeline._test.alertAction', index, 'Roll Back');
      const back = readState(workspace);
      assert.match(back?.revisions[0]?.revision ?? '', /^r1-rb/, JSON.stringify(back));
      assert.deepStrictEqual([back?.revisions.length, back?.revisions[0].phase, back?.revisions[0].deployment.runtime.env.SERVE_LATENCY_MS], [1, 'ready', undefined], 'r1 runs again, without the injected latency');
      assert.strictEqual(await post(`http://127.0.0.1:${port}/predict`, JSON.stringify({ instances: [INSTANCE] })), 200);
      // The marker follows: the violated revision no longer runs.
      await waitFor('the marker to clear', async () => {
        const items = (await vscode.commands.executeCommand('mlpipeline._test.deploymentItems')) as DeploymentItem[];
        const i = items.find((x) => x.name === 'churn-api' && x.workspace === workspace);
        return i && i.icon !== 'warning' && !String(i.description).includes('⚠');
      });
    } finally {
      loading = false;
      await load;
      terminals.forEach((t) => t.dispose());
      await vscode.commands.executeCommand('mlpipeline.undeploy', { workspace, deployment: 'churn-api' });
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    }
  });
});
