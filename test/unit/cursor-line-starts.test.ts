import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lineContext } from '../../server/src/service/cursor';

// lineContext skips deep lines when it walks up to a top-level key; the context must be what a
// line-by-line walk finds, with or without the line starts given.
function spec(steps: number): string {
  const lines = ['name: t', 'steps:'];
  for (let i = 0; i < steps; i++) lines.push(`  s${i}:`, `    command: run ${i}`, '    # note', '', `    needs: [s${i ? i - 1 : 0}]`, '    outputs:', `      m: m${i}.pkl`);
  lines.push('list:', '- a', ' - b', '-  c: 1', ' x: 2');
  return lines.join('\n') + '\n';
}

test('lineContext far below its top-level key: same context with and without given line starts', () => {
  const text = spec(200);
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  const needs = text.indexOf('needs: [s150]') + 'needs: [s'.length;
  assert.deepEqual(lineContext(text, needs)?.path, ['steps', 's151', 'needs', '0']);
  for (let o = 0; o <= text.length; o += 7) assert.deepEqual(lineContext(text, o, starts), lineContext(text, o), `offset ${o}`);
  const m = text.indexOf('m: m120') + 5;
  assert.deepEqual(lineContext(text, m)?.path, ['steps', 's120', 'outputs', 'm']);
});
