/**
 * The Lineage panel: the graph the host sends (recorded runs and deploys, or the spec's DAG), laid out
 * by ELK (layout.ts) and drawn by an ECharts graph series with fixed positions (zoom, pan, click on the
 * canvas). Selecting a node highlights everything upstream and downstream of it and asks the host to open
 * it; two runs can be compared (their changed inputs are listed and outlined). A node list beside the
 * graph makes every node reachable from the keyboard.
 */
import '../shared/elements';
import './lineage.css';
import { GraphChart, LinesChart, ScatterChart } from 'echarts/charts';
import { DataZoomComponent, GridComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import { adjacency, isHostToLineage, reachable, type Adjacency, type GraphNode, type HostToLineage, type LineageGraphData, type LineageToHost, type RunChoice, type RunDiff } from '../protocol/lineage';
import { h, replaceChildren, setText } from '../shared/dom';
import { chartPalette, cssVar, onThemeChange } from '../shared/theme';
import { connect } from '../shared/vscode';
import { layoutGraph, warmUp, type Layout } from './layout';

echarts.use([GraphChart, ScatterChart, LinesChart, GridComponent, DataZoomComponent, TooltipComponent, CanvasRenderer]);

type Direction = 'both' | 'up' | 'down';
interface LineageState {
  v: 1;
  source: 'spec' | 'runs';
  selected?: string;
  direction: Direction;
  diff?: { a: string; b: string };
}
const isState = (v: unknown): v is LineageState => typeof v === 'object' && v !== null && (v as LineageState).v === 1;

let state: LineageState = { v: 1, source: 'runs', direction: 'both' };
let graph: LineageGraphData | undefined;
let adj: Adjacency | undefined;
let layout: Layout | undefined;
let byId = new Map<string, GraphNode>();
let diff: RunDiff | undefined;
let runs: RunChoice[] = [];
let generation = 0;

const KIND_LABEL: Record<GraphNode['kind'], string> = { dataset: 'dataset', file: 'file', step: 'step run', output: 'artifact', model: 'model', deployment: 'deployment', commit: 'commit' };

// ---- DOM ------------------------------------------------------------------------------------------
const root = document.getElementById('root')!;
const sourceRuns = h('vscode-button', { attrs: { 'aria-pressed': 'true' }, title: 'What runs and deploys recorded' }, 'Runs');
const sourceSpec = h('vscode-button', { secondary: true, attrs: { 'aria-pressed': 'false' }, title: 'The spec as written, before anything ran' }, 'Spec');
const refresh = h('vscode-button', { secondary: true, title: 'Read the records again' }, 'Refresh');
const runA = h('select', { class: 'lin-select', attrs: { 'aria-label': 'First run to compare' } });
const runB = h('select', { class: 'lin-select', attrs: { 'aria-label': 'Second run to compare' } });
const compare = h('vscode-button', { secondary: true, title: 'Which inputs changed between the two runs' }, 'Compare');
const clearDiff = h('vscode-button', { secondary: true, title: 'Stop showing the comparison' }, 'Clear');
const status = h('span', { class: 'mlp-muted lin-status', attrs: { role: 'status' } });
const toolbar = h('div', { class: 'mlp-toolbar' }, sourceRuns, sourceSpec, refresh, h('span', { class: 'lin-sep' }), h('label', null, 'Compare '), runA, h('span', null, '→'), runB, compare, clearDiff, status);

const chartEl = h('div', { class: 'lin-chart', attrs: { role: 'img', 'aria-label': 'Lineage graph' } });
const search = h('vscode-textfield', { placeholder: 'Find a node…', attrs: { 'aria-label': 'Find a node' } }) as HTMLElement & { value: string };
const list = h('ul', { class: 'lin-list', attrs: { role: 'listbox', 'aria-label': 'Nodes' } });
const details = h('div', { class: 'lin-details' });
const diffBox = h('div', { class: 'lin-diff' });
const notice = h('div', { class: 'lin-notice', attrs: { role: 'alert' } });
const side = h('div', { class: 'lin-side' }, search, list, details, diffBox);
replaceChildren(root, h('div', { class: 'lin-app' }, toolbar, notice, h('div', { class: 'lin-body' }, chartEl, side)));

let chart: echarts.ECharts | undefined;

const bridge = connect<HostToLineage, LineageToHost, LineageState>({
  isHostMessage: isHostToLineage,
  isState,
  onMessage: (m) => {
    switch (m.type) {
      case 'graph':
        runs = m.runs;
        sourceSpec.toggleAttribute('disabled', !m.specAvailable);
        state.source = m.graph.source;
        diff = undefined;
        setText(notice, m.truncated ? 'Showing the newest runs only; older runs are left out to keep the graph drawable.' : '');
        void showGraph(m.graph);
        break;
      case 'diff':
        diff = m.diff;
        state.diff = { a: m.diff.a, b: m.diff.b };
        save();
        renderDiff();
        draw();
        break;
      case 'focus':
        if (byId.has(m.nodeId)) select(m.nodeId, false);
        break;
      case 'notice':
        setText(notice, m.text);
        notice.className = `lin-notice ${m.level === 'error' ? 'mlp-error' : 'mlp-muted'}`;
        break;
    }
  },
});
if (bridge.state) state = { ...state, ...bridge.state };

function save(): void {
  bridge.setState(state);
}

// ---- graph ----------------------------------------------------------------------------------------
async function showGraph(g: LineageGraphData): Promise<void> {
  const gen = ++generation;
  const t0 = performance.now();
  graph = g;
  byId = new Map(g.nodes.map((n) => [n.id, n]));
  adj = adjacency(g.edges);
  setSourceButtons();
  renderRunPickers();
  if (!g.nodes.length) {
    layout = undefined;
    chart?.clear();
    setText(status, g.source === 'spec' ? 'The spec has no steps yet.' : 'No lineage yet: run the pipeline, then Refresh.');
    root.dataset.layoutMs = '0';
    renderList();
    renderDetails();
    return;
  }
  setText(status, `Laying out ${g.nodes.length} nodes…`);
  const l = await layoutGraph(g.nodes, g.edges);
  if (gen !== generation) return; // a newer graph arrived meanwhile
  layout = l;
  if (state.selected && !byId.has(state.selected)) state.selected = undefined;
  setText(status, `${g.nodes.length} nodes, ${g.edges.length} edges · laid out in ${Math.round(l.ms)} ms`);
  root.dataset.layoutMs = String(Math.round(l.ms));
  root.dataset.nodes = String(g.nodes.length);
  const td = performance.now();
  draw(true);
  root.dataset.chartMs = String(Math.round(performance.now() - td));
  renderList();
  renderDetails();
  // From the graph's arrival to laid out and drawn (ECharts paints synchronously with lazyUpdate off).
  root.dataset.drawnMs = String(Math.round(performance.now() - t0));
}

function colors(): Record<GraphNode['kind'], string> {
  const p = chartPalette();
  return { dataset: p[2], file: p[6], step: p[0], output: p[1], model: p[3], deployment: p[5], commit: cssVar('--vscode-descriptionForeground', '#888') };
}

function related(): Set<string> | undefined {
  if (!state.selected || !adj) return undefined;
  const s = new Set<string>([state.selected]);
  if (state.direction !== 'down') for (const id of reachable(adj, state.selected, 'up')) s.add(id);
  if (state.direction !== 'up') for (const id of reachable(adj, state.selected, 'down')) s.add(id);
  return s;
}

function draw(fit = false): void {
  if (!graph || !layout) return;
  if (!chart) {
    chart = echarts.init(chartEl, undefined, { renderer: 'canvas' });
    wireChart();
  }
  const fg = cssVar('--vscode-editor-foreground', cssVar('--vscode-foreground', '#ccc'));
  const bg = cssVar('--vscode-editor-background', '#1e1e1e');
  const changedColor = cssVar('--vscode-gitDecoration-modifiedResourceForeground', cssVar('--vscode-errorForeground', '#f14c4c'));
  const focusColor = cssVar('--vscode-focusBorder', '#007fd4');
  const col = colors();
  const rel = related();
  const changed = new Set(diff?.changedNodes ?? []);
  const big = graph.nodes.length > 1500;
  if (big) {
    drawLarge(rel, changed, col, changedColor, focusColor, fit);
    return;
  }
  // Styles shared by kind live in categories; only nodes that differ from their kind (selected, changed,
  // dimmed, failed) carry their own, which keeps 5,000-node graphs cheap for ECharts to draw.
  const kinds = Object.keys(KIND_LABEL) as GraphNode['kind'][];
  const categories = kinds.map((k) => ({ name: k, symbol: k === 'step' ? 'rect' : 'roundRect', itemStyle: { color: bg, borderColor: col[k], borderWidth: 1.5 } }));
  const data = graph.nodes.map((n) => {
    const p = layout!.pos.get(n.id)!;
    const dim = rel && !rel.has(n.id);
    const isChanged = changed.has(n.id);
    const selected = n.id === state.selected;
    const item: Record<string, unknown> = { id: n.id, name: n.label, x: p.x + p.w / 2, y: p.y + p.h / 2, category: kinds.indexOf(n.kind), symbolSize: [p.w, p.h] };
    if (dim || isChanged || selected || n.status === 'failed') {
      item.itemStyle = {
        color: bg,
        borderColor: isChanged ? changedColor : selected ? focusColor : col[n.kind],
        borderWidth: isChanged || selected ? 3 : 1.5,
        borderType: n.status === 'failed' ? 'dashed' : 'solid',
        opacity: dim ? 0.15 : 1,
      };
    }
    if (!big) item.label = { show: true, color: fg, opacity: dim ? 0.3 : 1, formatter: () => (n.detail ? `${n.label}\n${n.detail}` : n.label), fontSize: 11, lineHeight: 13, overflow: 'truncate', width: p.w - 8 };
    return item;
  });
  const links = graph.edges.map((e) => (rel && !(rel.has(e.from) && rel.has(e.to)) ? { source: e.from, target: e.to, lineStyle: { opacity: 0.05 } } : { source: e.from, target: e.to }));
  chart.setOption(
    {
      animation: false,
      backgroundColor: 'transparent',
      tooltip: {
        renderMode: 'richText',
        formatter: (params: unknown) => {
          const d = (params as { dataType?: string; data?: { id?: string } }).data;
          const n = d?.id ? byId.get(d.id) : undefined;
          return n ? `${KIND_LABEL[n.kind]}: ${n.label}${n.detail ? `\n${n.detail}` : ''}${n.hash ? `\n${n.hash}` : ''}` : '';
        },
      },
      series: [
        {
          type: 'graph',
          layout: 'none',
          roam: true,
          nodeScaleRatio: 1,
          // Arrowheads cost a path each; on big graphs the left-to-right layout already says the direction.
          edgeSymbol: big ? ['none', 'none'] : ['none', 'arrow'],
          edgeSymbolSize: 6,
          categories,
          label: { show: false },
          lineStyle: { color: cssVar('--vscode-descriptionForeground', '#888'), width: 1, opacity: 0.6 },
          emphasis: { disabled: true },
          data,
          links,
        },
      ],
    },
    { notMerge: fit, lazyUpdate: false },
  );
}

/**
 * Big graphs (thousands of nodes): ECharts' graph series builds one element per node and edge, which takes
 * seconds at 5,000 nodes; its `large` scatter and lines series draw in batches instead. Nodes are points
 * on hidden value axes (zoom and pan through dataZoom), one series per kind, plus series for the
 * highlighted and the changed nodes on top; edges are one batched lines series.
 */
let largeIds: string[][] = [];
function drawLarge(rel: Set<string> | undefined, changed: Set<string>, col: Record<GraphNode['kind'], string>, changedColor: string, focusColor: string, fit: boolean): void {
  const g = graph!;
  const l = layout!;
  const center = (id: string): [number, number] => {
    const p = l.pos.get(id)!;
    return [p.x + p.w / 2, p.y + p.h / 2];
  };
  const kinds = Object.keys(KIND_LABEL) as GraphNode['kind'][];
  const groups: { name: string; color: string; ids: string[]; opacity: number; size: number }[] = kinds.map((k) => ({ name: k, color: col[k], ids: [], opacity: rel ? 0.15 : 1, size: 8 }));
  const hot = { name: 'related', color: focusColor, ids: [] as string[], opacity: 1, size: 10 };
  const diffed = { name: 'changed', color: changedColor, ids: [] as string[], opacity: 1, size: 12 };
  for (const n of g.nodes) {
    if (changed.has(n.id)) diffed.ids.push(n.id);
    else if (rel?.has(n.id)) hot.ids.push(n.id);
    else groups[kinds.indexOf(n.kind)].ids.push(n.id);
  }
  // Empty large series trip ECharts' batch painter: only groups with nodes become series.
  const all = [...groups, hot, diffed].filter((x) => x.ids.length);
  largeIds = all.map((x) => x.ids);
  const edgeColor = cssVar('--vscode-descriptionForeground', '#888');
  const coords = g.edges.map((e) => ({ coords: [center(e.from), center(e.to)] }));
  const relEdges = rel ? g.edges.filter((e) => rel.has(e.from) && rel.has(e.to)).map((e) => ({ coords: [center(e.from), center(e.to)] })) : [];
  const series = [
    { type: 'lines', coordinateSystem: 'cartesian2d', large: true, silent: true, lineStyle: { color: edgeColor, width: 1, opacity: rel ? 0.05 : 0.4 }, data: coords },
    ...all.map((x) => ({ type: 'scatter', name: x.name, large: true, largeThreshold: 0, symbol: 'rect', symbolSize: x.size, itemStyle: { color: x.color, opacity: x.opacity }, data: x.ids.map(center) })),
    { type: 'lines', coordinateSystem: 'cartesian2d', large: true, silent: true, lineStyle: { color: focusColor, width: 1, opacity: 0.7 }, data: relEdges },
  ];
  // A selection or diff only changes the series: zoom and pan stay where the user left them.
  if (!fit) {
    chart!.setOption({ series }, { lazyUpdate: false, replaceMerge: ['series'] });
    return;
  }
  chart!.setOption(
    {
      animation: false,
      backgroundColor: 'transparent',
      grid: { left: 8, right: 8, top: 8, bottom: 8 },
      xAxis: { type: 'value', show: false, scale: true },
      yAxis: { type: 'value', show: false, scale: true, inverse: true },
      dataZoom: [
        { type: 'inside', xAxisIndex: 0, filterMode: 'none' },
        { type: 'inside', yAxisIndex: 0, filterMode: 'none' },
      ],
      tooltip: {
        renderMode: 'richText',
        formatter: (params: unknown) => {
          const p = params as { seriesIndex?: number; dataIndex?: number };
          const id = p.seriesIndex !== undefined && p.seriesIndex > 0 ? largeIds[p.seriesIndex - 1]?.[p.dataIndex ?? -1] : undefined;
          const n = id ? byId.get(id) : undefined;
          return n ? `${KIND_LABEL[n.kind]}: ${n.label}${n.detail ? `\n${n.detail}` : ''}` : '';
        },
      },
      series,
    },
    { notMerge: true, lazyUpdate: false },
  );
}

function setSourceButtons(): void {
  const runsOn = state.source === 'runs';
  (sourceRuns as HTMLElement & { secondary: boolean }).secondary = !runsOn;
  (sourceSpec as HTMLElement & { secondary: boolean }).secondary = runsOn;
  sourceRuns.setAttribute('aria-pressed', String(runsOn));
  sourceSpec.setAttribute('aria-pressed', String(!runsOn));
  for (const el of [runA, runB, compare, clearDiff]) el.toggleAttribute('disabled', !runsOn || runs.length < 2);
}

function renderRunPickers(): void {
  for (const [sel, pick] of [
    [runA, state.diff?.a ?? runs[1]?.id],
    [runB, state.diff?.b ?? runs[0]?.id],
  ] as const) {
    replaceChildren(sel, ...runs.map((r) => h('option', { value: r.id, selected: r.id === pick }, r.label ? `${r.label} (${r.id})` : r.id)));
  }
}

// ---- selection, list, details -----------------------------------------------------------------------
function select(id: string, open: boolean): void {
  const n = byId.get(id);
  if (!n) return;
  state.selected = id;
  save();
  draw();
  renderDetails();
  for (const li of list.querySelectorAll('li')) li.setAttribute('aria-selected', String((li as HTMLElement).dataset.id === id));
  if (open) bridge.post({ type: 'jump', nodeId: id });
}

function renderList(): void {
  const q = (search.value ?? '').trim().toLowerCase();
  const nodes = graph?.nodes ?? [];
  const hits = (q ? nodes.filter((n) => n.label.toLowerCase().includes(q) || (n.detail ?? '').toLowerCase().includes(q) || n.id.toLowerCase().includes(q)) : nodes).slice(0, 200);
  replaceChildren(
    list,
    ...hits.map((n) =>
      h(
        'li',
        {
          tabIndex: 0,
          data: { id: n.id },
          attrs: { role: 'option', 'aria-selected': String(n.id === state.selected) },
          onclick: () => select(n.id, true),
          onkeydown: (e: KeyboardEvent) => {
            if (e.key === 'Enter') select(n.id, true);
            else if (e.key === ' ') {
              e.preventDefault();
              select(n.id, false);
            } else if (e.key === 'ArrowDown') ((e.currentTarget as HTMLElement).nextElementSibling as HTMLElement | null)?.focus();
            else if (e.key === 'ArrowUp') ((e.currentTarget as HTMLElement).previousElementSibling as HTMLElement | null)?.focus();
          },
        },
        h('span', { class: `lin-kind lin-kind-${n.kind}` }, KIND_LABEL[n.kind]),
        ' ',
        n.label,
        n.detail ? h('span', { class: 'mlp-muted' }, ` ${n.detail}`) : null,
      ),
    ),
  );
}

function renderDetails(): void {
  const n = state.selected ? byId.get(state.selected) : undefined;
  if (!n) {
    replaceChildren(details, h('p', { class: 'mlp-muted' }, 'Click a node to open it and highlight what it came from and what was made from it.'));
    return;
  }
  const dirButton = (d: Direction, text: string) => {
    const b = h('vscode-button', { secondary: state.direction !== d, data: { direction: d }, onclick: () => ((state.direction = d), save(), draw(), renderDetails()) }, text);
    b.setAttribute('aria-pressed', String(state.direction === d));
    return b;
  };
  const rel = related();
  replaceChildren(
    details,
    h('h3', null, `${KIND_LABEL[n.kind]}: `, h('span', { class: 'lin-name' }, n.label)),
    n.detail ? h('div', { class: 'mlp-muted' }, n.detail) : null,
    n.hash ? h('div', { class: 'lin-hash' }, n.hash) : null,
    n.status ? h('div', null, `status: ${n.status}`) : null,
    h('div', { class: 'lin-actions' }, h('vscode-button', { onclick: () => bridge.post({ type: 'jump', nodeId: n.id }), disabled: n.jump.kind === 'none' }, 'Open'), dirButton('up', 'Upstream'), dirButton('down', 'Downstream'), dirButton('both', 'Both')),
    h('div', { class: 'mlp-muted lin-related' }, `${(rel?.size ?? 1) - 1} related nodes highlighted`),
  );
}

function renderDiff(): void {
  if (!diff) {
    replaceChildren(diffBox);
    return;
  }
  const short = (h?: string) => (h ? (h.length > 12 ? h.slice(0, 8) : h) : '—');
  const rows = diff.changes.map((c) =>
    h('tr', { class: 'lin-change', data: { kind: c.kind } }, h('td', null, c.step || '(run)'), h('td', null, c.kind), h('td', { class: 'lin-name' }, c.name), h('td', { class: 'lin-hash' }, short(c.a)), h('td', { class: 'lin-hash' }, short(c.b))),
  );
  replaceChildren(
    diffBox,
    h('h3', null, 'Changed between ', diff.a, ' and ', diff.b),
    diff.changes.length
      ? h('table', { class: 'lin-diff-table' }, h('thead', null, h('tr', null, h('th', null, 'step'), h('th', null, 'kind'), h('th', null, 'input'), h('th', null, 'first'), h('th', null, 'second'))), h('tbody', null, ...rows))
      : h('p', { class: 'mlp-muted' }, 'Nothing changed: the same inputs, params and commit.'),
  );
}

// ---- events -------------------------------------------------------------------------------------------
sourceRuns.addEventListener('click', () => setSource('runs'));
sourceSpec.addEventListener('click', () => setSource('spec'));
refresh.addEventListener('click', () => bridge.post({ type: 'refresh' }));
compare.addEventListener('click', () => {
  if (runA.value && runB.value && runA.value !== runB.value) bridge.post({ type: 'diffRuns', a: runA.value, b: runB.value });
  else setText(notice, 'Pick two different runs to compare.');
});
clearDiff.addEventListener('click', () => {
  diff = undefined;
  state.diff = undefined;
  save();
  renderDiff();
  draw();
});
search.addEventListener('input', () => renderList());

function setSource(source: 'spec' | 'runs'): void {
  if (source === 'spec' && sourceSpec.hasAttribute('disabled')) return;
  state.source = source;
  state.selected = undefined;
  save();
  bridge.post({ type: 'setSource', source });
}

function wireChart(): void {
  if (!chart) return;
  chart.off('click');
  chart.on('click', (p: { dataType?: string; data?: unknown; seriesType?: string; seriesIndex?: number; dataIndex?: number }) => {
    if (p.seriesType === 'scatter' && p.seriesIndex !== undefined) {
      const id = largeIds[p.seriesIndex - 1]?.[p.dataIndex ?? -1];
      if (id) select(id, true);
      return;
    }
    const id = (p.data as { id?: string } | undefined)?.id;
    if (p.dataType === 'node' && id) select(id, true);
  });
}
const observer = new ResizeObserver(() => chart?.resize());
observer.observe(chartEl);
onThemeChange(() => draw());

// Tests and the bench read where a node is drawn (there is no DOM element per node on a canvas).
(chartEl as HTMLElement & { lineagePixel?: (id: string) => [number, number] | undefined }).lineagePixel = (id: string) => {
  const p = layout?.pos.get(id);
  if (!chart || !p) return undefined;
  const px = chart.convertToPixel((graph?.nodes.length ?? 0) > 1500 ? { gridIndex: 0 } : { seriesIndex: 0 }, [p.x + p.w / 2, p.y + p.h / 2]) as number[] | undefined;
  return px ? [px[0], px[1]] : undefined;
};
(chartEl as HTMLElement & { lineageView?: () => unknown }).lineageView = () => ({ selected: state.selected, related: [...(related() ?? [])], changed: diff?.changedNodes ?? [], layout: layout ? { mode: layout.mode, ms: layout.ms, hubs: layout.hubs } : undefined });
// Compile ELK's code while the host gathers the graph, so the first layout is not paying for it.
void warmUp();
renderDetails();
