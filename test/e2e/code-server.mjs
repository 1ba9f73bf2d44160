// What every launcher of code-server + headless chromium shares (run-extension-tests.mjs for the
// in-editor suite, workbench.mjs for UI tests): where the tools are, the flags they run with, and the
// environment that keeps everything they write inside one run folder. Facts from
// ../shared/design/testing.md.

import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CODE_SERVER_VERSION = '4.100.3';
export const CHROMIUM = process.env.MLP_CHROMIUM || '/usr/bin/chromium';
/** Debian chromium as root, no GPU, no network chatter. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function codeServerBin() {
  const cacheRoot = process.env.MLP_CACHE_DIR || path.join(os.homedir(), '.cache', 'mlpipeline-test');
  return process.env.MLP_CODE_SERVER || path.join(cacheRoot, `code-server-${CODE_SERVER_VERSION}`, 'node_modules', '.bin', 'code-server');
}

/** code-server's command line; always with --config, or it writes ~/.config/code-server/config.yaml. */
export function codeServerArgs({ port, userDataDir, extensionsDir, configFile, untrusted, workspace }) {
  const args = ['--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check', '--disable-getting-started-override', '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir, '--config', configFile, '--ignore-last-opened'];
  if (!untrusted) args.push('--disable-workspace-trust');
  args.push(workspace);
  return args;
}

/** XDG dirs and TMPDIR inside the run folder, so nothing lands in $HOME; no extension gallery offline. */
export function codeServerEnv(runDir, tmpDir = path.join(runDir, 'tmp')) {
  return {
    ...process.env,
    XDG_CONFIG_HOME: path.join(runDir, 'xdg-config'),
    XDG_DATA_HOME: path.join(runDir, 'xdg-data'),
    XDG_CACHE_HOME: path.join(runDir, 'xdg-cache'),
    // The extension host's IPC sockets go to os.tmpdir() and are not removed when it is killed.
    TMPDIR: tmpDir,
    EXTENSIONS_GALLERY: '{}',
  };
}

/** The workbench URL that loads the extension under development (and a test entry) through `payload`. */
export function workbenchUrl(port, { workspace, extension, tests }) {
  const payload = [['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${port}${extension}`]];
  if (tests) payload.push(['extensionTestsPath', `vscode-remote://127.0.0.1:${port}${tests}`]);
  return `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

export function freePort() {
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

/** The HTTP status of a GET, or 0 when nothing answers within 2 s. */
export function httpStatus(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

export function toolsInstalled() {
  return fs.existsSync(codeServerBin()) && fs.existsSync(CHROMIUM);
}
