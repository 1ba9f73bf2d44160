import * as path from 'node:path';
import * as vscode from 'vscode';

/** Files the language server handles; the same patterns the CLI searches for. */
export const SPEC_PATTERNS = ['**/mlpipeline.yaml', '**/mlpipeline.yml', '**/*.mlpipeline.yaml', '**/*.mlpipeline.yml'];
const SPEC_GLOB = `{${SPEC_PATTERNS.join(',')}}`;
/** Sweep trial copies live under .mlpipeline/; they are not specs of their own. */
const EXCLUDE_GLOB = '{**/node_modules/**,**/.mlpipeline/**,**/.git/**,**/.venv/**,**/venv/**}';

export function specSelector(): { scheme: string; language: string; pattern: string }[] {
  return SPEC_PATTERNS.flatMap((pattern) => [
    { scheme: 'file', language: 'yaml', pattern },
    { scheme: 'untitled', language: 'yaml', pattern },
  ]);
}

export function isSpecDocument(doc: vscode.TextDocument): boolean {
  return vscode.languages.match(specSelector(), doc) > 0;
}

export function isSpecPath(p: string): boolean {
  const name = path.basename(p);
  return /^mlpipeline\.ya?ml$/.test(name) || /\.mlpipeline\.ya?ml$/.test(name);
}

/** The plain data of a spec, as far as views and pickers need it (no validation). */
export interface SpecInfo {
  name: string;
  steps: string[];
  sweeps: Record<string, { step?: string; description?: string }>;
  compute: Record<string, { type: string; default?: boolean; maxParallel?: number; description?: string; context?: string; namespace?: string; gpus?: unknown }>;
  datasets: Record<string, { uri: string; format?: string; description?: string }>;
  secrets: string[];
  deployments: Record<string, { description?: string; compute?: string }>;
}

/** Workspace specs, found once and kept current by a file watcher. */
export class SpecIndex implements vscode.Disposable {
  private found: Promise<vscode.Uri[]> | undefined;
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChange = this.emitter.event;
  private readonly watcher: vscode.FileSystemWatcher;
  private readonly subs: vscode.Disposable[] = [];

  constructor() {
    this.watcher = vscode.workspace.createFileSystemWatcher(SPEC_GLOB);
    const changed = (uri: vscode.Uri): void => {
      if (/[\\/](\.mlpipeline|node_modules)[\\/]/.test(uri.fsPath)) return;
      this.found = undefined;
      this.emitter.fire();
    };
    this.subs.push(this.watcher.onDidCreate(changed), this.watcher.onDidDelete(changed), this.watcher.onDidChange(changed));
    this.subs.push(vscode.workspace.onDidChangeWorkspaceFolders(() => changed(vscode.Uri.file('/'))));
  }

  /** Forgets what was found (Refresh); the next all() searches again. */
  invalidate(): void {
    this.found = undefined;
    this.emitter.fire();
  }

  /** Spec files in the workspace, sorted by path. */
  all(): Promise<vscode.Uri[]> {
    this.found ??= Promise.resolve(vscode.workspace.findFiles(SPEC_GLOB, EXCLUDE_GLOB, 200)).then((uris) => uris.sort((a, b) => a.fsPath.localeCompare(b.fsPath)));
    return this.found;
  }

  /** The spec a command without arguments acts on: the active editor's, the only one, or one the user picks. */
  async pick(purpose: string): Promise<vscode.Uri | undefined> {
    const active = vscode.window.activeTextEditor?.document;
    if (active && isSpecDocument(active) && active.uri.scheme === 'file') return active.uri;
    const all = await this.all();
    if (all.length === 1) return all[0];
    if (all.length === 0) {
      void vscode.window.showWarningMessage('ML Pipeline: there is no mlpipeline.yaml in this workspace. Create one (see the samples) and try again.');
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(
      all.map((uri) => ({ label: vscode.workspace.asRelativePath(uri), uri })),
      { title: `ML Pipeline: ${purpose}`, placeHolder: 'Which pipeline spec?' },
    );
    return picked?.uri;
  }

  dispose(): void {
    this.watcher.dispose();
    this.emitter.dispose();
    for (const s of this.subs) s.dispose();
  }
}

/** The spec's current text: the open document's (unsaved edits count), else the file's. */
export async function specText(uri: vscode.Uri): Promise<string> {
  const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (open) return open.getText();
  return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
}

/** Reads names and settings from a spec with the `yaml` package (loaded on first use). Never throws. */
export async function readSpecInfo(uri: vscode.Uri): Promise<SpecInfo> {
  const empty: SpecInfo = { name: path.basename(path.dirname(uri.fsPath)), steps: [], sweeps: {}, compute: {}, datasets: {}, secrets: [], deployments: {} };
  let data: unknown;
  try {
    const YAML = await import('yaml');
    data = YAML.parse(await specText(uri), { maxAliasCount: 100, uniqueKeys: false });
  } catch {
    return empty;
  }
  if (!data || typeof data !== 'object') return empty;
  const d = data as Record<string, unknown>;
  const map = (v: unknown): Record<string, Record<string, unknown>> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, Record<string, unknown>>) : {});
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const obj = <T>(v: unknown, f: (o: Record<string, unknown>) => T): Record<string, T> =>
    Object.fromEntries(Object.entries(map(v)).map(([k, o]) => [k, f(o && typeof o === 'object' ? o : {})]));
  return {
    name: str(d.name) ?? empty.name,
    steps: Object.keys(map(d.steps)),
    sweeps: obj(d.sweeps, (o) => ({ step: str(o.step), description: str(o.description) })),
    compute: obj(d.compute, (o) => ({
      type: str(o.type) ?? 'local',
      default: o.default === true,
      maxParallel: typeof o.maxParallel === 'number' ? o.maxParallel : undefined,
      description: str(o.description),
      context: str(o.context),
      namespace: str(o.namespace),
      gpus: o.gpus,
    })),
    datasets: obj(d.datasets, (o) => ({ uri: str(o.uri) ?? '', format: str(o.format), description: str(o.description) })),
    secrets: Array.isArray(d.secrets) ? d.secrets.filter((s): s is string => typeof s === 'string') : [],
    deployments: obj(d.deployments, (o) => ({ description: str(o.description), compute: str(o.compute) })),
  };
}

/** Where a spec's runs are recorded: `mlpipeline.runs.storeLocation`, relative to the spec's folder. */
export function storeRootFor(spec: vscode.Uri): string {
  const setting = vscode.workspace.getConfiguration('mlpipeline', spec).get<string>('runs.storeLocation')?.trim() || '.mlpipeline/runs';
  const expanded = setting.replace(/^~(?=$|[\\/])/, process.env.HOME ?? '~');
  return path.resolve(path.dirname(spec.fsPath), expanded);
}
