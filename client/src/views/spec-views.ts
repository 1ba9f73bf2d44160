import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { readSpecInfo, type SpecIndex, type SpecInfo } from '../specs';

/** Shared shape of the views that show one section of each spec (grouped by spec when there are several). */
abstract class SpecSectionProvider<N> implements vscode.TreeDataProvider<N | SpecGroup | Note>, vscode.Disposable {
  protected readonly emitter = new vscode.EventEmitter<undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly subs: vscode.Disposable[] = [];

  constructor(protected readonly specs: SpecIndex) {
    this.subs.push(specs.onDidChange(() => this.refresh()));
    this.subs.push(
      vscode.workspace.onDidSaveTextDocument((d) => {
        if (/mlpipeline\.(ya?ml|lock)$/.test(d.fileName)) this.refresh();
      }),
    );
  }

  refresh(): void {
    this.emitter.fire(undefined);
  }

  protected abstract section(spec: vscode.Uri, info: SpecInfo): Promise<(N | Note)[]>;
  protected abstract item(node: N): vscode.TreeItem | Promise<vscode.TreeItem>;
  protected childrenOf(_node: N): Promise<(N | Note)[]> {
    return Promise.resolve([]);
  }
  protected abstract isOwn(node: unknown): node is N;

  async getChildren(node?: N | SpecGroup | Note): Promise<(N | SpecGroup | Note)[]> {
    if (!node) {
      const specs = await this.specs.all();
      if (specs.length === 0) return [{ kind: 'note', text: 'No mlpipeline.yaml in this workspace.' }];
      if (specs.length > 1) return specs.map((spec) => ({ kind: 'group', spec }) as SpecGroup);
      return this.section(specs[0], await readSpecInfo(specs[0]));
    }
    if (isGroup(node)) return this.section(node.spec, await readSpecInfo(node.spec));
    if (isNote(node)) return [];
    return this.childrenOf(node);
  }

  getTreeItem(node: N | SpecGroup | Note): vscode.TreeItem | Promise<vscode.TreeItem> {
    if (isGroup(node)) {
      const item = new vscode.TreeItem(vscode.workspace.asRelativePath(node.spec), vscode.TreeItemCollapsibleState.Expanded);
      item.iconPath = new vscode.ThemeIcon('file');
      item.resourceUri = node.spec;
      item.command = { command: 'vscode.open', title: 'Open Spec', arguments: [node.spec] };
      return item;
    }
    if (isNote(node)) return new vscode.TreeItem(node.text);
    return this.item(node as N);
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.emitter.dispose();
  }
}

export interface SpecGroup {
  kind: 'group';
  spec: vscode.Uri;
}
export interface Note {
  kind: 'note';
  text: string;
}
const isGroup = (n: unknown): n is SpecGroup => (n as SpecGroup)?.kind === 'group';
const isNote = (n: unknown): n is Note => (n as Note)?.kind === 'note';

// ---- compute targets -------------------------------------------------------------------------------------

export type ComputeNode =
  | { kind: 'target'; spec: vscode.Uri; name: string; type: string; isDefault: boolean; active: boolean; detail: SpecInfo['compute'][string] }
  | { kind: 'fact'; label: string; description?: string; icon: string };

/** Compute Targets: the spec's `compute:`; the local target lists this machine's CPUs and GPUs (nvidia-smi, on expand). */
export class ComputeProvider extends SpecSectionProvider<ComputeNode> {
  private gpus: Promise<{ index: number; name: string; memoryMiB: number }[]> | undefined;

  constructor(
    specs: SpecIndex,
    private readonly activeTarget: () => string | undefined,
  ) {
    super(specs);
  }

  protected isOwn(node: unknown): node is ComputeNode {
    const k = (node as ComputeNode)?.kind;
    return k === 'target' || k === 'fact';
  }

  protected async section(spec: vscode.Uri, info: SpecInfo): Promise<(ComputeNode | Note)[]> {
    const entries = Object.entries(info.compute);
    if (entries.length === 0) entries.push(['local', { type: 'local', default: true }]);
    const chosen = this.activeTarget();
    const defaultName = entries.find(([, t]) => t.default)?.[0] ?? (entries.some(([n]) => n === 'local') ? 'local' : entries[0][0]);
    const active = chosen && entries.some(([n]) => n === chosen) ? chosen : defaultName;
    return entries.map(([name, t]) => ({ kind: 'target', spec, name, type: t.type, isDefault: name === defaultName, active: name === active, detail: t }));
  }

  protected item(node: ComputeNode): vscode.TreeItem {
    if (node.kind === 'fact') {
      const item = new vscode.TreeItem(node.label);
      item.description = node.description;
      item.iconPath = new vscode.ThemeIcon(node.icon);
      return item;
    }
    const item = new vscode.TreeItem(node.name, vscode.TreeItemCollapsibleState.Collapsed);
    item.id = `target:${node.spec.toString()}#${node.name}`;
    item.description = `${node.type}${node.isDefault ? ' · default' : ''}${node.active ? ' · active' : ''}`;
    item.iconPath = new vscode.ThemeIcon(node.type === 'kubernetes' ? 'cloud' : 'vm', node.active ? new vscode.ThemeColor('charts.green') : undefined);
    item.tooltip = node.detail.description ?? `${node.name}: ${node.type} compute target`;
    item.contextValue = `target.${node.type}`;
    return item;
  }

  protected async childrenOf(node: ComputeNode): Promise<ComputeNode[]> {
    if (node.kind !== 'target') return [];
    const facts: ComputeNode[] = [];
    if (node.detail.maxParallel !== undefined) facts.push({ kind: 'fact', label: 'max parallel steps', description: String(node.detail.maxParallel), icon: 'layers' });
    if (node.type === 'local') {
      const cpus = os.cpus();
      facts.push({ kind: 'fact', label: 'CPU', description: `${os.availableParallelism()} cores${cpus[0] ? ` · ${cpus[0].model.trim()}` : ''}`, icon: 'chip' });
      facts.push({ kind: 'fact', label: 'memory', description: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`, icon: 'database' });
      this.gpus ??= import('../runtime/gpus').then((m) => m.detectGpus());
      const gpus = await this.gpus;
      if (gpus.length === 0) facts.push({ kind: 'fact', label: 'GPUs', description: 'none (nvidia-smi found no GPU)', icon: 'circuit-board' });
      for (const g of gpus) facts.push({ kind: 'fact', label: `GPU ${g.index}`, description: `${g.name} · ${(g.memoryMiB / 1024).toFixed(0)} GiB`, icon: 'circuit-board' });
    } else {
      if (node.detail.context) facts.push({ kind: 'fact', label: 'context', description: node.detail.context, icon: 'plug' });
      if (node.detail.namespace) facts.push({ kind: 'fact', label: 'namespace', description: node.detail.namespace, icon: 'symbol-namespace' });
      facts.push(await reachabilityFact(node.detail.context));
    }
    return facts;
  }
}

// ---- datasets --------------------------------------------------------------------------------------------

export type DatasetNode = { kind: 'dataset'; spec: vscode.Uri; name: string; uri: string; format?: string; description?: string; hash?: string; files?: number; bytes?: number };

/** Datasets: name, uri and the hash mlpipeline.lock pins (written by the last run). */
export class DatasetsProvider extends SpecSectionProvider<DatasetNode> {
  private readonly lockWatcher = vscode.workspace.createFileSystemWatcher('**/*.lock');

  constructor(specs: SpecIndex) {
    super(specs);
    const r = (): void => this.refresh();
    this.lockWatcher.onDidChange(r);
    this.lockWatcher.onDidCreate(r);
    this.lockWatcher.onDidDelete(r);
  }

  protected isOwn(node: unknown): node is DatasetNode {
    return (node as DatasetNode)?.kind === 'dataset';
  }

  protected async section(spec: vscode.Uri, info: SpecInfo): Promise<(DatasetNode | Note)[]> {
    const entries = Object.entries(info.datasets);
    if (entries.length === 0) return [{ kind: 'note', text: 'No datasets in this spec.' }];
    let locked: Record<string, { hash: string; files: number; bytes: number }> = {};
    try {
      const { lockPathFor, readLock } = await import('../runtime/lock-file');
      locked = readLock(lockPathFor(spec.fsPath))?.datasets ?? {};
    } catch {
      locked = {};
    }
    return entries.map(([name, d]) => ({ kind: 'dataset', spec, name, uri: d.uri, format: d.format, description: d.description, ...(locked[name] ? { hash: locked[name].hash, files: locked[name].files, bytes: locked[name].bytes } : {}) }));
  }

  protected item(node: DatasetNode): vscode.TreeItem {
    const item = new vscode.TreeItem(node.name);
    item.id = `dataset:${node.spec.toString()}#${node.name}`;
    item.description = `${node.uri}${node.hash ? ` · ${node.hash.slice(0, 12)}` : ' · not pinned'}`;
    item.iconPath = new vscode.ThemeIcon(node.hash ? 'database' : 'circle-large-outline');
    const md = new vscode.MarkdownString();
    md.appendMarkdown(`**${node.name}**${node.format ? ` (${node.format})` : ''}\n\n`);
    if (node.description) md.appendText(`${node.description}\n\n`);
    md.appendMarkdown(`uri: \`${node.uri}\`\n\n`);
    md.appendMarkdown(node.hash ? `pinned in mlpipeline.lock: \`sha256 ${node.hash}\` (${node.files} file${node.files === 1 ? '' : 's'}, ${node.bytes} bytes)` : 'not pinned yet: the next run that reads it writes its hash to mlpipeline.lock');
    item.tooltip = md;
    item.contextValue = 'dataset';
    if (!/^[a-z][a-z0-9+.-]*:\/\//.test(node.uri)) {
      const file = vscode.Uri.file(path.resolve(path.dirname(node.spec.fsPath), node.uri));
      item.resourceUri = undefined;
      item.command = { command: 'revealInExplorer', title: 'Reveal', arguments: [file] };
    }
    return item;
  }

  dispose(): void {
    this.lockWatcher.dispose();
    super.dispose();
  }
}

/**
 * Whether the cluster answers, checked when the target is expanded (one GET /version, 5 s at most).
 * Contacting a cluster uses credentials, so it is skipped in Restricted Mode.
 */
async function reachabilityFact(context: string | undefined): Promise<ComputeNode> {
  if (!vscode.workspace.isTrusted) return { kind: 'fact', label: 'reachability', description: 'not checked in Restricted Mode (it would use your cluster credentials)', icon: 'shield' };
  const kubeconfig = vscode.workspace.getConfiguration('mlpipeline').get<string>('kubernetes.kubeconfig')?.trim() || undefined;
  const { checkReachability } = await import('../runtime/kubernetes/reachability');
  const r = await checkReachability({ kubeconfig: kubeconfig?.replace(/^~(?=\/)/, process.env.HOME ?? '~'), context });
  return r.ok
    ? { kind: 'fact', label: 'reachability', description: `reachable · Kubernetes ${r.version} · ${r.server}`, icon: 'pass' }
    : { kind: 'fact', label: 'reachability', description: `unreachable: ${r.reason}`, icon: 'error' };
}
