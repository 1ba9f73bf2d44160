import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { CodeAction, CompletionItem, CompletionList, DocumentLink, DocumentSymbol, FoldingRange, Hover, InlayHint, Location, MarkupContent, SemanticTokens, TextEdit, WorkspaceEdit } from 'vscode-languageserver-protocol';
import { StdioClient } from '../helpers/lsp-client';
import { applyEdits } from '../helpers/cursor';
import { textAt } from '../helpers/spec';

const CHURN = readFileSync('samples/churn-local/mlpipeline.yaml', 'utf8');

/** Position of the `nth` occurrence of `needle`, `offset` characters into it. */
function pos(text: string, needle: string, offset = 0, nth = 0): { line: number; character: number } {
  let i = -1;
  for (let n = 0; n <= nth; n++) i = text.indexOf(needle, i + 1);
  assert.ok(i >= 0, needle);
  const before = text.slice(0, i + offset);
  const line = before.split('\n').length - 1;
  return { line, character: before.length - before.lastIndexOf('\n') - 1 };
}

const td = (uri: string) => ({ textDocument: { uri } });

describe('LSP over stdio: language features', () => {
  let client: StdioClient;
  let dir: string;
  let uri: string;
  let capabilities: Record<string, unknown>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlp-features-'));
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'prepare.py'), '# prepare\n');
    writeFileSync(join(dir, 'src', 'train.py'), '# train\n');
    writeFileSync(join(dir, 'mlpipeline.lock'), 'lockVersion: 1\nspec: churn-local\ndatasets:\n  raw: {bytes: 4096, files: 1, hash: sha256:abc123, uri: data/churn.csv}\nsteps: {}\n');
    writeFileSync(join(dir, 'mlpipeline.yaml'), CHURN);
    uri = pathToFileURL(join(dir, 'mlpipeline.yaml')).toString();
    client = new StdioClient({ validation: { enable: true } });
    const init = (await client.conn.sendRequest('initialize', {
      processId: process.pid,
      rootUri: pathToFileURL(dir).toString(),
      capabilities: {
        workspace: { configuration: true },
        textDocument: { completion: { completionItem: { snippetSupport: true } }, publishDiagnostics: { relatedInformation: true, versionSupport: true } },
      },
    })) as { capabilities: Record<string, unknown> };
    capabilities = init.capabilities;
    await client.conn.sendNotification('initialized', {});
    await client.open(uri, CHURN);
    assert.deepEqual(await client.diagnostics(uri, 1), []);
  });

  after(async () => {
    assert.equal(await client.shutdown(), 0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('announces every feature; code lenses are offered, but sent only to clients with the commands (test/lsp/code-lenses.test.ts)', () => {
    const c = capabilities as Record<string, any>;
    assert.deepEqual(c.completionProvider, { triggerCharacters: ['.', '{', '[', ',', ' '], resolveProvider: true });
    for (const k of ['hoverProvider', 'definitionProvider', 'referencesProvider', 'documentSymbolProvider', 'foldingRangeProvider', 'inlayHintProvider']) assert.equal(c[k], true, k);
    assert.deepEqual(c.renameProvider, { prepareProvider: true });
    assert.deepEqual(c.codeActionProvider, { codeActionKinds: ['quickfix'] });
    assert.deepEqual(c.documentLinkProvider, { resolveProvider: false });
    assert.deepEqual(c.semanticTokensProvider.legend.tokenTypes, ['namespace', 'parameter', 'variable', 'function', 'property', 'event']);
    assert.deepEqual(c.codeLensProvider, { resolveProvider: false });
  });

  it('textDocument/completion: step names in needs; snippets for keys', async () => {
    const list = (await client.conn.sendRequest('textDocument/completion', { ...td(uri), position: pos(CHURN, 'needs: [train]', 8) })) as CompletionList;
    assert.deepEqual(list.items.map((i) => i.label), ['prepare', 'train']);
    assert.equal(list.items[0].detail, 'Clean the raw table, encode categoricals and split train/test');
    const params = (await client.conn.sendRequest('textDocument/completion', { ...td(uri), position: pos(CHURN, '${params.lr}', 9) })) as CompletionList;
    assert.deepEqual(params.items.map((i) => i.label), ['lr', 'epochs', 'l2']);
    const keysUri = pathToFileURL(join(dir, 'keys.mlpipeline.yaml')).toString();
    await client.open(keysUri, 'apiVersion: mlpipeline/v1\nname: k\nsteps:\n  a:\n    command: x\n    \n');
    const keys = (await client.conn.sendRequest('textDocument/completion', { ...td(keysUri), position: { line: 5, character: 4 } })) as CompletionList;
    const retry = keys.items.find((i) => i.label === 'retry')!;
    assert.equal(retry.insertTextFormat, 2, 'a snippet: the client announced snippetSupport');
    assert.deepEqual(retry.textEdit, { range: { start: { line: 5, character: 4 }, end: { line: 5, character: 4 } }, newText: 'retry:\n      max: ${1:0}' });
    assert.ok(!keys.items.some((i) => i.label === 'command'), 'present keys are not offered');
  });

  it('completion while the YAML is broken, right after the edit, before diagnostics', async () => {
    const line = pos(CHURN, 'needs: [train]').line;
    await client.change(uri, 2, [{ range: { start: { line, character: 0 }, end: { line: line + 1, character: 0 } }, text: '    needs: [\n' }]);
    const list = (await client.conn.sendRequest('textDocument/completion', { ...td(uri), position: { line, character: 12 } })) as CompletionList;
    assert.deepEqual(list.items.map((i) => i.label), ['prepare', 'train']);
    assert.ok((await client.diagnostics(uri, 2)).some((d) => d.code === 'MLP001'));
    await client.change(uri, 3, [{ text: CHURN }]);
    assert.deepEqual(await client.diagnostics(uri, 3), []);
  });

  it('completionItem/resolve documents items of long lists', async () => {
    const big = 'apiVersion: mlpipeline/v1\nname: big\nsteps:\n' + Array.from({ length: 300 }, (_, i) => `  s${i}:\n    description: step number ${i}\n    command: echo ${i}\n`).join('') + '  last:\n    command: x\n    needs: []\n';
    const bigUri = pathToFileURL(join(dir, 'big.mlpipeline.yaml')).toString();
    await client.open(bigUri, big);
    const list = (await client.conn.sendRequest('textDocument/completion', { ...td(bigUri), position: pos(big, 'needs: []', 8) })) as CompletionList;
    // Over 200 items: the first 200 are sent, marked incomplete (typing narrows them; see completion-large.test.ts).
    assert.equal(list.items.length, 200);
    assert.equal(list.isIncomplete, true);
    assert.equal(list.items[7].documentation, undefined);
    const resolved = (await client.conn.sendRequest('completionItem/resolve', list.items[7])) as CompletionItem;
    assert.equal(resolved.detail, 'step number 7');
    assert.match((resolved.documentation as MarkupContent).value, /echo 7/);
  });

  it('textDocument/hover: a param, and a dataset with the hash from mlpipeline.lock', async () => {
    const h = (await client.conn.sendRequest('textDocument/hover', { ...td(uri), position: pos(CHURN, '${params.lr}', 10) })) as Hover;
    assert.match((h.contents as MarkupContent).value, /^\*\*param\*\* `lr` · `float`/);
    assert.equal(textAt(CHURN, h.range!), 'lr');
    const d = (await client.conn.sendRequest('textDocument/hover', { ...td(uri), position: pos(CHURN, '${datasets.raw}', 12) })) as Hover;
    assert.match((d.contents as MarkupContent).value, /pinned in `mlpipeline.lock`: `sha256:abc123` \(1 file, 4\.0 KiB\)/);
  });

  it('textDocument/definition and references', async () => {
    const defs = (await client.conn.sendRequest('textDocument/definition', { ...td(uri), position: pos(CHURN, 'needs: [train]', 9) })) as Location[];
    assert.deepEqual(defs.map((l) => [l.uri, textAt(CHURN, l.range), l.range.start.line]), [[uri, 'train', pos(CHURN, '  train:\n').line]]);
    const refs = (await client.conn.sendRequest('textDocument/references', { ...td(uri), position: pos(CHURN, '  train:\n', 3), context: { includeDeclaration: false } })) as Location[];
    assert.equal(refs.length, 4);
    assert.ok(refs.every((r) => textAt(CHURN, r.range) === 'train'));
  });

  it('textDocument/prepareRename and rename: edits every use; invalid names are refused with the reason', async () => {
    const at = pos(CHURN, '${params.epochs}', 11);
    const prep = (await client.conn.sendRequest('textDocument/prepareRename', { ...td(uri), position: at })) as { placeholder: string };
    assert.equal(prep.placeholder, 'epochs');
    const edit = (await client.conn.sendRequest('textDocument/rename', { ...td(uri), position: at, newName: 'n_epochs' })) as WorkspaceEdit;
    const after = applyEdits(CHURN, edit.changes![uri] as TextEdit[]);
    assert.equal(after, CHURN.replace('  epochs: {', '  n_epochs: {').replace('${params.epochs}', '${params.n_epochs}'));
    await assert.rejects(client.conn.sendRequest('textDocument/rename', { ...td(uri), position: at, newName: 'n-epochs' }), /`n-epochs` is not a valid param name/);
    assert.equal(await client.conn.sendRequest('textDocument/prepareRename', { ...td(uri), position: pos(CHURN, 'python3 src/prepare', 2) }), null);
    const undefinedUri = pathToFileURL(join(dir, 'undefined.mlpipeline.yaml')).toString();
    const undefinedText = 'apiVersion: mlpipeline/v1\nname: u\nsteps:\n  a: {command: x, needs: [ghost]}\n';
    await client.open(undefinedUri, undefinedText);
    await assert.rejects(client.conn.sendRequest('textDocument/prepareRename', { ...td(undefinedUri), position: pos(undefinedText, 'ghost', 2) }), /`ghost` is not a defined step, so there is nothing to rename/);
  });

  it('textDocument/codeAction: did-you-mean for a diagnostic the server published', async () => {
    const broken = CHURN.replace('needs: [train]', 'needs: [trian]');
    await client.change(uri, 4, [{ text: broken }]);
    const [diag] = await client.diagnostics(uri, 4);
    assert.equal(diag.code, 'MLP020');
    const actions = (await client.conn.sendRequest('textDocument/codeAction', { ...td(uri), range: diag.range, context: { diagnostics: [diag] } })) as CodeAction[];
    assert.deepEqual(actions.map((a) => [a.title, a.isPreferred ?? false]), [['Change to `train`', true], ['Create step `trian`', false]]);
    assert.equal(applyEdits(broken, actions[0].edit!.changes![uri] as TextEdit[]), CHURN);
    await client.change(uri, 5, [{ text: CHURN }]);
    assert.deepEqual(await client.diagnostics(uri, 5), []);
  });

  it('textDocument/documentSymbol, foldingRange', async () => {
    const symbols = (await client.conn.sendRequest('textDocument/documentSymbol', td(uri))) as DocumentSymbol[];
    assert.deepEqual(symbols.find((s) => s.name === 'steps')!.children!.map((s) => s.name), ['prepare', 'train', 'evaluate']);
    const folds = (await client.conn.sendRequest('textDocument/foldingRange', td(uri))) as FoldingRange[];
    assert.ok(folds.some((f) => f.startLine === pos(CHURN, '\nsteps:').line + 1));
  });

  it('textDocument/documentLink: files that exist next to the spec', async () => {
    const links = (await client.conn.sendRequest('textDocument/documentLink', td(uri))) as DocumentLink[];
    assert.deepEqual(links.map((l) => [textAt(CHURN, l.range), l.target]), [
      ['src/prepare.py', pathToFileURL(join(dir, 'src/prepare.py')).toString()],
      ['src/prepare.py', pathToFileURL(join(dir, 'src/prepare.py')).toString()],
      ['src/train.py', pathToFileURL(join(dir, 'src/train.py')).toString()],
      ['src/train.py', pathToFileURL(join(dir, 'src/train.py')).toString()],
    ]);
  });

  it('textDocument/inlayHint and semanticTokens/full', async () => {
    const hints = (await client.conn.sendRequest('textDocument/inlayHint', { ...td(uri), range: { start: { line: 0, character: 0 }, end: { line: 200, character: 0 } } })) as InlayHint[];
    assert.deepEqual(hints.map((h) => h.label), ['= 0.01', '= 20', '= 0.0001']);
    const tokens = (await client.conn.sendRequest('textDocument/semanticTokens/full', td(uri))) as SemanticTokens;
    assert.equal(tokens.data.length % 5, 0);
    assert.ok(tokens.data.length / 5 >= 20);
  });

  it('mlpipeline/setRunMetrics: the last run\'s metrics complete `objective.metric`', async () => {
    await client.conn.sendNotification('mlpipeline/setRunMetrics', { uri, metrics: { 'evaluate.auc': 0.91, 'evaluate.f1': 0.72 } });
    const list = (await client.conn.sendRequest('textDocument/completion', { ...td(uri), position: pos(CHURN, 'metric: evaluate.auc', 8) })) as CompletionList;
    assert.deepEqual(list.items.slice(0, 2).map((i) => [i.label, i.detail]), [['evaluate.auc', 'last run: 0.91'], ['evaluate.f1', 'last run: 0.72']]);
  });

  it('unknown documents and positions past the end answer empty, and the server stays up', async () => {
    const none = 'file:///nowhere/mlpipeline.yaml';
    assert.equal(await client.conn.sendRequest('textDocument/hover', { ...td(none), position: { line: 0, character: 0 } }), null);
    assert.equal(await client.conn.sendRequest('textDocument/completion', { ...td(none), position: { line: 0, character: 0 } }), null);
    const far = { line: 10_000, character: 500 };
    for (const m of ['textDocument/hover', 'textDocument/definition', 'textDocument/references', 'textDocument/completion']) {
      await client.conn.sendRequest(m, { ...td(uri), position: far, context: { includeDeclaration: true } });
    }
    const list = (await client.conn.sendRequest('textDocument/completion', { ...td(uri), position: pos(CHURN, 'needs: [train]', 8) })) as CompletionList;
    assert.equal(list.items.length, 2);
  });
});
