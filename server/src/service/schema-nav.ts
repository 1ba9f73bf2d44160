import { SPEC_SCHEMA, type JsonSchema } from '../core/schema';

/**
 * Walks the published JSON Schema along a YAML path, for hover text and completion. Read-only: the
 * schema stays the single source of truth for keys, docs, enums, defaults and snippets.
 */

const ANNOTATIONS = ['title', 'description', 'markdownDescription', 'default', 'examples', 'defaultSnippets', 'enumDescriptions', 'markdownEnumDescriptions', 'deprecationMessage'];

const resolved = new WeakMap<JsonSchema, JsonSchema>();

/** Follows `$ref` (local `#/definitions/...` only); annotations next to the `$ref` win over the target's. */
export function resolveRef(schema: JsonSchema | undefined, root: JsonSchema = SPEC_SCHEMA): JsonSchema | undefined {
  if (!schema || typeof schema !== 'object') return undefined;
  if (!schema.$ref) return schema;
  const hit = resolved.get(schema);
  if (hit) return hit;
  let target: JsonSchema | undefined = schema;
  const seen = new Set<string>();
  while (target?.$ref && !seen.has(target.$ref)) {
    seen.add(target.$ref);
    const m = /^#\/definitions\/(.+)$/.exec(target.$ref);
    target = m ? root.definitions?.[m[1]] : undefined;
  }
  if (!target) return undefined;
  const merged: JsonSchema = { ...target };
  for (const k of ANNOTATIONS) if (schema[k] !== undefined) merged[k] = schema[k];
  resolved.set(schema, merged);
  return merged;
}

/** The schema of a child: a property, a pattern property, an additional property or an array item. */
export function childSchema(parent: JsonSchema | undefined, segment: string): JsonSchema | undefined {
  const s = resolveRef(parent);
  if (!s) return undefined;
  if (/^[0-9]+$/.test(segment) && s.items && typeof s.items === 'object') return resolveRef(s.items);
  if (s.properties && Object.prototype.hasOwnProperty.call(s.properties, segment)) return resolveRef(s.properties[segment]);
  for (const [pattern, sub] of Object.entries(s.patternProperties ?? {})) {
    try {
      if (new RegExp(pattern).test(segment)) return resolveRef(sub);
    } catch {
      // A pattern JavaScript cannot compile: skip it.
    }
  }
  if (s.additionalProperties && typeof s.additionalProperties === 'object') return resolveRef(s.additionalProperties);
  for (const alt of [...(s.anyOf ?? []), ...(s.oneOf ?? [])]) {
    const c = childSchema(alt, segment);
    if (c) return c;
  }
  return undefined;
}

/** The schema at a path of keys and list indices from the document root; undefined where the schema has none. */
export function schemaAt(path: readonly string[]): JsonSchema | undefined {
  let s: JsonSchema | undefined = SPEC_SCHEMA;
  for (const seg of path) {
    s = childSchema(s, seg);
    if (!s) return undefined;
  }
  return s;
}

/** True when the map's keys are names the user chooses (`steps`, `params`, `env`...), not fixed properties. */
export function isNamedMap(schema: JsonSchema | undefined): boolean {
  const s = resolveRef(schema);
  return !!s && !s.properties && typeof s.additionalProperties === 'object';
}

export function typesOf(schema: JsonSchema | undefined): string[] {
  const s = resolveRef(schema);
  if (!s) return [];
  if (Array.isArray(s.type)) return s.type;
  if (typeof s.type === 'string') return [s.type];
  if (s.properties || s.additionalProperties) return ['object'];
  if (s.items) return ['array'];
  return [];
}

/** Markdown documentation of a schema node: markdownDescription, else description. */
export function docOf(schema: JsonSchema | undefined): string | undefined {
  const s = resolveRef(schema);
  if (!s) return undefined;
  const md = s.markdownDescription ?? s.description;
  return typeof md === 'string' ? md : undefined;
}

/**
 * The properties a mapping may have, given its current plain value: `if`/`then`/`else` branches of the
 * schema that forbid keys (`propertyNames` patterns, as for local vs kubernetes targets) are applied.
 */
export function allowedProperties(schema: JsonSchema | undefined, value: unknown): [string, JsonSchema][] {
  const s = resolveRef(schema);
  if (!s?.properties) return [];
  const filters: RegExp[] = [];
  for (const branch of [s, ...(s.allOf ?? [])]) {
    if (!branch.if) continue;
    const chosen = matchesSimple(branch.if as JsonSchema, value) ? (branch.then as JsonSchema | undefined) : (branch.else as JsonSchema | undefined);
    const pattern = (chosen?.propertyNames as JsonSchema | undefined)?.pattern;
    if (typeof pattern === 'string') {
      try {
        filters.push(new RegExp(pattern));
      } catch {
        // Ignore a pattern JavaScript cannot compile.
      }
    }
  }
  return Object.entries(s.properties)
    .filter(([k]) => filters.every((f) => f.test(k)))
    .map(([k, v]) => [k, resolveRef(v) ?? v]);
}

/** Whether the schema has `if`/`then`/`else` branches that depend on the value. */
export function hasConditions(schema: JsonSchema | undefined): boolean {
  const s = resolveRef(schema);
  return !!s && (!!s.if || !!s.allOf?.some((b) => !!b.if));
}

/** Required keys of a mapping, including those a matching `if`/`then` adds. */
export function requiredProperties(schema: JsonSchema | undefined, value: unknown): string[] {
  const s = resolveRef(schema);
  if (!s) return [];
  const out = new Set(s.required ?? []);
  for (const branch of [s, ...(s.allOf ?? [])]) {
    if (!branch.if) continue;
    const chosen = matchesSimple(branch.if as JsonSchema, value) ? (branch.then as JsonSchema | undefined) : (branch.else as JsonSchema | undefined);
    for (const r of chosen?.required ?? []) out.add(r);
  }
  return [...out];
}

/** Evaluates the `if` schemas this spec uses: `properties` with `const`, and `required`. */
function matchesSimple(cond: JsonSchema, value: unknown): boolean {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  const obj = value as Record<string, unknown>;
  for (const r of cond.required ?? []) if (!(r in obj)) return false;
  for (const [k, sub] of Object.entries(cond.properties ?? {})) {
    if (!(k in obj)) continue;
    if (sub && typeof sub === 'object' && 'const' in sub && obj[k] !== sub.const) return false;
  }
  return true;
}

/** The name pattern and its message for a kind of named thing, from the schema's definitions. */
export function namePattern(definition: string): { pattern?: RegExp; message: string; maxLength?: number } {
  const d = SPEC_SCHEMA.definitions?.[definition];
  let pattern: RegExp | undefined;
  try {
    pattern = typeof d?.pattern === 'string' ? new RegExp(d.pattern) : undefined;
  } catch {
    pattern = undefined;
  }
  const maxLength = typeof d?.maxLength === 'number' ? d.maxLength : undefined;
  return { pattern, message: d?.patternErrorMessage ?? 'Use letters, digits, `-` and `_`, starting with a letter.', maxLength };
}
