import { isAlias, isMap, isScalar, parseDocument, visit, type Document } from 'yaml';
import { LineIndex, ProblemSink, type Problem, type Span } from './problems';

/** Safety limits: hostile or accidental input gets a clear problem instead of a long stall. */
export interface ParseLimits {
  /** Larger documents are refused before parsing (a 3,000-step spec is about 300 KB). */
  maxBytes: number;
  /** Deeper `[`/`{` nesting is refused before parsing; the YAML parser recurses on it. */
  maxFlowDepth: number;
  /** Aliases expanded when converting to plain data (stops "billion laughs"). */
  maxAliasCount: number;
}

export const DEFAULT_LIMITS: ParseLimits = { maxBytes: 2 * 1024 * 1024, maxFlowDepth: 64, maxAliasCount: 100 };

export interface ParsedSpec {
  text: string;
  lines: LineIndex;
  /** The YAML document with source ranges; null when a limit refused the text before parsing. */
  doc: Document.Parsed | null;
  /** Plain data for schema validation; undefined when the text could not be converted. */
  value: unknown;
  /** True when the text is not a readable mapping (broken YAML, empty, a list...): structure and references are then not checked. */
  syntaxBroken: boolean;
  problems: Problem[];
}

/** Parses a spec. Never throws on user input: every failure becomes a problem with a range. */
export function parseSpec(text: string, limits: ParseLimits = DEFAULT_LIMITS): ParsedSpec {
  const lines = new LineIndex(text);
  const sink = new ProblemSink(lines);
  const result: ParsedSpec = { text, lines, doc: null, value: undefined, syntaxBroken: true, problems: sink.problems };

  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.maxBytes) {
    sink.add('MLP003', [0, firstLineEnd(text)], `The file is ${formatBytes(bytes)}, over the ${formatBytes(limits.maxBytes)} limit, so it was not parsed. Split the pipeline into smaller specs, or raise the \`mlpipeline.validation.maxFileSize\` setting.`);
    return result;
  }
  const deep = findDeepFlowNesting(text, limits.maxFlowDepth);
  if (deep >= 0) {
    sink.add('MLP003', [deep, deep + 1], `Flow collections ([ ] or { }) are nested more than ${limits.maxFlowDepth} levels deep here, so the file was not parsed. Flatten the structure.`);
    return result;
  }

  const bad = text.indexOf('\uFFFD');
  if (bad >= 0) {
    sink.add('MLP005', [bad, bad + 1], 'The file contains bytes that are not valid UTF-8 (shown as \uFFFD). Re-save it with UTF-8 encoding.');
  }

  let doc: Document.Parsed;
  try {
    // Duplicate keys are found below in one pass: yaml's own check compares every key with every
    // earlier one, which is quadratic in the size of a mapping (seconds for thousands of steps).
    doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false, keepSourceTokens: false });
  } catch (e) {
    // The parser reports problems as errors on the document; this is for anything it did not foresee.
    sink.add('MLP001', [0, firstLineEnd(text)], `The YAML parser failed: ${(e as Error).message}`);
    return result;
  }
  result.doc = doc;

  let broken = false;
  let lastSyntaxLine = -1;
  for (const err of doc.errors) {
    const span = errorSpan(err.pos, text.length);
    const message = firstLine(err.message);
    if (err.code === 'DUPLICATE_KEY') {
      sink.add('MLP002', span, `${message}. Each key may appear once in a mapping: remove or rename one of them.`);
    } else if (err.code === 'MULTIPLE_DOCS') {
      sink.add('MLP006', span, 'Only the first YAML document is used. Remove the `---` and what follows, or move it to its own file.');
    } else if (err.code === 'RESOURCE_EXHAUSTION') {
      broken = true;
      sink.add('MLP003', span, `${message}. Simplify the structure.`);
    } else {
      // One broken token makes the parser report every token after it; the first one per line is the cause.
      const line = lines.position(span[0]).line;
      const cascade = broken && (line === lastSyntaxLine || / in YAML stream\b/.test(message));
      broken = true;
      lastSyntaxLine = line;
      if (!cascade) sink.add('MLP001', span, `${message}.${syntaxHint(text, span[0])}`);
    }
  }
  reportDuplicateKeys(doc, (span) => sink.add('MLP002', span, 'Map keys must be unique. Each key may appear once in a mapping: remove or rename one of them.'));
  for (const warn of doc.warnings) {
    sink.add('MLP001', errorSpan(warn.pos, text.length), `${firstLine(warn.message)}.`, { severity: 'warning' });
  }
  if (broken) return result;

  try {
    result.value = doc.toJS({ maxAliasCount: limits.maxAliasCount });
  } catch (e) {
    const span = firstAliasSpan(doc) ?? [0, firstLineEnd(text)];
    sink.add('MLP003', span, `Aliases expand to too much data (more than ${limits.maxAliasCount} alias uses, as in a "billion laughs" document), so the file was not checked further. Write the values out instead of using * aliases.`);
    return result;
  }
  if (doc.contents === null) {
    sink.add('MLP004', [0, firstLineEnd(text)], 'The spec is empty. Start with `apiVersion: mlpipeline/v1`, a `name` and at least one step under `steps:`.');
  } else if (!isMap(doc.contents)) {
    const r = doc.contents.range;
    sink.add('MLP004', r ? [r[0], r[1]] : [0, firstLineEnd(text)], 'A pipeline spec must be a mapping of keys such as `apiVersion`, `name` and `steps`.');
  } else {
    result.syntaxBroken = false;
  }
  return result;
}

/** Extra advice for the YAML mistakes pipeline authors make most. */
function syntaxHint(text: string, at: number): string {
  const lineStart = text.lastIndexOf('\n', at - 1) + 1;
  const line = text.slice(lineStart, text.indexOf('\n', at) < 0 ? text.length : text.indexOf('\n', at));
  if (line.includes('${') && line.includes('{') && /[{,]\s*[A-Za-z_]+\s*:/.test(line)) {
    return ' A `${...}` reference inside a flow mapping `{ }` must be quoted: write `"${...}"`.';
  }
  if (line.includes('\t')) return ' YAML indentation must use spaces, not tabs.';
  return '';
}

/** Calls `report` with the span of each key that repeats an earlier key of the same mapping. */
export function reportDuplicateKeys(doc: Document.Parsed, report: (span: Span) => void): void {
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const key = pair.key.value;
        if (seen.has(key) && pair.key.range) {
          report([pair.key.range[0], pair.key.range[1]]);
        }
        seen.add(key);
      }
    },
  });
}

function errorSpan(pos: [number, number], max: number): Span {
  const start = Math.min(pos[0], max);
  const end = Math.min(Math.max(pos[1], start), max);
  return [start, end === start && start < max ? start + 1 : end];
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i < 0 ? s : s.slice(0, i)).replace(/[.:]\s*$/, '');
}

function firstLineEnd(text: string): number {
  const i = text.search(/\r?\n/);
  return i < 0 ? Math.min(text.length, 200) : Math.min(i, 200);
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`;
}

function firstAliasSpan(doc: Document.Parsed): Span | undefined {
  let span: Span | undefined;
  visit(doc, {
    Alias(_, node) {
      if (isAlias(node) && node.range) {
        span = [node.range[0], node.range[1]];
        return visit.BREAK;
      }
    },
  });
  return span;
}

/**
 * Returns the offset where `[`/`{` nesting first exceeds max, or -1. A cheap scan that skips quoted
 * strings and comments; it only has to be right for the pathological case, not for every edge of YAML.
 */
export function findDeepFlowNesting(text: string, max: number): number {
  // The regex finds the next character that matters, natively: most of a spec is plain text.
  const special = /[[\]{}#"']/g;
  let depth = 0;
  while (special.test(text)) {
    const i = special.lastIndex - 1;
    const c = text.charCodeAt(i);
    if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > max) return i;
    } else if (c === 93 /* ] */ || c === 125 /* } */) {
      if (depth > 0) depth--;
    } else if (c === 35 /* # */) {
      if (i === 0 || text.charCodeAt(i - 1) === 32 || text.charCodeAt(i - 1) === 10) {
        const nl = text.indexOf('\n', i);
        if (nl < 0) return -1;
        special.lastIndex = nl + 1;
      }
    } else {
      // Only skip quotes that open a scalar (after space, bracket, comma or colon), not apostrophes in words.
      const prev = i > 0 ? text.charCodeAt(i - 1) : 32;
      if (prev === 32 || prev === 91 || prev === 123 || prev === 44 || prev === 58 || prev === 10) {
        let j = i + 1;
        for (; j < text.length; j++) {
          const d = text.charCodeAt(j);
          if (d === 92 /* \ */ && c === 34) j++;
          else if (d === c) break;
          else if (d === 10 && depth === 0) break;
        }
        if (j + 1 > text.length) return -1;
        special.lastIndex = j + 1;
      }
    }
  }
  return -1;
}
