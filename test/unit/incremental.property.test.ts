import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import { mulberry32 } from '../../client/src/runtime/random';
import { parseSimpleEntry } from '../../server/src/core/fast-yaml';
import { IncrementalAnalyzer } from '../../server/src/core/incremental';
import { analyzeSpec, type SpecAnalysis } from '../../server/src/core/validate';

/**
 * The incremental analysis must equal a full `analyzeSpec` after every edit: same problems (codes,
 * messages, ranges, order), and the same YAML tree, plain data and model, since the language features
 * read those. Seeded random edit sequences; a failure prints the seed and the edit that broke it.
 */
const ROOT = resolve(__dirname, '../..');

function samples(): { name: string; text: string }[] {
  const out: { name: string; text: string }[] = [];
  for (const dir of ['churn-local', 'gpu-k8s-s3', 'sweep-deploy']) out.push({ name: dir, text: readFileSync(resolve(ROOT, 'samples', dir, 'mlpipeline.yaml'), 'utf8') });
  for (const f of readdirSync(resolve(ROOT, 'samples/invalid')).filter((f) => f.endsWith('.yaml'))) out.push({ name: `invalid/${f}`, text: readFileSync(resolve(ROOT, 'samples/invalid', f), 'utf8') });
  return out;
}

/** A spec like the benchmark's, with a few variations (comments, block sequences, blank lines). */
function generated(steps: number): string {
  const lines = ['# generated', 'apiVersion: mlpipeline/v1', 'name: gen', 'params:', '  lr: {type: float, default: 0.01, min: 0.00001, max: 1}', '  epochs:', '    type: int', '    default: 10', 'datasets:', '  raw: {uri: data/raw.csv}', 'secrets:', '- HF_TOKEN', 'compute:', '  local: {type: local, default: true}', '', 'steps:'];
  for (let i = 0; i < steps; i++) {
    lines.push(`  s${i}:`);
    lines.push(`    command: python train.py --lr \${params.lr} --in ${i ? `\${steps.s${i - 1}.outputs.model}` : '${datasets.raw}'} --out \${outputs.model}`);
    if (i % 3 === 1) lines.push(`    needs:`, `      - s${i - 1}`);
    else if (i) lines.push(`    needs: [s${i - 1}]`);
    lines.push(`    outputs: {model: models/m${i}.pkl}`);
    if (i % 4 === 0) lines.push('    # a comment', '');
    if (i % 5 === 0) lines.push('    env: {TOKEN: "${secrets.HF_TOKEN}"}');
    lines.push('    timeout: 1h');
  }
  return lines.join('\n') + '\n';
}

type Edit = { name: string; apply(text: string): string };

function edits(random: () => number): Edit[] {
  const int = (n: number): number => Math.floor(random() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const lineStarts = (t: string): number[] => [0, ...[...t.matchAll(/\n/g)].map((m) => m.index! + 1).filter((i) => i < t.length)];
  const splice = (t: string, at: number, del: number, ins: string): string => t.slice(0, at) + ins + t.slice(at + del);
  return [
    { name: 'insert a character', apply: (t) => splice(t, int(t.length + 1), 0, pick(['x', ' ', ':', '\n', '-', '{', '}', '[', ']', '"', "'", '#', '$', '.', ',', '1', '|', '>'])) },
    { name: 'delete characters', apply: (t) => splice(t, int(t.length), 1 + int(4), '') },
    { name: 'type in a command', apply: (t) => { const i = t.indexOf('command: ', int(t.length)); return i < 0 ? t : splice(t, i + 9 + int(5), 0, pick(['a', ' ', '${', '}', 'params.lr', '${steps.s1.outputs.model}', '${nope}'])); } },
    {
      name: 'duplicate a step',
      apply: (t) => {
        const starts = [...t.matchAll(/^ {2}[A-Za-z_][\w-]*:/gm)].map((m) => m.index!);
        if (starts.length < 2) return t;
        const k = int(starts.length - 1);
        return splice(t, starts[k + 1], 0, t.slice(starts[k], starts[k + 1]));
      },
    },
    { name: 'rename a reference', apply: (t) => { const m = [...t.matchAll(/\bs(\d+)\b/g)]; if (!m.length) return t; const x = pick(m); return splice(t, x.index!, x[0].length, pick(['s9999', 'sX', x[0] + 'b', 's0'])); } },
    { name: 'break indentation', apply: (t) => { const s = pick(lineStarts(t)); return random() < 0.5 ? splice(t, s, 0, pick([' ', '  ', '   '])) : t.charCodeAt(s) === 32 ? splice(t, s, 1, '') : t; } },
    { name: 'insert a flow map', apply: (t) => { const s = pick(lineStarts(t)); return splice(t, s, 0, pick(['  f: {a: 1, b: [x, y]}\n', '    env: {A: "${params.lr}",\n  B: 2}\n', 'extra: {k: v}\n'])); } },
    { name: 'insert an anchor or alias', apply: (t) => { const i = t.indexOf(': ', int(t.length)); return i < 0 ? t : splice(t, i + 2, 0, pick(['&a ', '*a ', '!!str ', '<<: *a '])); } },
    { name: 'insert a block scalar', apply: (t) => { const s = pick(lineStarts(t)); return splice(t, s, 0, pick(['    description: |\n      text\n  more: x\n', '  note: >\n   folded\n', 'long: "two\n  lines"\n'])); } },
    { name: 'insert odd structure', apply: (t) => { const s = pick(lineStarts(t)); return splice(t, s, 0, pick(['---\n', '\t', '- item\n', '  - item\n', ' s: 1\n', '? k\n: v\n', '# c\n', '\n', 'steps:\n', '  s1:\n    command: dup\n', 'true:\n  a: 1\n'])); } },
  ];
}

/** First difference between two YAML trees, by kind, ranges, scalar values and types and flow style. */
function treeDiff(a: unknown, b: unknown, path = '$'): string | undefined {
  const kind = (n: unknown): string => (n === null || n === undefined ? 'none' : isPair(n) ? 'pair' : isMap(n) ? 'map' : isSeq(n) ? 'seq' : isScalar(n) ? 'scalar' : 'other');
  if (kind(a) !== kind(b)) return `${path}: ${kind(a)} vs ${kind(b)}`;
  if (isPair(a) && isPair(b)) return treeDiff(a.key, b.key, `${path}.key`) ?? treeDiff(a.value, b.value, `${path}.value`);
  if (a === null || a === undefined) return undefined;
  const na = a as { range?: number[] };
  const nb = b as { range?: number[] };
  if (JSON.stringify(na.range) !== JSON.stringify(nb.range)) return `${path}: range ${JSON.stringify(na.range)} vs ${JSON.stringify(nb.range)}`;
  if (isScalar(a) && isScalar(b)) {
    if (!Object.is(a.value, b.value) || a.type !== b.type || a.source !== b.source || a.format !== b.format || (a as { minFractionDigits?: number }).minFractionDigits !== (b as { minFractionDigits?: number }).minFractionDigits) return `${path}: ${String(a.value)} (${a.type} ${a.source} ${a.format}) vs ${String(b.value)} (${b.type} ${b.source} ${b.format})`;
    return undefined;
  }
  if ((isMap(a) && isMap(b)) || (isSeq(a) && isSeq(b))) {
    if (!!a.flow !== !!b.flow) return `${path}: flow ${a.flow} vs ${b.flow}`;
    if (a.items.length !== b.items.length) return `${path}: ${a.items.length} vs ${b.items.length} items`;
    for (let i = 0; i < a.items.length; i++) {
      const d = treeDiff(a.items[i], b.items[i], `${path}[${i}]`);
      if (d) return d;
    }
  }
  return undefined;
}

function modelView(a: SpecAnalysis): unknown {
  if (!a.model) return undefined;
  const m = a.model;
  return {
    symbols: [...m.symbols].map(([k, t]) => [k, [...t.values()].map((s) => [s.name, s.owner, s.span, s.node?.range])]),
    references: m.references,
    malformed: m.malformed,
    metrics: m.metrics,
    contextual: m.contextual,
    expressions: m.expressions,
  };
}

function assertSame(inc: SpecAnalysis, full: SpecAnalysis, where: string): void {
  assert.deepEqual(inc.problems, full.problems, `problems differ ${where}`);
  assert.equal(inc.parsed.syntaxBroken, full.parsed.syntaxBroken, where);
  if (full.parsed.doc && !full.parsed.syntaxBroken) {
    const d = treeDiff(inc.parsed.doc?.contents, full.parsed.doc.contents);
    assert.equal(d, undefined, `YAML trees differ ${where}: ${d}`);
    assert.deepEqual(inc.parsed.value, full.parsed.value, `plain data differs ${where}`);
  }
  assert.deepEqual(modelView(inc), modelView(full), `models differ ${where}`);
}

describe('incremental analysis equals a full analysis', () => {
  it('on every sample and on generated specs, opened fresh', () => {
    for (const { name, text } of [...samples(), { name: 'generated', text: generated(50) }]) {
      const inc = new IncrementalAnalyzer();
      assertSame(inc.analyze(text), analyzeSpec(text), `on ${name}`);
    }
  });

  it('reuses unchanged pieces: a one-character edit in a step re-parses one piece', () => {
    const inc = new IncrementalAnalyzer();
    const text = generated(200);
    inc.analyze(text);
    assert.equal(inc.lastRun.mode, 'incremental');
    const at = text.indexOf('command:', text.indexOf('  s100:')) + 12;
    const edited = text.slice(0, at) + 'x' + text.slice(at);
    assertSame(inc.analyze(edited), analyzeSpec(edited), 'after the edit');
    assert.equal(inc.lastRun.mode, 'incremental');
    assert.equal(inc.lastRun.mode === 'incremental' && inc.lastRun.parsed, 1);
    assert.ok(inc.lastRun.mode === 'incremental' && inc.lastRun.reused > 200);
  });

  it('falls back to a full analysis for YAML it cannot cut, with the same result', () => {
    const inc = new IncrementalAnalyzer();
    const base = generated(5);
    for (const text of [base.replace('steps:', 'x: &a 1\ny: *a\nsteps:'), base + '---\nb: 1\n', base.replace('name: gen', 'name: "g\nen"'), base.replace('  s1:', '\ts1:'), '', '# only a comment\n', '- a\n- b\n']) {
      assertSame(inc.analyze(text), analyzeSpec(text), `on ${JSON.stringify(text.slice(0, 40))}`);
      assert.equal(inc.lastRun.mode, 'full', JSON.stringify(text.slice(0, 60)));
    }
  });

  it('the fast reader builds what yaml builds, or declines', () => {
    const cases = [
      '  s1:\n    command: python x.py --lr ${params.lr}  \n    needs: [s0, "s1" , \'s2\']\n    outputs: {model: m.pkl, n: 2 }\n',
      'params:\n  lr: {type: float, default: 0.010, min: 1e-5, max: .5}\n  n: {type: int, default: 0x1F, max: 0o17}\n  b: {default: true, x: ~, y: null, z: .inf, w: -1}\n',
      'secrets:\n- A\n- "B"\n',
      '  s:\n    needs:\n    - a\n    - b\n    e:\n    t: 1h\n    url: http://x/y:z\n    neg: -v\n',
      '  s:\n    deep:\n      deeper:\n        x: 1\n    back: 2\n',
      // Declined: each holds something the fast reader leaves to yaml.
      '  s:\n    a: x # comment\n',
      '  s:\n    a: "esc\\n"\n',
      '  s:\n    a: one\n      two\n',
      '  s:\n    a: [x, [y]]\n',
      '  s:\n    a: b: c\n',
      '  s:\n    a: &x 1\n',
      '  s:\n    a: 1\n    a: 2\n',
      '  s:\n\n    a: 1\n',
      '  s:\n    - a: 1\n',
      'true:\n  a: 1\n',
      '  s:\n    a: |\n      text\n',
      '  s:\n    a: 1\n  t: 2\n',
      '  s:\n    a: \'it\'\'s\'\n',
      '  s:\n    a: {k: v, k: w}\n',
      '  s:\n    a: [x,, y]\n',
      '  s:\n    a:b\n',
    ];
    let read = 0;
    for (const src of cases) {
      const fast = parseSimpleEntry(src);
      if (!fast) continue;
      read++;
      const doc = parseDocument(src, { uniqueKeys: false });
      assert.deepEqual(doc.errors, [], src);
      const pair = (doc.contents as unknown as { items: unknown[] }).items[0];
      assert.equal(treeDiff(fast.pair, pair), undefined, src);
      assert.deepEqual(fast.value, (doc.toJS() as Record<string, unknown>)[fast.key], src);
    }
    assert.equal(read, 5, 'the first five cases are plain enough for the fast reader, the rest are not');
  });

  const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];
  const EDITS = 50;
  for (const seed of SEEDS) {
    it(`after each of ${EDITS} random edits (seed ${seed})`, () => {
      const random = mulberry32(seed);
      const sources = [...samples().map((s) => s.text), generated(30), generated(60)];
      // Generated specs every other seed; the samples in turn otherwise.
      let text = seed % 2 ? sources[sources.length - 1 - ((seed >> 1) % 2)] : sources[(seed >> 1) % (sources.length - 2)];
      const inc = new IncrementalAnalyzer();
      const kinds = edits(random);
      let incremental = 0;
      let lastCut = text;
      let streak = 0;
      assertSame(inc.analyze(text), analyzeSpec(text), `seed ${seed}, start`);
      for (let n = 0; n < EDITS; n++) {
        // Edits that keep the YAML readable come up more often, as when typing; every kind comes up.
        const edit = random() < 0.4 ? kinds[2 + Math.floor(random() * 3)] : kinds[Math.floor(random() * kinds.length)];
        text = edit.apply(text);
        assertSame(inc.analyze(text), analyzeSpec(text), `seed ${seed}, edit ${n} (${edit.name})`);
        if (inc.lastRun.mode === 'incremental') {
          incremental++;
          lastCut = text;
          streak = 0;
        } else if (++streak > 2 || random() < 0.5) {
          // Keep sequences going: a text that stays uncuttable goes back to the last one that was cut.
          text = lastCut;
          streak = 0;
          assertSame(inc.analyze(text), analyzeSpec(text), `seed ${seed}, back after edit ${n}`);
        }
      }
      // The test is only meaningful when most edits take the incremental path.
      assert.ok(incremental >= EDITS / 4, `only ${incremental} of ${EDITS} edits were incremental`);
    });
  }
});
