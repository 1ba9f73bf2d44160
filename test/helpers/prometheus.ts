/**
 * Starts a real Prometheus (Debian's 2.42) on a free 127.0.0.1 port for tests, scraping every second.
 * Targets come from file_sd files (the glob `fileSdGlob`), which is how a local deployment's supervisor
 * publishes its revisions (`.mlpipeline/deployments/_prometheus/<name>.json`).
 * Install with `bash test/infra/install-prometheus.sh`.
 *
 *   const prom = await startPrometheus({ fileSdGlob: join(ws, '.mlpipeline/deployments/_prometheus/*.json') });
 *   ... prom.url ...
 *   await prom.stop();
 *
 * Stopped by PID (SIGTERM, SIGKILL after 3 s); the data folder is removed unless MLP_KEEP_PROMETHEUS=1.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net';

export interface Prometheus {
  url: string;
  port: number;
  dataDir: string;
  startMs: number;
  /** Resolves once a scrape of `labels` has succeeded (target `up == 1`). */
  waitForTarget(labels: Record<string, string>, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function prometheusBinary(): string | undefined {
  return ['/usr/bin/prometheus', ...(process.env.PATH ?? '').split(':').map((d) => join(d, 'prometheus'))].find((p) => existsSync(p));
}

export async function startPrometheus(opts: { fileSdGlob: string; scrapeIntervalS?: number }): Promise<Prometheus> {
  const t0 = performance.now();
  const bin = prometheusBinary();
  if (!bin) throw new Error('Prometheus is not installed. Run: bash test/infra/install-prometheus.sh');
  const dataDir = mkdtempSync(join(tmpdir(), 'mlp-prom-'));
  const port = await freePort();
  const interval = `${opts.scrapeIntervalS ?? 1}s`;
  writeFileSync(
    join(dataDir, 'prometheus.yml'),
    [
      'global:',
      `  scrape_interval: ${interval}`,
      `  evaluation_interval: ${interval}`,
      'scrape_configs:',
      '  - job_name: mlpipeline',
      `    scrape_timeout: ${interval}`,
      '    file_sd_configs:',
      `      - files: [${JSON.stringify(opts.fileSdGlob)}]`,
      '        refresh_interval: 1s',
      '',
    ].join('\n'),
  );
  const logPath = join(dataDir, 'prometheus.log');
  const log = openSync(logPath, 'a');
  const child = spawn(bin, [`--config.file=${join(dataDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dataDir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', log, log] });
  closeSync(log);
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    if (process.env.MLP_KEEP_PROMETHEUS !== '1') rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      const text = existsSync(logPath) ? readFileSync(logPath, 'utf8').slice(-2000) : '';
      await stop();
      throw new Error(`Prometheus did not start: ${text}`);
    }
    await sleep(100);
  }
  return {
    url,
    port,
    dataDir,
    startMs: performance.now() - t0,
    async waitForTarget(labels, timeoutMs = 20_000) {
      const sel = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
      const end = Date.now() + timeoutMs;
      for (;;) {
        const body = (await fetch(`${url}/api/v1/query?query=${encodeURIComponent(`up{${sel}}`)}`).then((r) => r.json(), () => undefined)) as { data?: { result?: { value: [number, string] }[] } } | undefined;
        if (body?.data?.result?.some((r) => r.value[1] === '1')) return;
        if (Date.now() > end) throw new Error(`Prometheus never scraped {${sel}} successfully`);
        await sleep(200);
      }
    },
    stop,
  };
}
