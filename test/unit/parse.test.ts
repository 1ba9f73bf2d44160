import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeSpec } from '../../server/src/core/validate';
import { check, spec } from '../helpers/spec';

/** Bad input never throws and is answered quickly with a problem at a sensible place. */
function timed(text: string): { ms: number; codes: string[] } {
  const t0 = performance.now();
  const a = analyzeSpec(text);
  return { ms: performance.now() - t0, codes: a.problems.map((p) => p.code) };
}

describe('parse: hostile and broken input', () => {
  it('refuses a billion-laughs alias bomb with MLP003 on an alias', () => {
    let bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
    for (let i = 0; i < 9; i++) {
      const p = String.fromCharCode(97 + i);
      const n = String.fromCharCode(98 + i);
      bomb += `${n}: &${n} [${Array(9).fill('*' + p).join(',')}]\n`;
    }
    const found = check(bomb);
    assert.equal(found.length, 1);
    assert.equal(found[0].code, 'MLP003');
    assert.match(found[0].text, /^\*[a-i]$/);
    assert.ok(timed(bomb).ms < 1000);
  });

  it('refuses a 10 MB file before parsing it', () => {
    const big = spec('steps:\n' + '  s:\n    command: echo hi\n' + '# padding\n'.repeat(1_100_000));
    const r = timed(big);
    assert.deepEqual(r.codes, ['MLP003']);
    assert.ok(r.ms < 1000, `took ${r.ms} ms`);
    assert.match(analyzeSpec(big).problems[0].message, /over the 2\.0 MiB limit/);
  });

  it('honours a raised size limit', () => {
    const text = spec('steps:\n  s:\n    command: echo hi\n' + '#\n'.repeat(2000));
    assert.deepEqual(analyzeSpec(text, { limits: { maxBytes: 1000 } }).problems.map((p) => p.code), ['MLP003']);
    assert.deepEqual(analyzeSpec(text, { limits: { maxBytes: 100_000 } }).problems.map((p) => p.code), []);
  });

  it('refuses deeply nested flow collections quickly', () => {
    for (const text of ['a: ' + '['.repeat(100_000) + ']'.repeat(100_000), 'a: ' + '{x: '.repeat(50_000), 'a: ' + '['.repeat(100_000)]) {
      const r = timed(text);
      assert.deepEqual(r.codes, ['MLP003']);
      assert.ok(r.ms < 1000, `took ${r.ms} ms`);
    }
  });

  it('reports deep block nesting as a problem, not a crash', () => {
    const text = Array.from({ length: 3000 }, (_, i) => ' '.repeat(i) + 'k:').join('\n');
    const r = timed(text);
    assert.ok(r.codes.includes('MLP003') || r.codes.includes('MLP001'), r.codes.join());
    assert.ok(r.ms < 1000, `took ${r.ms} ms`);
  });

  it('answers binary garbage with syntax problems', () => {
    let seed = 42;
    const bytes = Buffer.alloc(200_000);
    for (let i = 0; i < bytes.length; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      bytes[i] = seed >> 16;
    }
    const text = new TextDecoder('utf-8').decode(bytes);
    const r = timed(text);
    assert.ok(r.codes.length > 0);
    assert.ok(r.codes.every((c) => /^MLP00[1-6]$/.test(c)), r.codes.join());
    assert.ok(r.ms < 1000, `took ${r.ms} ms`);
  });

  it('reports invalid UTF-8 (decoded as U+FFFD) with MLP005 at the bad byte', () => {
    const bytes = Buffer.concat([Buffer.from(spec('description: caf')), Buffer.from([0xe9, 0x0a]), Buffer.from('steps:\n  s:\n    command: x\n')]);
    const found = check(new TextDecoder('utf-8').decode(bytes));
    assert.deepEqual(found.map((f) => [f.code, f.text]), [['MLP005', '\uFFFD']]);
  });

  it('reports duplicate keys with MLP002 on the second key', () => {
    const found = check(spec('steps:\n  a:\n    command: x\n  a:\n    command: y\n'));
    assert.deepEqual(found.map((f) => [f.code, f.text]), [['MLP002', 'a']]);
  });

  it('reports the first broken token once, not every token after it', () => {
    const found = check(spec('steps:\n  a:\n    command: [unclosed\n  b:\n    command: y\n  c: {\n'));
    assert.ok(found.length >= 1 && found.length <= 3, JSON.stringify(found));
    assert.ok(found.every((f) => f.code === 'MLP001'));
  });

  it('explains an unquoted ${...} inside a flow mapping', () => {
    const found = check(spec('steps:\n  a: {command: run ${params.x}, needs: []}\n'));
    assert.equal(found[0].code, 'MLP001');
    assert.match(found[0].message, /must be quoted/);
  });

  it('warns about a second YAML document and validates the first', () => {
    const found = check(spec('steps:\n  a:\n    command: x\n---\nfoo: bar\n'));
    assert.deepEqual(found.map((f) => f.code), ['MLP006']);
  });

  it('rejects a document that is not a mapping', () => {
    assert.deepEqual(check('- a\n- b\n').map((f) => f.code), ['MLP004']);
    assert.deepEqual(check('just text').map((f) => f.code), ['MLP004']);
  });

  it('says what to write in an empty document', () => {
    for (const text of ['', '# only a comment\n', '\n\n']) {
      const found = check(text);
      assert.deepEqual(found.map((f) => f.code), ['MLP004']);
      assert.match(found[0].message, /apiVersion: mlpipeline\/v1/);
    }
  });
});
