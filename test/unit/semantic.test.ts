import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, spec, type Found } from '../helpers/spec';

const only = (found: Found[], code: string): Found[] => found.filter((f) => f.code === code);
const pairs = (found: Found[]): [string, string][] => found.filter((f) => f.severity !== 'hint').map((f) => [f.code, f.text]);

describe('semantic: undefined references, each on the exact name', () => {
  it('needs -> MLP020 with a did-you-mean', () => {
    const found = check(spec('steps:\n  prepare:\n    command: a\n  train:\n    needs: [prepair]\n    command: b\n'));
    assert.deepEqual(pairs(found), [['MLP020', 'prepair']]);
    assert.match(found[0].message, /Did you mean `prepare`\?/);
  });

  it('compute -> MLP021 in steps and deployments', () => {
    const found = check(spec('compute:\n  local: {type: local}\nsteps:\n  a:\n    command: x\n    compute: gpu-cluster\n    outputs: {m: m.pkl}\ndeployments:\n  d:\n    model: ${steps.a.outputs.m}\n    compute: lcal\n    runtime: {command: serve}\n'));
    assert.deepEqual(pairs(found), [['MLP021', 'gpu-cluster'], ['MLP021', 'lcal']]);
  });

  it('${params.x}, ${datasets.x}, ${secrets.X} -> MLP022/23/25 on the name inside the braces', () => {
    const found = check(spec('params:\n  lr: {type: float, default: 0.1}\ndatasets:\n  raw: {uri: d.csv}\nsecrets: [TOKEN]\nsteps:\n  a:\n    command: run ${params.lrr} ${datasets.rawx} ${params.lr} ${datasets.raw}\n    env: {T: "${secrets.TOKN}", U: "${secrets.TOKEN}"}\n'));
    assert.deepEqual(pairs(found), [['MLP022', 'lrr'], ['MLP023', 'rawx'], ['MLP025', 'TOKN']]);
  });

  it('${steps.x.outputs.y} -> MLP020 for the step, MLP024 for the output, never both', () => {
    const found = check(spec('steps:\n  a:\n    command: x\n    outputs: {model: m.pkl}\n  b:\n    command: use ${steps.a.outputs.modle} ${steps.zz.outputs.model}\n'));
    assert.deepEqual(pairs(found), [['MLP024', 'modle'], ['MLP020', 'zz']]);
    assert.match(found[0].message, /Did you mean `model`\?/);
  });

  it('${outputs.y} refers to the own step; unknown -> MLP024', () => {
    const found = check(spec('steps:\n  a:\n    command: x --out ${outputs.model} --bad ${outputs.nope}\n    outputs: {model: m.pkl}\n'));
    assert.deepEqual(pairs(found), [['MLP024', 'nope']]);
  });

  it('deployment model, monitor deployment, rollbackOn and alert monitors', () => {
    const found = check(
      spec(
        'steps:\n  a:\n    command: x\n    outputs: {m: m.pkl}\ndeployments:\n  api:\n    model: ${steps.a.outputs.mm}\n    runtime: {command: "serve ${model}"}\n    rollout: {strategy: canary, steps: [{weight: 50, hold: 1m}], rollbackOn: [monitors.lat]}\nmonitors:\n  latency:\n    deployment: apx\n    slo: {p95LatencyMs: 100}\nalerts:\n  - when: [monitors.latencyy]\n',
      ),
    );
    assert.deepEqual(pairs(found), [['MLP024', 'mm'], ['MLP027', 'lat'], ['MLP026', 'apx'], ['MLP027', 'latencyy']]);
  });

  it('malformed and out-of-place references -> MLP028/MLP029', () => {
    const found = check(spec('steps:\n  a:\n    command: x ${foo.bar} ${steps.a} ${params} ${model} ${ params.x }\n'));
    assert.deepEqual(pairs(found), [
      ['MLP028', '${foo.bar}'],
      ['MLP028', '${steps.a}'],
      ['MLP028', '${params}'],
      ['MLP029', '${model}'],
      ['MLP028', '${ params.x }'],
    ]);
  });

  it('`$${...}` is an escaped literal and `${HOME}` is left to the shell', () => {
    assert.deepEqual(pairs(check(spec('steps:\n  a:\n    command: echo $${not.a.ref} ${HOME} ${CUDA_VISIBLE_DEVICES}\n'))), []);
  });

  it("the shell's parameter expansions (`${#X}`, `${X:-d}`, `${X%.csv}`, `${1}`) are left to the shell; near misses of ours are not", () => {
    assert.deepEqual(pairs(check(spec('steps:\n  a:\n    command: echo ${#HOME} ${HOME:-/root} ${F%.csv} ${!REF} ${1} ${@} ${X/a/b} ${X:+set}\n'))), []);
    const found = pairs(check(spec('steps:\n  a:\n    command: echo ${params.lr:-3} ${paramz.lr} ${}\n')));
    assert.deepEqual(found.map(([code]) => code), ['MLP028', 'MLP028', 'MLP028']);
  });

  it('finds references in block scalars and quoted strings at their exact columns', () => {
    const text = spec('steps:\n  a:\n    command: >-\n      python t.py\n      --lr ${params.nope}\n  b:\n    command: "x ${params.other}"\n');
    assert.deepEqual(pairs(check(text)), [['MLP022', 'nope'], ['MLP022', 'other']]);
  });
});

describe('semantic: the dependency graph', () => {
  it('reports a cycle once, with its path, on the edge that closes it', () => {
    const found = check(spec('steps:\n  a:\n    command: x\n    needs: [c]\n  b:\n    command: x\n    needs: [a]\n  c:\n    command: x\n    needs: [b]\n'));
    assert.deepEqual(pairs(found), [['MLP030', 'c']]);
    assert.match(found[0].message, /a → c → b → a/);
  });

  it('counts output references as dependencies', () => {
    const found = check(spec('steps:\n  a:\n    command: x ${steps.b.outputs.o}\n    outputs: {o: o}\n  b:\n    command: y ${steps.a.outputs.o}\n    outputs: {o: p}\n'));
    assert.equal(only(found, 'MLP030').length, 1);
    assert.match(only(found, 'MLP030')[0].message, /a → b → a/);
  });

  it('reports a step that needs itself', () => {
    const found = check(spec('steps:\n  a:\n    command: x\n    needs: [a]\n'));
    assert.deepEqual(pairs(found), [['MLP030', 'a']]);
  });

  it('handles a 5,000-step chain without overflowing the stack', () => {
    const steps = Array.from({ length: 5000 }, (_, i) => `  s${i}:\n    command: x\n${i ? `    needs: [s${i - 1}]\n` : '    needs: [s4999]\n'}`).join('');
    const found = check(spec('steps:\n' + steps));
    assert.equal(only(found, 'MLP030').length, 1);
  });

  it('rejects two default compute targets', () => {
    const found = check(spec('compute:\n  a: {type: local, default: true}\n  b: {type: local, default: true}\nsteps:\n  s:\n    command: x\n'));
    assert.deepEqual(pairs(found), [['MLP032', 'default']]);
  });
});

describe('semantic: resources, durations and types', () => {
  it('checks GPU, memory, CPU and durations with specific codes', () => {
    const found = check(spec('compute:\n  k:\n    type: kubernetes\n    image: img\n    resources: {gpu: "A100:x", memory: 64GB, cpu: lots}\nsteps:\n  a:\n    command: x\n    timeout: 6 hours\n'));
    assert.deepEqual(pairs(found), [['MLP040', '"A100:x"'], ['MLP041', '64GB'], ['MLP042', 'lots'], ['MLP043', '6 hours']]);
  });

  it('accepts A100:4, counts, quantities and compound durations', () => {
    const found = check(spec('compute:\n  k:\n    type: kubernetes\n    image: img\n    resources: {gpu: "A100:4", memory: 64Gi, cpu: 500m}\n  k2:\n    type: kubernetes\n    image: img\n    resources: {gpu: 2, memory: 1G, cpu: 4}\nsteps:\n  a:\n    command: x\n    timeout: 1h30m\n'));
    assert.deepEqual(pairs(found), []);
  });

  it('warns on amounts that parse but are surely wrong', () => {
    const found = check(spec('compute:\n  k:\n    type: kubernetes\n    image: img\n    resources: {gpu: "A1000:2", memory: "64"}\nsteps:\n  a:\n    command: x\n'));
    assert.deepEqual(pairs(found), [['MLP044', '"A1000:2"'], ['MLP044', '"64"']]);
    assert.match(found[0].message, /Did you mean `A100`\?/);
    assert.match(found[1].message, /64Gi/);
  });

  it('checks param defaults and bounds (MLP050)', () => {
    const found = check(spec('params:\n  lr: {type: float, default: 2, min: 0, max: 1}\n  n: {type: int, default: 1.5}\n  m: {type: enum, values: [a, b], default: c}\n  f: {type: bool, default: "yes"}\nsteps:\n  a:\n    command: ${params.lr} ${params.n} ${params.m} ${params.f}\n'));
    // Types are the schema's (MLP012); bounds and enum values are the semantic pass's (MLP050).
    assert.deepEqual(pairs(found), [['MLP050', '2'], ['MLP012', '1.5'], ['MLP050', 'c'], ['MLP012', '"yes"']]);
  });

  it('checks sweep values against param types and bounds (MLP051), and sweep params exist', () => {
    const found = check(spec('params:\n  lr: {type: float, default: 0.1, max: 1}\n  n: {type: int, default: 1}\nsteps:\n  a:\n    command: ${params.lr} ${params.n}\nsweeps:\n  s:\n    step: a\n    parameters: {lr: [0.1, 5], n: [1, 2.5], nn: [1]}\n'));
    assert.deepEqual(pairs(found), [['MLP051', '5'], ['MLP051', '2.5'], ['MLP022', 'nn']]);
  });

  it('warns when a secret is put on a command line (MLP033)', () => {
    const found = check(spec('secrets: [TOKEN]\nsteps:\n  a:\n    command: login ${secrets.TOKEN}\n'));
    assert.deepEqual(pairs(found), [['MLP033', '${secrets.TOKEN}']]);
  });

  it('checks gate expressions and that metrics exist (MLP052, MLP031)', () => {
    const found = check(spec('steps:\n  train:\n    command: x\n    outputs: {m: m}\n  evaluate:\n    command: y\n    metrics: eval.json\ndeployments:\n  d:\n    model: ${steps.train.outputs.m}\n    gate: evaluate.auc >= 0.8 && train.loss < 1\n    runtime: {command: s}\n  e:\n    model: ${steps.train.outputs.m}\n    gate: evaluate.auc >> 1\n    runtime: {command: s}\n'));
    assert.deepEqual(pairs(found), [['MLP031', 'train.loss'], ['MLP052', 'evaluate.auc >> 1']]);
  });
});

describe('semantic: usage hints', () => {
  it('marks unused params, datasets and secrets as unnecessary hints on their names', () => {
    const found = check(spec('params:\n  used: {type: int, default: 1}\n  idle: {type: int, default: 1}\ndatasets:\n  raw: {uri: a.csv}\nsecrets: [UNUSED_TOKEN]\nsteps:\n  a:\n    command: x ${params.used}\n'));
    assert.deepEqual(found.map((f) => [f.code, f.severity, f.text]), [
      ['MLP060', 'hint', 'idle'],
      ['MLP061', 'hint', 'raw'],
      ['MLP062', 'hint', 'UNUSED_TOKEN'],
    ]);
  });

  it('counts a sweep parameter as a use', () => {
    const found = check(spec('params:\n  lr: {type: float, default: 0.1}\nsteps:\n  a:\n    command: x\nsweeps:\n  s: {step: a, parameters: {lr: [0.1]}}\n'));
    assert.deepEqual(found, []);
  });

  it('can leave hints out', () => {
    const found = check(spec('params:\n  idle: {type: int, default: 1}\nsteps:\n  a:\n    command: x\n'), { unusedHints: false });
    assert.deepEqual(found, []);
  });
});

describe('schema problems on exact ranges', () => {
  it('missing required -> MLP010 on the parent key; unknown -> MLP011 on the key', () => {
    const found = check(spec('steps:\n  train:\n    comand: x\n'));
    assert.deepEqual(pairs(found), [['MLP010', 'train'], ['MLP011', 'comand']]);
    assert.match(found[1].message, /Did you mean `command`\?/);
  });

  it('missing top-level keys blame the first key', () => {
    const found = check('name: t\nsteps:\n  a:\n    command: x\n');
    assert.deepEqual(pairs(found), [['MLP010', 'name']]);
    assert.match(found[0].message, /apiVersion/);
  });

  it('wrong type -> MLP012 on the value; enum -> MLP013 with the allowed values', () => {
    const found = check(spec('steps:\n  a:\n    command: x\n    retry: {max: two, on: [preempt]}\n'));
    assert.deepEqual(pairs(found), [['MLP012', 'two'], ['MLP013', 'preempt']]);
    assert.match(found[1].message, /`retry.on`/);
    assert.match(found[1].message, /Did you mean `preempted`\?/);
  });

  it('bad names -> MLP016 on the key', () => {
    const found = check(spec('steps:\n  "bad step":\n    command: x\n'));
    assert.deepEqual(pairs(found), [['MLP016', '"bad step"']]);
  });

  it('keys that do not apply to the compute type -> MLP053', () => {
    const found = check(spec('compute:\n  l: {type: local, image: x}\nsteps:\n  a:\n    command: x\n'));
    assert.deepEqual(pairs(found), [['MLP053', 'image']]);
  });

  it('out of range -> MLP015; a value of either of two types collapses to one message', () => {
    const found = check(spec('steps:\n  a:\n    command: x\n    outputs: {m: m}\ndeployments:\n  d:\n    model: ${steps.a.outputs.m}\n    runtime: {command: s, port: 70000}\n    replicas: many\n'));
    assert.deepEqual(pairs(found), [['MLP015', '70000'], ['MLP012', 'many']]);
    assert.match(found[1].message, /integer or object/);
  });
});

describe('semantic: the embedded local target', () => {
  it('accepts `compute: local` without a `compute:` section, and suggests it for typos', () => {
    assert.deepEqual(pairs(check(spec('steps:\n  a:\n    command: x\n    compute: local\n'))), []);
    const found = check(spec('steps:\n  a:\n    command: x\n    compute: locl\n'));
    assert.deepEqual(pairs(found), [['MLP021', 'locl']]);
    assert.match(found[0].message, /Did you mean `local`\?/);
  });
});
