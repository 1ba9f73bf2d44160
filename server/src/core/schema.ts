import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import schemaJson from '../../../schemas/mlpipeline.schema.json';

/** The published JSON Schema; the single source of truth for structure, hover text and completion. */
export const SPEC_SCHEMA = schemaJson as unknown as JsonSchema;

/** The subset of JSON Schema (plus VS Code's extensions) that the language features read. */
export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  description?: string;
  markdownDescription?: string;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  patternProperties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  required?: string[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  examples?: unknown[];
  pattern?: string;
  patternErrorMessage?: string;
  errorMessage?: string;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  definitions?: Record<string, JsonSchema>;
  [k: string]: unknown;
}

/** VS Code's JSON Schema extensions: metadata only, allowed so that strict mode still catches typos. */
const EDITOR_KEYWORDS = ['markdownDescription', 'patternErrorMessage', 'errorMessage', 'enumDescriptions', 'markdownEnumDescriptions', 'defaultSnippets', 'deprecationMessage', 'doNotSuggest'];

/**
 * Sections whose schema is just "a mapping of name → definition" (`steps`, `params`...), by the
 * definition each entry is checked against. Checking the whole spec is the same as checking the spec
 * with these entries accepted as they are, plus each entry on its own against its definition: that is
 * how specs are checked, so the incremental analysis can keep each entry's errors with the entry and an
 * edit re-checks one step rather than all of them. test/unit/schema-entries.test.ts compares both ways
 * on thousands of broken specs.
 */
export const ENTRY_SECTIONS: ReadonlyMap<string, string> = (() => {
  const out = new Map<string, string>();
  const plain = new Set(['type', 'description', 'markdownDescription', 'propertyNames', 'additionalProperties', 'minProperties', 'maxProperties', 'defaultSnippets', 'examples', 'title']);
  for (const [section, schema] of Object.entries(SPEC_SCHEMA.properties ?? {})) {
    const ref = typeof schema.additionalProperties === 'object' ? schema.additionalProperties.$ref : undefined;
    const m = ref ? /^#\/definitions\/([A-Za-z0-9_]+)$/.exec(ref) : null;
    if (m && schema.type === 'object' && Object.keys(schema).every((k) => plain.has(k))) out.set(section, m[1]);
  }
  return out;
})();

/** The schema with the entries of ENTRY_SECTIONS accepted as they are; its definitions check them. */
const WITHOUT_ENTRIES_ID = 'https://mlpipeline.dev/schemas/mlpipeline-without-entries.schema.json';

function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, strictTuples: false, logger: false });
  ajv.addVocabulary(EDITOR_KEYWORDS);
  return ajv;
}

interface Validators {
  withoutEntries: ValidateFunction;
  entries: Map<string, ValidateFunction>;
}
let compiled: Validators | undefined;

/** Compiled once per process (compiling costs milliseconds; validating costs microseconds per node). */
function validators(): Validators {
  if (!compiled) {
    const ajv = newAjv();
    const properties = { ...SPEC_SCHEMA.properties };
    for (const section of ENTRY_SECTIONS.keys()) properties[section] = { ...properties[section], additionalProperties: true };
    const withoutEntries = ajv.compile({ ...SPEC_SCHEMA, $id: WITHOUT_ENTRIES_ID, properties });
    const entries = new Map<string, ValidateFunction>();
    for (const [section, definition] of ENTRY_SECTIONS) entries.set(section, ajv.getSchema(`${WITHOUT_ENTRIES_ID}#/definitions/${definition}`)!);
    compiled = { withoutEntries, entries };
  }
  return compiled;
}

/** Compiles the schema (strict mode: a typo in the schema itself throws here). */
export function schemaValidator(): (value: unknown) => ErrorObject[] {
  validators();
  return validateAgainstSchema;
}

/** Every schema error of a spec's plain data, as one ajv pass over the whole schema would give them. */
export function validateAgainstSchema(value: unknown): ErrorObject[] {
  const errors = validateWithoutEntries(value);
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const section of ENTRY_SECTIONS.keys()) {
      const entries = (value as Record<string, unknown>)[section];
      if (!entries || typeof entries !== 'object' || Array.isArray(entries)) continue;
      for (const key in entries) for (const e of validateEntry(section, key, (entries as Record<string, unknown>)[key])) errors.push(e);
    }
  }
  return errors;
}

/** The spec's own keys and sections, without the entries of ENTRY_SECTIONS (validateEntry checks those). */
export function validateWithoutEntries(value: unknown): ErrorObject[] {
  const validate = validators().withoutEntries;
  return validate(value) ? [] : [...(validate.errors ?? [])];
}

/** Errors of one entry of an ENTRY_SECTIONS section, with the instance paths a whole-spec check gives them. */
export function validateEntry(section: string, key: string, value: unknown): ErrorObject[] {
  const validate = validators().entries.get(section)!;
  if (validate(value)) return [];
  const prefix = `/${escapePointer(section)}/${escapePointer(key)}`;
  // schemaPath stays relative to the definition, as ajv itself gives it for definitions it does not inline.
  return (validate.errors ?? []).map((e) => ({ ...e, instancePath: prefix + e.instancePath }));
}

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}
