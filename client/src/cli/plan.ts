import { stringify } from 'yaml';
import { deploymentNames, planDeployment } from '../../../server/src/core/deploy-plan';
import { planRun, type RunPlan } from '../../../server/src/core/plan';
import { remoteStepEnv } from '../runtime/artifacts/contract';
import { isS3Uri } from '../runtime/artifacts/s3-uri';
import { buildJob, type Manifest } from '../runtime/kubernetes/manifests';
import { canaryManifest, deploymentManifests } from '../runtime/kubernetes/deploy-manifests';
import { computeCacheKey } from '../runtime/step-cache';
import { one, parseArgs, UsageError } from './args';
import { parseSets } from './run';
import { loadSpec } from './spec-file';

export const PLAN_USAGE = `  plan [spec] --target NAME   Print the Kubernetes manifests a run (Jobs) and deploy (Deployment, Service,
                        HPA, and the canary Deployment of a canary rollout) would apply on that target,
                        without contacting the cluster
    --step NAME                Only this step and what it depends on (repeatable)
    --set params.NAME=VALUE    Override a param (repeatable)
    --format yaml|json         Output format (default: yaml, one document per object)
    --hpa-api VERSION          autoscaling/v2 (default) or autoscaling/v2beta2 for clusters before 1.23
`;

/**
 * `mlpipeline plan --target NAME`: the manifests, for review or `kubectl apply --dry-run=server`. Job names
 * here hash the command, env and params only; a run also hashes the input files, so its names differ.
 */
export async function planCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--target', '--step', '--set', '--format', '--hpa-api'], []);
  if (args.positional.length > 1) throw new UsageError(`plan takes one spec, got ${args.positional.length}.`);
  const target = one(args, '--target');
  if (!target) throw new UsageError('plan needs --target NAME (a `type: kubernetes` compute target).');
  const format = one(args, '--format') ?? 'yaml';
  if (format !== 'yaml' && format !== 'json') throw new UsageError(`--format takes yaml or json, not \`${format}\`.`);
  const hpa = one(args, '--hpa-api') ?? 'autoscaling/v2';
  if (hpa !== 'autoscaling/v2' && hpa !== 'autoscaling/v2beta2') throw new UsageError(`--hpa-api takes autoscaling/v2 or autoscaling/v2beta2 (Kubernetes 1.20-1.22), not \`${hpa}\`.`);
  const spec = loadSpec(args.positional[0]);
  if (!spec) return 1;
  const overrides = parseSets(args.values.get('--set') ?? []);
  const planned = planRun(spec.analysis, { overrides, only: args.values.get('--step'), target });
  if (!planned.ok) {
    for (const e of planned.errors) process.stderr.write(`mlpipeline: ${e}\n`);
    return 1;
  }
  const plan = planned.plan;
  if (plan.targets[target]?.type !== 'kubernetes') {
    process.stderr.write(`mlpipeline: compute target \`${target}\` is ${plan.targets[target]?.type ?? 'not defined'}; plan prints manifests for \`type: kubernetes\` targets.\n`);
    return 1;
  }
  const manifests: Manifest[] = [...jobManifests(plan, target)];
  for (const name of deploymentNames(spec.analysis)) {
    const d = planDeployment(spec.analysis, name, { overrides });
    if (!d.ok || d.deployment.target !== target) continue;
    const k = plan.targets[target].kubernetes!;
    manifests.push(...deploymentManifests(d.deployment, k, { revision: 'plan', hpaApiVersion: hpa }));
    // What a later deploy creates next to the stable Deployment; its annotations show each step as pods.
    if (d.deployment.rollout.strategy === 'canary') manifests.push(canaryManifest(d.deployment, k, { revision: 'plan-canary', stableReplicas: d.deployment.replicas.min, stableRevision: 'plan' }));
  }
  if (manifests.length === 0) {
    process.stderr.write(`mlpipeline: no step or deployment runs on \`${target}\`.\n`);
    return 1;
  }
  process.stdout.write(format === 'json' ? JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }, null, 2) + '\n' : manifests.map((m) => stringify(m, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n'));
  return 0;
}

/**
 * The S3 contract env a run would give the step's pod (docs/storage.md). What only a run knows is shown
 * as a placeholder: the content-addressed URIs of staged inputs and upstream outputs, and the run id.
 */
function contractEnv(plan: RunPlan, step: RunPlan['steps'][number]): Record<string, string> {
  const artifacts = plan.storage?.artifacts && isS3Uri(plan.storage.artifacts) ? plan.storage.artifacts : undefined;
  const datasets: Record<string, string> = {};
  for (const d of step.datasets) {
    const uri = plan.datasets[d]?.uri;
    if (uri) datasets[d] = isS3Uri(uri) || !artifacts ? uri : '<staged copy, named by content hash at run time>';
  }
  const env = remoteStepEnv({
    ...(artifacts ? { artifacts, files: [step.metrics, ...step.plots].filter((f): f is string => !!f) } : {}),
    runId: 'plan',
    step: step.name,
    outputs: artifacts ? step.outputs : {},
    datasets,
    upstream: artifacts ? Object.fromEntries(step.upstream.map((r) => [r, `<stored URI of ${r}, known once it has run>`])) : {},
  });
  if (artifacts && (step.inputs.length || step.upstream.length)) env.MLP_INPUTS = '<JSON of path -> staged URI, known at run time>';
  return env;
}

function jobManifests(plan: RunPlan, targetName: string): Manifest[] {
  const out: Manifest[] = [];
  for (const step of plan.steps) {
    if (step.target !== targetName) continue;
    const params = Object.fromEntries(step.params.map((p) => [p, plan.params[p]]));
    const cacheKey = computeCacheKey({ command: step.command, env: step.env, params, inputs: {}, upstream: {} });
    out.push(buildJob({ specName: plan.specName, step, target: plan.targets[targetName].kubernetes!, runId: 'plan', attempt: 1, cacheKey, extraEnv: contractEnv(plan, step) }));
  }
  return out;
}
