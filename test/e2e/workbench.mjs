// Starts code-server 4.100.3 with the extension under development and opens the workbench in headless
// chromium, for tests that drive VS Code as a user would (test/e2e/ui.test.ts). Same tools, flags and
// settings as run-extension-tests.mjs, but no test entry: the workbench stays open until stop().
//
//   const wb = await startWorkbench({ workspace, untrusted: false });
//   await wb.page.keyboard.press('F1'); ...; await wb.stop();

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { CHROMIUM, CHROMIUM_ARGS, codeServerArgs, codeServerBin, codeServerEnv, freePort, httpStatus, REPO_ROOT, toolsInstalled, workbenchUrl } from './code-server.mjs';
import { testUserSettings } from './settings.mjs';

export { REPO_ROOT, codeServerBin };

/** Whether code-server and chromium are installed (test/infra/install-code-server.sh). */
export const workbenchAvailable = toolsInstalled;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * @param {{ workspace: string, extension?: string, untrusted?: boolean, viewport?: { width: number, height: number } }} opts
 * @returns {Promise<{ page: import('playwright-core').Page, logs: string, stop: () => Promise<void> }>}
 */
export async function startWorkbench(opts) {
  const { chromium } = await import('playwright-core');
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlp-ui-'));
  const userDataDir = path.join(runDir, 'user-data');
  const logs = path.join(runDir, 'code-server.log');
  fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  fs.writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify(testUserSettings({ untrusted: !!opts.untrusted }), null, 2));
  fs.mkdirSync(path.join(runDir, 'extensions'));
  fs.mkdirSync(path.join(runDir, 'tmp'));
  fs.writeFileSync(path.join(runDir, 'config.yaml'), 'auth: none\ncert: false\n');
  const port = await freePort();
  const args = codeServerArgs({ port, userDataDir, extensionsDir: path.join(runDir, 'extensions'), configFile: path.join(runDir, 'config.yaml'), untrusted: !!opts.untrusted, workspace: opts.workspace });
  const out = fs.openSync(logs, 'w');
  const server = spawn(codeServerBin(), args, {
    detached: true, // own process group: stop() signals -pid
    stdio: ['ignore', out, out],
    env: codeServerEnv(runDir),
  });
  let context;
  const stop = async () => {
    if (context) await Promise.race([context.close().catch(() => {}), sleep(5000)]);
    try {
      process.kill(-server.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    fs.closeSync(out);
    fs.rmSync(runDir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 60_000;
    while ((await httpStatus(`http://127.0.0.1:${port}/healthz`)) !== 200) {
      if (Date.now() > deadline || server.exitCode !== null) throw new Error(`code-server did not start:\n${fs.readFileSync(logs, 'utf8').slice(-2000)}`);
      await sleep(250);
    }
    context = await chromium.launchPersistentContext(path.join(runDir, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: opts.viewport ?? { width: 1280, height: 760 },
      env: { ...process.env, XDG_CONFIG_HOME: path.join(runDir, 'xdg-config'), XDG_CACHE_HOME: path.join(runDir, 'xdg-cache') },
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
    const page = context.pages()[0] || (await context.newPage());
    const extension = path.resolve(opts.extension ?? REPO_ROOT);
    await page.goto(workbenchUrl(port, { workspace: opts.workspace, extension }), { waitUntil: 'domcontentloaded' });
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    return { page, logs, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
