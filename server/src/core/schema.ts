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

let compiled: ValidateFunction | undefined;

/** Compiled once per process (compiling costs milliseconds; validating costs microseconds per node). */
export function schemaValidator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, strictTuples: false, logger: false });
    ajv.addVocabulary(EDITOR_KEYWORDS);
    compiled = ajv.compile(SPEC_SCHEMA);
  }
  return compiled;
}

export function validateAgainstSchema(value: unknown): ErrorObject[] {
  const validate = schemaValidator();
  return validate(value) ? [] : [...(validate.errors ?? [])];
}
