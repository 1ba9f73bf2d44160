/**
 * Lays the lineage graph out with ELK's layered algorithm (elkjs' bundled build, run in the page: it
 * needs neither eval nor a worker, so it works under the panel's CSP).
 *
 * Small graphs get ELK's full-quality layered layout. Large ones (many runs) are dominated by a few hub
 * nodes (a dataset, a source file or a commit read by hundreds of runs) that join everything into one
 * component; ELK's cost grows much faster than linearly with component size, so hubs are set aside, ELK
 * lays out and packs the remaining per-run components with its cheaper phase strategies, and each hub is
 * placed in a column left of everything, level with the middle of what it feeds. See ARCHITECTURE.md for
 * the measurements behind this.
 */
import ELK from 'elkjs/lib/elk.bundled.js';
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api';
import type { GraphEdge, GraphNode } from '../protocol/lineage';

export interface Layout {
  pos: Map<string, { x: number; y: number; w: number; h: number }>;
  width: number;
  height: number;
  mode: 'full' | 'hubs-aside';
  hubs: number;
  ms: number;
}

export const NODE_H = 34;
export const FULL_QUALITY_MAX = 400;
const HUB_MIN_DEGREE = 6;

let elk: InstanceType<typeof ELK> | undefined;

export function nodeWidth(n: GraphNode): number {
  const chars = Math.max(n.label.length, (n.detail ?? '').length);
  return Math.min(240, Math.max(80, 24 + chars * 6.5));
}

/** Runs ELK once on a tiny graph so its code is compiled before the first real graph arrives. */
export function warmUp(): Promise<unknown> {
  elk ??= new ELK();
  return elk.layout({ id: 'w', layoutOptions: { 'elk.algorithm': 'layered' }, children: [{ id: 'a', width: 10, height: 10 }, { id: 'b', width: 10, height: 10 }], edges: [{ id: 'e', sources: ['a'], targets: ['b'] }] }).catch(() => undefined);
}

const FULL_OPTIONS: Record<string, string> = {
  'elk.algorithm': 'layered',
  'elk.direction': 'RIGHT',
  'elk.edgeRouting': 'POLYLINE',
  'elk.spacing.nodeNode': '16',
  'elk.layered.spacing.nodeNodeBetweenLayers': '48',
};

export async function layoutGraph(nodes: readonly GraphNode[], edges: readonly GraphEdge[]): Promise<Layout> {
  const t0 = performance.now();
  elk ??= new ELK();
  const ids = new Set(nodes.map((n) => n.id));
  const valid = edges.filter((e) => ids.has(e.from) && ids.has(e.to) && e.from !== e.to);
  if (nodes.length <= FULL_QUALITY_MAX) {
    const res: ElkNode = await elk.layout({
      id: 'root',
      layoutOptions: FULL_OPTIONS,
      children: nodes.map((n) => ({ id: n.id, width: nodeWidth(n), height: NODE_H })),
      edges: valid.map((e, i) => ({ id: `e${i}`, sources: [e.from], targets: [e.to] })),
    });
    const pos: Layout['pos'] = new Map();
    for (const c of res.children ?? []) pos.set(c.id, { x: c.x ?? 0, y: c.y ?? 0, w: c.width ?? 80, h: c.height ?? NODE_H });
    return { pos, width: res.width ?? 0, height: res.height ?? 0, mode: 'full', hubs: 0, ms: performance.now() - t0 };
  }
  return layoutLarge(nodes, valid, t0);
}

/**
 * Many runs: hubs aside, the rest split into connected components (mostly one per run). Runs of the same
 * pipeline have the same shape, so each distinct shape is laid out by ELK once and its coordinates are
 * reused for every component of that shape; components are then packed in rows, newest first.
 */
async function layoutLarge(nodes: readonly GraphNode[], edges: readonly GraphEdge[], t0: number): Promise<Layout> {
  const index = new Map(nodes.map((n, i) => [n.id, i]));
  const degree = new Uint32Array(nodes.length);
  for (const e of edges) {
    degree[index.get(e.from)!]++;
    degree[index.get(e.to)!]++;
  }
  const isHub = nodes.map((n, i) => n.kind !== 'step' && degree[i] >= HUB_MIN_DEGREE);
  // Union-find over edges between non-hubs.
  const parent = Int32Array.from(nodes, (_n, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]];
    return i;
  };
  for (const e of edges) {
    const a = index.get(e.from)!;
    const b = index.get(e.to)!;
    if (!isHub[a] && !isHub[b]) parent[find(a)] = find(b);
  }
  const comps = new Map<number, number[]>();
  nodes.forEach((_n, i) => {
    if (isHub[i]) return;
    const r = find(i);
    (comps.get(r) ?? comps.set(r, []).get(r)!).push(i);
  });
  const compEdges = new Map<number, [number, number][]>();
  for (const e of edges) {
    const a = index.get(e.from)!;
    const b = index.get(e.to)!;
    if (isHub[a] || isHub[b]) continue;
    const r = find(a);
    (compEdges.get(r) ?? compEdges.set(r, []).get(r)!).push([a, b]);
  }
  // Shape signature: kinds and label-derived widths in node order, edges as local index pairs. Equal
  // signatures mean node i of one maps onto node i of the other with the same edges.
  const shapes = new Map<string, { rep: number[]; local: [number, number][] }>();
  const compShape: { members: number[]; sig: string }[] = [];
  for (const [r, members] of comps) {
    const local = new Map(members.map((m, k) => [m, k]));
    const le: [number, number][] = (compEdges.get(r) ?? []).map(([a, b]) => [local.get(a)!, local.get(b)!]);
    le.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    const sig = members.map((m) => `${nodes[m].kind}:${nodeWidth(nodes[m])}`).join(',') + '|' + le.map(([a, b]) => `${a}>${b}`).join(',');
    if (!shapes.has(sig)) shapes.set(sig, { rep: members, local: le });
    compShape.push({ members, sig });
  }
  // One ELK call lays out every distinct shape (as separate components of one graph).
  const children: ElkNode[] = [];
  const elkEdges: ElkExtendedEdge[] = [];
  let s = 0;
  const shapeIds = new Map<string, string>();
  for (const [sig, shape] of shapes) {
    const sid = `s${s++}`;
    shapeIds.set(sig, sid);
    shape.rep.forEach((m, k) => children.push({ id: `${sid}n${k}`, width: nodeWidth(nodes[m]), height: NODE_H }));
    shape.local.forEach(([a, b], k) => elkEdges.push({ id: `${sid}e${k}`, sources: [`${sid}n${a}`], targets: [`${sid}n${b}`] }));
  }
  const res: ElkNode = await elk!.layout({
    id: 'root',
    layoutOptions: { ...FULL_OPTIONS, 'elk.separateConnectedComponents': 'true' },
    children,
    edges: elkEdges,
  });
  const placed = new Map((res.children ?? []).map((c) => [c.id, c]));
  const shapeBox = new Map<string, { xs: number[]; ys: number[]; w: number; h: number }>();
  for (const [sig, shape] of shapes) {
    const sid = shapeIds.get(sig)!;
    const pts = shape.rep.map((_m, k) => placed.get(`${sid}n${k}`)!);
    const minX = Math.min(...pts.map((p) => p.x ?? 0));
    const minY = Math.min(...pts.map((p) => p.y ?? 0));
    const xs = pts.map((p) => (p.x ?? 0) - minX);
    const ys = pts.map((p) => (p.y ?? 0) - minY);
    shapeBox.set(sig, { xs, ys, w: Math.max(...pts.map((p, k) => xs[k] + (p.width ?? 0))), h: Math.max(...pts.map((_p, k) => ys[k] + NODE_H)) });
  }
  // Pack components in rows (shelf packing), about as wide as tall overall.
  const area = compShape.reduce((a, c) => a + (shapeBox.get(c.sig)!.w + 40) * (shapeBox.get(c.sig)!.h + 24), 0);
  const maxRow = Math.max(1200, Math.sqrt(area) * 1.6);
  const hubW = Math.max(0, ...nodes.filter((_n, i) => isHub[i]).map((n) => nodeWidth(n)));
  const left = isHub.some(Boolean) ? hubW + 120 : 0;
  const pos: Layout['pos'] = new Map();
  let x = 0;
  let y = 0;
  let rowH = 0;
  let width = 0;
  for (const c of compShape) {
    const box = shapeBox.get(c.sig)!;
    if (x > 0 && x + box.w > maxRow) {
      x = 0;
      y += rowH + 24;
      rowH = 0;
    }
    c.members.forEach((m, k) => pos.set(nodes[m].id, { x: left + x + box.xs[k], y: y + box.ys[k], w: nodeWidth(nodes[m]), h: NODE_H }));
    x += box.w + 40;
    rowH = Math.max(rowH, box.h);
    width = Math.max(width, left + x);
  }
  let height = y + rowH;
  // Hubs in one column on the left, each level with the middle of what it touches, pushed apart.
  const touch = new Map<number, number[]>();
  for (const e of edges) {
    const a = index.get(e.from)!;
    const b = index.get(e.to)!;
    if (isHub[a] && !isHub[b]) (touch.get(a) ?? touch.set(a, []).get(a)!).push(pos.get(e.to)!.y);
    if (isHub[b] && !isHub[a]) (touch.get(b) ?? touch.set(b, []).get(b)!).push(pos.get(e.from)!.y);
  }
  const want: { i: number; y: number }[] = [];
  nodes.forEach((_n, i) => {
    if (!isHub[i]) return;
    const ys = touch.get(i) ?? [0];
    want.push({ i, y: ys.reduce((a, b) => a + b, 0) / ys.length });
  });
  want.sort((a, b) => a.y - b.y);
  let next = -Infinity;
  for (const w of want) {
    const hy = Math.max(w.y, next);
    pos.set(nodes[w.i].id, { x: 0, y: hy, w: nodeWidth(nodes[w.i]), h: NODE_H });
    next = hy + NODE_H + 8;
  }
  height = Math.max(height, next);
  return { pos, width, height, mode: 'hubs-aside', hubs: want.length, ms: performance.now() - t0 };
}
