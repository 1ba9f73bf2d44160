import { isMap, isScalar, type Node } from 'yaml';
import type { DocumentLink } from 'vscode-languageserver';
import type { Span } from '../core/problems';
import type { SpecAnalysis } from '../core/validate';
import { entries, get, items } from '../core/yaml-nodes';

export interface LinkOptions {
  /** The URI of the folder that holds the spec; links resolve against it. */
  baseUri: string;
  /** Whether a path relative to the spec's folder exists (files and folders). Links are made only to existing paths. */
  fileExists: (relativePath: string) => boolean;
}

/**
 * Links to workspace files: paths in step and runtime `command`s, and the declared `inputs`, `outputs`,
 * `metrics`, `plots` and local dataset `uri`s, each when the path exists relative to the spec's folder.
 * Never throws.
 */
export function documentLinks(analysis: SpecAnalysis, options: LinkOptions): DocumentLink[] {
  try {
    const doc = analysis.parsed.doc;
    if (!doc || !isMap(doc.contents)) return [];
    const out: DocumentLink[] = [];
    const text = analysis.parsed.text;
    const seen = new Set<string>();
    const exists = (p: string): boolean => {
      try {
        return options.fileExists(p);
      } catch {
        return false;
      }
    };
    const link = (path: string, span: Span): void => {
      const key = `${span[0]}:${span[1]}`;
      if (seen.has(key) || !isRelativePath(path) || !exists(path)) return;
      seen.add(key);
      out.push({ range: analysis.parsed.lines.range(span), target: resolveUri(options.baseUri, path), tooltip: `Open ${path}` });
    };
    const scalarPath = (n: unknown): void => {
      if (isScalar(n) && typeof n.value === 'string' && n.range) {
        const src = text.slice(n.range[0], n.range[1]);
        const i = src.indexOf(n.value);
        if (i >= 0 && !n.value.includes('\n')) link(n.value, [n.range[0] + i, n.range[0] + i + n.value.length]);
      }
    };
    const commandPaths = (n: Node | null | undefined): void => {
      if (!isScalar(n) || typeof n.value !== 'string' || !n.range) return;
      const start = n.range[0];
      const src = text.slice(start, n.range[1]);
      for (const t of pathTokens(src)) link(t.path, [start + t.at, start + t.at + t.path.length]);
    };
    const root = doc.contents;
    for (const step of entries(doc, get(doc, root, 'steps')?.value)) {
      commandPaths(get(doc, step.value, 'command')?.value);
      for (const i of items(doc, get(doc, step.value, 'inputs')?.value)) scalarPath(i);
      for (const o of entries(doc, get(doc, step.value, 'outputs')?.value)) scalarPath(o.value);
      scalarPath(get(doc, step.value, 'metrics')?.value);
      for (const p of items(doc, get(doc, step.value, 'plots')?.value)) scalarPath(p);
    }
    for (const d of entries(doc, get(doc, root, 'deployments')?.value)) {
      commandPaths(get(doc, get(doc, d.value, 'runtime')?.value, 'command')?.value);
      scalarPath(get(doc, d.value, 'model')?.value);
    }
    for (const d of entries(doc, get(doc, root, 'datasets')?.value)) scalarPath(get(doc, d.value, 'uri')?.value);
    return out.sort((a, b) => a.range.start.line - b.range.start.line || a.range.start.character - b.range.start.character);
  } catch {
    return [];
  }
}

/** A workspace-relative path: no scheme, no leading `/` or `~`, no `${`, no `..` segment. */
function isRelativePath(p: string): boolean {
  return p.length > 0 && p.length < 1024 && !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(p) && !/^[/\\~]/.test(p) && !p.includes('${') && !/(^|[/\\])\.\.([/\\]|$)/.test(p) && !/[\s*?<>|"']/.test(p);
}

/** Words of a command that look like relative paths (`src/train.py`, `--config=conf/a.yaml`), with their offsets. */
export function pathTokens(src: string): { path: string; at: number }[] {
  const out: { path: string; at: number }[] = [];
  const re = /[^\s'"`;|&()<>]+/g;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    let word = m[0];
    let at = m.index;
    const eq = word.indexOf('=');
    if (eq >= 0 && word.startsWith('-')) {
      at += eq + 1;
      word = word.slice(eq + 1);
    }
    if (word.startsWith('-') || word.includes('${') || word.includes('$')) continue;
    word = word.replace(/[,:]+$/, '');
    // Paths have a folder separator or a file extension; plain words (python, train) are not linked.
    if (!/\//.test(word) && !/\.[A-Za-z0-9]{1,8}$/.test(word)) continue;
    if (/^[0-9.]+$/.test(word)) continue;
    out.push({ path: word, at });
  }
  return out;
}

function resolveUri(base: string, rel: string): string {
  const folder = base.endsWith('/') ? base : base + '/';
  const encoded = rel.split('/').map((s) => encodeURIComponent(s)).join('/');
  try {
    return new URL(encoded, folder).toString();
  } catch {
    return folder + encoded;
  }
}

