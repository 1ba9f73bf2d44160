import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';

/** Files the language server handles; the same patterns the CLI searches for. */
export const SPEC_PATTERNS = ['**/mlpipeline.yaml', '**/mlpipeline.yml', '**/*.mlpipeline.yaml', '**/*.mlpipeline.yml'];

let client: LanguageClient | undefined;

/**
 * Activation stays cheap: the language server process starts only when a spec is first opened, so
 * editing other YAML files costs nothing.
 */
export function activate(context: vscode.ExtensionContext): void {
  const isSpec = (doc: vscode.TextDocument): boolean => vscode.languages.match(selector(), doc) > 0;
  const startIfSpec = (doc: vscode.TextDocument): void => {
    if (!client && isSpec(doc)) void startClient(context);
  };
  vscode.workspace.textDocuments.forEach(startIfSpec);
  context.subscriptions.push(vscode.workspace.onDidOpenTextDocument(startIfSpec));
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}

function selector(): { scheme: string; language: string; pattern: string }[] {
  return SPEC_PATTERNS.flatMap((pattern) => [
    { scheme: 'file', language: 'yaml', pattern },
    { scheme: 'untitled', language: 'yaml', pattern },
  ]);
}

async function startClient(context: vscode.ExtensionContext): Promise<void> {
  const module = context.asAbsolutePath('dist/server/server.js');
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc },
    debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6019'] } },
  };
  const outputChannel = vscode.window.createOutputChannel('ML Pipeline Language Server', { log: true });
  const clientOptions: LanguageClientOptions = {
    documentSelector: selector(),
    outputChannel,
    synchronize: { configurationSection: 'mlpipeline' },
  };
  client = new LanguageClient('mlpipeline', 'ML Pipeline Language Server', serverOptions, clientOptions);
  context.subscriptions.push(outputChannel);
  try {
    await client.start();
  } catch (e) {
    void vscode.window.showErrorMessage(`ML Pipeline: the language server did not start: ${(e as Error).message}. See the "ML Pipeline Language Server" output.`);
    throw e;
  }
}
