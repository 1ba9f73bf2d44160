import { Document, Pair, Scalar, YAMLMap, YAMLSeq, type Node } from 'yaml';

/**
 * A fast reader for the plainest YAML of one `key: value` entry, which is what most steps are: block
 * mappings and sequences, one-line scalars (plain, or quoted without escapes) and one-line flow
 * collections of such scalars. It builds the nodes `yaml` would build (same classes, values, ranges,
 * scalar types and sources, resolved by yaml's own core-schema tags) about five times faster. Anything
 * else (comments, blank lines, multi-line scalars, escapes, nested flow collections, anchors, tags...)
 * returns undefined and the caller parses with `yaml`. The incremental property test compares both.
 */

interface Line {
  start: number;
  /** Index of the first non-space character. */
  content: number;
  /** Index of the newline ending the line. */
  end: number;
  indent: number;
}

export interface SimpleEntry {
  key: string;
  pair: Pair<Scalar, Node>;
  /** Every node's range, so the entry can be moved in one flat loop. */
  ranges: number[][];
  /** The entry's value as plain data, as `toJS` would give it. */
  value: unknown;
}

const schema = new Document().schema;
/** yaml's scalar tags, tried in its order; `resolve` as yaml calls it for a plain scalar. */
type ScalarTag = { test?: RegExp; format?: string; resolve: (source: string, onError: (msg: string) => void, options: object) => unknown };
const TAGS = schema.tags as unknown as (ScalarTag & { default?: unknown })[];
const TESTED = TAGS.filter((t) => t.default === true && t.test);
const STR = (schema.tags as unknown as (ScalarTag & { tag: string })[]).find((t) => t.tag === 'tag:yaml.org,2002:str')!;
const KEY = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
/** Characters that may not start a plain scalar here (or make it something other than plain). */
const BAD_START = /^[-?:,[\]{}#&*!|>'"%@`]/;
const FAIL = Symbol('fail');
type Fail = typeof FAIL;

const IGNORE = (): void => undefined;
const NO_OPTIONS = {};

/** Resolves a plain scalar as yaml's composeScalar does with the core schema. */
function plain(source: string, range: [number, number, number]): Scalar {
  let tag: ScalarTag = STR;
  if (!startsAsString(source)) {
    for (const t of TESTED) {
      if (t.test!.test(source)) {
        tag = t;
        break;
      }
    }
  }
  const res = tag.resolve(source, IGNORE, NO_OPTIONS);
  const s = res instanceof Scalar ? res : new Scalar(res);
  s.range = range;
  s.source = source;
  s.type = Scalar.PLAIN;
  if (tag.format) s.format = tag.format;
  return s;
}

/**
 * True when no core-schema tag but str can match: null, bool, int and float sources start with one of
 * `~ n N t T f F . + -` or a digit (or are empty).
 */
function startsAsString(source: string): boolean {
  const c = source.charCodeAt(0);
  const letter = (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
  return (letter && c !== 78 && c !== 110 && c !== 84 && c !== 116 && c !== 70 && c !== 102) || c === 95 /* _ */ || c === 47 /* / */ || c === 36 /* $ */;
}

function quoted(value: string, type: Scalar.Type, range: [number, number, number]): Scalar {
  const s = new Scalar(value);
  s.range = range;
  s.source = value;
  s.type = type;
  return s;
}

/** Reads text[start, end) as one entry; ranges are offsets into text. */
export function parseSimpleEntry(src: string, start = 0, end = src.length): SimpleEntry | undefined {
  if (end <= start || src.charCodeAt(end - 1) !== 10) return undefined;
  const hash = src.indexOf('#', start);
  const slash = src.indexOf('\\', start);
  if ((hash >= 0 && hash < end) || (slash >= 0 && slash < end)) return undefined;
  const lines: Line[] = [];
  for (let at = start; at < end; ) {
    const end = src.indexOf('\n', at);
    let c = at;
    while (src.charCodeAt(c) === 32) c++;
    if (c === end) return undefined; // Blank lines: yaml's ranges around them are not worth copying.
    lines.push({ start: at, content: c, end, indent: c - at });
    at = end + 1;
  }
  const r = new Reader(src, lines);
  const map = r.map(0, lines[0].indent);
  if (map === FAIL || r.next !== lines.length || map.node.items.length !== 1) return undefined;
  const pair = map.node.items[0] as Pair<Scalar, Node>;
  const ranges: number[][] = [];
  collectRanges(pair, ranges);
  return { key: pair.key.value as string, pair, ranges, value: (map.js as Record<string, unknown>)[pair.key.value as string] };
}

/** Pushes the range of every node under node (keys, values, items) onto out. */
export function collectRanges(node: unknown, out: number[][]): void {
  if (node instanceof Pair) {
    collectRanges(node.key, out);
    collectRanges(node.value, out);
    return;
  }
  const n = node as Node | null;
  if (!n) return;
  if (n.range) out.push(n.range as unknown as number[]);
  if (n instanceof YAMLMap || n instanceof YAMLSeq) for (const item of n.items) collectRanges(item, out);
}

interface Built<N> {
  node: N;
  js: unknown;
}

class Reader {
  next = 0;
  constructor(
    private readonly src: string,
    private readonly lines: Line[],
  ) {}

  map(from: number, indent: number): Built<YAMLMap> | Fail {
    const map = new YAMLMap();
    const js: Record<string, unknown> = {};
    this.next = from;
    while (this.next < this.lines.length && this.lines[this.next].indent === indent) {
      const line = this.lines[this.next];
      const at = this.src.indexOf(':', line.content);
      if (at <= line.content || at >= line.end) return FAIL;
      const colon = at - line.content;
      const name = this.src.slice(line.content, at);
      if (!KEY.test(name) || name === '__proto__' || Object.prototype.hasOwnProperty.call(js, name)) return FAIL;
      const keyNode = plain(name, [line.content, line.content + colon, line.content + colon]);
      if (keyNode.value !== name) return FAIL; // `true:`, `null:`, `1e3:`: not string keys.
      const after = line.content + colon + 1;
      let value: Built<Node> | Fail;
      if (after === line.end) {
        this.next++;
        const nextLine = this.lines[this.next];
        const dash = nextLine && this.src.charCodeAt(nextLine.content) === 45;
        if (nextLine && dash && nextLine.indent >= indent) value = this.seq(this.next, nextLine.indent);
        else if (nextLine && !dash && nextLine.indent > indent) value = this.map(this.next, nextLine.indent);
        else value = { node: plain('', [after, after, after]), js: null };
      } else {
        if (this.src.charCodeAt(after) !== 32) return FAIL;
        value = this.inline(after + 1, line.end);
        this.next++;
        // A deeper line after a one-line value would continue it (a multi-line scalar): not handled here.
        if (this.next < this.lines.length && this.lines[this.next].indent > indent) return FAIL;
      }
      if (value === FAIL) return FAIL;
      map.items.push(new Pair(keyNode, value.node));
      js[name] = value.js;
    }
    if (map.items.length === 0) return FAIL;
    const first = map.items[0].key as Scalar;
    const last = map.items[map.items.length - 1].value as Node;
    map.range = [first.range![0], last.range![2], last.range![2]];
    return { node: map, js };
  }

  seq(from: number, indent: number): Built<YAMLSeq> | Fail {
    const seq = new YAMLSeq();
    const js: unknown[] = [];
    this.next = from;
    while (this.next < this.lines.length && this.lines[this.next].indent === indent && this.src.charCodeAt(this.lines[this.next].content) === 45) {
      const line = this.lines[this.next];
      if (this.src.charCodeAt(line.content + 1) !== 32) return FAIL;
      const item = this.inline(line.content + 2, line.end);
      if (item === FAIL || item.node instanceof YAMLMap) return FAIL;
      // `- key: value` is a mapping in a sequence: not handled here.
      if (item.node instanceof Scalar && item.node.type === Scalar.PLAIN && /:( |$)/.test(this.src.slice(line.content + 2, line.end))) return FAIL;
      this.next++;
      if (this.next < this.lines.length && this.lines[this.next].indent > indent) return FAIL;
      seq.items.push(item.node);
      js.push(item.js);
    }
    if (seq.items.length === 0) return FAIL;
    const first = this.lines[from].content;
    const last = seq.items[seq.items.length - 1] as Node;
    seq.range = [first, last.range![2], last.range![2]];
    return { node: seq, js };
  }

  /** A value on the rest of one line: [start, end) where end is the newline. */
  inline(start: number, end: number): Built<Node> | Fail {
    let s = start;
    while (this.src.charCodeAt(s) === 32) s++;
    let e = end;
    while (e > s && this.src.charCodeAt(e - 1) === 32) e--;
    if (e === s) return FAIL;
    const c = this.src.charCodeAt(s);
    if (c === 91 /* [ */ || c === 123 /* { */) return this.flow(s, e, end + 1);
    if (c === 34 || c === 39) {
      const q = this.quotedAt(s, e, end + 1);
      return q === FAIL ? FAIL : { node: q, js: q.value };
    }
    const text = this.src.slice(s, e);
    if (BAD_START.test(text) && !/^-[^\s]/.test(text)) return FAIL;
    if (text.includes(': ') || text.endsWith(':')) return FAIL;
    const node = plain(text, [s, e, end + 1]);
    return { node, js: node.value };
  }

  private quotedAt(s: number, e: number, after: number): Scalar | Fail {
    const q = this.src.charCodeAt(s);
    if (e - s < 2 || this.src.charCodeAt(e - 1) !== q) return FAIL;
    const inner = this.src.slice(s + 1, e - 1);
    if (inner.includes(q === 34 ? '"' : "'")) return FAIL;
    return quoted(inner, q === 34 ? Scalar.QUOTE_DOUBLE : Scalar.QUOTE_SINGLE, [s, e, after]);
  }

  /** `[a, b]` or `{k: v, k2: v2}` of scalars, closed on the same line. */
  private flow(s: number, e: number, after: number): Built<Node> | Fail {
    const open = this.src.charCodeAt(s);
    const close = open === 91 ? 93 : 125;
    if (this.src.charCodeAt(e - 1) !== close) return FAIL;
    const body = this.src.slice(s + 1, e - 1);
    if (/[[\]{}]/.test(body)) return FAIL;
    const coll = open === 91 ? new YAMLSeq() : new YAMLMap();
    coll.flow = true;
    coll.range = [s, e, after];
    const arr: unknown[] = [];
    const obj: Record<string, unknown> = {};
    if (body.trim() !== '') {
      let at = s + 1;
      for (const part of body.split(',')) {
        const partEnd = at + part.length; // The comma or the closing bracket.
        let a = at;
        while (this.src.charCodeAt(a) === 32) a++;
        let b = partEnd;
        while (b > a && this.src.charCodeAt(b - 1) === 32) b--;
        if (a === b) return FAIL;
        if (open === 91) {
          const item = this.flowScalar(a, b, partEnd);
          if (item === FAIL) return FAIL;
          (coll as YAMLSeq).items.push(item);
          arr.push(item.value);
        } else {
          const text = this.src.slice(a, b);
          const colon = text.indexOf(': ');
          if (colon <= 0) return FAIL;
          const name = text.slice(0, colon);
          if (!KEY.test(name) || name === '__proto__' || Object.prototype.hasOwnProperty.call(obj, name)) return FAIL;
          const keyNode = plain(name, [a, a + colon, a + colon]);
          if (keyNode.value !== name) return FAIL;
          let v = a + colon + 2;
          while (this.src.charCodeAt(v) === 32) v++;
          const value = this.flowScalar(v, b, partEnd);
          if (value === FAIL) return FAIL;
          (coll as YAMLMap).items.push(new Pair(keyNode, value));
          obj[name] = value.value;
        }
        at = partEnd + 1;
      }
    }
    return { node: coll, js: open === 91 ? arr : obj };
  }

  private flowScalar(a: number, b: number, next: number): Scalar | Fail {
    const c = this.src.charCodeAt(a);
    if (c === 34 || c === 39) return this.quotedAt(a, b, next);
    const text = this.src.slice(a, b);
    if (BAD_START.test(text) && !/^-[^\s,]/.test(text)) return FAIL;
    if (text.includes(':') || /["']/.test(text)) return FAIL;
    return plain(text, [a, b, next]);
  }
}
