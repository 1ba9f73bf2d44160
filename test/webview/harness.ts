/**
 * Runs a panel's built bundle in headless Chromium (playwright-core + Debian chromium, no browser
 * download), in a page made by the extension's own HTML builder (same CSP, same nonce handling), with a
 * stub `acquireVsCodeApi` that records what the panel posts and keeps its state.
 *
 *   const browser = await launchBrowser();
 *   const p = await openPanel(browser, { panel: 'experiments', theme: 'dark' });
 *   await p.waitForPosted((m) => m.type === 'ready');
 *   await p.send({ type: 'runs', ... });
 *   await p.expectClean();            // no dialog, no CSP violation, no page error
 *   await p.close(); await browser.close();
 *
 * Needs `node esbuild.mjs` first (dist/webviews/<panel>.js) and chromium (test/infra/install-code-server.sh).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { buildPanelHtml } from '../../client/src/panels/panel-html';

// The page's globals, for code passed to page.evaluate (the test tsconfig has no DOM lib).
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const window: any;
declare const document: any;
declare const MutationObserver: any;

export const REPO_ROOT = resolve(__dirname, '..', '..');
export const WEBVIEW_DIST = join(REPO_ROOT, 'dist', 'webviews');
export const CHROMIUM = process.env.MLP_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export type ThemeName = 'light' | 'dark' | 'high-contrast';

/** Why the browser tests cannot run here, or undefined when they can. */
export function unavailableReason(panel?: string): string | undefined {
  if (!existsSync(CHROMIUM)) return `chromium not found at ${CHROMIUM} (run test/infra/install-code-server.sh)`;
  if (panel && !existsSync(join(WEBVIEW_DIST, `${panel}.js`))) return `dist/webviews/${panel}.js is missing (run node esbuild.mjs)`;
  return undefined;
}

export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

// A subset of the variables VS Code defines, with the values of its default themes.
const COMMON_VARS: Record<string, string> = {
  '--vscode-font-family': '-apple-system, BlinkMacSystemFont, "Segoe WPC", "Segoe UI", "Ubuntu", "Droid Sans", sans-serif',
  '--vscode-font-size': '13px',
  '--vscode-font-weight': 'normal',
  '--vscode-editor-font-family': 'Menlo, Monaco, "Courier New", monospace',
  '--vscode-editor-font-size': '12px',
};
export const THEMES: Record<ThemeName, { bodyClass: string; vars: Record<string, string> }> = {
  light: {
    bodyClass: 'vscode-light',
    vars: {
      '--vscode-foreground': '#3b3b3b', '--vscode-descriptionForeground': '#717171', '--vscode-errorForeground': '#f85149', '--vscode-focusBorder': '#005fb8',
      '--vscode-editor-background': '#ffffff', '--vscode-editor-foreground': '#3b3b3b', '--vscode-sideBar-background': '#f8f8f8', '--vscode-panel-border': '#e5e5e5', '--vscode-widget-border': '#e5e5e5',
      '--vscode-input-background': '#ffffff', '--vscode-input-foreground': '#3b3b3b', '--vscode-input-border': '#cecece', '--vscode-input-placeholderForeground': '#767676',
      '--vscode-inputValidation-errorBackground': '#f2dede', '--vscode-inputValidation-errorBorder': '#be1100', '--vscode-inputValidation-errorForeground': '#3b3b3b',
      '--vscode-inputOption-activeBackground': '#bed6ed', '--vscode-inputOption-activeBorder': '#005fb8', '--vscode-inputOption-activeForeground': '#000000',
      '--vscode-button-background': '#005fb8', '--vscode-button-foreground': '#ffffff', '--vscode-button-hoverBackground': '#0258a8', '--vscode-button-secondaryBackground': '#e5e5e5', '--vscode-button-secondaryForeground': '#3b3b3b', '--vscode-button-border': '#0000001a',
      '--vscode-dropdown-background': '#ffffff', '--vscode-dropdown-foreground': '#3b3b3b', '--vscode-dropdown-border': '#cecece', '--vscode-checkbox-background': '#f8f8f8', '--vscode-checkbox-border': '#cecece', '--vscode-checkbox-foreground': '#3b3b3b',
      '--vscode-list-hoverBackground': '#f2f2f2', '--vscode-list-activeSelectionBackground': '#e8e8e8', '--vscode-list-activeSelectionForeground': '#000000', '--vscode-list-inactiveSelectionBackground': '#e4e6f1', '--vscode-list-focusOutline': '#005fb8',
      '--vscode-editorWidget-background': '#f8f8f8', '--vscode-toolbar-hoverBackground': '#b8b8b850', '--vscode-icon-foreground': '#3b3b3b', '--vscode-badge-background': '#cccccc', '--vscode-badge-foreground': '#3b3b3b',
      '--vscode-textLink-foreground': '#005fb8', '--vscode-textLink-activeForeground': '#005fb8', '--vscode-keybindingTable-headerBackground': '#f3f3f3', '--vscode-editor-selectionBackground': '#add6ff',
      '--vscode-charts-foreground': '#616161', '--vscode-charts-lines': '#61616180', '--vscode-charts-red': '#e51400', '--vscode-charts-blue': '#1a85ff', '--vscode-charts-yellow': '#bf8803', '--vscode-charts-orange': '#d18616', '--vscode-charts-green': '#388a34', '--vscode-charts-purple': '#652d90',
      '--vscode-testing-iconPassed': '#388a34', '--vscode-testing-iconFailed': '#f14c4c', '--vscode-testing-iconQueued': '#cca700', '--vscode-testing-iconSkipped': '#848484',
      '--vscode-scrollbarSlider-background': '#64646466', '--vscode-scrollbarSlider-hoverBackground': '#646464b3', '--vscode-contrastBorder': 'transparent', '--vscode-contrastActiveBorder': 'transparent',
    },
  },
  dark: {
    bodyClass: 'vscode-dark',
    vars: {
      '--vscode-foreground': '#cccccc', '--vscode-descriptionForeground': '#9d9d9d', '--vscode-errorForeground': '#f85149', '--vscode-focusBorder': '#0078d4',
      '--vscode-editor-background': '#1f1f1f', '--vscode-editor-foreground': '#cccccc', '--vscode-sideBar-background': '#181818', '--vscode-panel-border': '#2b2b2b', '--vscode-widget-border': '#313131',
      '--vscode-input-background': '#313131', '--vscode-input-foreground': '#cccccc', '--vscode-input-border': '#3c3c3c', '--vscode-input-placeholderForeground': '#989898',
      '--vscode-inputValidation-errorBackground': '#5a1d1d', '--vscode-inputValidation-errorBorder': '#be1100', '--vscode-inputValidation-errorForeground': '#cccccc',
      '--vscode-inputOption-activeBackground': '#2489db82', '--vscode-inputOption-activeBorder': '#2488db', '--vscode-inputOption-activeForeground': '#ffffff',
      '--vscode-button-background': '#0078d4', '--vscode-button-foreground': '#ffffff', '--vscode-button-hoverBackground': '#026ec1', '--vscode-button-secondaryBackground': '#313131', '--vscode-button-secondaryForeground': '#cccccc', '--vscode-button-border': '#ffffff12',
      '--vscode-dropdown-background': '#313131', '--vscode-dropdown-foreground': '#cccccc', '--vscode-dropdown-border': '#3c3c3c', '--vscode-checkbox-background': '#313131', '--vscode-checkbox-border': '#3c3c3c', '--vscode-checkbox-foreground': '#cccccc',
      '--vscode-list-hoverBackground': '#2a2d2e', '--vscode-list-activeSelectionBackground': '#04395e', '--vscode-list-activeSelectionForeground': '#ffffff', '--vscode-list-inactiveSelectionBackground': '#37373d', '--vscode-list-focusOutline': '#0078d4',
      '--vscode-editorWidget-background': '#202020', '--vscode-toolbar-hoverBackground': '#5a5d5e50', '--vscode-icon-foreground': '#cccccc', '--vscode-badge-background': '#616161', '--vscode-badge-foreground': '#f8f8f8',
      '--vscode-textLink-foreground': '#4daafc', '--vscode-textLink-activeForeground': '#4daafc', '--vscode-keybindingTable-headerBackground': '#252526', '--vscode-editor-selectionBackground': '#264f78',
      '--vscode-charts-foreground': '#cccccc', '--vscode-charts-lines': '#cccccc80', '--vscode-charts-red': '#f14c4c', '--vscode-charts-blue': '#3794ff', '--vscode-charts-yellow': '#cca700', '--vscode-charts-orange': '#d18616', '--vscode-charts-green': '#89d185', '--vscode-charts-purple': '#b180d7',
      '--vscode-testing-iconPassed': '#73c991', '--vscode-testing-iconFailed': '#f14c4c', '--vscode-testing-iconQueued': '#cca700', '--vscode-testing-iconSkipped': '#848484',
      '--vscode-scrollbarSlider-background': '#79797966', '--vscode-scrollbarSlider-hoverBackground': '#646464b3', '--vscode-contrastBorder': 'transparent', '--vscode-contrastActiveBorder': 'transparent',
    },
  },
  'high-contrast': {
    bodyClass: 'vscode-high-contrast',
    vars: {
      '--vscode-foreground': '#ffffff', '--vscode-descriptionForeground': '#ffffffb3', '--vscode-errorForeground': '#f48771', '--vscode-focusBorder': '#f38518',
      '--vscode-editor-background': '#000000', '--vscode-editor-foreground': '#ffffff', '--vscode-sideBar-background': '#000000', '--vscode-panel-border': '#6fc3df', '--vscode-widget-border': '#6fc3df',
      '--vscode-input-background': '#000000', '--vscode-input-foreground': '#ffffff', '--vscode-input-border': '#6fc3df', '--vscode-input-placeholderForeground': '#ffffffb3',
      '--vscode-inputValidation-errorBackground': '#000000', '--vscode-inputValidation-errorBorder': '#6fc3df', '--vscode-inputValidation-errorForeground': '#ffffff',
      '--vscode-inputOption-activeBackground': '#00000000', '--vscode-inputOption-activeBorder': '#6fc3df', '--vscode-inputOption-activeForeground': '#ffffff',
      '--vscode-button-background': '#000000', '--vscode-button-foreground': '#ffffff', '--vscode-button-hoverBackground': '#000000', '--vscode-button-secondaryBackground': '#000000', '--vscode-button-secondaryForeground': '#ffffff', '--vscode-button-border': '#6fc3df',
      '--vscode-dropdown-background': '#000000', '--vscode-dropdown-foreground': '#ffffff', '--vscode-dropdown-border': '#6fc3df', '--vscode-checkbox-background': '#000000', '--vscode-checkbox-border': '#6fc3df', '--vscode-checkbox-foreground': '#ffffff',
      '--vscode-list-hoverBackground': '#00000000', '--vscode-list-activeSelectionBackground': '#00000000', '--vscode-list-activeSelectionForeground': '#ffffff', '--vscode-list-inactiveSelectionBackground': '#00000000', '--vscode-list-focusOutline': '#f38518',
      '--vscode-editorWidget-background': '#0c141f', '--vscode-toolbar-hoverBackground': '#00000000', '--vscode-icon-foreground': '#ffffff', '--vscode-badge-background': '#000000', '--vscode-badge-foreground': '#ffffff',
      '--vscode-textLink-foreground': '#21a6ff', '--vscode-textLink-activeForeground': '#21a6ff', '--vscode-keybindingTable-headerBackground': '#000000', '--vscode-editor-selectionBackground': '#ffffff',
      '--vscode-charts-foreground': '#ffffff', '--vscode-charts-lines': '#ffffff80', '--vscode-charts-red': '#f14c4c', '--vscode-charts-blue': '#3794ff', '--vscode-charts-yellow': '#ffd700', '--vscode-charts-orange': '#d18616', '--vscode-charts-green': '#89d185', '--vscode-charts-purple': '#b180d7',
      '--vscode-testing-iconPassed': '#73c991', '--vscode-testing-iconFailed': '#f14c4c', '--vscode-testing-iconQueued': '#ffd700', '--vscode-testing-iconSkipped': '#848484',
      '--vscode-scrollbarSlider-background': '#6fc3df99', '--vscode-scrollbarSlider-hoverBackground': '#6fc3dfcc', '--vscode-contrastBorder': '#6fc3df', '--vscode-contrastActiveBorder': '#f38518',
    },
  },
};

// Colours VS Code derives from others (used by @vscode-elements components).
for (const t of Object.values(THEMES)) {
  const v = t.vars;
  Object.assign(v, {
    '--vscode-settings-textInputBackground': v['--vscode-input-background'],
    '--vscode-settings-textInputForeground': v['--vscode-input-foreground'],
    '--vscode-settings-textInputBorder': v['--vscode-input-border'],
    '--vscode-settings-dropdownBackground': v['--vscode-dropdown-background'],
    '--vscode-settings-dropdownForeground': v['--vscode-dropdown-foreground'],
    '--vscode-settings-dropdownBorder': v['--vscode-dropdown-border'],
    '--vscode-settings-dropdownListBorder': v['--vscode-widget-border'],
    '--vscode-settings-checkboxBackground': v['--vscode-checkbox-background'],
    '--vscode-settings-checkboxForeground': v['--vscode-checkbox-foreground'],
    '--vscode-settings-checkboxBorder': v['--vscode-checkbox-border'],
    '--vscode-button-secondaryHoverBackground': v['--vscode-button-secondaryBackground'],
    '--vscode-button-separator': v['--vscode-button-foreground'],
    '--vscode-list-highlightForeground': v['--vscode-textLink-foreground'],
    '--vscode-list-focusHighlightForeground': v['--vscode-textLink-foreground'],
    '--vscode-list-hoverForeground': v['--vscode-foreground'],
    '--vscode-widget-shadow': '#0000005c',
    '--vscode-toolbar-hoverOutline': 'transparent',
  });
}

/**
 * Hostile strings for every field that shows user data. Each one, if it were ever parsed as markup or
 * evaluated, would open a dialog, set `window.__xss`, or leave an element carrying `data-xss`.
 */
export const XSS_CORPUS: string[] = [
  '<img src=x onerror="window.__xss=1;alert(1)" data-xss>',
  '"><script data-xss>window.__xss=2;alert(2)</script>',
  "'><svg data-xss onload=alert(3)>",
  '<iframe data-xss src="javascript:alert(4)"></iframe>',
  '<b data-xss onmouseover=alert(5)>bold</b>',
  'javascript:alert(6)',
  '</div><div data-xss>escaped?</div>',
  '{{constructor.constructor("alert(7)")()}}',
  '${alert(8)}',
  '<style data-xss>body{display:none}</style>',
  '<a data-xss href="javascript:alert(9)">x</a>',
  '<details data-xss open ontoggle=alert(10)>',
  '\u202Egnp.exe<img data-xss src=x onerror=alert(11)>',
  '<math><mtext><table><mglyph><style><img data-xss src=x onerror=alert(12)>',
];

export interface PanelPage {
  page: Page;
  url: string;
  nonce: string;
  /** Messages the panel posted through acquireVsCodeApi().postMessage, oldest first. */
  posted(): Promise<Array<{ type: string; [k: string]: unknown }>>;
  /** Waits for a posted message matching `pred` (at or after index `from`) and returns it. */
  waitForPosted(pred: (m: { type: string; [k: string]: unknown }) => boolean, opts?: { from?: number; timeoutMs?: number }): Promise<{ type: string; [k: string]: unknown }>;
  clearPosted(): Promise<void>;
  /** Sends a message as the extension host would (a window message event). Anything goes: also malformed values. */
  send(message: unknown): Promise<void>;
  /** The state the panel saved with setState. */
  state(): Promise<unknown>;
  setTheme(theme: ThemeName): Promise<void>;
  /** CSP violations seen so far (securitypolicyviolation events), e.g. "script-src-elem blocked inline". */
  violations(): Promise<string[]>;
  /** Dialogs (alert/confirm/prompt) opened so far: always a failure. */
  dialogs: string[];
  /** Uncaught page errors. */
  errors: string[];
  /** Console messages of type error/warning. */
  consoleMessages: string[];
  /** Elements anywhere in the page (shadow roots included) that hostile input injected. */
  injected(): Promise<string[]>;
  /** Throws if any dialog, CSP violation, page error, injected element or `window.__xss` was seen. */
  expectClean(): Promise<void>;
  screenshot(file: string): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** The panel folder (dist/webviews/<panel>.js). */
  panel: string;
  theme?: ThemeName;
  /** State getState() returns at load (as after a reload). */
  state?: unknown;
  viewport?: { width: number; height: number };
  title?: string;
}

const MIME: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.ttf': 'font/ttf', '.woff2': 'font/woff2', '.map': 'application/json', '.html': 'text/html' };

/** Serves dist/webviews and the panel page on 127.0.0.1; one per panel page (closed with it). */
async function serve(panel: string, title: string): Promise<{ server: Server; url: string; nonce: string }> {
  let page = { html: '', nonce: '' };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === '/panel.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(page.html);
      return;
    }
    const rel = normalize(decodeURIComponent(url.pathname.replace(/^\/webviews\//, '')));
    const file = join(WEBVIEW_DIST, rel);
    if (!url.pathname.startsWith('/webviews/') || !file.startsWith(WEBVIEW_DIST + sep) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The same builder as the extension, with the test server as the webview's resource origin.
  page = buildPanelHtml({ cspSource: origin, scriptUri: `${origin}/webviews/${panel}.js`, styleUri: `${origin}/webviews/${panel}.css`, title });
  return { server, url: `${origin}/panel.html`, nonce: page.nonce };
}

export async function openPanel(browser: Browser, opts: OpenOptions): Promise<PanelPage> {
  const why = unavailableReason(opts.panel);
  if (why) throw new Error(why);
  const { server, url, nonce } = await serve(opts.panel, opts.title ?? opts.panel);
  const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1200, height: 800 } });
  const page = await context.newPage();
  const theme = THEMES[opts.theme ?? 'dark'];
  const dialogs: string[] = [];
  const errors: string[] = [];
  const consoleMessages: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss().catch(() => undefined);
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') consoleMessages.push(`${m.type()}: ${m.text()}`);
  });
  // tsx compiles the functions below with esbuild's keepNames, which calls a `__name` helper the page lacks.
  await page.addInitScript({ content: 'globalThis.__name = (f) => f;' });
  // Runs before the page's own scripts, outside its CSP (as VS Code's own webview preload does).
  await page.addInitScript(
    ({ initialState, vars, bodyClass }: { initialState: unknown; vars: Record<string, string>; bodyClass: string }) => {
      const w = window;
      w.__mlpPosted = [];
      w.__mlpViolations = [];
      w.__mlpState = initialState === undefined ? undefined : JSON.parse(JSON.stringify(initialState));
      let acquired = false;
      w.acquireVsCodeApi = () => {
        if (acquired) throw new Error('An instance of the VS Code API has already been acquired');
        acquired = true;
        return Object.freeze({
          // Structured clone, as the real postMessage does: functions or DOM nodes would throw here too.
          postMessage: (m: unknown) => w.__mlpPosted.push(structuredClone(m)),
          getState: () => w.__mlpState,
          setState: (s: unknown) => {
            w.__mlpState = structuredClone(s);
            return s;
          },
        });
      };
      document.addEventListener('securitypolicyviolation', (e: any) => w.__mlpViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}${e.sample ? `: ${e.sample}` : ''}`));
      // <html> and <body> do not exist yet when this runs: theme them as soon as the parser creates them.
      const apply = (): boolean => {
        if (!document.documentElement || !document.body) return false;
        for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);
        document.body.classList.add(bodyClass);
        document.body.dataset.vscodeThemeKind = bodyClass;
        return true;
      };
      if (!apply()) {
        const mo = new MutationObserver(() => apply() && mo.disconnect());
        mo.observe(document, { childList: true, subtree: true });
      }
    },
    { initialState: opts.state, vars: { ...COMMON_VARS, ...theme.vars }, bodyClass: theme.bodyClass },
  );
  await page.goto(url);

  const posted = (): Promise<Array<{ type: string; [k: string]: unknown }>> => page.evaluate(() => window.__mlpPosted);
  const injected = (): Promise<string[]> =>
    page.evaluate(() => {
      const found: string[] = [];
      const visit = (root: any): void => {
        for (const el of root.querySelectorAll('*')) {
          const tag = el.tagName.toLowerCase();
          const attrs = [...el.attributes].map((a: any) => a.name);
          const bad = attrs.some((a: string) => a === 'data-xss' || /^on/.test(a)) || tag === 'iframe' || (tag === 'script' && !el.nonce && !el.src) || (tag === 'img' && el.getAttribute('src') === 'x');
          if (bad) found.push(`<${tag} ${attrs.join(' ')}>`);
          if (el.shadowRoot) visit(el.shadowRoot);
        }
      };
      visit(document);
      return found;
    });
  const p: PanelPage = {
    page,
    url,
    nonce,
    posted,
    async waitForPosted(pred, o = {}) {
      const deadline = Date.now() + (o.timeoutMs ?? 5000);
      for (;;) {
        const all = await posted();
        const hit = all.slice(o.from ?? 0).find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no matching message was posted; posted: ${JSON.stringify(all.map((m) => m.type))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    clearPosted: () => page.evaluate(() => void (window.__mlpPosted = [])),
    send: (message) => page.evaluate((m) => window.postMessage(m, '*'), message as never),
    state: () => page.evaluate(() => window.__mlpState),
    setTheme: (name) =>
      page.evaluate(
        ({ vars, bodyClass, all }) => {
          for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);
          document.body.classList.remove(...all);
          document.body.classList.add(bodyClass);
          document.body.dataset.vscodeThemeKind = bodyClass;
        },
        { vars: { ...COMMON_VARS, ...THEMES[name].vars }, bodyClass: THEMES[name].bodyClass, all: Object.values(THEMES).map((t) => t.bodyClass) },
      ),
    violations: () => page.evaluate(() => window.__mlpViolations),
    dialogs,
    errors,
    consoleMessages,
    injected,
    async expectClean() {
      const [violations, inj, xss] = await Promise.all([p.violations(), injected(), page.evaluate(() => window.__xss)]);
      const problems = [...dialogs.map((d) => `dialog ${d}`), ...violations.map((v) => `CSP ${v}`), ...errors.map((e) => `page error ${e}`), ...inj.map((i) => `injected ${i}`), ...(xss !== undefined ? [`window.__xss = ${xss}`] : [])];
      if (problems.length) throw new Error(`the panel is not clean:\n  ${problems.join('\n  ')}`);
    },
    screenshot: async (file) => {
      await page.screenshot({ path: file });
    },
    async close() {
      await context.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return p;
}
