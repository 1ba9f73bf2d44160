// Drives the workbench as a user would, in headless chromium: command palette (F1) -> "ML Pipeline: Run
// Pipeline" on the sample, the progress and finish notifications, the run in the Runs view. Saves the
// screenshots the README shows (docs/screenshots/*.png).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, startWorkbench, workbenchAvailable } from './workbench.mjs';

type Workbench = Awaited<ReturnType<typeof startWorkbench>>;
const SHOTS = path.join(REPO_ROOT, 'docs', 'screenshots');
const SAMPLE_FILES = ['mlpipeline.yaml', 'data/churn.csv', 'src/prepare.py', 'src/train.py', 'src/evaluate.py'];

describe('the workbench as a user sees it (code-server 4.100.3, headless chromium)', { timeout: 300_000, skip: workbenchAvailable() ? false : 'code-server or chromium missing: run test/infra/install-code-server.sh' }, () => {
  let wb: Workbench;
  let workspace: string;

  before(async () => {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'mlp-ui-ws-'));
    workspace = path.join(parent, 'churn-local');
    for (const f of SAMPLE_FILES) {
      fs.mkdirSync(path.dirname(path.join(workspace, f)), { recursive: true });
      fs.copyFileSync(path.join(REPO_ROOT, 'samples/churn-local', f), path.join(workspace, f));
    }
    fs.mkdirSync(SHOTS, { recursive: true });
    wb = await startWorkbench({ workspace });
  });

  after(async () => {
    await wb?.stop();
    if (workspace) fs.rmSync(path.dirname(workspace), { recursive: true, force: true });
  });

  async function shot(name: string, clip?: { x: number; y: number; width: number; height: number }): Promise<void> {
    const file = path.join(SHOTS, `${name}.png`);
    await wb.page.screenshot({ path: file, ...(clip ? { clip } : {}) });
    const size = fs.statSync(file).size;
    assert.ok(size < 200 * 1024, `${file} is ${size} bytes; screenshots stay under 200 KB`);
  }

  it('runs the pipeline from the command palette and shows it in the Runs view', async () => {
    const { page } = wb;
    // The extension is active once its status bar item shows the compute target.
    await page.locator('.statusbar-item', { hasText: 'default target' }).first().waitFor({ timeout: 60_000 });
    // Open the spec so the editor title shows the Run button.
    await page.keyboard.press('Control+P');
    await page.locator('.quick-input-widget input').fill('mlpipeline.yaml');
    await page.locator('.quick-input-list .monaco-list-row').first().waitFor();
    await page.keyboard.press('Enter');
    await page.locator('.editor-actions [aria-label*="Run Pipeline"]').first().waitFor({ timeout: 30_000 });

    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.fill('>ML Pipeline: Run Pipeline');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'ML Pipeline: Run Pipeline' }).first().waitFor();
    await shot('command-palette');
    await page.keyboard.press('Enter');

    const done = page.locator('.notification-toast', { hasText: /run \d{8}-\d{6}-[0-9a-f]{6} of churn-local succeeded/ });
    await done.first().waitFor({ timeout: 120_000 });
    const text = (await done.first().innerText()).replace(/\s+/g, ' ');
    const runId = /run (\d{8}-\d{6}-[0-9a-f]{6})/.exec(text)?.[1];
    assert.ok(runId, `the toast names the run: ${text}`);
    assert.match(text, /Show Logs/);
    assert.match(text, /evaluate\.auc=/);

    // The ML Pipeline view container in the activity bar, then the run in the Runs view.
    await page.locator('.activitybar .action-item a[aria-label^="ML Pipeline"], .activitybar .action-item[aria-label^="ML Pipeline"]').first().click();
    const row = page.locator('.pane .monaco-list-row', { hasText: runId });
    await row.first().waitFor({ timeout: 30_000 });
    assert.match(await row.first().innerText(), /succeeded/);
    await row.first().click(); // opens the run's details (what `mlpipeline show` prints)
    await page.locator('.pane .monaco-list-row[aria-expanded="true"]', { hasText: runId }).first().waitFor({ timeout: 2000 }).catch(async () => {
      await row.first().locator('.monaco-tl-twistie').click(); // expand: the steps with their status
    });
    await page.locator('.pane .monaco-list-row', { hasText: 'evaluate' }).first().waitFor({ timeout: 15_000 });
    await shot('runs-view');
    assert.ok(fs.existsSync(path.join(workspace, '.mlpipeline', 'runs', runId, 'run.json')), 'the run is in the run store');
  });
});
