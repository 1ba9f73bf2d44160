/**
 * The Experiments panel's host: runs from the run store(s) of the workspace's specs, kept current while
 * runs go (store file watcher + the run controller's events), plot series read from the runs' copied CSVs
 * (and, for a step still running in this window, from the file it is writing), and the panel's requests
 * (logs, the run, the spec at the run's commit).
 */
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EXPERIMENTS_VIEW_TYPE, isExperimentsToHost, type ExperimentsToHost, type ExpRun, type ExpSeries, type HostToExperiments } from '../../../webviews/src/protocol/experiments';
import type { Ctx } from '../ctx';
import type { RunRecord, RunSummary } from '../runtime/records';
import { storeRootFor } from '../specs';
import { openStore } from '../views/runs';
import { PanelHost, panelLog, type PanelSpec } from './panel-host';

export const EXPERIMENTS_PANEL: PanelSpec<ExperimentsToHost> = {
  viewType: EXPERIMENTS_VIEW_TYPE,
  bundle: 'experiments',
  title: 'Experiments',
  isWebviewMessage: isExperimentsToHost,
};

/** Largest plot CSV read (bigger ones are skipped with a notice); points per series beyond this are thinned. */
const MAX_CSV_BYTES = 32 * 1024 * 1024;
const MAX_POINTS = 20_000;
const SPEC_AT_SCHEME = 'mlpipeline-spec-at';

export class ExperimentsPanel extends PanelHost<HostToExperiments, ExperimentsToHost> {
  /** run id -> where it is stored, for requests about it. */
  private readonly where = new Map<string, { storeRoot: string; spec: vscode.Uri }>();
  /** What the webview has, by run id (JSON), so updates send only what changed. */
  private sent = new Map<string, string>();
  private readonly watched = new Map<string, vscode.FileSystemWatcher>();
  /** Runs whose series the panel shows: refreshed while they run. */
  private wanted = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private livePoll: NodeJS.Timeout | undefined;
  private loading: Promise<void> | undefined;
  private reloadQueued = false;
  /** The runs selected in the panel (as it last reported). */
  selection: string[] = [];
  /** Runs to select once loaded (Compare from the Runs view). */
  private pendingSelect: string[] | undefined;

  constructor(
    private readonly ctx: Ctx,
    panel: vscode.WebviewPanel,
  ) {
    super(ctx.extension.extensionUri, panel, EXPERIMENTS_PANEL);
    this.disposables.push(
      ctx.runs.onDidChange(() => this.scheduleReload()),
      ctx.specs.onDidChange(() => this.scheduleReload()),
      { dispose: () => this.stopTimers() },
      { dispose: () => this.watched.forEach((w) => w.dispose()) },
    );
    ensureSpecAtProvider(ctx.extension);
  }

  /** Selects these runs in the panel (now if it is ready, else once it is). */
  select(ids: string[]): void {
    if (this.isReady && this.sent.size) void this.post({ type: 'select', ids });
    else this.pendingSelect = ids;
  }

  protected async onReady(): Promise<void> {
    // A (re)loaded webview has nothing: send everything.
    this.sent = new Map();
    await this.reload(true);
  }

  protected async onMessage(m: ExperimentsToHost): Promise<void> {
    switch (m.type) {
      case 'selection':
        this.selection = m.ids;
        return;
      case 'requestSeries':
        this.wanted = new Set(m.ids);
        await Promise.all(m.ids.map((id) => this.sendSeries(id)));
        this.updateLivePoll();
        return;
      case 'openLogs': {
        const w = this.where.get(m.runId);
        if (!w) return this.unknown(m.runId);
        await vscode.commands.executeCommand('mlpipeline.openRunLogs', { runId: m.runId, storeRoot: w.storeRoot, ...(m.step ? { step: m.step } : {}) });
        return;
      }
      case 'openRun': {
        const w = this.where.get(m.runId);
        if (!w) return this.unknown(m.runId);
        await vscode.commands.executeCommand('mlpipeline.openRun', { runId: m.runId, storeRoot: w.storeRoot });
        return;
      }
      case 'openSpec':
        return this.openSpecAtCommit(m.runId);
      case 'refresh':
        this.sent = new Map();
        return this.reload(true);
    }
  }

  private unknown(id: string): void {
    void this.post({ type: 'notice', level: 'error', text: `Run ${id} is no longer in the run store (deleted?).` });
  }

  private scheduleReload(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reload(false);
    }, 250);
  }

  /** Lists every store and sends what changed; runs one at a time (a request during one queues one more). */
  private async reload(full: boolean): Promise<void> {
    if (this.loading) {
      this.reloadQueued = true;
      return this.loading;
    }
    this.loading = this.load(full).finally(() => {
      this.loading = undefined;
      if (this.reloadQueued) {
        this.reloadQueued = false;
        void this.reload(false);
      }
    });
    return this.loading;
  }

  private async load(full: boolean): Promise<void> {
    const specs = await this.ctx.specs.all();
    const roots = new Map<string, vscode.Uri>();
    for (const s of specs) if (!roots.has(storeRootFor(s))) roots.set(storeRootFor(s), s);
    const runs: ExpRun[] = [];
    const where = new Map<string, { storeRoot: string; spec: vscode.Uri }>();
    const errors: string[] = [];
    for (const [root, spec] of roots) {
      this.watch(root);
      try {
        for (const s of await (await openStore(root)).list()) {
          if (where.has(s.id)) continue;
          where.set(s.id, { storeRoot: root, spec });
          runs.push(toExpRun(s, !!this.ctx.runs.findLive(s.id)));
        }
      } catch (e) {
        errors.push(`${root}: ${(e as Error).message}`);
      }
    }
    this.where.clear();
    for (const [k, v] of where) this.where.set(k, v);
    const changed: ExpRun[] = [];
    const next = new Map<string, string>();
    for (const r of runs) {
      const json = JSON.stringify(r);
      next.set(r.id, json);
      if (this.sent.get(r.id) !== json) changed.push(r);
    }
    const removed = [...this.sent.keys()].filter((id) => !next.has(id));
    const wasEmpty = this.sent.size === 0;
    this.sent = next;
    if (full || wasEmpty) await this.post({ type: 'runs', runs, replace: true });
    else {
      if (changed.length) await this.post({ type: 'runs', runs: changed, replace: false });
      if (removed.length) await this.post({ type: 'removed', ids: removed });
    }
    if (errors.length) await this.post({ type: 'notice', level: 'error', text: `Runs could not be read: ${errors.join('; ')}` });
    else if (specs.length === 0) await this.post({ type: 'notice', level: 'info', text: 'No mlpipeline.yaml in this workspace: runs of its specs are listed here.' });
    if (this.pendingSelect) {
      await this.post({ type: 'select', ids: this.pendingSelect });
      this.pendingSelect = undefined;
    }
    // Series of shown runs that changed (a step finished and its plots were copied).
    for (const r of changed) if (this.wanted.has(r.id) && !full) void this.sendSeries(r.id);
    this.updateLivePoll();
  }

  private watch(root: string): void {
    if (this.watched.has(root)) return;
    const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(root), '{index.jsonl,*/run.json}'));
    const r = (): void => this.scheduleReload();
    w.onDidChange(r);
    w.onDidCreate(r);
    w.onDidDelete(r);
    this.watched.set(root, w);
  }

  /** While a shown run is running in this window, its series are re-read every second (the step is writing them). */
  private updateLivePoll(): void {
    const live = [...this.wanted].filter((id) => this.ctx.runs.findLive(id));
    if (live.length && !this.livePoll) {
      this.livePoll = setInterval(() => {
        const still = [...this.wanted].filter((id) => this.ctx.runs.findLive(id));
        for (const id of still) void this.sendSeries(id);
        if (!still.length) this.updateLivePoll();
      }, 1000);
    } else if (!live.length && this.livePoll) {
      clearInterval(this.livePoll);
      this.livePoll = undefined;
    }
  }

  private stopTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.livePoll) clearInterval(this.livePoll);
    this.timer = this.livePoll = undefined;
  }

  private async sendSeries(runId: string): Promise<void> {
    const w = this.where.get(runId);
    if (!w) return;
    const store = await openStore(w.storeRoot);
    const record = await store.get(runId).catch(() => undefined);
    if (!record) return;
    const live = record.status === 'running';
    const series: ExpSeries[] = [];
    const problems: string[] = [];
    const liveRun = this.ctx.runs.findLive(runId);
    const plotsOf = liveRun ? await stepPlots(liveRun.spec) : undefined;
    for (const [step, s] of Object.entries(record.steps)) {
      let files = (s.series ?? []).map((rel) => ({ file: path.basename(rel), abs: path.join(store.runPath(runId), rel) }));
      // A step still running has no copies yet: read what it is writing in the spec's folder.
      if (!files.length && s.status === 'running' && liveRun && plotsOf?.[step]) files = plotsOf[step].map((p) => ({ file: path.basename(p), abs: path.resolve(path.dirname(liveRun.spec.fsPath), p) }));
      for (const f of files) {
        try {
          const st = await stat(f.abs);
          if (st.size > MAX_CSV_BYTES) {
            problems.push(`${step}/${f.file} is larger than ${MAX_CSV_BYTES >> 20} MiB and was not plotted`);
            continue;
          }
          series.push(...parseSeriesCsv(await readFile(f.abs, 'utf8'), { runId, step, file: f.file }));
        } catch (e) {
          if (s.status !== 'running') problems.push(`${step}/${f.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      }
    }
    await this.post({ type: 'series', runId, series, live });
    if (problems.length) panelLog().warn(`Experiments: run ${runId}: ${problems.join('; ')}`);
  }

  private async openSpecAtCommit(runId: string): Promise<void> {
    const w = this.where.get(runId);
    if (!w) return this.unknown(runId);
    const record = await (await openStore(w.storeRoot)).get(runId);
    if (!record) return this.unknown(runId);
    const specFile = specFileOf(record, w.spec);
    if (!record.git) {
      void vscode.window.showInformationMessage(`ML Pipeline: run ${runId} has no git commit (not a git repository then): showing the spec as it is now.`);
      await vscode.window.showTextDocument(vscode.Uri.file(specFile), { preview: true });
      return;
    }
    const uri = vscode.Uri.from({ scheme: SPEC_AT_SCHEME, path: `/${record.git.commit.slice(0, 8)}/${path.basename(specFile)}`, query: JSON.stringify({ file: specFile, commit: record.git.commit }) });
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.languages.setTextDocumentLanguage(doc, 'yaml').then(undefined, () => doc);
    await vscode.window.showTextDocument(doc, { preview: true });
    if (record.git.dirty) void vscode.window.showInformationMessage(`ML Pipeline: run ${runId} started with uncommitted changes; this is the spec at commit ${record.git.commit.slice(0, 8)}, which may differ from what ran.`);
  }
}

function toExpRun(s: RunSummary, live: boolean): ExpRun {
  return {
    id: s.id,
    ...(s.label !== undefined ? { label: s.label } : {}),
    specName: s.specName,
    status: s.status,
    startedAt: s.startedAt,
    ...(s.finishedAt ? { finishedAt: s.finishedAt } : {}),
    params: s.params,
    metrics: Object.fromEntries(Object.entries(s.metrics).filter(([, v]) => Number.isFinite(v))),
    ...(s.gitCommit ? { gitCommit: s.gitCommit } : {}),
    ...(s.sweep ? { sweep: s.sweep } : {}),
    ...(live ? { live } : {}),
  };
}

/** The spec file of a run: its recorded path when absolute and present, else the spec whose store holds it. */
function specFileOf(record: RunRecord, spec: vscode.Uri): string {
  return path.isAbsolute(record.spec.path) ? record.spec.path : path.resolve(path.dirname(spec.fsPath), path.basename(record.spec.path));
}

/** `steps.<name>.plots` of a spec (for live series). */
async function stepPlots(spec: vscode.Uri): Promise<Record<string, string[]>> {
  try {
    const YAML = await import('yaml');
    const data = YAML.parse(await readFile(spec.fsPath, 'utf8'), { maxAliasCount: 100, uniqueKeys: false }) as { steps?: Record<string, { plots?: unknown }> };
    const out: Record<string, string[]> = {};
    for (const [name, s] of Object.entries(data?.steps ?? {})) if (Array.isArray(s?.plots)) out[name] = s.plots.filter((p): p is string => typeof p === 'string');
    return out;
  } catch {
    return {};
  }
}

const X_COLUMNS = ['step', 'epoch', 'iteration', 'iter', 'x', 'global_step'];

/**
 * A plot CSV (header row, then numbers) -> one series per numeric column against the x column (`step`,
 * `epoch`, ... or the row number). Cells that are not numbers become gaps. Tolerates \r\n, blank lines,
 * quoted headers; long series are thinned to MAX_POINTS.
 */
export function parseSeriesCsv(text: string, where: { runId: string; step: string; file: string }): ExpSeries[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length < 2) return [];
  const sep = lines[0].includes('\t') && !lines[0].includes(',') ? '\t' : ',';
  const header = lines[0].split(sep).map((h) => h.trim().replace(/^"(.*)"$/, '$1'));
  const xi = header.findIndex((h) => X_COLUMNS.includes(h.toLowerCase()));
  const stride = Math.max(1, Math.ceil((lines.length - 1) / MAX_POINTS));
  const cols = header.map(() => [] as [number, number | null][]);
  const numericSeen = header.map(() => false);
  for (let i = 1; i < lines.length; i += stride) {
    const cells = lines[i].split(sep);
    const x = xi >= 0 ? Number(cells[xi]) : i - 1;
    if (!Number.isFinite(x)) continue;
    for (let c = 0; c < header.length; c++) {
      if (c === xi) continue;
      const raw = cells[c]?.trim();
      const y = raw === undefined || raw === '' ? NaN : Number(raw);
      if (Number.isFinite(y)) numericSeen[c] = true;
      cols[c].push([x, Number.isFinite(y) ? y : null]);
    }
  }
  const out: ExpSeries[] = [];
  header.forEach((name, c) => {
    if (c !== xi && numericSeen[c]) out.push({ ...where, name: name || `column ${c + 1}`, x: xi >= 0 ? header[xi] : 'row', points: cols[c] });
  });
  return out;
}

let specAtRegistered = false;
/** Read-only documents: a spec file as it was at a commit (`git show <commit>:<path>`). */
function ensureSpecAtProvider(extension: vscode.ExtensionContext): void {
  if (specAtRegistered) return;
  specAtRegistered = true;
  extension.subscriptions.push(
    vscode.workspace.registerTextDocumentContentProvider(SPEC_AT_SCHEME, {
      provideTextDocumentContent: async (uri) => {
        const { file, commit } = JSON.parse(uri.query) as { file: string; commit: string };
        if (!/^[0-9a-f]{7,64}$/i.test(commit)) return `# Not a commit: ${commit}`;
        const dir = path.dirname(file);
        try {
          const top = (await git(dir, ['rev-parse', '--show-toplevel'])).trim();
          const rel = path.relative(top, file).split(path.sep).join('/');
          return await git(top, ['show', `${commit}:${rel}`]);
        } catch (e) {
          return `# The spec at commit ${commit} could not be read: ${(e as Error).message.split('\n')[0]}\n# (Was the commit made before the spec was added, or is the history shallow?)\n`;
        }
      },
    }),
  );
}

function git(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('git', args, { cwd, maxBuffer: 16 * 1024 * 1024, timeout: 10_000 }, (err, stdout, stderr) => (err ? reject(new Error(stderr.trim() || err.message)) : resolve(stdout))),
  );
}
