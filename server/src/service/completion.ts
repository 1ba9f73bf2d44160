import type { Document } from 'yaml';
import { CompletionItemKind, InsertTextFormat, InsertTextMode, type CompletionItem, type CompletionList, type Position, type Range } from 'vscode-languageserver';
import type { SpecModel, SymbolKind } from '../core/model';
import type { JsonSchema } from '../core/schema';
import { KNOWN_GPUS } from '../core/semantic';
import type { SpecAnalysis } from '../core/validate';
import { get } from '../core/yaml-nodes';
import { analysisLineStarts, lineContext, modelOf, offsetAt, valueAt, type LineContext } from './cursor';
import { describe, summary, type DescribeOptions } from './hover';
import { allowedProperties, docOf, hasConditions, isNamedMap, requiredProperties, resolveRef, schemaAt, typesOf } from './schema-nav';

export interface CompletionOptions extends DescribeOptions {
  /** The client accepts snippets (`completionItem.snippetSupport`); plain text otherwise. Default true. */
  snippets?: boolean;
  /** The document's URI, carried in items resolved later (`CompletionData`). */
  uri?: string;
}

const EMPTY: CompletionList = { isIncomplete: false, items: [] };
/**
 * Above this many candidates, items carry no detail or documentation: the client asks for them with
 * `completionItem/resolve` for the item it shows (see `resolveCompletion`). Keeps big specs fast.
 */
const DOC_LIMIT = 200;

/** What `completionItem/resolve` needs to document an item: the named thing (and the spec's URI, set by the server). */
export interface CompletionData {
  kind: SymbolKind;
  name: string;
  owner?: string;
  uri?: string;
}

/**
 * Completion at a position: keys and values from the schema, and names of the spec's own things where a
 * field refers to them. Reads the context from the lines around the cursor, so it works while the YAML is
 * momentarily broken. Never throws.
 */
export function completion(analysis: SpecAnalysis, position: Position, options: CompletionOptions = {}): CompletionList {
  try {
    const offset = offsetAt(analysis, position);
    const ctx = lineContext(analysis.parsed.text, offset, analysisLineStarts(analysis));
    if (!ctx) return EMPTY;
    const c = new Completer(analysis, ctx, options, offset);
    const list = capList(c.run(), analysis.parsed.text, offset);
    if (c.narrowed) list.isIncomplete = true;
    return list;
  } catch {
    return EMPTY;
  }
}

/** Most items sent at once; a longer list is narrowed by what is typed and marked incomplete. */
const LIST_LIMIT = 200;

/**
 * Thousands of step names in `needs` cost more to send than to compute. Past LIST_LIMIT the list is
 * narrowed to items containing the word being typed and marked incomplete, so the editor asks again
 * as the user types and every name stays reachable.
 */
export function capList(items: CompletionItem[], text: string, offset: number): CompletionList {
  if (items.length <= LIST_LIMIT) return { isIncomplete: false, items };
  return { isIncomplete: true, items: narrow(items, (i) => i.label, typedWord(text, offset)) };
}

/** The word being typed before offset, lower-cased, after its last dot: what long lists are narrowed by. */
function typedWord(text: string, offset: number): string {
  const word = (/[A-Za-z0-9_.-]*$/.exec(text.slice(Math.max(0, offset - 100), offset))?.[0] ?? '').toLowerCase();
  return word.slice(word.lastIndexOf('.') + 1);
}

/** Up to LIST_LIMIT of xs whose label contains tail, those starting with it first. */
function narrow<T>(xs: T[], label: (x: T) => string, tail: string): T[] {
  if (!tail) return xs.slice(0, LIST_LIMIT);
  const starts: T[] = [];
  const contains: T[] = [];
  for (const x of xs) {
    const l = label(x).toLowerCase();
    if (l.startsWith(tail)) starts.push(x);
    else if (l.includes(tail)) contains.push(x);
  }
  return [...starts, ...contains].slice(0, LIST_LIMIT);
}

/** Fills in the detail and documentation of an item completion left out (large specs). Never throws. */
export function resolveCompletion(analysis: SpecAnalysis | undefined, item: CompletionItem, options: DescribeOptions = {}): CompletionItem {
  try {
    const data = item.data as CompletionData | undefined;
    const model = modelOf(analysis);
    const doc = analysis?.parsed.doc;
    if (!data || !model || !doc || typeof data.name !== 'string' || typeof data.kind !== 'string') return item;
    const text = analysis!.parsed.text;
    const detail = summary(model, doc, text, data.kind, data.name, data.owner);
    const value = describe(model, doc, text, data.kind, data.name, data.owner, options);
    return { ...item, detail: item.detail ?? detail, documentation: item.documentation ?? (value ? { kind: 'markdown', value } : undefined) };
  } catch {
    return item;
  }
}

class Completer {
  private readonly model: SpecModel | undefined;
  private readonly doc: Document | null;
  private readonly text: string;
  private readonly snippets: boolean;
  private readonly crlf: boolean;

  constructor(
    private readonly analysis: SpecAnalysis,
    private readonly ctx: LineContext,
    private readonly options: CompletionOptions,
    private readonly offset: number,
  ) {
    this.model = modelOf(analysis);
    this.doc = analysis.parsed.doc;
    this.text = analysis.parsed.text;
    this.snippets = options.snippets ?? true;
    this.crlf = this.text.includes('\r\n');
  }

  run(): CompletionItem[] {
    const { ctx } = this;
    if (ctx.interpolation) return this.interpolation();
    if (ctx.blockScalar) return [];
    if (ctx.kind === 'key') return this.keys(ctx.path);
    return this.values();
  }

  // ------------------------------------------------------------------------------------------------
  // Names

  private names(kind: SymbolKind): string[] {
    return [...(this.model?.symbols.get(kind)?.keys() ?? [])];
  }

  private outputsOf(step: string): string[] {
    const out: string[] = [];
    for (const sym of this.model?.symbols.get('output')?.values() ?? []) if (sym.owner === step) out.push(sym.name);
    return out;
  }

  private stepsWithMetrics(): string[] {
    const doc = this.doc;
    if (!doc) return [];
    return [...(this.model?.symbols.get('step')?.values() ?? [])].filter((s) => !!get(doc, s.node, 'metrics')).map((s) => s.name);
  }

  private docFor(kind: SymbolKind, name: string, owner: string | undefined, many: boolean): { detail?: string; documentation?: { kind: 'markdown'; value: string }; data?: CompletionData } {
    if (!this.model || !this.doc) return {};
    if (many) return { data: { kind, name, owner, uri: this.options.uri } };
    const detail = summary(this.model, this.doc, this.text, kind, name, owner);
    const value = describe(this.model, this.doc, this.text, kind, name, owner, this.options);
    return { detail, documentation: value ? { kind: 'markdown', value } : undefined };
  }

  private readonly ranges = new Map<string, Range>();

  private range(start: number, end: number): Range {
    const key = `${start}:${end}`;
    let r = this.ranges.get(key);
    if (!r) this.ranges.set(key, (r = this.analysis.parsed.lines.range([start, end])));
    return r;
  }

  private edit(newText: string, start = this.ctx.wordStart, end = this.ctx.wordEnd): Pick<CompletionItem, 'textEdit' | 'insertTextFormat'> {
    return { textEdit: { range: this.range(start, end), newText }, insertTextFormat: InsertTextFormat.PlainText };
  }

  private snippetEdit(snippet: string, start = this.ctx.wordStart, end = this.ctx.wordEnd): Pick<CompletionItem, 'textEdit' | 'insertTextFormat' | 'insertTextMode'> {
    const lines = this.analysis.parsed.lines;
    const plain = this.snippets ? snippet : snippetToPlain(snippet);
    // Multi-line insertions use the document's line ending.
    const newText = this.crlf ? plain.replace(/\r?\n/g, '\r\n') : plain;
    return {
      textEdit: { range: lines.range([start, end]), newText },
      insertTextFormat: this.snippets ? InsertTextFormat.Snippet : InsertTextFormat.PlainText,
      insertTextMode: InsertTextMode.asIs,
    };
  }

  /** Set when a list was narrowed to what is typed before its items were made (thousands of names). */
  narrowed = false;

  private nameItems(kind: SymbolKind, names: string[], itemKind: CompletionItemKind, wrap?: (n: string) => string, owner?: (n: string) => string | undefined): CompletionItem[] {
    const many = names.length > DOC_LIMIT;
    let indexed = names.map((n, i) => [n, i] as const);
    if (names.length > LIST_LIMIT) {
      // What capList would keep, chosen before thousands of items are made; sortText keeps the full list's order.
      indexed = narrow(indexed, ([n]) => n, typedWord(this.text, this.offset));
      this.narrowed = true;
    }
    return indexed.map(([n, i]) => ({
      label: n,
      kind: itemKind,
      sortText: String(i).padStart(5, '0'),
      ...this.docFor(kind, n, owner?.(n), many),
      ...this.edit(wrap ? wrap(n) : yamlScalar(n, this.ctx.flow)),
    }));
  }

  // ------------------------------------------------------------------------------------------------
  // `${...}`

  private interpolation(): CompletionItem[] {
    const { ctx } = this;
    const ip = ctx.interpolation!;
    const segs = ip.inner.split('.');
    const done = segs.slice(0, -1);
    const path = ctx.path;
    const section = path[0];
    const inStep = section === 'steps' && path.length >= 2 ? path[1] : undefined;
    const inEnv = path.includes('env');
    const inRuntime = section === 'deployments' && path[2] === 'runtime';
    const close = ip.closed ? '' : '}';
    const whole = (label: string, kind: SymbolKind, name: string, owner: string | undefined, itemKind: CompletionItemKind, many: boolean, sort: string): CompletionItem => ({
      label,
      kind: itemKind,
      sortText: sort,
      ...this.docFor(kind, name, owner, many),
      ...this.edit(label + close, ip.start, ctx.wordEnd),
    });

    if (done.length === 0) {
      const namespaces: [string, string][] = [
        ['params', 'A param: `${params.NAME}`.'],
        ['datasets', 'A dataset: `${datasets.NAME}`.'],
        ['steps', "Another step's output: `${steps.STEP.outputs.NAME}`."],
      ];
      if (inStep) namespaces.push(['outputs', "One of this step's own outputs: `${outputs.NAME}`."]);
      if (inEnv) namespaces.push(['secrets', 'A secret, by name (only in `env`): `${secrets.NAME}`.']);
      if (inRuntime) namespaces.push(['model', "The deployed model's path: `${model}`."]);
      const items: CompletionItem[] = namespaces.map(([ns, doc], i) => ({
        label: ns,
        kind: ns === 'model' ? CompletionItemKind.Variable : CompletionItemKind.Module,
        sortText: `0${i}`,
        documentation: { kind: 'markdown', value: doc },
        ...this.edit(ns === 'model' ? `model${close}` : ns, ip.start, ctx.wordEnd),
      }));
      // The common targets in full, so one pick completes the reference.
      const params = this.names('param');
      const datasets = this.names('dataset');
      const many = params.length + datasets.length > DOC_LIMIT;
      params.forEach((p, i) => items.push(whole(`params.${p}`, 'param', p, undefined, CompletionItemKind.Variable, many, `1${String(i).padStart(5, '0')}`)));
      datasets.forEach((d, i) => items.push(whole(`datasets.${d}`, 'dataset', d, undefined, CompletionItemKind.File, many, `2${String(i).padStart(5, '0')}`)));
      if (inStep) this.outputsOf(inStep).forEach((o, i) => items.push(whole(`outputs.${o}`, 'output', o, inStep, CompletionItemKind.Field, false, `3${String(i).padStart(5, '0')}`)));
      if (inEnv) this.names('secret').forEach((s, i) => items.push(whole(`secrets.${s}`, 'secret', s, undefined, CompletionItemKind.Constant, false, `4${String(i).padStart(5, '0')}`)));
      return items;
    }

    const leaf = (kind: SymbolKind, names: string[], itemKind: CompletionItemKind, owner?: string): CompletionItem[] => {
      const many = names.length > DOC_LIMIT;
      return names.map((n, i) => ({ label: n, kind: itemKind, sortText: String(i).padStart(5, '0'), ...this.docFor(kind, n, owner, many), ...this.edit(n + close) }));
    };
    const [ns] = done;
    if (done.length === 1) {
      switch (ns) {
        case 'params':
          return leaf('param', this.names('param'), CompletionItemKind.Variable);
        case 'datasets':
          return leaf('dataset', this.names('dataset'), CompletionItemKind.File);
        case 'secrets':
          return leaf('secret', this.names('secret'), CompletionItemKind.Constant);
        case 'outputs':
          return inStep ? leaf('output', this.outputsOf(inStep), CompletionItemKind.Field, inStep) : [];
        case 'steps': {
          const steps = this.names('step').filter((s) => s !== inStep);
          const many = steps.length > DOC_LIMIT;
          const items: CompletionItem[] = steps.map((s, i) => ({ label: s, kind: CompletionItemKind.Function, sortText: `0${String(i).padStart(5, '0')}`, ...this.docFor('step', s, undefined, many), ...this.edit(`${s}.outputs.`) }));
          // `train.outputs.model` in one pick, for specs of a readable size.
          const outputs = [...(this.model?.symbols.get('output')?.values() ?? [])].filter((o) => o.owner !== inStep);
          if (outputs.length <= DOC_LIMIT) {
            outputs.forEach((o, i) => items.push({ label: `${o.owner}.outputs.${o.name}`, kind: CompletionItemKind.Field, sortText: `1${String(i).padStart(5, '0')}`, ...this.docFor('output', o.name, o.owner, false), ...this.edit(`${o.owner}.outputs.${o.name}${close}`) }));
          }
          return items;
        }
        default:
          return [];
      }
    }
    if (ns === 'steps' && done.length === 2) {
      return [{ label: 'outputs', kind: CompletionItemKind.Module, documentation: { kind: 'markdown', value: `Outputs of step \`${done[1]}\`.` }, ...this.edit('outputs.') }];
    }
    if (ns === 'steps' && done.length === 3 && done[2] === 'outputs') return leaf('output', this.outputsOf(done[1]), CompletionItemKind.Field, done[1]);
    return [];
  }

  // ------------------------------------------------------------------------------------------------
  // Keys

  private keys(path: string[]): CompletionItem[] {
    const { ctx } = this;
    const schema = schemaAt(path);
    // Keys of a sweep's `parameters` are param names.
    if (path.length === 3 && path[0] === 'sweeps' && path[2] === 'parameters') {
      const params = this.names('param').filter((p) => !ctx.present.includes(p));
      return params.map((p, i) => ({
        label: p,
        kind: CompletionItemKind.Variable,
        sortText: String(i).padStart(5, '0'),
        ...this.docFor('param', p, undefined, params.length > DOC_LIMIT),
        ...(this.followedByColon() ? this.edit(p) : this.snippetEdit(`${p}: [\${1}]`)),
      }));
    }
    if (!schema) return [];
    if (isNamedMap(schema)) return this.newEntrySnippets(schema);
    const present = new Set(ctx.present);
    // The mapping's current value decides `if`/`then` branches (local vs kubernetes keys); only read when the schema has them.
    const value = hasConditions(schema) ? valueAt(this.doc, path) : undefined;
    const required = new Set(requiredProperties(schema, value));
    return allowedProperties(schema, value)
      .filter(([k]) => !present.has(k))
      .map(([k, s], i) => this.keyItem(k, s, required.has(k), i));
  }

  private followedByColon(): boolean {
    return /^\s*:/.test(this.text.slice(this.ctx.wordEnd, this.ctx.wordEnd + 20).split('\n')[0]);
  }

  private keyItem(key: string, schema: JsonSchema, required: boolean, order: number): CompletionItem {
    const documentation = docOf(schema);
    const item: CompletionItem = {
      label: key,
      kind: CompletionItemKind.Property,
      detail: typeof schema.description === 'string' ? schema.description : undefined,
      documentation: documentation ? { kind: 'markdown', value: documentation } : undefined,
      sortText: `${required ? 0 : 1}${String(order).padStart(3, '0')}`,
    };
    if (this.followedByColon()) return { ...item, ...this.edit(key) };
    return { ...item, ...this.snippetEdit(`${key}:${this.valueSnippet(key, schema, this.ctx.indent)}`) };
  }

  /** The text after `key:` for a new key: ` value`, or a nested block on the following lines. */
  private valueSnippet(key: string, schema: JsonSchema, indent: number): string {
    const s = resolveRef(schema) ?? schema;
    const types = typesOf(s);
    const pad = ' '.repeat(indent + 2);
    const flow = this.ctx.flow;
    if (s.enum && s.enum.length) {
      const values = orderDefaultFirst(s.enum, s.default).map((v) => escapeChoice(yamlScalar(v, true)));
      return ` \${1|${values.join(',')}|}`;
    }
    if (types.length === 1 && types[0] === 'boolean') {
      return ` \${1|${orderDefaultFirst([true, false], s.default).join(',')}|}`;
    }
    if (types[0] === 'object' && !flow) {
      const snippet = (s.defaultSnippets as { body?: unknown }[] | undefined)?.[0]?.body;
      if (snippet && typeof snippet === 'object' && !Array.isArray(snippet)) return '\n' + blockYaml(snippet as Record<string, unknown>, indent + 2);
      const req = requiredProperties(s, undefined);
      if (req.length && !isNamedMap(s)) {
        let n = 0;
        return '\n' + req.map((r) => `${pad}${r}:${placeholder(s.properties?.[r], ++n, r)}`).join('\n');
      }
      return `\n${pad}\${1}`;
    }
    if (types[0] === 'object') return ' {${1}}';
    if (types[0] === 'array') {
      const itemTypes = typesOf(s.items as JsonSchema | undefined);
      if (itemTypes[0] === 'object' && !flow) return `\n${pad}- \${1}`;
      return ' [${1}]';
    }
    return placeholder(s, 1, key);
  }

  /** Under `steps:`, `datasets:`... : the schema's snippets for a new entry, at the cursor's indentation. */
  private newEntrySnippets(schema: JsonSchema): CompletionItem[] {
    if (this.ctx.flow) return [];
    const s = resolveRef(schema) ?? schema;
    const snippets = (s.defaultSnippets as { label?: string; description?: string; body?: unknown }[] | undefined) ?? [];
    return snippets
      .filter((sn) => sn.body && typeof sn.body === 'object' && !Array.isArray(sn.body))
      .map((sn, i) => {
        const body = blockYaml(sn.body as Record<string, unknown>, this.ctx.indent).slice(this.ctx.indent);
        return {
          label: sn.label ?? 'New entry',
          kind: CompletionItemKind.Snippet,
          detail: sn.description,
          documentation: { kind: 'markdown', value: '```yaml\n' + snippetToPlain(body) + '\n```' },
          sortText: `0${i}`,
          filterText: this.ctx.prefix || undefined,
          ...this.snippetEdit(body),
        } satisfies CompletionItem;
      });
  }

  // ------------------------------------------------------------------------------------------------
  // Values

  private values(): CompletionItem[] {
    const { ctx } = this;
    const path = ctx.path;
    const [section, owner] = path;
    const field = path.slice(2);
    const last = path[path.length - 1];
    const isIndex = /^[0-9]+$/.test(last ?? '');
    const present = new Set(ctx.present);
    const inArray = (f: string[], name: string): boolean => f.length === 2 && f[0] === name && isIndex;
    // A reference list written as `needs: ` with no brackets yet: complete to `[name]`.
    const bare = (f: string[], name: string): boolean => f.length === 1 && f[0] === name && !ctx.flow && !ctx.precededByText && this.restOfLineEmpty();
    const wrapList = (n: string): string => `[${n}]`;

    if (section === 'deployments' && field.length === 1 && field[0] === 'gate') return this.metricItems();
    // After other words of a plain value (`description: Train a |`) there is nothing to offer.
    if (ctx.precededByText) return [];

    if (section === 'steps' && (inArray(field, 'needs') || bare(field, 'needs'))) {
      const steps = this.names('step').filter((s) => s !== owner && !present.has(s));
      return this.nameItems('step', steps, CompletionItemKind.Function, bare(field, 'needs') ? wrapList : undefined);
    }
    if ((section === 'steps' || section === 'deployments') && field.length === 1 && field[0] === 'compute') {
      return this.nameItems('compute', this.names('compute'), CompletionItemKind.Class);
    }
    if (section === 'sweeps' && field.length === 1 && field[0] === 'step') return this.nameItems('step', this.names('step'), CompletionItemKind.Function);
    if (section === 'monitors' && field.length === 1 && field[0] === 'deployment') return this.nameItems('deployment', this.names('deployment'), CompletionItemKind.Interface);
    const monitorList = (section === 'deployments' && field[0] === 'rollout' && field[1] === 'rollbackOn') || (section === 'alerts' && field[0] === 'when');
    if (monitorList) {
      const listField = section === 'alerts' ? field.slice(0) : field.slice(1);
      const isBare = listField.length === 1 && !ctx.flow && !ctx.precededByText && this.restOfLineEmpty();
      if (listField.length === 2 || isBare) {
        const monitors = this.names('monitor').filter((m) => !present.has(`monitors.${m}`));
        const many = monitors.length > DOC_LIMIT;
        return monitors.map((m, i) => {
          const label = `monitors.${m}`;
          return { label, kind: CompletionItemKind.Event, sortText: String(i).padStart(5, '0'), ...this.docFor('monitor', m, undefined, many), ...this.edit(isBare ? `[${label}]` : label) };
        });
      }
    }
    if (section === 'sweeps' && field[0] === 'objective' && field[1] === 'metric' && field.length === 2) return this.metricItems();
    if (last === 'gpu' && path[path.length - 2] === 'resources') return this.gpuItems();
    return this.schemaValues(path);
  }

  private restOfLineEmpty(): boolean {
    const rest = this.text.slice(this.ctx.wordEnd).split('\n')[0];
    return /^\s*(#.*)?\r?$/.test(rest);
  }

  /** `step.metric`: the last run's metrics, and `step.` for each step that declares a metrics file. */
  private metricItems(): CompletionItem[] {
    const withMetrics = this.stepsWithMetrics();
    const items: CompletionItem[] = [];
    const seen = new Set<string>();
    let metrics: readonly { name: string; value?: number }[] = [];
    try {
      metrics = this.options.lastRunMetrics?.() ?? [];
    } catch {
      metrics = [];
    }
    metrics.forEach((m, i) => {
      if (seen.has(m.name) || !/^[A-Za-z][A-Za-z0-9_-]*\.[A-Za-z_]/.test(m.name)) return;
      seen.add(m.name);
      const step = m.name.slice(0, m.name.indexOf('.'));
      const declared = withMetrics.includes(step);
      items.push({
        label: m.name,
        kind: CompletionItemKind.Field,
        detail: m.value !== undefined ? `last run: ${m.value}` : 'from the last run',
        documentation: { kind: 'markdown', value: `Metric \`${m.name.slice(step.length + 1)}\` of step \`${step}\`${m.value !== undefined ? `; last run: \`${m.value}\`` : ''}.` },
        sortText: `${declared ? 0 : 2}${String(i).padStart(5, '0')}`,
        ...this.edit(m.name),
      });
    });
    withMetrics.forEach((s, i) => {
      const file = this.doc ? summaryOfMetrics(this.doc, this.model!, s) : undefined;
      items.push({
        label: `${s}.`,
        kind: CompletionItemKind.Module,
        detail: file ? `keys of ${file}` : 'a metric of this step',
        documentation: { kind: 'markdown', value: `A metric of step \`${s}\`: a key of its metrics file${file ? ` \`${file}\`` : ''}, written \`${s}.NAME\`.` },
        sortText: `1${String(i).padStart(5, '0')}`,
        ...this.edit(`${s}.`),
      });
    });
    return items;
  }

  private gpuItems(): CompletionItem[] {
    return KNOWN_GPUS.map((g, i) => ({
      label: g,
      kind: CompletionItemKind.EnumMember,
      detail: 'GPU type',
      documentation: { kind: 'markdown', value: `One \`${g}\`; write \`${g}:N\` for N of them. Matched loosely against the nodes' \`nvidia.com/gpu.product\` label.` },
      sortText: String(i).padStart(3, '0'),
      ...this.edit(g),
    }));
  }

  /** Enum values (with their descriptions), booleans, the default and examples; keys for a new list item. */
  private schemaValues(path: string[]): CompletionItem[] {
    const schema = resolveRef(schemaAt(path));
    if (!schema) return [];
    const types = typesOf(schema);
    const items: CompletionItem[] = [];
    const flow = this.ctx.flow;
    if (types[0] === 'object' && /^[0-9]+$/.test(path[path.length - 1] ?? '') && !flow) {
      // `- |` in a list of mappings: the item's keys.
      return this.keys(path);
    }
    if (schema.enum) {
      const descriptions = (schema.markdownEnumDescriptions ?? schema.enumDescriptions) as string[] | undefined;
      schema.enum.forEach((v, i) => {
        if (this.ctx.present.includes(String(v))) return;
        items.push({
          label: String(v),
          kind: CompletionItemKind.EnumMember,
          detail: v === schema.default ? 'default' : undefined,
          documentation: descriptions?.[i] ? { kind: 'markdown', value: descriptions[i] } : undefined,
          sortText: String(i).padStart(3, '0'),
          ...this.edit(yamlScalar(v, flow)),
        });
      });
      return items;
    }
    if (types.includes('boolean')) {
      orderDefaultFirst([true, false], schema.default).forEach((v, i) => {
        items.push({ label: String(v), kind: CompletionItemKind.Value, detail: v === schema.default ? 'default' : undefined, sortText: `0${i}`, ...this.edit(String(v)) });
      });
    }
    if (types[0] === 'object') {
      // A new param (or other entry) written inline: the schema's snippets as a flow mapping.
      const snippets = (schema.defaultSnippets as { label?: string; description?: string; body?: unknown }[] | undefined) ?? [];
      snippets.forEach((sn, i) => {
        if (!sn.body || typeof sn.body !== 'object' || Array.isArray(sn.body)) return;
        const body = flowYaml(sn.body as Record<string, unknown>);
        items.push({ label: sn.label ?? 'snippet', kind: CompletionItemKind.Snippet, detail: sn.description, documentation: { kind: 'markdown', value: '```yaml\n' + snippetToPlain(body) + '\n```' }, sortText: `0${i}`, filterText: this.ctx.prefix || undefined, ...this.snippetEdit(body) });
      });
      return items;
    }
    const seen = new Set(items.map((i) => i.label));
    const offer = (v: unknown, detail: string): void => {
      if (v === null || typeof v === 'object') return;
      if (typeof v === 'string' && v.includes('${')) return;
      const label = String(v);
      if (seen.has(label) || this.ctx.present.includes(label)) return;
      seen.add(label);
      items.push({ label, kind: CompletionItemKind.Value, detail, sortText: `${detail === 'default' ? 0 : 1}${String(items.length).padStart(3, '0')}`, ...this.edit(yamlScalar(v, flow)) });
    };
    if (schema.default !== undefined) offer(schema.default, 'default');
    for (const e of (schema.examples as unknown[] | undefined) ?? []) offer(e, 'example');
    return items;
  }
}

function summaryOfMetrics(doc: Document, model: SpecModel, step: string): string | undefined {
  const sym = model.symbols.get('step')?.get(step);
  const v = get(doc, sym?.node, 'metrics')?.value as { value?: unknown } | null | undefined;
  return typeof v?.value === 'string' ? v.value : undefined;
}

function orderDefaultFirst<T>(values: readonly T[], def: unknown): T[] {
  const i = values.findIndex((v) => v === def);
  return i <= 0 ? [...values] : [values[i], ...values.slice(0, i), ...values.slice(i + 1)];
}

/** A placeholder for a scalar value: ` ${n:default}`, ` ${n:example}` or ` ${n}`. */
function placeholder(schema: JsonSchema | undefined, n: number, key?: string): string {
  const s = resolveRef(schema);
  if (!s) return ` \${${n}}`;
  if (key === 'description') return ` \${${n}}`;
  if (s.enum?.length) return ` \${${n}|${orderDefaultFirst(s.enum, s.default).map((v) => escapeChoice(yamlScalar(v, true))).join(',')}|}`;
  const candidates = [s.default, ...((s.examples as unknown[] | undefined) ?? [])];
  const v = candidates.find((c) => c !== undefined && c !== null && typeof c !== 'object');
  if (v === undefined) return typesOf(s)[0] === 'array' ? ` [\${${n}}]` : ` \${${n}}`;
  return ` \${${n}:${escapeSnippet(yamlScalar(v, false))}}`;
}

/** A value YAML reads back as the same string: quoted when it would read as a number, bool, null, or break the line. */
export function yamlScalar(v: unknown, flow: boolean): string {
  if (typeof v !== 'string') return String(v);
  const needsQuotes =
    v === '' ||
    /^(true|false|null|~|yes|no|on|off|y|n)$/i.test(v) ||
    /^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9]*)?)([eE][-+]?[0-9]+)?$|^0[xo][0-9a-f]+$|^[-+]?\.(inf|nan)$/i.test(v) ||
    /^[-?:,[\]{}#&*!|>'"%@`\s]/.test(v) ||
    /\s$|: |\s#/.test(v) ||
    (flow && /[,[\]{}]/.test(v));
  return needsQuotes ? JSON.stringify(v) : v;
}

function escapeSnippet(s: string): string {
  return s.replace(/[\\$}]/g, (c) => `\\${c}`);
}

function escapeChoice(s: string): string {
  return s.replace(/[\\$}|,]/g, (c) => `\\${c}`);
}

/**
 * A schema snippet body (VS Code's `defaultSnippets` format: strings are snippet text, `^` marks a raw,
 * unquoted value) as block YAML at an indentation.
 */
function blockYaml(body: Record<string, unknown>, indent: number): string {
  const pad = ' '.repeat(indent);
  const lines: string[] = [];
  for (const [k, v] of Object.entries(body)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      lines.push(`${pad}${k}:`);
      lines.push(blockYaml(v as Record<string, unknown>, indent + 2));
    } else if (Array.isArray(v) && v.some((x) => x && typeof x === 'object')) {
      lines.push(`${pad}${k}:`);
      for (const x of v) lines.push(`${pad}  - ${x && typeof x === 'object' ? flowYaml(x as Record<string, unknown>) : snippetScalar(x)}`);
    } else if (Array.isArray(v)) {
      lines.push(`${pad}${k}: [${v.map(snippetScalar).join(', ')}]`);
    } else {
      lines.push(`${pad}${k}: ${snippetScalar(v)}`);
    }
  }
  return lines.join('\n');
}

function flowYaml(body: Record<string, unknown>): string {
  const parts = Object.entries(body).map(([k, v]) => {
    if (Array.isArray(v)) return `${k}: [${v.map((x) => (x && typeof x === 'object' ? flowYaml(x as Record<string, unknown>) : snippetScalar(x))).join(', ')}]`;
    if (v && typeof v === 'object') return `${k}: ${flowYaml(v as Record<string, unknown>)}`;
    return `${k}: ${snippetScalar(v)}`;
  });
  return `{${parts.join(', ')}}`;
}

function snippetScalar(v: unknown): string {
  if (typeof v !== 'string') return String(v);
  if (v.startsWith('^')) return v.slice(1);
  // Quote when the value, placeholders filled in, would not read back as text.
  const plain = snippetToPlain(v);
  return yamlScalar(plain, false) === plain ? v : `"${v.replace(/"/g, '\\"')}"`;
}

/** Snippet text with tabstops removed and placeholders replaced by their defaults (first choice). */
export function snippetToPlain(snippet: string): string {
  let out = '';
  let i = 0;
  const parse = (stopAtBrace: boolean): string => {
    let s = '';
    while (i < snippet.length) {
      const c = snippet[i];
      if (c === '\\' && i + 1 < snippet.length && /[\\$}|,]/.test(snippet[i + 1])) {
        s += snippet[i + 1];
        i += 2;
      } else if (c === '}' && stopAtBrace) {
        i++;
        return s;
      } else if (c === '$' && /[0-9]/.test(snippet[i + 1] ?? '')) {
        i++;
        while (/[0-9]/.test(snippet[i] ?? '')) i++;
      } else if (c === '$' && snippet[i + 1] === '{') {
        i += 2;
        while (/[0-9]/.test(snippet[i] ?? '')) i++;
        if (snippet[i] === ':') {
          i++;
          s += parse(true);
        } else if (snippet[i] === '|') {
          i++;
          let choice = '';
          while (i < snippet.length && snippet[i] !== ',' && snippet[i] !== '|') {
            if (snippet[i] === '\\') i++;
            choice += snippet[i] ?? '';
            i++;
          }
          while (i < snippet.length && !(snippet[i] === '|' && snippet[i + 1] === '}')) i++;
          i += 2;
          s += choice;
        } else if (snippet[i] === '}') {
          i++;
        } else {
          // A variable like ${TM_FILENAME}: not used by this schema.
          while (i < snippet.length && snippet[i] !== '}') i++;
          i++;
        }
      } else {
        s += c;
        i++;
      }
    }
    return s;
  };
  out = parse(false);
  return out;
}
