/**
 * The extension side of every panel: creates or reveals one webview panel per view type, serves it the
 * HTML of panel-html.ts, restricts it to dist/webviews, waits for the `ready` handshake before sending
 * anything, validates every message the webview posts (bad ones are logged and dropped), and restores the
 * panel after a reload through a WebviewPanelSerializer.
 *
 *   class FooPanel extends PanelHost<HostToFoo, FooToHost> { onReady(state) {...}; onMessage(m) {...} }
 *   const foo = new PanelRegistry(ctx.extension, FOO_PANEL, (panel) => new FooPanel(ctx, panel));
 *   foo.show();   // create or reveal
 */
import * as vscode from 'vscode';
import { describeBadMessage, isReadyMessage, type Guard } from '../../../webviews/src/protocol/common';
import { buildPanelHtml } from './panel-html';

export interface PanelSpec<FromWebview> {
  /** The webview panel type, also in package.json's `onWebviewPanel:<viewType>` activation event. */
  viewType: string;
  /** The panel folder: webviews/src/<bundle>/main.ts, built to dist/webviews/<bundle>.{js,css}. */
  bundle: string;
  title: string;
  /** The protocol's guard for messages from this panel's webview (`ready` is handled here). */
  isWebviewMessage: Guard<FromWebview>;
}

let log: vscode.LogOutputChannel | undefined;
/** The panels' log (created on first use). */
export function panelLog(): vscode.LogOutputChannel {
  log ??= vscode.window.createOutputChannel('ML Pipeline Panels', { log: true });
  return log;
}

/** Options every panel gets: scripts on, only dist/webviews readable. */
export function panelOptions(extensionUri: vscode.Uri): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return {
    enableScripts: true,
    enableCommandUris: false,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webviews')],
    retainContextWhenHidden: false,
  };
}

export abstract class PanelHost<ToWebview extends { type: string }, FromWebview extends { type: string }> implements vscode.Disposable {
  protected readonly disposables: vscode.Disposable[] = [];
  private isReadyNow = false;
  private resolveReady!: () => void;
  /** Resolves at the first `ready` from the webview. */
  readonly ready = new Promise<void>((r) => (this.resolveReady = r));
  /** Messages from the webview that failed validation (for tests and the log). */
  rejectedMessages = 0;
  private readonly disposeEmitter = new vscode.EventEmitter<void>();
  readonly onDidDispose = this.disposeEmitter.event;
  private disposed = false;

  constructor(
    protected readonly extensionUri: vscode.Uri,
    readonly panel: vscode.WebviewPanel,
    protected readonly spec: PanelSpec<FromWebview>,
  ) {
    const webview = panel.webview;
    webview.options = panelOptions(extensionUri);
    const dir = vscode.Uri.joinPath(extensionUri, 'dist', 'webviews');
    webview.html = buildPanelHtml({
      cspSource: webview.cspSource,
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(dir, `${spec.bundle}.js`)).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(dir, `${spec.bundle}.css`)).toString(),
      title: spec.title,
    }).html;
    this.disposables.push(
      webview.onDidReceiveMessage((m: unknown) => this.receive(m)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  /** The webview (re)loaded and listens: send it everything it shows. `state` is its saved getState(). */
  protected abstract onReady(state: unknown): void | Promise<void>;
  /** A validated message from the webview. */
  protected abstract onMessage(message: FromWebview): void | Promise<void>;

  get isReady(): boolean {
    return this.isReadyNow;
  }

  /** Sends a message; before `ready` (or after dispose) it is dropped and false is returned (onReady resends everything). */
  post(message: ToWebview): Thenable<boolean> {
    if (!this.isReadyNow || this.disposed) return Promise.resolve(false);
    return this.panel.webview.postMessage(message);
  }

  private receive(m: unknown): void {
    if (isReadyMessage(m)) {
      this.isReadyNow = true;
      this.resolveReady();
      this.run(() => this.onReady(m.state), 'ready');
      return;
    }
    if (!this.spec.isWebviewMessage(m)) {
      this.rejectedMessages++;
      panelLog().warn(`${this.spec.title}: ignored a message from the panel: ${describeBadMessage(m)}`);
      return;
    }
    this.run(() => this.onMessage(m), m.type);
  }

  private run(f: () => void | Promise<void>, what: string): void {
    try {
      void Promise.resolve(f()).catch((e: unknown) => this.fail(e, what));
    } catch (e) {
      this.fail(e, what);
    }
  }

  private fail(e: unknown, what: string): void {
    const msg = e instanceof Error ? e.message : String(e);
    panelLog().error(`${this.spec.title}: handling "${what}" failed: ${msg}`);
    void vscode.window.showErrorMessage(`ML Pipeline: ${this.spec.title}: ${msg}`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.isReadyNow = false;
    this.disposeEmitter.fire();
    this.disposeEmitter.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}

/**
 * One panel per view type: show() creates it or reveals the open one; after a window reload VS Code
 * hands the restored panel to the serializer registered here (activation event
 * `onWebviewPanel:<viewType>` in package.json), which builds a fresh host around it.
 */
export class PanelRegistry<H extends PanelHost<{ type: string }, { type: string }>> implements vscode.Disposable {
  private host: H | undefined;
  private readonly subs: vscode.Disposable[] = [];

  constructor(
    private readonly extension: vscode.ExtensionContext,
    private readonly spec: PanelSpec<unknown>,
    private readonly create: (panel: vscode.WebviewPanel) => H,
  ) {
    this.subs.push(
      vscode.window.registerWebviewPanelSerializer(spec.viewType, {
        deserializeWebviewPanel: async (panel: vscode.WebviewPanel) => {
          this.adopt(panel);
        },
      }),
    );
    extension.subscriptions.push(this);
  }

  get current(): H | undefined {
    return this.host;
  }

  /** Creates the panel or reveals the open one. */
  show(column: vscode.ViewColumn = vscode.ViewColumn.Active, preserveFocus = false): H {
    if (this.host) {
      this.host.panel.reveal(column, preserveFocus);
      return this.host;
    }
    const panel = vscode.window.createWebviewPanel(this.spec.viewType, this.spec.title, { viewColumn: column, preserveFocus }, panelOptions(this.extension.extensionUri));
    return this.adopt(panel);
  }

  private adopt(panel: vscode.WebviewPanel): H {
    this.host?.dispose();
    const host = this.create(panel);
    this.host = host;
    host.onDidDispose(() => {
      if (this.host === host) this.host = undefined;
    });
    return host;
  }

  dispose(): void {
    this.host?.dispose();
    for (const s of this.subs.splice(0)) s.dispose();
  }
}
