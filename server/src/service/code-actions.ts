import { isMap, isPair, isScalar, isSeq, type Document, type Node, type Pair, type YAMLMap, type YAMLSeq } from 'yaml';
import { CodeActionKind, type CodeAction, type Diagnostic, type Range, type TextEdit } from 'vscode-languageserver';
import type { SpecModel, SpecReference, SymbolKind } from '../core/model';
import type { Span } from '../core/problems';
import type { JsonSchema } from '../core/schema';
import { KNOWN_GPUS } from '../core/semantic';
import { closest } from '../core/suggest';
import type { SpecAnalysis } from '../core/validate';
import { get } from '../core/yaml-nodes';
import { modelOf, nodeAt, valueAt } from './cursor';
import { allowedProperties, requiredProperties, resolveRef, schemaAt, typesOf } from './schema-nav';
import { yamlScalar } from './completion';

/**
 * Quick fixes for the server's own diagnostics, each one a WorkspaceEdit on the document:
 * - MLP020-MLP027: change a misspelled reference to the closest defined name (preferred), or create a
 *   stub for the missing step, dataset, param, compute target or secret;
 * - MLP011 / MLP013: change an unknown key or a value not allowed to the closest allowed one (preferred),
 *   or remove the key; the const `apiVersion` is set to its one value;
 * - MLP010: add the missing required key with a placeholder value from the schema;
 * - MLP060-MLP062: remove the unused param, dataset or secret;
 * - MLP044: an unknown GPU type to the closest known one (preferred);
 * - MLP001 (a `${...}` in a flow mapping): quote the value.
 * Never throws; diagnostics that no longer match the document are skipped.
 */
/** `range` is the editor's selection; fixes are computed for the diagnostics the client passes (those in it). */
export function codeActions(analysis: SpecAnalysis, uri: string, range: Range, diagnostics: readonly Diagnostic[]): CodeAction[] {
  const out: CodeAction[] = [];
  for (const d of diagnostics ?? []) {
    try {
      out.push(...fixesFor(analysis, uri, d));
    } catch {
      // A fix that cannot be computed is left out.
    }
  }
  return out;
}

const UNDEFINED_KIND: Record<string, SymbolKind> = {
  MLP020: 'step',
  MLP021: 'compute',
  MLP022: 'param',
  MLP023: 'dataset',
  MLP024: 'output',
  MLP025: 'secret',
  MLP026: 'deployment',
  MLP027: 'monitor',
};

function sameRange(a: Range, b: Range): boolean {
  return a.start.line === b.start.line && a.start.character === b.start.character && a.end.line === b.end.line && a.end.character === b.end.character;
}

function fixesFor(analysis: SpecAnalysis, uri: string, diag: Diagnostic): CodeAction[] {
  const code = typeof diag.code === 'string' ? diag.code : undefined;
  if (!code || (diag.source !== undefined && diag.source !== 'mlpipeline')) return [];
  // Our own problem for this diagnostic: a stale diagnostic (from an older version) gets no fix.
  const problem = analysis.problems.find((p) => p.code === code && sameRange(p.range, diag.range));
  if (!problem) return [];
  const lines = analysis.parsed.lines;
  const span: Span = [lines.offset(diag.range.start), lines.offset(diag.range.end)];
  const crlf = analysis.parsed.text.includes('\r\n');
  const fix = (title: string, edits: TextEdit[], preferred = false): CodeAction => ({
    title,
    kind: CodeActionKind.QuickFix,
    diagnostics: [diag],
    isPreferred: preferred || undefined,
    // New lines use the document's line ending.
    edit: { changes: { [uri]: crlf ? edits.map((e) => ({ ...e, newText: e.newText.replace(/\r?\n/g, '\r\n') })) : edits } },
  });
  const replace = (s: Span, newText: string): TextEdit => ({ range: lines.range(s), newText });
  const model = modelOf(analysis);
  const doc = analysis.parsed.doc;
  const text = analysis.parsed.text;

  if (code in UNDEFINED_KIND && model && doc) {
    const kind = UNDEFINED_KIND[code];
    const ref = model.references.find((r) => r.kind === kind && r.span[0] === span[0] && r.span[1] === span[1]);
    if (!ref) return [];
    const out: CodeAction[] = [];
    const candidates = kind === 'output' ? outputsOf(model, ref.owner ?? '') : [...(model.symbols.get(kind)?.keys() ?? [])];
    const near = closest(ref.name, candidates);
    if (near) out.push(fix(`Change to \`${near}\``, [replace(ref.span, near)], true));
    const stub = createStub(analysis, doc, ref);
    if (stub) out.push(fix(stub.title, [stub.edit]));
    return out;
  }

  if ((code === 'MLP011' || code === 'MLP053') && doc) {
    const at = nodeAt(doc, span[0]);
    if (!at?.onKey || !at.keyNode) return [];
    const key = at.path[at.path.length - 1];
    const parent = at.path.slice(0, -1);
    const out: CodeAction[] = [];
    if (code === 'MLP011') {
      const value = valueAt(doc, parent);
      const present = new Set(Object.keys(value && typeof value === 'object' ? (value as object) : {}));
      const allowed = allowedProperties(schemaAt(parent), value).map(([k]) => k).filter((k) => !present.has(k));
      const near = closest(key, allowed);
      if (near) out.push(fix(`Change to \`${near}\``, [replace(span, near)], true));
    }
    const removal = removeMapEntry(analysis, doc, parent, key);
    if (removal) out.push(fix(`Remove \`${key}\``, [removal]));
    return out;
  }

  if (code === 'MLP013' && doc) {
    const at = nodeAt(doc, span[0]);
    if (!at || at.onKey || !isScalar(at.node)) return [];
    const schema = resolveRef(schemaAt(at.path));
    if (!schema) return [];
    if (schema.const !== undefined) return [fix(`Change to \`${String(schema.const)}\``, [replace(span, yamlScalar(schema.const, false))], true)];
    if (!schema.enum) return [];
    const allowed = schema.enum.map(String);
    const near = closest(String(at.node.value), allowed);
    return near ? [fix(`Change to \`${near}\``, [replace(span, yamlScalar(schema.enum[allowed.indexOf(near)], isFlowAt(doc, at.path)))], true)] : [];
  }

  if (code === 'MLP010' && doc) {
    const m = /Missing required property `([^`]+)`/.exec(problem.message);
    if (!m) return [];
    const missing = m[1];
    // The problem is on the key of the mapping that lacks the property; at the root, on the first key.
    const at = nodeAt(doc, span[0]);
    const path = [at?.onKey ? at.path : undefined, []].find((p): p is string[] => !!p && !!mapAt(doc, p) && requiredProperties(schemaAt(p), valueAt(doc, p)).includes(missing));
    if (!path) return [];
    const edit = addMapEntry(analysis, doc, path, missing, schemaAt([...path, missing]));
    return edit ? [fix(`Add \`${missing}\``, [edit], true)] : [];
  }

  if ((code === 'MLP060' || code === 'MLP061' || code === 'MLP062') && model && doc) {
    const kind: SymbolKind = code === 'MLP060' ? 'param' : code === 'MLP061' ? 'dataset' : 'secret';
    const sym = [...(model.symbols.get(kind)?.values() ?? [])].find((s) => s.span[0] === span[0] && s.span[1] === span[1]);
    if (!sym) return [];
    const noun = kind === 'param' ? 'param' : kind;
    const edit = kind === 'secret' ? removeSeqItem(analysis, doc, ['secrets'], span) : removeMapEntry(analysis, doc, [kind === 'param' ? 'params' : 'datasets'], sym.name);
    return edit ? [fix(`Remove unused ${noun} \`${sym.name}\``, [edit])] : [];
  }

  if (code === 'MLP044' && doc) {
    // An unknown GPU type: the closest known one, keeping the count.
    const at = nodeAt(doc, span[0]);
    const value = isScalar(at?.node) && typeof at!.node.value === 'string' ? at!.node.value : undefined;
    const m = value !== undefined && at?.path[at.path.length - 1] === 'gpu' ? /^([A-Za-z][A-Za-z0-9-]*)(:[1-9][0-9]*)?$/.exec(value) : null;
    const near = m ? closest(m[1], KNOWN_GPUS) : undefined;
    if (!m || !near) return [];
    const start = text.indexOf(m[1], span[0]);
    return start >= 0 && start < span[1] ? [fix(`Change to \`${near}\``, [replace([start, start + m[1].length], near)], true)] : [];
  }

  if (code === 'MLP001' && /must be quoted/.test(problem.message)) {
    const edits = quoteFlowReferences(analysis, diag.range.start.line);
    return edits.length ? [fix('Quote the `${...}` value', edits, true)] : [];
  }
  return [];
}

function outputsOf(model: SpecModel, step: string): string[] {
  return [...(model.symbols.get('output')?.values() ?? [])].filter((o) => o.owner === step).map((o) => o.name);
}

function isFlowAt(doc: Document, path: readonly string[]): boolean {
  let node: unknown = doc.contents;
  for (const seg of path.slice(0, -1)) {
    if (isMap(node)) node = node.get(seg, true);
    else if (isSeq(node)) node = node.items[Number(seg)];
    else return false;
  }
  return !!(node as { flow?: boolean } | null)?.flow;
}

// ---------------------------------------------------------------------------------------------------
// Text helpers: edits are made on the text, keeping the user's formatting and comments.

function lineStartOf(text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1;
}

/** Where the line holding `offset` ends, before its `\n` or `\r\n`. */
function lineEndOf(text: string, offset: number): number {
  const i = text.indexOf('\n', offset);
  if (i < 0) return text.length;
  return i > 0 && text[i - 1] === '\r' ? i - 1 : i;
}

function columnOf(text: string, offset: number): number {
  return offset - lineStartOf(text, offset);
}

/** The end of the last line with content that belongs to a node (trailing blank lines and comments stay). */
function contentEnd(text: string, node: Node): number {
  let end = node.range ? node.range[1] : 0;
  while (end > 0 && /\s/.test(text[end - 1])) end--;
  return end;
}

function mapAt(doc: Document, path: readonly string[]): YAMLMap | undefined {
  let node: unknown = doc.contents;
  for (const seg of path) {
    if (isMap(node)) node = node.get(seg, true);
    else if (isSeq(node)) node = node.items[Number(seg)];
    else return undefined;
  }
  return isMap(node) ? (node as YAMLMap) : undefined;
}

function seqAt(doc: Document, path: readonly string[]): YAMLSeq | undefined {
  const parent = mapAt(doc, path.slice(0, -1));
  const node = parent?.get(path[path.length - 1], true);
  return isSeq(node) ? (node as YAMLSeq) : undefined;
}

/** Adds `key: value` to the mapping at `path`: a new line at the entries' indentation, or `, key: value` in `{...}`. */
function addMapEntry(analysis: SpecAnalysis, doc: Document, path: readonly string[], key: string, schema: JsonSchema | undefined): TextEdit | undefined {
  const text = analysis.parsed.text;
  const lines = analysis.parsed.lines;
  const map = mapAt(doc, path);
  if (!map?.range) return undefined;
  const pairs = map.items.filter((p) => isScalar(p.key) && (p.key as Node).range);
  if (map.flow) {
    const close = text.lastIndexOf('}', map.range[1]);
    if (close < 0) return undefined;
    let at = close;
    while (at > 0 && /\s/.test(text[at - 1])) at--;
    const sep = pairs.length ? ', ' : '';
    return { range: lines.range([at, at]), newText: `${sep}${key}: ${flowValue(key, schema)}` };
  }
  const first = pairs[0]?.key as Node | undefined;
  const indent = first?.range ? columnOf(text, first.range[0]) : path.length * 2;
  const end = pairs.length ? contentEnd(text, map) : map.range[0];
  const at = lineEndOf(text, end);
  return { range: lines.range([at, at]), newText: `\n${blockEntry(key, schema, indent)}` };
}

/** A placeholder value for a new key, from the schema: default, an enum value, an example, or by type. */
function flowValue(key: string, schema: JsonSchema | undefined, depth = 0): string {
  const s = resolveRef(schema);
  if (!s) return 'TODO';
  if (s.const !== undefined) return yamlScalar(s.const, true);
  if (s.default !== undefined && typeof s.default !== 'object') return yamlScalar(s.default, true);
  if (s.enum?.length) return yamlScalar(s.enum[0], true);
  if (key === 'command') return 'echo TODO';
  const examples = (s.examples as unknown[] | undefined) ?? [];
  const usable = examples.find((e) => !JSON.stringify(e).includes('${'));
  if (usable !== undefined) return toFlow(usable);
  const types = typesOf(s);
  if (types[0] === 'object' && depth < 2) {
    const req = requiredProperties(s, undefined);
    return `{${req.map((r) => `${r}: ${flowValue(r, s.properties?.[r], depth + 1)}`).join(', ')}}`;
  }
  if (types[0] === 'array') return '[]';
  if (types[0] === 'integer' || types[0] === 'number') return '1';
  if (types[0] === 'boolean') return 'false';
  return 'TODO';
}

function toFlow(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(toFlow).join(', ')}]`;
  if (v && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${k}: ${toFlow(x)}`).join(', ')}}`;
  return yamlScalar(v, true);
}

function blockEntry(key: string, schema: JsonSchema | undefined, indent: number): string {
  const pad = ' '.repeat(indent);
  const s = resolveRef(schema);
  const types = typesOf(s);
  if (s && types[0] === 'object' && s.default === undefined) {
    const req = requiredProperties(s, undefined);
    if (req.length) return `${pad}${key}:\n${req.map((r) => blockEntry(r, s.properties?.[r], indent + 2)).join('\n')}`;
  }
  return `${pad}${key}: ${flowValue(key, s)}`;
}

/** Removes `key` (and its value) from the mapping at `path`; a section left empty goes with it. */
function removeMapEntry(analysis: SpecAnalysis, doc: Document, path: readonly string[], key: string): TextEdit | undefined {
  const map = mapAt(doc, path);
  if (!map) return undefined;
  const pair = map.items.find((p) => isScalar(p.key) && String((p.key as { value: unknown }).value) === key);
  if (!pair) return undefined;
  if (map.items.length === 1 && path.length === 1) return removeMapEntry(analysis, doc, [], path[0]);
  return removeItem(analysis, map, pair, !!map.flow);
}

function removeSeqItem(analysis: SpecAnalysis, doc: Document, path: readonly string[], span: Span): TextEdit | undefined {
  const seq = seqAt(doc, path);
  if (!seq) return undefined;
  const item = seq.items.find((n) => (n as Node).range && (n as Node).range![0] <= span[0] && span[1] <= (n as Node).range![1]) as Node | undefined;
  if (!item) return undefined;
  if (seq.items.length === 1 && path.length === 1) return removeMapEntry(analysis, doc, [], path[0]);
  return removeItem(analysis, seq, item, !!seq.flow);
}

function removeItem(analysis: SpecAnalysis, parent: YAMLMap | YAMLSeq, item: Pair | Node, flow: boolean): TextEdit | undefined {
  const text = analysis.parsed.text;
  const lines = analysis.parsed.lines;
  const startNode = (isPairLike(item) ? item.key : item) as Node | undefined;
  const endNode = (isPairLike(item) ? (item.value ?? item.key) : item) as Node | undefined;
  if (!startNode?.range || !endNode?.range) return undefined;
  let start = startNode.range[0];
  let end = endNode.range[1];
  if (flow) {
    // `a, b, c`: take the comma after the item, or for the last one the comma before it.
    const after = /^\s*,\s*/.exec(text.slice(end));
    if (after) end += after[0].length;
    else {
      const before = /,\s*$/.exec(text.slice(parent.range ? parent.range[0] : 0, start));
      if (before) start -= before[0].length;
    }
    return { range: lines.range([start, end]), newText: '' };
  }
  // Block: whole lines, from the item's line (its `- ` included) to the end of its value.
  start = lineStartOf(text, start);
  end = contentEnd(text, endNode);
  const nl = text.indexOf('\n', end);
  return { range: lines.range([start, nl < 0 ? text.length : nl + 1]), newText: '' };
}

function isPairLike(x: unknown): x is Pair {
  return isPair(x);
}

/** A stub for an undefined step, dataset, param, compute target or secret, added to its section. */
function createStub(analysis: SpecAnalysis, doc: Document, ref: SpecReference): { title: string; edit: TextEdit } | undefined {
  const name = ref.name;
  const text = analysis.parsed.text;
  const lines = analysis.parsed.lines;
  const entry: Partial<Record<SymbolKind, { section: string; noun: string; flow: string; block: (pad: string) => string }>> = {
    step: { section: 'steps', noun: 'step', flow: `{command: echo TODO}`, block: (p) => `${p}command: echo TODO` },
    dataset: { section: 'datasets', noun: 'dataset', flow: `{uri: data/${name}}`, block: (p) => `${p}uri: data/${name}` },
    param: { section: 'params', noun: 'param', flow: paramStub(doc, ref), block: () => '' },
    compute: { section: 'compute', noun: 'compute target', flow: '{type: local}', block: (p) => `${p}type: local` },
  };
  if (ref.kind === 'secret') {
    const seq = seqAt(doc, ['secrets']);
    if (seq?.range && seq.flow) {
      const close = text.lastIndexOf(']', seq.range[1]);
      if (close < 0) return undefined;
      let at = close;
      while (at > 0 && /\s/.test(text[at - 1])) at--;
      return { title: `Add secret \`${name}\` to \`secrets\``, edit: { range: lines.range([at, at]), newText: `${seq.items.length ? ', ' : ''}${name}` } };
    }
    if (seq?.range) {
      const first = seq.items[0] as Node | undefined;
      const col = first?.range ? columnOf(text, first.range[0]) - 2 : 2;
      const at = lineEndOf(text, contentEnd(text, seq));
      return { title: `Add secret \`${name}\` to \`secrets\``, edit: { range: lines.range([at, at]), newText: `\n${' '.repeat(Math.max(0, col))}- ${name}` } };
    }
    if (get(doc, doc.contents, 'secrets')) return undefined;
    return { title: `Add secret \`${name}\` to \`secrets\``, edit: appendSection(analysis, `secrets: [${name}]`) };
  }
  const e = entry[ref.kind];
  if (!e) return undefined;
  const title = `Create ${e.noun} \`${name}\``;
  const section = mapAt(doc, [e.section]);
  if (section?.range) {
    if (section.flow) {
      const close = text.lastIndexOf('}', section.range[1]);
      if (close < 0) return undefined;
      let at = close;
      while (at > 0 && /\s/.test(text[at - 1])) at--;
      return { title, edit: { range: lines.range([at, at]), newText: `${section.items.length ? ', ' : ''}${name}: ${e.flow}` } };
    }
    const first = section.items[0]?.key as Node | undefined;
    const indent = first?.range ? columnOf(text, first.range[0]) : 2;
    const pad = ' '.repeat(indent);
    const at = lineEndOf(text, contentEnd(text, section));
    const body = ref.kind === 'param' ? `${pad}${name}: ${e.flow}` : `${pad}${name}:\n${e.block(pad + '  ')}`;
    return { title, edit: { range: lines.range([at, at]), newText: `\n${body}` } };
  }
  if (get(doc, doc.contents, e.section)) return undefined; // Present but not a mapping: leave it to the user.
  const body = ref.kind === 'param' ? `${e.section}:\n  ${name}: ${e.flow}` : `${e.section}:\n  ${name}:\n${e.block('    ')}`;
  return { title, edit: appendSection(analysis, body) };
}

/** A param stub typed after its sweep values when a sweep names it, else a string. */
function paramStub(doc: Document, ref: SpecReference): string {
  if (ref.context.section === 'sweeps' && ref.context.owner) {
    const values = valueAt(doc, ['sweeps', ref.context.owner, 'parameters', ref.name]);
    const list = Array.isArray(values) ? values : values && typeof values === 'object' ? Object.values(values as object).filter((v) => typeof v === 'number') : [];
    if (list.length && list.every((v) => typeof v === 'number')) {
      const type = list.every((v) => Number.isInteger(v)) ? 'int' : 'float';
      return `{type: ${type}, default: ${list[0]}}`;
    }
    if (list.length && list.every((v) => typeof v === 'boolean')) return `{type: bool, default: ${list[0]}}`;
  }
  return '{type: string, default: ""}';
}

/** A new top-level section at the end of the document. */
function appendSection(analysis: SpecAnalysis, body: string): TextEdit {
  const text = analysis.parsed.text;
  const lines = analysis.parsed.lines;
  const end = text.length;
  const sep = text.length === 0 || text.endsWith('\n') ? '' : '\n';
  return { range: lines.range([end, end]), newText: `${sep}${body}\n` };
}

/** Quotes every unquoted `${...}` value of a flow mapping on the line: `{T: ${secrets.T}}` -> `{T: "${secrets.T}"}`. */
function quoteFlowReferences(analysis: SpecAnalysis, line: number): TextEdit[] {
  const text = analysis.parsed.text;
  const lines = analysis.parsed.lines;
  const start = lines.offset({ line, character: 0 });
  const end = lineEndOf(text, start);
  const src = text.slice(start, end);
  const edits: TextEdit[] = [];
  const re = /([{,]\s*[^\s,{}[\]:"']+\s*:\s+)(\$\{[^}\n]*\}[^,}\n]*?)(\s*[,}])/g;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    const s = start + m.index + m[1].length;
    const value = m[2];
    edits.push({ range: lines.range([s, s + value.length]), newText: JSON.stringify(value) });
    re.lastIndex = m.index + m[1].length + value.length;
  }
  return edits;
}

