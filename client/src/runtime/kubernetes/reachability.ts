import { connect, type KubeTarget } from './client';

/** What the Compute Targets view shows for a cluster: reached (with its version) or why not. */
export type Reachability = { ok: true; server: string; version: string; context: string } | { ok: false; reason: string };

/**
 * One GET /version against the target's cluster, bounded by `timeoutMs`. Never throws: a bad kubeconfig,
 * a missing context, TLS or auth errors and timeouts all come back as a reason in words.
 */
export async function checkReachability(target: KubeTarget, timeoutMs = 5000): Promise<Reachability> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const client = await connect(target);
    const version = client.kc.makeApiClient(client.k8s.VersionApi).getCode();
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs)));
    const v = await Promise.race([version, timeout]);
    return { ok: true, server: client.server, version: v.gitVersion, context: client.contextName };
  } catch (e) {
    const err = e as { message?: string; code?: number; body?: unknown };
    const status = typeof err.code === 'number' ? ` (HTTP ${err.code})` : '';
    return { ok: false, reason: `${(err.message ?? String(e)).split('\n')[0].slice(0, 300)}${status}` };
  } finally {
    clearTimeout(timer);
  }
}
