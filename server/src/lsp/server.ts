import { TextDocuments, TextDocumentSyncKind, type Connection, type InitializeParams, type InitializeResult } from 'vscode-languageserver';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { analyzeSpec } from '../core/validate';
import { toDiagnostics } from '../service/diagnostics';
import { DEFAULT_SETTINGS, readSettings, type ServerSettings } from './settings';

/**
 * The only code that owns the LSP connection: capabilities, the document store and the wiring from
 * events to the pure feature functions in ../service.
 */
export function startServer(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  const settingsCache = new Map<string, Promise<ServerSettings>>();
  /** The newest version each document was scheduled to validate; older work is dropped. */
  const scheduled = new Map<string, { version: number; timer: NodeJS.Timeout }>();
  /** How long the last validation of each document took: the wait before the next one scales with it. */
  const costMs = new Map<string, number>();
  let canPullSettings = false;

  connection.onInitialize((params: InitializeParams): InitializeResult => {
    canPullSettings = !!params.capabilities.workspace?.configuration;
    return {
      capabilities: { textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental } },
      serverInfo: { name: 'mlpipeline-language-server', version: '0.1.0' },
    };
  });

  function settingsFor(uri: string): Promise<ServerSettings> {
    if (!canPullSettings) return Promise.resolve(DEFAULT_SETTINGS);
    let s = settingsCache.get(uri);
    if (!s) {
      s = connection.workspace.getConfiguration({ scopeUri: uri, section: 'mlpipeline' }).then(readSettings, () => DEFAULT_SETTINGS);
      settingsCache.set(uri, s);
    }
    return s;
  }

  /**
   * Queues validation; a newer change for the same document cancels what is still queued. The wait is
   * half the last validation's cost (at most 100 ms): a cheap document is validated at once, and a burst
   * of edits to an expensive one is validated once, for its newest version.
   */
  function schedule(doc: TextDocument): void {
    const prev = scheduled.get(doc.uri);
    if (prev) clearTimeout(prev.timer);
    const wait = Math.min(100, Math.floor((costMs.get(doc.uri) ?? 0) / 2));
    const timer = setTimeout(() => void validate(doc.uri, doc.version), wait);
    scheduled.set(doc.uri, { version: doc.version, timer });
  }

  async function validate(uri: string, version: number): Promise<void> {
    const settings = await settingsFor(uri);
    const doc = documents.get(uri);
    // Stale: the document changed or closed while settings were fetched.
    if (!doc || doc.version !== version || scheduled.get(uri)?.version !== version) return;
    scheduled.delete(uri);
    if (!settings.validation.enable) {
      await connection.sendDiagnostics({ uri, version, diagnostics: [] });
      return;
    }
    const started = performance.now();
    const analysis = analyzeSpec(doc.getText(), {
      limits: { maxBytes: settings.validation.maxFileSize * 1024 },
      unusedHints: settings.validation.unusedHints,
    });
    costMs.set(uri, performance.now() - started);
    await connection.sendDiagnostics({ uri, version, diagnostics: toDiagnostics(analysis.problems, uri) });
  }

  documents.onDidOpen((e) => schedule(e.document));
  documents.onDidChangeContent((e) => schedule(e.document));
  documents.onDidClose((e) => {
    const pending = scheduled.get(e.document.uri);
    if (pending) clearTimeout(pending.timer);
    scheduled.delete(e.document.uri);
    costMs.delete(e.document.uri);
    settingsCache.delete(e.document.uri);
    void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
  });
  connection.onDidChangeConfiguration(() => {
    settingsCache.clear();
    for (const doc of documents.all()) schedule(doc);
  });

  documents.listen(connection);
  connection.listen();
}
