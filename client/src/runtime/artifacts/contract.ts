/**
 * What a step that runs away from this machine (a Kubernetes pod) is told about storage: environment
 * variables naming where its inputs are and where its outputs go. docs/storage.md describes the contract;
 * this function is its one implementation, so the executor and the docs cannot drift.
 */
import { joinKey, parseS3Uri, formatS3Uri } from './s3-uri';

export interface RemoteStepEnvInput {
  /** `storage.artifacts`, an s3:// URI. */
  artifacts: string;
  runId: string;
  step: string;
  /** Declared outputs: name -> path inside the step's working folder. */
  outputs: Record<string, string>;
  /** Datasets the step reads: name -> URI (s3://). */
  datasets: Record<string, string>;
  /** Upstream outputs the step reads: `step.output` -> artifact URI recorded when that step succeeded. */
  upstream: Record<string, string>;
  /** Endpoint for S3-compatible stores, passed on so the pod's tools use the same one. */
  endpoint?: string;
}

/** Environment variable names: upper case, anything but letters and digits as `_`. */
export function envName(...parts: string[]): string {
  return parts.map((p) => p.toUpperCase().replace(/[^A-Z0-9]/g, '_')).join('_');
}

/**
 * MLP_ARTIFACTS, MLP_RUN_ID, MLP_STEP; MLP_DATASET_<NAME>_URI per dataset; MLP_INPUT_<STEP>_<OUTPUT>_URI per
 * upstream output (content-addressed, complete and verified); MLP_OUTPUT_<NAME>_PATH and
 * MLP_OUTPUT_<NAME>_URI per output (a run-scoped upload prefix: `<artifacts>/<step>/<output>/runs/<runId>/`),
 * and AWS_ENDPOINT_URL_S3 when a custom endpoint is configured. Credentials are never put here: pods get
 * them from their own identity (IRSA, a Kubernetes Secret referenced by name).
 */
export function remoteStepEnv(i: RemoteStepEnvInput): Record<string, string> {
  const root = parseS3Uri(i.artifacts);
  const env: Record<string, string> = { MLP_ARTIFACTS: formatS3Uri(root), MLP_RUN_ID: i.runId, MLP_STEP: i.step };
  for (const [name, uri] of Object.entries(i.datasets)) env[`MLP_DATASET_${envName(name)}_URI`] = uri;
  for (const [ref, uri] of Object.entries(i.upstream)) {
    const [s, o] = ref.split('.');
    env[`MLP_INPUT_${envName(s, o)}_URI`] = uri;
  }
  for (const [name, path] of Object.entries(i.outputs)) {
    env[`MLP_OUTPUT_${envName(name)}_PATH`] = path;
    env[`MLP_OUTPUT_${envName(name)}_URI`] = formatS3Uri({ bucket: root.bucket, key: `${joinKey(root.key, i.step, name, 'runs', i.runId)}/` });
  }
  if (i.endpoint) env.AWS_ENDPOINT_URL_S3 = i.endpoint;
  return env;
}
