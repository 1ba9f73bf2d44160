import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { textAt } from '../helpers/spec';
import { StdioClient } from '../helpers/lsp-client';

const SPEC = `apiVersion: mlpipeline/v1
name: lsp-test
steps:
  prepare:
    command: python prep.py
  train:
    needs: [nope]
    command: python train.py
`;

describe('LSP over stdio: diagnostics', () => {
  let client: StdioClient;
  before(async () => {
    client = new StdioClient({ validation: { enable: true, unusedHints: true } });
    const init = (await client.initialize()) as { capabilities: { textDocumentSync: { change: number } }; serverInfo: { name: string } };
    assert.equal(init.serverInfo.name, 'mlpipeline-language-server');
    assert.equal(init.capabilities.textDocumentSync.change, 2, 'incremental sync');
  });
  after(async () => {
    assert.equal(await client.shutdown(), 0);
  });

  it('publishes diagnostics on open with code, source and the exact range', async () => {
    await client.open('file:///ws/mlpipeline.yaml', SPEC);
    const diags = await client.diagnostics('file:///ws/mlpipeline.yaml', 1);
    assert.equal(diags.length, 1);
    assert.equal(diags[0].code, 'MLP020');
    assert.equal(diags[0].source, 'mlpipeline');
    assert.equal(diags[0].severity, 1);
    assert.equal(textAt(SPEC, diags[0].range), 'nope');
  });

  it('republishes on an incremental change, as the user types', async () => {
    const line = SPEC.split('\n').findIndex((l) => l.includes('nope'));
    const character = SPEC.split('\n')[line].indexOf('nope');
    await client.change('file:///ws/mlpipeline.yaml', 2, [{ range: { start: { line, character }, end: { line, character: character + 4 } }, text: 'prepare' }]);
    assert.deepEqual(await client.diagnostics('file:///ws/mlpipeline.yaml', 2), []);
    await client.change('file:///ws/mlpipeline.yaml', 3, [{ range: { start: { line: 4, character: 4 }, end: { line: 4, character: 11 } }, text: 'commnd' }]);
    const diags = await client.diagnostics('file:///ws/mlpipeline.yaml', 3);
    assert.deepEqual(diags.map((d) => d.code).sort(), ['MLP010', 'MLP011']);
  });

  it('drops stale work: changes that arrive while validating are validated for the newest version only', async () => {
    // Big enough that validating takes a while, so the burst queues up behind it (as fast typing does).
    const big = SPEC + Array.from({ length: 1500 }, (_, i) => `  s${i}:\n    command: echo ${i}\n    needs: [prepare]\n`).join('');
    const uri = 'file:///ws/burst.mlpipeline.yaml';
    await client.open(uri, big, 1);
    await client.diagnostics(uri, 1, 10_000);
    const before = client.allPublished(uri).length;
    const sends: Promise<void>[] = [];
    for (let v = 2; v <= 40; v++) sends.push(client.change(uri, v, [{ text: big.replace('nope', `nope${v}`) }]));
    await Promise.all(sends);
    const diags = await client.diagnostics(uri, 40, 20_000);
    assert.equal(textAt(big.replace('nope', 'nope40'), diags[0].range), 'nope40');
    const published = client.allPublished(uri).slice(before);
    assert.ok(published.length < 39, `validated ${published.length} of 39 versions`);
    assert.ok(published.every((p, i) => i === 0 || (p.version ?? 0) > (published[i - 1].version ?? 0)), 'versions only go forward');
  });

  it('sends related information for cycles', async () => {
    const uri = 'file:///ws/cycle.mlpipeline.yaml';
    const text = 'apiVersion: mlpipeline/v1\nname: c\nsteps:\n  a: {command: x, needs: [c]}\n  b: {command: x, needs: [a]}\n  c: {command: x, needs: [b]}\n';
    await client.open(uri, text);
    const [d] = await client.diagnostics(uri, 1);
    assert.equal(d.code, 'MLP030');
    assert.equal(d.relatedInformation?.length, 2);
    assert.deepEqual(d.relatedInformation!.map((r) => textAt(text, r.location.range)), ['b', 'a']);
  });

  it('clears diagnostics when a document closes', async () => {
    await client.conn.sendNotification('textDocument/didClose', { textDocument: { uri: 'file:///ws/cycle.mlpipeline.yaml' } });
    await new Promise((r) => setTimeout(r, 100));
    const last = client.allPublished('file:///ws/cycle.mlpipeline.yaml').at(-1)!;
    assert.deepEqual(last.diagnostics, []);
  });
});

describe('LSP over stdio: settings pulled per document', () => {
  it('leaves out hints when mlpipeline.validation.unusedHints is false, and nothing when disabled', async () => {
    const text = 'apiVersion: mlpipeline/v1\nname: s\nparams:\n  idle: {type: int, default: 1}\nsteps:\n  a: {command: x, needs: [zz]}\n';
    const withHints = new StdioClient({ validation: { unusedHints: true } });
    const noHints = new StdioClient({ validation: { unusedHints: false } });
    const disabled = new StdioClient({ validation: { enable: false } });
    const noConfig = new StdioClient(null);
    try {
      await Promise.all([withHints.initialize(), noHints.initialize(), disabled.initialize(), noConfig.initialize(false)]);
      for (const c of [withHints, noHints, disabled, noConfig]) await c.open('file:///s.mlpipeline.yaml', text);
      assert.deepEqual((await withHints.diagnostics('file:///s.mlpipeline.yaml', 1)).map((d) => d.code), ['MLP060', 'MLP020']);
      assert.deepEqual((await noHints.diagnostics('file:///s.mlpipeline.yaml', 1)).map((d) => d.code), ['MLP020']);
      assert.deepEqual(await disabled.diagnostics('file:///s.mlpipeline.yaml', 1), []);
      assert.deepEqual((await noConfig.diagnostics('file:///s.mlpipeline.yaml', 1)).map((d) => d.code), ['MLP060', 'MLP020']);
    } finally {
      await Promise.all([withHints, noHints, disabled, noConfig].map((c) => c.shutdown()));
    }
  });

  it('re-validates open documents when the configuration changes', async () => {
    let settings: Record<string, unknown> = { validation: { unusedHints: true } };
    const c = new StdioClient();
    c.conn.onRequest('workspace/configuration', (p: { items: unknown[] }) => p.items.map(() => settings));
    try {
      await c.initialize();
      await c.open('file:///r.mlpipeline.yaml', 'apiVersion: mlpipeline/v1\nname: r\nparams:\n  idle: {type: int, default: 1}\nsteps:\n  a: {command: x}\n');
      assert.deepEqual((await c.diagnostics('file:///r.mlpipeline.yaml', 1)).map((d) => d.code), ['MLP060']);
      const count = c.allPublished('file:///r.mlpipeline.yaml').length;
      settings = { validation: { unusedHints: false } };
      await c.conn.sendNotification('workspace/didChangeConfiguration', { settings: null });
      for (let i = 0; i < 50 && c.allPublished('file:///r.mlpipeline.yaml').length === count; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(c.allPublished('file:///r.mlpipeline.yaml').at(-1)!.diagnostics, []);
    } finally {
      await c.shutdown();
    }
  });
});

describe('LSP over stdio: bad input never takes the server down', () => {
  const cases: [string, () => string][] = [
    ['alias bomb', () => {
      let bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
      for (let i = 0; i < 9; i++) bomb += `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill('*' + String.fromCharCode(97 + i)).join(',')}]\n`;
      return bomb;
    }],
    ['10 MB file', () => 'apiVersion: mlpipeline/v1\nname: big\nsteps:\n' + '  s:\n    command: echo\n'.repeat(1) + '# pad pad pad pad pad pad pad\n'.repeat(350_000)],
    ['deeply nested flow collections', () => 'steps: ' + '['.repeat(200_000) + ']'.repeat(200_000)],
    ['binary garbage', () => {
      const b = Buffer.alloc(300_000);
      let s = 7;
      for (let i = 0; i < b.length; i++) b[i] = (s = (s * 1103515245 + 12345) & 0x7fffffff) >> 16;
      return new TextDecoder().decode(b);
    }],
    ['invalid UTF-8', () => new TextDecoder().decode(Buffer.concat([Buffer.from('apiVersion: mlpipeline/v1\nname: x\ndescription: '), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('\nsteps:\n  a: {command: x}\n')]))],
  ];

  let client: StdioClient;
  before(async () => {
    client = new StdioClient();
    await client.initialize();
  });
  after(async () => {
    assert.equal(await client.shutdown(), 0);
  });

  for (const [name, make] of cases) {
    it(`${name}: a diagnostic within 1 s, and the server still answers`, async () => {
      const uri = `file:///bad/${name.replace(/\W+/g, '-')}.mlpipeline.yaml`;
      const text = make();
      const t0 = Date.now();
      await client.open(uri, text);
      const diags = await client.diagnostics(uri, 1, 1000);
      assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
      assert.ok(diags.length > 0, 'at least one diagnostic');
      assert.ok(diags.every((d) => typeof d.code === 'string' && typeof d.message === 'string' && d.message.length > 0));
      // Still alive: a good document right after validates normally.
      const ok = `file:///bad/after-${name.replace(/\W+/g, '-')}.mlpipeline.yaml`;
      await client.open(ok, SPEC);
      assert.deepEqual((await client.diagnostics(ok, 1)).map((d) => d.code), ['MLP020']);
    });
  }
});
