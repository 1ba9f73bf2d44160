// Completion, hover, definition, quick fixes and the outline in the real editor, through VS Code's
// provider commands (the same path the UI uses), on test/e2e/workspace/mlpipeline.yaml.
import * as assert from 'assert';
import * as vscode from 'vscode';

const WAIT_MS = 20_000;

function specUri(): vscode.Uri {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'a workspace folder (test/e2e/workspace) must be open');
  return vscode.Uri.joinPath(folder.uri, 'mlpipeline.yaml');
}

function at(doc: vscode.TextDocument, needle: string, offset: number): vscode.Position {
  const i = doc.getText().indexOf(needle);
  assert.ok(i >= 0, needle);
  return doc.positionAt(i + offset);
}

/** Retries a provider command until it returns something, while the server starts. */
async function until<T>(what: string, f: () => Thenable<T>, ok: (v: T) => boolean): Promise<T> {
  const end = Date.now() + WAIT_MS;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('mlpipeline language features (e2e)', () => {
  let doc: vscode.TextDocument;
  before(async () => {
    doc = await vscode.workspace.openTextDocument(specUri());
    await vscode.window.showTextDocument(doc);
  });
  after(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('completion offers the steps in `needs`', async () => {
    const list = await until('completion', () => vscode.commands.executeCommand<vscode.CompletionList>('vscode.executeCompletionItemProvider', doc.uri, at(doc, 'needs: [', 8)), (l) => !!l && l.items.some((i) => i.label === 'prepare'));
    assert.ok(list.items.some((i) => i.label === 'prepare'));
  });

  it('hover shows the step', async () => {
    const hovers = await until('hover', () => vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', doc.uri, at(doc, '  prepare:', 3)), (h) => !!h && h.length > 0);
    const text = hovers.flatMap((h) => h.contents).map((c) => (typeof c === 'string' ? c : (c as vscode.MarkdownString).value)).join('\n');
    assert.match(text, /\*\*step\*\* `prepare`/);
  });

  it('definition, quick fix and outline', async () => {
    const symbols = await until('symbols', () => vscode.commands.executeCommand<vscode.DocumentSymbol[]>('vscode.executeDocumentSymbolProvider', doc.uri), (s) => !!s && s.length > 0);
    assert.deepEqual(symbols.find((s) => s.name === 'steps')!.children.map((c) => c.name), ['prepare', 'train']);
    const nope = at(doc, 'nope', 0);
    const actions = await until('code actions', () => vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', doc.uri, new vscode.Range(nope, nope.translate(0, 4))), (a) => !!a && a.length > 0);
    assert.ok(actions.some((a) => a.title === 'Create step `nope`'), actions.map((a) => a.title).join(', '));
  });

  it('code lenses run the pipeline and each step and show lineage, through commands the extension registers', async () => {
    const folder = vscode.workspace.workspaceFolders![0];
    const quick = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder.uri, 'quick', 'mlpipeline.yaml'));
    await vscode.window.showTextDocument(quick);
    const lenses = await until('code lenses', () => vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', quick.uri), (l) => !!l && l.length > 0);
    const commands = lenses.map((l) => l.command?.command);
    assert.deepEqual(commands.slice(0, 2), ['mlpipeline.runPipeline', 'mlpipeline.openLineage'], commands.join());
    assert.ok(commands.slice(2).every((c) => c === 'mlpipeline.runStep') && commands.length > 2, commands.join());
    const runStep = lenses[2].command!;
    assert.equal(runStep.arguments![0], quick.uri.toString());
    const registered = await vscode.commands.getCommands(true);
    for (const c of new Set(commands)) assert.ok(registered.includes(c!), `${c} is registered`);
  });
});
