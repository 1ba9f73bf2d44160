import { CodeActionKind, ResponseError, ErrorCodes, type Connection, type InitializeParams, type ServerCapabilities, type TextDocuments } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { SpecAnalysis } from '../core/validate';
import { codeActions } from '../service/code-actions';
import { completion, resolveCompletion, type CompletionData } from '../service/completion';
import type { RunMetric } from '../service/hover';
import { hover } from '../service/hover';
import { inlayHints } from '../service/inlay-hints';
import { documentLinks } from '../service/links';
import { definition, prepareRename, references, rename } from '../service/navigation';
import { SEMANTIC_LEGEND, semanticTokens } from '../service/semantic-tokens';
import { documentSymbols, foldingRanges } from '../service/symbols';
import { fileExistsNear, folderUri, lockedDatasetReader } from './workspace-files';
import { codeLenses } from '../service/code-lenses';

/**
 * The language features' handlers: each looks up the cached analysis of the document (validation
 * computed it; see `analysisFor` in server.ts) and calls a pure function in ../service. No handler parses
 * the document again when the cache holds its current version.
 *
 * Code lenses ("Run step", "Run pipeline", "Show lineage") are deliberately not offered yet: the
 * extension commands they would invoke do not exist.
 */

/** Metrics of a spec's last run, pushed by the client (`mlpipeline/setRunMetrics`) when a run finishes. */
export const SET_RUN_METRICS = 'mlpipeline/setRunMetrics';
export interface SetRunMetricsParams {
  /** The spec's URI. */
  uri: string;
  /** `step.metric` -> value, e.g. `{"evaluate.auc": 0.91}`. */
  metrics: Record<string, number>;
}

export function featureCapabilities(): ServerCapabilities {
  return {
    completionProvider: { triggerCharacters: ['.', '{', '[', ',', ' '], resolveProvider: true },
    hoverProvider: true,
    definitionProvider: true,
    referencesProvider: true,
    renameProvider: { prepareProvider: true },
    codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
    documentSymbolProvider: true,
    foldingRangeProvider: true,
    documentLinkProvider: { resolveProvider: false },
    inlayHintProvider: true,
    semanticTokensProvider: { legend: SEMANTIC_LEGEND, full: true, range: false },
    codeLensProvider: { resolveProvider: false },
  };
}

export function registerFeatures(connection: Connection, documents: TextDocuments<TextDocument>, analysisFor: (uri: string) => SpecAnalysis | undefined): { onInitialize(params: InitializeParams): void } {
  let snippets = true;
  /** Commands the client can run, from its initializationOptions; lenses are offered only for these. */
  let clientCommands = new Set<string>();
  const runMetrics = new Map<string, RunMetric[]>();
  const metricsFor = (uri: string) => (): readonly RunMetric[] => runMetrics.get(uri) ?? [];

  connection.onNotification(SET_RUN_METRICS, (p: SetRunMetricsParams) => {
    if (!p || typeof p.uri !== 'string' || !p.metrics || typeof p.metrics !== 'object') return;
    runMetrics.set(
      p.uri,
      Object.entries(p.metrics)
        .filter(([, v]) => typeof v === 'number')
        .map(([name, value]) => ({ name, value })),
    );
  });
  documents.onDidClose((e) => runMetrics.delete(e.document.uri));

  connection.onCompletion((p) => {
    const a = analysisFor(p.textDocument.uri);
    return a ? completion(a, p.position, { snippets, uri: p.textDocument.uri, lastRunMetrics: metricsFor(p.textDocument.uri), lockedDataset: lockedDatasetReader(p.textDocument.uri) }) : null;
  });
  connection.onCompletionResolve((item) => {
    const uri = (item.data as CompletionData | undefined)?.uri;
    if (typeof uri !== 'string') return item;
    return resolveCompletion(analysisFor(uri), item, { lastRunMetrics: metricsFor(uri), lockedDataset: lockedDatasetReader(uri) });
  });
  connection.onHover((p) => {
    const a = analysisFor(p.textDocument.uri);
    return a ? hover(a, p.position, { lastRunMetrics: metricsFor(p.textDocument.uri), lockedDataset: lockedDatasetReader(p.textDocument.uri) }) : null;
  });
  connection.onDefinition((p) => {
    const a = analysisFor(p.textDocument.uri);
    return a ? definition(a, p.textDocument.uri, p.position) : null;
  });
  connection.onReferences((p) => {
    const a = analysisFor(p.textDocument.uri);
    return a ? references(a, p.textDocument.uri, p.position, p.context?.includeDeclaration ?? true) : null;
  });
  connection.onPrepareRename((p) => {
    const a = analysisFor(p.textDocument.uri);
    const r = a ? prepareRename(a, p.position) : null;
    if (r && 'error' in r) return new ResponseError(ErrorCodes.InvalidRequest, r.error);
    return r;
  });
  connection.onRenameRequest((p) => {
    const a = analysisFor(p.textDocument.uri);
    const r = a ? rename(a, p.textDocument.uri, p.position, p.newName) : null;
    if (r && 'error' in r) return new ResponseError(ErrorCodes.InvalidRequest, r.error);
    return r;
  });
  connection.onCodeAction((p) => {
    const a = analysisFor(p.textDocument.uri);
    return a ? codeActions(a, p.textDocument.uri, p.range, p.context.diagnostics) : null;
  });
  connection.onDocumentSymbol((p) => {
    const a = analysisFor(p.textDocument.uri);
    return a ? documentSymbols(a) : null;
  });
  connection.onFoldingRanges((p) => {
    const a = analysisFor(p.textDocument.uri);
    return a ? foldingRanges(a) : null;
  });
  connection.onDocumentLinks((p) => {
    const a = analysisFor(p.textDocument.uri);
    return a ? documentLinks(a, { baseUri: folderUri(p.textDocument.uri), fileExists: fileExistsNear(p.textDocument.uri) }) : null;
  });
  connection.languages.inlayHint.on((p) => {
    const a = analysisFor(p.textDocument.uri);
    return a ? inlayHints(a, p.range) : null;
  });
  connection.languages.semanticTokens.on((p) => {
    const a = analysisFor(p.textDocument.uri);
    return a ? semanticTokens(a) : { data: [] };
  });

  connection.onCodeLens((p) => {
    const a = analysisFor(p.textDocument.uri);
    return a && clientCommands.size ? codeLenses(a, p.textDocument.uri, clientCommands) : [];
  });

  return {
    onInitialize(params) {
      snippets = params.capabilities.textDocument?.completion?.completionItem?.snippetSupport ?? false;
      const commands = (params.initializationOptions as { commands?: unknown } | undefined)?.commands;
      clientCommands = new Set(Array.isArray(commands) ? commands.filter((c): c is string => typeof c === 'string') : []);
    },
  };
}
