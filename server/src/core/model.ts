import { isMap, isScalar, isSeq, type Document, type Node } from 'yaml';
import type { Span } from './problems';
import { entries, get, items, spanOf, stringValue, type Entry } from './yaml-nodes';

/**
 * The spec as named things and the references between them, with exact spans. Built once per parse and
 * shared by diagnostics, navigation, rename and the run plan, so they can never disagree.
 */

export type SymbolKind = 'param' | 'dataset' | 'compute' | 'step' | 'output' | 'secret' | 'sweep' | 'deployment' | 'monitor';

export interface SpecSymbol {
  kind: SymbolKind;
  name: string;
  /** The step that declares an output. */
  owner?: string;
  /** The span of the name where it is defined (the mapping key, or the list item for secrets). */
  span: Span;
  /** The definition's value (a mapping for most kinds, the path scalar for outputs). */
  node: Node | null;
}

/** Where a reference sits: the section and named owner it is inside, and the field path below that. */
export interface RefContext {
  section: string;
  owner?: string;
  field: readonly string[];
}

export interface SpecReference {
  kind: SymbolKind;
  name: string;
  /** For outputs: the step the output belongs to. */
  owner?: string;
  /** The span of the name itself (what rename replaces). */
  span: Span;
  /** The whole reference as written: `${steps.train.outputs.model}`, `monitors.slo`, `train`. */
  fullSpan: Span;
  /** `${...}` inside a string, or a plain name in a field that holds one. */
  syntax: 'interpolation' | 'name';
  context: RefContext;
}

/** A `${...}` or a `monitors.x`/`step.metric` string that could not be read as a reference. */
export interface MalformedReference {
  span: Span;
  text: string;
  reason: string;
}

/** `evaluate.auc` in a gate or sweep objective: a metric of a step's metrics file. */
export interface MetricUse {
  step: string;
  metric: string;
  stepSpan: Span;
  span: Span;
  context: RefContext;
}

/** Special names that refer to something in their context, not to a defined symbol. */
export interface ContextualUse {
  name: 'model' | 'outputs';
  span: Span;
  context: RefContext;
}

export interface SpecModel {
  symbols: Map<SymbolKind, Map<string, SpecSymbol>>;
  references: SpecReference[];
  malformed: MalformedReference[];
  metrics: MetricUse[];
  contextual: ContextualUse[];
  /** Gate strings and their spans, checked as expressions. */
  expressions: { text: string; span: Span; context: RefContext }[];
}

const NAMED_SECTIONS: Record<string, SymbolKind> = {
  params: 'param',
  datasets: 'dataset',
  compute: 'compute',
  steps: 'step',
  sweeps: 'sweep',
  deployments: 'deployment',
  monitors: 'monitor',
};

export const INTERPOLATION = /\$(\$?)\{([^}\n]*)\}/g;

export function symbolKey(kind: SymbolKind, name: string, owner?: string): string {
  return owner === undefined ? `${kind}:${name}` : `${kind}:${owner}.${name}`;
}

export function emptyModel(): SpecModel {
  const model: SpecModel = { symbols: new Map(), references: [], malformed: [], metrics: [], contextual: [], expressions: [] };
  for (const kind of Object.values(NAMED_SECTIONS)) model.symbols.set(kind, new Map());
  model.symbols.set('output', new Map());
  model.symbols.set('secret', new Map());
  return model;
}

export function buildModel(doc: Document, text: string): SpecModel {
  const model = emptyModel();
  const root = entries(doc, doc.contents);
  for (const section of root) {
    const kind = NAMED_SECTIONS[section.key];
    if (kind) {
      for (const e of entries(doc, section.value)) defineSymbol(model, kind, e.key, e, undefined);
    }
    if (section.key === 'secrets') {
      for (const item of items(doc, section.value)) {
        const name = stringValue(item);
        const span = spanOf(item);
        if (name !== undefined && span && !model.symbols.get('secret')!.has(name)) model.symbols.get('secret')!.set(name, { kind: 'secret', name, span, node: item });
      }
    }
    if (section.key === 'steps') {
      for (const step of entries(doc, section.value)) defineOutputs(doc, model, step);
    }
  }

  for (const section of root) collectReferences(doc, text, model, section.value, [section.key]);
  return model;
}

/**
 * What one entry of a named section (one step, one param...) contributes to the model: what
 * `buildModel` records for it, in the same order. The incremental analysis caches this per entry.
 */
export function entryModel(doc: Document, text: string, section: string, entry: Entry, model: SpecModel = emptyModel()): SpecModel {
  const kind = NAMED_SECTIONS[section];
  if (kind) defineSymbol(model, kind, entry.key, entry, undefined);
  if (section === 'steps') defineOutputs(doc, model, entry);
  if (!isNodeAlias(entry.pair.value)) collectReferences(doc, text, model, entry.value, [section, entry.key]);
  return model;
}

function defineOutputs(doc: Document, model: SpecModel, step: Entry): void {
  for (const out of entries(doc, get(doc, step.value, 'outputs')?.value)) {
    const key = `${step.key}.${out.key}`;
    const span = spanOf(out.keyNode);
    if (span && !model.symbols.get('output')!.has(key)) model.symbols.get('output')!.set(key, { kind: 'output', name: out.key, owner: step.key, span, node: out.value });
  }
}

function defineSymbol(model: SpecModel, kind: SymbolKind, name: string, e: Entry, owner: string | undefined): void {
  const span = spanOf(e.keyNode);
  const table = model.symbols.get(kind)!;
  // Duplicate keys are reported by the parser; the first definition wins, as in the plain data.
  if (span && !table.has(name)) table.set(name, { kind, name, owner, span, node: e.value });
}

/** Walks one top-level section (or one entry of it), recording `${...}` references in every string and plain-name fields. */
function collectReferences(doc: Document, text: string, model: SpecModel, start: Node | null, startPath: string[]): void {
  // One path, pushed and popped on the way down: nothing keeps it (contextOf copies what it needs).
  const path = [...startPath];
  const walk = (node: Node | null): void => {
    if (!node) return;
    if (isMap(node)) {
      for (const pair of node.items) {
        // As entries(): scalar keys only; aliases are not followed (their anchors are walked where they are).
        if (!isScalar(pair.key) || isNodeAlias(pair.value)) continue;
        path.push(String(pair.key.value));
        walk((pair.value as Node | null | undefined) ?? null);
        path.pop();
      }
    } else if (isSeq(node)) {
      for (let i = 0; i < node.items.length; i++) {
        const item = node.items[i];
        if (isNodeAlias(item)) continue;
        path.push(String(i));
        walk(item as Node);
        path.pop();
      }
    } else if (isScalar(node)) {
      // Most strings hold no reference: the context and spans are made only for those that may.
      if (typeof node.value === 'string' && node.range) {
        const field = referenceField(path);
        // `${` in the source is `${` in the value too (no escape or folding makes or splits it).
        const interpolated = node.value.includes('${');
        if (field || interpolated) {
          const ctx = contextOf(path);
          const span: Span = [node.range[0], node.range[1]];
          if (interpolated) scanInterpolations(text, span, ctx, model);
          if (field) plainReference(node.value, span, path, ctx, model, text);
        }
      }
    }
    // Keys of sweep parameters name params.
    if (path[0] === 'sweeps' && path.length === 3 && path[2] === 'parameters' && isMap(node)) {
      for (const e of entries(doc, node)) {
        const span = spanOf(e.keyNode);
        if (span) model.references.push({ kind: 'param', name: e.key, span, fullSpan: span, syntax: 'name', context: contextOf([...path, e.key]) });
      }
    }
  };
  walk(start);
}

function isNodeAlias(n: unknown): boolean {
  return !!n && typeof n === 'object' && (n as { type?: string }).type === 'ALIAS';
}

export function contextOf(path: readonly string[]): RefContext {
  const section = path[0] ?? '';
  if (section === 'secrets' || section === 'storage' || section === 'apiVersion' || section === 'name' || section === 'description') return { section, field: path.slice(1) };
  return { section, owner: path[1], field: path.slice(2) };
}

/** Finds `${...}` in the scalar's source text, so spans are exact even in quoted or folded scalars. */
function scanInterpolations(text: string, span: Span, ctx: RefContext, model: SpecModel): void {
  // What INTERPOLATION finds in text[span], found with indexOf: this runs for every command of every step.
  const end = span[1];
  let from = span[0];
  for (;;) {
    const b = text.indexOf('${', from);
    if (b < 0 || b + 2 > end) return;
    let c = b + 2;
    while (c < end && text.charCodeAt(c) !== 125 /* } */ && text.charCodeAt(c) !== 10) c++;
    if (c >= end || text.charCodeAt(c) !== 125) {
      from = b + 1; // Not closed on its line: no reference starts here.
      continue;
    }
    // `$${...}` is an escaped literal `${...}`.
    if (!(b > from && text.charCodeAt(b - 1) === 36)) parseInterpolation(text.slice(b + 2, c), b + 2, [b, c + 1], ctx, model);
    from = c + 1;
  }
}

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `${#VAR}`, `${VAR:-default}`, `${VAR%.csv}`, `${!VAR}`, `${1}`, `${@}`: the shell's parameter expansions. */
const OUR_NAMESPACES = new Set(['params', 'datasets', 'steps', 'outputs', 'secrets', 'model']);
const SHELL_EXPANSION = /^(?:[#!]?[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-=+?]|[#%/^,@]).*)?|[#!]?(?:[0-9]+|[@*#?$!-]))$/s;

function parseInterpolation(inner: string, at: number, full: Span, ctx: RefContext, model: SpecModel): void {
  // Left to /bin/sh, as in any command line; our own namespaces (`${params}`, `${model}`) stay ours.
  if (SHELL_EXPANSION.test(inner) && !OUR_NAMESPACES.has(/^[#!]?([A-Za-z_][A-Za-z0-9_]*)/.exec(inner)?.[1] ?? '')) return;
  // Runs for every reference of every step when a spec opens: no closures or offset arrays.
  const parts = inner.split('.');
  for (let i = 0; i < parts.length; i++) {
    if (!NAME.test(parts[i])) {
      malformed(model, full, inner, inner.trim() === '' ? 'The reference is empty.' : 'References are dot-separated names without spaces, such as `${params.lr}` or `${steps.train.outputs.model}`.');
      return;
    }
  }
  const ns = parts[0];
  switch (ns) {
    case 'params':
    case 'datasets':
    case 'secrets': {
      const kind: SymbolKind = ns === 'params' ? 'param' : ns === 'datasets' ? 'dataset' : 'secret';
      const example = ns === 'params' ? '${params.lr}' : ns === 'datasets' ? '${datasets.raw}' : '${secrets.HF_TOKEN}';
      if (parts.length !== 2) return malformed(model, full, inner, `Write \`\${${ns}.<name>}\`, for example \`${example}\`.`);
      model.references.push({ kind, name: parts[1], span: segment(parts, at, 1), fullSpan: full, syntax: 'interpolation', context: ctx });
      return;
    }
    case 'steps':
      if (parts.length !== 4 || parts[2] !== 'outputs') return malformed(model, full, inner, 'Write `${steps.<step>.outputs.<output>}`, for example `${steps.train.outputs.model}`.');
      model.references.push({ kind: 'step', name: parts[1], span: segment(parts, at, 1), fullSpan: full, syntax: 'interpolation', context: ctx });
      model.references.push({ kind: 'output', name: parts[3], owner: parts[1], span: segment(parts, at, 3), fullSpan: full, syntax: 'interpolation', context: ctx });
      return;
    case 'outputs':
      if (parts.length !== 2) return malformed(model, full, inner, "Write `${outputs.<name>}` for one of this step's own outputs.");
      model.contextual.push({ name: 'outputs', span: full, context: ctx });
      if (ctx.section === 'steps' && ctx.owner) {
        model.references.push({ kind: 'output', name: parts[1], owner: ctx.owner, span: segment(parts, at, 1), fullSpan: full, syntax: 'interpolation', context: ctx });
      }
      return;
    case 'model':
      if (parts.length !== 1) return malformed(model, full, inner, 'Write `${model}` for the path of the deployed model.');
      model.contextual.push({ name: 'model', span: full, context: ctx });
      return;
    default:
      // `${HOME}`: a plain variable name is the shell's, as in any command line.
      if (parts.length === 1 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(ns)) return;
      malformed(model, full, inner, `\`${ns}\` is not a kind of reference. Use \`params\`, \`datasets\`, \`steps\`, \`outputs\`, \`secrets\` or (in a deployment's runtime) \`model\`.`);
  }
}

/** The span of the i-th dot-separated part of a reference whose first part starts at `at`. */
function segment(parts: string[], at: number, i: number): Span {
  let start = at;
  for (let k = 0; k < i; k++) start += parts[k].length + 1;
  return [start, start + parts[i].length];
}

function malformed(model: SpecModel, full: Span, inner: string, reason: string): void {
  model.malformed.push({ span: full, text: `\${${inner}}`, reason });
}

/** Whether a string at path may be a plain-name reference (the fields plainReference reads). */
function referenceField(path: readonly string[]): boolean {
  const [section, , f1, f2] = path;
  const n = path.length - 2;
  switch (section) {
    case 'steps':
      return (f1 === 'needs' && n === 2) || (f1 === 'compute' && n === 1);
    case 'deployments':
      return (f1 === 'compute' && n === 1) || (f1 === 'rollout' && f2 === 'rollbackOn' && n === 3) || (f1 === 'gate' && n === 1);
    case 'sweeps':
      return (f1 === 'step' && n === 1) || (f1 === 'objective' && f2 === 'metric' && n === 2);
    case 'monitors':
      return f1 === 'deployment' && n === 1;
    case 'alerts':
      return f1 === 'when' && n === 2;
    default:
      return false;
  }
}

/** Fields that hold a plain name (or `monitors.x`, `step.metric`) rather than free text. */
function plainReference(value: string, span: Span, path: readonly string[], ctx: RefContext, model: SpecModel, text: string): void {
  const [section, , f1, f2] = path;
  const field = path.slice(2);
  const inner = innerSpan(text, span, value);
  const push = (kind: SymbolKind): void => {
    model.references.push({ kind, name: value, span: inner, fullSpan: inner, syntax: 'name', context: ctx });
  };
  if (section === 'steps' && f1 === 'needs' && field.length === 2) return push('step');
  if ((section === 'steps' || section === 'deployments') && f1 === 'compute' && field.length === 1) return push('compute');
  if (section === 'sweeps' && f1 === 'step' && field.length === 1) return push('step');
  if (section === 'monitors' && f1 === 'deployment' && field.length === 1) return push('deployment');
  if ((section === 'deployments' && f1 === 'rollout' && f2 === 'rollbackOn' && field.length === 3) || (section === 'alerts' && f1 === 'when' && field.length === 2)) {
    const m = /^monitors\.(.+)$/.exec(value);
    if (!m) {
      model.malformed.push({ span: inner, text: value, reason: 'Write `monitors.<name>`, for example `monitors.latency-slo`.' });
      return;
    }
    const nameStart = inner[0] + 'monitors.'.length;
    model.references.push({ kind: 'monitor', name: m[1], span: [nameStart, nameStart + m[1].length], fullSpan: inner, syntax: 'name', context: ctx });
    return;
  }
  if (section === 'sweeps' && f1 === 'objective' && f2 === 'metric' && field.length === 2) {
    metricUse(value, inner, ctx, model);
    return;
  }
  if (section === 'deployments' && f1 === 'gate' && field.length === 1) {
    model.expressions.push({ text: value, span: inner, context: ctx });
    const source = text.slice(inner[0], inner[1]);
    const re = /([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_.-]*)/g;
    for (let m = re.exec(source); m; m = re.exec(source)) {
      metricUse(m[0], [inner[0] + m.index, inner[0] + m.index + m[0].length], ctx, model);
    }
  }
}

function metricUse(value: string, span: Span, ctx: RefContext, model: SpecModel): void {
  const dot = value.indexOf('.');
  if (dot <= 0 || dot === value.length - 1) {
    model.malformed.push({ span, text: value, reason: 'Name a metric as `<step>.<metric>`, for example `evaluate.auc`.' });
    return;
  }
  const step = value.slice(0, dot);
  const stepSpan: Span = [span[0], span[0] + dot];
  model.metrics.push({ step, metric: value.slice(dot + 1), stepSpan, span, context: ctx });
  model.references.push({ kind: 'step', name: step, span: stepSpan, fullSpan: span, syntax: 'name', context: ctx });
}

/** The span of a scalar's characters without its quotes, when it is written on one line as-is. */
function innerSpan(text: string, span: Span, value: string): Span {
  const src = text.slice(span[0], span[1]);
  if (src === value) return span;
  const i = src.indexOf(value);
  return i >= 0 ? [span[0] + i, span[0] + i + value.length] : span;
}
