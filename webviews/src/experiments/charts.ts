/**
 * The panel's charts, drawn by ECharts (only the pieces used are bundled; this module is imported on
 * first use, so ECharts is evaluated only when a chart is opened). Colours come from the theme's
 * --vscode-* variables; tooltips render on the canvas (renderMode 'richText'), so names never become HTML.
 */
import { LineChart, ParallelChart, ScatterChart } from 'echarts/charts';
import { DataZoomComponent, GridComponent, LegendComponent, ParallelComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import { chartPalette, cssVar } from '../shared/theme';

echarts.use([LineChart, ScatterChart, ParallelChart, GridComponent, TooltipComponent, LegendComponent, ParallelComponent, DataZoomComponent, CanvasRenderer]);

export interface LineInput {
  name: string;
  points: [number, number | null][];
}
export interface ScatterInput {
  name: string;
  x: number;
  y: number;
  selected: boolean;
}
export interface ParallelAxis {
  title: string;
  /** Category axes list their values; value axes are numeric. */
  categories?: string[];
}

/** Long user strings are cut for legends and axes (the table shows them in full). */
const cut = (s: string, n = 40): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function themeBase(): Record<string, unknown> {
  const fg = cssVar('--vscode-foreground', '#cccccc');
  const muted = cssVar('--vscode-descriptionForeground', fg);
  const lines = cssVar('--vscode-charts-lines', '#80808080');
  const axis = { axisLine: { lineStyle: { color: lines } }, axisLabel: { color: muted }, splitLine: { lineStyle: { color: lines, opacity: 0.35 } }, nameTextStyle: { color: muted } };
  return {
    color: chartPalette(),
    backgroundColor: 'transparent',
    textStyle: { color: fg, fontFamily: cssVar('--vscode-font-family', 'sans-serif') },
    animation: false,
    tooltip: { renderMode: 'richText', backgroundColor: cssVar('--vscode-editorWidget-background', '#252526'), borderColor: cssVar('--vscode-widget-border', lines), textStyle: { color: fg } },
    legend: { type: 'scroll', textStyle: { color: fg }, pageTextStyle: { color: muted }, top: 0 },
    _axis: axis,
  };
}

export class Charts {
  private chart: echarts.ECharts;
  /** What is drawn, for tests and screen readers (the canvas itself is opaque). */
  private readonly info: HTMLElement;

  constructor(el: HTMLElement) {
    this.chart = echarts.init(el, undefined, { renderer: 'canvas' });
    this.info = el;
  }

  private describe(kind: string, series: number, points: number, text: string): void {
    this.info.dataset.chart = kind;
    this.info.dataset.seriesCount = String(series);
    this.info.dataset.pointCount = String(points);
    this.info.setAttribute('aria-label', text);
  }

  lines(series: LineInput[], xName: string, yName: string): void {
    const base = themeBase();
    const axis = base._axis as Record<string, unknown>;
    delete base._axis;
    this.chart.setOption(
      {
        ...base,
        tooltip: { ...(base.tooltip as object), trigger: 'axis' },
        grid: { left: 56, right: 24, top: 36, bottom: 56 },
        xAxis: { type: 'value', name: xName, nameLocation: 'middle', nameGap: 26, scale: true, ...axis },
        yAxis: { type: 'value', name: yName, scale: true, ...axis },
        dataZoom: [{ type: 'inside' }],
        series: series.map((s) => ({ type: 'line', name: cut(s.name), data: s.points, showSymbol: s.points.length < 60, connectNulls: false, sampling: 'lttb' })),
      },
      { notMerge: true },
    );
    const points = series.reduce((n, s) => n + s.points.length, 0);
    this.describe('lines', series.length, points, `${yName} over ${xName}: ${series.length} runs`);
  }

  scatter(points: ScatterInput[], xName: string, yName: string): void {
    const base = themeBase();
    const axis = base._axis as Record<string, unknown>;
    delete base._axis;
    const palette = base.color as string[];
    const sel = points.filter((p) => p.selected);
    const rest = points.filter((p) => !p.selected);
    this.chart.setOption(
      {
        ...base,
        tooltip: { ...(base.tooltip as object), trigger: 'item', formatter: (p: { data: [number, number, string] }) => `${cut(p.data[2], 60)}\n${cut(xName)}: ${p.data[0]}\n${cut(yName)}: ${p.data[1]}` },
        grid: { left: 56, right: 24, top: 36, bottom: 56 },
        xAxis: { type: 'value', name: cut(xName), nameLocation: 'middle', nameGap: 26, scale: true, ...axis },
        yAxis: { type: 'value', name: cut(yName), scale: true, ...axis },
        series: [
          { type: 'scatter', name: 'runs', data: rest.map((p) => [p.x, p.y, p.name]), symbolSize: 6, itemStyle: { color: palette[0], opacity: 0.6 }, large: rest.length > 2000 },
          { type: 'scatter', name: 'selected', data: sel.map((p) => [p.x, p.y, p.name]), symbolSize: 10, itemStyle: { color: palette[1] } },
        ],
      },
      { notMerge: true },
    );
    this.describe('scatter', 2, points.length, `${yName} against ${xName}: ${points.length} runs, ${sel.length} selected`);
  }

  parallel(axes: ParallelAxis[], lines: { name: string; values: (number | string | null)[]; selected: boolean }[]): void {
    const base = themeBase();
    const axis = base._axis as Record<string, unknown>;
    delete base._axis;
    const palette = base.color as string[];
    const muted = cssVar('--vscode-descriptionForeground', '#888');
    this.chart.setOption(
      {
        ...base,
        tooltip: undefined,
        parallel: { left: 48, right: 96, top: 48, bottom: 24, parallelAxisDefault: { ...axis, nameTextStyle: { color: muted }, nameGap: 12, nameRotate: 0 } },
        parallelAxis: axes.map((a, dim) => (a.categories ? { dim, name: cut(a.title, 24), type: 'category', data: a.categories } : { dim, name: cut(a.title, 24), type: 'value', scale: true })),
        series: [
          { type: 'parallel', name: 'runs', data: lines.filter((l) => !l.selected).map((l) => l.values), lineStyle: { color: palette[0], opacity: 0.35, width: 1 }, progressive: 500 },
          { type: 'parallel', name: 'selected', data: lines.filter((l) => l.selected).map((l) => l.values), lineStyle: { color: palette[1], opacity: 1, width: 2 } },
        ],
      },
      { notMerge: true },
    );
    this.describe('parallel', 2, lines.length, `parallel coordinates over ${axes.length} columns: ${lines.length} runs`);
  }

  resize(): void {
    this.chart.resize();
  }

  dispose(): void {
    this.chart.dispose();
  }
}
