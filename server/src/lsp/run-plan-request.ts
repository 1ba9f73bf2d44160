import type { Connection, TextDocuments } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { planRun } from '../core/plan';
import { analyzeSpec } from '../core/validate';
import { RUN_PLAN_REQUEST, type RunPlanParams, type RunPlanResult } from '../protocol/requests';

/**
 * Answers `mlpipeline/runPlan` from the open document's current text (unsaved edits included): the
 * same analysis and planning the CLI does on the file on disk.
 */
export function registerRunPlanRequest(connection: Connection, documents: TextDocuments<TextDocument>): void {
  const handler = (params: RunPlanParams): RunPlanResult => {
    if (!params || typeof params.uri !== 'string') return { ok: false, errors: ['mlpipeline/runPlan needs the `uri` of an open spec.'] };
    const doc = documents.get(params.uri);
    if (!doc) return { ok: false, errors: [`${params.uri} is not open in the editor; open it, or run it with the CLI.`] };
    const only = Array.isArray(params.only) ? params.only.filter((s): s is string => typeof s === 'string') : undefined;
    const overrides = params.overrides && typeof params.overrides === 'object' ? Object.fromEntries(Object.entries(params.overrides).map(([k, v]) => [k, String(v)])) : undefined;
    const target = typeof params.target === 'string' && params.target ? params.target : undefined;
    // Limits as for validation by default; hints are irrelevant to planning.
    const analysis = analyzeSpec(doc.getText(), { unusedHints: false });
    return planRun(analysis, { ...(only?.length ? { only } : {}), ...(overrides ? { overrides } : {}), ...(target ? { target } : {}) });
  };
  connection.onRequest(RUN_PLAN_REQUEST, handler as (params: RunPlanParams) => unknown);
}
