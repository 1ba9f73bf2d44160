import { existsSync, readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { analyzeSpec, type SpecAnalysis } from '../../../server/src/core/validate';
import { UsageError } from './args';
import { findSpecs } from './find-specs';
import { formatText } from './formats';

export interface LoadedSpec {
  path: string;
  text: string;
  analysis: SpecAnalysis;
}

/** The spec named on the command line, or the one mlpipeline.yaml in (or below) the current folder. */
export function locateSpec(given: string | undefined): string {
  if (given) {
    const p = resolve(given);
    if (!existsSync(p)) throw new UsageError(`${given} does not exist.`);
    return p;
  }
  for (const name of ['mlpipeline.yaml', 'mlpipeline.yml']) if (existsSync(resolve(name))) return resolve(name);
  const found = findSpecs(process.cwd(), 2);
  if (found.length === 1) return found[0];
  if (found.length === 0) throw new UsageError('No mlpipeline.yaml here. Name the spec, e.g. `mlpipeline run samples/churn-local/mlpipeline.yaml`.');
  throw new UsageError(`Several specs found; name one:\n  ${found.map((f) => relative(process.cwd(), f)).join('\n  ')}`);
}

/** Reads and validates; prints the problems and returns undefined when there are errors. */
export function loadSpec(given: string | undefined): LoadedSpec | undefined {
  const path = locateSpec(given);
  const text = new TextDecoder().decode(readFileSync(path));
  const analysis = analyzeSpec(text, { unusedHints: false });
  const errors = analysis.problems.filter((p) => p.severity === 'error');
  if (errors.length) {
    process.stderr.write(formatText([{ file: relative(process.cwd(), path) || path, problems: errors }], false));
    process.stderr.write('Fix these problems first (`mlpipeline validate` lists them all).\n');
    return undefined;
  }
  return { path, text, analysis };
}
