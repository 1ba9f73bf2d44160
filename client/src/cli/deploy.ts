/**
 * `mlpipeline deploy | undeploy | rollback | deployments | load | monitor` and the hidden
 * `__supervise` entry point of the detached local supervisor.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { deploymentNames, planDeployment, type ResolvedDeployment } from '../../../server/src/core/deploy-plan';
import { parseDuration, planRun } from '../../../server/src/core/plan';
import type { DeploymentRecord } from '../runtime/records';
import type { DeployEvent, DeployTarget } from '../runtime/serving/deploy-target';
import { DeployError } from '../runtime/serving/deploy-target';
import { DEPLOYMENT_NAME, readState } from '../runtime/serving/local-state';
import { LocalTarget } from '../runtime/serving/local-target';
import { runLoad, LOAD_LIMITS } from '../runtime/serving/load';
import { evaluateDrift, readInputLogs, readReference, recordAlerts, SloTracker, type MonitorResult } from '../runtime/serving/monitor';
import { appendDeploymentRecord, nextRevision, readDeploymentRecords } from '../runtime/serving/records-store';
import { runRollout } from '../runtime/serving/rollout';
import { resolveSource } from '../runtime/serving/source-run';
import { superviseMain } from '../runtime/serving/supervisor';
import { one, parseArgs, UsageError } from './args';
import { paint, safe, table } from './output';
import { parseSets } from './run';
import { loadSpec, locateSpec } from './spec-file';

export const DEPLOY_USAGE = `  deploy NAME [spec]    Serve a deployment's model from the run that produced it (gate checked first);
                        the server keeps running after this command exits
    --run RUN                  Deploy the model of this run (default: the run whose model is on disk)
    --target NAME              Compute target (default: the deployment's compute)
    --port N                   Public port (default: runtime.port)
    --set params.NAME=VALUE    Param values for the command (repeatable)
    --hold-scale F             Multiply canary holds by F (e.g. 0.01 to try a rollout quickly)
    --follow                   Stream the server's output after it is ready (Ctrl+C stops following only)
  undeploy NAME         Stop a deployment and its servers (from any terminal)
  rollback NAME         Stop a canary, or go back to the previous revision (--reason TEXT)
  deployments [--json]  Deployments on this machine: state, URL, revisions, model and run
  load NAME             Send requests to a deployment and report achieved rps and latency
    --rps N --duration D       Rate and length (default 20 rps for 10s; loopback only)
    --data FILE                CSV or JSONL of instances (default: the drift reference)
    --fields A,B,...           Send only these columns (default: the drift monitor's features)
  monitor NAME          Evaluate a deployment's monitors (or one monitor) once; exit 1 on a breach
    --every D --count N        Evaluate on a schedule instead (Ctrl+C stops); drift on its own schedule
    --sample D                 Direct scrapes: measure over this long (default 5s)
`;

function checkName(name: string): void {
  if (!DEPLOYMENT_NAME.test(name)) throw new UsageError(`\`${safe(name.slice(0, 80))}\` is not a deployment name: lowercase letters, digits and -, like churn-api (\`mlpipeline deployments\` lists them).`);
}

function workspaceOf(specArg: string | undefined): string {
  return dirname(locateSpec(specArg));
}

/**
 * The target a deployment goes to: the local supervisor, or (loaded on first use) the Kubernetes target
 * for `type: kubernetes` compute targets.
 */
async function targetFor(spec: NonNullable<ReturnType<typeof loadSpec>>, workspace: string, d: ResolvedDeployment): Promise<DeployTarget> {
  if (d.targetType === 'local') return new LocalTarget({ workspace, targetName: d.target });
  const planned = planRun(spec.analysis);
  const k = planned.ok ? planned.plan.targets[d.target]?.kubernetes : undefined;
  if (!k) throw new UsageError(`Compute target \`${d.target}\` of deployment ${d.name} could not be resolved.`);
  const { KubernetesDeployTarget } = await import('../runtime/kubernetes/deploy');
  return new KubernetesDeployTarget({ targetName: d.target, target: k, kubeconfig: process.env.KUBECONFIG?.split(':')[0] || undefined });
}

/** For commands given only a deployment name: its spec's target when the spec can be read, else local. */
async function targetForName(specArg: string | undefined, name: string): Promise<{ workspace: string; target: DeployTarget }> {
  const workspace = workspaceOf(specArg);
  const spec = existsSync(locateSpec(specArg)) ? loadSpec(specArg) : undefined;
  const planned = spec ? planDeployment(spec.analysis, name) : undefined;
  if (spec && planned?.ok && planned.deployment.targetType !== 'local') return { workspace, target: await targetFor(spec, workspace, planned.deployment) };
  return { workspace, target: new LocalTarget({ workspace }) };
}

function printEvent(e: DeployEvent): void {
  const t = new Date().toISOString().slice(11, 19);
  switch (e.type) {
    case 'phase':
      process.stdout.write(`${paint('2', t)} ${e.phase === 'failed' ? paint('31', e.message) : e.message}\n`);
      break;
    case 'weights':
      break;
    case 'monitor':
      process.stdout.write(`${paint('2', t)}   monitors.${e.monitor}: ${e.ok ? paint('32', safe(e.summary)) : paint('31', safe(e.summary))}\n`);
      break;
    case 'rolled-back':
      process.stdout.write(`${paint('2', t)} ${paint('31', `rolled back ${e.revision}`)}: ${safe(e.reason)}\n`);
      break;
    case 'promoted':
      process.stdout.write(`${paint('2', t)} ${paint('32', `promoted ${e.revision}`)}: it now takes all traffic\n`);
      break;
    case 'restart':
      process.stdout.write(`${paint('2', t)} ${paint('33', `restart ${e.attempt} in ${e.delayMs} ms`)}: ${e.reason}\n`);
      break;
    case 'log':
      process.stdout.write(safe(e.text));
      break;
  }
}

export async function deployCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--run', '--target', '--port', '--set', '--hold-scale'], ['--follow']);
  if (args.positional.length < 1 || args.positional.length > 2) throw new UsageError('deploy takes a deployment name and optionally a spec: mlpipeline deploy churn-api [spec]');
  const [name, specArg] = args.positional;
  const spec = loadSpec(specArg);
  if (!spec) return 1;
  const workspace = dirname(spec.path);
  const planned = planDeployment(spec.analysis, name, { overrides: parseSets(args.values.get('--set') ?? []) });
  if (!planned.ok) {
    for (const e of planned.errors) process.stderr.write(`mlpipeline: ${e}\n`);
    return 1;
  }
  const d = planned.deployment;
  const targetName = one(args, '--target');
  if (targetName !== undefined) {
    const planned = planRun(spec.analysis);
    const t = planned.ok ? planned.plan.targets[targetName] : undefined;
    if (!t) throw new UsageError(`--target ${targetName}: there is no such compute target. Defined: ${planned.ok ? Object.keys(planned.plan.targets).join(', ') : 'none'}.`);
    d.target = targetName;
    d.targetType = t.type;
  }
  const portText = one(args, '--port');
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new UsageError(`--port takes a port number 1-65535, not \`${portText}\`.`);
  const holdText = one(args, '--hold-scale') ?? process.env.MLPIPELINE_HOLD_SCALE;
  const holdScale = holdText === undefined ? 1 : Number(holdText);
  if (!(holdScale >= 0)) throw new UsageError(`--hold-scale takes a number >= 0, not \`${holdText}\`.`);
  const target = await targetFor(spec, workspace, d);

  const source = await resolveSource(workspace, d, one(args, '--run'));
  const revision = nextRevision(workspace, name);
  const base: Omit<DeploymentRecord, 'outcome' | 'at'> = {
    schema: 1,
    deployment: name,
    revision,
    target: d.target,
    model: { path: d.model.kind === 's3' ? d.model.uri : d.model.path, hash: source.model?.hash, output: source.model?.output },
    sourceRunId: source.run?.id,
    gate: source.gate && d.gate ? { text: d.gate.text, pass: source.gate.pass, values: Object.fromEntries(source.gate.checks.filter((c) => c.actual !== undefined).map((c) => [`${c.clause.step}.${c.clause.metric}`, c.actual!])) } : undefined,
  };
  if (!source.ok) {
    process.stderr.write(`${paint('31', 'mlpipeline: deploy refused.')} ${source.error}\n`);
    if (source.gate) await appendDeploymentRecord(workspace, { ...base, outcome: 'refused', at: new Date().toISOString(), reason: source.gate.message });
    return 1;
  }
  // A cluster reads the model where the spec says (in its image or volume), not at this machine's path.
  const model = d.targetType === 'local' ? source.model : { ...source.model, path: relative(workspace, source.model.path) };
  process.stdout.write(`${paint('1', `deploy ${name}`)} ${revision}: ${relative(workspace, model.path)}@${model.hash.slice(0, 12)}${source.run ? ` from run ${source.run.id}` : ''}\n`);
  if (source.gate) for (const c of source.gate.checks) process.stdout.write(`  gate ${paint('32', '✔')} ${c.clause.text} (${c.clause.step}.${c.clause.metric} = ${Number(c.actual!.toPrecision(6))})\n`);

  // A canary needs a stable revision to compare with: the local supervisor's, or the cluster's Deployment.
  let current: Awaited<ReturnType<DeployTarget['status']>>;
  try {
    current = await target.status(name);
  } catch (e) {
    process.stderr.write(`${paint('31', 'mlpipeline: deploy failed.')} Cannot read ${name} on ${d.target}: ${(e as Error).message}\n`);
    return 1;
  }
  const live = !!current && current.phase !== 'stopped' && current.phase !== 'failed' && current.revisions.length > 0;
  const canary = d.rollout.strategy === 'canary' && live;
  const secrets: Record<string, string> = {};
  for (const [envName, secret] of Object.entries(d.runtime.secretEnv)) {
    const v = process.env[secret];
    if (v === undefined) {
      process.stderr.write(`mlpipeline: deployment ${name} needs the secret ${secret}; set the environment variable ${secret}.\n`);
      return 1;
    }
    secrets[envName] = v;
  }
  const ac = new AbortController();
  let interrupted = 0;
  const onSig = (): void => {
    interrupted++;
    if (interrupted > 1) process.exit(130);
    process.stderr.write(canary ? '\nCtrl+C: rolling the canary back (press again to leave it as it is)…\n' : '\nCtrl+C: stopping what was started…\n');
    ac.abort();
  };
  process.on('SIGINT', onSig);
  const lineage = source.model.output ? [{ from: `output:${source.model.output}@${model.hash}`, to: `deployment:${name}/${revision}` }] : undefined;
  try {
    const result = await target.deploy({ deployment: d, model, sourceRunId: source.run?.id, revision, strategy: canary ? 'canary' : 'replace', workspace, port, secrets, signal: canary ? undefined : ac.signal, onEvent: printEvent });
    if (canary) {
      process.stdout.write(`Canary ${revision} is ready next to ${result.status.revisions[0]?.revision}; rolling out${holdScale !== 1 ? ` (holds × ${holdScale})` : ''}.\n`);
      const outcome = await runRollout({
        target,
        deployment: d,
        canary: revision,
        holdScale,
        signal: ac.signal,
        onEvent: printEvent,
        onResults: async (results) => void (await recordAlerts(workspace, name, results, d.alerts, d.monitors)),
      });
      await appendDeploymentRecord(workspace, { ...base, outcome: outcome.outcome, at: new Date().toISOString(), reason: outcome.outcome === 'rolled-back' ? outcome.reason : undefined, lineage });
      if (outcome.outcome === 'rolled-back') {
        process.stderr.write(`${paint('31', `Canary ${revision} was rolled back`)}: ${outcome.reason}\n`);
        return 1;
      }
    } else {
      await appendDeploymentRecord(workspace, { ...base, outcome: 'deployed', at: new Date().toISOString(), lineage });
    }
    const st = await target.status(name);
    process.stdout.write(`\n${paint('32', `${name} is serving`)}${st?.url ? ` at ${st.url}` : ''} (revision ${revision}, target ${d.target}). It keeps running after this command.\n`);
    if (d.targetType !== 'local') return 0;
    process.stdout.write(`  Try it:   mlpipeline load ${name} --rps 20 --duration 10s\n  Metrics:  ${st?.url}${d.runtime.metrics}\n  Logs:     ${relative(process.cwd(), join(workspace, '.mlpipeline', 'deployments', name, 'logs', `${revision}.log`))}\n  Stop it:  mlpipeline undeploy ${name}\n`);
    if (args.flags.has('--follow') && !ac.signal.aborted) await follow(join(workspace, '.mlpipeline', 'deployments', name, 'logs', `${revision}.log`), ac.signal);
    return 0;
  } catch (e) {
    if (!(e instanceof DeployError)) throw e;
    await appendDeploymentRecord(workspace, { ...base, outcome: 'failed', at: new Date().toISOString(), reason: e.message });
    process.stderr.write(`${paint('31', 'mlpipeline: deploy failed.')} ${e.message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSig);
  }
}

async function follow(path: string, signal: AbortSignal): Promise<void> {
  process.stdout.write(`Following ${path} (Ctrl+C stops following; the server keeps running)\n`);
  let offset = 0;
  while (!signal.aborted) {
    if (existsSync(path)) {
      const buf = readFileSync(path);
      if (buf.length > offset) {
        process.stdout.write(safe(buf.subarray(offset).toString('utf8')).replace(/\\x0a/g, '\n'));
        offset = buf.length;
      }
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

export async function undeployCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--spec'], []);
  if (args.positional.length !== 1) throw new UsageError('undeploy takes a deployment name: mlpipeline undeploy churn-api');
  const name = args.positional[0];
  checkName(name);
  const { workspace, target } = await targetForName(one(args, '--spec'), name);
  const before = await target.status(name);
  const stopped = await target.undeploy(name);
  if (!stopped) {
    process.stdout.write(`${name} is not deployed here (nothing to stop).\n`);
    return 0;
  }
  await appendDeploymentRecord(workspace, { schema: 1, deployment: name, revision: before?.revisions[0]?.revision ?? '-', target: before?.target ?? 'local', model: { path: before?.revisions[0]?.model.path ?? '' }, at: new Date().toISOString(), outcome: 'undeployed' });
  process.stdout.write(`${name} stopped.\n`);
  return 0;
}

export async function rollbackCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--spec', '--reason'], []);
  if (args.positional.length !== 1) throw new UsageError('rollback takes a deployment name: mlpipeline rollback churn-api');
  const name = args.positional[0];
  checkName(name);
  const { workspace, target } = await targetForName(one(args, '--spec'), name);
  const reason = one(args, '--reason') ?? 'rolled back by the user';
  try {
    const st = await target.rollback(name, reason);
    const rev = st.revisions[0];
    await appendDeploymentRecord(workspace, { schema: 1, deployment: name, revision: rev?.revision ?? '-', target: st.target, model: { path: rev?.model.path ?? '', hash: rev?.model.hash }, sourceRunId: rev?.sourceRunId, at: new Date().toISOString(), outcome: 'rolled-back', reason });
    process.stdout.write(`${name} rolled back: ${rev?.revision} (model @${rev?.model.hash.slice(0, 12)}) takes all traffic.\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof DeployError)) throw e;
    process.stderr.write(`mlpipeline: ${e.message}\n`);
    return 1;
  }
}

export async function deploymentsCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--spec'], ['--json', '--all']);
  const workspace = workspaceOf(one(args, '--spec'));
  const target = new LocalTarget({ workspace });
  const all = await target.list();
  const shown = args.flags.has('--all') ? all : all.filter((s) => s.phase !== 'stopped');
  if (args.flags.has('--json')) {
    process.stdout.write(JSON.stringify(shown.map((s) => ({ ...s, records: readDeploymentRecords(workspace, s.name).slice(-20) })), null, 2) + '\n');
    return 0;
  }
  if (shown.length === 0) {
    process.stdout.write('No deployments running here. Start one with `mlpipeline deploy NAME`.\n');
    return 0;
  }
  const rows = shown.map((s) => [s.name, s.phase, s.url ?? '-', s.revisions.map((r) => `${r.revision}${s.revisions.length > 1 ? ` ${r.weight}%` : ''}${r.restarts ? ` (${r.restarts} restarts)` : ''}`).join(', ') || '-', s.revisions.map((r) => `@${r.model.hash.slice(0, 12)}`).join(', '), s.revisions.map((r) => r.sourceRunId ?? '-').join(', ')]);
  process.stdout.write(table(['deployment', 'state', 'url', 'revisions', 'model', 'run'], rows));
  return 0;
}

function parseDurationArg(text: string | undefined, flag: string, fallbackMs: number): number {
  if (text === undefined) return fallbackMs;
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) throw new UsageError(`${flag} takes a duration like 30s, 2m or 500ms, not \`${text}\`.`);
  return ms;
}

function specFor(workspace: string): ReturnType<typeof loadSpec> {
  const found = ['mlpipeline.yaml', 'mlpipeline.yml'].map((f) => join(workspace, f)).find((f) => existsSync(f));
  return loadSpec(found);
}

export async function loadCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--spec', '--rps', '--duration', '--data', '--fields', '--path', '--max-in-flight'], ['--json']);
  if (args.positional.length !== 1) throw new UsageError('load takes a deployment name: mlpipeline load churn-api --rps 50 --duration 30s');
  const name = args.positional[0];
  checkName(name);
  const rps = Number(one(args, '--rps') ?? 20);
  if (!(rps > 0 && rps <= LOAD_LIMITS.maxRps)) throw new UsageError(`--rps takes a number from 1 to ${LOAD_LIMITS.maxRps}.`);
  const durationMs = parseDurationArg(one(args, '--duration'), '--duration', 10_000);
  if (durationMs > LOAD_LIMITS.maxDurationMs) throw new UsageError(`--duration is at most ${LOAD_LIMITS.maxDurationMs / 60_000}m.`);
  const specPath = one(args, '--spec');
  const workspace = workspaceOf(specPath);
  const state = readState(workspace, name);
  const st = await new LocalTarget({ workspace }).status(name);
  if (!state || !st || st.phase === 'stopped' || st.phase === 'failed') {
    process.stderr.write(`mlpipeline: ${name} is not running here. Deploy it first: mlpipeline deploy ${name}\n`);
    return 1;
  }
  const spec = specFor(workspace);
  const planned = spec ? planDeployment(spec.analysis, name) : undefined;
  const d = planned?.ok ? planned.deployment : undefined;
  // Instances: --data, else the drift reference, restricted to the monitored features (labels and ids left out).
  const drift = d?.monitors.find((m) => m.drift)?.drift;
  const dataPath = one(args, '--data');
  let rows: Record<string, unknown>[];
  try {
    rows = dataPath ? readReference(process.cwd(), dataPath) : drift ? readReference(workspace, drift.reference) : [];
  } catch (e) {
    process.stderr.write(`mlpipeline: ${(e as Error).message}\n`);
    return 1;
  }
  const fieldsArg = one(args, '--fields');
  const features = fieldsArg ? fieldsArg.split(',').map((f) => f.trim()).filter(Boolean) : dataPath ? undefined : drift?.features;
  if (features) rows = rows.map((r) => Object.fromEntries(features.map((f) => [f, r[f] === '' ? null : numericOr(r[f])])));
  else rows = rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === '' ? null : numericOr(v)])));
  const path = one(args, '--path') ?? (rows.length ? '/predict' : d?.runtime.readiness ?? '/healthz');
  const url = `${st.url}${path}`;
  process.stdout.write(`load ${name}: ${rps} rps for ${durationMs / 1000} s to ${url}${rows.length ? ` (${rows.length} instances${dataPath ? ` from ${dataPath}` : drift ? ` from ${drift.reference}` : ''})` : ' (GET)'}\n`);
  const ac = new AbortController();
  const onSig = (): void => ac.abort();
  process.on('SIGINT', onSig);
  try {
    const report = await runLoad({
      url,
      rps,
      durationMs,
      maxInFlight: one(args, '--max-in-flight') ? Number(one(args, '--max-in-flight')) : undefined,
      body: rows.length ? (i) => JSON.stringify({ instances: [rows[i % rows.length]] }) : undefined,
      signal: ac.signal,
      onProgress: args.flags.has('--json') ? undefined : (r) => process.stdout.write(`  ${(r.elapsedMs / 1000).toFixed(0)} s: ${r.sent} sent, ${r.ok} ok, p95 ${r.latencyMs.p95.toFixed(1)} ms\n`),
    });
    if (args.flags.has('--json')) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else {
      const errors = Object.entries(report.statuses).map(([s, n]) => `${n}×${s}`).join(' ');
      process.stdout.write(`achieved ${report.achievedRps.toFixed(1)} rps (target ${rps}): ${report.ok} ok${errors ? `, ${errors}` : ''}${report.failed ? `, ${report.failed} failed to connect` : ''}${report.dropped ? `, ${report.dropped} not sent (too many in flight)` : ''}\n`);
      if (report.firstError) process.stdout.write(`first error answer: ${safe(report.firstError.trim().slice(0, 300))}\n`);
      process.stdout.write(`latency p50 ${report.latencyMs.p50.toFixed(1)} ms  p95 ${report.latencyMs.p95.toFixed(1)} ms  p99 ${report.latencyMs.p99.toFixed(1)} ms  max ${report.latencyMs.max.toFixed(1)} ms\n`);
    }
    return report.failed > 0 || Object.keys(report.statuses).length > 0 ? 1 : 0;
  } catch (e) {
    process.stderr.write(`mlpipeline: ${(e as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSig);
  }
}

function numericOr(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) ? n : v;
}

export async function monitorCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--spec', '--every', '--count', '--sample'], ['--json']);
  if (args.positional.length !== 1) throw new UsageError('monitor takes a deployment or monitor name: mlpipeline monitor churn-api');
  const spec = loadSpec(one(args, '--spec'));
  if (!spec) return 1;
  const workspace = dirname(spec.path);
  const wanted = args.positional[0];
  let d: ResolvedDeployment | undefined;
  let only: string | undefined;
  for (const n of deploymentNames(spec.analysis)) {
    const p = planDeployment(spec.analysis, n);
    if (!p.ok) continue;
    if (n === wanted) d = p.deployment;
    else if (p.deployment.monitors.some((m) => m.name === wanted)) {
      d = p.deployment;
      only = wanted;
    }
  }
  if (!d) throw new UsageError(`There is no deployment or monitor \`${wanted}\` in ${relative(process.cwd(), spec.path)}.`);
  const monitors = d.monitors.filter((m) => !only || m.name === only);
  if (monitors.length === 0) {
    process.stdout.write(`Deployment ${d.name} has no monitors. Add one under \`monitors:\`.\n`);
    return 0;
  }
  const everyMs = one(args, '--every') ? parseDurationArg(one(args, '--every'), '--every', 60_000) : undefined;
  const count = one(args, '--count') ? Number(one(args, '--count')) : everyMs ? Infinity : 1;
  const sampleMs = parseDurationArg(one(args, '--sample'), '--sample', 5000);
  const target = new LocalTarget({ workspace });
  const tracker = new SloTracker();
  const ac = new AbortController();
  const onSig = (): void => ac.abort();
  process.on('SIGINT', onSig);
  let breached = false;
  const lastDrift = new Map<string, number>();
  try {
    for (let i = 0; i < count && !ac.signal.aborted; i++) {
      if (i > 0) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, everyMs);
          ac.signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
        });
        if (ac.signal.aborted) break;
      }
      const results: MonitorResult[] = [];
      const st = await target.status(d.name);
      const live = st && st.phase !== 'stopped' && st.phase !== 'failed' ? await target.metricsSources(d.name) : [];
      for (const m of monitors) {
        if (m.slo) {
          if (live.length === 0) {
            results.push({ monitor: m.name, ok: true, noData: true, breaches: [], error: `${d.name} is not running here`, at: new Date().toISOString() });
            continue;
          }
          for (const src of live) {
            // One-shot direct scrapes measure over --sample; scheduled ones over the time since the last.
            if (!m.prometheus && i === 0) {
              await tracker.evaluate(m, src, { windowMs: m.slo.windowMs });
              await new Promise((r) => setTimeout(r, sampleMs));
            }
            results.push(await tracker.evaluate(m, src));
          }
        }
        // Drift follows its own `schedule` (default 1h) when evaluating repeatedly; always on the first pass.
        if (m.drift && (i === 0 || Date.now() - (lastDrift.get(m.name) ?? 0) >= m.drift.scheduleMs)) {
          lastDrift.set(m.name, Date.now());
          results.push(evaluateDrift(workspace, m, readInputLogs(workspace, d.name, live.length ? { revisions: live.map((l) => l.revision) } : {})));
        }
      }
      const alerts = await recordAlerts(workspace, d.name, results, d.alerts, d.monitors);
      if (args.flags.has('--json')) process.stdout.write(JSON.stringify({ results, alerts }) + '\n');
      else {
        for (const r of results) {
          const head = `monitors.${r.monitor}${r.revision ? ` (${r.revision})` : ''}`;
          if (r.error) process.stdout.write(`${head}: ${paint('33', 'not evaluated')}: ${safe(r.error)}\n`);
          else if (r.noData) process.stdout.write(`${head}: ${paint('33', 'no data')}${r.drift?.skipped.length ? ` (${r.drift.skipped.join('; ')})` : ' (no requests in the window)'}\n`);
          else if (r.ok) process.stdout.write(`${head}: ${paint('32', 'ok')}${r.summary ? ` p95 ${(r.summary.p95 * 1000).toFixed(1)} ms, ${Number.isNaN(r.summary.rps) ? '' : `${r.summary.rps.toFixed(1)} rps, `}errors ${(Number.isNaN(r.summary.errorRate) ? 0 : r.summary.errorRate * 100).toFixed(2)}%` : ''}${r.drift ? ` ${r.drift.features.map((f) => `${f.feature} ${f.method}=${f.statistic.toFixed(3)}`).join(', ')}` : ''}\n`);
          else process.stdout.write(`${head}: ${paint('31', 'VIOLATED')}\n${r.breaches.map((b) => `  ${safe(b)}\n`).join('')}`);
        }
        for (const a of alerts) if (a.notify.includes('log') || a.notify.length === 0) process.stdout.write(`ALERT ${a.state} monitors.${a.monitor}: ${safe(a.details.join('; '))}${a.description ? ` — ${safe(a.description)}` : ''}\n`);
      }
      if (results.some((r) => !r.ok)) breached = true;
    }
  } finally {
    process.off('SIGINT', onSig);
  }
  return breached ? 1 : 0;
}

/** `mlpipeline __supervise WORKSPACE NAME PORT MODE`: started detached by the local target. */
export async function superviseCommand(argv: string[]): Promise<number> {
  const [workspace, name, port, mode] = argv;
  if (!workspace || !name || !/^[0-9]+$/.test(port ?? '') || (mode !== 'direct' && mode !== 'proxy')) throw new UsageError('__supervise is started by `mlpipeline deploy`.');
  await superviseMain(workspace, name, Number(port), mode);
  return new Promise<number>(() => undefined); // Runs until stopped through its control API or a signal.
}
