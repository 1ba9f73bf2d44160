import { analyzeSpec, type ValidationOptions } from '../../server/src/core/validate';
import { LineIndex, type Problem, type Range } from '../../server/src/core/problems';

/** The text a range covers, so tests assert "the range is exactly `nope`" instead of line numbers. */
export function textAt(text: string, range: Range): string {
  const lines = new LineIndex(text);
  return text.slice(lines.offset(range.start), lines.offset(range.end));
}

export interface Found {
  code: string;
  severity: string;
  text: string;
  message: string;
}

/** Problems with the text each one points at. */
export function check(text: string, options?: ValidationOptions): Found[] {
  return analyzeSpec(text, options).problems.map((p: Problem) => ({ code: p.code, severity: p.severity, text: textAt(text, p.range), message: p.message }));
}

/** A minimal valid spec with extra YAML appended (indentation as written). */
export function spec(body: string): string {
  return `apiVersion: mlpipeline/v1\nname: t\n${body}`;
}

/** `text` with a `|` cursor marker at the `nth` occurrence of `needle`, `offset` characters into it. */
export function markAt(text: string, needle: string, offset = 1, nth = 0): string {
  let i = -1;
  for (let n = 0; n <= nth; n++) i = text.indexOf(needle, i + 1);
  if (i < 0) throw new Error(`\`${needle}\` is not in the text (occurrence ${nth})`);
  return text.slice(0, i + offset) + '|' + text.slice(i + offset);
}
