/**
 * A small HTTP(S) reverse proxy with programmable faults, put in front of a real server (Ceph RGW, a TLS
 * kube-apiserver) so tests can see how clients behave when the network or the server misbehaves.
 *
 *   const proxy = await startFaultProxy({ upstream: 'http://127.0.0.1:7480' });
 *   proxy.inject({ method: 'PUT', path: /partNumber=2/, times: 1, action: { type: 'reset', afterRequestBytes: 1 << 20 } });
 *   ... point the client at proxy.url ...
 *   await proxy.stop();
 *
 * Requests pass through unchanged (the Host header included, so SigV4 signatures made for the proxy's
 * address still verify upstream). Rules are tried in the order injected; the first one that matches and
 * still has uses left decides what happens to the request. Every request is recorded in `requests`.
 *
 * Actions:
 * - respond: answer with a status, headers and body without contacting the upstream (500, 409, 429 +
 *   Retry-After, 503 SlowDown, ...).
 * - reset: TCP reset of the client connection, before any response; with `afterRequestBytes`, only after
 *   that many request-body bytes were received and forwarded (a connection lost mid-upload).
 * - cut: forward the request, send the response headers and then destroy the connection after
 *   `afterBytes` body bytes or `afterMs` milliseconds (a dropped download or watch stream).
 * - delay: wait `ms` before forwarding (slow server).
 * - corrupt: forward, flipping one byte of the request body (`target: 'request'`, what a server's
 *   Content-MD5 check must catch) or of the response body (`'response'`, what a client's download
 *   verification must catch), at `atByte` (default 0).
 */
import { once } from 'node:events';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';

export type FaultAction =
  | { type: 'respond'; status: number; headers?: Record<string, string>; body?: string }
  | { type: 'reset'; afterRequestBytes?: number }
  | { type: 'cut'; afterBytes?: number; afterMs?: number }
  | { type: 'delay'; ms: number }
  | { type: 'corrupt'; target: 'request' | 'response'; atByte?: number };

export interface FaultRule {
  /** HTTP method, case-insensitive; any when absent. */
  method?: string;
  /** A string matches as a prefix of the path with its query; a RegExp is tested against the same. */
  path?: string | RegExp;
  /** Extra condition on the request (headers, say). */
  when?: (req: http.IncomingMessage) => boolean;
  /** Let this many matching requests through untouched first. Default 0. */
  skip?: number;
  /** How many matching requests the fault applies to. Default: every one. */
  times?: number;
  action: FaultAction;
}

export interface InjectedRule {
  rule: FaultRule;
  /** Matching requests seen so far (skipped ones included). */
  seen: number;
  /** Times the fault was applied. */
  applied: number;
}

export interface ProxiedRequest {
  method: string;
  /** Path with query string. */
  path: string;
  /** The action type applied, or undefined when forwarded unchanged. */
  fault?: FaultAction['type'];
  /** Status the client got (undefined when the connection was reset or the upstream was unreachable). */
  status?: number;
  /** Request-body bytes received from the client. */
  requestBytes: number;
}

export interface FaultProxyOptions {
  /** `http://host:port` or `https://host:port`. */
  upstream: string;
  /** CA (PEM) that signs the upstream's certificate, for an https upstream. */
  upstreamCa?: string | Buffer;
  /** Client certificate and key to present to the upstream (mutual TLS). */
  upstreamClientCert?: { cert: string | Buffer; key: string | Buffer };
  /** Serve TLS with this certificate and key instead of plain HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Listen port on 127.0.0.1; default: a free one. */
  port?: number;
}

export interface FaultProxy {
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`. */
  url: string;
  port: number;
  inject(rule: FaultRule): InjectedRule;
  /** Removes every rule (recorded requests stay). */
  clear(): void;
  requests: ProxiedRequest[];
  stop(): Promise<void>;
}

/** A TCP reset where the socket is plain TCP; behind TLS (a TLSWrap handle, which resetAndDestroy refuses) a destroy. */
function resetSocket(socket: net.Socket | null | undefined): void {
  if (!socket) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(opts.upstream);
  const upstreamTls = upstream.protocol === 'https:';
  const rules: InjectedRule[] = [];
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<net.Socket>();
  const agentOptions = { keepAlive: true, ...(opts.upstreamCa ? { ca: opts.upstreamCa } : {}), ...(opts.upstreamClientCert ?? {}) };
  const agent = upstreamTls ? new https.Agent(agentOptions) : new http.Agent({ keepAlive: true });

  const pick = (req: http.IncomingMessage): InjectedRule | undefined => {
    for (const r of rules) {
      const { rule } = r;
      if (rule.method && rule.method.toUpperCase() !== req.method) continue;
      const p = req.url ?? '/';
      if (typeof rule.path === 'string' && !p.startsWith(rule.path)) continue;
      if (rule.path instanceof RegExp && !rule.path.test(p)) continue;
      if (rule.when && !rule.when(req)) continue;
      if (rule.times !== undefined && r.applied >= rule.times) continue;
      r.seen++;
      if (r.seen <= (rule.skip ?? 0)) continue;
      r.applied++;
      return r;
    }
    return undefined;
  };

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, entry: ProxiedRequest, action?: FaultAction): void => {
    const out = (upstreamTls ? https : http).request({
      protocol: upstream.protocol,
      hostname: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent,
    });
    let resetAt = action?.type === 'reset' ? (action.afterRequestBytes ?? 0) : Infinity;
    const flip = (chunk: Buffer, startOffset: number, at: number): Buffer => {
      if (at < startOffset || at >= startOffset + chunk.length) return chunk;
      const copy = Buffer.from(chunk);
      copy[at - startOffset] ^= 0xff;
      return copy;
    };
    req.on('data', (raw: Buffer) => {
      const chunk = action?.type === 'corrupt' && action.target === 'request' ? flip(raw, entry.requestBytes, action.atByte ?? 0) : raw;
      entry.requestBytes += chunk.length;
      if (entry.requestBytes >= resetAt) {
        resetAt = Infinity;
        // Forward what arrived before the cut, so the upstream sees a truncated upload too.
        const keep = chunk.length - (entry.requestBytes - (action as { afterRequestBytes?: number }).afterRequestBytes!);
        if (keep > 0) out.write(chunk.subarray(0, keep));
        out.destroy();
        resetSocket(req.socket);
        return;
      }
      if (!out.write(chunk)) {
        req.pause();
        out.once('drain', () => req.resume());
      }
    });
    req.on('end', () => out.end());
    req.on('error', () => out.destroy());
    out.on('error', (e) => {
      if (!res.headersSent && !req.socket.destroyed) {
        entry.status = 502;
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`fault-proxy: upstream error: ${e.message}\n`);
      } else res.destroy();
    });
    out.on('response', (up) => {
      entry.status = up.statusCode;
      res.writeHead(up.statusCode ?? 502, up.statusMessage, up.rawHeaders as unknown as http.OutgoingHttpHeaders);
      if (action?.type === 'corrupt' && action.target === 'response') {
        let seen = 0;
        up.on('data', (c: Buffer) => {
          res.write(flip(c, seen, action.atByte ?? 0));
          seen += c.length;
        });
        up.on('end', () => res.end());
        return;
      }
      if (action?.type !== 'cut') {
        up.pipe(res);
        return;
      }
      let sent = 0;
      const cut = (): void => {
        up.destroy();
        resetSocket(res.socket);
      };
      if (action.afterMs !== undefined) setTimeout(cut, action.afterMs).unref();
      if (action.afterBytes !== undefined && action.afterBytes <= 0) {
        res.flushHeaders();
        cut();
        return;
      }
      up.on('data', (chunk: Buffer) => {
        if (action.afterBytes !== undefined && sent + chunk.length >= action.afterBytes) {
          res.write(chunk.subarray(0, action.afterBytes - sent), () => cut());
          up.pause();
          return;
        }
        sent += chunk.length;
        res.write(chunk);
      });
      up.on('end', () => res.end());
    });
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const entry: ProxiedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', requestBytes: 0 };
    requests.push(entry);
    const hit = pick(req);
    const action = hit?.rule.action;
    if (action) entry.fault = action.type;
    switch (action?.type) {
      case 'respond': {
        // Drain the body so the client is not stuck writing an upload nobody reads.
        req.on('data', (c: Buffer) => (entry.requestBytes += c.length));
        req.on('end', () => {
          entry.status = action.status;
          res.writeHead(action.status, { 'content-type': 'application/xml', ...(action.headers ?? {}) }).end(action.body ?? '');
        });
        return;
      }
      case 'reset':
        if (!action.afterRequestBytes) {
          resetSocket(req.socket);
          return;
        }
        return forward(req, res, entry, action);
      case 'delay':
        setTimeout(() => forward(req, res, entry), action.ms).unref();
        return;
      default:
        return forward(req, res, entry, action);
    }
  };

  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : http.createServer(handler);
  server.on(opts.tls ? 'secureConnection' : 'connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_e, s) => s.destroy());
  // Upgrades (WebSocket: kubectl exec, attach) pass through as raw byte streams, without faults.
  server.on('upgrade', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', requestBytes: 0 });
    const port = Number(upstream.port || (upstreamTls ? 443 : 80));
    const up = upstreamTls
      ? tls.connect({ host: upstream.hostname, port, ...agentOptions, ...(net.isIP(upstream.hostname) ? {} : { servername: upstream.hostname }) })
      : net.connect({ host: upstream.hostname, port });
    up.once(upstreamTls ? 'secureConnect' : 'connect', () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) up.write(head);
      up.pipe(client).pipe(up);
    });
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  server.listen(opts.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;

  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    requests,
    inject(rule) {
      const r: InjectedRule = { rule, seen: 0, applied: 0 };
      rules.push(r);
      return r;
    },
    clear() {
      rules.length = 0;
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
}
