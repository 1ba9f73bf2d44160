import { TextDocuments, TextDocumentSyncKind, type Connection, type InitializeParams, type InitializeResult } from 'vscode-languageserver';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { IncrementalAnalyzer } from '../core/incremental';
import type { SpecAnalysis, ValidationOptions } from '../core/validate';
import { toDiagnostics } from '../service/diagnostics';
import { featureCapabilities, registerFeatures } from './features';
import { registerRunPlanRequest } from './run-plan-request';
import { DEFAULT_SETTINGS, readSettings, type ServerSettings } from './settings';
import { warmUp } from './warm-up';

/**
 * The only code that owns the LSP connection: capabilities, the document store and the wiring from
 * events to the pure feature functions in ../service.
 */
const TRACE = process.env.MLPIPELINE_TRACE === '1';

export function startServer(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  const settingsCache = new Map<string, Promise<ServerSettings>>();
  /** The newest version each document was scheduled to validate; older work is dropped. */
  const scheduled = new Map<string, { version: number; cancel: () => void }>();
  /** How long the last validation of each document took: the wait before the next one scales with it. */
  const costMs = new Map<string, number>();
  /** The latest analysis per document, for its version and options: language features are served from it. */
  const analyses = new Map<string, { version: number; key: string; analysis: SpecAnalysis }>();
  /** Per open document: pieces of the last analyzed text, so an edit re-parses only what it touched. */
  const analyzers = new Map<string, IncrementalAnalyzer>();
  /** Settings as last resolved per document, so features analyze with the same options as validation. */
  const knownSettings = new Map<string, ServerSettings>();
  let canPullSettings = false;

  const analysisOptions = (s: ServerSettings): ValidationOptions => ({ limits: { maxBytes: s.validation.maxFileSize * 1024 }, unusedHints: s.validation.unusedHints });
  const optionsKey = (s: ServerSettings): string => `${s.validation.maxFileSize}:${s.validation.unusedHints}`;

  /**
   * The analysis of a document's current text: the cached one when validation (or an earlier feature
   * request) already analyzed this version with these settings, else one analysis, cached.
   */
  function analysisFor(uri: string, settings?: ServerSettings): SpecAnalysis | undefined {
    const doc = documents.get(uri);
    if (!doc) return undefined;
    const s = settings ?? knownSettings.get(uri) ?? DEFAULT_SETTINGS;
    const key = optionsKey(s);
    const hit = analyses.get(uri);
    if (hit && hit.version === doc.version && (hit.key === key || !settings)) return hit.analysis;
    const started = performance.now();
    let analyzer = analyzers.get(uri);
    if (!analyzer) analyzers.set(uri, (analyzer = new IncrementalAnalyzer()));
    const analysis = analyzer.analyze(doc.getText(), analysisOptions(s));
    // A first analysis parses every piece; the edits after it re-parse one or two. So only the cost of
    // an edit, or of a whole-text analysis (which each edit then repeats), predicts the next one.
    const run = analyzer.lastRun;
    const ms = performance.now() - started;
    if (run.mode === 'full' || run.reused > 0) costMs.set(uri, ms);
    else costMs.delete(uri);
    // MLPIPELINE_TRACE=1: how each analysis went, on stderr (the benchmark and performance work read it).
    if (TRACE) process.stderr.write(`analysis ${uri} v${doc.version}: ${ms.toFixed(1)} ms ${JSON.stringify(run)}\n`);
    analyses.set(uri, { version: doc.version, key, analysis });
    return analysis;
  }

  const features = registerFeatures(connection, documents, (uri) => analysisFor(uri));
  registerRunPlanRequest(connection, (uri) => analysisFor(uri));

  // The server starts when a spec is opened: warm the analysis up before that spec's analysis runs.
  connection.onInitialized(() => {
    if (process.env.MLPIPELINE_NO_WARMUP !== '1') setImmediate(() => warmUp());
  });

  connection.onInitialize((params: InitializeParams): InitializeResult => {
    canPullSettings = !!params.capabilities.workspace?.configuration;
    features.onInitialize(params);
    return {
      capabilities: { textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental }, ...featureCapabilities() },
      serverInfo: { name: 'mlpipeline-language-server', version: '0.1.0' },
    };
  });

  function settingsFor(uri: string): Promise<ServerSettings> {
    if (!canPullSettings) return Promise.resolve(DEFAULT_SETTINGS);
    let s = settingsCache.get(uri);
    if (!s) {
      s = connection.workspace.getConfiguration({ scopeUri: uri, section: 'mlpipeline' }).then(readSettings, () => DEFAULT_SETTINGS);
      void s.then((v) => knownSettings.set(uri, v));
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
    if (prev) prev.cancel();
    // Under 10 ms (an incremental analysis) waiting would cost more than validating each change.
    const cost = costMs.get(doc.uri) ?? 0;
    const wait = cost < 10 ? 0 : Math.min(100, Math.floor(cost / 2));
    // setTimeout(0) waits at least 1 ms; setImmediate runs after the messages already read.
    const run = (): void => void validate(doc.uri, doc.version);
    let cancel: () => void;
    if (wait === 0) {
      const immediate = setImmediate(run);
      cancel = () => clearImmediate(immediate);
    } else {
      const timer = setTimeout(run, wait);
      cancel = () => clearTimeout(timer);
    }
    scheduled.set(doc.uri, { version: doc.version, cancel });
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
    knownSettings.set(uri, settings);
    const analysis = analysisFor(uri, settings)!;
    await connection.sendDiagnostics({ uri, version, diagnostics: toDiagnostics(analysis.problems, uri) });
  }

  documents.onDidOpen((e) => schedule(e.document));
  documents.onDidChangeContent((e) => schedule(e.document));
  documents.onDidClose((e) => {
    const pending = scheduled.get(e.document.uri);
    pending?.cancel();
    scheduled.delete(e.document.uri);
    costMs.delete(e.document.uri);
    settingsCache.delete(e.document.uri);
    knownSettings.delete(e.document.uri);
    analyses.delete(e.document.uri);
    analyzers.delete(e.document.uri);
    void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
  });
  connection.onDidChangeConfiguration(() => {
    settingsCache.clear();
    knownSettings.clear();
    for (const doc of documents.all()) schedule(doc);
  });

  documents.listen(connection);
  connection.listen();
}
