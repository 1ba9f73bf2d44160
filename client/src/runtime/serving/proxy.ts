import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Backend {
  id: string;
  port: number;
  /** Relative share of requests; 0 receives none. */
  weight: number;
}

/**
 * A weighted HTTP proxy on loopback for local canaries: each request goes to one backend, chosen at
 * random by weight, and is streamed both ways. A backend that cannot be reached answers 502 with a
 * JSON body that says which revision failed; the proxy itself never stops on a bad request.
 */
export class WeightedProxy {
  private server?: http.Server;
  private backends: Backend[] = [];
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  /** Requests routed per backend id, for tests and status. */
  readonly routed = new Map<string, number>();

  constructor(private readonly random: () => number = Math.random) {}

  setBackends(backends: Backend[]): void {
    this.backends = backends.filter((b) => b.weight > 0);
  }

  pick(): Backend | undefined {
    const total = this.backends.reduce((s, b) => s + b.weight, 0);
    if (total <= 0) return undefined;
    let r = this.random() * total;
    for (const b of this.backends) {
      r -= b.weight;
      if (r < 0) return b;
    }
    return this.backends[this.backends.length - 1];
  }

  listen(port: number, host = '127.0.0.1'): Promise<number> {
    const server = http.createServer((req, res) => this.forward(req, res));
    server.keepAliveTimeout = 5000;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const b = this.pick();
    const fail = (status: number, error: string): void => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ error }) + '\n');
    };
    if (!b) return fail(503, 'no revision is taking traffic');
    this.routed.set(b.id, (this.routed.get(b.id) ?? 0) + 1);
    const headers = { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress ?? '', 'x-mlpipeline-revision': b.id };
    const up = http.request({ host: '127.0.0.1', port: b.port, method: req.method, path: req.url, headers, agent: this.agent }, (ur) => {
      const h = { ...ur.headers, 'x-mlpipeline-revision': b.id };
      res.writeHead(ur.statusCode ?? 502, h);
      ur.pipe(res);
      ur.on('error', () => res.destroy());
    });
    up.on('error', (e) => fail(502, `revision ${b.id} did not answer: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    req.on('error', () => up.destroy());
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  }

  close(): Promise<void> {
    this.agent.destroy();
    return new Promise((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
