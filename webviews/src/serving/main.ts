/**
 * The Serving metrics panel: per deployment, live latency (p50/p95/p99), requests per second and error
 * rate for each revision (stable and canary), with the SLO limits of its monitors as lines, over a
 * scrolling time window. Points older than the window are dropped as new ones arrive, so memory stays
 * bounded however long the panel is open. To keep CPU use small at 10 updates a second, the charts are
 * uPlot (a redraw of ten 600-point lines takes about 7 ms here; ECharts took about 40), redraws are
 * coalesced to at most one a second, the charts are rebuilt only when what they show changes (revisions,
 * SLOs, theme, layout), and nothing is drawn while paused or while the panel is hidden.
 */
import '../shared/elements';
import './serving.css';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { isHostToServing, type HostToServing, type ServingDeploymentInfo, type ServingPoint, type ServingToHost, type VersionRole } from '../protocol/serving';
import { h, replaceChildren, setText } from '../shared/dom';
import { chartPalette, cssVar, onThemeChange } from '../shared/theme';
import { connect } from '../shared/vscode';

interface ServingState {
  v: 1;
  paused: boolean;
  windowMs: number;
}
const isState = (v: unknown): v is ServingState => typeof v === 'object' && v !== null && (v as ServingState).v === 1;

interface Revision {
  role: VersionRole;
  points: ServingPoint[];
}
interface Deployment {
  info: ServingDeploymentInfo;
  revisions: Map<string, Revision>;
  error?: string;
  /** What the charts were built for (revisions, SLOs, theme, layout); see drawAll. */
  shape?: string;
  el?: { section: HTMLElement; error: HTMLElement; box: HTMLElement; charts: Chart[] };
}
/** One of a deployment's three charts, and the SLO limits drawn on it (in its unit). */
interface Chart {
  plot: uPlot;
  slo: { value: number; label: string }[];
}
/** Height of one metric's chart, and the narrowest one before the three are stacked. */
const CHART_H = 220;
const MIN_CHART_W = 280;

const WINDOWS: [number, string][] = [
  [60_000, '1 minute'],
  [5 * 60_000, '5 minutes'],
  [15 * 60_000, '15 minutes'],
  [60 * 60_000, '1 hour'],
];

let state: ServingState = { v: 1, paused: false, windowMs: 5 * 60_000 };
let intervalMs = 2000;
const deployments = new Map<string, Deployment>();
let latest = 0;
let frame = 0;
let draws = 0;
/** Time spent redrawing (drawAll and uPlot's draw), for the bench. */
let drawMs = 0;

const root = document.getElementById('root')!;
const pause = h('vscode-button', { secondary: true, title: 'Freeze the charts (data keeps arriving)' }, 'Pause');
const windowSelect = h('select', { class: 'srv-select', attrs: { 'aria-label': 'Time window' } }, ...WINDOWS.map(([ms, text]) => h('option', { value: String(ms) }, text)));
const status = h('span', { class: 'mlp-muted srv-status', attrs: { role: 'status' } });
const notice = h('div', { class: 'srv-notice', attrs: { role: 'alert' } });
const list = h('div', { class: 'srv-list' });
replaceChildren(root, h('div', { class: 'srv-app' }, h('div', { class: 'mlp-toolbar' }, pause, h('label', null, 'Window '), windowSelect, status), notice, list));

const bridge = connect<HostToServing, ServingToHost, ServingState>({
  isHostMessage: isHostToServing,
  isState,
  onMessage: (m) => {
    switch (m.type) {
      case 'config':
        intervalMs = m.intervalMs;
        // The host's default window, unless the user picked one (restored state).
        if (!windowChosenByUser) {
          state.windowMs = WINDOWS.some(([w]) => w === m.windowMs) ? m.windowMs : state.windowMs;
          windowSelect.value = String(state.windowMs);
        }
        configure(m.deployments);
        break;
      case 'samples':
        if (m.replace) for (const d of deployments.values()) d.revisions.clear();
        for (const s of m.series) {
          const d = deployments.get(s.deployment) ?? addDeployment({ name: s.deployment, slo: {} });
          const r = d.revisions.get(s.revision) ?? { role: s.role, points: [] };
          r.role = s.role;
          for (const p of s.points) if (!r.points.length || p[0] > r.points[r.points.length - 1][0]) r.points.push(p);
          d.revisions.set(s.revision, r);
          d.error = undefined;
          if (r.points.length) latest = Math.max(latest, r.points[r.points.length - 1][0]);
        }
        trim();
        schedule();
        break;
      case 'sourceError': {
        const d = deployments.get(m.deployment) ?? addDeployment({ name: m.deployment, slo: {} });
        d.error = `${m.revision}: ${m.message}`;
        if (d.el) setText(d.el.error, d.error);
        break;
      }
      case 'notice':
        setText(notice, m.text);
        notice.className = `srv-notice ${m.level === 'error' ? 'mlp-error' : 'mlp-muted'}`;
        break;
    }
  },
});
if (bridge.state) state = { ...state, ...bridge.state };
let windowChosenByUser = !!bridge.state;
windowSelect.value = String(state.windowMs);
setPaused(state.paused, false);

function configure(infos: ServingDeploymentInfo[]): void {
  const names = new Set(infos.map((i) => i.name));
  for (const [name, d] of deployments) if (!names.has(name)) remove(name, d);
  for (const info of infos) {
    const d = deployments.get(info.name);
    if (d) d.info = info;
    else addDeployment(info);
  }
  if (!infos.length) setText(notice, 'No deployments are running. Deploy one (ML Pipeline: Deploy, or `mlpipeline deploy`), and its metrics appear here.');
  schedule();
}

function remove(name: string, d: Deployment): void {
  if (d.el) {
    for (const c of d.el.charts) c.plot.destroy();
    d.el.section.remove();
  }
  deployments.delete(name);
}

function addDeployment(info: ServingDeploymentInfo): Deployment {
  const d: Deployment = { info, revisions: new Map() };
  deployments.set(info.name, d);
  const error = h('div', { class: 'mlp-error srv-error' });
  const box = h('div', { class: 'srv-chart', attrs: { role: 'img', 'aria-label': `${info.name} latency, requests per second and error rate` } });
  const section = h('section', { class: 'srv-deployment', data: { deployment: info.name } }, h('h2', null, info.name), info.source ? h('div', { class: 'mlp-muted' }, info.source) : null, error, box);
  list.appendChild(section);
  setText(notice, '');
  d.el = { section, error, box, charts: [] };
  return d;
}

/** Three charts side by side when each gets MIN_CHART_W, else stacked. */
function columnsFor(box: HTMLElement): number {
  return (box.clientWidth || list.clientWidth) >= 3 * MIN_CHART_W + 16 ? 3 : 1;
}

/** Keeps only what the window can show (plus one point before it), and at most twice the points that fit. */
function trim(): void {
  const from = latest - state.windowMs - intervalMs;
  const cap = Math.ceil((state.windowMs / Math.max(50, intervalMs)) * 2) + 10;
  for (const d of deployments.values()) {
    for (const r of d.revisions.values()) {
      let i = 0;
      while (i < r.points.length - 1 && r.points[i + 1][0] < from) i++;
      if (r.points.length - i > cap) i = r.points.length - cap;
      if (i > 0) r.points.splice(0, i);
    }
  }
}

/**
 * Redraws are coalesced: at most one per MIN_REDRAW_MS, however fast samples arrive (10 a second is
 * common). Metrics dashboards need no more, and it keeps the panel's CPU use small.
 */
const MIN_REDRAW_MS = 1000;
let lastDraw = -Infinity;
let timer: ReturnType<typeof setTimeout> | undefined;
function schedule(): void {
  if (state.paused || frame || timer || document.visibilityState === 'hidden') return;
  const wait = lastDraw + MIN_REDRAW_MS - performance.now();
  const go = () => {
    timer = undefined;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (state.paused || document.visibilityState === 'hidden') return;
      const t0 = (lastDraw = performance.now());
      drawAll();
      // uPlot draws in a microtask queued by setData; this one runs after it.
      queueMicrotask(() => (drawMs += performance.now() - t0));
    });
  };
  if (wait > 0) timer = setTimeout(go, wait);
  else go();
}

/** The x range every chart shows: the window, ending at the newest point. */
let xMin = 0;
let xMax = 0;

function drawAll(): void {
  draws++;
  xMin = latest - state.windowMs;
  xMax = latest;
  let colours: Colours | undefined;
  for (const d of deployments.values()) {
    if (!d.el) continue;
    setText(d.el.error, d.error ?? '');
    const revs = [...d.revisions.entries()].sort((a, b) => (a[1].role === b[1].role ? a[0].localeCompare(b[0]) : a[1].role === 'stable' ? -1 : 1));
    // One table for the deployment: the revisions' points aligned on their time stamps (a revision with no
    // point at a time has `undefined` there, which the lines bridge; a null error rate is a gap).
    const tables = revs.map(([, r]) => {
      const n = r.points.length;
      const cols: (number | null)[][] = [new Array(n), new Array(n), new Array(n), new Array(n), new Array(n), new Array(n)];
      for (let i = 0; i < n; i++) {
        const p = r.points[i];
        cols[0][i] = p[0];
        cols[1][i] = p[1];
        cols[2][i] = p[2];
        cols[3][i] = p[3];
        cols[4][i] = p[4];
        cols[5][i] = p[5] === null ? null : p[5] * 100;
      }
      return cols as uPlot.AlignedData;
    });
    const joined = tables.length ? (tables.length === 1 ? tables[0] : uPlot.join(tables)) : ([[]] as unknown as uPlot.AlignedData);
    // Column k of revision i in the joined table.
    const col = (i: number, k: number) => joined[1 + i * 5 + k];
    const data: uPlot.AlignedData[] = [
      [joined[0], ...revs.flatMap((_r, i) => [col(i, 0), col(i, 1), col(i, 2)])],
      [joined[0], ...revs.map((_r, i) => col(i, 3))],
      [joined[0], ...revs.map((_r, i) => col(i, 4))],
    ] as uPlot.AlignedData[];
    colours ??= themeColours();
    const columns = columnsFor(d.el.box);
    const width = d.el.box.clientWidth || 3 * MIN_CHART_W;
    const shape = JSON.stringify([revs.map(([rev, r]) => [rev, r.role]), d.info.slo, colours, columns, Math.round(width)]);
    if (shape !== d.shape) {
      d.shape = shape;
      build(d, revs, colours, columns, width, data);
    } else for (let k = 0; k < 3; k++) d.el.charts[k].plot.setData(data[k]);
  }
  const n = [...deployments.values()].reduce((a, d) => a + [...d.revisions.values()].reduce((b, r) => b + r.points.length, 0), 0);
  setText(status, latest ? `${state.paused ? 'Paused · ' : ''}${n} points · last ${new Date(latest).toLocaleTimeString()}` : 'Waiting for metrics…');
}

interface Colours {
  palette: string[];
  muted: string;
  grid: string;
  slo: string;
  /** The editor's UI font, for the text drawn on the canvas. */
  font: string;
}
function themeColours(): Colours {
  return {
    palette: chartPalette(),
    muted: cssVar('--vscode-descriptionForeground', '#888'),
    grid: cssVar('--vscode-widget-border', cssVar('--vscode-panel-border', '#444')),
    slo: cssVar('--vscode-errorForeground', '#f14c4c'),
    font: getComputedStyle(document.body).fontFamily || 'sans-serif',
  };
}

/** (Re)builds a deployment's three charts: latency, requests per second, error rate. */
function build(d: Deployment, revs: [string, Revision][], c: Colours, columns: number, width: number, data: uPlot.AlignedData[]): void {
  const el = d.el!;
  for (const ch of el.charts) ch.plot.destroy();
  el.box.replaceChildren();
  el.box.classList.toggle('srv-side', columns === 3);
  const cellW = cellWidth(columns, width);
  const colourOf = (i: number) => c.palette[i % c.palette.length];
  const slo = d.info.slo;
  // Legend values (shown for the point under the cursor) with two decimals at most.
  const value = (_u: uPlot, v: number | null) => (v === null || v === undefined ? '--' : String(+v.toFixed(2)));
  const line = (label: string, stroke: string, dash?: number[]): uPlot.Series => ({ label, stroke, width: 1.5, dash, spanGaps: false, points: { show: false }, value });
  const dotted = [2, 3];
  const dashed = [6, 4];
  const specs: { title: string; series: uPlot.Series[]; slo: Chart['slo']; aria: string }[] = [
    {
      title: 'latency (ms)',
      series: revs.flatMap(([rev], i) => [line(`${rev} p50`, colourOf(i), dotted), line(`${rev} p95`, colourOf(i)), line(`${rev} p99`, colourOf(i), dashed)]),
      slo: ([[slo.p50LatencyMs, 'p50'], [slo.p95LatencyMs, 'p95'], [slo.p99LatencyMs, 'p99']] as [number | undefined, string][]).filter(([v]) => v !== undefined).map(([v, q]) => ({ value: v!, label: `SLO ${q} ${v} ms` })),
      aria: 'latency p50, p95 and p99',
    },
    { title: 'requests (/s)', series: revs.map(([rev, r], i) => line(`${rev} (${r.role})`, colourOf(i))), slo: [], aria: 'requests per second' },
    {
      title: 'errors (%)',
      series: revs.map(([rev, r], i) => line(`${rev} (${r.role})`, colourOf(i))),
      slo: slo.errorRate === undefined ? [] : [{ value: slo.errorRate * 100, label: `SLO ${(slo.errorRate * 100).toFixed(2)}%` }],
      aria: 'error rate',
    },
  ];
  el.charts = specs.map((spec, k) => {
    const cell = h('div', { class: 'srv-cell', attrs: { role: 'img', 'aria-label': `${d.info.name} ${spec.aria}` } });
    el.box.appendChild(cell);
    const chart: Chart = { plot: undefined as unknown as uPlot, slo: spec.slo };
    const axis = (label?: string): uPlot.Axis => ({ stroke: c.muted, font: `11px ${c.font}`, labelFont: `12px ${c.font}`, label, labelSize: label ? 16 : undefined, size: label ? 44 : 28, grid: { stroke: c.grid, width: 1, show: !!label }, ticks: { stroke: c.grid, width: 1 } });
    chart.plot = new uPlot(
      {
        width: cellW,
        height: CHART_H,
        ms: 1,
        legend: { live: true },
        // The cursor moves together on a deployment's three charts.
        cursor: { drag: { x: false, y: false, setScale: false }, points: { show: false }, sync: { key: `srv\u0000${d.info.name}` } },
        scales: {
          x: { time: true, range: () => [xMin, xMax] },
          // From zero, tall enough for the SLO lines.
          y: { range: (_u, _min, max) => [0, Math.max(max ?? 0, ...spec.slo.map((s) => s.value)) * 1.1 || 1] },
        },
        axes: [axis(), { ...axis(spec.title), values: (_u, vals) => vals.map((v) => String(+v.toFixed(3))) }],
        series: [{ label: 'Time', value: '{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}' }, ...spec.series],
        hooks: { draw: [(u) => drawSlo(u, chart.slo, c)] },
      },
      data[k],
      cell,
    );
    return chart;
  });
}

/** Width of one chart: a third of the box (less the gaps) side by side, else all of it. */
function cellWidth(columns: number, width: number): number {
  const gap = 8;
  return Math.max(MIN_CHART_W / 2, Math.floor(columns === 3 ? (width - 2 * gap) / 3 : width) - 2);
}

/** The SLO limits: dashed horizontal lines, labelled at their right end. */
function drawSlo(u: uPlot, slo: Chart['slo'], c: Colours): void {
  if (!slo.length) return;
  const ctx = u.ctx;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  ctx.strokeStyle = c.slo;
  ctx.fillStyle = c.slo;
  ctx.lineWidth = devicePixelRatio;
  ctx.setLineDash([5 * devicePixelRatio, 4 * devicePixelRatio]);
  ctx.font = `${11 * devicePixelRatio}px ${c.font}`;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'bottom';
  for (const s of slo) {
    const y = Math.round(u.valToPos(s.value, 'y', true));
    if (y < top || y > top + height) continue;
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(left + width, y);
    ctx.stroke();
    ctx.fillText(s.label, left + width - 4, y - 2);
  }
  ctx.restore();
}

function setPaused(paused: boolean, notify: boolean): void {
  state.paused = paused;
  setText(pause, paused ? 'Resume' : 'Pause');
  pause.setAttribute('aria-pressed', String(paused));
  bridge.setState(state);
  if (notify) bridge.post({ type: 'pause', paused });
  if (!paused) schedule();
  else setText(status, `Paused · ${status.textContent?.replace(/^Paused · /, '') ?? ''}`);
}

pause.addEventListener('click', () => setPaused(!state.paused, true));
windowSelect.addEventListener('change', () => {
  const ms = Number(windowSelect.value);
  if (!WINDOWS.some(([w]) => w === ms)) return;
  state.windowMs = ms;
  windowChosenByUser = true;
  bridge.setState(state);
  bridge.post({ type: 'setWindow', windowMs: ms });
  trim();
  if (!state.paused) schedule();
});
// The charts are sized in pixels: a new width rebuilds them (drawAll compares the layout). While paused
// nothing is redrawn with new data, so the frozen charts are only resized.
new ResizeObserver(() => {
  if (!state.paused) return schedule();
  for (const d of deployments.values()) {
    if (!d.el?.charts.length) continue;
    const side = d.el.box.classList.contains('srv-side');
    const w = cellWidth(side ? 3 : 1, d.el.box.clientWidth || 3 * MIN_CHART_W);
    for (const c of d.el.charts) c.plot.setSize({ width: w, height: CHART_H });
  }
}).observe(list);
onThemeChange(() => schedule());
// Nothing is drawn while the panel is hidden; catch up when it is shown again.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && !state.paused) schedule();
});

// Tests and the bench read what is plotted (charts are canvas).
(root as HTMLElement & { servingView?: () => unknown }).servingView = () => ({
  paused: state.paused,
  windowMs: state.windowMs,
  draws,
  drawMs,
  pending: !!(frame || timer),
  latest,
  deployments: [...deployments.values()].map((d) => {
    const charts = d.el?.charts ?? [];
    return {
      name: d.info.name,
      error: d.error,
      revisions: [...d.revisions.entries()].map(([rev, r]) => ({ revision: rev, role: r.role, points: r.points.length, first: r.points[0]?.[0], last: r.points[r.points.length - 1] })),
      xMin: charts[0]?.plot.scales.x.min,
      xMax: charts[0]?.plot.scales.x.max,
      latencySeries: (charts[0]?.plot.series ?? []).slice(1).map((s) => s.label),
      sloLatency: (charts[0]?.slo ?? []).map((s) => s.value),
      sloErrors: (charts[2]?.slo ?? []).map((s) => s.value),
      /** Points plotted per chart (the joined table's length). */
      plotted: charts.map((ch) => ch.plot.data[0].length),
    };
  }),
});
