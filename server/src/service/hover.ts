import { isMap, isScalar, isSeq, type Document, type Node } from 'yaml';
import type { Hover, MarkupContent, Position } from 'vscode-languageserver';
import type { SpecModel, SymbolKind } from '../core/model';
import type { Span } from '../core/problems';
import type { SpecAnalysis } from '../core/validate';
import { entries, get, items } from '../core/yaml-nodes';
import { contains, definitionOf, modelOf, nodeAt, offsetAt, targetAt } from './cursor';
import { docOf, resolveRef, schemaAt } from './schema-nav';

/** What `mlpipeline.lock` pins for a dataset (the executor writes it after a run). */
export interface LockedDataset {
  hash: string;
  files?: number;
  bytes?: number;
  uri?: string;
}

/** A metric of the last run: `evaluate.auc` and its value. */
export interface RunMetric {
  name: string;
  value?: number;
}

export interface DescribeOptions {
  /** The pinned hash of a dataset from `mlpipeline.lock`, when there is one. */
  lockedDataset?: (name: string) => LockedDataset | undefined;
  /** Metrics of the last run, for hover on `step.metric` and for completion. */
  lastRunMetrics?: () => readonly RunMetric[];
}

export type HoverOptions = DescribeOptions;

const NOUN: Record<SymbolKind, string> = {
  param: 'param',
  dataset: 'dataset',
  compute: 'compute target',
  step: 'step',
  output: 'output',
  secret: 'secret',
  sweep: 'sweep',
  deployment: 'deployment',
  monitor: 'monitor',
};

/** Hover: schema docs on keys, the resolved value on references and definitions. Never throws. */
export function hover(analysis: SpecAnalysis, position: Position, options: HoverOptions = {}): Hover | null {
  try {
    return hoverAt(analysis, offsetAt(analysis, position), options);
  } catch {
    return null;
  }
}

function hoverAt(analysis: SpecAnalysis, offset: number, options: HoverOptions): Hover | null {
  const text = analysis.parsed.text;
  const lines = analysis.parsed.lines;
  const doc = analysis.parsed.doc;
  const model = modelOf(analysis);
  const md = (value: string, span: Span): Hover => ({ contents: { kind: 'markdown', value } satisfies MarkupContent, range: lines.range(span) });

  if (model && doc) {
    const metric = model.metrics.find((m) => contains(m.span, offset) && offset > m.stepSpan[1]);
    if (metric) return md(describeMetric(model, doc, metric.step, metric.metric, options), metric.span);
    const target = targetAt(model, text, offset);
    if (target) {
      const body = describe(model, doc, text, target.kind, target.name, target.owner, options);
      if (body) return md(body, target.span);
    }
    // Elsewhere in a `${...}`: the namespace part describes the whole reference.
    const refs = model.references.filter((r) => r.syntax === 'interpolation' && contains(r.fullSpan, offset));
    const ref = refs.find((r) => r.kind === 'output') ?? refs[0];
    if (ref) {
      const body = describe(model, doc, text, ref.kind, ref.name, ref.owner, options);
      if (body) return md(body, ref.fullSpan);
    }
    const use = model.contextual.find((c) => c.name === 'model' && contains(c.span, offset));
    if (use) return md("`${model}`: the path of the deployed model inside the server's container or working folder, filled in when the deployment starts.", use.span);
  }

  const at = nodeAt(doc, offset);
  if (!at || at.path.length === 0) return null;
  const schema = schemaAt(at.path);
  if (at.onKey && at.keyNode?.range) {
    const docText = docOf(schema);
    return docText ? md(docText, [at.keyNode.range[0], at.keyNode.range[1]]) : null;
  }
  // A value: for an enum, what the chosen value means.
  const s = resolveRef(schema);
  if (s?.enum && isScalar(at.node) && at.node.range) {
    const i = s.enum.findIndex((v) => v === (at.node as { value: unknown }).value);
    const descriptions = (s.markdownEnumDescriptions ?? s.enumDescriptions) as string[] | undefined;
    if (i >= 0 && descriptions?.[i]) return md(`\`${String(s.enum[i])}\`: ${descriptions[i]}`, [at.node.range[0], at.node.range[1]]);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------
// Descriptions of named things, shared by hover and completion.

/** A scalar's value as text; numbers as written in the spec (`1.0e-5`, not `0.00001`). */
function scalarText(node: unknown, text: string): string | undefined {
  const n = node as Node | null;
  if (!isScalar(n)) return undefined;
  if (typeof n.value === 'string') return n.value;
  if (n.range && typeof n.value === 'number') return text.slice(n.range[0], n.range[1]);
  return n.value === null ? undefined : String(n.value);
}

function field(doc: Document, node: unknown, key: string, text: string): string | undefined {
  return scalarText(get(doc, node, key)?.value, text);
}

function code(s: string): string {
  const ticks = s.includes('`') ? '``' : '`';
  return `${ticks}${s}${ticks}`;
}

function flowText(doc: Document, node: unknown, text: string): string | undefined {
  const n = node as Node | null;
  if (!n) return undefined;
  if (isScalar(n)) return scalarText(n, text);
  if (isMap(n)) return `{${entries(doc, n).map((e) => `${e.key}: ${flowText(doc, e.value, text) ?? ''}`).join(', ')}}`;
  if (isSeq(n)) return `[${items(doc, n).map((i) => flowText(doc, i, text) ?? '').join(', ')}]`;
  return undefined;
}

/** The default of a param as written in the spec (`0.01`, `xgb`), for inlay hints and completion details. */
export function paramDefault(model: SpecModel, doc: Document, text: string, name: string): string | undefined {
  const sym = model.symbols.get('param')?.get(name);
  return sym ? field(doc, sym.node, 'default', text) : undefined;
}

/** A short one-line summary, for completion item details and the outline. */
export function summary(model: SpecModel, doc: Document, text: string, kind: SymbolKind, name: string, owner?: string): string | undefined {
  const sym = definitionOf(model, kind, name, owner);
  if (!sym) return undefined;
  const f = (k: string): string | undefined => field(doc, sym.node, k, text);
  switch (kind) {
    case 'param': {
      const type = f('type');
      const def = f('default');
      return [type, def !== undefined ? `= ${def}` : undefined].filter(Boolean).join(' ') || undefined;
    }
    case 'dataset':
      return f('uri');
    case 'compute':
      return [f('type'), f('image')].filter(Boolean).join(' · ') || undefined;
    case 'step':
      return f('description') ?? f('command')?.split('\n')[0];
    case 'output':
      return scalarText(sym.node, text);
    case 'deployment':
    case 'monitor':
    case 'sweep':
      return f('description');
    case 'secret':
      return 'secret (value never shown)';
  }
}

/** Markdown for a named thing: its kind, value and description. Secrets show their name only. */
export function describe(model: SpecModel, doc: Document, text: string, kind: SymbolKind, name: string, owner: string | undefined, options: DescribeOptions = {}): string | undefined {
  const sym = definitionOf(model, kind, name, owner);
  const title = kind === 'output' ? `**output** ${code(`${owner}.${name}`)}` : `**${NOUN[kind]}** ${code(name)}`;
  if (!sym) {
    if (kind === 'output') return `${title}\n\nStep ${code(owner ?? '?')} declares no output ${code(name)}.`;
    return `${title}\n\nNot defined in this spec.`;
  }
  const node = sym.node;
  const f = (k: string): string | undefined => field(doc, node, k, text);
  const out: string[] = [];
  const description = kind === 'output' ? undefined : f('description');
  switch (kind) {
    case 'param': {
      const type = f('type');
      out.push(`${title}${type ? ` · ${code(type)}` : ''}`);
      if (description) out.push(description);
      const facts: string[] = [];
      const def = f('default');
      if (def !== undefined) facts.push(`default ${code(def)}`);
      const min = f('min');
      const max = f('max');
      if (min !== undefined) facts.push(`min ${code(min)}`);
      if (max !== undefined) facts.push(`max ${code(max)}`);
      const values = get(doc, node, 'values')?.value;
      if (values) facts.push(`values ${code(flowText(doc, values, text) ?? '')}`);
      if (facts.length) out.push(facts.join(' · '));
      break;
    }
    case 'dataset': {
      out.push(title);
      if (description) out.push(description);
      const facts: string[] = [];
      const uri = f('uri');
      if (uri) facts.push(`uri ${code(uri)}`);
      const format = f('format');
      if (format) facts.push(`format ${code(format)}`);
      const version = f('version');
      if (version) facts.push(`version ${code(version)}`);
      if (facts.length) out.push(facts.join(' · '));
      const locked = safe(() => options.lockedDataset?.(name));
      if (locked?.hash) {
        const extra = [locked.files !== undefined ? `${locked.files} file${locked.files === 1 ? '' : 's'}` : undefined, locked.bytes !== undefined ? formatBytes(locked.bytes) : undefined].filter(Boolean).join(', ');
        out.push(`pinned in \`mlpipeline.lock\`: ${code(locked.hash)}${extra ? ` (${extra})` : ''}`);
      } else if (version !== 'none') {
        out.push('Not pinned yet: `mlpipeline.lock` gets its content hash on the next run.');
      }
      break;
    }
    case 'step': {
      out.push(title);
      if (description) out.push(description);
      const command = f('command');
      if (command !== undefined) out.push('```sh\n' + command.replace(/```/g, '` ` `') + '\n```');
      const facts: string[] = [];
      const needs = items(doc, get(doc, node, 'needs')?.value).map((n) => scalarText(n, text)).filter((x): x is string => !!x);
      if (needs.length) facts.push(`needs ${needs.map(code).join(', ')}`);
      const compute = f('compute');
      if (compute) facts.push(`compute ${code(compute)}`);
      const metrics = f('metrics');
      if (metrics) facts.push(`metrics ${code(metrics)}`);
      if (facts.length) out.push(facts.join(' · '));
      const outputs = entries(doc, get(doc, node, 'outputs')?.value);
      if (outputs.length) out.push('outputs:\n' + outputs.map((o) => `- ${code(o.key)}: ${code(scalarText(o.value, text) ?? '')}`).join('\n'));
      break;
    }
    case 'output': {
      out.push(title);
      const path = scalarText(node, text);
      if (path !== undefined) out.push(`written to ${code(path)} by step ${code(owner ?? '')}`);
      const stepDescription = field(doc, model.symbols.get('step')?.get(owner ?? '')?.node, 'description', text);
      if (stepDescription) out.push(stepDescription);
      break;
    }
    case 'compute': {
      const type = f('type');
      out.push(`${title}${type ? ` · ${code(type)}` : ''}`);
      if (description) out.push(description);
      const facts: string[] = [];
      if (f('default') === 'true') facts.push('the default target');
      for (const k of ['image', 'context', 'namespace', 'maxParallel']) {
        const v = f(k);
        if (v !== undefined) facts.push(`${k} ${code(v)}`);
      }
      const resources = flowText(doc, get(doc, node, 'resources')?.value, text);
      if (resources) facts.push(`resources ${code(resources)}`);
      if (facts.length) out.push(facts.join(' · '));
      break;
    }
    case 'secret':
      out.push(title);
      out.push('Only the name is in the spec: the value comes from the OS keychain (local runs) or a Kubernetes Secret (cluster runs) and is never shown. Pass it to a step with `env: {NAME: "${secrets.NAME}"}`.');
      break;
    case 'deployment': {
      out.push(title);
      if (description) out.push(description);
      const facts: string[] = [];
      for (const k of ['model', 'gate', 'compute']) {
        const v = f(k);
        if (v !== undefined) facts.push(`${k} ${code(v)}`);
      }
      const cmd = field(doc, get(doc, node, 'runtime')?.value, 'command', text);
      if (cmd) facts.push(`runtime ${code(cmd)}`);
      if (facts.length) out.push(facts.join('  \n'));
      break;
    }
    case 'monitor': {
      out.push(title);
      if (description) out.push(description);
      const facts: string[] = [];
      const dep = f('deployment');
      if (dep) facts.push(`deployment ${code(dep)}`);
      for (const k of ['slo', 'drift']) {
        const v = flowText(doc, get(doc, node, k)?.value, text);
        if (v) facts.push(`${k} ${code(v)}`);
      }
      if (facts.length) out.push(facts.join('  \n'));
      break;
    }
    case 'sweep': {
      out.push(title);
      if (description) out.push(description);
      const facts: string[] = [];
      for (const k of ['step', 'method']) {
        const v = f(k);
        if (v) facts.push(`${k} ${code(v)}`);
      }
      const params = entries(doc, get(doc, node, 'parameters')?.value).map((e) => e.key);
      if (params.length) facts.push(`parameters ${params.map(code).join(', ')}`);
      const objective = flowText(doc, get(doc, node, 'objective')?.value, text);
      if (objective) facts.push(`objective ${code(objective)}`);
      if (facts.length) out.push(facts.join('  \n'));
      break;
    }
  }
  return out.join('\n\n');
}

/** Markdown for `step.metric`: where the metric comes from and its value in the last run. */
export function describeMetric(model: SpecModel, doc: Document, step: string, metric: string, options: DescribeOptions = {}): string {
  const text = '';
  const sym = model.symbols.get('step')?.get(step);
  const file = sym ? scalarText(get(doc, sym.node, 'metrics')?.value, text) : undefined;
  const out = [`**metric** ${code(`${step}.${metric}`)}`];
  if (!sym) out.push(`Step ${code(step)} is not defined.`);
  else if (file) out.push(`Key ${code(metric)} of ${code(file)}, written by step ${code(step)}.`);
  else out.push(`Step ${code(step)} declares no \`metrics\` file.`);
  const last = safe(() => options.lastRunMetrics?.())?.find((m) => m.name === `${step}.${metric}`);
  if (last && last.value !== undefined) out.push(`Last run: ${code(String(last.value))}`);
  return out.join('\n\n');
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
