import { LineIndex, type Position } from '../../server/src/core/problems';
import { analyzeSpec, type SpecAnalysis, type ValidationOptions } from '../../server/src/core/validate';

export interface Cursor {
  /** The text without the marker. */
  text: string;
  offset: number;
  position: Position;
  analysis: SpecAnalysis;
}

/** A spec with one `|` marking the cursor: the text without it, the cursor's offset and LSP position, and the analysis. */
export function cursor(marked: string, options?: ValidationOptions): Cursor {
  const offset = marked.indexOf('|');
  if (offset < 0 || marked.indexOf('|', offset + 1) >= 0) throw new Error('mark the cursor with exactly one `|` (write block scalars with `>-`)');
  const text = marked.slice(0, offset) + marked.slice(offset + 1);
  return { text, offset, position: new LineIndex(text).position(offset), analysis: analyzeSpec(text, options) };
}

/** Applies LSP text edits (non-overlapping, any order) to a text. */
export function applyEdits(text: string, edits: readonly { range: { start: Position; end: Position }; newText: string }[]): string {
  const lines = new LineIndex(text);
  const sorted = edits.map((e) => ({ start: lines.offset(e.range.start), end: lines.offset(e.range.end), newText: e.newText })).sort((a, b) => b.start - a.start || b.end - a.end);
  let out = text;
  for (const e of sorted) out = out.slice(0, e.start) + e.newText + out.slice(e.end);
  return out;
}
