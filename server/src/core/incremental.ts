import { Document, isAlias, isMap, isPair, isScalar, isSeq, Pair, parseDocument, Scalar, visit, YAMLMap, type Node } from 'yaml';
import { collectRanges, parseSimpleEntry } from './fast-yaml';
import { buildModel, emptyModel, entryModel, type SpecModel, type SpecReference, type SpecSymbol } from './model';
import { DEFAULT_LIMITS, findDeepFlowNesting, reportDuplicateKeys, type ParseLimits, type ParsedSpec } from './parse';
import { LineIndex, ProblemSink, sortProblems, type Span } from './problems';
import type { ErrorObject } from 'ajv';
import { ENTRY_SECTIONS, validateEntry, validateWithoutEntries } from './schema';
import { reportSchemaErrors } from './schema-problems';
import { checkSemantics } from './semantic';
import { analyzeSpec, type SpecAnalysis, type ValidationOptions } from './validate';
import { entries } from './yaml-nodes';

/**
 * Incremental analysis for the editor: the same result as `analyzeSpec`, computed from pieces cached
 * between versions of one document.
 *
 * The text is cut at lines that start a top-level key and, inside a top-level mapping written in block
 * style (`steps:` and its kin), at lines that start one of its entries. Each piece is read on its own
 * (by fast-yaml.ts when it is plain enough, else by `yaml`) and cached by its text, with its plain data
 * and what it contributes to the model; an edit re-reads only the piece it touched. The pieces are assembled into one YAML tree with the offsets of the whole text,
 * then the schema and the semantic pass run on the assembly, as in `analyzeSpec`.
 *
 * Cutting is only sound for plain block-style YAML at those levels, so anything else is analyzed whole:
 * a piece with any YAML error or warning (a flow collection or quoted scalar cut in two, a bad indent),
 * anchors, aliases or tags, duplicate keys at a cut level, several documents, directives, tabs, CR line
 * ends, a byte-order mark, or text a safety limit refuses. The property test
 * (test/unit/incremental.property.test.ts) checks that both ways give the same problems.
 */
export class IncrementalAnalyzer {
  /** Pieces of the previous version by kind, then text (a list: the same text can occur twice). */
  private cache = new Map<PieceKind, Map<string, Piece[]>>();
  /** How the last `analyze` went, for tests and the benchmark: pieces re-parsed, or why it went whole. */
  lastRun: { mode: 'incremental'; parsed: number; reused: number; simple: number } | { mode: 'full'; reason: string } = { mode: 'full', reason: 'not run' };

  analyze(text: string, options: ValidationOptions = {}): SpecAnalysis {
    const limits: ParseLimits = { ...DEFAULT_LIMITS, ...options.limits };
    const why = refuse(text, limits);
    if (why) return this.full(text, options, why);
    const cuts = cut(text);
    if (typeof cuts === 'string') return this.full(text, options, cuts);

    const next = new Map<PieceKind, Map<string, Piece[]>>();
    let parsed = 0;
    let reused = 0;
    let simple = 0;
    const take = (kind: PieceKind, start: number, end: number): Piece | undefined => {
      const key = text.slice(start, end);
      const pool = this.cache.get(kind)?.get(key);
      let piece = pool?.pop();
      if (piece) reused++;
      else {
        piece = parsePiece(kind, text, start, end);
        parsed++;
        if (piece?.simple) simple++;
      }
      if (!piece) return undefined;
      shift(piece, start);
      addTo(next, kind, key, piece);
      return piece;
    };

    const root = new YAMLMap<unknown, unknown>();
    const value: Record<string, unknown> = {};
    const model = emptyModel();
    const dupSpans: Span[] = [];
    const seenRoot = new Set<string>();
    // Schema errors of the entries of steps, params...: cached per piece, as the check of one entry
    // depends on that entry alone (schema.ts, ENTRY_SECTIONS).
    const entryErrors: ErrorObject[] = [];
    const addPiece = (piece: Piece): void => {
      mergeModel(model, piece);
      for (const d of piece.duplicates) dupSpans.push(d);
    };
    for (const top of cuts) {
      // A block mapping cut into entries: its key and mapping are made here, with yaml's ranges.
      const parts = top.entries?.map(([start, end]) => take(top.key, start, end));
      if (parts && parts.every((p) => p !== undefined)) {
        if (seenRoot.has(top.key)) return this.full(text, options, 'duplicate top-level key', next);
        seenRoot.add(top.key);
        const keyNode = new Scalar(top.key);
        keyNode.type = Scalar.PLAIN;
        keyNode.source = top.key;
        keyNode.range = [top.start, top.start + top.key.length, top.start + top.key.length];
        const map = new YAMLMap<unknown, unknown>();
        const obj: Record<string, unknown> = {};
        const seen = new Set<string>();
        const checked = ENTRY_SECTIONS.has(top.key);
        for (const piece of parts as Piece[]) {
          if (seen.has(piece.key)) return this.full(text, options, `duplicate key in \`${top.key}\``, next);
          seen.add(piece.key);
          map.items.push(piece.pair);
          obj[piece.key] = piece.value;
          addPiece(piece);
          if (checked) for (const e of (piece.schemaErrors ??= validateEntry(top.key, piece.key, piece.value))) entryErrors.push(e);
        }
        const first = map.items[0] as Pair<Scalar, Node>;
        const end = endOf(map.items[map.items.length - 1] as Pair<Scalar, Node | null>);
        map.range = [first.key.range![0], end, end];
        root.items.push(new Pair(keyNode, map));
        value[top.key] = obj;
        continue;
      }
      // Not a plain block mapping after all (a multi-line scalar indented by two, say): one piece.
      const piece = take('', top.start, top.end);
      if (!piece) return this.full(text, options, 'a piece that is not one plain block entry', next);
      if (seenRoot.has(piece.key)) return this.full(text, options, 'duplicate top-level key', next);
      seenRoot.add(piece.key);
      root.items.push(piece.pair);
      value[piece.key] = piece.value;
      addPiece(piece);
      // A section of ENTRY_SECTIONS that was not cut into entries: its entries are checked here.
      const section = piece.value;
      if (ENTRY_SECTIONS.has(piece.key) && section && typeof section === 'object' && !Array.isArray(section)) {
        for (const key in section) for (const e of validateEntry(piece.key, key, (section as Record<string, unknown>)[key])) entryErrors.push(e);
      }
    }
    const firstPair = root.items[0] as Pair<Scalar, Node>;
    const lastEnd = endOf(root.items[root.items.length - 1] as Pair<Scalar, Node | null>);
    root.range = [firstPair.key.range![0], lastEnd, lastEnd];
    const doc = new Document() as unknown as Document.Parsed;
    doc.contents = root as unknown as Document.Parsed['contents'];
    (doc as unknown as { range: [number, number, number] }).range = [0, lastEnd, text.length];

    this.cache = next;
    this.lastRun = { mode: 'incremental', parsed, reused, simple };

    const lines = new LineIndex(text);
    const parseSink = new ProblemSink(lines);
    // Duplicate keys inside pieces: the parser's rule, reported once per later key as the whole-text pass does.
    for (const span of dupSpans) parseSink.add('MLP002', span, 'Map keys must be unique. Each key may appear once in a mapping: remove or rename one of them.');
    const parsedSpec: ParsedSpec = { text, lines, doc, value, syntaxBroken: false, problems: parseSink.problems };
    const problems = [...parsedSpec.problems];
    const sink = new ProblemSink(lines);
    const schemaErrors = validateWithoutEntries(value);
    for (const e of entryErrors) schemaErrors.push(e);
    reportSchemaErrors(doc, schemaErrors, sink);
    checkSemantics(doc, model, sink);
    const hints = options.unusedHints ?? true;
    problems.push(...sink.problems.filter((p) => hints || p.severity !== 'hint'));
    sortProblems(problems);
    return { parsed: parsedSpec, model, problems };
  }

  /**
   * Analyzes the whole text. Pieces stay cached (those of this text that were parsed before it was
   * given up, too): a quote typed and closed again costs full analyses only while it is open.
   */
  private full(text: string, options: ValidationOptions, reason: string, partial?: Map<PieceKind, Map<string, Piece[]>>): SpecAnalysis {
    for (const [kind, byText] of partial ?? []) for (const [key, pieces] of byText) for (const piece of pieces) addTo(this.cache, kind, key, piece);
    this.lastRun = { mode: 'full', reason };
    return analyzeSpec(text, options);
  }
}

/** A document to hand the model builder a piece made without one (it only resolves aliases, and pieces have none). */
const SCRATCH = new Document() as Document.Parsed;

/** '' for a top-level entry, else the name of the top-level mapping the entry is in. */
type PieceKind = string;

/**
 * One parsed piece: a single `key: value` entry, its plain data and its model. Its nodes and spans are
 * moved in place when the piece moves (the analysis of the previous version is stale by then).
 */
interface Piece {
  key: string;
  pair: Pair<Scalar, Node | null>;
  /** Every node's range array, to move the piece in one flat loop. */
  ranges: number[][];
  value: unknown;
  /** Where the piece starts in the text its ranges and spans are currently offsets into. */
  base: number;
  /** What the entry contributes to the model. */
  model: PieceModel;
  /** Later duplicate keys inside the piece: MLP002. */
  duplicates: Span[];
  /** Read by the fast reader for plain YAML rather than by yaml's parser. */
  simple?: boolean;
  /** The entry's own schema errors, when it is an entry of one of ENTRY_SECTIONS (set on first use). */
  schemaErrors?: ErrorObject[];
}

function addTo(cache: Map<PieceKind, Map<string, Piece[]>>, kind: PieceKind, key: string, piece: Piece): void {
  let byText = cache.get(kind);
  if (!byText) cache.set(kind, (byText = new Map()));
  const list = byText.get(key);
  if (list) list.push(piece);
  else byText.set(key, [piece]);
}

/** Reasons found in one pass over the text to analyze it whole. */
function refuse(text: string, limits: ParseLimits): string | undefined {
  if (text.length * 3 > limits.maxBytes && Buffer.byteLength(text, 'utf8') > limits.maxBytes) return 'over the size limit';
  // (Document markers and directives are found by `cut`, which looks at every line start anyway.)
  for (const c of ['\t', '\r', '\uFEFF', '\uFFFD']) if (text.includes(c)) return 'tab, CR, byte-order mark or invalid UTF-8';
  if (findDeepFlowNesting(text, limits.maxFlowDepth) >= 0) return 'deep flow nesting';
  return undefined;
}

interface TopCut {
  key: string;
  start: number;
  end: number;
  /** For a block mapping cut into its entries: [start, end) of each. */
  entries?: [number, number][];
}

const BLOCK_SECTION = /^([A-Za-z_][A-Za-z0-9_-]*):[ ]*$/;
/** Plain keys that yaml reads as booleans or null, not as strings. */
const RESERVED = /^(?:true|True|TRUE|false|False|FALSE|null|Null|NULL)$/;

/**
 * Cuts the text at lines that start with a character other than space or `#` (top-level keys) and,
 * under `key:` lines with nothing after the colon whose first content line is indented by two spaces,
 * at each line indented by exactly two spaces (the entries). Comment and blank lines stay with the piece
 * above them. Returns why the text cannot be cut, when it cannot.
 */
function cut(text: string): TopCut[] | string {
  const tops: TopCut[] = [];
  let cur: TopCut | undefined;
  let header = false; // Just after a `key:` line: the first content line decides whether to cut inside.
  for (let at = 0; at < text.length; ) {
    const nl = text.indexOf('\n', at);
    const end = nl < 0 ? text.length : nl + 1;
    const c0 = text.charCodeAt(at);
    const seqItem = c0 === 45 /* - */ && (text.charCodeAt(at + 1) === 32 || text.charCodeAt(at + 1) === 10 || at + 1 === text.length);
    if ((c0 === 45 && text.startsWith('---', at)) || (c0 === 46 && text.startsWith('...', at)) || c0 === 37 /* % */) return 'document markers or directives';
    if (seqItem && cur) {
      // `key:` then `- item` lines at column 0: a sequence that belongs to the key above.
      if (cur.entries && cur.entries.length) return 'a sequence item inside a cut mapping';
      header = false;
    } else if (c0 !== 32 && c0 !== 10 && c0 !== 35 /* # */) {
      if (cur) closeTop(cur, at);
      const line = text.slice(at, nl < 0 ? text.length : nl);
      const m = BLOCK_SECTION.exec(line);
      if (m && RESERVED.test(m[1])) m.length = 0;
      cur = { key: m?.[1] ?? '', start: at, end: text.length };
      header = !!m?.[1];
      tops.push(cur);
    } else if (c0 === 32 && cur) {
      let i = at;
      while (text.charCodeAt(i) === 32) i++;
      const c = text.charCodeAt(i);
      const content = i < end && c !== 10 && c !== 35;
      if (content && header) {
        header = false;
        if (i - at === 2 && c !== 45 /* - */ && c !== 63 /* ? */) cur.entries = [];
      }
      if (content && cur.entries) {
        if (i - at < 2) return 'a line indented by one space';
        if (i - at === 2) {
          const list = cur.entries;
          if (list.length) list[list.length - 1][1] = at;
          list.push([at, text.length]);
        }
      }
    } else if (!cur && c0 === 32) {
      return 'an indented line before the first key';
    }
    at = end;
  }
  if (cur) closeTop(cur, text.length);
  if (tops.length === 0) return 'no top-level keys';
  return tops;
}

function closeTop(top: TopCut, end: number): void {
  top.end = end;
  if (top.entries && top.entries.length) top.entries[top.entries.length - 1][1] = end;
  else delete top.entries;
}

/**
 * Parses one piece. It is usable only when yaml reads it as exactly one block-map entry with a plain
 * string key, without errors, warnings, anchors, aliases or tags: then its nodes are what the whole-text
 * parse makes of the same lines.
 */
function parsePiece(kind: PieceKind, text: string, start: number, end: number): Piece | undefined {
  const simple = parseSimpleEntry(text, start, end);
  if (simple) {
    // Built without yaml's parser, at the piece's offsets: no duplicates, anchors or tags can be in it.
    return { key: simple.key, pair: simple.pair, ranges: simple.ranges, value: simple.value, base: start, model: pieceModel(kind, text, simple.pair), duplicates: [], simple: true };
  }
  const source = text.slice(start, end);
  let doc: Document.Parsed;
  try {
    doc = parseDocument(source, { uniqueKeys: false, prettyErrors: false, keepSourceTokens: false });
  } catch {
    return undefined;
  }
  if (doc.errors.length || doc.warnings.length) return undefined;
  const map = doc.contents;
  if (!isMap(map) || map.flow || map.items.length !== 1) return undefined;
  const pair = map.items[0] as Pair<unknown, unknown>;
  if (!isScalar(pair.key) || pair.key.type !== Scalar.PLAIN || typeof pair.key.value !== 'string') return undefined;
  const key = pair.key.value;
  if (key === '__proto__' || key === '<<') return undefined;
  let plain = true;
  visit(doc, (_, node) => {
    if (isAlias(node) || ((isScalar(node) || isMap(node) || isSeq(node)) && (node.anchor || node.tag))) {
      plain = false;
      return visit.BREAK;
    }
    // Merge keys and `__proto__` make plain data that differs in subtle ways.
    if (isPair(node) && isScalar(node.key) && (node.key.value === '<<' || node.key.value === '__proto__')) {
      plain = false;
      return visit.BREAK;
    }
  });
  if (!plain) return undefined;
  let value: unknown;
  try {
    value = (doc.toJS({ maxAliasCount: 0 }) as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
  const duplicates: Span[] = [];
  reportDuplicateKeys(doc, (span) => duplicates.push([span[0] + start, span[1] + start]));
  const ranges: number[][] = [];
  collectRanges(pair, ranges);
  const piece: Piece = { key, pair: pair as Pair<Scalar, Node | null>, ranges, value, base: 0, model: { defs: [], defKeys: [], references: [], spans: [] }, duplicates };
  moveNodes(ranges, start);
  piece.base = start;
  piece.model = pieceModel(kind, text, piece.pair);
  return piece;
}

const SCRATCH_MODEL = emptyModel();

/** An empty model to build one piece's part in; `compact` keeps its arrays, so they are replaced. */
function scratchModel(): SpecModel {
  const m = SCRATCH_MODEL;
  // Clearing an empty Map still allocates in V8; most tables stay empty.
  for (const table of m.symbols.values()) if (table.size) table.clear();
  m.references = [];
  m.malformed = [];
  m.metrics = [];
  m.contextual = [];
  m.expressions = [];
  return m;
}

/** What a piece contributes to the model, read from its nodes (at their offsets in text). */
function pieceModel(kind: PieceKind, text: string, pair: Pair<Scalar, Node | null>): PieceModel {
  const wrapper = new YAMLMap<unknown, unknown>();
  wrapper.items.push(pair);
  SCRATCH.contents = wrapper as unknown as Document.Parsed['contents'];
  // A top-level piece is a document holding one section: buildModel of it is that section's part.
  const model = compact(kind === '' ? buildModel(SCRATCH, text) : entryModel(SCRATCH, text, kind, entries(SCRATCH, wrapper)[0], scratchModel()));
  SCRATCH.contents = null;
  return model;
}

/** Moves a piece's nodes and spans so they are offsets into the text where the piece now starts. */
function shift(piece: Piece, base: number): void {
  const delta = base - piece.base;
  if (delta === 0) return;
  piece.base = base;
  moveNodes(piece.ranges, delta);
  shiftModel(piece.model, delta);
  for (const d of piece.duplicates as MovableSpan[]) {
    d[0] += delta;
    d[1] += delta;
  }
}

function moveNodes(ranges: number[][], delta: number): void {
  for (const range of ranges) {
    range[0] += delta;
    range[1] += delta;
    range[2] += delta;
  }
}

function endOf(pair: Pair<Scalar, Node | null>): number {
  return pair.value?.range?.[2] ?? pair.key.range![2];
}

/** Adds a piece's model to the document's: first definitions win, as in buildModel. */
function mergeModel(into: SpecModel, piece: Piece): void {
  const m = piece.model;
  for (let i = 0; i < m.defs.length; i++) {
    const sym = m.defs[i];
    const table = into.symbols.get(sym.kind)!;
    if (!table.has(m.defKeys[i])) table.set(m.defKeys[i], sym);
  }
  for (let i = 0; i < m.references.length; i++) into.references.push(m.references[i]);
  if (m.rest) {
    for (const x of m.rest.malformed) into.malformed.push(x);
    for (const x of m.rest.metrics) into.metrics.push(x);
    for (const x of m.rest.contextual) into.contextual.push(x);
    for (const x of m.rest.expressions) into.expressions.push(x);
  }
}

/** A piece's part of the model, compact: thousands of pieces are kept. */
interface PieceModel {
  /** Definitions in buildModel's order (outputs after their step). */
  defs: SpecSymbol[];
  /** Each definition's key in its symbol table (`step.output` for outputs). */
  defKeys: string[];
  references: SpecReference[];
  /** Every span array of the model, each once. */
  spans: Span[];
  rest?: Pick<SpecModel, 'malformed' | 'metrics' | 'contextual' | 'expressions'>;
}

function compact(m: SpecModel): PieceModel {
  const defs: SpecSymbol[] = [];
  const defKeys: string[] = [];
  for (const table of m.symbols.values()) {
    for (const sym of table.values()) {
      defs.push(sym);
      defKeys.push(sym.kind === 'output' ? `${sym.owner}.${sym.name}` : sym.name);
    }
  }
  // Every span array once (a reference's span is often its fullSpan), so a move is one loop, in place.
  // A piece has a handful of spans: a linear search is cheaper than a Set per piece.
  const spans: Span[] = [];
  const add = (s: Span): void => {
    if (!spans.includes(s)) spans.push(s);
  };
  for (const sym of defs) add(sym.span);
  for (const r of m.references) {
    add(r.span);
    add(r.fullSpan);
  }
  const out: PieceModel = { defs, defKeys, references: m.references, spans };
  if (m.malformed.length || m.metrics.length || m.contextual.length || m.expressions.length) {
    out.rest = { malformed: m.malformed, metrics: m.metrics, contextual: m.contextual, expressions: m.expressions };
    for (const x of m.malformed) add(x.span);
    for (const x of m.metrics) {
      add(x.stepSpan);
      add(x.span);
    }
    for (const x of m.contextual) add(x.span);
    for (const x of m.expressions) add(x.span);
  }
  return out;
}

/** Spans are read-only for everyone else; the cache moves its own pieces' spans in place. */
type MovableSpan = [number, number];

/** Moves the spans of a piece's model by delta, in place: `compact` made each span array appear once. */
function shiftModel(m: PieceModel, delta: number): void {
  for (const s of m.spans as MovableSpan[]) {
    s[0] += delta;
    s[1] += delta;
  }
}
