import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planRun, type KubernetesTargetPlan, type PlannedStep } from '../../server/src/core/plan';
import { analyzeSpec } from '../../server/src/core/validate';
import { buildDeployment, buildJob, dnsLabel, jobName, placement, SECRETS_OBJECT } from '../../client/src/runtime/kubernetes/manifests';
import { jobFailure, podProblem } from '../../client/src/runtime/kubernetes/status';

const SPEC = `apiVersion: mlpipeline/v1
name: churn-model
params:
  lr: {type: float, default: 0.01}
secrets: [HF_TOKEN, WANDB_KEY]
compute:
  gpu-cluster:
    type: kubernetes
    context: prod-eks
    namespace: ml
    image: ghcr.io/acme/trainer:1.4
    resources: {gpu: A100:4, cpu: 16, memory: 64Gi}
    tolerations: [{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}]
    spot: {policy: always, maxPricePerHour: 12.5}
    serviceAccount: ml-trainer
    imagePullSecrets: [ghcr-pull]
    env: {NCCL_DEBUG: WARN, LR_COPY: "\${params.lr}", WANDB_API_KEY: "\${secrets.WANDB_KEY}"}
steps:
  train:
    command: python train.py --lr \${params.lr}
    env: {HF_TOKEN: "\${secrets.HF_TOKEN}", NCCL_DEBUG: INFO}
    resources: {memory: 32Gi}
    compute: gpu-cluster
    timeout: 90s
  cpu-only:
    command: echo hi
    compute: gpu-cluster
    resources: {gpu: 0}
`;

function plan() {
  const r = planRun(analyzeSpec(SPEC));
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.plan;
}

describe('kubernetes plan', () => {
  it('carries the target details and merges step resources over the target', () => {
    const p = plan();
    const k = p.targets['gpu-cluster'].kubernetes!;
    assert.equal(k.context, 'prod-eks');
    assert.equal(k.namespace, 'ml');
    assert.deepEqual(k.spot, { policy: 'always', maxPricePerHour: 12.5 });
    assert.deepEqual(k.imagePullSecrets, ['ghcr-pull']);
    assert.equal(k.serviceAccount, 'ml-trainer');
    assert.deepEqual(k.env, { NCCL_DEBUG: 'WARN', LR_COPY: '0.01' });
    assert.deepEqual(k.secretEnv, { WANDB_API_KEY: 'WANDB_KEY' });
    const train = p.steps.find((s) => s.name === 'train')!;
    assert.deepEqual(train.gpu, { type: 'A100', count: 4 });
    assert.deepEqual(train.resources, { cpu: '16', memory: '32Gi' });
    const cpu = p.steps.find((s) => s.name === 'cpu-only')!;
    assert.equal(cpu.gpu, undefined);
  });
});

describe('kubernetes Job manifest', () => {
  const p = plan();
  const train = p.steps.find((s) => s.name === 'train')!;
  const target = p.targets['gpu-cluster'].kubernetes!;
  const job = buildJob({ specName: p.specName, step: train, target, runId: '20261125-120000-abcdef', attempt: 1, cacheKey: 'k1' }) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  const pod = job.spec.template.spec;
  const c = pod.containers[0];

  it('has a deterministic, valid name that changes with inputs and attempt only', () => {
    assert.equal(job.metadata.name, jobName('churn-model', 'train', 'k1', 1));
    assert.match(job.metadata.name, /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/);
    assert.ok(job.metadata.name.length <= 52, job.metadata.name);
    const again = buildJob({ specName: p.specName, step: train, target, runId: 'another-run', attempt: 1, cacheKey: 'k1' }) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(again.metadata.name, job.metadata.name);
    assert.notEqual(jobName('churn-model', 'train', 'k2', 1), job.metadata.name);
    assert.notEqual(jobName('churn-model', 'train', 'k1', 2), job.metadata.name);
    const long = jobName('x'.repeat(200), 'y'.repeat(200), 'k', 12);
    assert.ok(long.length <= 52 && /^[a-z0-9-]+$/.test(long) && !long.includes('--'), long);
  });

  it('labels with app.kubernetes.io/* and annotates run, step and cache key', () => {
    assert.equal(job.metadata.labels['app.kubernetes.io/managed-by'], 'mlpipeline');
    assert.equal(job.metadata.labels['app.kubernetes.io/component'], 'step');
    assert.equal(job.metadata.labels['app.kubernetes.io/part-of'], 'churn-model');
    assert.equal(job.metadata.labels['app.kubernetes.io/instance'], job.metadata.name);
    assert.deepEqual(job.spec.template.metadata.labels, job.metadata.labels);
    assert.equal(job.metadata.annotations['mlpipeline.dev/run-id'], '20261125-120000-abcdef');
    assert.equal(job.metadata.annotations['mlpipeline.dev/cache-key'], 'k1');
    assert.equal(job.metadata.annotations['mlpipeline.dev/max-price-per-hour'], '12.5');
  });

  it('requests GPUs as nvidia.com/gpu with the type as node affinity, and tolerates the GPU taint', () => {
    assert.deepEqual(c.resources.limits, { cpu: '16', memory: '32Gi', 'nvidia.com/gpu': '4' });
    assert.deepEqual(c.resources.requests, c.resources.limits);
    assert.ok(pod.tolerations.some((t: any) => t.key === 'nvidia.com/gpu' && t.operator === 'Exists')); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.ok(pod.tolerations.some((t: any) => t.key === 'dedicated' && t.value === 'ml')); // eslint-disable-line @typescript-eslint/no-explicit-any
    const terms = pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
    // spot: always -> every term requires spot capacity and the GPU product.
    for (const t of terms) {
      assert.ok(t.matchExpressions.some((e: any) => e.key === 'nvidia.com/gpu.product' && e.values.includes('NVIDIA-A100-SXM4-80GB'))); // eslint-disable-line @typescript-eslint/no-explicit-any
    }
    assert.ok(terms.some((t: any) => t.matchExpressions.some((e: any) => e.key === 'karpenter.sh/capacity-type' && e.values[0] === 'spot'))); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.ok(pod.tolerations.some((t: any) => t.key === 'karpenter.sh/capacity-type')); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(pod.serviceAccountName, 'ml-trainer');
    assert.deepEqual(pod.imagePullSecrets, [{ name: 'ghcr-pull' }]);
    assert.equal(pod.restartPolicy, 'Never');
  });

  it('passes secrets only as secretKeyRef, never their values', () => {
    const hf = c.env.find((e: any) => e.name === 'HF_TOKEN'); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.deepEqual(hf, { name: 'HF_TOKEN', valueFrom: { secretKeyRef: { name: SECRETS_OBJECT, key: 'HF_TOKEN' } } });
    assert.deepEqual(c.env.find((e: any) => e.name === 'WANDB_API_KEY').valueFrom.secretKeyRef.key, 'WANDB_KEY'); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(c.env.find((e: any) => e.name === 'NCCL_DEBUG').value, 'INFO', 'the step env wins'); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.doesNotMatch(JSON.stringify(job), /"value":"\$\{secrets/);
  });

  it('runs the command under /bin/sh -c, with backoffLimit 0 and the timeout as activeDeadlineSeconds', () => {
    assert.deepEqual(c.command, ['/bin/sh', '-c', 'python train.py --lr 0.01']);
    assert.equal(job.spec.backoffLimit, 0);
    assert.equal(job.spec.activeDeadlineSeconds, 90);
  });

  it('uses a nodeSelector for single-product types, amd.com/gpu for AMD, and preferred affinity for spot auto', () => {
    const t: KubernetesTargetPlan = { namespace: 'ml', image: 'i', resources: {}, nodeSelector: {}, tolerations: [], spot: { policy: 'auto' }, imagePullSecrets: [], env: {}, secretEnv: {} };
    const l4 = placement({ target: t, gpu: { type: 'L4', count: 1 } }) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.deepEqual(l4.nodeSelector, { 'nvidia.com/gpu.product': 'NVIDIA-L4' });
    assert.ok(l4.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution.length > 0);
    assert.equal(l4.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution, undefined);
    const amd = buildJob({ specName: 's', step: { ...({} as PlannedStep), name: 'a', command: 'x', env: {}, secretEnv: {}, gpu: { type: 'MI300X', count: 2 }, workdir: '.' }, target: t, runId: 'r', attempt: 1, cacheKey: 'k' }) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(amd.spec.template.spec.containers[0].resources.limits['amd.com/gpu'], '2');
    assert.equal(dnsLabel('__'), 'x');
  });
});

describe('kubernetes Deployment manifests', () => {
  const t: KubernetesTargetPlan = { namespace: 'ml', image: 'ghcr.io/acme/serve:1', resources: {}, nodeSelector: {}, tolerations: [], spot: { policy: 'never' }, imagePullSecrets: [], env: {}, secretEnv: {} };
  it('builds Deployment, Service and an autoscaling/v2 HPA with a readiness probe', () => {
    const [d, s, h] = buildDeployment({ specName: 'churn', name: 'churn-api', target: t, command: 'python serve.py', port: 8080, readiness: '/healthz', replicas: { min: 2, max: 5 }, autoscale: { metric: 'cpu', target: 70 }, secretEnv: { HF_TOKEN: 'HF_TOKEN' } }) as any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(d.kind, 'Deployment');
    assert.equal(d.spec.replicas, 2);
    assert.deepEqual(d.spec.template.spec.containers[0].readinessProbe.httpGet, { path: '/healthz', port: 'http' });
    assert.deepEqual(s.spec.selector, d.spec.selector.matchLabels);
    assert.equal(h.apiVersion, 'autoscaling/v2');
    assert.deepEqual(h.spec.metrics[0].resource, { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } });
    assert.equal(h.spec.maxReplicas, 5);
    assert.equal(d.spec.template.spec.containers[0].env.find((e: any) => e.name === 'HF_TOKEN').valueFrom.secretKeyRef.name, SECRETS_OBJECT); // eslint-disable-line @typescript-eslint/no-explicit-any
  });
  it('leaves the HPA out without autoscale', () => {
    assert.equal(buildDeployment({ specName: 'c', name: 'api', target: t, command: 'x', port: 80, replicas: { min: 1 } }).length, 2);
  });
});

describe('kubernetes status', () => {
  it('reads exit codes, deadlines, OOM and preemption from Job and pod status', () => {
    const failedJob = { status: { conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] } };
    const pod = (term: object, extra: object = {}) => ({ status: { phase: 'Failed', containerStatuses: [{ state: { terminated: term } }], ...extra } });
    assert.equal(jobFailure({ status: { succeeded: 1 } }, []), undefined);
    assert.deepEqual(jobFailure(failedJob, [pod({ exitCode: 3, reason: 'Error' })]), { reason: 'failure', message: 'failed with exit code 3', exitCode: 3 });
    assert.equal(jobFailure(failedJob, [pod({ exitCode: 137, reason: 'OOMKilled' })])!.reason, 'oom');
    assert.equal(jobFailure(failedJob, [{ status: { phase: 'Failed', reason: 'Evicted', message: 'node drained' } }])!.reason, 'preempted');
    assert.equal(jobFailure({ status: { conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' }] } }, [])!.reason, 'timeout');
  });
  it('turns FailedScheduling Events and waiting containers into problems', () => {
    const pending = { metadata: { uid: 'u' }, status: { phase: 'Pending' } };
    const p = podProblem(pending, [
      { reason: 'Scheduled', message: 'x' },
      { reason: 'FailedScheduling', message: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.', lastTimestamp: '2026-01-01T00:00:02Z' },
    ]);
    assert.deepEqual(p, { reason: 'unschedulable', message: 'FailedScheduling: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.', fatal: false });
    const cfg = podProblem({ status: { phase: 'Pending', containerStatuses: [{ state: { waiting: { reason: 'CreateContainerConfigError', message: 'secret "mlpipeline-secrets" not found' } } }] } }, []);
    assert.equal(cfg!.fatal, true);
    assert.equal(podProblem(pending, []), undefined);
  });
});
