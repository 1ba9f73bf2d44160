#!/usr/bin/env node
// Runs the SAME compiled e2e suite in desktop VS Code through @vscode/test-electron, for machines
// that can download VS Code from Microsoft's update site (a developer laptop, hosted CI). It does
// not work on the offline build machines: there, use run-extension-tests.mjs (code-server).
//
//   node test/e2e/run-electron.mjs [--extension DIR] [--tests FILE] [--workspace DIR]
//        [--vscode-version 1.100.3] [--in-place]
//
// On a Linux machine without a display run it under xvfb: `xvfb-run -a node test/e2e/run-electron.mjs`.
// VS Code downloads are cached in ${MLP_CACHE_DIR:-~/.cache/mlpipeline-test}/vscode-test, not in
// the repository. Restricted Mode runs are not supported here: runTests() always passes
// --disable-workspace-trust.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { runTests } from '@vscode/test-electron';

import { REPO_ROOT } from './code-server.mjs';
import { testUserSettings } from './settings.mjs';

function usage(msg) {
  if (msg) console.error(`run-electron: ${msg}`);
  console.error(
    'usage: node test/e2e/run-electron.mjs [--extension DIR] [--tests FILE] [--workspace DIR]\n' +
      '         [--vscode-version VERSION] [--in-place]',
  );
  process.exit(2);
}

let opts;
try {
  opts = parseArgs({
    options: {
      extension: { type: 'string', default: REPO_ROOT },
      tests: { type: 'string', default: path.join(REPO_ROOT, 'dist/test/e2e/suite/index.js') },
      workspace: { type: 'string', default: path.join(REPO_ROOT, 'test/e2e/workspace') },
      // Same VS Code as code-server 4.100.3, so both runners test one version.
      'vscode-version': { type: 'string', default: process.env.MLP_VSCODE_VERSION || '1.100.3' },
      'in-place': { type: 'boolean', default: false },
      untrusted: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
} catch (e) {
  usage(e.message);
}
if (opts.help) usage();
if (opts.untrusted) {
  usage('--untrusted is only supported by run-extension-tests.mjs (runTests() always disables workspace trust)');
}

const extensionDevelopmentPath = path.resolve(opts.extension);
const extensionTestsPath = path.resolve(opts.tests);
const sourceWorkspace = path.resolve(opts.workspace);
if (!fs.existsSync(path.join(extensionDevelopmentPath, 'package.json'))) {
  usage(`extension folder not found: ${extensionDevelopmentPath}`);
}
if (!fs.existsSync(extensionTestsPath)) usage(`compiled test entry not found: ${extensionTestsPath} (build the tests first)`);
if (!fs.statSync(sourceWorkspace, { throwIfNoEntry: false })?.isDirectory()) {
  usage(`workspace folder not found: ${sourceWorkspace}`);
}

// Fresh profile and a copy of the workspace, as in run-extension-tests.mjs.
const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlp-e2e-electron-'));
const userDataDir = path.join(runDir, 'user-data');
const extensionsDir = path.join(runDir, 'extensions');
fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
fs.mkdirSync(extensionsDir, { recursive: true });
fs.writeFileSync(
  path.join(userDataDir, 'User', 'settings.json'),
  JSON.stringify(testUserSettings({ untrusted: false }), null, 2) + '\n',
);
const workspace = opts['in-place'] ? sourceWorkspace : path.join(runDir, 'workspace', path.basename(sourceWorkspace));
if (!opts['in-place']) fs.cpSync(sourceWorkspace, workspace, { recursive: true });

const cacheRoot = process.env.MLP_CACHE_DIR || path.join(os.homedir(), '.cache', 'mlpipeline-test');

let code = 1;
try {
  // Resolves 0 when the suite's run() resolved; throws TestRunFailedError otherwise.
  code = await runTests({
    version: opts['vscode-version'],
    cachePath: path.join(cacheRoot, 'vscode-test'),
    extensionDevelopmentPath,
    extensionTestsPath,
    launchArgs: [
      workspace,
      '--user-data-dir', userDataDir,
      '--extensions-dir', extensionsDir,
      // Only the extension under development (and built-ins) load.
      '--disable-extensions',
      '--disable-gpu',
    ],
  });
} catch (err) {
  console.error(`run-electron: ${err?.message || err}`);
  code = typeof err?.code === 'number' && err.code !== 0 ? err.code : 1;
}
fs.rmSync(runDir, { recursive: true, force: true });
process.exit(code);
