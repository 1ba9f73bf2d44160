/**
 * The lineage graph the Lineage panel draws: dataset@hash -> step run -> output@hash -> model ->
 * deployment, with the git commit each run started at; or, before anything ran, the spec's DAG (datasets,
 * files, steps, outputs, deployments) from the analysis the editor already has. Pure: no `vscode`, no IO.
 *
 * Node ids of recorded lineage are the run store's (`dataset:raw@<hash>`, `file:src/train.py@<hash>`,
 * `step:<run>/train`, `output:train.model@<hash>`, `deployment:churn-api/r3`), so records and graph agree.
 */
import type { Node } from 'yaml';
import type { SymbolKind } from '../../../server/src/core/model';
import type { Span } from '../../../server/src/core/problems';
import type { SpecAnalysis } from '../../../server/src/core/validate';
import { entries, get, items, stringValue } from '../../../server/src/core/yaml-nodes';
import { adjacency, reachable, type GraphEdge, type GraphNode, type InputChange, type JumpTarget, type LineageGraphData, type RunDiff } from '../../../webviews/src/protocol/lineage';
import type { DeploymentRecord, LineageEdge, RunRecord } from './records';

export type { GraphEdge, GraphNode, InputChange, JumpTarget, LineageGraphData, RunDiff };

/** Where the spec defines things, so recorded nodes can jump to their definition too. */
export interface SpecIndex {
  /** Workspace-relative (or absolute) path of the spec, as the host opens it. */
  path: string;
  ranges: Map<string, { start: { line: number; character: number }; end: { line: number; character: number } }>;
  /** `step.output` names that deployments serve: drawn as models. */
  models: Set<string>;
}

const key = (kind: SymbolKind, name: string): string => `${kind}:${name}`;

/** Definitions of steps, datasets, outputs (`output:step.out`) and deployments, with their LSP ranges. */
export function indexSpec(analysis: SpecAnalysis, path: string): SpecIndex {
  const ranges: SpecIndex['ranges'] = new Map();
  const models = new Set<string>();
  const model = analysis.model;
  if (model) {
    const range = (s: Span) => analysis.parsed.lines.range(s);
    for (const kind of ['step', 'dataset', 'deployment'] as const) for (const [name, sym] of model.symbols.get(kind) ?? []) ranges.set(key(kind, name), range(sym.span));
    for (const [k, sym] of model.symbols.get('output') ?? []) ranges.set(key('output', k), range(sym.span));
    for (const ref of model.references) if (ref.kind === 'output' && ref.context.section === 'deployments' && ref.owner) models.add(`${ref.owner}.${ref.name}`);
  }
  return { path, ranges, models };
}

export interface ParsedLineageId {
  kind: 'dataset' | 'file' | 'step' | 'output' | 'deployment' | 'other';
  /** dataset name, file path, `step.output`, step name, deployment name. */
  name: string;
  hash?: string;
  runId?: string;
  revision?: string;
}

/** Reads a lineage node id. Paths may contain `@` or `/`: the hash is after the last `@`, a run id before the first `/`. */
export function parseLineageId(id: string): ParsedLineageId {
  const colon = id.indexOf(':');
  const prefix = colon > 0 ? id.slice(0, colon) : '';
  const rest = id.slice(colon + 1);
  const at = rest.lastIndexOf('@');
  const withHash = (kind: ParsedLineageId['kind']): ParsedLineageId => (at > 0 ? { kind, name: rest.slice(0, at), hash: rest.slice(at + 1) } : { kind, name: rest });
  switch (prefix) {
    case 'dataset':
    case 'file':
    case 'output':
      return withHash(prefix);
    case 'step': {
      const slash = rest.indexOf('/');
      return slash > 0 ? { kind: 'step', name: rest.slice(slash + 1), runId: rest.slice(0, slash) } : { kind: 'step', name: rest };
    }
    case 'deployment': {
      const slash = rest.lastIndexOf('/');
      return slash > 0 ? { kind: 'deployment', name: rest.slice(0, slash), revision: rest.slice(slash + 1) } : { kind: 'deployment', name: rest };
    }
    default:
      return { kind: 'other', name: id };
  }
}

const short = (hash: string | undefined): string | undefined => (hash ? hash.slice(0, 8) : undefined);

class GraphBuilder {
  readonly nodes = new Map<string, GraphNode>();
  private readonly edgeKeys = new Set<string>();
  readonly edges: GraphEdge[] = [];
  node(n: GraphNode): GraphNode {
    const had = this.nodes.get(n.id);
    if (had) {
      // A later record may know more (a file path for an output first seen as an input).
      if (had.jump.kind === 'none' && n.jump.kind !== 'none') had.jump = n.jump;
      return had;
    }
    this.nodes.set(n.id, n);
    return n;
  }
  edge(from: string, to: string): void {
    const k = `${from}\n${to}`;
    if (from === to || this.edgeKeys.has(k)) return;
    this.edgeKeys.add(k);
    this.edges.push({ from, to });
  }
  build(source: LineageGraphData['source']): LineageGraphData {
    // Every edge endpoint is a node, even when a record named one it did not describe.
    for (const e of this.edges) for (const id of [e.from, e.to]) if (!this.nodes.has(id)) this.nodes.set(id, { id, kind: 'file', label: id, jump: { kind: 'none' } });
    return { source, nodes: [...this.nodes.values()], edges: this.edges };
  }
}

export interface RunGraphOptions {
  spec?: SpecIndex;
  deployments?: DeploymentRecord[];
  /** Leave out commit nodes (on by default). */
  commits?: boolean;
}

/** The recorded lineage of these runs and deployments. */
export function graphFromRuns(runs: readonly RunRecord[], options: RunGraphOptions = {}): LineageGraphData {
  const b = new GraphBuilder();
  const spec = options.spec;
  const specJump = (k: string): JumpTarget => {
    const r = spec?.ranges.get(k);
    return r && spec ? { kind: 'spec', path: spec.path, range: r } : { kind: 'none' };
  };
  for (const run of runs) {
    const describe = (id: string): GraphNode => {
      const p = parseLineageId(id);
      switch (p.kind) {
        case 'dataset': {
          // The dataset's file, as the consuming step hashed it.
          const path = findInputPath(run, p.hash);
          return { id, kind: 'dataset', label: p.name, detail: short(p.hash), hash: p.hash, jump: path ? { kind: 'file', path } : specJump(key('dataset', p.name)) };
        }
        case 'file':
          return { id, kind: 'file', label: p.name, detail: short(p.hash), hash: p.hash, jump: { kind: 'file', path: p.name } };
        case 'output': {
          const [step, out] = splitOutput(p.name);
          const path = run.steps[step]?.outputs[out]?.path;
          const isModel = spec?.models.has(p.name) ?? false;
          return { id, kind: isModel ? 'model' : 'output', label: p.name, detail: short(p.hash), hash: p.hash, jump: path ? { kind: 'file', path } : specJump(key('output', p.name)) };
        }
        case 'step': {
          const rec = p.runId === run.id ? run.steps[p.name] : undefined;
          return { id, kind: 'step', label: p.name, detail: p.runId, runId: p.runId, status: rec?.status, jump: p.runId ? { kind: 'run', runId: p.runId, step: p.name } : specJump(key('step', p.name)) };
        }
        default:
          return { id, kind: 'file', label: p.name, jump: { kind: 'none' } };
      }
    };
    for (const e of run.lineage ?? []) {
      if (!isEdge(e)) continue;
      b.node(describe(e.from));
      b.node(describe(e.to));
      b.edge(e.from, e.to);
    }
    // Steps that ran but produced no lineage (failed before hashing) still show, so a failure is visible.
    for (const [name, rec] of Object.entries(run.steps ?? {})) {
      const id = `step:${run.id}/${name}`;
      if (!b.nodes.has(id) && rec.status !== 'pending' && rec.status !== 'skipped') b.node({ id, kind: 'step', label: name, detail: run.id, runId: run.id, status: rec.status, jump: { kind: 'run', runId: run.id, step: name } });
    }
    if (options.commits !== false && run.git?.commit) {
      const cid = `commit:${run.git.commit}`;
      b.node({ id: cid, kind: 'commit', label: run.git.commit.slice(0, 10), detail: run.git.branch ?? undefined, hash: run.git.commit, jump: { kind: 'none' } });
      for (const name of Object.keys(run.steps ?? {})) if (b.nodes.has(`step:${run.id}/${name}`)) b.edge(cid, `step:${run.id}/${name}`);
    }
  }
  for (const d of options.deployments ?? []) {
    if (d.outcome === 'refused' || d.outcome === 'failed') continue;
    const id = `deployment:${d.deployment}/${d.revision}`;
    b.node({ id, kind: 'deployment', label: d.deployment, detail: `${d.revision} ${d.outcome}`, status: d.outcome, runId: d.sourceRunId, jump: specJump(key('deployment', d.deployment)) });
    const edges = (d.lineage ?? []).filter(isEdge);
    if (edges.length) {
      for (const e of edges) {
        for (const n of [e.from, e.to]) if (!b.nodes.has(n) && n.startsWith('output:')) b.node(modelNode(n, d, specJump));
        b.edge(e.from, e.to);
      }
    } else if (d.model.output && d.model.hash) {
      const from = `output:${d.model.output}@${d.model.hash}`;
      if (!b.nodes.has(from)) b.node(modelNode(from, d, specJump));
      b.edge(from, id);
    }
  }
  // An output that feeds a deployment is a model, whatever the spec says now.
  for (const e of b.edges) {
    if (!e.to.startsWith('deployment:')) continue;
    const n = b.nodes.get(e.from);
    if (n && n.kind === 'output') n.kind = 'model';
  }
  return b.build('runs');
}

function modelNode(id: string, d: DeploymentRecord, specJump: (k: string) => JumpTarget): GraphNode {
  const p = parseLineageId(id);
  return { id, kind: 'model', label: p.name, detail: short(p.hash), hash: p.hash, jump: d.model.path && !/^[a-z0-9+.-]+:\/\//i.test(d.model.path) ? { kind: 'file', path: d.model.path } : specJump(key('output', p.name)) };
}

function isEdge(e: unknown): e is LineageEdge {
  return !!e && typeof e === 'object' && typeof (e as LineageEdge).from === 'string' && typeof (e as LineageEdge).to === 'string';
}

function splitOutput(name: string): [string, string] {
  const dot = name.indexOf('.');
  return dot > 0 ? [name.slice(0, dot), name.slice(dot + 1)] : [name, ''];
}

function findInputPath(run: RunRecord, hash: string | undefined): string | undefined {
  if (!hash) return undefined;
  for (const s of Object.values(run.steps ?? {})) for (const [p, h] of Object.entries(s.inputs ?? {})) if (h === hash) return p;
  return undefined;
}

/**
 * The spec's DAG as written, before anything ran: datasets and input files -> steps -> outputs ->
 * downstream steps and deployments. Works on a spec with errors too (whatever parsed is shown).
 */
export function graphFromSpec(analysis: SpecAnalysis, path: string): LineageGraphData {
  const b = new GraphBuilder();
  const model = analysis.model;
  const doc = analysis.parsed.doc;
  if (!model || !doc) return b.build('spec');
  const index = indexSpec(analysis, path);
  const jump = (k: string): JumpTarget => {
    const r = index.ranges.get(k);
    return r ? { kind: 'spec', path, range: r } : { kind: 'none' };
  };
  const datasetUris = new Map<string, string>();
  for (const d of entries(doc, get(doc, doc.contents, 'datasets')?.value)) datasetUris.set(d.key, stringValue(get(doc, d.value, 'uri')?.value) ?? '');

  for (const name of model.symbols.get('step')!.keys()) b.node({ id: `spec-step:${name}`, kind: 'step', label: name, jump: jump(key('step', name)) });
  for (const name of model.symbols.get('dataset')!.keys()) {
    const uri = datasetUris.get(name);
    b.node({ id: `spec-dataset:${name}`, kind: 'dataset', label: name, detail: uri || undefined, jump: jump(key('dataset', name)) });
  }
  for (const [k, sym] of model.symbols.get('output')!) {
    const out = `spec-output:${k}`;
    b.node({ id: out, kind: index.models.has(k) ? 'model' : 'output', label: k, detail: stringValue(sym.node as Node | null) || undefined, jump: jump(key('output', k)) });
    if (sym.owner) b.edge(`spec-step:${sym.owner}`, out);
  }
  for (const name of model.symbols.get('deployment')!.keys()) b.node({ id: `spec-deployment:${name}`, kind: 'deployment', label: name, jump: jump(key('deployment', name)) });

  // Declared input files.
  for (const s of entries(doc, get(doc, doc.contents, 'steps')?.value)) {
    for (const item of items(doc, get(doc, s.value, 'inputs')?.value)) {
      const p = stringValue(item);
      if (!p) continue;
      const id = `spec-file:${p}`;
      b.node({ id, kind: 'file', label: p, jump: { kind: 'file', path: p } });
      b.edge(id, `spec-step:${s.key}`);
    }
  }
  const steps = model.symbols.get('step')!;
  const dataFlow = new Set<string>();
  for (const ref of model.references) {
    const owner = ref.context.owner;
    if (!owner) continue;
    if (ref.context.section === 'steps' && steps.has(owner)) {
      if (ref.kind === 'dataset' && model.symbols.get('dataset')!.has(ref.name)) b.edge(`spec-dataset:${ref.name}`, `spec-step:${owner}`);
      if (ref.kind === 'output' && ref.owner && ref.owner !== owner && model.symbols.get('output')!.has(`${ref.owner}.${ref.name}`)) {
        b.edge(`spec-output:${ref.owner}.${ref.name}`, `spec-step:${owner}`);
        dataFlow.add(`${ref.owner}\n${owner}`);
      }
    }
    if (ref.context.section === 'deployments' && model.symbols.get('deployment')!.has(owner) && ref.kind === 'output' && ref.owner && model.symbols.get('output')!.has(`${ref.owner}.${ref.name}`)) {
      b.edge(`spec-output:${ref.owner}.${ref.name}`, `spec-deployment:${owner}`);
    }
  }
  // `needs` without data flowing through an output: an ordering edge step -> step.
  for (const ref of model.references) {
    const owner = ref.context.owner;
    if (ref.kind !== 'step' || ref.context.section !== 'steps' || !owner || ref.context.field[0] !== 'needs') continue;
    if (steps.has(ref.name) && steps.has(owner) && !dataFlow.has(`${ref.name}\n${owner}`)) b.edge(`spec-step:${ref.name}`, `spec-step:${owner}`);
  }
  return b.build('spec');
}

/** Upstream (everything it came from) or downstream (everything made from it) of a node. */
export function upstreamOf(graph: LineageGraphData, id: string): Set<string> {
  return reachable(adjacency(graph.edges), id, 'up');
}

export function downstreamOf(graph: LineageGraphData, id: string): Set<string> {
  return reachable(adjacency(graph.edges), id, 'down');
}

/**
 * What changed between run `a` and run `b`: per step (by name), the inputs whose hashes differ (datasets,
 * files, upstream outputs), params with other values, and the git commit. Inputs only one run had count
 * as changed (added or removed).
 */
export function diffRuns(a: RunRecord, b: RunRecord): RunDiff {
  const changes: InputChange[] = [];
  const changed = new Set<string>();
  const inputsOf = (run: RunRecord): Map<string, Map<string, { hash?: string; id: string; kind: InputChange['kind']; name: string }>> => {
    const out = new Map<string, Map<string, { hash?: string; id: string; kind: InputChange['kind']; name: string }>>();
    for (const e of run.lineage ?? []) {
      if (!isEdge(e)) continue;
      const to = parseLineageId(e.to);
      if (to.kind !== 'step' || to.runId !== run.id) continue;
      const from = parseLineageId(e.from);
      if (from.kind !== 'dataset' && from.kind !== 'file' && from.kind !== 'output') continue;
      const m = out.get(to.name) ?? out.set(to.name, new Map()).get(to.name)!;
      m.set(`${from.kind}:${from.name}`, { hash: from.hash, id: e.from, kind: from.kind, name: from.name });
    }
    return out;
  };
  const ia = inputsOf(a);
  const ib = inputsOf(b);
  for (const step of [...new Set([...ia.keys(), ...ib.keys()])].sort()) {
    const ma = ia.get(step) ?? new Map();
    const mb = ib.get(step) ?? new Map();
    for (const k of [...new Set([...ma.keys(), ...mb.keys()])].sort()) {
      const x = ma.get(k);
      const y = mb.get(k);
      if (x?.hash === y?.hash && x && y) continue;
      const any = (x ?? y)!;
      changes.push({ step, kind: any.kind, name: any.name, ...(x?.hash ? { a: x.hash } : {}), ...(y?.hash ? { b: y.hash } : {}) });
      if (x) changed.add(x.id);
      if (y) changed.add(y.id);
    }
  }
  for (const p of [...new Set([...Object.keys(a.params ?? {}), ...Object.keys(b.params ?? {})])].sort()) {
    const x = a.params?.[p];
    const y = b.params?.[p];
    if (x !== y) changes.push({ step: '', kind: 'param', name: p, ...(x !== undefined ? { a: String(x) } : {}), ...(y !== undefined ? { b: String(y) } : {}) });
  }
  if ((a.git?.commit ?? '') !== (b.git?.commit ?? '')) {
    changes.push({ step: '', kind: 'commit', name: 'git commit', ...(a.git?.commit ? { a: a.git.commit } : {}), ...(b.git?.commit ? { b: b.git.commit } : {}) });
    if (a.git?.commit) changed.add(`commit:${a.git.commit}`);
    if (b.git?.commit) changed.add(`commit:${b.git.commit}`);
  }
  return { a: a.id, b: b.id, changes, changedNodes: [...changed] };
}

/** Keeps the newest runs so the graph stays drawable; says how many were left out. */
export function newestRuns<T extends { startedAt: string }>(runs: readonly T[], max: number): { runs: T[]; omitted: number } {
  const sorted = [...runs].sort((x, y) => (x.startedAt < y.startedAt ? 1 : x.startedAt > y.startedAt ? -1 : 0));
  return { runs: sorted.slice(0, max), omitted: Math.max(0, sorted.length - max) };
}
