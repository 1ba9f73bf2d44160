import type { SemanticTokens, SemanticTokensLegend } from 'vscode-languageserver';
import type { SymbolKind } from '../core/model';
import type { Span } from '../core/problems';
import type { SpecAnalysis } from '../core/validate';
import { modelOf } from './cursor';

/**
 * Semantic tokens for references, so themes can colour them inside YAML strings.
 *
 * Legend (token types):
 * - `namespace`: the kind part of a reference: `params`, `datasets`, `steps`, `outputs` (also the
 *   `outputs` in `${steps.S.outputs.O}`), `secrets`, and `monitors` in `monitors.NAME`;
 * - `parameter`: a param name; `variable`: a dataset or secret name (secrets add `readonly`), and `model`
 *   in `${model}` (with `defaultLibrary`); `function`: a step name (also the step of `step.metric`);
 *   `property`: an output name and the metric of `step.metric`; `event`: a monitor name.
 * Modifiers: `readonly` (secrets), `defaultLibrary` (`${model}`).
 * The `${`, `.` and `}` punctuation is left to the YAML grammar.
 */
export const TOKEN_TYPES = ['namespace', 'parameter', 'variable', 'function', 'property', 'event'] as const;
export const TOKEN_MODIFIERS = ['readonly', 'defaultLibrary'] as const;
export const SEMANTIC_LEGEND: SemanticTokensLegend = { tokenTypes: [...TOKEN_TYPES], tokenModifiers: [...TOKEN_MODIFIERS] };

type TokenType = (typeof TOKEN_TYPES)[number];
type Modifier = (typeof TOKEN_MODIFIERS)[number];

const NO_MODIFIERS: Modifier[] = [];
const READONLY: Modifier[] = ['readonly'];

const NAME_TYPE: Partial<Record<SymbolKind, TokenType>> = {
  param: 'parameter',
  dataset: 'variable',
  secret: 'variable',
  step: 'function',
  output: 'property',
  monitor: 'event',
};

interface Token {
  start: number;
  length: number;
  type: TokenType;
  modifiers: Modifier[];
}

export function semanticTokens(analysis: SpecAnalysis): SemanticTokens {
  try {
    return { data: encode(analysis, collect(analysis)) };
  } catch {
    return { data: [] };
  }
}

function collect(analysis: SpecAnalysis): Token[] {
  const model = modelOf(analysis);
  if (!model) return [];
  const text = analysis.parsed.text;
  const tokens: Token[] = [];
  const add = (span: Span, type: TokenType, modifiers: Modifier[] = NO_MODIFIERS): void => {
    if (span[1] > span[0]) tokens.push({ start: span[0], length: span[1] - span[0], type, modifiers });
  };
  const done = new Set<number>();
  for (const ref of model.references) {
    const type = NAME_TYPE[ref.kind];
    if (!type) continue;
    const mods = ref.kind === 'secret' ? READONLY : NO_MODIFIERS;
    if (ref.syntax === 'interpolation') {
      if (done.has(ref.fullSpan[0])) continue;
      done.add(ref.fullSpan[0]);
      // `${a.b.c.d}`: the segments, by offset.
      const inner = text.slice(ref.fullSpan[0] + 2, ref.fullSpan[1] - 1);
      const parts = inner.split('.');
      let o = ref.fullSpan[0] + 2;
      const segs: Span[] = parts.map((p) => {
        const s: Span = [o, o + p.length];
        o += p.length + 1;
        return s;
      });
      add(segs[0], 'namespace');
      if (parts[0] === 'steps' && parts.length === 4) {
        add(segs[1], 'function');
        add(segs[2], 'namespace');
        add(segs[3], 'property');
      } else if (segs[1]) {
        add(segs[1], parts[0] === 'outputs' ? 'property' : type, mods);
      }
    } else if (ref.kind === 'monitor') {
      add([ref.fullSpan[0], ref.span[0] - 1], 'namespace');
      add(ref.span, 'event');
    }
  }
  for (const m of model.metrics) {
    add(m.stepSpan, 'function');
    add([m.stepSpan[1] + 1, m.span[1]], 'property');
  }
  for (const c of model.contextual) {
    if (c.name === 'model') add([c.span[0] + 2, c.span[1] - 1], 'variable', ['defaultLibrary']);
  }
  return tokens;
}

const TYPE_INDEX = new Map<TokenType, number>(TOKEN_TYPES.map((t, i) => [t, i]));
const MODIFIER_BIT = new Map<Modifier, number>(TOKEN_MODIFIERS.map((m, i) => [m, 1 << i]));

function encode(analysis: SpecAnalysis, tokens: Token[]): number[] {
  const lines = analysis.parsed.lines;
  tokens.sort((a, b) => a.start - b.start);
  const data: number[] = [];
  let prevLine = 0;
  let prevChar = 0;
  let lastEnd = -1;
  for (const t of tokens) {
    if (t.start < lastEnd) continue; // Overlaps are not allowed.
    const p = lines.position(t.start);
    // Tokens never span lines: `${...}` cannot, and a line break inside would end the token.
    if (analysis.parsed.text.slice(t.start, t.start + t.length).includes('\n')) continue;
    const dl = p.line - prevLine;
    const dc = dl === 0 ? p.character - prevChar : p.character;
    let mods = 0;
    for (const m of t.modifiers) mods |= MODIFIER_BIT.get(m) ?? 0;
    data.push(dl, dc, t.length, TYPE_INDEX.get(t.type) ?? 0, mods);
    prevLine = p.line;
    prevChar = p.character;
    lastEnd = t.start + t.length;
  }
  return data;
}
