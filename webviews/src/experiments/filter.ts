/**
 * Filter expressions over runs, e.g. `metrics.auc > 0.8 && params.model == "xgb"`. A small recursive-descent
 * parser compiled to closures: no eval (the CSP forbids it anyway), errors carry a position for the inline
 * message. Pure: no DOM.
 *
 *   expr   := or
 *   or     := and (('||' | 'or') and)*
 *   and    := not (('&&' | 'and') not)*
 *   not    := ('!' | 'not') not | cmp
 *   cmp    := value (('==' | '!=' | '<' | '<=' | '>' | '>=' | '~') value)?      ~ : contains, case-insensitive
 *   value  := number | "string" | 'string' | true | false | null | path | '(' expr ')'
 *   path   := name ('.' name | '[' string ']')*      params.x, metrics.train.auc, metrics["odd name"], status, id, label
 */
import type { ExpParamValue, ExpRun } from '../protocol/experiments';

export class FilterError extends Error {
  constructor(
    message: string,
    readonly start: number,
    readonly end: number,
  ) {
    super(message);
  }
}

type Scalar = ExpParamValue | null | undefined;
export type Predicate = (run: ExpRun) => boolean;
type Value = (run: ExpRun) => Scalar;

type Tok = { kind: 'num'; value: number; start: number; end: number } | { kind: 'str'; value: string; start: number; end: number } | { kind: 'name'; value: string; start: number; end: number } | { kind: 'op'; value: string; start: number; end: number } | { kind: 'eof'; start: number; end: number };

const OPS = ['&&', '||', '==', '!=', '<=', '>=', '<', '>', '!', '(', ')', '.', '[', ']', '~', '='];
/** Top-level fields of a run a filter may name. */
export const RUN_FIELDS = ['id', 'label', 'status', 'specName', 'startedAt', 'finishedAt', 'gitCommit', 'sweep', 'trial'] as const;
const MAX_LENGTH = 2000;

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (/[0-9]/.test(c) || (c === '-' && /[0-9.]/.test(src[i + 1] ?? '') && !/(num|str|name)/.test(toks[toks.length - 1]?.kind ?? '') && (toks[toks.length - 1] as { value?: unknown } | undefined)?.value !== ')') || (c === '.' && /[0-9]/.test(src[i + 1] ?? '') && toks[toks.length - 1]?.kind !== 'name')) {
      const m = /^-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/.exec(src.slice(i));
      if (!m) throw new FilterError(`bad number`, start, start + 1);
      i += m[0].length;
      toks.push({ kind: 'num', value: Number(m[0]), start, end: i });
      continue;
    }
    if (c === '"' || c === "'") {
      let out = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new FilterError(`unterminated string: add the closing ${c}`, start, src.length);
        const d = src[i];
        if (d === '\\' && i + 1 < src.length) {
          out += src[i + 1];
          i += 2;
          continue;
        }
        i++;
        if (d === c) break;
        out += d;
      }
      toks.push({ kind: 'str', value: out, start, end: i });
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_\-/]*/.exec(src.slice(i))!;
      i += m[0].length;
      toks.push({ kind: 'name', value: m[0], start, end: i });
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new FilterError(`unexpected character "${c}"`, start, start + 1);
    if (op === '=') throw new FilterError('use == to compare', start, start + 1);
    i += op.length;
    toks.push({ kind: 'op', value: op, start, end: i });
  }
  toks.push({ kind: 'eof', start: src.length, end: src.length });
  return toks;
}

function num(v: Scalar): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

function equals(a: Scalar, b: Scalar): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null);
  if (typeof a === typeof b) return a === b;
  const x = num(a);
  const y = num(b);
  if (x !== undefined && y !== undefined) return x === y;
  return String(a) === String(b);
}

function compare(a: Scalar, b: Scalar): number | undefined {
  if (a === null || a === undefined || b === null || b === undefined) return undefined;
  const x = num(a);
  const y = num(b);
  if (x !== undefined && y !== undefined) return x - y;
  const s = String(a);
  const t = String(b);
  return s < t ? -1 : s > t ? 1 : 0;
}

const own = <T>(o: Record<string, T>, k: string): T | undefined => (Object.hasOwn(o, k) ? o[k] : undefined);

/** The value of a column key (`params.lr`, `metrics.train.auc`, `status`) for a run. */
export function columnValue(run: ExpRun, key: string): Scalar {
  // Own properties only: `params.constructor` is not a param.
  if (key.startsWith('params.')) return own(run.params, key.slice(7));
  if (key.startsWith('metrics.')) return own(run.metrics, key.slice(8));
  switch (key) {
    case 'id':
      return run.id;
    case 'label':
      return run.label ?? run.id;
    case 'status':
      return run.status;
    case 'specName':
      return run.specName;
    case 'startedAt':
      return run.startedAt;
    case 'finishedAt':
      return run.finishedAt;
    case 'gitCommit':
      return run.gitCommit;
    case 'sweep':
      return run.sweep?.name;
    case 'trial':
      return run.sweep?.trial;
  }
  return undefined;
}

export type ColumnReader = (run: ExpRun) => Scalar;
const readers = new Map<string, ColumnReader>();
/**
 * columnValue specialized for one key, for loops over every run (sorting, "only columns that differ"):
 * the key is parsed once, not per run (so no string is sliced, hashed and looked up per run).
 */
export function columnReader(key: string): ColumnReader {
  let read = readers.get(key);
  if (!read) {
    if (key.startsWith('params.')) {
      const k = key.slice(7);
      read = (run) => (Object.hasOwn(run.params, k) ? run.params[k] : undefined);
    } else if (key.startsWith('metrics.')) {
      const k = key.slice(8);
      read = (run) => (Object.hasOwn(run.metrics, k) ? run.metrics[k] : undefined);
    } else read = (run) => columnValue(run, key);
    readers.set(key, read);
  }
  return read;
}

/** Parses a filter; throws FilterError with the position of the problem. An empty filter keeps every run. */
export function parseFilter(src: string): Predicate {
  if (src.length > MAX_LENGTH) throw new FilterError(`the filter is longer than ${MAX_LENGTH} characters`, MAX_LENGTH, src.length);
  if (src.trim() === '') return () => true;
  const toks = tokenize(src);
  let p = 0;
  const peek = (): Tok => toks[p];
  const isOp = (v: string): boolean => peek().kind === 'op' && (peek() as { value: string }).value === v;
  const isWord = (v: string): boolean => peek().kind === 'name' && (peek() as { value: string }).value === v;
  const expect = (v: string, what: string): void => {
    if (!isOp(v)) throw new FilterError(`expected ${what}`, peek().start, Math.max(peek().end, peek().start + 1));
    p++;
  };
  let depth = 0;

  const parseOr = (): Predicate => {
    let left = parseAnd();
    while (isOp('||') || isWord('or')) {
      p++;
      const l = left;
      const r = parseAnd();
      left = (run) => l(run) || r(run);
    }
    return left;
  };
  const parseAnd = (): Predicate => {
    let left = parseNot();
    while (isOp('&&') || isWord('and')) {
      p++;
      const l = left;
      const r = parseNot();
      left = (run) => l(run) && r(run);
    }
    return left;
  };
  const parseNot = (): Predicate => {
    if (isOp('!') || isWord('not')) {
      p++;
      if (++depth > 100) throw new FilterError('too deeply nested', peek().start, peek().end);
      const inner = parseNot();
      depth--;
      return (run) => !inner(run);
    }
    return parseCmp();
  };
  const parseCmp = (): Predicate => {
    const left = parseValue();
    const t = peek();
    if (t.kind === 'op' && ['==', '!=', '<', '<=', '>', '>=', '~'].includes(t.value)) {
      p++;
      const right = parseValue();
      switch (t.value) {
        case '==':
          return (run) => equals(left(run), right(run));
        case '!=':
          return (run) => !equals(left(run), right(run));
        case '~':
          return (run) => {
            const a = left(run);
            const b = right(run);
            return a !== null && a !== undefined && b !== null && b !== undefined && String(a).toLowerCase().includes(String(b).toLowerCase());
          };
        default: {
          const op = t.value;
          return (run) => {
            const c = compare(left(run), right(run));
            if (c === undefined) return false;
            return op === '<' ? c < 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : c >= 0;
          };
        }
      }
    }
    // A bare value is a truth test (`params.early_stop`, `(a && b)`).
    const v = left;
    return (run) => {
      const x = v(run);
      return x !== undefined && x !== null && x !== false && x !== 0 && x !== '';
    };
  };
  const parseValue = (): Value => {
    const t = peek();
    if (t.kind === 'num') {
      p++;
      return () => t.value;
    }
    if (t.kind === 'str') {
      p++;
      return () => t.value;
    }
    if (t.kind === 'op' && t.value === '(') {
      p++;
      if (++depth > 100) throw new FilterError('too deeply nested', t.start, t.end);
      const inner = parseOr();
      depth--;
      expect(')', 'a closing )');
      return (run) => inner(run);
    }
    if (t.kind === 'name') {
      if (t.value === 'true' || t.value === 'false') {
        p++;
        const b = t.value === 'true';
        return () => b;
      }
      if (t.value === 'null') {
        p++;
        return () => null;
      }
      return parsePath();
    }
    if (t.kind === 'eof') throw new FilterError('the expression ends too early: expected a value', t.start, t.start + 1);
    throw new FilterError(`expected a value, found "${(t as { value: string }).value}"`, t.start, t.end);
  };
  const parsePath = (): Value => {
    const first = peek() as Extract<Tok, { kind: 'name' }>;
    p++;
    const parts: string[] = [];
    let end = first.end;
    for (;;) {
      if (isOp('.')) {
        p++;
        const t = peek();
        if (t.kind !== 'name' && t.kind !== 'num') throw new FilterError('expected a name after "."', t.start, Math.max(t.end, t.start + 1));
        // Names like `train.f1` or `layer.0`: numbers are part of the path here.
        parts.push(t.kind === 'num' ? String(src.slice(t.start, t.end)).replace(/^\./, '') : t.value);
        end = t.end;
        p++;
      } else if (isOp('[')) {
        p++;
        const t = peek();
        if (t.kind !== 'str') throw new FilterError('expected a quoted name in [ ]', t.start, Math.max(t.end, t.start + 1));
        parts.push(t.value);
        p++;
        end = peek().end;
        expect(']', 'a closing ]');
      } else break;
    }
    const head = first.value;
    if (head === 'params' || head === 'metrics') {
      if (!parts.length) throw new FilterError(`name a ${head === 'params' ? 'param' : 'metric'}: ${head}.NAME`, first.start, end);
      const key = parts.join('.');
      return head === 'params' ? (run) => own(run.params, key) : (run) => own(run.metrics, key);
    }
    if (parts.length === 0 && (RUN_FIELDS as readonly string[]).includes(head)) return (run) => columnValue(run, head);
    throw new FilterError(`unknown name "${[head, ...parts].join('.')}": use params.NAME, metrics.NAME or one of ${RUN_FIELDS.join(', ')}`, first.start, end);
  };

  const pred = parseOr();
  if (peek().kind !== 'eof') {
    const t = peek();
    throw new FilterError(`unexpected "${src.slice(t.start, t.end)}": join conditions with && or ||`, t.start, t.end);
  }
  return pred;
}

/** parseFilter without throwing. */
export function tryParseFilter(src: string): { ok: true; predicate: Predicate } | { ok: false; error: FilterError } {
  try {
    return { ok: true, predicate: parseFilter(src) };
  } catch (e) {
    if (e instanceof FilterError) return { ok: false, error: e };
    return { ok: false, error: new FilterError(String((e as Error).message ?? e), 0, src.length) };
  }
}
