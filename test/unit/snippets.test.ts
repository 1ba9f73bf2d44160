// The snippets in snippets/mlpipeline.code-snippets, expanded with their default placeholder values, must
// make specs that validate with no errors or warnings: a snippet that produced a broken spec would teach
// users the wrong syntax.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { analyzeSpec } from '../../server/src/core/validate';

interface Snippet {
  prefix: string | string[];
  body: string[];
  scope: string;
}
const snippets = JSON.parse(readFileSync(new URL('../../snippets/mlpipeline.code-snippets', import.meta.url), 'utf8')) as Record<string, Snippet>;

/** VS Code snippet syntax -> the text inserted when every placeholder keeps its default (first choice). */
export function expand(body: string): string {
  const values = new Map<string, string>();
  let out = '';
  let i = 0;
  const readPlaceholder = (): string => {
    // At `${`: `${N:default}`, `${N|a,b|}` or `${N}`; defaults may nest placeholders.
    i += 2;
    const num = /^\d+/.exec(body.slice(i))![0];
    i += num.length;
    let value = '';
    if (body[i] === ':') {
      i++;
      let depth = 0;
      for (;;) {
        if (body.startsWith('\\$', i)) {
          value += '$';
          i += 2;
        } else if (body.startsWith('${', i) && /^\$\{\d/.test(body.slice(i))) {
          value += readPlaceholder();
        } else if (body.startsWith('$', i) && /^\$\d/.test(body.slice(i))) {
          const n = /^\$(\d+)/.exec(body.slice(i))!;
          value += values.get(n[1]) ?? '';
          i += n[0].length;
        } else if (body[i] === '}' && depth === 0) {
          i++;
          break;
        } else {
          if (body[i] === '{') depth++;
          if (body[i] === '}') depth--;
          value += body[i++];
        }
      }
    } else if (body[i] === '|') {
      const end = body.indexOf('|}', i);
      value = body.slice(i + 1, end).split(',')[0];
      i = end + 2;
    } else i++; // `${N}`
    if (!values.has(num)) values.set(num, value);
    return values.get(num)!;
  };
  while (i < body.length) {
    if (body.startsWith('\\$', i)) {
      out += '$';
      i += 2;
    } else if (/^\$\{\d/.test(body.slice(i))) out += readPlaceholder();
    else if (/^\$\d/.test(body.slice(i))) {
      const n = /^\$(\d+)/.exec(body.slice(i))!;
      out += values.get(n[1]) ?? '';
      i += n[0].length;
    } else out += body[i++];
  }
  return out;
}

const indent = (text: string, by: string): string => text.split('\n').map((l) => (l ? by + l : l)).join('\n');

/** A minimal valid spec each section snippet is placed into, under the section it belongs to. */
function specWith(section: string, snippetText: string): string {
  const base: Record<string, string> = {
    params: 'params:\n  lr: {type: float, default: 0.01}\n',
    datasets: 'datasets:\n  data: {uri: data/d.csv}\n',
    steps: 'steps:\n  train:\n    command: python3 train.py --lr ${params.lr} --data ${datasets.data} --out ${outputs.model}\n    outputs: {model: models/m.bin}\n    metrics: metrics/train.json\n  evaluate:\n    command: python3 eval.py ${steps.train.outputs.model}\n    metrics: metrics/eval.json\n',
    sweeps: '',
    deployments: '',
    compute: '',
  };
  const sections = { ...base, [section]: `${base[section] || `${section}:\n`}${indent(snippetText, '  ')}\n` };
  return `apiVersion: mlpipeline/v1\nname: snippet-check\n${Object.values(sections).join('')}`;
}

const SECTION_OF: Record<string, string> = {
  'mlp-step': 'steps',
  'mlp-gpu-step': 'steps',
  'mlp-dataset': 'datasets',
  'mlp-param': 'params',
  'mlp-sweep': 'sweeps',
  'mlp-deployment': 'deployments',
  'mlp-k8s-target': 'compute',
};

test('the expander follows snippet syntax (defaults, choices, mirrors, escapes)', () => {
  assert.equal(expand('${1:a} $1 ${2|x,y|} \\${keep} ${3:${1}-b}$0'), 'a a x ${keep} a-b');
});

for (const [name, s] of Object.entries(snippets)) {
  const prefix = Array.isArray(s.prefix) ? s.prefix[0] : s.prefix;
  test(`snippet "${name}" (${prefix}) expands to a valid spec`, () => {
    assert.equal(s.scope, 'yaml');
    const text = expand(s.body.join('\n'));
    const spec = prefix === 'mlp-pipeline' ? text : specWith(SECTION_OF[prefix] ?? assert.fail(`no section for ${prefix}`), text);
    const problems = analyzeSpec(spec, { unusedHints: false }).problems.filter((p) => p.severity === 'error' || p.severity === 'warning');
    assert.deepEqual(problems.map((p) => `${p.code} ${p.message}`), [], `${spec}`);
  });
}
