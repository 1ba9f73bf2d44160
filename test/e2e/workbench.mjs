// Starts code-server 4.100.3 with the extension under development and opens the workbench in headless
// chromium, for tests that drive VS Code as a user would (test/e2e/ui.test.ts). Same tools, flags and
// settings as run-extension-tests.mjs, but no test entry: the workbench stays open until stop().
//
//   const wb = await startWorkbench({ workspace, untrusted: false });
//   await wb.page.keyboard.press('F1'); ...; await wb.stop();

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { testUserSettings } from './settings.mjs';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CODE_SERVER_VERSION = '4.100.3';
const CHROMIUM = process.env.MLP_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function codeServerBin() {
  const cacheRoot = process.env.MLP_CACHE_DIR || path.join(os.homedir(), '.cache', 'mlpipeline-test');
  return process.env.MLP_CODE_SERVER || path.join(cacheRoot, `code-server-${CODE_SERVER_VERSION}`, 'node_modules', '.bin', 'code-server');
}

/** Whether code-server and chromium are installed (test/infra/install-code-server.sh). */
export function workbenchAvailable() {
  return fs.existsSync(codeServerBin()) && fs.existsSync(CHROMIUM);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function healthy(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

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
  const args = ['--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check', '--disable-getting-started-override', '--user-data-dir', userDataDir, '--extensions-dir', path.join(runDir, 'extensions'), '--config', path.join(runDir, 'config.yaml'), '--ignore-last-opened'];
  if (!opts.untrusted) args.push('--disable-workspace-trust');
  args.push(opts.workspace);
  const out = fs.openSync(logs, 'w');
  const server = spawn(codeServerBin(), args, {
    detached: true, // own process group: stop() signals -pid
    stdio: ['ignore', out, out],
    env: { ...process.env, XDG_CONFIG_HOME: path.join(runDir, 'xdg-config'), XDG_DATA_HOME: path.join(runDir, 'xdg-data'), XDG_CACHE_HOME: path.join(runDir, 'xdg-cache'), TMPDIR: path.join(runDir, 'tmp'), EXTENSIONS_GALLERY: '{}' },
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
    while (!(await healthy(`http://127.0.0.1:${port}/healthz`))) {
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
    const payload = [['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${port}${extension}`]];
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(opts.workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`, { waitUntil: 'domcontentloaded' });
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    return { page, logs, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
