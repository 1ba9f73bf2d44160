/**
 * Runs one attempt of a step as a Kubernetes Job: create (or adopt the Job an earlier, interrupted run
 * created for the same step and inputs), follow it through watches that reconnect plus a periodic re-read,
 * stream the pod's log through the apiserver into the step log, turn scheduling Events into errors, and
 * cancel by deleting the Job with foreground propagation.
 */
import type { ClientRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { StepExecution, StepExecutionResult, StepExecutor } from '../executor';
import { sleep } from '../sleep';
import { connect, KubeError, messageOf, statusOf, withRetries, type KubeClient } from './client';
import { jobFailure, podProblem, type JobLike, type PodLike } from './status';
import { ANNOTATION, buildJob, plainEnvOf, SECRETS_OBJECT, STEP_CONTAINER, type Manifest } from './manifests';

export interface KubernetesExecutorOptions {
  /** kubeconfig file; default $KUBECONFIG or ~/.kube/config. */
  kubeconfig?: string;
  /** How long a pod may stay unschedulable (FailedScheduling) or unable to start its container before the step fails. Default 300 s ($MLPIPELINE_K8S_PENDING_TIMEOUT, seconds). */
  pendingTimeoutMs?: number;
  /** How long API calls are retried through 5xx/429/dropped connections. Default 120 s. */
  apiDeadlineMs?: number;
  /** Re-read interval, a safety net under the watches. Default 2 s. */
  pollMs?: number;
  /** One API request may take this long before it is retried. Default 15 s. */
  requestTimeoutMs?: number;
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export class KubernetesExecutor implements StepExecutor {
  constructor(private readonly options: KubernetesExecutorOptions = {}) {}

  async run(x: StepExecution): Promise<StepExecutionResult> {
    const started = performance.now();
    const done = (r: Partial<StepExecutionResult>): StepExecutionResult => ({ exitCode: null, signal: null, timedOut: false, cancelled: false, durationMs: performance.now() - started, ...r });
    const fail = (reason: NonNullable<StepExecutionResult['failure']>['reason'], message: string): StepExecutionResult => done({ failure: { reason, message } });
    const say = (text: string): void => x.onOutput(Buffer.from(`[mlpipeline] ${text}\n`), 'stderr');
    const target = x.plan.targets[x.step.target]?.kubernetes;
    if (!target) return fail('error', `Compute target \`${x.step.target}\` is not a Kubernetes target.`);
    if (!target.image) return fail('error', `Compute target \`${x.step.target}\` has no \`image\`: set the container image the step runs in.`);

    let client: KubeClient;
    try {
      client = await connect({ kubeconfig: this.options.kubeconfig, context: target.context });
    } catch (e) {
      return fail('error', (e as Error).message);
    }
    const ns = target.namespace;
    const manifest = buildJob({ specName: x.plan.specName, step: x.step, target, runId: x.runId, attempt: x.attempt, cacheKey: x.cacheKey, extraEnv: x.remoteEnv });
    const name = manifest.metadata.name;
    const where = `Job ${ns}/${name} (context ${client.contextName})`;
    const retry = { deadlineMs: this.options.apiDeadlineMs ?? 120_000, requestTimeoutMs: this.options.requestTimeoutMs, signal: x.signal, onRetry: (what: string, err: string, ms: number) => say(`${what}: ${err}; retrying in ${(ms / 1000).toFixed(1)} s`) };
    const api = <T>(what: string, fn: () => Promise<T>): Promise<T> => withRetries(what, fn, retry);

    try {
      const missing = await missingSecrets(client, ns, Object.values({ ...target.secretEnv, ...x.step.secretEnv }), api);
      if (missing) return fail('error', missing);
      const { adopted, job } = await createOrAdopt(client, manifest, x, api, say);
      say(`${adopted ? 'Adopted' : 'Created'} ${where}`);
      x.onRemote?.({ kind: 'kubernetes-job', name, namespace: ns, context: client.contextName, createdBy: job.metadata?.annotations?.[ANNOTATION.runId], env: plainEnvOf(job) });
      return await follow(client, ns, name, x, api, say, {
        pendingTimeoutMs: this.options.pendingTimeoutMs ?? (Number(process.env.MLPIPELINE_K8S_PENDING_TIMEOUT) || 300) * 1000,
        pollMs: this.options.pollMs ?? 2000,
        done,
        fail,
      });
    } catch (e) {
      if (x.signal.aborted) {
        await cancelJob(client, ns, name, api, say).catch(() => {});
        return done({ cancelled: true });
      }
      return fail('error', `${where}: ${e instanceof KubeError ? e.message : describeApiError(e)}`);
    }
  }
}

function describeApiError(e: unknown): string {
  const s = statusOf(e);
  if (s === 401) return 'the cluster rejected the credentials (401). Refresh them (e.g. log in again) or check the kubeconfig user.';
  if (s === 403) return `not allowed (403): ${messageOf(e)}. The kubeconfig user needs create/get/list/watch/delete on jobs, pods, pods/log and events in the namespace.`;
  if (s === 404) return `not found (404): ${messageOf(e)}. Check that the namespace exists (kubectl get ns).`;
  if (s === 422 || s === 400) return `the cluster refused the manifest: ${messageOf(e)}. Run \`mlpipeline plan --target ...\` to see it.`;
  return messageOf(e);
}

async function missingSecrets(client: KubeClient, ns: string, names: string[], api: <T>(what: string, fn: () => Promise<T>) => Promise<T>): Promise<string | undefined> {
  const wanted = [...new Set(names)];
  if (!wanted.length) return undefined;
  let secret: Json;
  try {
    secret = (await api('Reading Secret', () => client.core.readNamespacedSecret({ name: SECRETS_OBJECT, namespace: ns }))) as Json;
  } catch (e) {
    if (statusOf(e) === 403) return undefined; // Not allowed to read Secrets: the pod will tell.
    if (statusOf(e) === 404) return `The step needs secret${wanted.length > 1 ? 's' : ''} ${wanted.join(', ')}, read from the Kubernetes Secret \`${SECRETS_OBJECT}\` in namespace \`${ns}\`, which does not exist. Create it: kubectl -n ${ns} create secret generic ${SECRETS_OBJECT} ${wanted.map((n) => `--from-literal=${n}=...`).join(' ')}`;
    throw e;
  }
  const absent = wanted.filter((n) => !(n in (secret.data ?? {})) && !(n in (secret.stringData ?? {})));
  if (absent.length) return `The Kubernetes Secret \`${SECRETS_OBJECT}\` in namespace \`${ns}\` has no key ${absent.join(', ')}. Add ${absent.length > 1 ? 'them' : 'it'}: kubectl -n ${ns} patch secret ${SECRETS_OBJECT} --type merge -p '{"stringData":{"${absent[0]}":"..."}}'`;
  return undefined;
}

/** The Job this attempt follows: the one just created, or an existing one for the same step and inputs (`adopted`). */
async function createOrAdopt(client: KubeClient, manifest: Manifest, x: StepExecution, api: <T>(what: string, fn: () => Promise<T>) => Promise<T>, say: (t: string) => void): Promise<{ adopted: boolean; job: Json }> {
  const ns = manifest.metadata.namespace!;
  const name = manifest.metadata.name;
  for (let round = 0; round < 5; round++) {
    try {
      // A create whose response was lost is retried and answered 409: adopted below as our own.
      await api('Creating the Job', () => client.batch.createNamespacedJob({ namespace: ns, body: manifest as never }));
      return { adopted: false, job: manifest };
    } catch (e) {
      if (statusOf(e) !== 409) throw e;
    }
    let existing: Json;
    try {
      existing = (await api('Reading the existing Job', () => client.batch.readNamespacedJob({ name, namespace: ns }))) as Json;
    } catch (e) {
      if (statusOf(e) === 404) continue; // Deleted in between: create again.
      throw e;
    }
    const ann: Record<string, string> = existing.metadata?.annotations ?? {};
    if (ann[ANNOTATION.cacheKey] !== x.cacheKey) throw new KubeError(`A Job named ${name} already exists in namespace ${ns} but was not created by mlpipeline for this step and inputs. Delete it (kubectl -n ${ns} delete job ${name}) and run again.`);
    if (existing.metadata?.deletionTimestamp) {
      say(`Job ${ns}/${name} is being deleted; waiting to create it again`);
      await waitGone(client, ns, name, api, x.signal);
      continue;
    }
    const failure = jobFailure(existing as JobLike, []);
    const succeeded = (existing.status?.succeeded ?? 0) > 0;
    if (ann[ANNOTATION.runId] !== x.runId && (failure || (succeeded && x.force))) {
      say(`Job ${ns}/${name} from run ${ann[ANNOTATION.runId]} already ${succeeded ? 'succeeded' : 'failed'}; deleting it to run the step again`);
      await deleteJob(client, ns, name, api);
      await waitGone(client, ns, name, api, x.signal);
      continue;
    }
    if (ann[ANNOTATION.runId] !== x.runId) say(`A Job for this step and these inputs already exists (created by run ${ann[ANNOTATION.runId]}, ${succeeded ? 'succeeded' : 'still running'}): following it instead of starting a second one`);
    return { adopted: true, job: existing };
  }
  throw new KubeError(`Job ${ns}/${name} kept being replaced while mlpipeline tried to create it. Is another run of this step active?`);
}

function deleteJob(client: KubeClient, ns: string, name: string, api: <T>(what: string, fn: () => Promise<T>) => Promise<T>): Promise<unknown> {
  return api('Deleting the Job', () => client.batch.deleteNamespacedJob({ name, namespace: ns, propagationPolicy: 'Foreground' })).catch((e) => {
    if (statusOf(e) !== 404) throw e;
  });
}

async function waitGone(client: KubeClient, ns: string, name: string, api: <T>(what: string, fn: () => Promise<T>) => Promise<T>, signal?: AbortSignal, timeoutMs = 120_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      await api('Reading the Job', () => client.batch.readNamespacedJob({ name, namespace: ns }));
    } catch (e) {
      if (statusOf(e) === 404) return true;
      throw e;
    }
    await sleep(300, signal);
  }
  return false;
}

async function cancelJob(client: KubeClient, ns: string, name: string, api: <T>(what: string, fn: () => Promise<T>) => Promise<T>, say: (t: string) => void): Promise<void> {
  say(`Cancelling: deleting Job ${ns}/${name} (foreground: its pods go first)`);
  await deleteJob(client, ns, name, api);
  const gone = await waitGone(client, ns, name, api, undefined, 60_000);
  say(gone ? `Job ${ns}/${name} and its pods are deleted` : `Job ${ns}/${name} is still being deleted; check with kubectl -n ${ns} get job ${name}`);
}

/** Streams a container's log through the apiserver; reconnects after drops without repeating bytes. */
class LogFollower {
  private received = 0;
  private request?: ClientRequest;
  private streaming = false;
  private ended = false;
  private lastAttempt = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly ns: string,
    readonly pod: string,
    private readonly onOutput: (b: Buffer) => void,
  ) {}

  /**
   * One GET of pods/log; bytes already delivered are skipped (the log is re-read from its start, so a
   * reconnect neither loses nor repeats output). Resolves true when the server ended the body normally.
   */
  private fetch(follow: boolean): Promise<boolean> {
    return new Promise((resolve) => {
      const opts: RequestOptions = { method: 'GET' };
      let skip = this.received;
      void this.client.kc
        .applyToHTTPSOptions(opts)
        .then(() => {
          const url = new URL(`${this.client.server}/api/v1/namespaces/${encodeURIComponent(this.ns)}/pods/${encodeURIComponent(this.pod)}/log?container=${STEP_CONTAINER}&follow=${follow}`);
          const req = httpsRequest(url, opts, (res) => {
            if (res.statusCode !== 200) {
              res.resume();
              return resolve(false);
            }
            res.on('data', (chunk: Buffer) => {
              let c = chunk;
              if (skip > 0) {
                const cut = Math.min(skip, c.length);
                skip -= cut;
                c = c.subarray(cut);
              }
              if (c.length) {
                this.received += c.length;
                this.onOutput(c);
              }
            });
            res.on('end', () => resolve(res.complete));
            res.on('aborted', () => resolve(false));
            res.on('error', () => resolve(false));
          });
          req.on('error', () => resolve(false));
          req.setTimeout(follow ? 0 : 30_000, () => req.destroy());
          this.request = req;
          req.end();
        })
        .catch(() => resolve(false));
    });
  }

  /** Starts a follow stream unless one is open; called on every round while the pod runs, so drops heal. */
  ensure(): void {
    if (this.streaming || this.ended || Date.now() - this.lastAttempt < 1000) return;
    this.lastAttempt = Date.now();
    this.streaming = true;
    void this.fetch(true).then(() => (this.streaming = false));
  }

  /** After the pod finished: let the follow stream end, then read whatever it missed, once, without follow. */
  async drain(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.streaming && Date.now() < deadline) await sleep(100);
    if (this.streaming) this.request?.destroy();
    for (let i = 0; i < 5 && !this.ended; i++) {
      if (await this.fetch(false)) this.ended = true;
      else await sleep(500);
    }
    this.ended = true;
  }

  stop(): void {
    this.ended = true;
    this.request?.destroy();
  }
}

interface FollowContext {
  pendingTimeoutMs: number;
  pollMs: number;
  done(r: Partial<StepExecutionResult>): StepExecutionResult;
  fail(reason: NonNullable<StepExecutionResult['failure']>['reason'], message: string): StepExecutionResult;
}

async function follow(client: KubeClient, ns: string, name: string, x: StepExecution, api: <T>(what: string, fn: () => Promise<T>) => Promise<T>, say: (t: string) => void, ctx: FollowContext): Promise<StepExecutionResult> {
  let wake: () => void = () => {};
  const stopWatches = new AbortController();
  // Watches only wake the loop early; the loop re-reads the Job and pods itself, so a dropped watch or a
  // missed event costs at most one poll interval. Each watch reconnects after a drop, with backoff.
  const watch = (path: string, query: Record<string, string>): void => {
    let backoff = 500;
    const loop = async (): Promise<void> => {
      while (!stopWatches.signal.aborted) {
        const ended = new Promise<void>((resolve) => {
          new client.k8s.Watch(client.kc)
            .watch(path, { ...query, allowWatchBookmarks: 'true', timeoutSeconds: '300' }, () => {
              backoff = 500;
              wake();
            }, () => resolve())
            .then((ctl) => stopWatches.signal.addEventListener('abort', () => ctl.abort(), { once: true }))
            .catch(() => resolve());
        });
        await ended;
        if (stopWatches.signal.aborted) return;
        wake(); // Something may have happened while the watch was down.
        await sleep(backoff, stopWatches.signal);
        backoff = Math.min(backoff * 2, 10_000);
      }
    };
    void loop();
  };
  watch(`/apis/batch/v1/namespaces/${ns}/jobs`, { fieldSelector: `metadata.name=${name}` });
  watch(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `job-name=${name}` });

  const onAbort = (): void => wake();
  x.signal.addEventListener('abort', onAbort, { once: true });
  let follower: LogFollower | undefined;
  const seenEvents = new Set<string>();
  let pendingSince: number | undefined;
  try {
    for (;;) {
      if (x.signal.aborted) {
        follower?.stop();
        await cancelJob(client, ns, name, api, say);
        return ctx.done({ cancelled: true });
      }
      let job: Json;
      try {
        job = (await api('Reading the Job', () => client.batch.readNamespacedJob({ name, namespace: ns }))) as Json;
      } catch (e) {
        if (statusOf(e) === 404) return ctx.fail('error', `Job ${ns}/${name} was deleted outside mlpipeline before it finished.`);
        throw e;
      }
      const podList = (await api('Listing the pods', () => client.core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${name}` }))) as Json;
      const pods: PodLike[] = (podList.items ?? []).sort((a: Json, b: Json) => String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)));
      const pod = pods[pods.length - 1];

      if (pod && (pod.status?.phase === 'Running' || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed')) {
        if (!follower || follower.pod !== pod.metadata!.name) {
          follower?.stop();
          follower = new LogFollower(client, ns, pod.metadata!.name!, (b) => x.onOutput(b, 'stdout'));
        }
        if (pod.status.phase === 'Running') follower.ensure();
      }

      const failure = jobFailure(job as JobLike, pods);
      const succeeded = (job.status?.succeeded ?? 0) > 0;
      if (succeeded || failure) {
        await follower?.drain();
        if (succeeded) return ctx.done({ exitCode: 0 });
        if (failure!.reason === 'timeout') return ctx.done({ timedOut: true, exitCode: failure!.exitCode ?? null, failure: { reason: 'timeout', message: `Step \`${x.step.name}\` timed out (${failure!.message}); Kubernetes stopped Job ${ns}/${name}. Raise \`timeout\`, or make the step faster.` } });
        const detail = failure!.reason === 'failure' && failure!.exitCode !== undefined ? `failed with exit code ${failure!.exitCode}` : failure!.message;
        return ctx.done({ exitCode: failure!.exitCode ?? null, failure: { reason: failure!.reason, message: `Step \`${x.step.name}\` ${detail} in Job ${ns}/${name}. See its log above or with \`kubectl -n ${ns} logs job/${name}\`.` } });
      }

      // Still running: Events and waiting containers say why a pod does not start.
      if (pod && pod.status?.phase === 'Pending') {
        pendingSince ??= Date.now();
        const events = (await api('Reading Events', () => client.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.uid=${pod.metadata!.uid}` }))) as Json;
        const problem = podProblem(pod, events.items ?? []);
        if (problem && !seenEvents.has(problem.message)) {
          seenEvents.add(problem.message);
          say(`Pod ${pod.metadata!.name} is not running yet: ${problem.message}`);
        }
        if (problem && (problem.fatal || Date.now() - pendingSince > ctx.pendingTimeoutMs)) {
          follower?.stop();
          await deleteJob(client, ns, name, api).catch(() => {});
          const hint = problem.reason === 'unschedulable' ? ' Lower `resources` (GPU count, type, cpu, memory), fix `nodeSelector`/`tolerations` of the target, or add nodes.' : '';
          return ctx.fail(problem.reason, `Step \`${x.step.name}\` could not start on Kubernetes: ${problem.message.replace(/\.+$/, '')}.${hint} (Job ${ns}/${name} was deleted.)`);
        }
      } else pendingSince = undefined;

      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ctx.pollMs);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } finally {
    stopWatches.abort();
    follower?.stop();
    x.signal.removeEventListener('abort', onAbort);
  }
}
