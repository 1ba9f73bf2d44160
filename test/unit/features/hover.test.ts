import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import type { Hover, MarkupContent } from 'vscode-languageserver';
import { hover, type HoverOptions } from '../../../server/src/service/hover';
import { analyzeSpec } from '../../../server/src/core/validate';
import { cursor } from '../../helpers/cursor';
import { markAt as at, textAt } from '../../helpers/spec';

const CHURN = readFileSync('samples/churn-local/mlpipeline.yaml', 'utf8');
const K8S = readFileSync('samples/gpu-k8s-s3/mlpipeline.yaml', 'utf8');


function hoverAt(marked: string, options?: HoverOptions): { value: string; range: string } | null {
  const c = cursor(marked);
  const h: Hover | null = hover(c.analysis, c.position, options);
  if (!h) return null;
  return { value: (h.contents as MarkupContent).value, range: h.range ? textAt(c.text, h.range) : '' };
}

describe('hover: references show the resolved value', () => {
  it('a param: type, default, bounds and description', () => {
    const h = hoverAt(at(CHURN, '${params.lr}', 10))!;
    assert.equal(h.range, 'lr');
    assert.equal(h.value, '**param** `lr` · `float`\n\nLearning rate of gradient descent\n\ndefault `0.01` · min `1.0e-5` · max `1.0`');
    // The same on the `params` part of the reference and on the definition.
    assert.equal(hoverAt(at(CHURN, '${params.lr}', 3))!.range, '${params.lr}');
    assert.equal(hoverAt(at(CHURN, '  lr:     {type', 3))!.value, h.value);
  });

  it('an enum param lists its values', () => {
    const h = hoverAt(at(K8S, '${params.base_model}', 12))!;
    assert.match(h.value, /values `\[distilbert-base-uncased, roberta-base\]`/);
    assert.match(h.value, /default `distilbert-base-uncased`/);
  });

  it('a dataset: its URI and format, and the hash pinned in mlpipeline.lock when given', () => {
    const marked = at(CHURN, '${datasets.raw}', 12);
    assert.equal(hoverAt(marked)!.value, '**dataset** `raw`\n\nOne row per customer with a churned (0/1) label\n\nuri `data/churn.csv` · format `csv`\n\nNot pinned yet: `mlpipeline.lock` gets its content hash on the next run.');
    const pinned = hoverAt(marked, { lockedDataset: (n) => (n === 'raw' ? { hash: 'sha256:1f2e3d', files: 1, bytes: 2048 } : undefined) })!;
    assert.match(pinned.value, /pinned in `mlpipeline.lock`: `sha256:1f2e3d` \(1 file, 2\.0 KiB\)$/);
  });

  it('a step: description, command, needs and outputs', () => {
    const h = hoverAt(at(CHURN, 'needs: [prepare]', 9))!;
    assert.equal(h.range, 'prepare');
    assert.equal(h.value, '**step** `prepare`\n\nClean the raw table, encode categoricals and split train/test\n\n```sh\npython3 src/prepare.py --in ${datasets.raw} --out ${outputs.features}\n```\n\noutputs:\n- `features`: `data/features/`');
  });

  it('a step output, on its name and on the `outputs` part of `${steps.x.outputs.y}`', () => {
    const h = hoverAt(at(CHURN, '${steps.train.outputs.model}', 24))!;
    assert.equal(h.range, 'model');
    assert.match(h.value, /^\*\*output\*\* `train.model`\n\nwritten to `models\/model.json` by step `train`/);
    assert.equal(hoverAt(at(CHURN, '${steps.train.outputs.model}', 16))!.range, '${steps.train.outputs.model}');
  });

  it('a compute target: type, image, resources', () => {
    const h = hoverAt(at(K8S, 'compute: cpu-pool', 11))!;
    assert.equal(h.value, '**compute target** `cpu-pool` · `kubernetes`\n\nGeneral-purpose nodes for preprocessing\n\nimage `ghcr.io/acme/hf-trainer:2.3.1` · context `prod-eks` · namespace `ml-training` · resources `{cpu: 8, memory: 32Gi}`');
  });

  it('a secret: the name only, never a value', () => {
    const h = hoverAt(at(K8S, '${secrets.HF_TOKEN}', 12))!;
    assert.match(h.value, /^\*\*secret\*\* `HF_TOKEN`\n\nOnly the name is in the spec/);
  });

  it('a monitor, a deployment, a metric with its last value', () => {
    assert.match(hoverAt(at(CHURN, 'monitors.churn-api-latency', 12))!.value, /^\*\*monitor\*\* `churn-api-latency`\n\nThe local server answers quickly/);
    assert.match(hoverAt(at(CHURN, 'deployment: churn-api', 14))!.value, /^\*\*deployment\*\* `churn-api`/);
    const m = hoverAt(at(CHURN, 'gate: evaluate.auc', 16), { lastRunMetrics: () => [{ name: 'evaluate.auc', value: 0.93 }] })!;
    assert.equal(m.range, 'evaluate.auc');
    assert.equal(m.value, '**metric** `evaluate.auc`\n\nKey `auc` of `metrics/eval.json`, written by step `evaluate`.\n\nLast run: `0.93`');
    assert.match(hoverAt(at(CHURN, 'gate: evaluate.auc', 8))!.value, /^\*\*step\*\* `evaluate`/);
  });

  it('an undefined reference says so', () => {
    assert.equal(hoverAt('apiVersion: mlpipeline/v1\nname: t\nsteps:\n  a: {command: x, needs: [gh|ost]}\n')!.value, '**step** `ghost`\n\nNot defined in this spec.');
  });
});

describe('hover: schema documentation for keys and enum values', () => {
  it('a key shows its markdownDescription', () => {
    const h = hoverAt(at(CHURN, 'maxParallel: 2}', 3))!;
    assert.equal(h.range, 'maxParallel');
    assert.match(h.value, /^How many steps, or sweep trials, may run on this target at the same time/);
    assert.match(hoverAt(at(CHURN, '\nsteps:', 2))!.value, /^The pipeline's steps, by name/);
    // Annotations next to a `$ref` win: a step's `compute` key describes the field, not the name pattern.
    assert.match(hoverAt('apiVersion: mlpipeline/v1\nname: t\nsteps:\n  a:\n    command: x\n    comp|ute: local\n')!.value, /^The compute target, defined under `compute`, to run this step on/);
  });

  it('an enum value shows what it means', () => {
    assert.equal(hoverAt(at(CHURN, 'method: grid', 9))!.value, '`grid`: Every combination of the listed values (the cross product).');
  });

  it('nothing on blank space; never throws', () => {
    assert.equal(hoverAt('apiVersion: mlpipeline/v1\n|\nname: t\n'), null);
    for (const text of ['', 'x', '{{{', 'steps: [', '\u0000\uFFFD']) {
      const a = analyzeSpec(text);
      for (const p of [{ line: 0, character: 0 }, { line: 9, character: 9 }, { line: 0, character: -4 }]) assert.doesNotThrow(() => hover(a, p));
    }
  });
});
