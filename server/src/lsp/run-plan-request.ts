import type { Connection } from 'vscode-languageserver';
import type { SpecAnalysis } from '../core/validate';
import { planRun } from '../core/plan';
import { RUN_PLAN_REQUEST, type RunPlanParams, type RunPlanResult } from '../protocol/requests';

/**
 * Answers `mlpipeline/runPlan` from the open document's current text (unsaved edits included), using
 * the analysis validation already cached for that version: the same planning the CLI does on disk.
 */
export function registerRunPlanRequest(connection: Connection, analysisFor: (uri: string) => SpecAnalysis | undefined): void {
  const handler = (params: RunPlanParams): RunPlanResult => {
    if (!params || typeof params.uri !== 'string') return { ok: false, errors: ['mlpipeline/runPlan needs the `uri` of an open spec.'] };
    const analysis = analysisFor(params.uri);
    if (!analysis) return { ok: false, errors: [`${params.uri} is not open in the editor; open it, or run it with the CLI.`] };
    const only = Array.isArray(params.only) ? params.only.filter((s): s is string => typeof s === 'string') : undefined;
    const overrides = params.overrides && typeof params.overrides === 'object' ? Object.fromEntries(Object.entries(params.overrides).map(([k, v]) => [k, String(v)])) : undefined;
    const target = typeof params.target === 'string' && params.target ? params.target : undefined;
    return planRun(analysis, { ...(only?.length ? { only } : {}), ...(overrides ? { overrides } : {}), ...(target ? { target } : {}) });
  };
  connection.onRequest(RUN_PLAN_REQUEST, handler as (params: RunPlanParams) => unknown);
}
