/**
 * The Experiments panel: a virtualized table of runs x params x metrics (sort, filter expression, group
 * with an aggregate, only differing columns, baseline deltas), run selection, and charts of the selected
 * runs (series over steps, scatter of two columns, parallel coordinates). User strings reach the DOM
 * only as text. Keyboard: the table is one tab stop; arrows move, Space selects, Enter opens logs,
 * B pins the baseline, S opens the spec at the run's commit, O opens the run.
 */
import '../shared/elements';
import './experiments.css';
import { h, icon, replaceChildren, setText } from '../shared/dom';
import { onThemeChange } from '../shared/theme';
import { connect } from '../shared/vscode';
import { isHostToExperiments, type ExperimentsToHost, type ExpRun, type ExpSeries, type HostToExperiments } from '../protocol/experiments';
import type { Charts } from './charts';
import { columnValue, tryParseFilter, type Predicate } from './filter';
import { collectColumns, computeView, delta, FIXED_COLUMNS, formatCell, formatDelta, sortPermutation, type Aggregate, type Cell, type Column, type Row, type View } from './model';

type ChartTab = 'series' | 'scatter' | 'parallel';
interface ExpState {
  v: 1;
  filter: string;
  sort?: { key: string; dir: 1 | -1 };
  groupBy?: string;
  aggregate: Aggregate;
  onlyDiffering: boolean;
  baseline?: string;
  selected: string[];
  expanded: string[];
  chart?: ChartTab;
  seriesName?: string;
  scatterX?: string;
  scatterY?: string;
}
const isState = (v: unknown): v is ExpState => typeof v === 'object' && v !== null && (v as ExpState).v === 1 && Array.isArray((v as ExpState).selected);

const ROW_H = 24;
/** The header's height (experiments.css). */
const HEAD_H = 36;
/** Rows rendered above and below the viewport. */
const OVERSCAN = 8;
/** Pixels rendered left and right of the viewport. */
const COL_MARGIN = 200;
const MAX_SERIES_RUNS = 12;
const MAX_PARALLEL_LINES = 2000;
const MAX_PARALLEL_AXES = 14;
const WIDTH: Record<string, number> = { select: 28, pin: 28, label: 220, status: 90, startedAt: 140 };
const colWidth = (c: Column): number => WIDTH[c.key] ?? (c.kind === 'metric' ? 128 : 104);

// ---- state ----
let runs: ExpRun[] = [];
let byId = new Map<string, ExpRun>();
let columns: Column[] = [];
let view: View = { rows: [], columns: [], runs: [], hiddenColumns: 0 };
let predicate: Predicate = () => true;
let active = 0;
let firstRunsSeen = false;
const seriesByRun = new Map<string, ExpSeries[]>();
const liveSeries = new Set<string>();
let charts: Charts | undefined;
let chartsLoading: Promise<Charts> | undefined;

const bridge = connect<HostToExperiments, ExperimentsToHost, ExpState>({ isHostMessage: isHostToExperiments, onMessage, isState });
const st: ExpState = bridge.state ?? { v: 1, filter: '', aggregate: 'mean', onlyDiffering: false, selected: [], expanded: [] };
const selected = new Set<string>(st.selected);
const expanded = new Set<string>(st.expanded);
let saveTimer: number | undefined;
function save(): void {
  if (saveTimer !== undefined) return;
  saveTimer = window.setTimeout(() => {
    saveTimer = undefined;
    bridge.setState({ ...st, selected: [...selected], expanded: [...expanded] });
  }, 100);
}

// ---- DOM ----
const filterField = h('vscode-textfield', { id: 'exp-filter', placeholder: 'Filter, e.g. metrics.auc > 0.8 && params.model == "xgb"', attrs: { 'aria-label': 'Filter runs by expression' } }) as HTMLElement & { value: string };
const groupSelect = h('vscode-single-select', { id: 'exp-group', attrs: { 'aria-label': 'Group by' } }) as HTMLElement & { value: string };
const aggSelect = h('vscode-single-select', { id: 'exp-agg', attrs: { 'aria-label': 'Aggregate' } }) as HTMLElement & { value: string };
const diffBox = h('vscode-checkbox', { id: 'exp-diff', attrs: { label: 'Only columns that differ' } }) as HTMLElement & { checked: boolean };
const countText = h('span', { class: 'exp-count mlp-muted', attrs: { 'aria-live': 'polite' } });
const chartsButton = h('vscode-button', { id: 'exp-open-charts', attrs: { secondary: true, title: 'Plot the selected runs' } }, 'Charts');
const clearButton = h('vscode-button', { id: 'exp-clear', attrs: { secondary: true } }, 'Clear selection');
const filterError = h('div', { class: 'exp-filter-error mlp-inline-error', id: 'exp-filter-error', attrs: { role: 'alert', hidden: true } });
const notice = h('div', { class: 'exp-notice', id: 'exp-notice', attrs: { hidden: true, role: 'status' } });
const head = h('div', { class: 'exp-head', attrs: { role: 'row' } });
const body = h('div', { class: 'exp-body', attrs: { role: 'rowgroup' } });
const emptyNote = h('div', { class: 'exp-empty', id: 'exp-empty', attrs: { hidden: true } });
const grid = h('div', { class: 'exp-grid', id: 'exp-grid', tabIndex: 0, attrs: { role: 'grid', 'aria-label': 'Runs', 'aria-multiselectable': 'true' } }, head, body, emptyNote);
const chartEl = h('div', { class: 'exp-chart', id: 'exp-chart', attrs: { role: 'img', 'aria-label': 'chart' } });
const chartControls = h('span', { class: 'exp-chart-controls' });
const chartNote = h('span', { class: 'mlp-muted', id: 'exp-chart-note' });
const tabButtons = new Map<ChartTab, HTMLButtonElement>();
for (const [tab, title] of [['series', 'Series'], ['scatter', 'Scatter'], ['parallel', 'Parallel coordinates']] as [ChartTab, string][]) {
  tabButtons.set(tab, h('button', { id: `exp-tab-${tab}`, attrs: { role: 'tab', 'aria-selected': 'false' }, onclick: () => openChart(tab) }, title));
}
const closeCharts = h('button', { class: 'mlp-icon-button', id: 'exp-close-charts', title: 'Close charts', attrs: { 'aria-label': 'Close charts' }, onclick: () => openChart(undefined) }, icon('close'));
const chartsPane = h('section', { class: 'exp-charts', id: 'exp-charts', attrs: { hidden: true, 'aria-label': 'Charts' } }, h('div', { class: 'exp-tabs', attrs: { role: 'tablist' } }, ...tabButtons.values(), chartControls, chartNote, h('span', { style: { 'margin-left': 'auto' } }, closeCharts)), chartEl);

const root = document.getElementById('root')!;
root.removeAttribute('data-loading');
replaceChildren(
  root,
  h(
    'div',
    { class: 'exp' },
    h('div', { class: 'mlp-toolbar exp-toolbar' }, filterField, h('label', null, 'Group by', groupSelect), h('label', null, aggSelect), diffBox, chartsButton, clearButton, countText),
    filterError,
    notice,
    grid,
    chartsPane,
  ),
);

filterField.value = st.filter;
diffBox.checked = st.onlyDiffering;
setOptions(aggSelect, [['mean', 'mean'], ['max', 'max'], ['min', 'min'], ['last', 'last (newest run)']], st.aggregate);
applyFilterText(st.filter, false);

filterField.addEventListener('input', (e) => applyFilterText(filterField.value, true, e.timeStamp));
groupSelect.addEventListener('change', () => {
  st.groupBy = groupSelect.value || undefined;
  save();
  refresh();
});
aggSelect.addEventListener('change', () => {
  st.aggregate = (aggSelect.value as Aggregate) || 'mean';
  save();
  refresh();
});
diffBox.addEventListener('change', () => {
  st.onlyDiffering = diffBox.checked;
  save();
  refresh();
});
chartsButton.addEventListener('click', () => openChart(st.chart ?? 'series'));
clearButton.addEventListener('click', () => setSelection([]));
// The scroll position is cached from scroll events, so rendering never forces a synchronous layout.
let scrollTop = 0;
let scrollLeft = 0;
grid.addEventListener(
  'scroll',
  () => {
    const t = grid.scrollTop;
    const l = grid.scrollLeft;
    // Already rendered there when an input handler read the position first (syncScroll).
    if (t === scrollTop && l === scrollLeft) return;
    scrollTop = t;
    scrollLeft = l;
    scheduleRows();
  },
  { passive: true },
);
grid.addEventListener('keydown', onKey);
new ResizeObserver(() => charts?.resize()).observe(chartEl);
onThemeChange(() => void drawChart());

// ---- messages from the host ----
function onMessage(m: HostToExperiments): void {
  switch (m.type) {
    case 'runs': {
      performance.mark('mlp:runs');
      if (m.replace) runs = m.runs.slice();
      else {
        const incoming = new Map(m.runs.map((r) => [r.id, r]));
        runs = runs.map((r) => incoming.get(r.id) ?? r);
        const fresh = m.runs.filter((r) => !byId.has(r.id));
        if (fresh.length) runs = [...fresh, ...runs];
      }
      byId = new Map(runs.map((r) => [r.id, r]));
      columns = collectColumns(runs);
      updateColumnChoices();
      refresh();
      if (!firstRunsSeen && m.replace) {
        firstRunsSeen = true;
        afterPaint(() => performance.measure('mlp:first-paint', 'mlp:runs'));
      }
      // A full load (not a live update, which comes often): sort every column in idle time.
      if (m.replace) prepareSorts();
      if (st.chart) void drawChart();
      return;
    }
    case 'removed': {
      const gone = new Set(m.ids);
      runs = runs.filter((r) => !gone.has(r.id));
      byId = new Map(runs.map((r) => [r.id, r]));
      for (const id of m.ids) {
        seriesByRun.delete(id);
        if (selected.delete(id)) postSelection();
      }
      if (st.baseline && gone.has(st.baseline)) st.baseline = undefined;
      columns = collectColumns(runs);
      updateColumnChoices();
      refresh();
      return;
    }
    case 'series':
      if (!byId.has(m.runId)) return;
      seriesByRun.set(m.runId, m.series);
      if (m.live) liveSeries.add(m.runId);
      else liveSeries.delete(m.runId);
      if (st.chart === 'series' && selected.has(m.runId)) void drawChart();
      return;
    case 'select': {
      setSelection(m.ids, true);
      const i = view.rows.findIndex((r) => r.kind === 'run' && selected.has(r.run.id));
      if (i >= 0) setActive(i);
      return;
    }
    case 'notice':
      notice.hidden = !m.text;
      notice.className = `exp-notice ${m.level}`;
      setText(notice, m.text);
      return;
  }
}

// ---- filter / view ----
function applyFilterText(text: string, user: boolean, since?: number): void {
  const parsed = tryParseFilter(text);
  if (!parsed.ok) {
    const e = parsed.error;
    filterError.hidden = false;
    // The expression with a caret under the problem (text only).
    const line = text.replace(/\s/g, ' ');
    const caret = ' '.repeat(Math.min(e.start, line.length)) + '^'.repeat(Math.max(1, Math.min(e.end, line.length + 1) - e.start));
    setText(filterError, `${line}\n${caret}\n${e.message}`);
    filterField.setAttribute('invalid', '');
    return;
  }
  setHidden(filterError, true);
  setText(filterError, '');
  setAttr(filterField, 'invalid', undefined);
  predicate = parsed.predicate;
  st.filter = text;
  if (user) {
    // From the input event's time stamp (the keystroke), not this handler's start, to the painted frame.
    performance.mark('mlp:filter-start', since !== undefined ? { startTime: since } : undefined);
    save();
    refresh();
    afterPaint(() => performance.measure('mlp:filter', 'mlp:filter-start'));
  }
}

let headKey = '';
let shownRowCount = -1;
function refresh(): void {
  const t0 = performance.now();
  view = computeView(runs, columns, { predicate, sort: st.sort, groupBy: st.groupBy, aggregate: st.aggregate, expanded, onlyDiffering: st.onlyDiffering });
  performance.measure('mlp:compute', { start: t0, end: performance.now() });
  if (active >= view.rows.length) active = Math.max(0, view.rows.length - 1);
  const cols = allColumns();
  // The header and the row pool depend on the columns only: a sort updates the header's indicators in
  // place (the clicked button keeps the focus), and the rows' cells are rewritten, not rebuilt.
  const key = cols.map((c) => `${c.key}\u0001${c.numeric}`).join('\u0000');
  if (key !== headKey) {
    headKey = key;
    renderHead(cols);
  }
  updateSortIndicators();
  if (shownRowCount !== view.rows.length) {
    shownRowCount = view.rows.length;
    body.style.height = `${view.rows.length * ROW_H}px`;
    grid.setAttribute('aria-rowcount', String(view.rows.length + 1));
  }
  const shown = view.runs.length;
  setText(countText, `${shown === runs.length ? `${runs.length} runs` : `${shown} of ${runs.length} runs`}${selected.size ? ` · ${selected.size} selected` : ''}${view.hiddenColumns ? ` · ${view.hiddenColumns} equal columns hidden` : ''}`);
  const t1 = performance.now();
  // The rows in view now; the overscan (rows and columns just outside the viewport) once the frame is out.
  renderRows(false);
  scheduleOverscan();
  performance.measure('mlp:rows', { start: t1, end: performance.now() });
  if (st.chart === 'scatter' || st.chart === 'parallel') scheduleChart();
}

function allColumns(): Column[] {
  return [{ key: 'select', title: '', kind: 'fixed', numeric: false }, { key: 'pin', title: '', kind: 'fixed', numeric: false }, ...FIXED_COLUMNS, ...view.columns];
}

let poolCols: Column[] = [];
/** Left edge of each pool column, px. */
let colLeft: number[] = [];
/** The columns in view (with a margin), by index: the others are hidden. */
let c0 = 0;
let c1 = Infinity;
/** Header cells by column key, with the text node of their sort indicator. */
let headCells = new Map<string, { cell: HTMLElement; arrow: Text }>();
let shownSort: string | undefined;
function renderHead(cols: Column[]): void {
  const width = cols.reduce((s, c) => s + colWidth(c), 0);
  // One grid template for the header and every row (no per-cell styles).
  grid.style.setProperty('--exp-cols', cols.map((c) => `${colWidth(c)}px`).join(' '));
  head.style.width = `${width}px`;
  body.style.width = `${width}px`;
  headCells = new Map();
  shownSort = undefined;
  const cells = cols.map((c, i) => {
    const cell = h('div', { class: `exp-hcell${c.numeric ? ' num' : ''}`, attrs: { role: 'columnheader', 'aria-colindex': i + 1 } });
    if (c.key === 'select') {
      cell.append(icon('check-all', 'Selected'));
      return cell;
    }
    if (c.key === 'pin') {
      cell.append(icon('pin', 'Baseline'));
      return cell;
    }
    const arrow = document.createTextNode('');
    headCells.set(c.key, { cell, arrow });
    cell.append(
      h('span', { class: 'exp-kind' }, c.kind === 'fixed' ? '' : c.kind),
      h('button', { title: `${c.kind === 'fixed' ? c.title : c.key}: click to sort`, data: { sortKey: c.key }, onclick: (e: MouseEvent) => toggleSort(c.key, e) }, c.title, arrow),
    );
    return cell;
  });
  replaceChildren(head, ...cells);
  // New columns: new row elements.
  if (poolCols.length !== cols.length || poolCols.some((c, i) => c.key !== cols[i].key || c.numeric !== cols[i].numeric)) {
    poolCols = cols;
    colLeft = [];
    let x = 0;
    for (const c of cols) {
      colLeft.push(x);
      x += colWidth(c);
    }
    pool = [];
    body.replaceChildren();
  }
}

/** aria-sort and the arrow of the sorted column (and of the one that no longer is). */
function updateSortIndicators(): void {
  const want = st.sort ? `${st.sort.dir}${st.sort.key}` : '';
  if (want === shownSort) return;
  shownSort = want;
  for (const [k, { cell, arrow }] of headCells) {
    const dir = st.sort?.key === k ? st.sort.dir : 0;
    setAttr(cell, 'aria-sort', dir === 1 ? 'ascending' : dir === -1 ? 'descending' : undefined);
    const text = dir === 1 ? ' ▲' : dir === -1 ? ' ▼' : '';
    if (arrow.data !== text) arrow.data = text;
  }
}

/** Metrics sort best-first (descending) on the first click, and the start time newest-first; names ascending. */
function firstDirection(key: string): 1 | -1 {
  return key.startsWith('metrics.') || key === 'startedAt' ? -1 : 1;
}

function toggleSort(key: string, e?: Event): void {
  // From the user's action (the click's time stamp, not this handler's start) to the painted frame.
  performance.mark('mlp:sort-start', e ? { startTime: e.timeStamp } : undefined);
  // Render at the scroll position the click happened at (a scroll may have just happened: its event comes later).
  syncScroll();
  const cur = st.sort?.key === key ? st.sort.dir : 0;
  const first = firstDirection(key);
  st.sort = cur === 0 ? { key, dir: first } : cur === first ? { key, dir: (-first) as 1 | -1 } : undefined;
  save();
  refresh();
  afterPaint(() => performance.measure('mlp:sort', 'mlp:sort-start'));
}

let rowsQueued = false;
function scheduleRows(): void {
  if (rowsQueued) return;
  rowsQueued = true;
  requestAnimationFrame(() => {
    rowsQueued = false;
    renderRows();
  });
}

/**
 * Sorting 10,000 runs by a column takes several milliseconds (reading every run's value, ranking them);
 * done ahead in idle time, a header click only reads the prepared order. The columns in view first, then
 * left to right; one column per idle slice at most, so input is never kept waiting long.
 */
let prepQueue: string[] = [];
let prepRuns: ExpRun[] | undefined;
function prepareSorts(): void {
  const cols = allColumns().filter((c) => c.key !== 'select' && c.key !== 'pin');
  const inView = cols.filter((_, i) => i + 2 >= c0 && i + 2 <= c1);
  prepQueue = [...inView, ...cols.filter((c) => !inView.includes(c))].map((c) => c.key);
  if (prepRuns === undefined) requestIdleCallback(prepareStep);
  prepRuns = runs;
}
function prepareStep(deadline: IdleDeadline): void {
  if (prepRuns !== runs) prepQueue = []; // the runs changed since: their sorts are made on demand
  while (prepQueue.length && deadline.timeRemaining() > 8) {
    const key = prepQueue.shift()!;
    sortPermutation(runs, key, firstDirection(key)); // cached: the click in that direction reads it
  }
  if (prepQueue.length) requestIdleCallback(prepareStep);
  else prepRuns = undefined;
}

let overscanQueued = false;
function scheduleOverscan(): void {
  if (overscanQueued) return;
  overscanQueued = true;
  requestIdleCallback(
    () => {
      overscanQueued = false;
      renderRows();
      warmCells();
    },
    { timeout: 200 },
  );
}

/**
 * Builds the content of the pooled cells of columns not shown yet (hidden, so it costs no style or
 * layout), in idle time: a horizontal scroll then only shows cells, it does not create them.
 */
let warmQueued = false;
function warmCells(): void {
  if (warmQueued || pool.every((slot) => slot.warm)) return;
  warmQueued = true;
  requestIdleCallback((deadline) => {
    warmQueued = false;
    for (const slot of pool) {
      if (slot.warm) continue;
      if (deadline.timeRemaining() < 2) break;
      for (let ci = 0; ci < poolCols.length; ci++) if (!slot.text[ci] && !slot.content[ci]) initCell(slot, ci);
      slot.warm = true;
    }
    warmCells();
  });
}

/** Reads the scroll position now (inside an input handler, where layout is clean, so this costs nothing). */
function syncScroll(): void {
  scrollTop = grid.scrollTop;
  scrollLeft = grid.scrollLeft;
}

let viewportH = 0;
let viewportW = 0;
new ResizeObserver(() => {
  viewportH = grid.clientHeight;
  viewportW = grid.clientWidth;
  scheduleRows();
}).observe(grid);

/**
 * A pooled row element: one cell per column (off-screen columns stay hidden and cost no layout:
 * horizontal virtualization); a cell's content is built when its column first comes into view, and
 * afterwards only its text nodes' data and a few attributes are rewritten, and only when they change.
 */
interface Slot {
  el: HTMLElement;
  cells: HTMLElement[];
  /** The cell's value text (the name/status span's text for those columns). */
  text: (Text | undefined)[];
  /** The select/pin icon, the name link or the status span. */
  content: (HTMLElement | undefined)[];
  /** The baseline delta of value cells (created when first needed). */
  delta: (HTMLElement | undefined)[];
  /** The row index shown, -1 when hidden. */
  index: number;
  /** The column window shown. */
  c0: number;
  c1: number;
  /** Every cell's content is built. */
  warm: boolean;
}
let pool: Slot[] = [];
/** The row index of pool[0]. */
let poolFirst = 0;

function makeSlot(): Slot {
  const el = document.createElement('div');
  el.className = 'exp-row';
  el.setAttribute('role', 'row');
  el.hidden = true;
  const cells: HTMLElement[] = [];
  for (let ci = 0; ci < poolCols.length; ci++) {
    const cell = document.createElement('div');
    cell.className = poolCols[ci].numeric ? 'exp-cell num' : 'exp-cell';
    cell.setAttribute('role', 'gridcell');
    cell.style.width = `${colWidth(poolCols[ci])}px`;
    cell.hidden = true;
    cells.push(cell);
  }
  el.append(...cells);
  const n = poolCols.length;
  return { el, cells, text: new Array(n), content: new Array(n), delta: new Array(n), index: -1, c0: 0, c1: -1, warm: false };
}

function initCell(slot: Slot, ci: number): void {
  const c = poolCols[ci];
  const cell = slot.cells[ci];
  let content: HTMLElement | undefined;
  if (c.key === 'select') content = h('span', { class: 'codicon exp-select', attrs: { role: 'checkbox', 'aria-label': 'Select run' } });
  else if (c.key === 'pin') content = h('span', { class: 'codicon exp-pin', attrs: { role: 'button', 'aria-label': 'Pin as baseline' } });
  else if (c.key === 'label') content = h('span', { class: 'exp-name', attrs: { role: 'link' } });
  else if (c.key === 'status') content = h('span', { class: 'exp-status' });
  if (content) {
    cell.append(content);
    slot.content[ci] = content;
    if (c.key === 'label' || c.key === 'status') content.append((slot.text[ci] = document.createTextNode('')));
  } else cell.append((slot.text[ci] = document.createTextNode('')));
}

function setClass(el: Element, name: string, on: boolean): void {
  if (el.classList.contains(name) !== on) el.classList.toggle(name, on);
}
function setAttr(el: Element, name: string, value: string | undefined): void {
  if (value === undefined) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}
function setData(t: Text, text: string): void {
  if (t.data !== text) t.data = text;
}
function setClassName(el: HTMLElement, name: string): void {
  if (el.className !== name) el.className = name;
}

/** Whether this pass also updates the value cells' tooltips. */
let titles = true;
/**
 * Renders the rows and columns in view; with `overscan` also a margin around them (so that scrolling shows
 * no blank) and the value cells' tooltips. A sort or filter renders what is in view first, the rest once
 * the frame is out (scheduleOverscan).
 */
function renderRows(overscan = true): void {
  const height = viewportH || 600;
  const width = viewportW || 1600;
  // The scroll position the browser will clamp to when the table got shorter (its scroll event comes later).
  const top = Math.max(0, Math.min(scrollTop, view.rows.length * ROW_H + HEAD_H - height));
  c0 = 0;
  const margin = overscan ? COL_MARGIN : 0;
  const rowsAround = overscan ? OVERSCAN : 0;
  while (c0 < colLeft.length - 1 && colLeft[c0 + 1] <= scrollLeft - margin) c0++;
  c1 = c0;
  while (c1 < colLeft.length - 1 && colLeft[c1 + 1] < scrollLeft + width + margin) c1++;
  const first = Math.max(0, Math.floor(top / ROW_H) - rowsAround);
  const last = Math.min(view.rows.length, Math.ceil((top + height - HEAD_H) / ROW_H) + rowsAround);
  const baseline = st.baseline ? byId.get(st.baseline) : undefined;
  titles = overscan;
  while (pool.length < last - first) {
    const slot = makeSlot();
    pool.push(slot);
    body.append(slot.el);
  }
  poolFirst = first;
  for (let k = 0; k < pool.length; k++) {
    const slot = pool[k];
    const i = first + k;
    if (i >= last) {
      if (slot.index !== -1) {
        slot.index = -1;
        const el = slot.el;
        el.hidden = true;
        delete el.dataset.runId;
        delete el.dataset.group;
        delete el.dataset.index;
        el.removeAttribute('id');
      }
      continue;
    }
    fillRow(slot, view.rows[i], i, baseline);
  }
  placeActions();
  setHidden(emptyNote, view.rows.length > 0);
  if (!view.rows.length) {
    setText(emptyNote, runs.length ? 'No run matches the filter.' : 'No runs yet. Runs started with ML Pipeline: Run Pipeline (or mlpipeline run) appear here, live.');
    grid.removeAttribute('aria-activedescendant');
  } else setAttr(grid, 'aria-activedescendant', `exp-row-${active}`);
}

function setHidden(el: HTMLElement, hidden: boolean): void {
  if (el.hidden !== hidden) el.hidden = hidden;
}

/** Shows the cells of the column window [c0, c1] (building their content once) and hides those that left it. */
function windowCells(slot: Slot): void {
  if (slot.c0 === c0 && slot.c1 === c1) return;
  const { cells } = slot;
  for (let ci = slot.c0; ci <= slot.c1; ci++) if (ci < c0 || ci > c1) cells[ci].hidden = true;
  for (let ci = c0; ci <= c1; ci++) {
    if (ci >= slot.c0 && ci <= slot.c1) continue;
    if (!slot.text[ci] && !slot.content[ci]) initCell(slot, ci);
    cells[ci].hidden = false;
  }
  // The first cell shown starts at its column's left edge (the cells before it are hidden).
  if (slot.c0 !== c0) {
    if (slot.c0 < cells.length) cells[slot.c0].style.marginLeft = '';
    if (c0 > 0) cells[c0].style.marginLeft = `${colLeft[c0]}px`;
  }
  slot.c0 = c0;
  slot.c1 = c1;
}

function fillRow(slot: Slot, row: Row, index: number, baseline: ExpRun | undefined): void {
  const el = slot.el;
  if (slot.index !== index) {
    if (slot.index === -1) el.hidden = false;
    slot.index = index;
    el.id = `exp-row-${index}`;
    el.dataset.index = String(index);
    el.style.transform = `translateY(${index * ROW_H}px)`;
    el.setAttribute('aria-rowindex', String(index + 2));
  }
  setClass(el, 'active', index === active);
  windowCells(slot);
  const { cells, text, content } = slot;
  if (row.kind === 'group') {
    setClass(el, 'group', true);
    setClass(el, 'selected', false);
    setClass(el, 'baseline', false);
    if (el.dataset.runId !== undefined) delete el.dataset.runId;
    if (el.dataset.group !== row.key) el.dataset.group = row.key;
    setAttr(el, 'aria-expanded', String(row.expanded));
    setAttr(el, 'aria-selected', undefined);
    for (let ci = c0; ci <= c1; ci++) {
      const c = poolCols[ci];
      switch (c.key) {
        case 'select': {
          const a = content[ci]!;
          setClassName(a, `codicon exp-select exp-toggle codicon-${row.expanded ? 'chevron-down' : 'chevron-right'}`);
          setAttr(a, 'role', 'button');
          setAttr(a, 'aria-label', row.expanded ? 'Collapse group' : 'Expand group');
          setAttr(a, 'aria-checked', undefined);
          break;
        }
        case 'pin':
          setClassName(content[ci]!, 'codicon exp-pin');
          break;
        case 'label':
          setData(text[ci]!, `${groupTitle()} = ${formatCell(row.value) || '(none)'} · ${row.runs.length} run${row.runs.length === 1 ? '' : 's'}`);
          if (cells[ci].style.paddingLeft) cells[ci].style.paddingLeft = '';
          break;
        case 'status':
        case 'startedAt':
          setData(text[ci]!, '');
          break;
        default:
          fillValue(slot, ci, row.agg.get(c.key), baseline && c.numeric ? columnValue(baseline, c.key) : undefined);
      }
    }
    return;
  }
  const run = row.run;
  const isSel = selected.has(run.id);
  const isBase = baseline?.id === run.id;
  setClass(el, 'group', false);
  if (el.dataset.group !== undefined) delete el.dataset.group;
  if (el.dataset.runId !== run.id) el.dataset.runId = run.id;
  setAttr(el, 'aria-expanded', undefined);
  setAttr(el, 'aria-selected', String(isSel));
  setClass(el, 'selected', isSel);
  setClass(el, 'baseline', isBase);
  for (let ci = c0; ci <= c1; ci++) {
    const c = poolCols[ci];
    switch (c.key) {
      case 'select': {
        const a = content[ci]!;
        setClassName(a, `codicon exp-select codicon-${isSel ? 'pass-filled' : 'circle-large-outline'}`);
        setAttr(a, 'role', 'checkbox');
        setAttr(a, 'aria-label', 'Select run');
        setAttr(a, 'aria-checked', String(isSel));
        break;
      }
      case 'pin': {
        const a = content[ci]!;
        setClassName(a, `codicon exp-pin codicon-${isBase ? 'pinned' : 'pin'}`);
        setAttr(a, 'aria-pressed', String(isBase));
        setAttr(a, 'title', isBase ? 'Baseline (click to unpin)' : 'Pin as baseline: other runs show deltas (B)');
        break;
      }
      case 'label': {
        setData(text[ci]!, run.label ?? run.id);
        const title = `${run.label ? `${run.label} (${run.id})` : run.id}: open the run (O)`;
        if (content[ci]!.title !== title) content[ci]!.title = title;
        const pad = row.depth ? '20px' : '';
        if (cells[ci].style.paddingLeft !== pad) cells[ci].style.paddingLeft = pad;
        break;
      }
      case 'status':
        setData(text[ci]!, run.live ? `${run.status} ●` : run.status);
        setClassName(content[ci]!, `exp-status ${run.status}`);
        break;
      case 'startedAt': {
        const t = text[ci]!;
        if (cells[ci].title !== run.startedAt) {
          cells[ci].title = run.startedAt;
          t.data = formatTime(run.startedAt);
        }
        break;
      }
      default:
        fillValue(slot, ci, columnValue(run, c.key), baseline && !isBase && c.numeric ? columnValue(baseline, c.key) : undefined);
    }
  }
}

function fillValue(slot: Slot, ci: number, v: Cell, base: Cell): void {
  const value = formatCell(v);
  const t = slot.text[ci]!;
  if (t.data !== value) t.data = value;
  // The full value on hover (a long string is cut with an ellipsis): set by the full pass, after the frame.
  if (titles && slot.cells[ci].title !== value) slot.cells[ci].title = value;
  const d = delta(v, base);
  let deltaEl = slot.delta[ci];
  if (d === undefined) {
    if (deltaEl?.parentNode) deltaEl.remove();
    return;
  }
  if (!deltaEl) {
    deltaEl = slot.delta[ci] = h('span', { class: 'exp-delta' }, '');
  }
  if (!deltaEl.parentNode) slot.cells[ci].append(deltaEl);
  setData(deltaEl.firstChild as Text, formatDelta(d));
  setClassName(deltaEl, `exp-delta ${d > 0 ? 'up' : d < 0 ? 'down' : ''}`);
}

// Row actions (logs, spec at commit): one set of buttons, shown in the hovered row, else the active one.
const actions = h(
  'span',
  { class: 'exp-actions' },
  h('button', { class: 'mlp-icon-button exp-logs', tabIndex: -1, title: 'Open logs (Enter)', attrs: { 'aria-label': 'Open logs' } }, icon('output')),
  h('button', { class: 'mlp-icon-button exp-spec', tabIndex: -1, title: "Open the spec at the run's commit (S)", attrs: { 'aria-label': 'Open spec at commit' } }, icon('git-commit')),
);
let hovered: number | undefined;
function placeActions(): void {
  const target = hovered ?? active;
  const slot = pool[target - poolFirst];
  const ci = poolCols.findIndex((c) => c.key === 'label');
  const cell = slot && slot.index === target && view.rows[target]?.kind === 'run' && ci >= c0 && ci <= c1 ? slot.cells[ci] : undefined;
  if (!cell) {
    actions.remove();
    return;
  }
  if (actions.parentElement !== cell) cell.append(actions);
}
body.addEventListener('mouseover', (e) => {
  const row = (e.target as HTMLElement).closest<HTMLElement>('.exp-row');
  const i = row ? Number(row.dataset.index) : undefined;
  if (i !== hovered) {
    hovered = i;
    placeActions();
  }
});
body.addEventListener('mouseleave', () => {
  hovered = undefined;
  placeActions();
});
// One listener for every row (rows are reused as they scroll).
body.addEventListener('click', (e) => {
  const t = e.target as HTMLElement;
  const el = t.closest<HTMLElement>('.exp-row');
  if (!el) return;
  const index = Number(el.dataset.index);
  const row = view.rows[index];
  if (!row) return;
  if (row.kind === 'group') {
    setActive(index, false);
    toggleGroup(row.key);
    return;
  }
  const id = row.run.id;
  if (t.closest('.exp-select')) toggleSelected(id);
  else if (t.closest('.exp-pin')) pinBaseline(id);
  else if (t.closest('.exp-logs')) bridge.post({ type: 'openLogs', runId: id });
  else if (t.closest('.exp-spec')) bridge.post({ type: 'openSpec', runId: id });
  else if (t.closest('.exp-name')) bridge.post({ type: 'openRun', runId: id });
  else if (e.ctrlKey || e.metaKey || e.shiftKey) toggleSelected(id);
  setActive(index, false);
});
body.addEventListener('dblclick', (e) => {
  const el = (e.target as HTMLElement).closest<HTMLElement>('.exp-row');
  const row = el ? view.rows[Number(el.dataset.index)] : undefined;
  if (row?.kind === 'run' && !(e.target as HTMLElement).closest('.exp-select, .exp-pin, .exp-actions, .exp-name')) bridge.post({ type: 'openLogs', runId: row.run.id });
});

function formatTime(iso: string): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const d = new Date(t);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

function groupTitle(): string {
  return st.groupBy?.replace(/^(params|metrics)\./, '') ?? '';
}

function setOptions(select: HTMLElement & { value: string }, options: [string, string][], value: string | undefined): void {
  replaceChildren(select, ...options.map(([v, label]) => h('vscode-option', { value: v }, label)));
  select.value = value ?? options[0]?.[0] ?? '';
}

function updateColumnChoices(): void {
  const params = columns.filter((c) => c.kind === 'param');
  if (st.groupBy && !columns.some((c) => c.key === st.groupBy) && st.groupBy !== 'status' && st.groupBy !== 'sweep') st.groupBy = undefined;
  setOptions(groupSelect, [['', '(no grouping)'], ...params.map((c): [string, string] => [c.key, c.title]), ['status', 'status'], ['sweep', 'sweep']], st.groupBy ?? '');
}

// ---- selection, baseline, groups, keyboard ----
function postSelection(): void {
  bridge.post({ type: 'selection', ids: [...selected] });
  if (st.chart === 'series') requestSeries();
  save();
}

function setSelection(ids: string[], fromHost = false): void {
  selected.clear();
  for (const id of ids) selected.add(id);
  postSelection();
  refresh();
  if (st.chart) scheduleChart();
  void fromHost;
}

function toggleSelected(id: string): void {
  if (selected.has(id)) selected.delete(id);
  else selected.add(id);
  postSelection();
  refresh();
  if (st.chart) scheduleChart();
}

function pinBaseline(id: string): void {
  st.baseline = st.baseline === id ? undefined : id;
  save();
  refresh();
}

function toggleGroup(key: string): void {
  if (expanded.has(key)) expanded.delete(key);
  else expanded.add(key);
  save();
  refresh();
}

function setActive(i: number, scroll = true): void {
  active = Math.max(0, Math.min(view.rows.length - 1, i));
  if (scroll) {
    const y = active * ROW_H;
    const headH = head.offsetHeight;
    if (y < grid.scrollTop) grid.scrollTop = scrollTop = y;
    else if (y + ROW_H > grid.scrollTop + grid.clientHeight - headH) grid.scrollTop = scrollTop = y + ROW_H - grid.clientHeight + headH;
  }
  renderRows();
}

function onKey(e: KeyboardEvent): void {
  // A focused header button handles its own keys (Enter or Space sorts).
  if ((e.target as HTMLElement).closest('.exp-head')) return;
  const row = view.rows[active];
  const page = Math.max(1, Math.floor(grid.clientHeight / ROW_H) - 2);
  const run = row?.kind === 'run' ? row.run : undefined;
  switch (e.key) {
    case 'ArrowDown':
      setActive(active + 1);
      break;
    case 'ArrowUp':
      setActive(active - 1);
      break;
    case 'PageDown':
      setActive(active + page);
      break;
    case 'PageUp':
      setActive(active - page);
      break;
    case 'Home':
      setActive(0);
      break;
    case 'End':
      setActive(view.rows.length - 1);
      break;
    case ' ':
      if (run) toggleSelected(run.id);
      else if (row?.kind === 'group') toggleGroup(row.key);
      break;
    case 'Enter':
      if (run) bridge.post({ type: 'openLogs', runId: run.id });
      else if (row?.kind === 'group') toggleGroup(row.key);
      break;
    case 'b':
    case 'B':
      if (run) pinBaseline(run.id);
      break;
    case 's':
    case 'S':
      if (run) bridge.post({ type: 'openSpec', runId: run.id });
      break;
    case 'o':
    case 'O':
      if (run) bridge.post({ type: 'openRun', runId: run.id });
      break;
    default:
      return;
  }
  e.preventDefault();
}

// ---- charts ----
function openChart(tab: ChartTab | undefined): void {
  st.chart = tab;
  save();
  chartsPane.hidden = !tab;
  for (const [t, b] of tabButtons) b.setAttribute('aria-selected', String(t === tab));
  if (!tab) {
    charts?.dispose();
    charts = undefined;
    chartsLoading = undefined;
    return;
  }
  if (tab === 'series') requestSeries();
  void drawChart();
}

function requestSeries(): void {
  const ids = [...selected].filter((id) => byId.has(id)).slice(0, MAX_SERIES_RUNS);
  if (ids.length) bridge.post({ type: 'requestSeries', ids });
}

let chartQueued = false;
function scheduleChart(): void {
  if (chartQueued || !st.chart) return;
  chartQueued = true;
  requestAnimationFrame(() => {
    chartQueued = false;
    void drawChart();
  });
}

async function loadCharts(): Promise<Charts> {
  chartsLoading ??= import('./charts').then((m) => new m.Charts(chartEl));
  charts = await chartsLoading;
  return charts;
}

const numericColumns = (): Column[] => columns.filter((c) => c.numeric);
const runName = (r: ExpRun): string => r.label ?? r.id;

async function drawChart(): Promise<void> {
  const tab = st.chart;
  if (!tab) return;
  const c = await loadCharts();
  if (st.chart !== tab) return;
  if (tab === 'series') {
    const ids = [...selected].filter((id) => byId.has(id)).slice(0, MAX_SERIES_RUNS);
    const names = [...new Set(ids.flatMap((id) => (seriesByRun.get(id) ?? []).map(seriesKey)))].sort();
    const chosen = st.seriesName && names.includes(st.seriesName) ? st.seriesName : (names.find((n) => /loss/i.test(n)) ?? names[0]);
    renderSelectControl('exp-series-name', 'Series', names.map((n) => [n, n]), chosen, (v) => {
      st.seriesName = v;
      save();
      void drawChart();
    });
    const lines = ids.flatMap((id) => (seriesByRun.get(id) ?? []).filter((s) => seriesKey(s) === chosen).map((s) => ({ name: `${runName(byId.get(id)!)}${liveSeries.has(id) ? ' (live)' : ''}`, points: s.points, x: s.x })));
    setText(chartNote, !selected.size ? 'Select runs in the table to plot their series.' : !names.length ? 'The selected runs recorded no series (plots: in the spec).' : selected.size > MAX_SERIES_RUNS ? `The first ${MAX_SERIES_RUNS} selected runs are plotted.` : '');
    c.lines(lines, lines[0]?.x ?? 'step', chosen ?? '');
    return;
  }
  const nums = numericColumns();
  if (tab === 'scatter') {
    const xKey = st.scatterX && nums.some((n) => n.key === st.scatterX) ? st.scatterX : (nums.find((n) => n.kind === 'param')?.key ?? nums[0]?.key);
    const yKey = st.scatterY && nums.some((n) => n.key === st.scatterY) ? st.scatterY : (nums.find((n) => n.kind === 'metric' && n.key !== xKey)?.key ?? nums.find((n) => n.key !== xKey)?.key);
    replaceChildren(chartControls);
    renderSelectControl('exp-scatter-x', 'X', nums.map((n) => [n.key, n.key]), xKey, (v) => {
      st.scatterX = v;
      save();
      void drawChart();
    });
    renderSelectControl('exp-scatter-y', 'Y', nums.map((n) => [n.key, n.key]), yKey, (v) => {
      st.scatterY = v;
      save();
      void drawChart();
    }, true);
    const pts: { name: string; x: number; y: number; selected: boolean }[] = [];
    if (xKey && yKey)
      for (const r of view.runs) {
        const x = columnValue(r, xKey);
        const y = columnValue(r, yKey);
        if (typeof x === 'number' && typeof y === 'number') pts.push({ name: runName(r), x, y, selected: selected.has(r.id) });
      }
    setText(chartNote, nums.length < 2 ? 'A scatter needs two numeric columns.' : `${pts.length} runs (the filtered ones)`);
    c.scatter(pts, xKey ?? '', yKey ?? '');
    return;
  }
  // Parallel coordinates over the shown columns (params, then metrics).
  replaceChildren(chartControls);
  const axesCols = view.columns.slice(0, MAX_PARALLEL_AXES);
  const src = view.runs.length > MAX_PARALLEL_LINES ? [...view.runs.filter((r) => selected.has(r.id)), ...view.runs.slice(0, MAX_PARALLEL_LINES)] : view.runs;
  const axes = axesCols.map((col) => (col.numeric ? { title: col.key } : { title: col.key, categories: [...new Set(src.map((r) => formatCell(columnValue(r, col.key))))].sort() }));
  const lines = src.map((r) => ({ name: runName(r), selected: selected.has(r.id), values: axesCols.map((col) => { const v = columnValue(r, col.key); return col.numeric ? (typeof v === 'number' ? v : null) : formatCell(v); }) }));
  setText(chartNote, `${lines.length} runs over ${axes.length} columns${view.columns.length > MAX_PARALLEL_AXES ? ` (first ${MAX_PARALLEL_AXES}; "only columns that differ" narrows them)` : ''}`);
  c.parallel(axes, lines);
}

function seriesKey(s: ExpSeries): string {
  return `${s.step}/${s.file}: ${s.name}`;
}

function renderSelectControl(id: string, label: string, options: [string, string][], value: string | undefined, onChange: (v: string) => void, append = false): void {
  const select = h('vscode-single-select', { id, attrs: { 'aria-label': label } }) as HTMLElement & { value: string };
  setOptions(select, options, value);
  select.addEventListener('change', () => onChange(select.value));
  const wrap = h('label', null, label, select);
  if (append) chartControls.append(wrap);
  else replaceChildren(chartControls, wrap);
}

function afterPaint(cb: () => void): void {
  requestAnimationFrame(() => setTimeout(cb, 0));
}

// Restore the chart pane after a reload (its data arrives with the runs).
if (st.chart) openChart(st.chart);
refresh();
