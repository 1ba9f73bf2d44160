import { isAlias, isMap, isScalar, isSeq, type Document, type Node, type Pair, type Scalar, type YAMLMap } from 'yaml';
import type { Span } from './problems';

/** A key/value entry of a YAML mapping, with the key as text (non-scalar keys are skipped). */
export interface Entry {
  key: string;
  keyNode: Scalar;
  value: Node | null;
  pair: Pair<unknown, unknown>;
}

export function spanOf(node: Node | null | undefined): Span | undefined {
  return node?.range ? [node.range[0], node.range[1]] : undefined;
}

/** Follows an alias to its anchor's node; other nodes are returned as they are. */
export function deref(doc: Document, node: unknown): Node | null {
  if (isAlias(node)) return (node.resolve(doc) as Node | undefined) ?? null;
  return (node as Node | null) ?? null;
}

export function entries(doc: Document, node: unknown): Entry[] {
  const map = deref(doc, node);
  if (!isMap(map)) return [];
  const out: Entry[] = [];
  for (const pair of (map as YAMLMap<unknown, unknown>).items) {
    if (!isScalar(pair.key)) continue;
    out.push({ key: String(pair.key.value), keyNode: pair.key, value: deref(doc, pair.value), pair });
  }
  return out;
}

export function get(doc: Document, node: unknown, key: string): Entry | undefined {
  // The first match, as entries(...).find would give, without building the other entries.
  const map = deref(doc, node);
  if (!isMap(map)) return undefined;
  for (const pair of (map as YAMLMap<unknown, unknown>).items) {
    if (isScalar(pair.key) && String(pair.key.value) === key) return { key, keyNode: pair.key, value: deref(doc, pair.value), pair };
  }
  return undefined;
}

export function items(doc: Document, node: unknown): Node[] {
  const seq = deref(doc, node);
  if (!isSeq(seq)) return [];
  return seq.items.map((n) => deref(doc, n)).filter((n): n is Node => n !== null);
}

export function stringValue(node: Node | null | undefined): string | undefined {
  return isScalar(node) && typeof node.value === 'string' ? node.value : undefined;
}

export interface Located {
  /** The deepest node reached along the path. */
  node: Node | null;
  /** The entry holding that node, when the last step was a mapping key. */
  entry?: Entry;
  /** How many path segments were resolved; less than path.length when the path left the document. */
  depth: number;
}

/** Walks a JSON-pointer-like path (ajv's instancePath, split) through the YAML tree. */
export function locate(doc: Document, path: readonly string[]): Located {
  let node = deref(doc, doc.contents);
  let entry: Entry | undefined;
  let depth = 0;
  for (const seg of path) {
    if (isMap(node)) {
      const e = get(doc, node, seg);
      if (!e) break;
      entry = e;
      node = e.value;
    } else if (isSeq(node)) {
      const i = Number(seg);
      const child = Number.isInteger(i) ? deref(doc, node.items[i]) : null;
      if (!child) break;
      entry = undefined;
      node = child;
    } else break;
    depth++;
  }
  return { node, entry, depth };
}

/** Splits ajv's instancePath ("/steps/train/needs/0") into unescaped segments. */
export function splitPointer(pointer: string): string[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}
