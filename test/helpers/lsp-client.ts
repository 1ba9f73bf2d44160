import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import type { Diagnostic, PublishDiagnosticsParams } from 'vscode-languageserver-protocol';

export const SERVER = resolve(__dirname, '../../dist/server/server.js');

/**
 * A real LSP client over stdio against the bundled server (dist/), the way editors other than VS Code
 * run it. Diagnostics are collected per URI so tests can wait for a given document version.
 */
export class StdioClient {
  readonly proc: ChildProcess;
  readonly conn: MessageConnection;
  private readonly published: PublishDiagnosticsParams[] = [];
  private readonly waiters: (() => void)[] = [];
  stderr = '';

  /** `args` defaults to our bundled server; the benchmark and peer tests pass another server's. */
  constructor(settings: Record<string, unknown> | null = null, args: string[] = [SERVER, '--stdio']) {
    this.proc = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr!.on('data', (d) => (this.stderr += String(d)));
    this.conn = createMessageConnection(new StreamMessageReader(this.proc.stdout!), new StreamMessageWriter(this.proc.stdin!));
    this.conn.onNotification('textDocument/publishDiagnostics', (p: PublishDiagnosticsParams) => {
      this.published.push(p);
      this.waiters.splice(0).forEach((w) => w());
    });
    this.conn.onRequest('workspace/configuration', (p: { items: unknown[] }) => p.items.map(() => settings));
    this.conn.listen();
  }

  async initialize(withConfiguration = true): Promise<unknown> {
    const result = await this.conn.sendRequest('initialize', {
      processId: process.pid,
      rootUri: null,
      capabilities: { workspace: { configuration: withConfiguration }, textDocument: { publishDiagnostics: { relatedInformation: true, versionSupport: true } } },
    });
    await this.conn.sendNotification('initialized', {});
    return result;
  }

  open(uri: string, text: string, version = 1): Promise<void> {
    return this.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'yaml', version, text } });
  }

  change(uri: string, version: number, changes: unknown[]): Promise<void> {
    return this.conn.sendNotification('textDocument/didChange', { textDocument: { uri, version }, contentChanges: changes });
  }

  /** Waits for diagnostics of this URI (and version, when given) published after `since`. */
  async diagnostics(uri: string, version?: number, timeoutMs = 5000): Promise<Diagnostic[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = [...this.published].reverse().find((p) => p.uri === uri && (version === undefined || p.version === version));
      if (hit) return hit.diagnostics;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no diagnostics for ${uri} v${version} within ${timeoutMs} ms; stderr: ${this.stderr}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  allPublished(uri: string): PublishDiagnosticsParams[] {
    return this.published.filter((p) => p.uri === uri);
  }

  async shutdown(): Promise<number | null> {
    try {
      await this.conn.sendRequest('shutdown');
      await this.conn.sendNotification('exit');
    } catch {
      // Already gone: the exit code tells.
    }
    const code = await new Promise<number | null>((res) => {
      if (this.proc.exitCode !== null) return res(this.proc.exitCode);
      const t = setTimeout(() => {
        this.proc.kill('SIGKILL');
        res(null);
      }, 3000);
      this.proc.on('exit', (c) => {
        clearTimeout(t);
        res(c);
      });
    });
    this.conn.dispose();
    return code;
  }
}
