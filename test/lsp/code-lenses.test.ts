import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StdioClient } from '../helpers/lsp-client';

const SPEC = 'apiVersion: mlpipeline/v1\nname: l\nsteps:\n  a:\n    command: x\n';

async function lensesWith(initializationOptions: unknown): Promise<{ command?: { command: string } }[]> {
  const c = new StdioClient();
  try {
    await c.conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions });
    await c.conn.sendNotification('initialized', {});
    await c.open('file:///l/mlpipeline.yaml', SPEC);
    await c.diagnostics('file:///l/mlpipeline.yaml', 1);
    return (await c.conn.sendRequest('textDocument/codeLens', { textDocument: { uri: 'file:///l/mlpipeline.yaml' } })) as { command?: { command: string } }[];
  } finally {
    await c.shutdown();
  }
}

describe('LSP over stdio: code lenses', () => {
  it('are sent only to a client that declares the commands they run', async () => {
    assert.deepEqual(await lensesWith(undefined), []);
    assert.deepEqual((await lensesWith({ commands: ['mlpipeline.runPipeline', 'mlpipeline.runStep'] })).map((l) => l.command?.command), ['mlpipeline.runPipeline', 'mlpipeline.runStep']);
  });
});
