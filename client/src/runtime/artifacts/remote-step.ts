/**
 * The engine's side of the remote-step storage contract (contract.ts, docs/storage.md): the check made
 * before a Job is created, staging a step's inputs in the S3 artifact store, and taking in (adopting) what
 * the pod uploaded once it succeeded. Nothing Kubernetes-specific: any executor that runs a step away from
 * this machine goes through the same calls. No `vscode` imports.
 */
import { resolve } from 'node:path';
import type { PlannedStep, RunPlan } from '../../../../server/src/core/plan';
import type { ContentHash } from '../records';
import { envName, remoteStepEnv, stagedFileKey, stagedFilesUri, stagedOutputUri } from './contract';
import { hashS3Dataset, type S3ArtifactStore, type S3DatasetListing } from './s3';
import { StorageError, type ArtifactStore } from './types';

/** The store's pseudo-step under which declared inputs are staged: `<artifacts>/_inputs/<path slug>/<hash>/`. Step names start with a letter, so it is never a step's. */
export const INPUTS_STEP = '_inputs';

/** What a pod is told (env) and where it was told to upload (so the engine knows where to adopt from). */
export interface RemoteStaging {
  env: Record<string, string>;
  /** Output name -> the run-scoped prefix the pod uploads it to. */
  outputs: Record<string, string>;
  /** Prefix for the metrics and plot files, when the step declares any. */
  files?: string;
}

const quoted = (xs: string[]): string => xs.map((x) => `\`${x}\``).join(', ');

/**
 * Why step `step` cannot run on a remote target with this artifact store, in words that say what to add;
 * undefined when it can. Checked before any Job exists. `upstream`: `step.output` -> its verified URI in
 * the store, for the upstream outputs that have one.
 */
export function remoteStepProblem(step: PlannedStep, store: ArtifactStore | undefined, upstream: Record<string, string | undefined>): string | undefined {
  const where = `Step \`${step.name}\` runs on Kubernetes (target \`${step.target}\`)`;
  if (store?.kind === 's3') {
    const missing = step.upstream.filter((ref) => !upstream[ref]);
    if (missing.length) return `${where} and reads ${quoted(missing)}, which ${missing.length > 1 ? 'have' : 'has'} no verified copy in ${store.root}. Run the step that writes ${missing.length > 1 ? 'them' : 'it'} again (\`mlpipeline run --force\`). No Job was created.`;
    return undefined;
  }
  const back = [...Object.keys(step.outputs).map((o) => `output \`${o}\``), ...(step.metrics ? [`metrics file \`${step.metrics}\``] : []), ...step.plots.map((p) => `plot \`${p}\``)];
  const reads = step.upstream.map((r) => `\`${r}\``);
  if (!back.length && !reads.length) return undefined;
  const what = back.length ? `declares ${back.join(', ')}, which the pod can only hand back` : `reads ${reads.join(', ')}, which the pod can only get`;
  const why = store ? `\`storage.artifacts\` is a local folder (${store.root}), which a pod cannot reach. Set it to an s3:// URI` : 'the spec has no `storage.artifacts`. Add one';
  return `${where} and ${what} through an S3 artifact store, but ${why}, e.g. \`storage: {artifacts: s3://<bucket>/<prefix>/}\`, and give the pod credentials for that bucket (docs/kubernetes.md, "Inputs and outputs"). No Job was created.`;
}

/** A key segment for a workspace-relative path: `src/common/` -> `src__common`. */
export function inputSlug(path: string): string {
  const s = path
    .replace(/\\/g, '/')
    .replace(/^(\.\/)+/, '')
    .replace(/\/+$/, '')
    .replace(/\//g, '__')
    .replace(/[^A-Za-z0-9_.-]/g, '-');
  return /^[A-Za-z0-9_]/.test(s) ? s : `_${s}`;
}

export interface StageInput {
  step: PlannedStep;
  plan: RunPlan;
  runId: string;
  workspace: string;
  /** The S3 artifact store; without one, only dataset URIs (and the endpoint) are passed on. */
  store?: S3ArtifactStore;
  /** Custom S3 endpoint the pod should use too. */
  endpoint?: string;
  /** Content hashes of the step's local inputs (declared files and folders, local datasets). */
  inputHashes: Record<string, ContentHash>;
  /** `step.output` -> verified URI in the store, for the upstream outputs the step reads. */
  upstream: Record<string, string>;
  signal?: AbortSignal;
  log(text: string): void;
}

/**
 * Uploads the step's local inputs to the store, content-addressed (an unchanged input is only checked,
 * not sent again), and returns the pod's environment (contract.ts) and the staging prefixes.
 */
export async function stageRemoteStep(i: StageInput): Promise<RemoteStaging> {
  const { step, store } = i;
  const inputs: Record<string, string> = {};
  if (store) {
    for (const p of step.inputs) {
      const hash = i.inputHashes[p];
      if (!hash) continue;
      const r = await store.put(resolve(i.workspace, p), { step: INPUTS_STEP, output: inputSlug(p), hash }, { signal: i.signal });
      inputs[p] = r.uri;
      i.log(`${r.uploaded ? 'Staged' : 'Already staged'} input \`${p}\` at ${r.uri} (sha256 verified).\n`);
    }
    for (const ref of step.upstream) {
      const [s, o] = ref.split('.');
      const path = i.plan.steps.find((x) => x.name === s)?.outputs[o];
      if (path && i.upstream[ref]) inputs[path] = i.upstream[ref];
    }
  }
  const datasets: Record<string, string> = {};
  for (const d of step.datasets) {
    const uri = i.plan.datasets[d]?.uri;
    if (uri) datasets[d] = inputs[uri] ?? uri; // A local dataset file is named by its staged copy.
  }
  const files = [step.metrics, ...step.plots].filter((f): f is string => !!f);
  const env = remoteStepEnv({
    ...(store ? { artifacts: store.root, inputs, files } : {}),
    runId: i.runId,
    step: step.name,
    outputs: store ? step.outputs : {},
    datasets,
    upstream: store ? Object.fromEntries(step.upstream.filter((r) => i.upstream[r]).map((r) => [r, i.upstream[r]])) : {},
    endpoint: i.endpoint,
  });
  // A pod may reach S3 at another address than this machine (an in-cluster service): the spec's env wins.
  const target = i.plan.targets[step.target]?.kubernetes;
  if ('AWS_ENDPOINT_URL_S3' in step.env || 'AWS_ENDPOINT_URL_S3' in (target?.env ?? {})) delete env.AWS_ENDPOINT_URL_S3;
  return stagingFromEnv(step, env, store, i.runId);
}

/**
 * The staging prefixes as the pod was told them, read back from its environment (a Job adopted from an
 * earlier run carries that run's prefixes), falling back to the ones computed for `runId`.
 */
export function stagingFromEnv(step: PlannedStep, env: Record<string, string>, store: S3ArtifactStore | undefined, runId: string): RemoteStaging {
  const outputs: Record<string, string> = {};
  if (store) for (const name of Object.keys(step.outputs)) outputs[name] = env[`MLP_OUTPUT_${envName(name)}_URI`] ?? stagedOutputUri(store.root, step.name, name, runId);
  const hasFiles = !!store && (!!step.metrics || step.plots.length > 0);
  return { env, outputs, ...(hasFiles ? { files: env.MLP_FILES_URI ?? stagedFilesUri(store!.root, step.name, runId) } : {}) };
}

/** Empties the staging prefixes (before a retried attempt, and after a successful adoption). */
export async function clearStaging(store: S3ArtifactStore, staging: RemoteStaging, signal?: AbortSignal): Promise<number> {
  let n = 0;
  for (const uri of [...Object.values(staging.outputs), ...(staging.files ? [staging.files] : [])]) n += await store.deletePrefix(uri, signal);
  return n;
}

/**
 * After the remote command exited 0: takes in every declared output from its staging prefix (verified
 * download, hashed like a local output, stored content-addressed with all of `put`'s checks; the copy in
 * the workspace is what later local steps and cache checks read), then the metrics and plot files.
 * Throws with a message that names the output and the URI; returns the outputs to record.
 */
export async function adoptRemoteOutputs(i: { step: PlannedStep; workspace: string; store: S3ArtifactStore; staging: RemoteStaging; signal?: AbortSignal; log(text: string): void }): Promise<Record<string, { path: string; hash: ContentHash; uri: string }>> {
  const { step, store, staging } = i;
  const out: Record<string, { path: string; hash: ContentHash; uri: string }> = {};
  for (const [name, path] of Object.entries(step.outputs)) {
    const staged = staging.outputs[name];
    const r = await store.adopt(staged, { step: step.name, output: name, kind: path.endsWith('/') ? 'dir' : 'auto' }, resolve(i.workspace, path), { signal: i.signal, keepStaged: true });
    out[name] = { path, hash: r.hash, uri: r.uri };
    i.log(`Took in output \`${name}\` from ${staged}: ${r.kind === 'file' ? 'a file' : `a folder of ${r.files} file${r.files === 1 ? '' : 's'}`}, ${r.bytes} bytes, sha256 verified, stored at ${r.uri}.\n`);
  }
  const files = [step.metrics, ...step.plots].filter((f): f is string => !!f);
  if (files.length && staging.files) {
    let listing: S3DatasetListing | undefined;
    try {
      listing = await hashS3Dataset(staging.files, store.options);
    } catch (e) {
      if (!(e instanceof StorageError && /is empty or does not exist/.test(e.message))) throw e;
    }
    for (const f of files) {
      const obj = listing?.objects.find((o) => o.rel === stagedFileKey(f));
      if (!obj) {
        if (f === step.metrics) throw new StorageError(`Step \`${step.name}\` did not upload its metrics file \`${f}\` to ${staging.files}${stagedFileKey(f)}.`, 'NotFound');
        continue; // Plots are optional, as for local steps.
      }
      await store.download(obj.key, resolve(i.workspace, f), { bytes: obj.size, etag: obj.etag }, i.signal);
      i.log(`Took in \`${f}\` from ${staging.files}${obj.rel} (${obj.size} bytes, verified).\n`);
    }
  }
  return out;
}
