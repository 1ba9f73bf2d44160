import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { specSelector } from './specs';

/**
 * The language client, started on first need (a spec is opened, or a run asks for a plan).
 * vscode-languageclient is loaded with a dynamic import, so activation does not pay for it.
 */
export class LanguageClientHost implements vscode.Disposable {
  private starting: Promise<LanguageClient> | undefined;
  private client: LanguageClient | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {}

  get running(): LanguageClient | undefined {
    return this.client;
  }

  start(): Promise<LanguageClient> {
    this.starting ??= this.doStart().catch((e: Error) => {
      this.starting = undefined;
      void vscode.window.showErrorMessage(`ML Pipeline: the language server did not start: ${e.message}. See the "ML Pipeline Language Server" output.`);
      throw e;
    });
    return this.starting;
  }

  private async doStart(): Promise<LanguageClient> {
    const { LanguageClient, TransportKind } = await import('vscode-languageclient/node');
    const module = this.context.asAbsolutePath('dist/server/server.js');
    const outputChannel = vscode.window.createOutputChannel('ML Pipeline Language Server', { log: true });
    this.context.subscriptions.push(outputChannel);
    const client = new LanguageClient(
      'mlpipeline',
      'ML Pipeline Language Server',
      {
        run: { module, transport: TransportKind.ipc },
        debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6019'] } },
      },
      {
        documentSelector: specSelector(),
        outputChannel,
        synchronize: { configurationSection: 'mlpipeline' },
        // The server offers "Run" code lenses only for commands the client says it has.
        initializationOptions: { commands: ['mlpipeline.runPipeline', 'mlpipeline.runStep', 'mlpipeline.openLineage'] },
      },
    );
    await client.start();
    this.client = client;
    return client;
  }

  async stop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    this.starting = undefined;
    await c?.stop();
  }

  dispose(): void {
    void this.stop();
  }
}
