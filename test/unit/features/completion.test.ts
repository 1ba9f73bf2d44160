import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import type { CompletionItem, TextEdit } from 'vscode-languageserver';
import { completion, snippetToPlain, type CompletionOptions } from '../../../server/src/service/completion';
import { analyzeSpec } from '../../../server/src/core/validate';
import { applyEdits, cursor } from '../../helpers/cursor';

const CHURN = readFileSync('samples/churn-local/mlpipeline.yaml', 'utf8');

function complete(marked: string, options?: CompletionOptions): CompletionItem[] {
  const c = cursor(marked);
  return completion(c.analysis, c.position, options).items;
}
/** Labels in the order an editor shows them: by sortText, then label. */
const labels = (items: CompletionItem[]): string[] =>
  items
    .map((i, n) => ({ i, n }))
    .sort((a, b) => (a.i.sortText ?? a.i.label).localeCompare(b.i.sortText ?? b.i.label) || a.n - b.n)
    .map(({ i }) => i.label);
const item = (items: CompletionItem[], label: string): CompletionItem => {
  const found = items.find((i) => i.label === label);
  assert.ok(found, `no item ${label} in ${labels(items).join(', ')}`);
  return found;
};
/** The document after accepting an item (snippets with their placeholders filled by defaults). */
function accept(marked: string, label: string, options?: CompletionOptions): string {
  const c = cursor(marked);
  const it = item(completion(c.analysis, c.position, options).items, label);
  const edit = it.textEdit as TextEdit;
  return applyEdits(c.text, [{ range: edit.range, newText: it.insertTextFormat === 2 ? snippetToPlain(edit.newText) : edit.newText }]);
}
/** The churn sample with one line replaced (the line containing `find`), the `|` marking the cursor. */
const churn = (find: string, replace: string): string => {
  assert.ok(CHURN.includes(find), find);
  return CHURN.replace(find, () => replace);
};

describe('completion: references in context', () => {
  it('step names in `needs`, leaving out the step itself and those already listed', () => {
    assert.deepEqual(labels(complete(churn('needs: [train]', 'needs: [|]'))), ['prepare', 'train']);
    assert.deepEqual(labels(complete(churn('needs: [train]', 'needs: [prepare, |]'))), ['train']);
    assert.equal(accept(churn('needs: [train]', 'needs: [prepare, tr|]'), 'train'), churn('needs: [train]', 'needs: [prepare, train]').replace('|', ''));
    // In a block list, and as `[name]` right after `needs: `.
    const block = 'apiVersion: mlpipeline/v1\nname: t\nsteps:\n  a: {command: x}\n  b: {command: y}\n  c:\n    command: z\n    needs:\n      - a\n      - |\n';
    assert.deepEqual(labels(complete(block)), ['b']);
    assert.equal(accept(churn('needs: [train]', 'needs: |'), 'train'), churn('needs: [train]', 'needs: [train]').replace('|', ''));
    assert.equal(accept(churn('needs: [train]', 'needs: tr|'), 'train'), churn('needs: [train]', 'needs: [train]').replace('|', ''));
  });

  it('items carry documentation: the step description and command', () => {
    const it = item(complete(churn('needs: [train]', 'needs: [|]')), 'prepare');
    assert.equal(it.detail, 'Clean the raw table, encode categoricals and split train/test');
    assert.match((it.documentation as { value: string }).value, /python3 src\/prepare\.py/);
  });

  it('compute targets in `compute`', () => {
    assert.deepEqual(labels(complete(churn('    compute: local\n', '    compute: |\n'))), ['local']);
    const spec = 'apiVersion: mlpipeline/v1\nname: t\ncompute:\n  local: {type: local}\n  gpu-pool: {type: kubernetes, image: x}\nsteps:\n  a:\n    command: x\n    compute: g|\n';
    assert.equal(accept(spec, 'gpu-pool'), spec.replace('compute: g|', 'compute: gpu-pool'));
  });

  it('deployments in a monitor, monitors in `rollbackOn` and alert `when`, steps in a sweep', () => {
    assert.deepEqual(labels(complete(churn('    deployment: churn-api\n', '    deployment: |\n'))), ['churn-api']);
    assert.deepEqual(labels(complete(churn('when: [monitors.churn-api-latency]', 'when: [|]'))), ['monitors.churn-api-latency']);
    assert.deepEqual(labels(complete(churn('when: [monitors.churn-api-latency]', 'when: [monitors.churn-api-latency, |]'))), []);
    const rollback = 'apiVersion: mlpipeline/v1\nname: t\ndeployments:\n  api:\n    model: m.pkl\n    runtime: {command: x}\n    rollout:\n      strategy: canary\n      steps: [{weight: 100}]\n      rollbackOn: [monitors.|]\nmonitors:\n  slo: {deployment: api}\n  drift: {deployment: api}\n';
    assert.deepEqual(labels(complete(rollback)), ['monitors.slo', 'monitors.drift']);
    assert.equal(accept(rollback, 'monitors.drift'), rollback.replace('[monitors.|]', '[monitors.drift]'));
    assert.deepEqual(labels(complete(churn('    step: train\n', '    step: |\n'))), ['prepare', 'train', 'evaluate']);
  });

  it('param names as keys of sweep `parameters`, without those already swept', () => {
    const marked = churn('      lr: [0.001', '      |\n      lr: [0.001');
    assert.deepEqual(labels(complete(marked)), ['epochs', 'l2']);
    assert.equal(accept(marked, 'epochs'), churn('      lr: [0.001', '      epochs: []\n      lr: [0.001').replace('|', ''));
  });

  it('metric names in `objective.metric` and `gate`: the last run\'s metrics and `step.` for steps that declare metrics', () => {
    const metrics = { lastRunMetrics: () => [{ name: 'evaluate.auc', value: 0.91 }, { name: 'evaluate.f1', value: 0.7 }] };
    const objective = complete(churn('metric: evaluate.auc', 'metric: ev|'), metrics);
    assert.deepEqual(labels(objective), ['evaluate.auc', 'evaluate.f1', 'train.', 'evaluate.']);
    assert.equal(item(objective, 'evaluate.auc').detail, 'last run: 0.91');
    assert.equal(accept(churn('metric: evaluate.auc', 'metric: ev|'), 'evaluate.f1', metrics), churn('metric: evaluate.auc', 'metric: evaluate.f1').replace('|', ''));
    const gate = churn('gate: evaluate.auc >= 0.7', 'gate: evaluate.auc >= 0.7 && evaluate.|');
    assert.equal(accept(gate, 'evaluate.f1', metrics), churn('gate: evaluate.auc >= 0.7', 'gate: evaluate.auc >= 0.7 && evaluate.f1').replace('|', ''));
    // Without a provider: the steps that declare a metrics file.
    assert.deepEqual(labels(complete(churn('metric: evaluate.auc', 'metric: |'))), ['train.', 'evaluate.']);
  });

  it('GPU types for `resources.gpu`', () => {
    const items = complete('apiVersion: mlpipeline/v1\nname: t\nsteps:\n  a:\n    command: x\n    resources: {gpu: |}\n');
    assert.ok(labels(items).includes('A100') && labels(items).includes('H100') && labels(items).includes('L4'));
    assert.match((item(items, 'H100').documentation as { value: string }).value, /H100:N/);
  });
});

describe('completion: `${...}` references', () => {
  const cmd = (inner: string): string => churn('python3 src/evaluate.py --model', `python3 src/evaluate.py ${inner} --model`);

  it('after `${`: the namespaces for the place, then the common references in full', () => {
    const items = complete(cmd('${|}'));
    assert.deepEqual(labels(items).slice(0, 4), ['params', 'datasets', 'steps', 'outputs']);
    assert.ok(labels(items).includes('params.lr') && labels(items).includes('datasets.raw'));
    assert.ok(!labels(items).includes('secrets'), 'secrets only in env');
    assert.ok(!labels(items).includes('model'), '${model} only in a deployment runtime');
    assert.equal(item(items, 'params.lr').detail, 'float = 0.01');
    const runtime = complete(churn('--model ${model} --port 8080', '--model ${|} --port 8080'));
    assert.ok(labels(runtime).includes('model') && !labels(runtime).includes('outputs'));
    const env = complete('apiVersion: mlpipeline/v1\nname: t\nsecrets: [HF_TOKEN]\nsteps:\n  a:\n    command: x\n    env:\n      T: "${|}"\n');
    assert.ok(labels(env).includes('secrets') && labels(env).includes('secrets.HF_TOKEN'));
  });

  it('names by namespace, with the closing brace added when missing', () => {
    assert.deepEqual(labels(complete(cmd('${params.|}'))), ['lr', 'epochs', 'l2']);
    assert.equal(accept(cmd('${params.e|}'), 'epochs'), cmd('${params.epochs}').replace('|', ''));
    assert.equal(accept(cmd('${params.e|'), 'epochs'), cmd('${params.epochs}').replace('|', ''));
    assert.equal(accept(cmd('${para|'), 'params.lr'), cmd('${params.lr}').replace('|', ''));
    assert.deepEqual(labels(complete(cmd('${datasets.|}'))), ['raw']);
  });

  it('`${steps.<step>.outputs.<output>}` segment by segment', () => {
    assert.deepEqual(labels(complete(cmd('${steps.|}'))), ['prepare', 'train', 'prepare.outputs.features', 'train.outputs.model']);
    assert.equal(accept(cmd('${steps.tr|}'), 'train'), cmd('${steps.train.outputs.}').replace('|', ''));
    assert.deepEqual(labels(complete(cmd('${steps.train.|}'))), ['outputs']);
    assert.deepEqual(labels(complete(cmd('${steps.train.outputs.|}'))), ['model']);
    assert.equal(accept(cmd('${steps.prepare.outputs.|}'), 'features'), cmd('${steps.prepare.outputs.features}').replace('|', ''));
    // `${outputs.` inside a step: its own outputs.
    assert.deepEqual(labels(complete(churn('--out ${outputs.features}', '--out ${outputs.|}'))), ['features']);
  });

  it('not after the escaped `$${`, nor in comments', () => {
    assert.deepEqual(complete(cmd('$${|}')), []);
    assert.deepEqual(complete('apiVersion: mlpipeline/v1\nname: t\n# ${|\nsteps: {a: {command: x}}\n'), []);
  });
});

describe('completion: keys and values from the schema', () => {
  it('keys of the mapping at the cursor, without those present, required first, with docs', () => {
    const items = complete(churn('    metrics: metrics/eval.json\n', '    metrics: metrics/eval.json\n    |\n'));
    const got = labels(items);
    for (const present of ['description', 'needs', 'command', 'inputs', 'metrics']) assert.ok(!got.includes(present), present);
    for (const k of ['outputs', 'env', 'compute', 'resources', 'retry', 'timeout', 'cache']) assert.ok(got.includes(k), k);
    assert.match((item(items, 'retry').documentation as { value: string }).value, /Retry failed attempts/);
    const root = complete('|');
    assert.deepEqual(labels(root).slice(0, 3), ['apiVersion', 'name', 'steps'], 'required keys first');
  });

  it('snippets: enums as choices, defaults, nested required keys, block lists', () => {
    const base = churn('    metrics: metrics/eval.json\n', '    metrics: metrics/eval.json\n    |\n');
    assert.equal((item(complete(base), 'cache').textEdit as TextEdit).newText, 'cache: ${1|true,false|}');
    assert.equal((item(complete(base), 'retry').textEdit as TextEdit).newText, 'retry:\n      max: ${1:0}');
    assert.equal(accept(base, 'timeout'), churn('    metrics: metrics/eval.json\n', '    metrics: metrics/eval.json\n    timeout: 30m\n').replace('|', ''));
    assert.equal(item(complete(base), 'cache').insertTextFormat, 2);
    // Plain text for clients without snippet support.
    const plain = item(complete(base, { snippets: false }), 'cache');
    assert.equal(plain.insertTextFormat, 1);
    assert.equal((plain.textEdit as TextEdit).newText, 'cache: true');
  });

  it('keys allowed by the compute target type (local vs kubernetes)', () => {
    const local = labels(complete(churn('local: {type: local, default: true, maxParallel: 2}', 'local: {type: local, default: true, maxParallel: 2, |}')));
    assert.ok(local.includes('gpus') && !local.includes('image') && !local.includes('namespace'));
    const k8s = labels(complete('apiVersion: mlpipeline/v1\nname: t\ncompute:\n  c:\n    type: kubernetes\n    |\n'));
    assert.ok(k8s.includes('image') && k8s.includes('namespace') && !k8s.includes('gpus'));
  });

  it('keys of a new list item (`- |` under alerts)', () => {
    assert.deepEqual(labels(complete(churn("    description: The churn API is slow or failing; check the server's output\n", '    description: x\n  - |\n'))), ['when', 'notify', 'description']);
    assert.deepEqual(labels(complete(churn('    notify: [vscode, log]\n', '    notify: [vscode, log]\n    |\n'))), []);
  });

  it('enum values with their descriptions; booleans; defaults and examples', () => {
    const formats = complete(churn('format: csv', 'format: |'));
    assert.deepEqual(labels(formats), ['csv', 'parquet', 'json', 'jsonl', 'images', 'other']);
    assert.match((item(formats, 'parquet').documentation as { value: string }).value, /Apache Parquet/);
    assert.deepEqual(labels(complete(churn('method: grid', 'method: |'))), ['grid', 'random']);
    assert.equal(item(complete(churn('method: grid', 'method: |')), 'grid').detail, 'default');
    assert.deepEqual(labels(complete('apiVersion: mlpipeline/v1\nname: t\nsteps:\n  a:\n    command: x\n    cache: |\n')), ['true', 'false']);
    assert.deepEqual(labels(complete('apiVersion: mlpipeline/v1\nname: t\nsteps:\n  a:\n    command: x\n    timeout: |\n')), ['30m', '6h']);
    assert.deepEqual(labels(complete('apiVersion: mlpipeline/v1\nname: t\nparams:\n  p: {type: |}\n')), ['int', 'float', 'string', 'bool', 'enum']);
    // Nothing after other words of a free-text value.
    assert.deepEqual(complete(churn('description: Learning rate on a log grid', 'description: Learning rate |')), []);
  });

  it('new entries under `steps:` from the schema\'s snippets', () => {
    const marked = churn('\nsteps:\n', '\nsteps:\n  |\n');
    const it = item(complete(marked), 'New step');
    assert.equal((it.textEdit as TextEdit).newText, '${1:train}:\n    needs: [${2:prepare}]\n    command: ${3:python src/${1:train}.py}\n    inputs: [${4:src/${1:train}.py}]\n    outputs:\n      ${5:model}: ${6:models/model.pkl}');
    assert.match(accept(marked, 'New step'), /\nsteps:\n {2}train:\n {4}needs: \[prepare\]\n {4}command: python src\/train\.py\n/);
    // An inline param from the param snippets.
    const param = accept('apiVersion: mlpipeline/v1\nname: t\nparams:\n  lr: |\n', 'float param');
    assert.equal(param, 'apiVersion: mlpipeline/v1\nname: t\nparams:\n  lr: {type: float, default: 0.001, min: 1.0e-5, max: 0.1}\n');
    assert.deepEqual(analyzeSpec(param + 'steps: {a: {command: "x ${params.lr}"}}\n').problems, []);
  });
});

describe('completion: mid-edit documents', () => {
  it('`needs: [` with the YAML broken still offers the steps', () => {
    const text = 'apiVersion: mlpipeline/v1\nname: t\nsteps:\n  prepare:\n    command: a\n  train:\n    needs: [|\n    command: b\n';
    assert.ok(cursor(text).analysis.problems.some((p) => p.code === 'MLP001'), 'the YAML is broken');
    assert.deepEqual(labels(complete(text)), ['prepare']);
  });

  it('`command: python x ${ste` offers steps; `${steps.prepare.outputs.` its outputs', () => {
    const text = 'apiVersion: mlpipeline/v1\nname: t\nsteps:\n  prepare:\n    command: a\n    outputs: {f: data/f/}\n  train:\n    needs: [\n    command: python x ${ste|\n';
    assert.ok(labels(complete(text)).includes('steps'));
    assert.deepEqual(labels(complete(text.replace('${ste|', '${steps.prepare.outputs.|'))), ['f']);
  });

  it('CRLF documents: the same context, and multi-line snippets with CRLF', () => {
    const crlf = churn('needs: [train]', 'needs: [|]').replace(/\n/g, '\r\n');
    assert.deepEqual(labels(complete(crlf)), ['prepare', 'train']);
    const keys = complete('apiVersion: mlpipeline/v1\r\nname: t\r\nsteps:\r\n  a:\r\n    command: x\r\n    |\r\n');
    assert.equal((item(keys, 'retry').textEdit as TextEdit).newText, 'retry:\r\n      max: ${1:0}');
  });

  it('never throws: positions past the end, empty and hostile documents', () => {
    for (const text of ['', '\n\n', ':::', '{[', '- - -', 'steps:\n  a: {command: "${', '\t\tsteps:', 'a: &x [*x]', '\uFFFD\u0000']) {
      const a = analyzeSpec(text);
      for (const pos of [{ line: 0, character: 0 }, { line: 0, character: 99 }, { line: 50, character: 3 }, { line: -1, character: -1 }]) {
        assert.doesNotThrow(() => completion(a, pos));
      }
    }
  });
});
