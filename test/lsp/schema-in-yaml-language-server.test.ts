import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { StdioClient } from '../helpers/lsp-client';
import { textAt } from '../helpers/spec';

const ROOT = resolve(__dirname, '../..');
const YLS = resolve(ROOT, 'node_modules/yaml-language-server/bin/yaml-language-server');
const SCHEMA_URL = pathToFileURL(resolve(ROOT, 'schemas/mlpipeline.schema.json')).href;

/** The published schema works as-is in other YAML tooling: yaml-language-server 1.25, via a modeline. */
describe('schemas/mlpipeline.schema.json in yaml-language-server', () => {
  let yls: StdioClient;
  before(async () => {
    // It publishes without a document version, so waits match on the URI alone.
    // Settings for every section it asks for; the schema store is off so nothing goes to the network.
    yls = new StdioClient({ validate: true, hover: true, completion: true, schemaStore: { enable: false }, format: { enable: false } }, [YLS, '--stdio']);
    await yls.initialize();
  });
  after(async () => {
    await yls.shutdown();
  });

  for (const sample of ['churn-local', 'gpu-k8s-s3', 'sweep-deploy']) {
    it(`accepts samples/${sample} without a problem`, async () => {
      const text = `# yaml-language-server: $schema=${SCHEMA_URL}\n` + readFileSync(resolve(ROOT, `samples/${sample}/mlpipeline.yaml`), 'utf8');
      const uri = `file:///yls/${sample}/mlpipeline.yaml`;
      await yls.open(uri, text);
      assert.deepEqual(await yls.diagnostics(uri, undefined, 10_000), []);
    });
  }

  it('reports unknown keys, wrong enums and bad patterns with the schema\'s own messages', async () => {
    const text = `# yaml-language-server: $schema=${SCHEMA_URL}\napiVersion: mlpipeline/v1\nname: x\nsteps:\n  train:\n    command: python t.py\n    comand: typo\n    timeout: 6 hours\n    retry: {max: 1, on: [preempt]}\n`;
    const uri = 'file:///yls/bad/mlpipeline.yaml';
    await yls.open(uri, text);
    const diags = await yls.diagnostics(uri, undefined, 10_000);
    const at = diags.map((d) => textAt(text, d.range));
    assert.ok(at.includes('comand'), JSON.stringify(diags));
    assert.ok(at.includes('preempt'), JSON.stringify(diags));
    const timeout = diags.find((d) => textAt(text, d.range) === '6 hours');
    assert.ok(timeout, JSON.stringify(diags));
    assert.match(String(timeout.message), /duration/i, 'patternErrorMessage is shown');
  });
});
