/**
 * Kubernetes manifests for steps (Jobs) and deployments (Deployment + Service + HPA), as pure functions of the
 * plan. No client import here: `plan --target` prints these, the executor applies them, unit tests pin them.
 */
import { createHash } from 'node:crypto';
import type { KubernetesTargetPlan, PlannedStep, StepResources } from '../../../../server/src/core/plan';

export type Manifest = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } };

/** The Kubernetes Secret (in the target's namespace) that holds the values of `secrets:`, one key per name. */
export const SECRETS_OBJECT = 'mlpipeline-secrets';
export const MANAGED_BY = 'mlpipeline';
export const ANNOTATION = {
  runId: 'mlpipeline.dev/run-id',
  step: 'mlpipeline.dev/step',
  cacheKey: 'mlpipeline.dev/cache-key',
  attempt: 'mlpipeline.dev/attempt',
  spec: 'mlpipeline.dev/spec',
  maxPrice: 'mlpipeline.dev/max-price-per-hour',
  model: 'mlpipeline.dev/model',
  deployment: 'mlpipeline.dev/deployment',
} as const;
/** The container name in step pods; logs are read from it. */
export const STEP_CONTAINER = 'step';

/** Lowercase DNS-1123 label text: `Train_Model` -> `train-model`; never empty. */
export function dnsLabel(text: string, max = 63): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/g, '');
  return s || 'x';
}

/** A valid label value (63 chars, alphanumeric ends, `-_.` inside). */
export function labelValue(text: string): string {
  const s = text.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 63).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return s;
}

/**
 * The Job name for one attempt of a step: `mlp-<spec>-<step>-<10 hex of sha256(spec, step, cache key)>-<attempt>`,
 * at most 63 characters. The same step with the same inputs gets the same name in every run, so a run that
 * lost its connection (or its process) and is started again finds and adopts the Job instead of starting a
 * second one, and a create retried after a lost response gets 409 instead of a duplicate.
 */
export function jobName(specName: string, step: string, cacheKey: string, attempt: number): string {
  const hash = createHash('sha256').update(`${specName}\n${step}\n${cacheKey}`).digest('hex').slice(0, 10);
  const suffix = `-${hash}-${attempt}`;
  // Pods get `<job>-<5 random>` names; the Job's own name must leave room for that within 63.
  const room = 52 - suffix.length - 'mlp-'.length;
  const specPart = dnsLabel(specName, Math.max(4, Math.floor(room / 2)));
  const stepPart = dnsLabel(step, Math.max(4, room - specPart.length - 1));
  return `mlp-${specPart}-${stepPart}${suffix}`;
}

export function standardLabels(specName: string, instance: string, component: 'step' | 'model-server'): Record<string, string> {
  return {
    'app.kubernetes.io/name': labelValue(component === 'step' ? `${specName}-step` : instance),
    'app.kubernetes.io/instance': labelValue(instance),
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': labelValue(specName),
    'app.kubernetes.io/managed-by': MANAGED_BY,
  };
}

/** GPU product label values (as NVIDIA GPU feature discovery writes `nvidia.com/gpu.product`) per short type. */
const GPU_PRODUCTS: Record<string, string[]> = {
  A100: ['NVIDIA-A100-SXM4-80GB', 'NVIDIA-A100-SXM4-40GB', 'NVIDIA-A100-80GB-PCIe', 'NVIDIA-A100-PCIE-40GB', 'A100-SXM4-40GB', 'A100-SXM4-80GB'],
  'A100-80GB': ['NVIDIA-A100-SXM4-80GB', 'NVIDIA-A100-80GB-PCIe', 'A100-SXM4-80GB'],
  H100: ['NVIDIA-H100-80GB-HBM3', 'NVIDIA-H100-PCIe', 'NVIDIA-H100-NVL', 'NVIDIA-H100-SXM5-80GB'],
  H200: ['NVIDIA-H200', 'NVIDIA-H200-NVL', 'NVIDIA-H200-141GB-HBM3e'],
  B200: ['NVIDIA-B200'],
  GB200: ['NVIDIA-GB200'],
  A10G: ['NVIDIA-A10G'],
  A10: ['NVIDIA-A10'],
  A40: ['NVIDIA-A40'],
  L4: ['NVIDIA-L4'],
  L40: ['NVIDIA-L40'],
  L40S: ['NVIDIA-L40S'],
  T4: ['Tesla-T4', 'NVIDIA-Tesla-T4'],
  V100: ['Tesla-V100-SXM2-16GB', 'Tesla-V100-SXM2-32GB', 'Tesla-V100-PCIE-16GB', 'Tesla-V100-PCIE-32GB'],
  P100: ['Tesla-P100-PCIE-16GB', 'Tesla-P100-SXM2-16GB'],
  K80: ['Tesla-K80'],
  RTX4090: ['NVIDIA-GeForce-RTX-4090'],
  RTX3090: ['NVIDIA-GeForce-RTX-3090'],
  RTX6000: ['NVIDIA-RTX-6000-Ada-Generation', 'Quadro-RTX-6000'],
};
export const GPU_PRODUCT_LABEL = 'nvidia.com/gpu.product';

/** `nvidia.com/gpu`, or `amd.com/gpu` for AMD Instinct types. */
export function gpuResourceName(type: string | undefined): string {
  return type && /^MI[0-9]/i.test(type) ? 'amd.com/gpu' : 'nvidia.com/gpu';
}

/** Known types select every product name of that type; an unknown one is taken as the product label itself. */
export function gpuProducts(type: string): string[] {
  return GPU_PRODUCTS[type.toUpperCase()] ?? GPU_PRODUCTS[type] ?? [type];
}

/** Spot capacity as the major provisioners label and taint it (Karpenter, GKE, EKS managed node groups, AKS). */
const SPOT_LABELS: { key: string; value: string; taint: boolean }[] = [
  { key: 'karpenter.sh/capacity-type', value: 'spot', taint: true },
  { key: 'cloud.google.com/gke-spot', value: 'true', taint: true },
  { key: 'eks.amazonaws.com/capacityType', value: 'SPOT', taint: false },
  { key: 'kubernetes.azure.com/scalesetpriority', value: 'spot', taint: true },
];

export interface PodSettings {
  target: KubernetesTargetPlan;
  gpu?: { count: number; type?: string };
  resources?: StepResources;
}

/** requests and limits; extended resources (GPUs) must have requests equal to limits. */
export function containerResources(s: PodSettings): { requests?: Record<string, string>; limits?: Record<string, string> } {
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  if (s.resources?.cpu) requests.cpu = limits.cpu = s.resources.cpu;
  if (s.resources?.memory) requests.memory = limits.memory = s.resources.memory;
  if (s.resources?.ephemeralStorage) requests['ephemeral-storage'] = limits['ephemeral-storage'] = s.resources.ephemeralStorage;
  if (s.gpu && s.gpu.count > 0) requests[gpuResourceName(s.gpu.type)] = limits[gpuResourceName(s.gpu.type)] = String(s.gpu.count);
  return Object.keys(requests).length ? { requests, limits } : {};
}

/** nodeSelector, tolerations and affinity for the target, the GPU type and spot policy. */
export function placement(s: PodSettings): Record<string, unknown> {
  const t = s.target;
  const nodeSelector = { ...t.nodeSelector };
  const tolerations: Record<string, unknown>[] = t.tolerations.map((x) => ({ ...x }));
  const required: Record<string, unknown>[] = [];
  const addToleration = (tol: Record<string, unknown>): void => {
    if (!tolerations.some((x) => JSON.stringify(x) === JSON.stringify(tol))) tolerations.push(tol);
  };
  if (s.gpu && s.gpu.count > 0) {
    // GPU node pools are tainted with the resource name; tolerate it as the ExtendedResourceToleration plugin would.
    addToleration({ key: gpuResourceName(s.gpu.type), operator: 'Exists', effect: 'NoSchedule' });
    if (s.gpu.type && gpuResourceName(s.gpu.type) === 'nvidia.com/gpu' && !(GPU_PRODUCT_LABEL in nodeSelector)) {
      const products = gpuProducts(s.gpu.type);
      if (products.length === 1) nodeSelector[GPU_PRODUCT_LABEL] = products[0];
      else required.push({ key: GPU_PRODUCT_LABEL, operator: 'In', values: products });
    }
  }
  const affinity: Record<string, unknown> = {};
  const spotTerms = SPOT_LABELS.map((l) => ({ matchExpressions: [...required, { key: l.key, operator: 'In', values: [l.value] }] }));
  if (t.spot.policy !== 'never') for (const l of SPOT_LABELS) if (l.taint) addToleration({ key: l.key, operator: 'Equal', value: l.value, effect: 'NoSchedule' });
  if (t.spot.policy === 'always') {
    affinity.nodeAffinity = { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: spotTerms } };
  } else {
    const nodeAffinity: Record<string, unknown> = {};
    if (required.length) nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution = { nodeSelectorTerms: [{ matchExpressions: required }] };
    if (t.spot.policy === 'auto') nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution = SPOT_LABELS.map((l) => ({ weight: 100, preference: { matchExpressions: [{ key: l.key, operator: 'In', values: [l.value] }] } }));
    if (Object.keys(nodeAffinity).length) affinity.nodeAffinity = nodeAffinity;
  }
  return {
    ...(Object.keys(nodeSelector).length ? { nodeSelector } : {}),
    ...(tolerations.length ? { tolerations } : {}),
    ...(Object.keys(affinity).length ? { affinity } : {}),
    ...(t.serviceAccount ? { serviceAccountName: t.serviceAccount } : {}),
    ...(t.imagePullSecrets.length ? { imagePullSecrets: t.imagePullSecrets.map((name) => ({ name })) } : {}),
  };
}

/** Plain values inline, secrets only as references to the `mlpipeline-secrets` Secret. Sorted, so manifests are stable. */
export function containerEnv(plain: Record<string, string>, secretEnv: Record<string, string>): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const names = [...new Set([...Object.keys(plain), ...Object.keys(secretEnv)])].sort();
  for (const name of names) {
    if (name in secretEnv) out.push({ name, valueFrom: { secretKeyRef: { name: SECRETS_OBJECT, key: secretEnv[name] } } });
    else out.push({ name, value: plain[name] });
  }
  return out;
}

export interface JobInput {
  specName: string;
  step: PlannedStep;
  target: KubernetesTargetPlan;
  runId: string;
  attempt: number;
  cacheKey: string;
  /** Extra plain env for the pod (artifact store settings, ...). Never secret values. */
  extraEnv?: Record<string, string>;
  /** How long a finished Job stays for `logs` and adoption; default 7 days. */
  ttlSecondsAfterFinished?: number;
}

export function buildJob(input: JobInput): Manifest {
  const { step, target } = input;
  const name = jobName(input.specName, step.name, input.cacheKey, input.attempt);
  const labels = { ...standardLabels(input.specName, name, 'step'), 'mlpipeline.dev/step': labelValue(step.name) };
  const annotations: Record<string, string> = {
    [ANNOTATION.spec]: input.specName,
    [ANNOTATION.step]: step.name,
    [ANNOTATION.runId]: input.runId,
    [ANNOTATION.attempt]: String(input.attempt),
    [ANNOTATION.cacheKey]: input.cacheKey,
    ...(target.spot.policy !== 'never' && target.spot.maxPricePerHour !== undefined ? { [ANNOTATION.maxPrice]: String(target.spot.maxPricePerHour) } : {}),
  };
  const env = containerEnv(
    { ...target.env, ...step.env, ...input.extraEnv, PYTHONUNBUFFERED: '1', MLP_RUN_ID: input.runId, MLP_STEP: step.name, MLP_ATTEMPT: String(input.attempt), MLP_WORKDIR: step.workdir },
    // A step's plain env wins over a target secret of the same name, and the other way round.
    Object.fromEntries(Object.entries({ ...target.secretEnv, ...step.secretEnv }).filter(([k]) => !(k in step.env) || k in step.secretEnv)),
  );
  const pod = {
    metadata: { labels: { ...labels }, annotations: { ...annotations } },
    spec: {
      restartPolicy: 'Never',
      ...placement({ target, gpu: step.gpu, resources: step.resources }),
      containers: [
        {
          name: STEP_CONTAINER,
          image: target.image,
          command: ['/bin/sh', '-c', step.command],
          env,
          resources: containerResources({ target, gpu: step.gpu, resources: step.resources }),
        },
      ],
    },
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: target.namespace, labels, annotations },
    spec: {
      // Retries are the engine's (per `retry`), one Job per attempt, so each attempt has its own record and log.
      backoffLimit: 0,
      ...(step.timeoutMs ? { activeDeadlineSeconds: Math.max(1, Math.ceil(step.timeoutMs / 1000)) } : {}),
      ttlSecondsAfterFinished: input.ttlSecondsAfterFinished ?? 7 * 24 * 3600,
      template: pod,
    },
  };
}

type ContainerLike = { name?: string; env?: { name: string; value?: unknown }[] };

/** The plain env values of a Job's step container (secret references left out): what its pod was told. */
export function plainEnvOf(job: Record<string, unknown>): Record<string, string> {
  const spec = job.spec as { template?: { spec?: { containers?: ContainerLike[] } } } | undefined;
  const containers = spec?.template?.spec?.containers ?? [];
  const c = containers.find((x) => x.name === STEP_CONTAINER) ?? containers[0];
  return Object.fromEntries((c?.env ?? []).filter((e) => typeof e.value === 'string').map((e) => [e.name, e.value as string]));
}

// ---- deployments ----------------------------------------------------------------------------------------------

export interface DeploymentInput {
  specName: string;
  /** The deployment's name in the spec (`churn-api`). */
  name: string;
  target: KubernetesTargetPlan;
  /** The server command, `${model}` already resolved. */
  command: string;
  port: number;
  readiness?: string;
  metrics?: string;
  replicas: { min: number; max?: number };
  autoscale?: { metric: string; target: number };
  gpu?: { count: number; type?: string };
  resources?: StepResources;
  env?: Record<string, string>;
  secretEnv?: Record<string, string>;
  /** Model reference and the run that produced it, recorded as annotations (and in the run store). */
  model?: string;
  runId?: string;
  /** HPA API: autoscaling/v2 (Kubernetes 1.23+); 1.20-1.25 also serve autoscaling/v2beta2, which the same shape fits. */
  hpaApiVersion?: 'autoscaling/v2' | 'autoscaling/v2beta2';
}

export function deploymentObjectName(name: string): string {
  return dnsLabel(name, 50);
}

export function buildDeployment(input: DeploymentInput): Manifest[] {
  const name = deploymentObjectName(input.name);
  const ns = input.target.namespace;
  const labels: Record<string, string> = { ...standardLabels(input.specName, name, 'model-server'), 'mlpipeline.dev/deployment': labelValue(input.name) };
  const selector = { 'app.kubernetes.io/instance': labels['app.kubernetes.io/instance'], 'app.kubernetes.io/component': 'model-server' };
  const annotations: Record<string, string> = {
    [ANNOTATION.spec]: input.specName,
    [ANNOTATION.deployment]: input.name,
    ...(input.model ? { [ANNOTATION.model]: input.model } : {}),
    ...(input.runId ? { [ANNOTATION.runId]: input.runId } : {}),
  };
  const probePath = input.readiness ?? '/';
  const deployment: Manifest = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns, labels, annotations },
    spec: {
      replicas: input.replicas.min,
      revisionHistoryLimit: 10,
      selector: { matchLabels: selector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels, annotations },
        spec: {
          ...placement({ target: input.target, gpu: input.gpu, resources: input.resources }),
          containers: [
            {
              name: 'server',
              image: input.target.image,
              command: ['/bin/sh', '-c', input.command],
              ports: [{ name: 'http', containerPort: input.port, protocol: 'TCP' }],
              env: containerEnv({ ...input.target.env, ...input.env, PYTHONUNBUFFERED: '1', MLP_DEPLOYMENT: input.name, PORT: String(input.port) }, { ...input.target.secretEnv, ...input.secretEnv }),
              resources: containerResources({ target: input.target, gpu: input.gpu, resources: input.resources }),
              readinessProbe: { httpGet: { path: probePath, port: 'http' }, periodSeconds: 5, failureThreshold: 3 },
            },
          ],
        },
      },
    },
  };
  const service: Manifest = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, labels, annotations: { ...annotations, ...(input.metrics ? { 'prometheus.io/scrape': 'true', 'prometheus.io/path': input.metrics, 'prometheus.io/port': String(input.port) } : {}) } },
    spec: { type: 'ClusterIP', selector, ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] },
  };
  const out = [deployment, service];
  if (input.autoscale && (input.replicas.max ?? input.replicas.min) > input.replicas.min) out.push(buildHpa(input, name, labels));
  return out;
}

/**
 * An HPA: `cpu`/`memory` are Resource metrics (utilization percent); anything else (`rps`, ...) is a Pods
 * metric averaged per replica, which needs a custom-metrics adapter (prometheus-adapter) in the cluster.
 */
function buildHpa(input: DeploymentInput, name: string, labels: Record<string, string>): Manifest {
  const a = input.autoscale!;
  const metric =
    a.metric === 'cpu' || a.metric === 'memory'
      ? { type: 'Resource', resource: { name: a.metric, target: { type: 'Utilization', averageUtilization: Math.round(a.target) } } }
      : { type: 'Pods', pods: { metric: { name: a.metric === 'rps' ? 'http_requests_per_second' : a.metric }, target: { type: 'AverageValue', averageValue: String(a.target) } } };
  return {
    apiVersion: input.hpaApiVersion ?? 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name, namespace: input.target.namespace, labels },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      minReplicas: input.replicas.min,
      maxReplicas: input.replicas.max ?? input.replicas.min,
      metrics: [metric],
    },
  };
}
