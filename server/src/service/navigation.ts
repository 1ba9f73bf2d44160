import type { Location, Position, Range, TextEdit, WorkspaceEdit } from 'vscode-languageserver';
import type { SpecModel, SymbolKind } from '../core/model';
import type { Span } from '../core/problems';
import type { SpecAnalysis } from '../core/validate';
import { definitionOf, modelOf, nameSpan, offsetAt, referencesOf, targetAt } from './cursor';
import { namePattern } from './schema-nav';

/**
 * Go to definition, find references and rename for every named thing: steps, datasets, params, compute
 * targets, deployments, monitors, sweeps, secrets and step outputs, wherever they are written (plain
 * fields, `${...}`, `monitors.x`, `step.metric`). Never throws; refusals are returned as `{ error }`.
 */

interface Resolved {
  kind: SymbolKind;
  name: string;
  owner?: string;
  /** The name under the cursor. */
  span: Span;
}

function resolveAt(analysis: SpecAnalysis, position: Position): { model: SpecModel; at: Resolved } | undefined {
  const model = modelOf(analysis);
  if (!model) return undefined;
  const t = targetAt(model, analysis.parsed.text, offsetAt(analysis, position));
  return t ? { model, at: { kind: t.kind, name: t.name, owner: t.owner, span: t.span } } : undefined;
}

function defSpan(analysis: SpecAnalysis, model: SpecModel, at: Resolved): Span | undefined {
  const def = definitionOf(model, at.kind, at.name, at.owner);
  return def ? nameSpan(analysis.parsed.text, def.span, def.name) : undefined;
}

/** Where the thing under the cursor is defined (its name in the definition). */
export function definition(analysis: SpecAnalysis, uri: string, position: Position): Location[] {
  try {
    const r = resolveAt(analysis, position);
    if (!r) return [];
    const span = defSpan(analysis, r.model, r.at);
    return span ? [{ uri, range: analysis.parsed.lines.range(span) }] : [];
  } catch {
    return [];
  }
}

/** Every use of the thing under the cursor, in document order; with its definition when asked. */
export function references(analysis: SpecAnalysis, uri: string, position: Position, includeDeclaration = true): Location[] {
  try {
    const r = resolveAt(analysis, position);
    if (!r) return [];
    return occurrences(analysis, r.model, r.at, includeDeclaration).map((span) => ({ uri, range: analysis.parsed.lines.range(span) }));
  } catch {
    return [];
  }
}

function occurrences(analysis: SpecAnalysis, model: SpecModel, at: Resolved, includeDeclaration: boolean): Span[] {
  const spans: Span[] = [];
  const def = includeDeclaration ? defSpan(analysis, model, at) : undefined;
  if (def) spans.push(def);
  for (const ref of referencesOf(model, at.kind, at.name, at.owner)) spans.push(ref.span);
  const seen = new Set<string>();
  return spans
    .filter((s) => {
      const k = `${s[0]}:${s[1]}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .sort((a, b) => a[0] - b[0]);
}

const DEFINITION: Record<SymbolKind, { schema: string; noun: string; section: string }> = {
  step: { schema: 'stepName', noun: 'step', section: 'steps' },
  param: { schema: 'paramName', noun: 'param', section: 'params' },
  dataset: { schema: 'datasetName', noun: 'dataset', section: 'datasets' },
  output: { schema: 'outputName', noun: 'output', section: 'outputs' },
  compute: { schema: 'computeTargetName', noun: 'compute target', section: 'compute' },
  sweep: { schema: 'sweepName', noun: 'sweep', section: 'sweeps' },
  deployment: { schema: 'deploymentName', noun: 'deployment', section: 'deployments' },
  monitor: { schema: 'monitorName', noun: 'monitor', section: 'monitors' },
  secret: { schema: 'secretName', noun: 'secret', section: 'secrets' },
};

export type PrepareRenameResult = { range: Range; placeholder: string } | { error: string } | null;

/** The name that rename would change, or why it cannot (not a name, or not defined in this spec). */
export function prepareRename(analysis: SpecAnalysis, position: Position): PrepareRenameResult {
  try {
    const r = resolveAt(analysis, position);
    if (!r) return null;
    if (!definitionOf(r.model, r.at.kind, r.at.name, r.at.owner)) {
      const what = r.at.kind === 'output' ? `Step \`${r.at.owner}\` has no output \`${r.at.name}\`` : `\`${r.at.name}\` is not a defined ${DEFINITION[r.at.kind].noun}`;
      return { error: `${what}, so there is nothing to rename. Define it first (the quick fix can create it), or correct the name.` };
    }
    return { range: analysis.parsed.lines.range(r.at.span), placeholder: r.at.name };
  } catch {
    return null;
  }
}

/** Why a new name is not allowed for this kind of thing, or undefined when it is. */
export function invalidName(kind: SymbolKind, name: string): string | undefined {
  const d = DEFINITION[kind];
  const { pattern, message, maxLength } = namePattern(d.schema);
  if (name === '') return `A ${d.noun} name cannot be empty.`;
  if (pattern && !pattern.test(name)) return `\`${name}\` is not a valid ${d.noun} name. ${message}`;
  if (maxLength !== undefined && name.length > maxLength) return `\`${name}\` is not a valid ${d.noun} name: at most ${maxLength} characters.`;
  if (/^(true|false|null|yes|no|on|off|y|n)$/i.test(name)) return `\`${name}\` would be read by YAML as a boolean or null, not a name. Choose another name.`;
  return undefined;
}

/** Renames the thing under the cursor: its definition and every use. Invalid or taken names are refused. */
export function rename(analysis: SpecAnalysis, uri: string, position: Position, newName: string): WorkspaceEdit | { error: string } | null {
  try {
    const r = resolveAt(analysis, position);
    if (!r) return null;
    const prepared = prepareRename(analysis, position);
    if (prepared && 'error' in prepared) return prepared;
    newName = String(newName ?? '').trim();
    const bad = invalidName(r.at.kind, newName);
    if (bad) return { error: bad };
    if (newName === r.at.name) return { changes: { [uri]: [] } };
    if (definitionOf(r.model, r.at.kind, newName, r.at.owner)) {
      const d = DEFINITION[r.at.kind];
      return { error: r.at.kind === 'output' ? `Step \`${r.at.owner}\` already has an output \`${newName}\`.` : `A ${d.noun} named \`${newName}\` already exists under \`${d.section}\`.` };
    }
    const edits: TextEdit[] = occurrences(analysis, r.model, r.at, true).map((span) => ({ range: analysis.parsed.lines.range(span), newText: newName }));
    return { changes: { [uri]: edits } };
  } catch {
    return null;
  }
}
