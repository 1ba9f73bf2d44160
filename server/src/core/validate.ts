import { buildModel, type SpecModel } from './model';
import { DEFAULT_LIMITS, parseSpec, type ParseLimits, type ParsedSpec } from './parse';
import { ProblemSink, sortProblems, type Problem } from './problems';
import { validateAgainstSchema } from './schema';
import { reportSchemaErrors } from './schema-problems';
import { checkSemantics } from './semantic';

export interface ValidationOptions {
  limits?: Partial<ParseLimits>;
  /** Report unused params/datasets/secrets (hints). On by default. */
  unusedHints?: boolean;
}

export interface SpecAnalysis {
  parsed: ParsedSpec;
  /** Named things and references; absent when the YAML itself is broken. */
  model?: SpecModel;
  /** Every problem, sorted by position. */
  problems: Problem[];
}

/**
 * The one entry point the editor and the CLI share: text in, model and problems out. Pure: no IO,
 * never throws on user input.
 */
export function analyzeSpec(text: string, options: ValidationOptions = {}): SpecAnalysis {
  const parsed = parseSpec(text, { ...DEFAULT_LIMITS, ...options.limits });
  const problems = [...parsed.problems];
  const analysis: SpecAnalysis = { parsed, problems };
  if (parsed.syntaxBroken || !parsed.doc) return finish(analysis);
  const sink = new ProblemSink(parsed.lines);
  reportSchemaErrors(parsed.doc, validateAgainstSchema(parsed.value), sink);
  analysis.model = buildModel(parsed.doc, text);
  checkSemantics(parsed.doc, analysis.model, sink);
  const hints = options.unusedHints ?? true;
  problems.push(...sink.problems.filter((p) => hints || p.severity !== 'hint'));
  return finish(analysis);
}

function finish(a: SpecAnalysis): SpecAnalysis {
  sortProblems(a.problems);
  return a;
}
