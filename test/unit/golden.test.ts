import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { analyzeSpec } from '../../server/src/core/validate';
import { textAt } from '../helpers/spec';

/**
 * Golden tests: each invalid sample pins its diagnostics (code, severity, range, the text the range
 * covers, message) in a `.diagnostics.json` beside it. After an intended change, regenerate with
 * `UPDATE_GOLDEN=1 npm run test:unit` and review the diff like code.
 */
const DIR = resolve(__dirname, '../../samples/invalid');

function actual(text: string): unknown[] {
  return analyzeSpec(text).problems.map((p) => ({
    code: p.code,
    severity: p.severity,
    range: `${p.range.start.line + 1}:${p.range.start.character + 1}-${p.range.end.line + 1}:${p.range.end.character + 1}`,
    text: textAt(text, p.range),
    message: p.message,
    ...(p.related ? { related: p.related.map((r) => `${r.range.start.line + 1}:${r.range.start.character + 1} ${r.message}`) } : {}),
  }));
}

describe('golden diagnostics for samples/invalid', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));
  it('has golden cases', () => assert.ok(files.length >= 5));
  for (const file of files) {
    it(file, () => {
      const text = readFileSync(resolve(DIR, file), 'utf8');
      const goldenPath = resolve(DIR, file.replace(/\.yaml$/, '.diagnostics.json'));
      const got = actual(text);
      if (process.env.UPDATE_GOLDEN === '1' || !existsSync(goldenPath)) {
        if (process.env.CI) assert.fail(`${goldenPath} is missing; run UPDATE_GOLDEN=1 locally and commit it`);
        writeFileSync(goldenPath, JSON.stringify(got, null, 2) + '\n');
      }
      assert.deepEqual(got, JSON.parse(readFileSync(goldenPath, 'utf8')));
      assert.ok(got.length > 0, 'an invalid sample must have problems');
    });
  }
});
