/**
 * Custom requests between the extension (client) and the language server. Plain method names and
 * JSON-serialisable types, so both sides (and any other LSP client) can use them without sharing a
 * vscode-jsonrpc version.
 */
import type { PlanResult } from '../core/plan';

/**
 * `mlpipeline/runPlan`: sent from the client to the server when the user runs a pipeline (Run Pipeline,
 * Run Step..., Run Sweep..., Rerun). The server plans from the document as it is open in the editor, so
 * unsaved edits count; the client then runs the plan with the local engine.
 */
export const RUN_PLAN_REQUEST = 'mlpipeline/runPlan';

export interface RunPlanParams {
  /** The spec's document URI (must be open in the editor; otherwise the result says so). */
  uri: string;
  /** Run only these steps and what they depend on. */
  only?: string[];
  /** Param overrides, `params.lr` or `lr` -> raw text, parsed by each param's type. */
  overrides?: Record<string, string>;
  /** Compute target for steps that name none. */
  target?: string;
}

/** The plan, or the reasons there is none (validation errors, unknown step, target or param). */
export type RunPlanResult = PlanResult;
