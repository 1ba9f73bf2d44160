/**
 * The Serving metrics panel: per deployment, live latency (p50/p95/p99), requests per second and error
 * rate for each revision (stable and canary), with the SLO limits of its monitors as lines, over a
 * scrolling time window. Points older than the window are dropped as new ones arrive, so memory stays
 * bounded however long the panel is open. To keep CPU use small at 10 updates a second, the three charts
 * of a deployment are one ECharts instance (three grids: one model update and one canvas paint per
 * redraw instead of three), redraws are coalesced to at most one a second, only the data and the axis
 * range change between redraws, and nothing is drawn while paused or while the panel is hidden.
 */
import '../shared/elements';
import './serving.css';
import { LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, MarkLineComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import { isHostToServing, type HostToServing, type ServingDeploymentInfo, type ServingPoint, type ServingToHost, type VersionRole } from '../protocol/serving';
import { h, replaceChildren, setText } from '../shared/dom';
import { chartPalette, cssVar, onThemeChange } from '../shared/theme';
import { connect } from '../shared/vscode';

echarts.use([LineChart, GridComponent, LegendComponent, MarkLineComponent, TooltipComponent, CanvasRenderer]);

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
  /** What the charts' full option was built for; see drawAll. */
  shape?: string;
  el?: { section: HTMLElement; error: HTMLElement; box: HTMLElement; chart: echarts.ECharts };
  /** Grid layout the option was built for: 1 (stacked) or 3 (side by side) columns. */
  columns?: number;
  /** How many latency series the option has (they come first; then rps, then errors). */
  latencyCount?: number;
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
/** Time spent in drawAll (script only), for the bench. */
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
    d.el.chart.dispose();
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
  box.style.height = `${columnsFor(box) === 3 ? CHART_H : 3 * CHART_H}px`;
  const chart = echarts.init(box, undefined, { renderer: 'canvas' });
  d.el = { section, error, box, chart };
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
      lastDraw = performance.now();
      drawAll();
      drawMs += performance.now() - lastDraw;
    });
  };
  if (wait > 0) timer = setTimeout(go, wait);
  else go();
}

function drawAll(): void {
  draws++;
  const palette = chartPalette();
  const fg = cssVar('--vscode-foreground', '#ccc');
  const muted = cssVar('--vscode-descriptionForeground', '#888');
  const grid = cssVar('--vscode-widget-border', cssVar('--vscode-panel-border', '#444'));
  const sloColor = cssVar('--vscode-errorForeground', '#f14c4c');
  const xMin = latest - state.windowMs;
  for (const d of deployments.values()) {
    if (!d.el) continue;
    setText(d.el.error, d.error ?? '');
    const revs = [...d.revisions.entries()].sort((a, b) => (a[1].role === b[1].role ? a[0].localeCompare(b[0]) : a[1].role === 'stable' ? -1 : 1));
    const colorOf = (i: number) => palette[i % palette.length];
    const columns = columnsFor(d.el.box);
    // Pixel rectangles of the three grids (side by side, or stacked), and each legend above its grid.
    const width = d.el.box.clientWidth || 3 * MIN_CHART_W;
    const gap = 8;
    const cellW = columns === 3 ? (width - 2 * gap) / 3 : width;
    const cell = (k: number) => ({ x: columns === 3 ? k * (cellW + gap) : 0, y: columns === 3 ? 0 : k * CHART_H });
    const grids = [0, 1, 2].map((k) => ({ left: cell(k).x + 48, width: Math.max(10, cellW - 48 - 12), top: cell(k).y + 44, height: CHART_H - 44 - 24 }));
    const xAxes = [0, 1, 2].map((k) => ({ type: 'time' as const, gridIndex: k, min: xMin, max: latest, axisLabel: { color: muted, hideOverlap: true }, axisLine: { lineStyle: { color: grid } }, splitLine: { show: false } }));
    const yAxis = (k: number, title: string, unit: string) => ({ type: 'value' as const, gridIndex: k, name: `${title} (${unit})`, nameTextStyle: { color: muted, align: 'left' as const }, nameGap: 8, min: 0, axisLabel: { color: muted }, splitLine: { lineStyle: { color: grid, opacity: 0.4 } } });
    const legend = (k: number, names: string[]) => ({ top: cell(k).y, left: cell(k).x, width: cellW - 8, data: names, textStyle: { color: fg }, type: 'scroll' as const, pageTextStyle: { color: fg } });
    const line = (k: number, name: string, color: string, data: [number, number | null][], type: 'solid' | 'dashed' | 'dotted' = 'solid', markLine?: unknown) => ({
      type: 'line' as const,
      name,
      xAxisIndex: k,
      yAxisIndex: k,
      data,
      showSymbol: false,
      connectNulls: false,
      sampling: 'lttb' as const,
      silent: true,
      animation: false,
      lineStyle: { color, type, width: 1.5 },
      itemStyle: { color },
      ...(markLine ? { markLine } : {}),
    });
    const slo = d.info.slo;
    const sloMark = (lines: [number | undefined, string][]) => {
      const data = lines.filter(([v]) => v !== undefined).map(([v, label]) => ({ yAxis: v, name: label, label: { formatter: label, color: sloColor, position: 'insideEndTop' as const } }));
      return data.length ? { silent: true, animation: false, symbol: 'none', lineStyle: { color: sloColor, type: 'dashed' as const }, data } : undefined;
    };
    const latencySeries = revs.flatMap(([rev, r], i) => [
      line(0, `${rev} p50`, colorOf(i), r.points.map((p) => [p[0], p[1]]), 'dotted'),
      line(0, `${rev} p95`, colorOf(i), r.points.map((p) => [p[0], p[2]]), 'solid', i === 0 ? sloMark([[slo.p50LatencyMs, `SLO p50 ${slo.p50LatencyMs} ms`], [slo.p95LatencyMs, `SLO p95 ${slo.p95LatencyMs} ms`], [slo.p99LatencyMs, `SLO p99 ${slo.p99LatencyMs} ms`]]) : undefined),
      line(0, `${rev} p99`, colorOf(i), r.points.map((p) => [p[0], p[3]]), 'dashed'),
    ]);
    const rpsSeries = revs.map(([rev, r], i) => line(1, `${rev} (${r.role})`, colorOf(i), r.points.map((p) => [p[0], p[4]])));
    const errSeries = revs.map(([rev, r], i) =>
      line(2, `${rev} (${r.role})`, colorOf(i), r.points.map((p) => [p[0], p[5] === null ? null : p[5] * 100]), 'solid', i === 0 ? sloMark([[slo.errorRate === undefined ? undefined : slo.errorRate * 100, `SLO ${slo.errorRate === undefined ? '' : (slo.errorRate * 100).toFixed(2)}%`]]) : undefined),
    );
    const series = [...latencySeries, ...rpsSeries, ...errSeries];
    // The whole option only when what is drawn changes (revisions, SLOs, theme, layout); otherwise only the
    // data and the axis range move, which is much cheaper for ECharts to apply.
    const shape = JSON.stringify([revs.map(([rev, r]) => [rev, r.role]), slo, palette, fg, muted, grid, sloColor, columns, Math.round(width)]);
    if (shape !== d.shape) {
      d.shape = shape;
      d.columns = columns;
      d.latencyCount = latencySeries.length;
      const height = columns === 3 ? CHART_H : 3 * CHART_H;
      if (d.el.box.style.height !== `${height}px`) {
        d.el.box.style.height = `${height}px`;
        d.el.chart.resize();
      }
      d.el.chart.setOption(
        {
          animation: false,
          backgroundColor: 'transparent',
          grid: grids,
          legend: [legend(0, latencySeries.map((x) => x.name)), legend(1, rpsSeries.map((x) => x.name)), legend(2, errSeries.map((x) => x.name))],
          tooltip: { trigger: 'axis' as const, renderMode: 'richText' as const },
          xAxis: xAxes,
          yAxis: [yAxis(0, 'latency', 'ms'), yAxis(1, 'requests', '/s'), yAxis(2, 'errors', '%')],
          series,
        },
        { notMerge: true },
      );
    } else {
      d.el.chart.setOption({ xAxis: [0, 1, 2].map(() => ({ min: xMin, max: latest })), series: series.map((x) => ({ data: x.data })) }, { silent: true });
    }
  }
  const n = [...deployments.values()].reduce((a, d) => a + [...d.revisions.values()].reduce((b, r) => b + r.points.length, 0), 0);
  setText(status, latest ? `${state.paused ? 'Paused · ' : ''}${n} points · last ${new Date(latest).toLocaleTimeString()}` : 'Waiting for metrics…');
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
new ResizeObserver(() => {
  for (const d of deployments.values()) {
    d.el?.chart.resize();
    // The grids are laid out in pixels: a new width means a new option (drawAll compares the layout).
  }
  schedule();
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
    const opt = d.el?.chart.getOption() as { xAxis?: { min?: number; max?: number }[]; series?: { name?: string; yAxisIndex?: number; markLine?: { data?: { yAxis?: number }[] } }[] } | undefined;
    const latency = (opt?.series ?? []).filter((s) => (s.yAxisIndex ?? 0) === 0);
    const errors = (opt?.series ?? []).filter((s) => s.yAxisIndex === 2);
    return {
      name: d.info.name,
      error: d.error,
      revisions: [...d.revisions.entries()].map(([rev, r]) => ({ revision: rev, role: r.role, points: r.points.length, first: r.points[0]?.[0], last: r.points[r.points.length - 1] })),
      xMin: opt?.xAxis?.[0]?.min,
      xMax: opt?.xAxis?.[0]?.max,
      latencySeries: latency.map((s) => s.name),
      sloLatency: latency.flatMap((s) => (s.markLine?.data ?? []).map((m) => m.yAxis)),
      sloErrors: errors.flatMap((s) => (s.markLine?.data ?? []).map((m) => m.yAxis)),
    };
  }),
});
