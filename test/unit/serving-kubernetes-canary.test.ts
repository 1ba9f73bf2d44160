/**
 * Canary weights on Kubernetes as pod ratios (client/src/runtime/kubernetes/deploy-manifests.ts): the
 * rounding, the pod count a rollout uses, and the manifests' labels that make one Service send to both
 * tracks while each Deployment owns only its own pods. Pure functions; the cluster behaviour is tested in
 * test/runtime/kubernetes-canary.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { planDeployment } from '../../server/src/core/deploy-plan';
import { planRun } from '../../server/src/core/plan';
import { analyzeSpec } from '../../server/src/core/validate';
import { canaryManifest, canaryPlan, canarySplit, canaryTotal, deploymentManifests, describeCanaryPlan } from '../../client/src/runtime/kubernetes/deploy-manifests';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const FRAUD = readFileSync(new URL('../../samples/sweep-deploy/mlpipeline.yaml', import.meta.url), 'utf8');
const rollout = (weights: number[], min = 1, max = min) => ({ replicas: { min, max }, rollout: { strategy: 'canary' as const, steps: weights.map((weight) => ({ weight, holdMs: 0 })), rollbackOn: [] } });

describe('canary weights as pod ratios', () => {
  it('splits N pods by rounding, keeping at least one pod on each side of a partial weight', () => {
    const cases: [number, number, [number, number, number]][] = [
      [4, 25, [1, 3, 25]],
      [4, 50, [2, 2, 50]],
      [4, 0, [0, 4, 0]],
      [4, 100, [4, 0, 100]],
      [10, 1, [1, 9, 10]], // 0.1 pods rounds to 0: a canary step keeps one pod.
      [3, 50, [2, 1, 66.7]], // 1.5 rounds up.
      [2, 99, [1, 1, 50]], // 1.98 rounds to 2, but the stable track keeps one pod below 100%.
      [3, 33, [1, 2, 33.3]],
    ];
    for (const [n, w, [canary, stable, effective]] of cases) assert.deepEqual(canarySplit(n, w), { canary, stable, effective }, `${w}% of ${n}`);
  });

  it('uses the fewest pods that put every step within a point of its weight, from the replicas up to max(10, replicas.max)', () => {
    assert.equal(canaryTotal(rollout([25, 50, 100], 2, 3)), 4);
    assert.equal(canaryTotal(rollout([10, 50, 100], 2, 4)), 10);
    assert.equal(canaryTotal(rollout([33, 66], 1)), 3);
    assert.equal(canaryTotal(rollout([50], 1)), 2);
    assert.equal(canaryTotal(rollout([10], 20)), 20, 'the replicas are never reduced for a canary');
    assert.equal(canaryTotal(rollout([50], 2), 7), 8, 'starts from the stable pods running now (an autoscaler may have added some)');
    assert.equal(canaryTotal(rollout([5], 2, 20)), 17, 'replicas.max raises the budget: 5% is 1 of 17 pods (5.9%), the first count within a point');
    assert.equal(canaryTotal(rollout([5], 2, 4)), 10, 'without it, 10 pods: 1 of 10 (10%) is the closest');
    assert.equal(canaryTotal(rollout([100], 3)), 3, 'only partial weights need more pods');
    assert.equal(canaryTotal(rollout([], 2)), 2);
  });

  it('approximates what it cannot hit within the budget with the smallest worst error, and says so in the plan', () => {
    // 1% would need 100 pods; within 10 the best is 1 of 10 pods.
    const p = canaryPlan(rollout([1, 50, 100], 1));
    assert.equal(p.total, 10);
    assert.deepEqual(p.steps.map((s) => [s.weight, s.canary, s.stable, s.effective]), [[1, 1, 9, 10], [50, 5, 5, 50], [100, 10, 0, 100]]);
    assert.equal(describeCanaryPlan(p), '1% -> 1 of 10 pods (10%); 50% -> 5 of 10 pods (50%); 100% -> 10 of 10 pods (100%)');
  });
});

describe('canary manifests', () => {
  const analysis = analyzeSpec(FRAUD);
  const planned = planRun(analysis, { overrides: { 'params.model': 'lgbm' } });
  assert.ok(planned.ok);
  const r = planDeployment(analysis, 'fraud-api', { overrides: { 'params.model': 'lgbm' } });
  assert.ok(r.ok, JSON.stringify(r));
  const d = r.deployment;
  const target = planned.plan.targets[d.target].kubernetes!;

  it('stable and canary Deployments select only their own track; the Service selects both', () => {
    const [stable, service] = deploymentManifests(d, target, { revision: 'r1' }) as Json[];
    const canary = canaryManifest(d, target, { revision: 'r2', stableReplicas: 2, stableRevision: 'r1' }) as Json;
    const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);
    const stablePods = stable.spec.template.metadata.labels;
    const canaryPods = canary.spec.template.metadata.labels;
    assert.ok(matches(service.spec.selector, stablePods) && matches(service.spec.selector, canaryPods), 'one Service in front of both tracks');
    assert.ok(matches(stable.spec.selector.matchLabels, stablePods) && !matches(stable.spec.selector.matchLabels, canaryPods));
    assert.ok(matches(canary.spec.selector.matchLabels, canaryPods) && !matches(canary.spec.selector.matchLabels, stablePods));
    assert.equal(service.spec.selector['mlpipeline.dev/track'], undefined);
    assert.deepEqual([stablePods['mlpipeline.dev/revision'], canaryPods['mlpipeline.dev/revision']], ['r1', 'r2'], 'Prometheus can tell the revisions apart');
  });

  it('the canary starts with 0 pods and records what a later command needs to finish or undo the rollout', () => {
    const canary = canaryManifest(d, target, { revision: 'r2', model: 's3://models/fraud.pkl', stableReplicas: 3, stableRevision: 'r1' }) as Json;
    assert.equal(canary.kind, 'Deployment');
    assert.equal(canary.metadata.name, 'fraud-api-canary');
    assert.equal(canary.spec.replicas, 0);
    assert.equal(canary.spec.template.metadata.annotations['mlpipeline.dev/model'], 's3://models/fraud.pkl');
    const a = canary.metadata.annotations;
    // The sample's steps are 10/50/100% with replicas 2..10: 10 pods make 10% exact.
    assert.deepEqual([a['mlpipeline.dev/canary-total'], a['mlpipeline.dev/stable-replicas'], a['mlpipeline.dev/stable-revision'], a['mlpipeline.dev/revision']], ['10', '3', 'r1', 'r2']);
    assert.equal(a['mlpipeline.dev/canary-plan'], '10% -> 1 of 10 pods (10%); 50% -> 5 of 10 pods (50%); 100% -> 10 of 10 pods (100%)');
    // The same pod spec as the stable track would run (command, image, env), only the track differs.
    const [stable] = deploymentManifests(d, target, { revision: 'r2', model: 's3://models/fraud.pkl' }) as Json[];
    assert.deepEqual(canary.spec.template.spec, stable.spec.template.spec);
  });
});
