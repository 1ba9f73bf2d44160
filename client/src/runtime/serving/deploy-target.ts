/**
 * The contract between the deploy command (CLI, extension, rollout controller) and a deployment target.
 * Target-neutral: the local target (a supervised process on this machine) and the Kubernetes target
 * (`client/src/runtime/kubernetes/deploy.ts`) both implement `DeployTarget`. The rollout controller drives
 * canaries through `deploy({strategy: 'canary'})`, `setCanaryWeight`, `promote` and `rollback`, so it never
 * needs to know which target it talks to. No `vscode` imports here.
 *
 * Conventions every target keeps: the server's environment has `PORT` (where to listen; `runtime.port`
 * unless the target runs revisions side by side), `runtime.env`, and the secrets by their env names;
 * revisions are labelled `deployment`/`revision` wherever metrics are collected (`MetricsSource`).
 */

import type { ResolvedDeployment } from '../../../../server/src/core/deploy-plan';
import type { ContentHash } from '../records';

export type { ResolvedDeployment };

/** The model being deployed: where the server reads it and what it hashed to in the run that made it. */
export interface ModelArtifact {
  /** Absolute local path (local target) or the path/URI the target's runtime reads. */
  path: string;
  /** sha256 recorded for the output in the source run (the lineage key `model@hash`). */
  hash: ContentHash;
  /** `train.model` for step outputs; absent for plain paths and URIs. */
  output?: string;
}

export interface DeployRequest {
  /** The deployment as resolved from the spec by `planDeployment` (command, port, probes, rollout, monitors). */
  deployment: ResolvedDeployment;
  model: ModelArtifact;
  /** The run whose output is deployed, when the model is a step output. */
  sourceRunId?: string;
  /** A new, unique revision id for this deploy (e.g. `r3`); targets name their processes/ReplicaSets after it. */
  revision: string;
  /** `replace`: the new revision takes all traffic once ready (the old one is stopped after).
   *  `canary`: the new revision starts next to the stable one at weight 0; the caller then moves traffic.
   *  (Kubernetes: weight 0 is 0 pods, so its pods start, and are waited for, at the first weight.) */
  strategy: 'replace' | 'canary';
  /** Workspace folder (the spec's folder): commands run there, state lives under `.mlpipeline/`. */
  workspace: string;
  /** Environment values of the deployment's secrets, looked up by the caller; never stored. */
  secrets?: Record<string, string>;
  /** Public port override (local target); default: `deployment.runtime.port`. */
  port?: number;
  /** Cancels waiting for readiness; what was started is stopped again. */
  signal?: AbortSignal;
  onEvent?(event: DeployEvent): void;
}

export type DeployPhase = 'starting' | 'ready' | 'degraded' | 'rolling-out' | 'stopped' | 'failed';

export type DeployEvent =
  | { type: 'phase'; deployment: string; revision?: string; phase: DeployPhase; message: string }
  | { type: 'log'; deployment: string; revision: string; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'restart'; deployment: string; revision: string; attempt: number; delayMs: number; reason: string }
  | { type: 'weights'; deployment: string; weights: Record<string, number> }
  | { type: 'monitor'; deployment: string; monitor: string; ok: boolean; summary: string }
  | { type: 'rolled-back'; deployment: string; revision: string; reason: string }
  | { type: 'promoted'; deployment: string; revision: string };

export interface RevisionStatus {
  revision: string;
  model: ModelArtifact;
  sourceRunId?: string;
  phase: DeployPhase;
  /** Share of traffic, 0-100. */
  weight: number;
  /** Where this revision answers directly (for probes and metrics scraping); absent when not reachable from here. */
  url?: string;
  restarts: number;
  startedAt: string;
  /** The last failure, in words, when there was one. */
  lastError?: string;
}

export interface DeploymentStatus {
  name: string;
  target: string;
  targetType: 'local' | 'kubernetes';
  phase: DeployPhase;
  /** The URL clients call (the proxy or service in front of all revisions). */
  url?: string;
  /** The stable revision first, then the canary when one is rolling out. */
  revisions: RevisionStatus[];
  /** Revisions deployed before, newest first, that `rollback` can return to. */
  history: { revision: string; model: ModelArtifact; sourceRunId?: string; deployedAt: string }[];
  updatedAt: string;
}

/** Where a monitor reads a revision's metrics: scraped directly, or a Prometheus selector for that revision. */
export interface MetricsSource {
  revision: string;
  scrapeUrl?: string;
  /** Label matchers that select this revision's series in Prometheus, e.g. `{job: "churn-api", revision: "r3"}`. */
  prometheusSelector?: Record<string, string>;
}

/** The weight a target actually set, when it can only approximate the one asked for. */
export interface WeightApplied {
  /** The canary's real share, 0-100. */
  percent: number;
  /** How, in words, e.g. `1 of 4 pods`. */
  detail?: string;
}

export interface DeployResult {
  status: DeploymentStatus;
}

export interface UndeployOptions {
  signal?: AbortSignal;
  onEvent?(event: DeployEvent): void;
}

export interface DeployTarget {
  readonly kind: 'local' | 'kubernetes';
  /** Starts `request.revision` and resolves once it is ready (readiness answered 2xx) or failed. */
  deploy(request: DeployRequest): Promise<DeployResult>;
  /** Stops every revision of the deployment; resolves once they are gone. Unknown names resolve to false. */
  undeploy(name: string, options?: UndeployOptions): Promise<boolean>;
  /**
   * Sends `percent` (0-100) of traffic to the canary revision, the rest to the stable one. Targets that can
   * only approximate it (Kubernetes: pod ratios) say what they set; void means exactly `percent`.
   */
  setCanaryWeight(name: string, percent: number): Promise<WeightApplied | void>;
  /** The canary becomes the stable revision and takes all traffic; the old stable one is stopped. */
  promote(name: string): Promise<DeploymentStatus>;
  /**
   * With a canary running: stops it and gives the stable revision all traffic. Without one: redeploys the
   * previous revision from `history`. `reason` is recorded with the deployment and shown to the user.
   */
  rollback(name: string, reason: string, options?: UndeployOptions): Promise<DeploymentStatus>;
  status(name: string): Promise<DeploymentStatus | undefined>;
  list(): Promise<DeploymentStatus[]>;
  /** Per-revision metrics endpoints, for SLO monitors and the serving panel. */
  metricsSources(name: string): Promise<MetricsSource[]>;
}

/** Thrown by targets for conditions the user can fix; `message` says how. */
export class DeployError extends Error {
  constructor(
    message: string,
    readonly code: 'not-found' | 'port-in-use' | 'not-ready' | 'crashed' | 'bad-request' | 'busy' | 'unsupported',
  ) {
    super(message);
  }
}
