import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import Ajv, { type ErrorObject } from 'ajv';
import { parse } from 'yaml';
import { ENTRY_SECTIONS, SPEC_SCHEMA, validateAgainstSchema } from '../../server/src/core/schema';

/**
 * Specs are checked as "the spec without the entries of steps, params... plus each entry on its own"
 * (schema.ts), so that the incremental analysis can cache each entry's errors. This compares that with
 * one ajv pass over the published schema, on the samples and on thousands of seeded random breakages.
 */
const ROOT = resolve(__dirname, '../..');

function wholeSchemaValidator(): (value: unknown) => ErrorObject[] {
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, strictTuples: false, logger: false });
  ajv.addVocabulary(['markdownDescription', 'patternErrorMessage', 'errorMessage', 'enumDescriptions', 'markdownEnumDescriptions', 'defaultSnippets', 'deprecationMessage', 'doNotSuggest']);
  const validate = ajv.compile(SPEC_SCHEMA);
  return (value) => (validate(value) ? [] : [...(validate.errors ?? [])]);
}

/** What the problems are made of (schema-problems.ts): schemaPath is read only for then/else branches. */
function fingerprint(e: ErrorObject): string {
  const parent = e.parentSchema as { properties?: object; errorMessage?: string; patternErrorMessage?: string; description?: string } | undefined;
  return JSON.stringify([
    e.instancePath,
    /\/(then|else)\/propertyNames\//.test(e.schemaPath),
    e.keyword,
    e.params,
    e.message,
    (e as { propertyName?: string }).propertyName,
    e.data === undefined ? 'undefined' : JSON.stringify(e.data),
    parent?.properties ? Object.keys(parent.properties) : null,
    parent?.errorMessage ?? null,
    parent?.patternErrorMessage ?? null,
    parent?.description ?? null,
  ]);
}

const JUNK: unknown[] = [1, 'x', null, true, [], {}, { a: 1 }, ['a'], 'A100:0', -1, '1h', 'a/b~c', { type: 'kubernetes' }, { type: 'local', image: 'x' }];

function mutate(v: unknown, rnd: () => number, depth = 0): unknown {
  if (v && typeof v === 'object' && depth < 5) {
    const keys = Object.keys(v);
    if (keys.length && rnd() < 0.8) {
      const k = keys[Math.floor(rnd() * keys.length)];
      const c: Record<string, unknown> = Array.isArray(v) ? ([...v] as unknown as Record<string, unknown>) : { ...(v as Record<string, unknown>) };
      c[k] = mutate((v as Record<string, unknown>)[k], rnd, depth + 1);
      if (rnd() < 0.1 && !Array.isArray(c)) c[`bad/key~${Math.floor(rnd() * 3)}`] = JUNK[Math.floor(rnd() * JUNK.length)];
      if (rnd() < 0.1) delete c[k];
      return c;
    }
  }
  return JUNK[Math.floor(rnd() * JUNK.length)];
}

function specs(): unknown[] {
  const out: unknown[] = [];
  const dirs = ['samples/churn-local', 'samples/gpu-k8s-s3', 'samples/k8s-local', 'samples/sweep-deploy', 'samples/invalid'];
  for (const dir of dirs) {
    for (const f of readdirSync(join(ROOT, dir)).filter((n) => n.endsWith('.yaml'))) {
      try {
        out.push(parse(readFileSync(join(ROOT, dir, f), 'utf8')));
      } catch {
        // samples/invalid/yaml-syntax.yaml is not YAML at all.
      }
    }
  }
  return out;
}

describe('schema checks entry by entry', () => {
  it('covers the name → definition sections', () => {
    assert.deepEqual([...ENTRY_SECTIONS.keys()].sort(), ['compute', 'datasets', 'deployments', 'monitors', 'params', 'steps', 'sweeps']);
  });

  it('gives the errors one pass over the whole schema gives, on samples and seeded random breakages', () => {
    const whole = wholeSchemaValidator();
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    let cases = 0;
    let errors = 0;
    for (const spec of specs()) {
      for (let i = 0; i < 150; i++) {
        const value = i === 0 ? spec : mutate(spec, rnd);
        const expected = whole(value).map(fingerprint).sort();
        const actual = validateAgainstSchema(value).map(fingerprint).sort();
        assert.deepEqual(actual, expected, `case ${cases}: ${JSON.stringify(value).slice(0, 300)}`);
        cases++;
        errors += expected.length;
      }
    }
    // The comparison means something only if the breakages produce many errors of many kinds.
    assert.ok(cases >= 1000 && errors >= 2000, `${cases} cases, ${errors} errors`);
  });
});
