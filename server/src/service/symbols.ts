import { isMap, isScalar, type Document, type Node } from 'yaml';
import { FoldingRangeKind, SymbolKind as LspSymbolKind, type DocumentSymbol, type FoldingRange } from 'vscode-languageserver';
import type { Span } from '../core/problems';
import type { SpecAnalysis } from '../core/validate';
import { entries, get, items, type Entry } from '../core/yaml-nodes';

/**
 * The outline (sections, and the named things in each with their kinds) and folding ranges.
 *
 * Symbol kinds: sections `Module`; params `Variable`; datasets `File`; compute targets `Object`;
 * secrets `Key`; steps `Function` (their outputs `Field`); sweeps `Operator`; deployments `Interface`;
 * monitors and alerts `Event`; `apiVersion`, `name`, `description` and other keys `Property`.
 */

const SECTION_KIND: Record<string, LspSymbolKind> = {
  params: LspSymbolKind.Variable,
  datasets: LspSymbolKind.File,
  compute: LspSymbolKind.Object,
  steps: LspSymbolKind.Function,
  sweeps: LspSymbolKind.Operator,
  deployments: LspSymbolKind.Interface,
  monitors: LspSymbolKind.Event,
};

export function documentSymbols(analysis: SpecAnalysis): DocumentSymbol[] {
  try {
    const doc = analysis.parsed.doc;
    if (!doc || !isMap(doc.contents)) return [];
    return entries(doc, doc.contents)
      .map((e) => sectionSymbol(analysis, doc, e))
      .filter((s): s is DocumentSymbol => !!s);
  } catch {
    return [];
  }
}

function scalarText(node: unknown, text: string): string | undefined {
  if (!isScalar(node)) return undefined;
  if (typeof node.value === 'string') return node.value;
  if (node.range) return text.slice(node.range[0], node.range[1]);
  return node.value === null ? undefined : String(node.value);
}

function oneLine(s: string | undefined, max = 80): string | undefined {
  if (!s) return undefined;
  const line = s.split('\n')[0].trim();
  return line.length > max ? line.slice(0, max - 1) + '…' : line;
}

/** The span of an entry: from its key to the end of its value (trailing blank lines left out). */
function entrySpan(e: Entry, text: string): Span | undefined {
  const k = e.keyNode.range;
  if (!k) return undefined;
  let end = Math.max(k[1], e.value?.range?.[1] ?? k[1]);
  while (end > k[1] && /\s/.test(text[end - 1])) end--;
  return [k[0], end];
}

function nodeSpan(n: Node, text: string): Span | undefined {
  if (!n.range) return undefined;
  let end = n.range[1];
  while (end > n.range[0] && /\s/.test(text[end - 1])) end--;
  return [n.range[0], end];
}

function symbol(analysis: SpecAnalysis, name: string, kind: LspSymbolKind, span: Span, selection: Span, detail?: string, children?: DocumentSymbol[]): DocumentSymbol {
  const lines = analysis.parsed.lines;
  const s: DocumentSymbol = { name: name || ' ', kind, range: lines.range(span), selectionRange: lines.range(selection) };
  if (detail) s.detail = detail;
  if (children && children.length) s.children = children;
  return s;
}

function sectionSymbol(analysis: SpecAnalysis, doc: Document, section: Entry): DocumentSymbol | undefined {
  const text = analysis.parsed.text;
  const span = entrySpan(section, text);
  const key = section.keyNode.range;
  if (!span || !key) return undefined;
  const selection: Span = [key[0], key[1]];
  const childKind = SECTION_KIND[section.key];
  if (childKind !== undefined) {
    const children = entries(doc, section.value)
      .map((e) => {
        const s = entrySpan(e, text);
        const k = e.keyNode.range;
        if (!s || !k) return undefined;
        return symbol(analysis, e.key, childKind, s, [k[0], k[1]], detailOf(doc, section.key, e.value, text), section.key === 'steps' ? outputs(analysis, doc, e.value) : undefined);
      })
      .filter((s): s is DocumentSymbol => !!s);
    return symbol(analysis, section.key, LspSymbolKind.Module, span, selection, undefined, children);
  }
  if (section.key === 'secrets') {
    const children = items(doc, section.value)
      .map((n) => {
        const s = nodeSpan(n, text);
        const name = scalarText(n, text);
        return s && name ? symbol(analysis, name, LspSymbolKind.Key, s, s) : undefined;
      })
      .filter((s): s is DocumentSymbol => !!s);
    return symbol(analysis, 'secrets', LspSymbolKind.Module, span, selection, undefined, children);
  }
  if (section.key === 'alerts') {
    const children = items(doc, section.value)
      .map((n, i) => {
        const s = nodeSpan(n, text);
        if (!s) return undefined;
        const when = items(doc, get(doc, n, 'when')?.value).map((w) => scalarText(w, text)).filter(Boolean).join(', ');
        return symbol(analysis, `alert #${i + 1}`, LspSymbolKind.Event, s, s, oneLine(when) ?? oneLine(scalarText(get(doc, n, 'description')?.value, text)));
      })
      .filter((s): s is DocumentSymbol => !!s);
    return symbol(analysis, 'alerts', LspSymbolKind.Module, span, selection, undefined, children);
  }
  if (section.key === 'storage') return symbol(analysis, 'storage', LspSymbolKind.Module, span, selection);
  return symbol(analysis, section.key, LspSymbolKind.Property, span, selection, oneLine(scalarText(section.value, text)));
}

function detailOf(doc: Document, section: string, node: Node | null, text: string): string | undefined {
  const f = (k: string): string | undefined => scalarText(get(doc, node, k)?.value, text);
  switch (section) {
    case 'params': {
      const type = f('type');
      const def = f('default');
      return [type, def !== undefined ? `= ${def}` : undefined].filter(Boolean).join(' ') || undefined;
    }
    case 'datasets':
      return f('uri');
    case 'compute':
      return f('type');
    case 'steps':
      return oneLine(f('description') ?? f('command'));
    case 'deployments':
      return oneLine(f('description') ?? f('model'));
    case 'monitors':
      return f('deployment') ? `on ${f('deployment')}` : undefined;
    case 'sweeps':
      return f('step') ? `over ${f('step')}` : undefined;
  }
  return undefined;
}

function outputs(analysis: SpecAnalysis, doc: Document, step: Node | null): DocumentSymbol[] {
  const text = analysis.parsed.text;
  return entries(doc, get(doc, step, 'outputs')?.value)
    .map((o) => {
      const s = entrySpan(o, text);
      const k = o.keyNode.range;
      return s && k ? symbol(analysis, o.key, LspSymbolKind.Field, s, [k[0], k[1]], scalarText(o.value, text)) : undefined;
    })
    .filter((s): s is DocumentSymbol => !!s);
}

/**
 * Folding by indentation: a line folds the lines below it that are indented deeper (mappings, lists,
 * block scalars, multi-line flow collections), and runs of two or more comment lines fold as comments.
 * Text-based, so folding works while the YAML is broken.
 */
export function foldingRanges(analysis: SpecAnalysis): FoldingRange[] {
  try {
    return foldByIndent(analysis.parsed.text);
  } catch {
    return [];
  }
}

export function foldByIndent(text: string): FoldingRange[] {
  const lines = text.split(/\r?\n|\r/);
  const out: FoldingRange[] = [];
  const indentOf = (l: string): number => l.length - l.trimStart().length;
  const isBlank = (l: string): boolean => l.trim() === '';
  const isComment = (l: string): boolean => l.trimStart().startsWith('#');
  // Open ranges: a stack of (line, indent) of lines with content.
  const stack: { line: number; indent: number }[] = [];
  let lastContent = -1;
  const close = (upTo: number): void => {
    while (stack.length && stack[stack.length - 1].indent >= upTo) {
      const open = stack.pop()!;
      if (lastContent > open.line) out.push({ startLine: open.line, endLine: lastContent });
    }
  };
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (isBlank(l) || isComment(l)) continue;
    // A `- ` item sits half a level below a key at the same column (`alerts:` then `- when: ...`).
    const trimmed = l.trimStart();
    const indent = indentOf(l) + (trimmed === '-' || trimmed.startsWith('- ') ? 0.5 : 0);
    close(indent);
    stack.push({ line: i, indent });
    lastContent = i;
  }
  close(-1);
  // Comment blocks.
  for (let i = 0; i < lines.length; ) {
    if (!isComment(lines[i])) {
      i++;
      continue;
    }
    let j = i;
    while (j + 1 < lines.length && isComment(lines[j + 1])) j++;
    if (j > i) out.push({ startLine: i, endLine: j, kind: FoldingRangeKind.Comment });
    i = j + 1;
  }
  return out.sort((a, b) => a.startLine - b.startLine || b.endLine - a.endLine);
}
