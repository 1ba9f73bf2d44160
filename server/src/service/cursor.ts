import { isMap, isScalar, isSeq, type Document, type Node, type Scalar } from 'yaml';
import { buildModel, type SpecModel, type SpecReference, type SpecSymbol, type SymbolKind } from '../core/model';
import type { Position, Span } from '../core/problems';
import type { SpecAnalysis } from '../core/validate';
import { locate } from '../core/yaml-nodes';

/**
 * What is at the cursor: the model (also for a document whose YAML is momentarily broken), the YAML path
 * under an offset, the reference or definition under it, and a line-based completion context that works
 * while the user is typing half a line.
 */

const tolerant = new WeakMap<SpecAnalysis, SpecModel | null>();

/**
 * The analysis' model, or, while the YAML is broken, a model read from the parser's error-tolerant tree
 * of the same parse (no second parse), so names and references stay available mid-edit.
 */
export function modelOf(analysis: SpecAnalysis | undefined): SpecModel | undefined {
  if (!analysis) return undefined;
  if (analysis.model) return analysis.model;
  if (tolerant.has(analysis)) return tolerant.get(analysis) ?? undefined;
  let model: SpecModel | null = null;
  const doc = analysis.parsed.doc;
  if (doc) {
    try {
      model = buildModel(doc, analysis.parsed.text);
    } catch {
      model = null;
    }
  }
  tolerant.set(analysis, model);
  return model ?? undefined;
}

/** Offset of an LSP position, clamped to the text (positions past the end are the end). */
export function offsetAt(analysis: SpecAnalysis, pos: Position): number {
  if (!pos || typeof pos.line !== 'number' || typeof pos.character !== 'number') return 0;
  return analysis.parsed.lines.offset(pos);
}

export function contains(span: Span, offset: number): boolean {
  return span[0] <= offset && offset <= span[1];
}

/** The name's own span: a quoted key or list item covers its quotes, the name does not. */
export function nameSpan(text: string, span: Span, name: string): Span {
  const src = text.slice(span[0], span[1]);
  if (src === name) return span;
  const i = src.indexOf(name);
  return i >= 0 ? [span[0] + i, span[0] + i + name.length] : span;
}

export type Target =
  | { kind: SymbolKind; name: string; owner?: string; span: Span; ref?: SpecReference; def?: SpecSymbol }
  | undefined;

/** The named thing under the offset: a reference (its name part) or a definition's name. */
export function targetAt(model: SpecModel, text: string, offset: number): Target {
  for (const ref of model.references) {
    if (contains(ref.span, offset)) return { kind: ref.kind, name: ref.name, owner: ref.owner, span: ref.span, ref };
  }
  for (const table of model.symbols.values()) {
    for (const sym of table.values()) {
      const span = nameSpan(text, sym.span, sym.name);
      if (contains(span, offset)) return { kind: sym.kind, name: sym.name, owner: sym.owner, span, def: sym };
    }
  }
  return undefined;
}

export function definitionOf(model: SpecModel, kind: SymbolKind, name: string, owner?: string): SpecSymbol | undefined {
  if (kind === 'output') return owner === undefined ? undefined : model.symbols.get('output')?.get(`${owner}.${name}`);
  return model.symbols.get(kind)?.get(name);
}

export function referencesOf(model: SpecModel, kind: SymbolKind, name: string, owner?: string): SpecReference[] {
  return model.references.filter((r) => r.kind === kind && r.name === name && (kind !== 'output' || r.owner === owner));
}

export interface NodeAt {
  /** Keys and list indices from the root. */
  path: string[];
  /** On a mapping key (the path ends with that key). */
  onKey: boolean;
  node: Node | null;
  keyNode?: Scalar;
}

/** The YAML node under an offset, by source ranges. Aliases are not followed. */
export function nodeAt(doc: Document | null | undefined, offset: number): NodeAt | undefined {
  if (!doc?.contents) return undefined;
  const inside = (n: unknown): boolean => {
    const r = (n as Node | null)?.range;
    return !!r && r[0] <= offset && offset <= r[1];
  };
  let node: Node | null = doc.contents as Node;
  const path: string[] = [];
  for (let guard = 0; guard < 10_000 && node; guard++) {
    if (isMap(node)) {
      let next: Node | null = null;
      for (const pair of node.items) {
        if (!isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        if (inside(pair.key)) return { path: [...path, key], onKey: true, node: (pair.value as Node | null) ?? null, keyNode: pair.key };
        if (pair.value && inside(pair.value)) {
          path.push(key);
          next = pair.value as Node;
          break;
        }
      }
      if (!next) return { path, onKey: false, node };
      node = next;
    } else if (isSeq(node)) {
      const i = node.items.findIndex((it) => inside(it));
      if (i < 0) return { path, onKey: false, node };
      path.push(String(i));
      node = node.items[i] as Node;
    } else {
      return { path, onKey: false, node };
    }
  }
  return undefined;
}

/** The plain value at a path of the (possibly broken) document, for schema conditions; undefined if absent. */
export function valueAt(doc: Document | null | undefined, path: readonly string[]): unknown {
  if (!doc) return undefined;
  try {
    const at = locate(doc, path);
    if (at.depth !== path.length || !at.node) return undefined;
    const n = at.node as Node & { toJSON?: () => unknown };
    return typeof n.toJSON === 'function' ? n.toJSON() : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------
// Line-based context: what the user is typing, read from the text around the cursor. It does not need
// the YAML to parse, so completion keeps working on `needs: [` or `command: x ${ste`.

export interface LineContext {
  /** Keys and list indices from the root to the mapping (key position) or to the value (value position). */
  path: string[];
  /** Typing a key of the mapping at `path`, or a value at `path`. */
  kind: 'key' | 'value';
  /** Inside `[...]` or `{...}`. */
  flow: boolean;
  /** The word being typed: [wordStart, cursor) is the prefix; wordEnd is where the word ends after the cursor. */
  wordStart: number;
  wordEnd: number;
  prefix: string;
  /** Keys already in the mapping (key position), or items already in the list (value in a list). */
  present: string[];
  /** The column where keys of the mapping at `path` start (key position), for multi-line insertions. */
  indent: number;
  /** In a block scalar (`command: >-` continued lines). */
  blockScalar: boolean;
  /** A plain (not flow) value with other words before the one being typed (`description: Train a |`). */
  precededByText: boolean;
  /** Inside `${...}`: the text from after `${` to the cursor, where it starts, and whether a `}` follows the word. */
  interpolation?: { inner: string; start: number; closed: boolean };
}

interface LineInfo {
  indent: number;
  /** Column of the dash when the line starts a list item, else -1. */
  dash: number;
  /** Column where the content (after indentation and the dash) starts. */
  content: number;
  key?: string;
  /** Column just after the key as written (quotes included). */
  keyEnd: number;
  /** Column just after the key's colon. */
  afterColon: number;
  /** The value text after the colon, trimmed. */
  rest: string;
  /** Empty or only a comment. */
  blank: boolean;
}

const KEY = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#"'{}[\],&*!|>%@`-][^#]*?|-[^\s#][^#]*?)[ \t]*:(?=[ \t]|$)/;

function unquote(k: string): string {
  if (k.length >= 2 && ((k[0] === '"' && k.endsWith('"')) || (k[0] === "'" && k.endsWith("'")))) return k.slice(1, -1);
  return k;
}

function lineInfo(line: string): LineInfo {
  const m = /^([ \t]*)(-(?:[ \t]+|$))?/.exec(line)!;
  const indent = m[1].length;
  const dash = m[2] !== undefined ? indent : -1;
  const content = m[0].length;
  const blank = /^\s*(#.*)?$/.test(line);
  const k = blank ? null : KEY.exec(line.slice(content));
  if (!k) return { indent, dash, content, keyEnd: content, afterColon: -1, rest: line.slice(content).trim(), blank };
  const afterColon = content + k[0].length;
  return { indent, dash, content, key: unquote(k[1].trim()), keyEnd: content + k[1].trimEnd().length, afterColon, rest: line.slice(afterColon).trim(), blank };
}

const BLOCK_SCALAR = /^[|>][-+0-9]*\s*(#.*)?$/;

/** The few texts read last whose line starts were not given: their starts are found once per text. */
const recentTexts: { text: string; starts: ArrayLike<number> }[] = [];

/** Where each line starts (after each `\n`), for a text whose analysis did not provide them. */
function lineStarts(text: string): ArrayLike<number> {
  for (const r of recentTexts) if (r.text === text) return r.starts;
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  recentTexts.unshift({ text, starts });
  if (recentTexts.length > 4) recentTexts.pop();
  return starts;
}

/**
 * The lines around the cursor: line 0 is the cursor's, -1 the one above, 1 the one below. Line starts
 * come from the analysis' line index (or one found once per text), so walking far up (to a top-level key
 * thousands of lines above) skips the deeper lines with a check of their first two characters.
 */
class Lines {
  private readonly infos = new Map<number, LineInfo>();
  private readonly starts: ArrayLike<number>;
  /** The cursor line's number in the text. */
  private readonly base: number;
  readonly start0: number;

  constructor(private readonly text: string, offset: number, starts?: ArrayLike<number>) {
    const all = (this.starts = starts ?? lineStarts(text));
    let lo = 0;
    let hi = all.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (all[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    // A cursor just after a newline is at the start of the next line.
    this.base = lo;
    this.start0 = all[lo];
  }

  /** The offset where line i starts, or undefined past the document's ends. */
  start(i: number): number | undefined {
    const n = this.base + i;
    return n >= 0 && n < this.starts.length ? this.starts[n] : undefined;
  }

  /**
   * The nearest line at or above line i indented 0 or 1 columns (blank and comment lines aside), or
   * undefined when there is none: where a walk up that skips every deeper line stops next.
   */
  shallowAtOrAbove(i: number): number | undefined {
    const t = this.text;
    const starts = this.starts;
    for (let n = this.base + i; n >= 0; n--) {
      let j = starts[n];
      let c = t.charCodeAt(j);
      if (c === 32 || c === 9) c = t.charCodeAt(++j);
      if (j < t.length && c !== 32 && c !== 9 && c !== 10 && c !== 13 && c !== 35 /* # */) return n - this.base;
    }
    return undefined;
  }

  lineText(i: number): string | undefined {
    const s = this.start(i);
    if (s === undefined) return undefined;
    const nl = this.text.indexOf('\n', s);
    const end = nl < 0 ? this.text.length : nl;
    return this.text.slice(s, end > s && this.text.charCodeAt(end - 1) === 13 ? end - 1 : end);
  }

  /** The column of the first character, -1 for blank and comment-only lines, undefined past the ends. Cheap. */
  indent(i: number): number | undefined {
    const s = this.start(i);
    if (s === undefined) return undefined;
    let j = s;
    const t = this.text;
    while (j < t.length && (t.charCodeAt(j) === 32 || t.charCodeAt(j) === 9)) j++;
    const c = t.charCodeAt(j);
    if (j >= t.length || c === 10 || c === 13 || c === 35 /* # */) return -1;
    return j - s;
  }

  info(i: number): LineInfo {
    let v = this.infos.get(i);
    if (!v) this.infos.set(i, (v = lineInfo(this.lineText(i) ?? '')));
    return v;
  }
}

/** The index of the list item starting at line `at` (dash at column `col`), counting the items above it. */
function itemIndex(lines: Lines, at: number, col: number): number {
  let n = 0;
  for (let i = at - 1; ; i--) {
    const ind = lines.indent(i);
    if (ind === undefined) break;
    if (ind === -1 || ind > col) continue;
    if (ind < col) break;
    if (lines.info(i).dash === col) n++;
    else break;
  }
  return n;
}

interface Parents {
  path: string[];
  /** Keys of the same mapping, above and below. */
  present: string[];
  /** The nearest parent key's value is a block scalar that holds the line. */
  blockScalar: boolean;
}

/**
 * The path of the mapping that holds line `at`, whose content starts at column `col` (`inList`: the line
 * is a list item with its dash at `col`).
 */
function parentsOf(lines: Lines, at: number, col: number, inList: boolean): Parents {
  const path: string[] = [];
  const present: string[] = [];
  let threshold = col;
  let listMode = inList;
  let first = true;
  let blockScalar = false;
  for (let i = at - 1; !(threshold === 0 && !listMode && !first); i--) {
    // Lines indented deeper than `deepest` are skipped below; when only shallow lines can matter, jump
    // straight to the next one (a step thousands of lines below `steps:` costs one binary search).
    const deepest = first || listMode ? threshold : threshold - 1;
    if (deepest <= 1 && i < 0) {
      const j = lines.shallowAtOrAbove(i);
      if (j === undefined) break;
      i = j;
    }
    const ind = lines.indent(i);
    if (ind === undefined) break;
    if (ind === -1 || ind > threshold || (ind === threshold && !first && !listMode)) continue;
    const L = lines.info(i);
    if (L.dash >= 0 && L.dash < threshold) {
      // A list item above, shallower than this line: the line is inside it.
      if (first && L.content === threshold && L.key !== undefined) present.push(L.key);
      path.unshift(String(itemIndex(lines, i, L.dash)));
      threshold = L.dash;
      listMode = true;
      first = false;
      continue;
    }
    const parentHere = L.dash < 0 && (L.indent < threshold || (listMode && L.indent === threshold && L.rest === ''));
    if (parentHere && L.key !== undefined) {
      if (first && BLOCK_SCALAR.test(L.rest)) blockScalar = true;
      path.unshift(L.key);
      threshold = L.indent;
      listMode = false;
      first = false;
      continue;
    }
    if (first && !inList && L.dash < 0 && L.indent === col && L.key !== undefined) present.push(L.key);
  }
  if (!blockScalar && !inList) {
    for (let i = at + 1; ; i++) {
      const ind = lines.indent(i);
      if (ind === undefined || (ind >= 0 && ind < col)) break;
      if (ind !== col) continue;
      const L = lines.info(i);
      if (L.dash >= 0 && L.dash < col) break;
      if (L.dash < 0 && L.key !== undefined) present.push(L.key);
    }
  }
  return { path, present, blockScalar };
}

interface FlowFrame {
  type: 'map' | 'seq';
  index: number;
  key?: string;
  afterColon: boolean;
  token: string;
  /** Items of a sequence, keys of a mapping. */
  items: string[];
}

/**
 * Reads a flow value (`[a, b]`, `{k: v}`, nested) from its start: the frames open at `cursor`, each with
 * what it held up to there.
 */
function flowFramesAt(value: string, cursor: number): FlowFrame[] {
  const stack: FlowFrame[] = [];
  const finish = (f: FlowFrame): void => {
    const t = f.token.trim();
    if (t && (f.type === 'seq' || !f.afterColon)) f.items.push(unquote(t));
    f.token = '';
  };
  for (let i = 0; i < Math.min(cursor, value.length); i++) {
    const c = value[i];
    const top = stack[stack.length - 1];
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < value.length && value[j] !== c) j += c === '"' && value[j] === '\\' ? 2 : 1;
      if (top) top.token += value.slice(i, Math.min(j + 1, cursor));
      i = j;
    } else if (c === '[' || c === '{') {
      if (top) top.token = '';
      stack.push({ type: c === '[' ? 'seq' : 'map', index: 0, afterColon: false, token: '', items: [] });
    } else if ((c === ']' || c === '}') && stack.length) {
      finish(stack.pop()!);
      const parent = stack[stack.length - 1];
      if (parent) parent.token = '\u0000';
    } else if (c === ',' && top) {
      if (top.token !== '\u0000') finish(top);
      top.token = '';
      top.index++;
      top.afterColon = false;
      top.key = undefined;
    } else if (c === ':' && top?.type === 'map' && !top.afterColon && (i + 1 >= value.length || /[\s,\]}]/.test(value[i + 1]))) {
      top.key = unquote(top.token.trim());
      finish(top);
      top.afterColon = true;
    } else if (c === '#' && !stack.length) {
      break;
    } else if (top) {
      top.token += c;
    }
  }
  return stack;
}

/** Items (sequence) or keys (mapping) after the cursor, to the end of the collection that holds it. */
function flowEntriesAfter(value: string, cursor: number, type: 'map' | 'seq'): string[] {
  const out: string[] = [];
  let depth = 0;
  let token: string | undefined;
  let afterColon = false;
  const finish = (): void => {
    const t = token?.trim();
    if (t && (type === 'seq' || !afterColon)) out.push(unquote(t));
  };
  for (let i = cursor; i < value.length; i++) {
    const c = value[i];
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < value.length && value[j] !== c) j += c === '"' && value[j] === '\\' ? 2 : 1;
      if (depth === 0 && token !== undefined) token += value.slice(i, j + 1);
      i = j;
    } else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') {
      if (depth === 0) {
        finish();
        break;
      }
      depth--;
    } else if (depth === 0 && c === ',') {
      finish();
      token = '';
      afterColon = false;
    } else if (depth === 0 && c === ':' && type === 'map' && token !== undefined && !afterColon) {
      finish();
      afterColon = true;
      token = '';
    } else if (depth === 0 && token !== undefined) token += c;
  }
  return out;
}

/** Values of the block list items (`- x`) around the one at line `at` (dash at column `col`). */
function listItems(lines: Lines, at: number, col: number): string[] {
  const out: string[] = [];
  for (const step of [-1, 1]) {
    for (let i = at + step; ; i += step) {
      const ind = lines.indent(i);
      if (ind === undefined || (ind >= 0 && ind < col)) break;
      if (ind !== col) continue;
      const L = lines.info(i);
      if (L.dash !== col) break;
      if (L.key === undefined) {
        const v = (lines.lineText(i) ?? '').slice(L.content).replace(/\s+#.*$/, '').trim();
        if (v) out.push(unquote(v));
      }
    }
  }
  return out;
}

function inComment(before: string): boolean {
  let q: string | undefined;
  for (let i = 0; i < before.length; i++) {
    const c = before[i];
    if (q) {
      if (c === q) q = undefined;
      continue;
    }
    if ((c === '"' || c === "'") && (i === 0 || /[\s:[{,]/.test(before[i - 1]))) q = c;
    else if (c === '#' && (i === 0 || /\s/.test(before[i - 1]))) return true;
  }
  return false;
}

interface Interpolation {
  inner: string;
  start: number;
  closed: boolean;
  wordStart: number;
  wordEnd: number;
}

/** `${inner|` before the cursor (not the escaped `$${`), with the name segment around the cursor. */
function interpolationAt(line: string, col: number, lineStart: number): Interpolation | undefined {
  const before = line.slice(0, col);
  const m = /\$\{([A-Za-z0-9_.-]*)$/.exec(before);
  if (!m) return undefined;
  if (m.index > 0 && before[m.index - 1] === '$') return undefined;
  const inner = m[1];
  const start = lineStart + m.index + 2;
  const seg = inner.lastIndexOf('.') + 1;
  let e = col;
  while (e < line.length && /[A-Za-z0-9_-]/.test(line[e])) e++;
  return { inner, start, closed: line[e] === '}', wordStart: start + seg, wordEnd: lineStart + e };
}

const WORD_BREAK = /[\s,[\]{}"']/;

/**
 * The line starts the analysis already found (its LineIndex), when they are where lineContext's lines
 * start: after each `\n`, which holds for a text without `\r`. Spares finding them again per request.
 */
export function analysisLineStarts(analysis: SpecAnalysis): ArrayLike<number> | undefined {
  // LineIndex also breaks lines at a lone `\r`; lineContext only at `\n`, so CR texts get their own list.
  return analysis.parsed.text.includes('\r') ? undefined : analysis.parsed.lines.lineStarts();
}

/**
 * The completion context at an offset, read from the lines around it. Undefined in comments and
 * indentation. `lineStarts`: where each line of `text` starts (after each `\n`), when already known.
 */
export function lineContext(text: string, offset: number, lineStarts?: ArrayLike<number>): LineContext | undefined {
  offset = Math.max(0, Math.min(Number.isFinite(offset) ? offset : 0, text.length));
  const lines = new Lines(text, offset, lineStarts);
  const line = lines.lineText(0) ?? '';
  const lineStart = lines.start0;
  const col = Math.min(offset - lineStart, line.length);
  const before = line.slice(0, col);
  if (inComment(before)) return undefined;

  const blankLine = /^\s*$/.test(line);
  const L: LineInfo = blankLine ? { indent: col, dash: -1, content: col, keyEnd: col, afterColon: -1, rest: '', blank: true } : lines.info(0);
  const inList = L.dash >= 0;
  if (inList ? col <= L.dash : col < L.content) return undefined;
  const parents = parentsOf(lines, 0, inList ? L.dash : L.content, inList);
  const path = [...parents.path];
  if (inList) path.push(String(itemIndex(lines, 0, L.dash)));

  const interpolation = interpolationAt(line, col, lineStart);
  const make = (over: Partial<LineContext> & Pick<LineContext, 'path' | 'kind'>, from: number, breaks = WORD_BREAK): LineContext => {
    let s = col;
    while (s > from && !breaks.test(line[s - 1])) s--;
    let e = col;
    while (e < line.length && !breaks.test(line[e]) && !(over.kind === 'key' && line[e] === ':')) e++;
    const c: LineContext = { flow: false, wordStart: lineStart + s, wordEnd: lineStart + e, prefix: line.slice(s, col), present: [], indent: L.content, blockScalar: false, precededByText: false, ...over };
    if (c.kind === 'value' && !c.flow) c.precededByText = line.slice(from, s).trim() !== '';
    if (interpolation && c.kind === 'value') {
      c.interpolation = { inner: interpolation.inner, start: interpolation.start, closed: interpolation.closed };
      c.wordStart = interpolation.wordStart;
      c.wordEnd = interpolation.wordEnd;
      c.prefix = interpolation.inner.slice(interpolation.inner.lastIndexOf('.') + 1);
    }
    return c;
  };

  if (parents.blockScalar) return make({ path: parents.path, kind: 'value', blockScalar: true }, 0, /\s/);

  let valuePath: string[];
  let valueStart: number;
  if (L.key !== undefined && col > L.keyEnd) {
    valuePath = [...path, L.key];
    valueStart = L.afterColon;
  } else if (L.key !== undefined) {
    const present = (inList ? [] : parents.present).filter((k) => k !== L.key);
    return make({ path, kind: 'key', present }, L.content, /[\s,[\]{}"':]/);
  } else if (inList) {
    valuePath = path;
    valueStart = L.content;
  } else {
    return make({ path, kind: 'key', present: parents.present }, L.content, /[\s,[\]{}"':]/);
  }

  const value = line.slice(valueStart);
  const cursorInValue = Math.max(0, col - valueStart);
  const lead = value.length - value.trimStart().length;
  if (!/^[[{]/.test(value.trimStart()) || cursorInValue <= lead) {
    const present = inList && valuePath === path ? listItems(lines, 0, L.dash) : [];
    return make({ path: valuePath, kind: 'value', present }, valueStart + Math.min(lead, cursorInValue));
  }
  const frames = flowFramesAt(value, cursorInValue);
  if (frames.length === 0) return make({ path: valuePath, kind: 'value' }, valueStart);
  const flowPath = [...valuePath];
  let kind: 'key' | 'value' = 'value';
  frames.forEach((f, i) => {
    if (f.type === 'seq') flowPath.push(String(f.index));
    else if (f.afterColon && f.key !== undefined) flowPath.push(f.key);
    else if (i === frames.length - 1) kind = 'key';
  });
  const top = frames[frames.length - 1];
  const after = flowEntriesAfter(value, cursorInValue, top.type);
  const typed = top.token.trim();
  const present = [...new Set([...top.items, ...after])].filter((x) => x !== typed || kind === 'value');
  return make({ path: flowPath, kind, flow: true, present, indent: L.content }, valueStart);
}
