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
  const add = (span: Span, type: TokenType, modifiers: Modifier[] = []): void => {
    if (span[1] > span[0]) tokens.push({ start: span[0], length: span[1] - span[0], type, modifiers });
  };
  const done = new Set<string>();
  for (const ref of model.references) {
    const type = NAME_TYPE[ref.kind];
    if (!type) continue;
    const mods: Modifier[] = ref.kind === 'secret' ? ['readonly'] : [];
    if (ref.syntax === 'interpolation') {
      const key = `${ref.fullSpan[0]}`;
      if (done.has(key)) continue;
      done.add(key);
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
    const e = lines.position(t.start + t.length);
    if (e.line !== p.line) continue; // Tokens never span lines.
    const dl = p.line - prevLine;
    const dc = dl === 0 ? p.character - prevChar : p.character;
    const mods = t.modifiers.reduce((m, x) => m | (1 << TOKEN_MODIFIERS.indexOf(x)), 0);
    data.push(dl, dc, t.length, TOKEN_TYPES.indexOf(t.type), mods);
    prevLine = p.line;
    prevChar = p.character;
    lastEnd = t.start + t.length;
  }
  return data;
}
