import { CODES, type Code, type Severity } from './codes';

/** Zero-based line and UTF-16 character, as in LSP, so no conversion is needed at the edges. */
export interface Position {
  line: number;
  character: number;
}
export interface Range {
  start: Position;
  end: Position;
}

/** A place in the same document that explains a problem (e.g. the other edges of a cycle). */
export interface RelatedPlace {
  range: Range;
  message: string;
}

export interface Problem {
  code: Code;
  severity: Severity;
  /** Says what is wrong and how to fix it. */
  message: string;
  range: Range;
  /** Marks unused things so editors can fade them. */
  unnecessary?: boolean;
  related?: RelatedPlace[];
}

/** Offsets into the text, half-open: [start, end). What core code works with before ranges are made. */
export type Span = readonly [number, number];

/**
 * Converts offsets to LSP positions. Built once per text; lookups are a binary search over line starts.
 */
export class LineIndex {
  private readonly starts: number[] = [0];
  /** Where the search for the next line break resumes; line starts are found on demand, so a file refused
   * for its size (MLP003 on its first line) is never scanned to the end. */
  private next = 0;
  private done = false;
  private readonly hasCR: boolean;
  constructor(readonly text: string) {
    this.hasCR = text.includes('\r');
  }
  /** Records every line start at or before `limit`. */
  private scanTo(limit: number): void {
    if (this.done) return;
    const text = this.text;
    if (!this.hasCR) {
      // The common case, found by the engine's fast search rather than a loop over every character.
      for (let i = text.indexOf('\n', this.next); ; i = text.indexOf('\n', this.next)) {
        if (i < 0) return void (this.done = true);
        if (i + 1 > limit) return void (this.next = i);
        this.starts.push(i + 1);
        this.next = i + 1;
      }
    }
    for (let i = this.next; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) {
        if (i + 1 > limit) return void (this.next = i);
        this.starts.push(i + 1);
      }
    }
    this.done = true;
  }
  get lineCount(): number {
    this.scanTo(Infinity);
    return this.starts.length;
  }
  /** Where every line starts (the text scanned to its end once). Not to be modified. */
  lineStarts(): readonly number[] {
    this.scanTo(Infinity);
    return this.starts;
  }
  position(offset: number): Position {
    const o = Math.max(0, Math.min(offset, this.text.length));
    this.scanTo(o);
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo, character: o - this.starts[lo] };
  }
  offset(pos: Position): number {
    if (pos.line < 0) return 0;
    this.scanTo(Infinity);
    if (pos.line >= this.starts.length) return this.text.length;
    const lineEnd = pos.line + 1 < this.starts.length ? this.starts[pos.line + 1] : this.text.length;
    return Math.min(this.starts[pos.line] + Math.max(0, pos.character), lineEnd);
  }
  range(span: Span): Range {
    return { start: this.position(span[0]), end: this.position(span[1]) };
  }
}

/** Collects problems for one document, giving each its code's default severity. */
export class ProblemSink {
  readonly problems: Problem[] = [];
  constructor(private readonly lines: LineIndex) {}
  add(code: Code, span: Span, message: string, extra?: Partial<Omit<Problem, 'code' | 'message' | 'range'>> & { relatedSpans?: { span: Span; message: string }[] }): void {
    const { relatedSpans, ...rest } = extra ?? {};
    const problem: Problem = { code, severity: CODES[code].severity, message, range: this.lines.range(span), ...rest };
    if (relatedSpans?.length) problem.related = relatedSpans.map((r) => ({ range: this.lines.range(r.span), message: r.message }));
    this.problems.push(problem);
  }
}

/** Stable order for output and golden files: by position, then code. */
export function sortProblems(problems: Problem[]): Problem[] {
  return problems.sort(
    (a, b) =>
      a.range.start.line - b.range.start.line ||
      a.range.start.character - b.range.start.character ||
      a.range.end.line - b.range.end.line ||
      a.range.end.character - b.range.end.character ||
      a.code.localeCompare(b.code) ||
      a.message.localeCompare(b.message),
  );
}
