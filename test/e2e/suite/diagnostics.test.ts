// End-to-end check of the foundation: extension activation -> language server -> diagnostics in
// the real editor, on the workspace test/e2e/workspace/ (mlpipeline.yaml has one known error:
// step `train` needs the undefined step `nope`).
import * as assert from 'assert';
import * as vscode from 'vscode';

const EXTENSION_ID = 'mlpipeline.mlpipeline';
const SOURCE = 'mlpipeline';
const WAIT_MS = 20_000;

function codeOf(d: vscode.Diagnostic): string | undefined {
  const c = d.code;
  if (c === undefined) return undefined;
  return String(typeof c === 'object' ? c.value : c);
}

function describeDiagnostics(diags: readonly vscode.Diagnostic[]): string {
  if (diags.length === 0) return '(none)';
  return diags
    .map(
      (d) =>
        `${d.source ?? '?'}/${codeOf(d) ?? '?'} ` +
        `${d.range.start.line + 1}:${d.range.start.character + 1}-` +
        `${d.range.end.line + 1}:${d.range.end.character + 1} ${d.message}`,
    )
    .join('; ');
}

function ours(diags: readonly vscode.Diagnostic[], code: string): vscode.Diagnostic[] {
  return diags.filter((d) => d.source === SOURCE && codeOf(d) === code);
}

/**
 * Resolves with check()'s first non-undefined result for the diagnostics of `uri`. Checked now,
 * on every onDidChangeDiagnostics event for `uri`, and every 250 ms as a safety net; rejects
 * after `timeoutMs` with the diagnostics present at that moment.
 */
function waitForDiagnostics<T>(
  uri: vscode.Uri,
  what: string,
  check: (diags: readonly vscode.Diagnostic[]) => T | undefined,
  timeoutMs = WAIT_MS,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const key = uri.toString();
    let settled = false;
    const evaluate = () => {
      if (settled) return;
      const result = check(vscode.languages.getDiagnostics(uri));
      if (result !== undefined) {
        cleanup();
        resolve(result);
      }
    };
    const sub = vscode.languages.onDidChangeDiagnostics((e) => {
      if (e.uris.some((u) => u.toString() === key)) evaluate();
    });
    const poll = setInterval(evaluate, 250);
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; diagnostics now: ` +
            describeDiagnostics(vscode.languages.getDiagnostics(uri)),
        ),
      );
    }, timeoutMs);
    function cleanup() {
      settled = true;
      sub.dispose();
      clearInterval(poll);
      clearTimeout(timer);
    }
    evaluate();
  });
}

async function waitUntil(what: string, cond: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Range of the `nope` in `needs: [nope]`, computed from the text (no hard-coded positions). */
function rangeOfNope(doc: vscode.TextDocument): vscode.Range {
  const text = doc.getText();
  const needs = /needs:\s*\[\s*(nope)\s*\]/.exec(text);
  assert.ok(needs, `the workspace spec must contain "needs: [nope]"; got:\n${text}`);
  const start = needs.index + needs[0].indexOf('nope');
  return new vscode.Range(doc.positionAt(start), doc.positionAt(start + 'nope'.length));
}

function specUri(): vscode.Uri {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'a workspace folder (test/e2e/workspace) must be open');
  return vscode.Uri.joinPath(folder.uri, 'mlpipeline.yaml');
}

/** Opens mlpipeline.yaml in an editor; that alone must activate the extension. */
async function openSpec(): Promise<vscode.TextDocument> {
  const doc = await vscode.workspace.openTextDocument(specUri());
  await vscode.window.showTextDocument(doc);
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not installed in the extension host`);
  await waitUntil(`${EXTENSION_ID} to become active after opening mlpipeline.yaml`, () => ext.isActive);
  return doc;
}

describe('mlpipeline diagnostics (e2e)', () => {
  afterEach(async () => {
    // Undo the test's edits (the document is never saved) so the next test starts from the file
    // on disk, and no dirty editor is left to block the window's shutdown.
    const uri = specUri().toString();
    const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === uri);
    if (editor?.document.isDirty) {
      await vscode.window.showTextDocument(editor.document);
      await vscode.commands.executeCommand('workbench.action.files.revert');
    }
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('activates and reports MLP020 on the undefined step, then clears it while typing', async () => {
    const doc = await openSpec();

    const expected = rangeOfNope(doc);
    const diag = await waitForDiagnostics(doc.uri, `a ${SOURCE} MLP020 diagnostic`, (diags) => ours(diags, 'MLP020')[0]);
    assert.strictEqual(diag.source, SOURCE);
    assert.strictEqual(codeOf(diag), 'MLP020');
    assert.strictEqual(diag.severity, vscode.DiagnosticSeverity.Error, 'MLP020 is an error');
    assert.ok(
      diag.range.isEqual(expected),
      `MLP020 range ${describeDiagnostics([diag])} should cover exactly "nope" at ` +
        `${expected.start.line + 1}:${expected.start.character + 1}-${expected.end.line + 1}:${expected.end.character + 1}`,
    );
    assert.strictEqual(doc.getText(diag.range), 'nope');

    // Fix the reference the way a user would, without saving: replace `nope` with `prepare`.
    const edit = new vscode.WorkspaceEdit();
    edit.replace(doc.uri, expected, 'prepare');
    assert.ok(await vscode.workspace.applyEdit(edit), 'applyEdit succeeded');
    assert.ok(doc.getText().includes('needs: [prepare]'));

    await waitForDiagnostics(doc.uri, 'the MLP020 diagnostic to disappear after the edit', (diags) =>
      ours(diags, 'MLP020').length === 0 ? true : undefined,
    );
    assert.ok(doc.isDirty, 'the document was not saved: diagnostics follow the unsaved text');
  });

  it('reports MLP001 for a YAML syntax error typed into the document', async () => {
    const doc = await openSpec();

    // Append a step whose flow sequence is never closed: invalid YAML, whatever the schema says.
    const end = doc.lineAt(doc.lineCount - 1).range.end;
    const prefix = doc.lineAt(doc.lineCount - 1).text.length > 0 ? '\n' : '';
    const broken = `${prefix}  evaluate:\n    needs: [train\n`;
    const edit = new vscode.WorkspaceEdit();
    edit.insert(doc.uri, end, broken);
    assert.ok(await vscode.workspace.applyEdit(edit), 'applyEdit succeeded');
    const firstBrokenLine = end.line + (prefix ? 1 : 0);

    const diag = await waitForDiagnostics(doc.uri, `a ${SOURCE} MLP001 diagnostic`, (diags) => ours(diags, 'MLP001')[0]);
    assert.strictEqual(diag.severity, vscode.DiagnosticSeverity.Error, 'MLP001 is an error');
    assert.ok(
      diag.range.start.line >= firstBrokenLine,
      `MLP001 should point into the inserted text (line ${firstBrokenLine + 1} or later), got ` +
        describeDiagnostics([diag]),
    );
    assert.ok(doc.isDirty, 'the document was not saved');
  });
});
