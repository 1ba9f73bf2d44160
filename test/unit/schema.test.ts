import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { SPEC_SCHEMA, schemaValidator, type JsonSchema } from '../../server/src/core/schema';
import { analyzeSpec } from '../../server/src/core/validate';

const ROOT = resolve(__dirname, '../..');
const SAMPLES = ['churn-local', 'gpu-k8s-s3', 'sweep-deploy'];

/** Every property schema, with its JSON path, at any depth (through definitions too). */
function properties(schema: JsonSchema, path = '#'): [string, JsonSchema][] {
  const out: [string, JsonSchema][] = [];
  const visit = (s: unknown, p: string): void => {
    if (!s || typeof s !== 'object') return;
    const node = s as JsonSchema;
    for (const [k, v] of Object.entries(node.properties ?? {})) {
      if (v && typeof v === 'object') out.push([`${p}/properties/${k}`, v]);
    }
    for (const [k, v] of Object.entries(node)) {
      if (k === 'examples' || k === 'default' || k === 'enum' || k === 'const' || k === 'defaultSnippets') continue;
      if (Array.isArray(v)) v.forEach((x, i) => visit(x, `${p}/${k}/${i}`));
      else if (v && typeof v === 'object') visit(v, `${p}/${k}`);
    }
  };
  visit(schema, path);
  return out;
}

const resolveRef = (s: JsonSchema): JsonSchema => (s.$ref ? { ...SPEC_SCHEMA.definitions![s.$ref.replace('#/definitions/', '')], ...s } : s);

describe('the JSON Schema', () => {
  it('compiles in ajv strict mode (typos in the schema itself fail here)', () => {
    assert.deepEqual(schemaValidator()({ apiVersion: "mlpipeline/v1", name: "ok", steps: { a: { command: "true" } } }), []);
  });

  it('documents every property: description, markdownDescription and examples', () => {
    // Conditional branches (if/then/else) refine properties documented where they are declared.
    const props = properties(SPEC_SCHEMA).filter(([p]) => !/\/(if|then|else)\//.test(p));
    assert.ok(props.length > 100, `only ${props.length} properties found`);
    const missing = props.map(([p, s]) => [p, resolveRef(s)] as const).filter(([, s]) => !s.description || !s.markdownDescription || !Array.isArray(s.examples));
    assert.deepEqual(missing.map(([p]) => p), []);
  });

  it('gives every pattern a patternErrorMessage that says how to fix the value', () => {
    const json = readFileSync(resolve(ROOT, 'schemas/mlpipeline.schema.json'), 'utf8');
    const patterns = (json.match(/"pattern":/g) ?? []).length;
    const messages = (json.match(/"patternErrorMessage":/g) ?? []).length;
    assert.ok(patterns > 10);
    assert.ok(messages >= patterns, `${patterns} patterns, ${messages} messages`);
  });

  it('declares the v1 apiVersion and the required top-level keys', () => {
    assert.deepEqual(SPEC_SCHEMA.required, ['apiVersion', 'name', 'steps']);
    assert.equal(SPEC_SCHEMA.properties!.apiVersion.const, 'mlpipeline/v1');
    for (const section of ['params', 'datasets', 'compute', 'storage', 'secrets', 'steps', 'sweeps', 'deployments', 'monitors', 'alerts']) {
      assert.ok(SPEC_SCHEMA.properties![section], section);
    }
  });

  for (const sample of SAMPLES) {
    it(`accepts samples/${sample} with no problem at all`, () => {
      const text = readFileSync(resolve(ROOT, `samples/${sample}/mlpipeline.yaml`), 'utf8');
      assert.deepEqual(analyzeSpec(text).problems, []);
      assert.ok(Object.keys((parse(text) as { steps: object }).steps).length >= 2);
    });
  }
});
