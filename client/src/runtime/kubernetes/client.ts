/**
 * The Kubernetes client: @kubernetes/client-node, loaded at first use (it is large; the extension's
 * activation must not pay for it). Adds what every caller needs: a kubeconfig path + context, retries of
 * transient API failures (5xx, 429 with Retry-After, dropped connections) and errors in words.
 */
import type * as K8s from '@kubernetes/client-node';
import { sleep } from '../sleep';

export interface KubeTarget {
  /** kubeconfig file; default: $KUBECONFIG, then ~/.kube/config (client-node's rules). */
  kubeconfig?: string;
  /** kubeconfig context; default: the file's current context. */
  context?: string;
}

export interface KubeClient {
  k8s: typeof K8s;
  kc: K8s.KubeConfig;
  core: K8s.CoreV1Api;
  batch: K8s.BatchV1Api;
  apps: K8s.AppsV1Api;
  objects: K8s.KubernetesObjectApi;
  contextName: string;
  server: string;
}

let lib: Promise<typeof K8s> | undefined;
export function loadLibrary(): Promise<typeof K8s> {
  lib ??= import('@kubernetes/client-node');
  return lib;
}

export class KubeError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'KubeError';
  }
}

export async function connect(target: KubeTarget): Promise<KubeClient> {
  const k8s = await loadLibrary();
  const kc = new k8s.KubeConfig();
  try {
    if (target.kubeconfig) kc.loadFromFile(target.kubeconfig);
    else kc.loadFromDefault();
  } catch (e) {
    throw new KubeError(`Could not read the kubeconfig ${target.kubeconfig ?? process.env.KUBECONFIG ?? '~/.kube/config'}: ${(e as Error).message}. Check the file, or set KUBECONFIG.`);
  }
  if (target.context) {
    if (!kc.getContexts().some((c) => c.name === target.context)) {
      throw new KubeError(`The kubeconfig has no context \`${target.context}\` (it has: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'}). Fix \`context\` of the compute target, or add the context (kubectl config get-contexts).`);
    }
    kc.setCurrentContext(target.context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeError('The kubeconfig has no current context or cluster. Set `context` on the compute target, or run `kubectl config use-context NAME`.');
  return {
    k8s,
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    objects: k8s.KubernetesObjectApi.makeApiClient(kc),
    contextName: kc.getCurrentContext(),
    server: cluster.server,
  };
}

/** The HTTP status of a client-node error, or undefined for network errors. */
export function statusOf(e: unknown): number | undefined {
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'number') return code;
  const sc = (e as { statusCode?: unknown })?.statusCode;
  return typeof sc === 'number' ? sc : undefined;
}

/** The apiserver's own message from a Status body, without headers or request details. */
export function messageOf(e: unknown): string {
  const body = (e as { body?: unknown })?.body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = undefined;
    }
  }
  const msg = (parsed as { message?: unknown } | undefined)?.message;
  if (typeof msg === 'string') return msg;
  const status = statusOf(e);
  if (status !== undefined) return `HTTP ${status}`;
  const err = e as NodeJS.ErrnoException;
  return err?.code ? `${err.code} ${err.message ?? ''}`.trim() : (err?.message ?? String(e));
}

function retryAfterMs(e: unknown): number | undefined {
  const headers = (e as { headers?: Record<string, string> })?.headers;
  const v = headers?.['retry-after'] ?? headers?.['Retry-After'];
  if (v === undefined) return undefined;
  const s = Number(v);
  if (Number.isFinite(s)) return Math.min(Math.max(s, 0), 60) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.min(Math.max(at - Date.now(), 0), 60_000) : undefined;
}

/** 5xx (except 501), 429 and network errors are worth another try; 4xx are the caller's to handle. */
export function isTransient(e: unknown): boolean {
  const s = statusOf(e);
  if (s === undefined) return !(e instanceof KubeError);
  return s === 429 || (s >= 500 && s !== 501);
}

export interface RetryOptions {
  /** Total time to keep trying. */
  deadlineMs?: number;
  signal?: AbortSignal;
  /** Told about each retry (for the step log). */
  onRetry?(what: string, error: string, waitMs: number): void;
  /** One try may take this long (default 15 s): a response cut after its headers can leave a request hanging. */
  requestTimeoutMs?: number;
}

class RequestTimeout extends Error {
  code = 'ETIMEDOUT';
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new RequestTimeout(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

/** Runs `fn` until it succeeds, fails permanently or the deadline passes; honours Retry-After. */
export async function withRetries<T>(what: string, fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.deadlineMs ?? 60_000);
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await withTimeout(fn(), opts.requestTimeoutMs ?? 15_000, what);
    } catch (e) {
      if (!isTransient(e) || opts.signal?.aborted) throw e;
      const wait = retryAfterMs(e) ?? delay;
      if (Date.now() + wait > deadline) throw new KubeError(`${what} kept failing for ${Math.round((opts.deadlineMs ?? 60_000) / 1000)} s: ${messageOf(e)}. Check the cluster (kubectl get --raw /readyz) and try again.`, statusOf(e));
      opts.onRetry?.(what, messageOf(e), wait);
      await sleep(wait, opts.signal);
      delay = Math.min(delay * 2, 5000);
    }
  }
}
