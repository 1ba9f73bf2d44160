import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { PlannedStep, RunPlan } from '../../../server/src/core/plan';
import { adoptRemoteOutputs, clearStaging, createArtifactStore, hashS3Dataset, isS3Uri, materializeS3Dataset, remoteStepProblem, resolveS3Options, S3ArtifactStore, stageRemoteStep, stagingFromEnv, type ArtifactStore, type RemoteStaging, type S3DatasetListing, type S3StoreOptions } from './artifacts';
import { gitProvenance } from './git';
import { detectGpus, GpuPool } from './gpus';
import { ContentHasher, MissingPathError } from './hashing';
import { lockPathFor, readLock, updateLockDataset, updateLockStep, writeLock, type LockFile } from './lock-file';
import { localExecutor, type RemoteRun, type StepExecutor } from './executor';
import type { ContentHash, LineageEdge, RunRecord, RunStatus, StepRecord, StepStatus } from './records';
import { RunStore } from './run-store';
import { computeCacheKey, StepCache } from './step-cache';

/**
 * Runs a plan on the local executor: steps in dependency order, independent ones in parallel, each
 * skipped when its content-addressed cache entry is fresh, all of it recorded in the run store.
 */

export type EngineEvent =
  | { type: 'run-started'; runId: string; steps: string[]; storePath: string }
  | { type: 'step-started'; step: string; attempt: number; gpus?: number[] }
  | { type: 'step-output'; step: string; text: string; stream: 'stdout' | 'stderr' }
  | { type: 'step-finished'; step: string; status: StepStatus; durationMs: number; error?: string; metrics?: Record<string, number> }
  | { type: 'run-finished'; runId: string; status: RunStatus; durationMs: number; error?: string };

export interface RunOptions {
  /** Absolute path of the spec; its folder is the workspace all relative paths start from. */
  specPath: string;
  specText: string;
  plan: RunPlan;
  /** Default: `<spec folder>/.mlpipeline/runs`. */
  storeRoot?: string;
  /** Run every step even when its cache entry is fresh. */
  force?: boolean;
  /** At most this many steps at once (default: CPU count, and each target's maxParallel). */
  maxParallel?: number;
  label?: string;
  sweep?: { name: string; trial: number };
  signal?: AbortSignal;
  /** Secret values by name; default: the process environment. Values never reach records or logs. */
  secret?: (name: string) => string | undefined;
  onEvent?: (e: EngineEvent) => void;
  /** GPU indices to use instead of asking nvidia-smi (tests, or to reserve devices). */
  gpus?: number[];
  /** S3 settings (endpoint, profile, region, part size) for `s3://` datasets and artifacts; default: the environment. */
  s3?: S3StoreOptions;
  /** Executor for `type: kubernetes` targets; default: the Kubernetes Job executor (loaded at first use). */
  kubernetesExecutor?: StepExecutor;
}

export interface RunResult {
  runId: string;
  status: RunStatus;
  record: RunRecord;
}

export async function runPlan(opts: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const workspace = dirname(resolve(opts.specPath));
  const store = new RunStore(opts.storeRoot ?? join(workspace, '.mlpipeline', 'runs'));
  const hasher = new ContentHasher({ root: workspace });
  const cache = new StepCache(join(workspace, '.mlpipeline', 'cache', 'steps'));
  const emit = opts.onEvent ?? (() => {});
  const plan = opts.plan;
  const gpuIds = opts.gpus ?? (plan.steps.some((s) => s.gpu && s.targetType === 'local') ? (await detectGpus()).map((g) => g.index) : []);
  const pool = new GpuPool(gpuIds);
  const secret = opts.secret ?? ((n: string) => process.env[n]);

  const record: RunRecord = {
    schema: 1,
    id: store.newRunId(),
    ...(opts.label !== undefined ? { label: opts.label } : {}),
    spec: { path: opts.specPath, name: plan.specName, hash: sha256(opts.specText) },
    status: 'running',
    startedAt: new Date().toISOString(),
    params: plan.params,
    git: await gitProvenance(workspace),
    target: [...new Set(plan.steps.map((s) => s.target))].join(',') || 'local',
    ...(opts.sweep ? { sweep: opts.sweep } : {}),
    steps: Object.fromEntries(plan.steps.map((s) => [s.name, { status: 'pending', command: s.command, attempts: 0, inputs: {}, outputs: Object.fromEntries(Object.entries(s.outputs).map(([k, p]) => [k, { path: p }])), log: '' } satisfies StepRecord])),
    lineage: [],
  };
  for (const s of plan.steps) record.steps[s.name].log = store.logRelPath(record.id, s.name);
  // Runs whose process was killed before finishing are written down as failed, once, by the next run.
  await store.recoverInterrupted().catch(() => []);
  const writer = await store.create(record);
  emit({ type: 'run-started', runId: writer.id, steps: plan.steps.map((s) => s.name), storePath: join(store.root, writer.id) });

  const lockPath = lockPathFor(opts.specPath);
  let lock: LockFile | undefined;
  try {
    lock = readLock(lockPath);
  } catch {
    lock = undefined; // A broken lock file is replaced by this run's; the old one is only a cache of hashes.
  }
  lock ??= { lockVersion: 1, spec: plan.specName, datasets: {}, steps: {} };

  const internal = new AbortController();
  const onAbort = (): void => internal.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const limit = Math.max(1, Math.min(opts.maxParallel ?? availableParallelism(), availableParallelism() * 4));

  // Outputs are copied to `storage.artifacts` when the spec sets it (docs/storage.md).
  const artifacts: ArtifactStore | undefined = plan.storage?.artifacts ? createArtifactStore(plan.storage.artifacts, workspace, opts.s3) : undefined;
  // Steps on Kubernetes get inputs and hand back outputs through it when it is on S3 (docs/kubernetes.md).
  const s3Store = artifacts instanceof S3ArtifactStore ? artifacts : undefined;
  // Datasets are hashed once per run, before any step can change them; S3 ones by their listing.
  const datasetHashes: Record<string, ContentHash> = {};
  const remoteDatasets = new Map<string, S3DatasetListing>();
  const downloads = new Map<string, Promise<unknown>>();
  let runError: string | undefined;
  try {
    for (const [name, d] of Object.entries(plan.datasets)) {
      if (!plan.steps.some((s) => s.datasets.includes(name))) continue;
      if (isS3Uri(d.uri)) {
        const l = await hashS3Dataset(d.uri, opts.s3).catch((e: Error) => {
          throw new Error(`Could not read dataset \`${name}\`: ${e.message}`);
        });
        remoteDatasets.set(name, l);
        datasetHashes[name] = l.hash;
        lock = updateLockDataset(lock, name, { uri: d.uri, hash: l.hash, files: l.files, bytes: l.bytes });
        continue;
      }
      if (isRemote(d.uri)) continue;
      const h = await hasher.hashPath(d.uri, { allowOutsideRoot: true }); // Datasets may live outside the workspace.
      datasetHashes[name] = h.hash;
      lock = updateLockDataset(lock, name, { uri: d.uri, hash: h.hash, files: h.files, bytes: h.bytes });
    }
  } catch (e) {
    runError = e instanceof MissingPathError ? `Dataset file ${e.path} does not exist. Check its \`uri\` under \`datasets:\`, or create it.` : /^Could not read dataset/.test((e as Error).message) ? (e as Error).message : `Could not read a dataset: ${(e as Error).message}`;
  }

  const status = new Map<string, StepStatus>(plan.steps.map((s) => [s.name, 'pending']));
  const outputsOf = new Map<string, Record<string, ContentHash>>();
  const running = new Map<string, Promise<void>>();
  const perTarget = new Map<string, number>();

  const runStep = async (step: PlannedStep): Promise<void> => {
    const rec = record.steps[step.name];
    const t0 = performance.now();
    const finishStep = async (st: StepStatus, error?: string): Promise<void> => {
      status.set(step.name, st);
      rec.status = st;
      rec.finishedAt = new Date().toISOString();
      rec.durationMs = Math.round(performance.now() - t0);
      if (error) rec.error = error;
      await writer.update((r) => (r.steps[step.name] = { ...rec }));
      emit({ type: 'step-finished', step: step.name, status: st, durationMs: rec.durationMs, ...(error ? { error } : {}), ...(rec.metrics ? { metrics: rec.metrics } : {}) });
    };
    rec.startedAt = new Date().toISOString();
    status.set(step.name, 'running');

    if (step.targetType === 'local' && step.gpu && step.gpu.count > pool.size) {
      return finishStep('failed', `Step \`${step.name}\` asks for ${step.gpu.count} GPU${step.gpu.count > 1 ? 's' : ''}${step.gpu.type ? ` (${step.gpu.type}:${step.gpu.count})` : ''}, but this machine has ${pool.size} (nvidia-smi ${pool.size ? `lists ${pool.size}` : 'found none'}). Lower \`resources.gpu\`, or run the step on a Kubernetes target.`);
    }

    // A pod hands outputs back (and gets upstream ones) only through an S3 store: say so before any Job exists.
    const upstreamUris = Object.fromEntries(step.upstream.map((ref) => [ref, record.steps[ref.split('.')[0]]?.outputs[ref.split('.')[1]]?.uri]));
    const remoteProblem = step.targetType === 'kubernetes' ? remoteStepProblem(step, artifacts, upstreamUris) : undefined;
    if (remoteProblem) return finishStep('failed', remoteProblem);

    // Inputs: declared files and folders, local datasets, and the upstream outputs this step reads.
    const inputs: Record<string, ContentHash> = {};
    try {
      for (const p of step.inputs) inputs[p] = (await hasher.hashPath(p)).hash;
    } catch (e) {
      if (e instanceof MissingPathError) return finishStep('failed', `Input \`${e.path}\` of step \`${step.name}\` does not exist. Create it, or fix \`inputs\` of the step.`);
      return finishStep('failed', `Could not read the inputs of step \`${step.name}\`: ${(e as Error).message}`);
    }
    // An S3 dataset enters the key as its URI -> listing hash (so the lock pins it too).
    for (const d of step.datasets) {
      const l = remoteDatasets.get(d);
      if (l) inputs[l.uri] = l.hash;
    }
    const upstream: Record<string, ContentHash> = {};
    for (const ref of step.upstream) {
      const [s, o] = ref.split('.');
      const h = outputsOf.get(s)?.[o];
      if (h) upstream[ref] = h;
    }
    rec.inputs = inputs;
    const params = Object.fromEntries(step.params.map((p) => [p, plan.params[p]]));
    const key = computeCacheKey({ command: step.command, env: step.env, params, inputs, upstream });
    rec.cacheKey = key;
    const lineageIn: string[] = [
      ...step.datasets.filter((d) => datasetHashes[d]).map((d) => `dataset:${d}@${datasetHashes[d]}`),
      ...Object.entries(inputs).filter(([p]) => !Object.values(plan.datasets).some((d) => d.uri === p)).map(([p, h]) => `file:${p}@${h}`),
      ...Object.entries(upstream).map(([ref, h]) => `output:${ref}@${h}`),
    ];
    const stepNode = `step:${writer.id}/${step.name}`;

    if (step.cache && !opts.force) {
      const hit = await cache.lookup(key);
      let fresh = false;
      try {
        // With an artifact store, a hit also needs every output's stored copy, still there with its checksum.
        const stored = !artifacts || Object.entries(hit?.outputs ?? {}).every(([k, o]) => k.startsWith('file:') || o.uri !== undefined);
        const verify = artifacts ? (name: string, o: { hash: ContentHash }) => artifacts.verify({ step: step.name, output: name, hash: o.hash }) : undefined;
        fresh = !!hit && stored && (await cache.isFresh(hit, hasher, verify));
        // Outputs deleted locally but intact in the store are fetched back (verified) instead of recomputed.
        if (hit && stored && !fresh && artifacts && (await restoreOutputs(step.name, hit.outputs, workspace, artifacts, (t) => writer.appendLog(step.name, t)))) {
          fresh = await cache.isFresh(hit, hasher, verify);
        }
      } catch (e) {
        return finishStep('failed', `Could not check the stored outputs of step \`${step.name}\` in ${artifacts?.root}: ${(e as Error).message}`);
      }
      if (hit && fresh) {
        rec.cachedFrom = hit.runId;
        const declared = Object.fromEntries(Object.entries(hit.outputs).filter(([k]) => !k.startsWith('file:')));
        rec.outputs = declared;
        writer.appendLog(step.name, `Not run: inputs unchanged since run ${hit.runId}, whose outputs are still in place (its log: mlpipeline logs ${hit.runId} --step ${step.name}).\n`);
        if (hit.metrics) rec.metrics = hit.metrics;
        outputsOf.set(step.name, Object.fromEntries(Object.entries(declared).map(([k, v]) => [k, v.hash])));
        addLineage(record, lineageIn, stepNode, step.name, declared);
        lock = updateLockStep(lock!, step.name, { cacheKey: key, command: step.command, inputs, outputs: declared, params });
        await writer.update((r) => (r.lineage = record.lineage));
        return finishStep('cached');
      }
    }

    // A local step reads S3 datasets from verified local copies (downloaded once per run, reused across runs).
    if (step.targetType === 'local') {
      for (const d of step.datasets) {
        const l = remoteDatasets.get(d);
        if (!l) continue;
        // Into the folder that holds localDatasetPath(d, uri), the path the planner put into the command.
        if (!downloads.has(d)) downloads.set(d, materializeS3Dataset(l, join(workspace, '.mlpipeline', 'datasets', d), opts.s3, internal.signal));
        try {
          await downloads.get(d);
        } catch (e) {
          return finishStep('failed', `Could not download dataset \`${d}\` (${l.uri}) for step \`${step.name}\`: ${(e as Error).message}`);
        }
      }
    }

    // A remote step's local inputs are staged in the S3 store; the pod is told where everything is.
    let staging: RemoteStaging | undefined;
    if (step.targetType === 'kubernetes') {
      const readsS3 = step.datasets.some((d) => isS3Uri(plan.datasets[d]?.uri ?? ''));
      try {
        const endpoint = s3Store ? s3Store.options.endpoint : readsS3 ? resolveS3Options(opts.s3).endpoint : undefined;
        staging = await stageRemoteStep({ step, plan, runId: writer.id, workspace, store: s3Store, endpoint, inputHashes: inputs, upstream: upstreamUris as Record<string, string>, signal: internal.signal, log: (t) => writer.appendLog(step.name, t) });
      } catch (e) {
        return finishStep('failed', `Could not stage the inputs of step \`${step.name}\` in ${s3Store?.root ?? 'S3'}: ${(e as Error).message}`);
      }
    }

    // Secrets: looked up now, passed only through the environment.
    const env: NodeJS.ProcessEnv = { ...process.env, ...step.env, PYTHONUNBUFFERED: '1', MLP_RUN_ID: writer.id, MLP_STEP: step.name };
    for (const [v, name] of Object.entries(step.secretEnv)) {
      const value = secret(name);
      // On Kubernetes the pod reads secrets from a Secret object; values known here are still masked in logs.
      if (value === undefined && step.targetType !== 'local') continue;
      if (value === undefined) return finishStep('failed', `Secret \`${name}\` is not set. Export ${name} in the environment (CLI), or set it with "ML Pipeline: Set Secret" (VS Code).`);
      env[v] = value;
    }
    const secretValues = Object.keys(step.secretEnv).map((v) => env[v]).filter((s): s is string => !!s && s.length >= 4);

    let gpus: number[] = [];
    if (step.gpu && step.targetType === 'local') {
      gpus = await pool.acquire(step.gpu.count);
      env.CUDA_VISIBLE_DEVICES = gpus.join(',');
      rec.gpus = gpus;
    } else if (pool.size > 0) {
      env.CUDA_VISIBLE_DEVICES = ''; // A step that asked for no GPU must not grab one by accident.
    }
    try {
      for (const p of Object.values(step.outputs)) mkdirSync(resolve(workspace, p.endsWith('/') ? p : dirname(p)), { recursive: true });
      for (const p of [step.metrics, ...step.plots]) if (p) mkdirSync(resolve(workspace, dirname(p)), { recursive: true });
    } catch (e) {
      pool.release(gpus);
      return finishStep('failed', `Could not create the output folders of step \`${step.name}\`: ${(e as Error).message}`);
    }

    let attempt = 0;
    let error: string | undefined;
    let final: StepStatus = 'failed';
    for (;;) {
      attempt++;
      rec.attempts = attempt;
      rec.status = 'running';
      await writer.update((r) => (r.steps[step.name] = { ...rec }));
      emit({ type: 'step-started', step: step.name, attempt, ...(gpus.length ? { gpus } : {}) });
      const executor = step.targetType === 'kubernetes' ? (opts.kubernetesExecutor ??= await loadKubernetesExecutor()) : localExecutor;
      if (attempt > 1 && staging && s3Store) {
        // A retried attempt uploads to the same run-scoped prefixes: what the failed one left must not mix in.
        const cleared = await clearStaging(s3Store, staging, internal.signal).then(() => undefined, (e: Error) => e.message);
        if (cleared) {
          error = `Could not empty the staging prefixes of step \`${step.name}\` before attempt ${attempt}: ${cleared}`;
          break;
        }
      }
      let remoteRun: RemoteRun | undefined;
      const res = await executor.run({
        step,
        plan,
        runId: writer.id,
        attempt,
        cacheKey: key,
        force: !!opts.force,
        cwd: resolve(workspace, step.workdir),
        env,
        remoteEnv: staging?.env,
        signal: internal.signal,
        onOutput: (chunk, stream) => {
          const text = redact(chunk.toString('utf8'), secretValues);
          writer.appendLog(step.name, text);
          emit({ type: 'step-output', step: step.name, text, stream });
        },
        onRemote: (r) => {
          remoteRun = r;
          rec.kubernetes = { job: r.name, namespace: r.namespace, context: r.context, ...(r.createdBy && r.createdBy !== writer.id ? { createdBy: r.createdBy } : {}) };
          void writer.update((x) => (x.steps[step.name] = { ...rec })).catch(() => {});
        },
      });
      rec.exitCode = res.exitCode;
      rec.signal = res.signal;
      let reason: 'failure' | 'timeout' | 'oom' | 'preempted' | 'unschedulable' | 'error' | undefined;
      if (res.cancelled) {
        final = 'cancelled';
        error = 'Cancelled.';
        break;
      } else if (res.failure) {
        reason = res.failure.reason;
        error = res.failure.message;
      } else if (res.spawnError) {
        error = `Could not start the command of step \`${step.name}\`: ${res.spawnError}.`;
        break;
      } else if (res.timedOut) {
        reason = 'timeout';
        error = `Step \`${step.name}\` timed out after ${formatMs(step.timeoutMs!)} and was stopped. Raise \`timeout\`, or make the step faster.`;
      } else if (res.signal === 'SIGKILL') {
        reason = 'oom';
        error = `Step \`${step.name}\` was killed (SIGKILL), most often by the kernel's out-of-memory killer. Lower its memory use or batch size.`;
      } else if (res.exitCode === 127) {
        reason = 'failure';
        error = `Step \`${step.name}\`: command not found (exit code 127). Check the program name in \`command\` and that it is installed and on PATH.`;
      } else if (res.exitCode !== 0) {
        reason = 'failure';
        error = `Step \`${step.name}\` failed with exit code ${res.exitCode ?? res.signal}. See its log above or with \`mlpipeline logs ${writer.id} --step ${step.name}\`.`;
      } else {
        // A remote step's outputs are taken in from S3 (verified) first; then they are checked like local ones.
        const taken = staging && s3Store ? await takeInRemoteOutputs(step, rec, staging, remoteRun, s3Store, workspace, writer.id, internal.signal, (t) => writer.appendLog(step.name, t)) : undefined;
        error = typeof taken === 'string' ? taken : await collectOutputs(step, rec, workspace, hasher);
        if (!error && taken && typeof taken !== 'string') error = await recordRemoteUris(step, rec, taken, s3Store!, internal.signal, (t) => writer.appendLog(step.name, t));
        if (!error) {
          final = 'succeeded';
          break;
        }
        break; // A step that exits 0 but writes bad outputs is not retried: rerunning would do the same.
      }
      if (attempt > step.retry.max || !step.retry.on.includes(reason)) break;
      emit({ type: 'step-output', step: step.name, text: `${error} Retrying (attempt ${attempt + 1} of ${step.retry.max + 1}).\n`, stream: 'stderr' });
    }
    pool.release(gpus);

    // Outputs reach the artifact store before anything records them; a failed or unverified upload fails the step.
    if (final === 'succeeded' && artifacts && step.targetType === 'local') {
      const err = await storeOutputs(step, rec, workspace, artifacts, internal.signal, (t) => writer.appendLog(step.name, t));
      if (err) {
        final = 'failed';
        error = err;
      }
    }
    if (final === 'succeeded') {
      outputsOf.set(step.name, Object.fromEntries(Object.entries(rec.outputs).map(([k, v]) => [k, v.hash!])));
      const outputs = Object.fromEntries(Object.entries(rec.outputs).map(([k, v]) => [k, { path: v.path, hash: v.hash!, ...(v.uri ? { uri: v.uri } : {}) }]));
      addLineage(record, lineageIn, stepNode, step.name, outputs);
      const files = step.plots.map((p) => resolve(workspace, p)).filter((p) => existsSync(p));
      if (files.length) rec.series = await writer.copySeries(step.name, files);
      // Only complete, verified outputs are cached.
      // Metrics and plot files count as outputs for freshness: a later run with other params rewrites them.
      const tracked = { ...outputs };
      for (const p of [step.metrics, ...step.plots]) if (p && existsSync(resolve(workspace, p))) tracked[`file:${p}`] = { path: p, hash: (await hasher.hashPath(p)).hash };
      if (step.cache) await cache.record(key, { key, step: step.name, runId: writer.id, outputs: tracked, ...(rec.metrics ? { metrics: rec.metrics } : {}), createdAt: new Date().toISOString() });
      lock = updateLockStep(lock!, step.name, { cacheKey: key, command: step.command, inputs, outputs, params });
      await writer.update((r) => (r.lineage = record.lineage));
    }
    return finishStep(final, final === 'succeeded' ? undefined : error);
  };

  const skipDependants = async (): Promise<boolean> => {
    let changed = false;
    for (const s of plan.steps) {
      if (status.get(s.name) !== 'pending') continue;
      const bad = s.needs.find((n) => ['failed', 'cancelled', 'skipped'].includes(status.get(n) ?? ''));
      if (bad || internal.signal.aborted || runError) {
        const why = internal.signal.aborted ? 'Cancelled before it started.' : runError ? 'Not started: the run failed before this step.' : `Not run: step \`${bad}\` it depends on did not succeed.`;
        const st: StepStatus = internal.signal.aborted ? 'cancelled' : 'skipped';
        status.set(s.name, st);
        record.steps[s.name].status = st;
        record.steps[s.name].error = why;
        await writer.update((r) => (r.steps[s.name] = { ...record.steps[s.name] }));
        emit({ type: 'step-finished', step: s.name, status: st, durationMs: 0, error: why });
        changed = true;
      }
    }
    return changed;
  };

  // The scheduler: start every ready step up to the limits, then wait for one to finish.
  for (;;) {
    while (await skipDependants());
    const ready = plan.steps.filter((s) => status.get(s.name) === 'pending' && s.needs.every((n) => !status.has(n) || status.get(n) === 'succeeded' || status.get(n) === 'cached'));
    for (const s of ready) {
      if (running.size >= limit) break;
      const targetLimit = plan.targets[s.target]?.maxParallel ?? Infinity;
      if ((perTarget.get(s.target) ?? 0) >= targetLimit) continue;
      perTarget.set(s.target, (perTarget.get(s.target) ?? 0) + 1);
      status.set(s.name, 'running');
      const p = runStep(s)
        .catch(async (e: Error) => {
          status.set(s.name, 'failed');
          record.steps[s.name].status = 'failed';
          record.steps[s.name].error = describeFailure(e, `step \`${s.name}\``);
          await writer.update((r) => (r.steps[s.name] = { ...record.steps[s.name] })).catch(() => {});
          emit({ type: 'step-finished', step: s.name, status: 'failed', durationMs: 0, error: record.steps[s.name].error });
        })
        .finally(() => {
          running.delete(s.name);
          perTarget.set(s.target, perTarget.get(s.target)! - 1);
        });
      running.set(s.name, p);
    }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }
  opts.signal?.removeEventListener('abort', onAbort);

  const statuses = [...status.values()];
  const final: RunStatus = internal.signal.aborted ? 'cancelled' : runError || statuses.some((s) => s === 'failed' || s === 'skipped') ? 'failed' : 'succeeded';
  const failedStep = plan.steps.find((s) => status.get(s.name) === 'failed');
  const error = final === 'cancelled' ? 'Cancelled by the user.' : runError ?? (failedStep ? record.steps[failedStep.name].error : undefined);
  try {
    writeLock(lockPath, lock!);
    await hasher.save();
  } catch (e) {
    emit({ type: 'step-output', step: '', text: `Could not update ${lockPath}: ${(e as Error).message}\n`, stream: 'stderr' });
  }
  let finalError = error;
  try {
    await writer.finish(final, error);
  } catch (e) {
    // The record could not be finished (a full disk, say): say so; the store reads it as interrupted.
    finalError = describeFailure(e as Error, 'recording the end of the run');
    emit({ type: 'step-output', step: '', text: `${finalError}\n`, stream: 'stderr' });
  }
  const durationMs = Math.round(performance.now() - started);
  emit({ type: 'run-finished', runId: writer.id, status: final, durationMs, ...(finalError ? { error: finalError } : {}) });
  record.status = final;
  return { runId: writer.id, status: final, record: (await store.get(writer.id)) ?? record };
}

/** After a zero exit: every declared output exists, metrics parse, then hashes. Returns an error or undefined. */
async function collectOutputs(step: PlannedStep, rec: StepRecord, workspace: string, hasher: ContentHasher): Promise<string | undefined> {
  for (const [name, p] of Object.entries(step.outputs)) {
    if (!existsSync(resolve(workspace, p))) return `Step \`${step.name}\` exited 0 but did not write its output \`${name}\` at \`${p}\`. Make the command write there, or fix \`outputs\`.`;
  }
  if (step.metrics) {
    const file = resolve(workspace, step.metrics);
    if (!existsSync(file)) return `Step \`${step.name}\` exited 0 but did not write its metrics file \`${step.metrics}\`.`;
    const parsed = parseMetrics(readFileSync(file, 'utf8'));
    if (typeof parsed === 'string') return `The metrics file \`${step.metrics}\` of step \`${step.name}\` ${parsed} Its outputs were not cached.`;
    rec.metrics = parsed;
  }
  for (const [name, p] of Object.entries(step.outputs)) rec.outputs[name] = { path: p, hash: (await hasher.hashPath(p)).hash };
  return undefined;
}

/** Takes in what a remote step uploaded (from the prefixes its Job's pod was really given). Returns the stored outputs, or an error sentence. */
async function takeInRemoteOutputs(step: PlannedStep, rec: StepRecord, staging: RemoteStaging, remote: RemoteRun | undefined, store: S3ArtifactStore, workspace: string, runId: string, signal: AbortSignal, log: (t: string) => void): Promise<{ staging: RemoteStaging; outputs: Record<string, { hash: ContentHash; uri: string }> } | string> {
  const from = remote ? stagingFromEnv(step, remote.env, store, remote.createdBy ?? runId) : staging;
  const job = rec.kubernetes ? ` (Job ${rec.kubernetes.namespace}/${rec.kubernetes.job})` : '';
  try {
    return { staging: from, outputs: await adoptRemoteOutputs({ step, workspace, store, staging: from, signal, log }) };
  } catch (e) {
    if (signal.aborted) return 'Cancelled.';
    const msg = (e as Error).message;
    return `Step \`${step.name}\` exited 0${job}, but its outputs could not be taken in from S3: ${msg}${/Nothing was recorded/.test(msg) ? '' : ' Nothing was recorded as complete.'}`;
  }
}

/** After the local checks: the hashes must be the ones taken at adoption; record the stored URIs, then clear the staging prefixes. */
async function recordRemoteUris(step: PlannedStep, rec: StepRecord, taken: { staging: RemoteStaging; outputs: Record<string, { hash: ContentHash; uri: string }> }, store: S3ArtifactStore, signal: AbortSignal, log: (t: string) => void): Promise<string | undefined> {
  for (const [name, o] of Object.entries(taken.outputs)) {
    if (rec.outputs[name]?.hash !== o.hash) {
      for (const [k, v] of Object.entries(rec.outputs)) rec.outputs[k] = { path: v.path }; // A failed step records no hashes.
      return `Output \`${name}\` of step \`${step.name}\` changed in the workspace while it was being taken in from S3 (${o.hash} when stored). Nothing was recorded as complete; run again.`;
    }
    rec.outputs[name].uri = o.uri;
  }
  // Staged copies are no longer needed; a failure here only leaves objects a lifecycle rule can expire.
  await clearStaging(store, taken.staging, signal).catch((e: Error) => log(`Could not delete the staged copies: ${e.message}\n`));
  return undefined;
}

/**
 * Fetches outputs that are missing locally from the artifact store (only missing ones: a path that exists
 * with other content is the user's and is not overwritten). True when something was restored; a failed
 * fetch only means the step runs again.
 */
async function restoreOutputs(step: string, outputs: Record<string, { path: string; hash: ContentHash; uri?: string }>, workspace: string, store: ArtifactStore, log: (text: string) => void): Promise<boolean> {
  let restored = false;
  for (const [name, o] of Object.entries(outputs)) {
    if (name.startsWith('file:') || !o.uri || existsSync(resolve(workspace, o.path))) continue;
    try {
      await store.fetch({ step, output: name, hash: o.hash }, resolve(workspace, o.path));
      log(`Restored output \`${name}\` (${o.path}) from ${o.uri}, sha256 verified.\n`);
      restored = true;
    } catch (e) {
      log(`Could not restore output \`${name}\` from ${o.uri} (${(e as Error).message}); running the step instead.\n`);
      return false;
    }
  }
  return restored;
}

/** Copies each verified output to the artifact store and records where. Returns an error sentence or undefined. */
async function storeOutputs(step: PlannedStep, rec: StepRecord, workspace: string, store: ArtifactStore, signal: AbortSignal, log: (text: string) => void): Promise<string | undefined> {
  for (const [name, o] of Object.entries(rec.outputs)) {
    try {
      const t0 = performance.now();
      const r = await store.put(resolve(workspace, o.path), { step: step.name, output: name, hash: o.hash! }, { signal });
      o.uri = r.uri;
      log(`${r.uploaded ? 'Stored' : 'Already stored'} output \`${name}\` at ${r.uri} (${r.files} file${r.files === 1 ? '' : 's'}, ${r.bytes} bytes, sha256 verified${r.uploaded ? `, ${Math.round(performance.now() - t0)} ms` : ''}).\n`);
    } catch (e) {
      if (signal.aborted) return 'Cancelled.';
      return `Step \`${step.name}\` succeeded, but its output \`${name}\` could not be stored in ${store.root}: ${(e as Error).message} The step's outputs were not cached.`;
    }
  }
  return undefined;
}

/** A JSON object of numbers; nested objects flatten to `a.b`. Returns an error sentence or the metrics. */
export function parseMetrics(text: string): Record<string, number> | string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return `is not valid JSON (${(e as Error).message}).`;
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) return 'must be a JSON object of numbers, like {"auc": 0.91}.';
  const out: Record<string, number> = {};
  const walk = (o: Record<string, unknown>, prefix: string): string | undefined => {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === 'number' && Number.isFinite(v)) out[prefix + k] = v;
      else if (v && typeof v === 'object' && !Array.isArray(v)) {
        const err = walk(v as Record<string, unknown>, `${prefix}${k}.`);
        if (err) return err;
      } else if (typeof v === 'boolean') out[prefix + k] = v ? 1 : 0;
      else return `has a value that is not a number at \`${prefix}${k}\`.`;
    }
    return undefined;
  };
  return walk(data as Record<string, unknown>, '') ?? out;
}

function addLineage(record: RunRecord, inputs: string[], stepNode: string, step: string, outputs: Record<string, { hash: ContentHash }>): void {
  const edges: LineageEdge[] = [...inputs.map((from) => ({ from, to: stepNode })), ...Object.entries(outputs).map(([o, v]) => ({ from: stepNode, to: `output:${step}.${o}@${v.hash}` }))];
  record.lineage.push(...edges);
}

/** File-system failures in words a user can act on; anything else keeps its own message. */
export function describeFailure(e: Error, during: string): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return `The disk is full (${code}) while ${during}. Free some space and run again; nothing partial was cached.`;
  if (code === 'EACCES' || code === 'EPERM') return `Permission denied (${code}) while ${during}: ${e.message}. Check the folder's owner and permissions.`;
  if (code === 'EROFS') return `The file system is read-only (EROFS) while ${during}.`;
  return `Internal error while ${during}: ${e.message}`;
}

/** Secret values never reach logs, even when a program prints them. */
function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}

async function loadKubernetesExecutor(): Promise<StepExecutor> {
  const { KubernetesExecutor } = await import('./kubernetes/executor');
  return new KubernetesExecutor();
}

function isRemote(uri: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//.test(uri);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function formatMs(ms: number): string {
  return ms >= 3_600_000 ? `${(ms / 3_600_000).toFixed(1)} h` : ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 1000).toFixed(1)} s`;
}

