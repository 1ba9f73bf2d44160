/**
 * Starts a real S3 API for tests: one Ceph monitor, one memstore OSD and one RADOS Gateway (Debian's Ceph
 * 16), on free 127.0.0.1 ports under a temporary data folder, with a user whose keys the test knows.
 * Real SigV4, real multipart, real ETags. Install the packages with `bash test/infra/install-ceph-rgw.sh`.
 *
 *   const rgw = await startCephRgw();
 *   ... S3 client at rgw.endpoint with rgw.accessKeyId / rgw.secretAccessKey, region rgw.region ...
 *   await rgw.stop();
 *
 * Daemons are stopped by PID (SIGTERM, then SIGKILL after 2 s); the data folder is removed unless
 * MLP_KEEP_CEPH=1 (its log/ folder is where to look when a start fails).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net';

export interface CephRgw {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  port: number;
  accessKeyId: string;
  secretAccessKey: string;
  /** Any region signs; RGW's default zonegroup accepts `us-east-1`. */
  region: string;
  dataDir: string;
  /** Milliseconds from the call to an answering gateway. */
  startMs: number;
  /** Runs `radosgw-admin` against this cluster (JSON output parsed when possible). */
  admin(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export interface CephRgwOptions {
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Overall start deadline; default 90 s (2 shared cores can be slow). */
  timeoutMs?: number;
}

const BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool'];

function which(bin: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, bin)));
}

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, deadline: number, check: () => Promise<boolean>, logHint: string): Promise<void> {
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`Ceph test cluster: ${what} did not happen in time. Logs: ${logHint}`);
    await sleep(250);
  }
}

export async function startCephRgw(opts: CephRgwOptions = {}): Promise<CephRgw> {
  const t0 = performance.now();
  const missing = BINARIES.filter((b) => !which(b));
  if (missing.length) throw new Error(`Ceph is not installed (missing ${missing.join(', ')}). Run: bash test/infra/install-ceph-rgw.sh`);
  const deadline = Date.now() + (opts.timeoutMs ?? 90_000);
  const accessKeyId = opts.accessKeyId ?? 'MLPTESTACCESSKEY0001';
  const secretAccessKey = opts.secretAccessKey ?? 'mlp-test-secret-key-0123456789abcdefghij';
  const dir = mkdtempSync(join(tmpdir(), 'mlp-ceph-'));
  for (const sub of ['run', 'log', 'mon', 'osd', 'rgw']) mkdirSync(join(dir, sub));
  const [monPort, rgwPort] = [await freePort(), await freePort()];
  const fsid = randomUUID();
  const conf = join(dir, 'ceph.conf');
  // Auth between daemons is off (one machine, loopback only); S3 requests are still SigV4-signed and checked.
  writeFileSync(
    conf,
    `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms bind ipv6 = false
public network = 127.0.0.1/32
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd objectstore = memstore
memstore device bytes = 2147483648
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
run dir = ${dir}/run
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
admin socket = ${dir}/run/$name.asok
mon data = ${dir}/mon/$cluster-$id
osd data = ${dir}/osd/$cluster-$id
keyring = ${dir}/keyring
[client.rgw.r]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
`,
  );
  const c = ['-c', conf];
  const daemons: ChildProcess[] = [];
  const start = (name: string, cmd: string, args: string[]): void => {
    const out = openSync(join(dir, 'log', `${name}.out`), 'a');
    const child = spawn(cmd, [...c, ...args, '-f'], { stdio: ['ignore', out, out] });
    closeSync(out);
    child.on('error', () => {});
    daemons.push(child);
  };
  const killAll = (): void => {
    for (const d of daemons) if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
  };
  process.once('exit', killAll); // A crashed test must not leave daemons behind.

  const stop = async (): Promise<void> => {
    for (const d of [...daemons].reverse()) {
      if (d.exitCode !== null || d.signalCode !== null) continue;
      const exited = new Promise<void>((r) => d.once('exit', () => r()));
      d.kill('SIGTERM');
      await Promise.race([exited, sleep(2000)]);
      if (d.exitCode === null && d.signalCode === null) {
        d.kill('SIGKILL');
        await exited;
      }
    }
    process.removeListener('exit', killAll);
    if (process.env.MLP_KEEP_CEPH !== '1') rmSync(dir, { recursive: true, force: true });
  };

  try {
    const monmap = join(dir, 'monmap');
    await run('monmaptool', ['--create', '--add', 'a', `127.0.0.1:${monPort}`, '--fsid', fsid, monmap]);
    await run('ceph-mon', [...c, '--id', 'a', '--mkfs', '--monmap', monmap]);
    start('mon', 'ceph-mon', ['--id', 'a']);
    await until('the monitor answering', deadline, async () => (await run('ceph', [...c, '--connect-timeout', '3', 'health'], 5000)).includes('HEALTH'), `${dir}/log`);

    const osdId = (await run('ceph', [...c, 'osd', 'create'])).trim();
    await run('ceph', [...c, 'osd', 'crush', 'add', `osd.${osdId}`, '1', 'root=default']);
    mkdirSync(join(dir, 'osd', `ceph-${osdId}`));
    await run('ceph-osd', [...c, '--id', osdId, '--mkfs']);
    start('osd', 'ceph-osd', ['--id', osdId]);
    await until('the OSD coming up', deadline, async () => /\b1 up\b/.test(await run('ceph', [...c, 'osd', 'stat'], 5000)), `${dir}/log`);

    await run('radosgw-admin', [...c, 'user', 'create', '--uid', 'tester', '--display-name', 'mlpipeline tests', '--access-key', accessKeyId, '--secret-key', secretAccessKey], 60_000);
    start('rgw', 'radosgw', ['-n', 'client.rgw.r']);
    await until(
      'the gateway answering HTTP',
      deadline,
      async () => {
        const res = await fetch(`http://127.0.0.1:${rgwPort}/`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return res.status === 200;
      },
      `${dir}/log`,
    );
  } catch (e) {
    const tail = ['mon', 'osd', 'rgw']
      .map((n) => join(dir, 'log', `${n}.out`))
      .filter((f) => existsSync(f))
      .map((f) => `--- ${f}\n${readFileSync(f, 'utf8').split('\n').slice(-15).join('\n')}`)
      .join('\n');
    await stop().catch(() => {});
    throw new Error(`${(e as Error).message}\n${tail}`);
  }

  return {
    endpoint: `http://127.0.0.1:${rgwPort}`,
    port: rgwPort,
    accessKeyId,
    secretAccessKey,
    region: 'us-east-1',
    dataDir: dir,
    startMs: Math.round(performance.now() - t0),
    admin: (...args: string[]) => run('radosgw-admin', [...c, ...args], 60_000),
    stop,
  };
}
