import { isMap, isScalar, type Document, type Node } from 'yaml';
import type { Code } from './codes';
import type { SpecModel, SpecReference, SymbolKind } from './model';
import type { ProblemSink, Span } from './problems';
import { describePath } from './schema-problems';
import { hint } from './suggest';
import { deref, entries, get, items, spanOf, stringValue } from './yaml-nodes';

/** Checks that need the whole spec: references, the dependency graph, types of values and usage. */
export function checkSemantics(doc: Document, model: SpecModel, sink: ProblemSink): void {
  checkReferences(model, sink);
  checkCycles(doc, model, sink);
  checkParams(doc, sink);
  checkSweeps(doc, sink);
  checkCompute(doc, sink);
  checkResources(doc, sink);
  checkMetrics(doc, model, sink);
  checkSecretsOnCommandLine(model, sink);
  checkUnused(model, sink);
}

const UNDEFINED: Record<SymbolKind, { code: Code; noun: string; fix: string }> = {
  step: { code: 'MLP020', noun: 'step', fix: 'Define it under `steps:`' },
  compute: { code: 'MLP021', noun: 'compute target', fix: 'Define it under `compute:`' },
  param: { code: 'MLP022', noun: 'param', fix: 'Define it under `params:`' },
  dataset: { code: 'MLP023', noun: 'dataset', fix: 'Define it under `datasets:`' },
  output: { code: 'MLP024', noun: 'output', fix: '' },
  secret: { code: 'MLP025', noun: 'secret', fix: 'Add it to `secrets:`' },
  deployment: { code: 'MLP026', noun: 'deployment', fix: 'Define it under `deployments:`' },
  monitor: { code: 'MLP027', noun: 'monitor', fix: 'Define it under `monitors:`' },
  sweep: { code: 'MLP019', noun: 'sweep', fix: '' },
};

export function names(model: SpecModel, kind: SymbolKind): string[] {
  return [...model.symbols.get(kind)!.keys()];
}

function checkReferences(model: SpecModel, sink: ProblemSink): void {
  const steps = model.symbols.get('step')!;
  // Indexed: for-of allocates an iterator result per element until the function is optimized.
  for (let r = 0; r < model.references.length; r++) {
    const ref = model.references[r];
    if (ref.kind === 'output') {
      const owner = ref.owner!;
      if (!steps.has(owner)) continue; // The step itself is reported.
      if (!model.symbols.get('output')!.has(`${owner}.${ref.name}`)) {
        const outputs = names(model, 'output').filter((k) => k.startsWith(owner + '.')).map((k) => k.slice(owner.length + 1));
        const fix = outputs.length ? hint(ref.name, outputs, 'output') : ` Step \`${owner}\` declares no outputs: add \`outputs: {${ref.name}: <path>}\` to it.`;
        sink.add('MLP024', ref.span, `Step \`${owner}\` has no output \`${ref.name}\`.${fix}`);
      }
      continue;
    }
    if (model.symbols.get(ref.kind)!.has(ref.name)) continue;
    if (ref.kind === 'compute' && ref.name === 'local') continue; // The embedded executor always exists.
    const candidates = ref.kind === 'compute' ? [...names(model, 'compute'), 'local'] : names(model, ref.kind);
    const u = UNDEFINED[ref.kind];
    const near = hint(ref.name, [...new Set(candidates)], u.noun);
    const what = ref.kind === 'step' && ref.context.section === 'steps' && ref.context.field[0] === 'needs' ? `\`${ref.name}\` in \`needs\`` : `\`${ref.name}\``;
    sink.add(u.code, ref.span, `Undefined ${u.noun} ${what}.${near}${near.startsWith(' Did') ? '' : ` ${u.fix}.`}`);
  }
  for (const bad of model.malformed) sink.add('MLP028', bad.span, `\`${bad.text}\` is not a valid reference. ${bad.reason}`);
  for (const use of model.contextual) {
    if (use.name === 'outputs' && use.context.section !== 'steps') {
      sink.add('MLP029', use.span, '`${outputs.<name>}` names an output of the step it is written in, so it can only be used inside a step. Use `${steps.<step>.outputs.<name>}` here.');
    }
    if (use.name === 'model' && !(use.context.section === 'deployments' && use.context.field[0] === 'runtime')) {
      sink.add('MLP029', use.span, "`${model}` is the path of the deployed model and can only be used in a deployment's `runtime`.");
    }
  }
}

/** Edges: `needs`, plus a step's use of another step's outputs (which implies the dependency). */
export function dependencyEdges(model: SpecModel): Map<string, { to: string; span: Span }[]> {
  const edges = new Map<string, { to: string; span: Span }[]>();
  const steps = model.symbols.get('step')!;
  for (const name of steps.keys()) edges.set(name, []);
  // Indexed: for-of allocates an iterator result per element until the function is optimized.
  for (let r = 0; r < model.references.length; r++) {
    const ref = model.references[r];
    if (ref.kind !== 'step' || ref.context.section !== 'steps' || !ref.context.owner) continue;
    if (!steps.has(ref.name) || !edges.has(ref.context.owner)) continue;
    const list = edges.get(ref.context.owner)!;
    if (!list.some((e) => e.to === ref.name)) list.push({ to: ref.name, span: ref.span });
  }
  return edges;
}

/**
 * Tarjan's strongly connected components, iterative so that long chains cannot overflow the stack.
 * Steps are numbered and the graph kept in typed arrays: this runs on every edit of specs with
 * thousands of steps, and the maps and objects of a by-name version were most of its cost.
 */
function checkCycles(doc: Document, model: SpecModel, sink: ProblemSink): void {
  const steps = model.symbols.get('step')!;
  const n = steps.size;
  const id = new Map<string, number>();
  for (const name of steps.keys()) id.set(name, id.size);
  // Edges as in dependencyEdges, in compressed rows: first[v]..first[v+1] are v's targets.
  const from: number[] = [];
  const to: number[] = [];
  // Indexed: for-of allocates an iterator result per element until the function is optimized.
  for (let r = 0; r < model.references.length; r++) {
    const ref = model.references[r];
    if (ref.kind !== 'step' || ref.context.section !== 'steps' || !ref.context.owner) continue;
    const a = id.get(ref.context.owner);
    const b = id.get(ref.name);
    if (a === undefined || b === undefined) continue;
    from.push(a);
    to.push(b);
  }
  const first = new Int32Array(n + 1);
  for (const a of from) first[a + 1]++;
  for (let v = 0; v < n; v++) first[v + 1] += first[v];
  const target = new Int32Array(from.length);
  const fill = first.slice(0, n);
  for (let e = 0; e < from.length; e++) target[fill[from[e]]++] = to[e];

  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const stack = new Int32Array(n);
  const workNode = new Int32Array(n);
  const workNext = new Int32Array(n);
  let sp = 0;
  let counter = 0;
  const components: number[][] = [];
  for (let start = 0; start < n; start++) {
    if (index[start] >= 0) continue;
    let wp = 0;
    workNode[wp] = start;
    workNext[wp++] = first[start];
    index[start] = low[start] = counter++;
    stack[sp++] = start;
    onStack[start] = 1;
    while (wp) {
      const v = workNode[wp - 1];
      if (workNext[wp - 1] < first[v + 1]) {
        const w = target[workNext[wp - 1]++];
        if (index[w] < 0) {
          index[w] = low[w] = counter++;
          stack[sp++] = w;
          onStack[w] = 1;
          workNode[wp] = w;
          workNext[wp++] = first[w];
        } else if (onStack[w]) {
          low[v] = Math.min(low[v], index[w]);
        }
      } else {
        wp--;
        if (wp) low[workNode[wp - 1]] = Math.min(low[workNode[wp - 1]], low[v]);
        if (low[v] === index[v]) {
          const comp: number[] = [];
          let w: number;
          do {
            w = stack[--sp];
            onStack[w] = 0;
            comp.push(w);
          } while (w !== v);
          let selfLoop = false;
          for (let e = first[v]; e < first[v + 1]; e++) if (target[e] === v) selfLoop = true;
          if (comp.length > 1 || selfLoop) components.push(comp);
        }
      }
    }
  }
  if (components.length === 0) return;
  void doc;
  reportCycles(model, components, [...steps.keys()], sink);
}

/** One problem per cycle, on its first edge in document order, with the other edges as related places. */
function reportCycles(model: SpecModel, found: number[][], stepNames: string[], sink: ProblemSink): void {
  const edges = dependencyEdges(model);
  const components = found.map((c) => c.map((v) => stepNames[v]));
  const order = [...edges.keys()];
  for (const comp of components) {
    const members = new Set(comp);
    // Walk the cycle from the first member in document order, following edges inside the component.
    const first = order.find((s) => members.has(s))!;
    const path = [first];
    const spans: { from: string; to: string; span: Span }[] = [];
    let cur = first;
    const visited = new Set([first]);
    for (;;) {
      const e = edges.get(cur)!.find((x) => members.has(x.to) && (x.to === first || !visited.has(x.to))) ?? edges.get(cur)!.find((x) => members.has(x.to))!;
      spans.push({ from: cur, to: e.to, span: e.span });
      path.push(e.to);
      if (e.to === first || visited.has(e.to)) break;
      visited.add(e.to);
      cur = e.to;
    }
    const text = path.join(' → ');
    const [head, ...rest] = spans;
    sink.add('MLP030', head.span, `Dependency cycle: ${text}. Steps must form a DAG: remove one of these dependencies.`, {
      relatedSpans: rest.map((r) => ({ span: r.span, message: `${r.from} depends on ${r.to}` })),
    });
  }
}

type ParamType = 'int' | 'float' | 'string' | 'bool' | 'enum';

interface ParamInfo {
  type: ParamType;
  min?: number;
  max?: number;
  values?: unknown[];
}

function paramInfos(doc: Document): Map<string, ParamInfo> {
  const out = new Map<string, ParamInfo>();
  const params = get(doc, doc.contents, 'params');
  for (const p of entries(doc, params?.value)) {
    const type = stringValue(get(doc, p.value, 'type')?.value) as ParamType | undefined;
    if (!type) continue;
    const num = (k: string): number | undefined => {
      const n = get(doc, p.value, k)?.value;
      return isScalar(n) && typeof n.value === 'number' ? n.value : undefined;
    };
    const values = items(doc, get(doc, p.value, 'values')?.value).map((n) => (isScalar(n) ? n.value : undefined));
    out.set(p.key, { type, min: num('min'), max: num('max'), values: values.length ? values : undefined });
  }
  return out;
}

function fitsType(value: unknown, type: ParamType): boolean {
  if (type === 'int') return typeof value === 'number' && Number.isInteger(value);
  if (type === 'float') return typeof value === 'number';
  if (type === 'bool') return typeof value === 'boolean';
  if (type === 'string') return typeof value === 'string';
  return true;
}

/** Returns why a value does not fit a param, or undefined when it fits. */
function misfit(value: unknown, p: ParamInfo): string | undefined {
  switch (p.type) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) return `is not an integer`;
      break;
    case 'float':
      if (typeof value !== 'number') return `is not a number`;
      break;
    case 'bool':
      if (typeof value !== 'boolean') return `is not true or false`;
      return undefined;
    case 'string':
      if (typeof value !== 'string') return `is not a string (quote it)`;
      return undefined;
    case 'enum':
      if (p.values && !p.values.some((v) => v === value)) return `is not one of ${p.values.map((v) => `\`${String(v)}\``).join(', ')}`;
      return undefined;
  }
  const n = value as number;
  if (p.min !== undefined && n < p.min) return `is below the minimum ${p.min}`;
  if (p.max !== undefined && n > p.max) return `is above the maximum ${p.max}`;
  return undefined;
}

function checkParams(doc: Document, sink: ProblemSink): void {
  const params = get(doc, doc.contents, 'params');
  const infos = paramInfos(doc);
  for (const p of entries(doc, params?.value)) {
    const info = infos.get(p.key);
    if (!info) continue;
    if (info.min !== undefined && info.max !== undefined && info.min > info.max) {
      sink.add('MLP050', spanOf(get(doc, p.value, 'min')?.value) ?? spanOf(p.keyNode)!, `Param \`${p.key}\` has min ${info.min} above max ${info.max}. Swap them.`);
    }
    if ((info.min !== undefined || info.max !== undefined) && (info.type === 'string' || info.type === 'bool' || info.type === 'enum')) {
      const e = get(doc, p.value, info.min !== undefined ? 'min' : 'max')!;
      sink.add('MLP050', spanOf(e.keyNode)!, `\`${e.key}\` applies only to int and float params; param \`${p.key}\` is ${info.type}. Remove it.`);
    }
    if (info.values && info.type !== 'enum') {
      const e = get(doc, p.value, 'values')!;
      sink.add('MLP050', spanOf(e.keyNode)!, `\`values\` applies only to enum params; param \`${p.key}\` is ${info.type}. Set \`type: enum\` or remove \`values\`.`);
    }
    const def = get(doc, p.value, 'default');
    // The schema checks the default's type; this checks what it cannot: bounds and enum values.
    if (def && isScalar(def.value) && fitsType(def.value.value, info.type)) {
      const why = misfit(def.value.value, info);
      if (why) sink.add('MLP050', spanOf(def.value)!, `The default of param \`${p.key}\` (${info.type}) ${why}.`);
    }
  }
}

function checkSweeps(doc: Document, sink: ProblemSink): void {
  const infos = paramInfos(doc);
  for (const sweep of entries(doc, get(doc, doc.contents, 'sweeps')?.value)) {
    for (const p of entries(doc, get(doc, sweep.value, 'parameters')?.value)) {
      const info = infos.get(p.key);
      if (!info) continue; // Undefined params are reported as references.
      for (const v of items(doc, p.value)) {
        if (!isScalar(v)) continue;
        const why = misfit(v.value, info);
        if (why) sink.add('MLP051', spanOf(v)!, `Sweep \`${sweep.key}\`: \`${String(v.value)}\` for param \`${p.key}\` (${info.type}) ${why}.`);
      }
      if (isMap(p.value)) {
        for (const bound of ['min', 'max']) {
          const b = get(doc, p.value, bound);
          if (b && isScalar(b.value)) {
            const why = info.type === 'int' || info.type === 'float' ? misfit(b.value.value, info) : `cannot be a range: param \`${p.key}\` is ${info.type}; list its values instead`;
            if (why) sink.add('MLP051', spanOf(b.value)!, `Sweep \`${sweep.key}\`: ${bound} ${String(b.value.value)} for param \`${p.key}\` ${why}.`);
          }
        }
      }
    }
  }
}

function checkCompute(doc: Document, sink: ProblemSink): void {
  const defaults: { name: string; span: Span }[] = [];
  for (const t of entries(doc, get(doc, doc.contents, 'compute')?.value)) {
    const def = get(doc, t.value, 'default');
    if (def && isScalar(def.value) && def.value.value === true) defaults.push({ name: t.key, span: spanOf(def.keyNode)! });
  }
  for (const extra of defaults.slice(1)) {
    sink.add('MLP032', extra.span, `Compute target \`${extra.name}\` is marked default, but \`${defaults[0].name}\` already is. Keep \`default: true\` on one target only.`);
  }
}

/** GPU type names the semantic pass knows (MLP044 warns on others); completion offers them for `resources.gpu`. */
export const KNOWN_GPUS = ['A100', 'A100-80GB', 'A10G', 'A10', 'A40', 'H100', 'H200', 'B200', 'GB200', 'L4', 'L40', 'L40S', 'T4', 'V100', 'P100', 'K80', 'RTX4090', 'RTX3090', 'RTX6000', 'MI300X', 'MI250X', 'TPU-V4', 'TPU-V5E'];

const MEMORY = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E|m)?$/;
const UNIT_BYTES: Record<string, number> = { '': 1, m: 0.001, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, Pi: 1024 ** 5, Ei: 1024 ** 6 };

/** Walks every `resources` mapping (targets, steps, deployments) for amounts that parse but are surely wrong. */
function checkResources(doc: Document, sink: ProblemSink): void {
  for (const section of ['compute', 'steps', 'deployments']) {
    // Items read directly: thousands of steps, and few of them have `resources`.
    const owners = deref(doc, get(doc, doc.contents, section)?.value);
    if (!isMap(owners)) continue;
    for (const pair of owners.items) {
      if (!isScalar(pair.key)) continue;
      const res = get(doc, pair.value, 'resources');
      if (!res) continue;
      const where = describePath([section, String(pair.key.value)]);
      const gpu = get(doc, res.value, 'gpu');
      if (gpu && isScalar(gpu.value)) {
        const v = gpu.value.value;
        // Syntax (and a zero count) is the schema's; this only knows GPU type names.
        const m = typeof v === 'string' ? /^([A-Za-z][A-Za-z0-9-]*)(?::([1-9][0-9]*))?$/.exec(v) : null;
        if (m && !KNOWN_GPUS.some((k) => k.toLowerCase() === m[1].toLowerCase())) {
          const near = hint(m[1].toUpperCase(), KNOWN_GPUS, 'GPU type');
          sink.add('MLP044', spanOf(gpu.value)!, `Unknown GPU type \`${m[1]}\` in ${where}.${near.startsWith(' Did') ? near : ` Known types include ${KNOWN_GPUS.slice(0, 8).join(', ')}; a type your cluster labels differently can be matched with \`nodeSelector\`.`}`, { severity: 'warning' });
        }
      }
      const mem = get(doc, res.value, 'memory');
      if (mem && isScalar(mem.value)) {
        const raw = String(mem.value.value);
        const m = MEMORY.exec(raw);
        if (m) {
          const bytes = Number(m[1]) * UNIT_BYTES[m[2] ?? ''];
          if (bytes < 32 * 1024 * 1024) {
            sink.add('MLP044', spanOf(mem.value)!, `Memory \`${raw}\` in ${where} is ${bytes < 1024 ? `${bytes} bytes` : `${Math.round(bytes / 1024)} KiB`}. Did you mean \`${m[1]}Mi\` or \`${m[1]}Gi\`? Quantities without a unit are bytes.`, { severity: 'warning' });
          }
        }
      }
    }
  }
}

function checkMetrics(doc: Document, model: SpecModel, sink: ProblemSink): void {
  const steps = model.symbols.get('step')!;
  for (const use of model.metrics) {
    const step = steps.get(use.step);
    if (!step) continue; // Reported as an undefined step.
    if (!get(doc, step.node, 'metrics')) {
      sink.add('MLP031', use.span, `Step \`${use.step}\` declares no \`metrics\` file, so \`${use.metric}\` can never have a value. Add \`metrics: <path to a JSON file>\` to step \`${use.step}\`.`);
    }
  }
  for (const expr of model.expressions) {
    const clauses = expr.text.split('&&');
    for (const c of clauses) {
      if (!/^\s*[A-Za-z_][A-Za-z0-9_-]*\.[A-Za-z_][A-Za-z0-9_.-]*\s*(>=|<=|==|!=|>|<)\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$/.test(c)) {
        sink.add('MLP052', expr.span, `\`${c.trim()}\` in the gate of ${describePath([expr.context.section, expr.context.owner ?? ''])} is not a comparison. Write \`<step>.<metric> <op> <number>\` (op: >=, <=, >, <, ==, !=), joined by \`&&\`, for example \`evaluate.auc >= 0.85\`.`);
        break;
      }
    }
  }
}

function checkSecretsOnCommandLine(model: SpecModel, sink: ProblemSink): void {
  // Indexed: for-of allocates an iterator result per element until the function is optimized.
  for (let r = 0; r < model.references.length; r++) {
    const ref = model.references[r];
    if (ref.kind !== 'secret' || ref.syntax !== 'interpolation') continue;
    const f = ref.context.field;
    if (f[f.length - 1] === 'command') {
      sink.add('MLP033', ref.fullSpan, `\`\${secrets.${ref.name}}\` in a command would show the secret in process lists and logs. Pass it through \`env\` instead, e.g. \`env: {${ref.name}: "\${secrets.${ref.name}}"}\`, and read the variable in your program.`);
    }
  }
}

function checkUnused(model: SpecModel, sink: ProblemSink): void {
  // Only these kinds are reported; the sets stay small however many steps reference them.
  const used = { param: new Set<string>(), dataset: new Set<string>(), secret: new Set<string>() } as Partial<Record<SymbolKind, Set<string>>>;
  for (let i = 0; i < model.references.length; i++) used[model.references[i].kind]?.add(model.references[i].name);
  const report = (kind: SymbolKind, code: Code, noun: string, how: (name: string) => string): void => {
    const names = used[kind]!;
    for (const s of model.symbols.get(kind)!.values()) {
      if (!names.has(s.name)) sink.add(code, s.span, `${noun} \`${s.name}\` is never used. ${how(s.name)}`, { unnecessary: true });
    }
  };
  report('param', 'MLP060', 'Param', (n) => `Reference it as \`\${params.${n}}\` in a command, or remove it.`);
  report('dataset', 'MLP061', 'Dataset', (n) => `Reference it as \`\${datasets.${n}}\` in a step, or remove it.`);
  report('secret', 'MLP062', 'Secret', (n) => `Pass it to a step with \`env: {${n}: "\${secrets.${n}}"}\`, or remove it.`);
}

export type { SpecReference, Node };
