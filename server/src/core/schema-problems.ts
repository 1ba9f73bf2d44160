import type { ErrorObject } from 'ajv';
import type { Document } from 'yaml';
import type { Code } from './codes';
import type { ProblemSink, Span } from './problems';
import type { JsonSchema } from './schema';
import { hint } from './suggest';
import { entries, locate, spanOf, splitPointer } from './yaml-nodes';

/**
 * Turns ajv errors into problems on exact YAML ranges. The rules: `required` blames the parent key,
 * `additionalProperties` the offending key, `type`/`enum`/`pattern` the value; a path that leaves the
 * document falls back to the nearest ancestor. anyOf/oneOf noise collapses to the branch that fits.
 */
export function reportSchemaErrors(doc: Document, errors: ErrorObject[], sink: ProblemSink): void {
  const seen = new Set<string>();
  for (const err of collapseAlternatives(errors)) {
    const out = describeError(doc, err);
    if (!out) continue;
    const key = `${out.code}:${out.span[0]}:${out.span[1]}:${out.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    sink.add(out.code, out.span, out.message);
  }
}

interface Described {
  code: Code;
  span: Span;
  message: string;
}

function describeError(doc: Document, err: ErrorObject): Described | undefined {
  const path = splitPointer(err.instancePath);
  const here = locate(doc, path);
  const where = describePath(path);
  const parent = err.parentSchema as JsonSchema | undefined;
  const valueSpan = spanOf(here.node) ?? here.entry?.keyNode.range?.slice(0, 2) as Span | undefined ?? rootSpan(doc);
  const keySpan = (here.entry ? spanOf(here.entry.keyNode) : undefined) ?? valueSpan;
  const field = fieldName(path);
  const propertyName = (err as ErrorObject & { propertyName?: string }).propertyName;

  // A key that fails `propertyNames` (a name pattern, or a list of keys allowed in this variant).
  if (propertyName !== undefined) {
    if (err.keyword === 'propertyNames') return undefined; // The nested error carries the details.
    const where = path.length === 1 && SECTION_NOUNS[path[0]] ? `\`${path[0]}\`` : describePath(path);
    const entry = entries(doc, here.node).find((e) => e.key === propertyName);
    const span = spanOf(entry?.keyNode) ?? valueSpan;
    if (err.keyword === 'enum') {
      const allowed = (err.params as { allowedValues: unknown[] }).allowedValues.map(String);
      const why = parent?.errorMessage ?? `Allowed here: ${allowed.map((a) => `\`${a}\``).join(', ')}.`;
      return { code: path[0] === 'compute' ? 'MLP053' : 'MLP011', span, message: `\`${propertyName}\` does not belong in ${where}. ${why}${hint(propertyName, allowed, 'x').startsWith(' Did') ? hint(propertyName, allowed, 'x') : ''}` };
    }
    const msg = parent?.patternErrorMessage ?? parent?.errorMessage ?? 'Use letters, digits, `-` and `_`, starting with a letter.';
    // A key that exists, but only in another variant (a kubernetes-only key on a local target, say).
    if (/\/(then|else)\/propertyNames\//.test(err.schemaPath)) {
      return { code: path[0] === 'compute' ? 'MLP053' : 'MLP011', span, message: `\`${propertyName}\` does not belong in ${where}. ${msg}` };
    }
    return { code: 'MLP016', span, message: `\`${propertyName}\` is not a valid name in ${where}. ${msg}` };
  }
  // Checked with a more precise message by the semantic pass.
  if (err.keyword === 'pattern' && isSemanticallyChecked(path)) return undefined;

  // A path that runs out before its end means the value is elsewhere (an alias); blame the nearest node.
  switch (err.keyword) {
    case 'required': {
      const missing = (err.params as { missingProperty: string }).missingProperty;
      return { code: 'MLP010', span: path.length ? keySpan : rootSpan(doc), message: `Missing required property \`${missing}\` in ${where}. Add \`${missing}:\`${describeProperty(parent, missing)}.` };
    }
    case 'additionalProperties': {
      const prop = (err.params as { additionalProperty: string }).additionalProperty;
      const entry = entries(doc, here.node).find((e) => e.key === prop);
      const allowed = Object.keys(parent?.properties ?? {});
      return { code: 'MLP011', span: spanOf(entry?.keyNode) ?? valueSpan, message: `Unknown property \`${prop}\` in ${where}.${hint(prop, allowed, 'propert')}`.replace('propertys', 'properties') };
    }
    case 'type': {
      const expected = String((err.params as { type: string }).type).replace(/,/g, ' or ');
      const how = parent?.patternErrorMessage ?? parent?.errorMessage;
      return { code: codeForField(path, 'MLP012'), span: valueSpan, message: `${cap(field)} in ${where} must be ${article(expected)}${expected}, not ${article(typeOf(err.data))}${typeOf(err.data)}.${how ? ` ${how}` : ''}` };
    }
    case 'enum': {
      const allowed = (err.params as { allowedValues: unknown[] }).allowedValues.map(String);
      return { code: 'MLP013', span: valueSpan, message: `\`${String(err.data)}\` is not allowed for ${field} in ${where}. Use one of: ${allowed.map((a) => `\`${a}\``).join(', ')}.${hint(String(err.data), allowed, 'value').startsWith(' Did') ? hint(String(err.data), allowed, 'value') : ''}` };
    }
    case 'const':
      return { code: 'MLP013', span: valueSpan, message: `${cap(field)} must be \`${String((err.params as { allowedValue: unknown }).allowedValue)}\`.` };
    case 'pattern':
    case 'format': {
      const msg = parent?.patternErrorMessage ?? parent?.errorMessage ?? `It must match \`${String((err.params as { pattern?: string }).pattern ?? err.params.format)}\`.`;
      return { code: codeForField(path, 'MLP014'), span: valueSpan, message: `\`${String(err.data)}\` is not valid for ${field} in ${where}. ${msg}` };
    }
    case 'uniqueItems': {
      const { i, j } = err.params as { i: number; j: number };
      const dup = locate(doc, [...path, String(Math.max(i, j))]);
      return { code: 'MLP013', span: spanOf(dup.node) ?? valueSpan, message: `${field} in ${where} lists \`${String((err.data as unknown[])[Math.max(i, j)])}\` twice. Remove the repeat.` };
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const { comparison, limit } = err.params as { comparison: string; limit: number };
      return { code: codeForField(path, 'MLP015'), span: valueSpan, message: `${cap(field)} in ${where} must be ${comparison} ${limit}.` };
    }
    case 'minItems':
    case 'maxItems':
    case 'minProperties':
    case 'maxProperties':
    case 'minLength':
    case 'maxLength':
      return { code: 'MLP015', span: path.length ? keySpan : rootSpan(doc), message: `${cap(field)} in ${where} ${err.message ?? 'has the wrong size'}.` };
    case 'if':
      return undefined; // The failing `then` branch reports the real problem.
    case 'propertyNames':
      return undefined; // The nested error, which carries the property name, reports it.
    case 'anyOf':
    case 'oneOf':
      return { code: 'MLP019', span: valueSpan, message: `${cap(field)} in ${where} matches none of the allowed forms.${parent?.description ? ` ${parent.description}` : ''}` };
    default:
      return { code: 'MLP019', span: valueSpan, message: `${cap(field)} in ${where} ${err.message ?? 'is not valid'}.` };
  }
}

/**
 * ajv reports every failed branch of anyOf/oneOf. The branches' errors come right before the anyOf
 * error and lie at or below its instance path. When a branch has the right type for the value, its
 * errors are the useful ones; when every branch failed on type, one combined type error is clearer.
 */
function collapseAlternatives(errors: ErrorObject[]): ErrorObject[] {
  const drop = new Set<number>();
  const extra = new Map<number, ErrorObject>();
  for (let k = 0; k < errors.length; k++) {
    const alt = errors[k];
    if (alt.keyword !== 'anyOf' && alt.keyword !== 'oneOf') continue;
    if (alt.keyword === 'oneOf' && (alt.params as { passingSchemas?: unknown }).passingSchemas) continue;
    const base = alt.instancePath;
    let first = k;
    while (first > 0 && !drop.has(first - 1) && isAtOrBelow(errors[first - 1].instancePath, base)) first--;
    const branch = errors.slice(first, k);
    const typeAtBase = branch.filter((e) => e.keyword === 'type' && e.instancePath === base);
    const rest = branch.filter((e) => !(e.keyword === 'type' && e.instancePath === base));
    for (let x = first; x < k; x++) drop.add(x);
    drop.add(k);
    if (rest.length > 0) {
      // Keep the errors of the branch whose type fitted.
      rest.forEach((e, n) => extra.set(first + n, e));
    } else if (typeAtBase.length > 0) {
      const types = [...new Set(typeAtBase.flatMap((e) => String((e.params as { type: string }).type).split(',')))];
      extra.set(k, { ...typeAtBase[0], params: { type: types.join(',') } });
    } else {
      extra.set(k, alt);
    }
  }
  const out: ErrorObject[] = [];
  for (let k = 0; k < errors.length; k++) {
    if (extra.has(k)) out.push(extra.get(k)!);
    else if (!drop.has(k)) out.push(errors[k]);
  }
  return out;
}

function isAtOrBelow(path: string, base: string): boolean {
  return path === base || path.startsWith(base + '/');
}

/** Fields whose format has its own code, so users can filter or suppress them separately. */
function codeForField(path: string[], fallback: Code): Code {
  const last = path[path.length - 1];
  if (last === 'gpu') return 'MLP040';
  if (last === 'memory' || last === 'ephemeralStorage') return 'MLP041';
  if (last === 'cpu') return 'MLP042';
  if (last === 'timeout' || last === 'hold' || last === 'window' || last === 'schedule') return 'MLP043';
  return fallback;
}

const SECTION_NOUNS: Record<string, string> = {
  params: 'param',
  datasets: 'dataset',
  compute: 'compute target',
  steps: 'step',
  sweeps: 'sweep',
  deployments: 'deployment',
  monitors: 'monitor',
  alerts: 'alert',
};

/** The owner of a path, for messages: "step `train`", "alert #2", "`storage`", "the spec". */
export function describePath(path: readonly string[]): string {
  const noun = SECTION_NOUNS[path[0]];
  if (noun && path.length >= 2) return path[0] === 'alerts' ? `alert #${Number(path[1]) + 1}` : `${noun} \`${path[1]}\``;
  if (path.length >= 2) return `\`${path[0]}\``;
  return 'the spec';
}

/** The field below its owner, list indices left out: `retry.on`, `timeout`, `name`. */
function fieldName(path: readonly string[]): string {
  const below = SECTION_NOUNS[path[0]] && path.length >= 2 ? path.slice(2) : path.length >= 2 ? path.slice(1) : path;
  const named = below.filter((p) => !/^[0-9]+$/.test(p));
  if (named.length === 0) return path.length ? 'the value' : 'the spec';
  return `\`${named.join('.')}\``;
}

/** Fields whose pattern the semantic pass checks with a message that names the failing part. */
function isSemanticallyChecked(path: readonly string[]): boolean {
  return path[0] === 'deployments' && path.length === 3 && path[2] === 'gate';
}

function describeProperty(parent: JsonSchema | undefined, prop: string): string {
  const d = parent?.properties?.[prop]?.description;
  return d ? ` (${d.replace(/\.$/, '')})` : '';
}

function rootSpan(doc: Document): Span {
  const first = entries(doc, doc.contents)[0];
  return spanOf(first?.keyNode) ?? [0, 0];
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (typeof v === 'object') return 'object';
  return typeof v;
}

function article(word: string): string {
  if (word === 'null') return '';
  return /^[aeiou]/.test(word) ? 'an ' : 'a ';
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
