/**
 * What a step that runs away from this machine (a Kubernetes pod) is told about storage: environment
 * variables naming where its inputs are and where its outputs go. docs/storage.md describes the contract;
 * this file is its one implementation, so the executor, the engine and the docs cannot drift.
 */
import { posix } from 'node:path';
import { joinKey, parseS3Uri, formatS3Uri } from './s3-uri';

export interface RemoteStepEnvInput {
  /** `storage.artifacts`, an s3:// URI; absent when there is no S3 store (then only datasets are named). */
  artifacts?: string;
  runId: string;
  step: string;
  /** Declared outputs: name -> path inside the step's working folder. */
  outputs: Record<string, string>;
  /** Datasets the step reads: name -> URI (s3://). */
  datasets: Record<string, string>;
  /** Upstream outputs the step reads: `step.output` -> artifact URI recorded when that step succeeded. */
  upstream: Record<string, string>;
  /**
   * Everything the pod fetches before its command, workspace-relative path -> URI (a URI ending in `/` is a
   * folder): declared inputs staged by the engine and the upstream outputs at their declared paths.
   */
  inputs?: Record<string, string>;
  /** The metrics file and plot files the step writes (workspace-relative); uploaded like outputs. */
  files?: string[];
  /** Endpoint for S3-compatible stores, passed on so the pod's tools use the same one. */
  endpoint?: string;
}

/** Environment variable names: upper case, anything but letters and digits as `_`. */
export function envName(...parts: string[]): string {
  return parts.map((p) => p.toUpperCase().replace(/[^A-Z0-9]/g, '_')).join('_');
}

/** Where a remote step uploads output `output`: `<artifacts>/<step>/<output>/runs/<runId>/`. */
export function stagedOutputUri(artifacts: string, step: string, output: string, runId: string): string {
  const root = parseS3Uri(artifacts);
  return formatS3Uri({ bucket: root.bucket, key: `${joinKey(root.key, step, output, 'runs', runId)}/` });
}

/**
 * Where a remote step uploads its metrics and plot files, each at its workspace-relative path below:
 * `<artifacts>/<step>/_files/runs/<runId>/`. Output names start with a letter, so `_files` is never one.
 */
export function stagedFilesUri(artifacts: string, step: string, runId: string): string {
  return stagedOutputUri(artifacts, step, '_files', runId);
}

/** A workspace-relative path without `./` or a trailing `/` (`./out/m/` -> `out/m`). */
function cleanPath(p: string): string {
  return posix.normalize(p).replace(/\/+$/, '').replace(/^\.\//, '');
}

/**
 * MLP_ARTIFACTS, MLP_RUN_ID, MLP_STEP; MLP_DATASET_<NAME>_URI per dataset; MLP_INPUT_<STEP>_<OUTPUT>_URI per
 * upstream output (content-addressed, complete and verified); MLP_OUTPUT_<NAME>_PATH and
 * MLP_OUTPUT_<NAME>_URI per output (a run-scoped upload prefix: `<artifacts>/<step>/<output>/runs/<runId>/`);
 * MLP_FILES_URI for metrics and plots; MLP_INPUTS and MLP_OUTPUTS, the same as two JSON objects
 * (path -> URI to fetch; path -> prefix to upload to) for generic staging tools; and AWS_ENDPOINT_URL_S3
 * when a custom endpoint is configured. Credentials are never put here: pods get them from their own
 * identity (IRSA, a Kubernetes Secret referenced by name).
 *
 * Upload rule, the same for every entry of MLP_OUTPUTS: a file goes to `<prefix><file name>`, a folder's
 * files to `<prefix><path inside the folder>`.
 */
export function remoteStepEnv(i: RemoteStepEnvInput): Record<string, string> {
  const env: Record<string, string> = { MLP_RUN_ID: i.runId, MLP_STEP: i.step };
  for (const [name, uri] of Object.entries(i.datasets)) env[`MLP_DATASET_${envName(name)}_URI`] = uri;
  if (i.endpoint) env.AWS_ENDPOINT_URL_S3 = i.endpoint;
  if (!i.artifacts) return env;
  env.MLP_ARTIFACTS = formatS3Uri(parseS3Uri(i.artifacts));
  for (const [ref, uri] of Object.entries(i.upstream)) {
    const [s, o] = ref.split('.');
    env[`MLP_INPUT_${envName(s, o)}_URI`] = uri;
  }
  const uploads: Record<string, string> = {};
  for (const [name, path] of Object.entries(i.outputs)) {
    const prefix = stagedOutputUri(i.artifacts, i.step, name, i.runId);
    env[`MLP_OUTPUT_${envName(name)}_PATH`] = path;
    env[`MLP_OUTPUT_${envName(name)}_URI`] = prefix;
    uploads[path] = prefix;
  }
  if (i.files?.length) {
    const files = stagedFilesUri(i.artifacts, i.step, i.runId);
    env.MLP_FILES_URI = files;
    // A file's prefix is its folder under MLP_FILES_URI, so the upload rule puts it at its own path there.
    for (const f of i.files) {
      const dir = posix.dirname(cleanPath(f));
      uploads[f] = dir === '.' ? files : `${files}${dir}/`;
    }
  }
  // Only when there is something to move, so a step without inputs or outputs sees neither.
  if (i.inputs && Object.keys(i.inputs).length) env.MLP_INPUTS = JSON.stringify(i.inputs);
  if (Object.keys(uploads).length) env.MLP_OUTPUTS = JSON.stringify(uploads);
  return env;
}

/** The object key (below MLP_FILES_URI) where a remote step's metrics or plot file `path` arrives. */
export function stagedFileKey(path: string): string {
  return cleanPath(path);
}
