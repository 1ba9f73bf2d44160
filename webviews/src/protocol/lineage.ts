/**
 * The Lineage panel's contract (extension host <-> webview), and the graph walks both sides share.
 * The host builds the graph (client/src/runtime/lineage-graph.ts) from run and deployment records, or
 * from the spec before anything ran; the webview lays it out and draws it. Pure TypeScript.
 */
import { arrayOf, isBoolean, isFiniteNumber, isObject, isShortString, isString, messageGuard, oneOf, optional, unionGuard, type Guard } from './common';

export const LINEAGE_VIEW_TYPE = 'mlpipeline.lineage';

export type LineageNodeKind = 'dataset' | 'file' | 'step' | 'output' | 'model' | 'deployment' | 'commit';

export interface SpecPosition {
  line: number;
  character: number;
}

/** Where clicking a node goes: its definition in the spec, its run (and step), or its file. */
export type JumpTarget =
  | { kind: 'spec'; path: string; range: { start: SpecPosition; end: SpecPosition } }
  | { kind: 'run'; runId: string; step?: string }
  | { kind: 'file'; path: string }
  | { kind: 'none' };

export interface GraphNode {
  /** Unique in the graph: the run store's lineage id (`dataset:raw@<hash>`, `step:<run>/train`, ...). */
  id: string;
  kind: LineageNodeKind;
  /** Short text on the node (names, paths: user strings, shown as text only). */
  label: string;
  /** Second line: short hash, run id, revision, status. */
  detail?: string;
  hash?: string;
  runId?: string;
  status?: string;
  jump: JumpTarget;
}

export interface GraphEdge {
  from: string;
  to: string;
}

export interface LineageGraphData {
  /** `spec`: the DAG as written (nothing ran yet, or asked for); `runs`: what runs and deploys recorded. */
  source: 'spec' | 'runs';
  nodes: GraphNode[];
  edges: GraphEdge[];
}

/** One input of one step whose hash differs between two runs (or that only one run had). */
export interface InputChange {
  step: string;
  kind: 'dataset' | 'file' | 'output' | 'param' | 'commit';
  name: string;
  a?: string;
  b?: string;
}

export interface RunDiff {
  a: string;
  b: string;
  changes: InputChange[];
  /** Graph node ids to mark as changed (inputs in either run whose hash differs). */
  changedNodes: string[];
}

export interface RunChoice {
  id: string;
  label?: string;
  startedAt: string;
}

export type HostToLineage =
  | { type: 'graph'; graph: LineageGraphData; runs: RunChoice[]; specAvailable: boolean; truncated?: boolean }
  | { type: 'diff'; diff: RunDiff }
  | { type: 'focus'; nodeId: string }
  | { type: 'notice'; level: 'info' | 'error'; text: string };

export type LineageToHost =
  | { type: 'jump'; nodeId: string }
  | { type: 'diffRuns'; a: string; b: string }
  | { type: 'setSource'; source: 'spec' | 'runs' }
  | { type: 'refresh' };

const isId = (v: unknown): v is string => isShortString(v, 4096) && v.length > 0;
const isPos = (v: unknown): v is SpecPosition => isObject(v) && isFiniteNumber(v.line) && isFiniteNumber(v.character);
const isKind = oneOf<LineageNodeKind>('dataset', 'file', 'step', 'output', 'model', 'deployment', 'commit');

export const isJumpTarget: Guard<JumpTarget> = (v: unknown): v is JumpTarget => {
  if (!isObject(v)) return false;
  switch (v.kind) {
    case 'spec':
      return isShortString(v.path) && isObject(v.range) && isPos(v.range.start) && isPos(v.range.end);
    case 'run':
      return isId(v.runId) && optional(isShortString)(v.step);
    case 'file':
      return isShortString(v.path);
    case 'none':
      return true;
    default:
      return false;
  }
};

export const isGraphNode: Guard<GraphNode> = (v: unknown): v is GraphNode =>
  isObject(v) &&
  isId(v.id) &&
  isKind(v.kind) &&
  isShortString(v.label) &&
  optional(isShortString)(v.detail) &&
  optional(isShortString)(v.hash) &&
  optional(isShortString)(v.runId) &&
  optional(isShortString)(v.status) &&
  isJumpTarget(v.jump);

export const isGraphEdge: Guard<GraphEdge> = (v: unknown): v is GraphEdge => isObject(v) && isId(v.from) && isId(v.to);

export const isLineageGraph: Guard<LineageGraphData> = (v: unknown): v is LineageGraphData =>
  isObject(v) && oneOf('spec', 'runs')(v.source) && arrayOf(isGraphNode, 200_000)(v.nodes) && arrayOf(isGraphEdge, 1_000_000)(v.edges);

const isChange: Guard<InputChange> = (v: unknown): v is InputChange =>
  isObject(v) && isShortString(v.step) && oneOf('dataset', 'file', 'output', 'param', 'commit')(v.kind) && isShortString(v.name) && optional(isShortString)(v.a) && optional(isShortString)(v.b);

export const isRunDiff: Guard<RunDiff> = (v: unknown): v is RunDiff => isObject(v) && isId(v.a) && isId(v.b) && arrayOf(isChange, 100_000)(v.changes) && arrayOf(isId, 200_000)(v.changedNodes);

const isRunChoice: Guard<RunChoice> = (v: unknown): v is RunChoice => isObject(v) && isId(v.id) && optional(isShortString)(v.label) && isString(v.startedAt);

export const isHostToLineage: Guard<HostToLineage> = unionGuard<HostToLineage>({
  graph: messageGuard('graph', { graph: isLineageGraph, runs: arrayOf(isRunChoice, 100_000), specAvailable: isBoolean, truncated: optional(isBoolean) }),
  diff: messageGuard('diff', { diff: isRunDiff }),
  focus: messageGuard('focus', { nodeId: isId }),
  notice: messageGuard('notice', { level: oneOf('info', 'error'), text: isString }),
});

export const isLineageToHost: Guard<LineageToHost> = unionGuard<LineageToHost>({
  jump: messageGuard('jump', { nodeId: isId }),
  diffRuns: messageGuard('diffRuns', { a: isId, b: isId }),
  setSource: messageGuard('setSource', { source: oneOf('spec', 'runs') }),
  refresh: messageGuard('refresh', {}),
});

/** Adjacency lists, built once per graph. */
export interface Adjacency {
  out: Map<string, string[]>;
  in: Map<string, string[]>;
}

export function adjacency(edges: readonly GraphEdge[]): Adjacency {
  const out = new Map<string, string[]>();
  const inn = new Map<string, string[]>();
  for (const e of edges) {
    (out.get(e.from) ?? out.set(e.from, []).get(e.from)!).push(e.to);
    (inn.get(e.to) ?? inn.set(e.to, []).get(e.to)!).push(e.from);
  }
  return { out, in: inn };
}

/** Every node reachable from `id` against (upstream) or along (downstream) the edges; `id` itself excluded. Iterative, so long chains are fine. */
export function reachable(adj: Adjacency, id: string, direction: 'up' | 'down'): Set<string> {
  const next = direction === 'up' ? adj.in : adj.out;
  const seen = new Set<string>();
  const stack = [id];
  while (stack.length) {
    const n = stack.pop()!;
    for (const m of next.get(n) ?? []) {
      if (m !== id && !seen.has(m)) {
        seen.add(m);
        stack.push(m);
      }
    }
  }
  return seen;
}
