import { InlayHintKind, type InlayHint, type Range } from 'vscode-languageserver';
import type { SpecAnalysis } from '../core/validate';
import { modelOf } from './cursor';
import { describe, paramDefault } from './hover';

/**
 * `= 0.01` after each `${params.x}` in a `command` or an `env` value: the value the param resolves to
 * (its default; sweeps and `--set` override it per run). Never throws.
 */
export function inlayHints(analysis: SpecAnalysis, range?: Range): InlayHint[] {
  try {
    const model = modelOf(analysis);
    const doc = analysis.parsed.doc;
    if (!model || !doc) return [];
    const lines = analysis.parsed.lines;
    const text = analysis.parsed.text;
    const from = range ? lines.offset(range.start) : 0;
    const to = range ? lines.offset(range.end) : text.length;
    const out: InlayHint[] = [];
    const memo = new Map<string, { value?: string; tooltip?: string }>();
    for (const ref of model.references) {
      if (ref.kind !== 'param' || ref.syntax !== 'interpolation') continue;
      const f = ref.context.field;
      if (f[f.length - 1] !== 'command' && !f.includes('env')) continue;
      const end = ref.fullSpan[1];
      if (end < from || end > to) continue;
      let m = memo.get(ref.name);
      if (!m) {
        const value = paramDefault(model, doc, text, ref.name);
        memo.set(ref.name, (m = { value, tooltip: value === undefined ? undefined : describe(model, doc, text, 'param', ref.name, undefined) }));
      }
      const { value, tooltip } = m;
      if (value === undefined) continue;
      out.push({
        position: lines.position(end),
        label: `= ${value.length > 40 ? value.slice(0, 39) + '…' : value}`,
        kind: InlayHintKind.Parameter,
        paddingLeft: true,
        tooltip: tooltip ? { kind: 'markdown', value: tooltip } : undefined,
      });
    }
    return out;
  } catch {
    return [];
  }
}
