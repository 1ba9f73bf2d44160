#!/usr/bin/env node
// Runs a compiled mocha suite inside a real VS Code extension host, the way @vscode/test-electron
// does, but with code-server (VS Code 1.100.3 in the browser, real Node extension host) driven by
// headless Debian chromium through playwright-core. Desktop VS Code cannot be downloaded here.
//
//   node test/e2e/run-extension-tests.mjs [--extension DIR] [--tests FILE] [--workspace DIR]
//        [--screenshots DIR] [--logs DIR] [--untrusted] [--in-place] [--timeout SECONDS]
//        [--code-server BIN]
//
// The workspace folder is copied into a fresh temp folder first (tests edit documents, and the web
// workbench may save them), unless --in-place. Logs go to --logs (default: a temp folder, deleted
// after a passing run); screenshots to --screenshots (default: the logs folder) on failure, and
// also at the end when --screenshots is given.
//
// The extension under development and the test entry are handed to the workbench in the URL's
// `payload` (code-server's CLI rejects --extensionDevelopmentPath). When the entry's run() settles,
// the workbench calls window.codeAutomationExit(code): that code becomes our exit code.
// Exit codes: the suite's own (0 = all passed), 2 = bad usage / missing pieces, 124 = timeout,
// 1 = harness failure (code-server or the browser failed).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import util, { parseArgs } from 'node:util';

import { CHROMIUM, CHROMIUM_ARGS, codeServerArgs, codeServerBin as defaultCodeServerBin, codeServerEnv, freePort, httpStatus, REPO_ROOT, workbenchUrl } from './code-server.mjs';
import { testUserSettings } from './settings.mjs';

// ------------------------------------------------------------------------------------- arguments
function usage(msg) {
  if (msg) console.error(`run-extension-tests: ${msg}`);
  console.error(
    'usage: node test/e2e/run-extension-tests.mjs [--extension DIR] [--tests FILE] [--workspace DIR]\n' +
      '         [--screenshots DIR] [--logs DIR] [--untrusted] [--in-place] [--timeout SECONDS]\n' +
      '         [--code-server BIN]',
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
      screenshots: { type: 'string' },
      logs: { type: 'string' },
      untrusted: { type: 'boolean', default: false },
      'in-place': { type: 'boolean', default: false },
      timeout: { type: 'string', default: process.env.MLP_E2E_TIMEOUT || '180' },
      'code-server': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
} catch (e) {
  usage(e.message);
}
if (opts.help) usage();

const extensionPath = path.resolve(opts.extension);
const testsPath = path.resolve(opts.tests);
const sourceWorkspace = path.resolve(opts.workspace);
const timeoutMs = Number(opts.timeout) * 1000;
if (!(timeoutMs > 0)) usage(`--timeout must be a positive number of seconds, got ${opts.timeout}`);

const codeServerBin = opts['code-server'] || defaultCodeServerBin();

for (const [what, p, kind] of [
  ['extension folder', path.join(extensionPath, 'package.json'), 'file'],
  ['compiled test entry (--tests)', testsPath, 'file'],
  ['workspace folder', sourceWorkspace, 'dir'],
]) {
  if (!fs.existsSync(p) || (kind === 'dir') !== fs.statSync(p).isDirectory()) {
    usage(`${what} not found: ${p}${what.startsWith('compiled') ? ' (build the tests first)' : ''}`);
  }
}
if (!fs.existsSync(codeServerBin)) {
  usage(`code-server not found at ${codeServerBin}; run test/infra/install-code-server.sh first`);
}
if (!fs.existsSync(CHROMIUM)) {
  usage(`chromium not found at ${CHROMIUM}; run test/infra/install-code-server.sh first`);
}

// ---------------------------------------------------------------------------------- run folders
// Everything the run writes lives in one fresh folder: no state leaks between runs, and nothing
// touches $HOME (code-server would otherwise create ~/.config/code-server and ~/.local/share).
const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlp-e2e-'));
const logsDir = path.resolve(opts.logs || path.join(runDir, 'logs'));
const screenshotsDir = opts.screenshots ? path.resolve(opts.screenshots) : logsDir;
fs.mkdirSync(logsDir, { recursive: true });
fs.mkdirSync(screenshotsDir, { recursive: true });
const userDataDir = path.join(runDir, 'user-data');
const extensionsDir = path.join(runDir, 'extensions');
const browserProfileDir = path.join(runDir, 'chromium-profile');
const configFile = path.join(runDir, 'config.yaml');
const runTmp = path.join(runDir, 'tmp');
fs.mkdirSync(runTmp);
const codeServerLog = path.join(logsDir, 'code-server.log');
const browserLog = path.join(logsDir, 'browser-console.log');

// Open a copy of the workspace so edits made by the tests never reach the repository.
const workspacePath = opts['in-place']
  ? sourceWorkspace
  : path.join(runDir, 'workspace', path.basename(sourceWorkspace));
if (!opts['in-place']) fs.cpSync(sourceWorkspace, workspacePath, { recursive: true });

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const say = (msg) => console.log(`[e2e ${elapsed()}] ${msg}`);

function writeJson(file, value) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

writeJson(path.join(userDataDir, 'User', 'settings.json'), testUserSettings({ untrusted: opts.untrusted }));
fs.mkdirSync(extensionsDir, { recursive: true });
// Always give --config: without it code-server writes ~/.config/code-server/config.yaml.
fs.writeFileSync(configFile, 'auth: none\ncert: false\n');

// ------------------------------------------------------------------------- process bookkeeping
let codeServer; // ChildProcess
let chromiumPid; // number, found after launch
let context; // playwright BrowserContext
let page;
let finished = false;
let consoleQueue = Promise.resolve();
let overallTimer;
let stopped = false; // stopAll() has run: nothing of ours is left to kill
let extHostCrash; // set when code-server reports an abnormal extension host exit
let sawMochaSummary = false; // mocha's "N passing (T)" line was printed

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Both code-server and chromium run in their own process group (spawned detached), whose id is
// the PID we started: signalling -PID reaches their helpers (extension host, pty host, renderers)
// and nothing else on the machine.
// (If the group is gone, ESRCH: the leader is gone too, and the PID may already be reused, so
// there is deliberately no fallback to a plain kill(pid).)
function killTree(pid, signal) {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    /* group already gone */
  }
}

// Synchronous last resort, also run from process.on('exit') (e.g. after playwright's own SIGINT
// handler calls process.exit): SIGKILL whatever we started that is still there.
function killAllSync() {
  if (stopped) return;
  if (codeServer?.pid) killTree(codeServer.pid, 'SIGKILL');
  if (chromiumPid) killTree(chromiumPid, 'SIGKILL');
}
process.on('exit', killAllSync);

async function stopAll() {
  if (context) {
    // Closing the context ends chromium cleanly; don't let a hung browser block the exit.
    await Promise.race([context.close().catch(() => {}), sleep(5000)]);
  }
  if (chromiumPid && alive(chromiumPid)) killTree(chromiumPid, 'SIGKILL');
  if (codeServer?.pid && codeServer.exitCode === null && codeServer.signalCode === null) {
    killTree(codeServer.pid, 'SIGTERM');
    const gone = await Promise.race([
      new Promise((r) => codeServer.once('exit', () => r(true))),
      sleep(5000).then(() => false),
    ]);
    if (!gone) killTree(codeServer.pid, 'SIGKILL');
  }
  // The extension host and other helpers share code-server's group; make sure none outlive it.
  if (codeServer?.pid) killTree(codeServer.pid, 'SIGKILL');
  stopped = true;
}

async function finish(code, reason) {
  if (finished) return;
  finished = true;
  clearTimeout(overallTimer);
  if (reason) say(reason);
  if (page && (code !== 0 || opts.screenshots)) {
    await screenshot(code === 0 ? 'final' : 'failure');
  }
  await stopAll();
  cleanUp(code !== 0 || Boolean(opts.logs));
  say(`exit code ${code}`);
  process.exit(code);
}

// Keeps only the logs (and screenshots) of the run: after a failure, or always with --logs.
function cleanUp(keepLogs) {
  try {
    if (keepLogs) {
      // The server side logs: extension host log and every log output channel of the extensions
      // (e.g. a language client's channel created with { log: true }) under exthost1/<ext id>/.
      const serverLogs = path.join(userDataDir, 'logs');
      if (fs.existsSync(serverLogs)) fs.cpSync(serverLogs, path.join(logsDir, 'server'), { recursive: true });
      say(`logs: ${logsDir}${screenshotsDir !== logsDir ? `, screenshots: ${screenshotsDir}` : ''}`);
    }
    for (const entry of fs.readdirSync(runDir)) {
      const p = path.join(runDir, entry);
      if (!(keepLogs && p === logsDir)) fs.rmSync(p, { recursive: true, force: true });
    }
    if (fs.readdirSync(runDir).length === 0) fs.rmdirSync(runDir);
  } catch (e) {
    say(`cleanup of ${runDir} failed: ${e.message}`);
  }
}

async function screenshot(name) {
  const file = path.join(screenshotsDir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.png`);
  try {
    await Promise.race([page.screenshot({ path: file }), sleep(10000).then(() => Promise.reject(new Error('timed out')))]);
    say(`screenshot: ${file}`);
  } catch (e) {
    say(`screenshot failed: ${e.message}`);
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function tail(file, lines = 40) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => finish(130, `received ${sig}, stopping`));
}
process.on('unhandledRejection', (e) => finish(1, `harness error: ${e?.stack || e}`));
process.on('uncaughtException', (e) => finish(1, `harness error: ${e?.stack || e}`));

overallTimer = setTimeout(() => {
  say(`TIMEOUT: the tests did not finish within ${opts.timeout} s`);
  console.error(`----- last lines of ${codeServerLog} -----\n${tail(codeServerLog, 20)}`);
  console.error(`----- last lines of ${browserLog} -----\n${tail(browserLog, 20)}\n-----`);
  finish(124);
}, timeoutMs);

// --------------------------------------------------------------------------------- code-server
function makeLineSplitter(onLine) {
  let buf = '';
  return (chunk) => {
    buf += chunk.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  };
}

async function startCodeServer(port) {
  const args = codeServerArgs({ port, userDataDir, extensionsDir, configFile, untrusted: opts.untrusted, workspace: workspacePath });

  const out = fs.createWriteStream(codeServerLog);
  say(`starting code-server on 127.0.0.1:${port} (log: ${codeServerLog})`);
  codeServer = spawn(codeServerBin, args, {
    detached: true, // own process group, see killTree()
    stdio: ['ignore', 'pipe', 'pipe'],
    env: codeServerEnv(runDir, runTmp),
  });
  const onLine = (line) => {
    out.write(line + '\n');
    forwardServerLine(line);
  };
  codeServer.stdout.on('data', makeLineSplitter(onLine));
  codeServer.stderr.on('data', makeLineSplitter(onLine));
  codeServer.on('exit', (code, signal) => {
    if (!finished) {
      console.error(`\n----- last lines of ${codeServerLog} -----\n${tail(codeServerLog)}\n-----`);
      finish(1, `code-server exited unexpectedly (code ${code}, signal ${signal})`);
    }
  });

  // Ready when /healthz answers 200 (the workbench page itself is served from then on).
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if ((await httpStatus(`http://127.0.0.1:${port}/healthz`)) === 200) {
      say('code-server is ready');
      return;
    }
    await sleep(250);
  }
  console.error(`\n----- last lines of ${codeServerLog} -----\n${tail(codeServerLog)}\n-----`);
  await finish(1, 'code-server did not answer on /healthz within 60 s');
}

// code-server's own stdout carries server events only (the extension host's console does not
// go there): keep it in the log file and show only lines that signal trouble.
function forwardServerLine(line) {
  if (finished) return; // shutdown noise (watchers killed, sockets reset)
  // The extension host exits with 0 once the suite has settled, failures included; anything else
  // is a crash, after which the workbench may never call codeAutomationExit. Give it a moment to
  // report anyway, then fail instead of waiting for the overall timeout.
  const crash = /Extension Host Process exited with code: (\w+), signal: (\w+)/.exec(line);
  if (crash && (crash[1] !== '0' || crash[2] !== 'null')) {
    extHostCrash = `the extension host crashed (code ${crash[1]}, signal ${crash[2]})`;
    setTimeout(() => finish(1, extHostCrash), 10_000).unref();
  }
  if (/\b(error|exited with code: [1-9]|uncaught|ENOSPC|EADDRINUSE)\b/i.test(line) && !isNoise(line)) {
    console.log(`[code-server] ${line.length > 300 ? line.slice(0, 300) + ' ...' : line}`);
  }
}

// ------------------------------------------------------------------------------------- browser
function findChromiumPid() {
  // playwright-core does not expose the PID of a persistent context's browser: find the direct
  // child of this process whose command line carries our (unique) profile folder.
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes(browserProfileDir)) return Number(entry);
    } catch {
      /* process went away */
    }
  }
  return undefined;
}

async function main() {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    usage(`cannot load playwright-core (npm install in ${REPO_ROOT}): ${e.message}`);
  }

  const port = await freePort();
  await startCodeServer(port);
  if (finished) return;

  const browserOut = fs.createWriteStream(browserLog);
  say(`launching ${CHROMIUM}`);
  context = await chromium.launchPersistentContext(browserProfileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 900 },
    // Chromium's crash reporter writes to $XDG_CONFIG_HOME/chromium whatever the profile dir is.
    env: {
      ...process.env,
      XDG_CONFIG_HOME: path.join(runDir, 'xdg-config'),
      XDG_CACHE_HOME: path.join(runDir, 'xdg-cache'),
    },
    // We handle signals ourselves (finish() closes the browser and code-server).
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  chromiumPid = findChromiumPid();
  say(`chromium pid ${chromiumPid ?? '(not found)'}`);

  page = context.pages()[0] || (await context.newPage());

  let resolveExit;
  const exitCode = new Promise((r) => (resolveExit = r));
  // The workbench calls window.codeAutomationExit(code, logs) when the test entry's run() settles
  // (code 0 if it resolved, 1 if it rejected); logs are the workbench's own log files.
  await page.exposeFunction('codeAutomationExit', (code, logs) => {
    try {
      for (const { relativePath, contents } of logs || []) {
        const file = path.join(logsDir, 'workbench', relativePath);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, contents);
      }
    } catch (e) {
      say(`could not save workbench logs: ${e.message}`);
    }
    resolveExit(Number(code));
  });

  page.on('console', (msg) => {
    // Formatting is async (argument handles); chain it so lines keep their order.
    consoleQueue = consoleQueue.then(async () => {
      const { level, text } = await formatConsoleMessage(msg);
      browserOut.write(`[${level}] ${text}\n`);
      forwardBrowserLine(level, text);
    });
  });
  page.on('pageerror', (err) => browserOut.write(`[pageerror] ${err.stack || err}\n`));
  page.on('response', (res) => {
    if (res.status() >= 400) browserOut.write(`[http ${res.status()}] ${res.url()}\n`);
  });
  page.on('crash', () => finish(1, 'the browser page crashed'));

  const url = workbenchUrl(port, { workspace: workspacePath, extension: extensionPath, tests: testsPath });
  say(`opening ${url}`);
  say(`extension: ${extensionPath}`);
  say(`tests:     ${testsPath}`);
  say(`workspace: ${workspacePath}${opts.untrusted ? ' (untrusted: Restricted Mode)' : ''}`);
  await page.goto(url, { waitUntil: 'domcontentloaded' });

  let code = await exitCode;
  await sleep(500); // let the last console lines and code-server's log arrive
  await consoleQueue;
  // When the extension host dies mid-suite the workbench still calls codeAutomationExit(0):
  // only trust a 0 if the host did not crash and mocha printed its summary.
  if (code === 0 && extHostCrash) {
    await finish(1, `${extHostCrash}; the workbench reported 0, treating the run as failed`);
  } else if (code === 0 && !sawMochaSummary) {
    await finish(1, 'the workbench reported 0 but mocha never printed its "N passing" summary; treating the run as failed');
  }
  await finish(code, `tests finished with code ${code}`);
}

// In a test run (extensionTestsPath set) the workbench routes every console.* call of the
// extension host (mocha's spec reporter, console.log in tests and in the extension) to its log
// service, which prints them in the browser console as ('%c INFO', 'color: #33f', format, ...args).
// That is the only place the test output appears, so rebuild each line with util.format and
// print it. The workbench's own log lines use the same path: the known chatty ones are kept in
// browser-console.log only.
const NOISE = [
  /^Resolv(ing|ed) connection token/,
  /^Creating a socket/,
  /^Updating additional builtin extensions cache/,
  /^Ignoring fetching additional builtin extensions from gallery/,
  /^Creation of workbench contribution '.*' took \d+ms/,
  /^\[Service Worker\]/,
  /^ChatSessionStore:/,
  /^Overwriting extension <</,
  /^The web worker extension host is started in a same-origin iframe/,
  /^An iframe which has both allow-scripts and allow-same-origin/,
  /^Failed to load resource: the server responded with a status of 404/,
  /open-vsx\.org|marketplace\.visualstudio\.com|ERR_NAME_NOT_RESOLVED|ENOTFOUND/,
  /vsda/,
];
function isNoise(text) {
  return NOISE.some((re) => re.test(text));
}

async function formatConsoleMessage(msg) {
  let args;
  try {
    args = await Promise.all(msg.args().map((h) => h.jsonValue()));
  } catch {
    return { level: msg.type(), text: msg.text() }; // page already gone: best effort
  }
  let level = msg.type();
  const m = typeof args[0] === 'string' && /^%c\s*(TRACE|DEBUG|INFO|WARN|ERR)\b/.exec(args[0]);
  if (m && typeof args[1] === 'string' && args[1].startsWith('color:')) {
    level = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warning', ERR: 'error' }[m[1]];
    args = args.slice(2);
  }
  const text = args.length ? util.format(...args) : msg.text();
  return { level, text };
}

function forwardBrowserLine(level, text) {
  if (/^\s*\d+ passing \(/.test(text)) sawMochaSummary = true;
  if (isNoise(text)) return;
  const prefix = level === 'error' ? '[error] ' : level === 'warning' ? '[warn] ' : '';
  for (const line of text.split('\n')) {
    // Stack frames inside the workbench's own minified code say nothing useful in CI output.
    if (/^\s*at .*(\/static\/out\/vs\/|\/lib\/vscode\/out\/vs\/)/.test(line)) continue;
    console.log(prefix + line);
  }
}

main().catch((e) => finish(1, `harness error: ${e?.stack || e}`));
