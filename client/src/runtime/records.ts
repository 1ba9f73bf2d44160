/**
 * The run store's records: what every run leaves behind, read by the CLI, the extension's views and the
 * panels. One typed contract; bump `schema` on incompatible changes. No `vscode` imports here.
 */

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled';
export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'cached' | 'skipped';
export type ParamValue = string | number | boolean;

/** sha256 of content, hex. Files hash their bytes; folders hash a sorted manifest of (relative path, file hash). */
export type ContentHash = string;

export interface GitProvenance {
  commit: string;
  branch: string | null;
  /** Uncommitted changes to tracked files, or untracked files, at the start of the run. */
  dirty: boolean;
}

export interface StepRecord {
  status: StepStatus;
  /** The command as run, `${...}` resolved; secret values never appear (they travel through env only). */
  command: string;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  exitCode?: number | null;
  /** Signal that ended the process, when one did. */
  signal?: string | null;
  attempts: number;
  /** The cache key this step ran (or was skipped) under. */
  cacheKey?: string;
  /** The run whose outputs were reused, for `cached` steps. */
  cachedFrom?: string;
  /** Workspace-relative input paths (files, folders, local datasets) and their hashes. */
  inputs: Record<string, ContentHash>;
  /**
   * Declared outputs by name: path and hash after the step succeeded. `uri`: where the verified copy lives
   * in the artifact store (`storage.artifacts`), when one is configured; its checksum is `hash`.
   */
  outputs: Record<string, { path: string; hash?: ContentHash; uri?: string }>;
  /** The step's metrics JSON (numbers only), when it declares `metrics`. */
  metrics?: Record<string, number>;
  /** Series files (plots) copied into the run folder, relative to it. */
  series?: string[];
  /** Store-relative path of the step's log. */
  log: string;
  /** Says what failed and what to do, for failed/cancelled steps. */
  error?: string;
  /** GPU indices given through CUDA_VISIBLE_DEVICES. */
  gpus?: number[];
  /**
   * Steps on a Kubernetes target: the Job that ran the latest attempt (one Job per attempt), its namespace
   * and kubeconfig context. `createdBy`: the run that created the Job, when this run followed one an
   * earlier run had started for the same step and inputs.
   */
  kubernetes?: { job: string; namespace: string; context: string; createdBy?: string };
}

/** A lineage node id: `dataset:raw@<hash>`, `file:src/train.py@<hash>`, `step:<runId>/train`, `output:train.model@<hash>`. */
export type LineageNode = string;

export interface LineageEdge {
  from: LineageNode;
  to: LineageNode;
}

export interface RunRecord {
  schema: 1;
  /** Sortable and unique: `20261125-103000-1a2b3c`. */
  id: string;
  /** Optional label from the user; shown as-is (escaped) wherever it is displayed. */
  label?: string;
  spec: { path: string; name: string; hash: ContentHash };
  status: RunStatus;
  startedAt: string;
  finishedAt?: string;
  /** Resolved param values: defaults, then overrides, then sweep values. */
  params: Record<string, ParamValue>;
  /** null when the workspace is not a git repository (runs still work). */
  git: GitProvenance | null;
  target: string;
  sweep?: { name: string; trial: number };
  steps: Record<string, StepRecord>;
  lineage: LineageEdge[];
  /** Set when the run failed or was cancelled as a whole. */
  error?: string;
}

/** One line of the store's index: enough to list runs without reading every record. */
export interface RunSummary {
  id: string;
  label?: string;
  specName: string;
  status: RunStatus;
  startedAt: string;
  finishedAt?: string;
  params: Record<string, ParamValue>;
  /** `step.metric` -> value, flattened for tables and sorting. */
  metrics: Record<string, number>;
  gitCommit?: string;
  sweep?: { name: string; trial: number };
}

/**
 * One deploy of a model, appended to `.mlpipeline/deployments/<name>/history.jsonl` next to the run store.
 * `lineage` links the run's output to the deployment: `output:train.model@<hash>` -> `deployment:churn-api/r3`.
 */
export interface DeploymentRecord {
  schema: 1;
  deployment: string;
  revision: string;
  target: string;
  /** The model as deployed: workspace-relative path (or URI) and the hash the source run recorded. */
  model: { path: string; hash?: ContentHash; output?: string };
  sourceRunId?: string;
  at: string;
  /** `deployed` once ready; a canary ends `promoted` or `rolled-back`; `refused` when the gate failed. */
  outcome: 'deployed' | 'promoted' | 'rolled-back' | 'refused' | 'failed' | 'undeployed';
  /** Why: the gate's numbers, the breached monitor, the startup error. */
  reason?: string;
  gate?: { text: string; pass: boolean; values: Record<string, number> };
  lineage?: LineageEdge[];
}

/** A monitor changing state (breach or recovery), appended to `.mlpipeline/deployments/<name>/alerts.jsonl`. */
export interface AlertRecord {
  schema: 1;
  deployment: string;
  monitor: string;
  revision?: string;
  state: 'violated' | 'recovered';
  at: string;
  /** What was measured against which limit, e.g. `p95 latency 212 ms > 100 ms`. */
  details: string[];
  notify: ('vscode' | 'log')[];
  description?: string;
}
