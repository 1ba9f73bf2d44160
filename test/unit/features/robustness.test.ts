import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync, readdirSync } from 'node:fs';
import { analyzeSpec } from '../../../server/src/core/validate';
import { LineIndex } from '../../../server/src/core/problems';
import { completion, resolveCompletion } from '../../../server/src/service/completion';
import { hover } from '../../../server/src/service/hover';
import { definition, prepareRename, references, rename } from '../../../server/src/service/navigation';
import { codeActions } from '../../../server/src/service/code-actions';
import { toDiagnostics } from '../../../server/src/service/diagnostics';
import { documentSymbols, foldingRanges } from '../../../server/src/service/symbols';
import { documentLinks } from '../../../server/src/service/links';
import { inlayHints } from '../../../server/src/service/inlay-hints';
import { semanticTokens } from '../../../server/src/service/semantic-tokens';

const SPECS = [
  ...['churn-local', 'gpu-k8s-s3', 'sweep-deploy'].map((s) => `samples/${s}/mlpipeline.yaml`),
  ...readdirSync('samples/invalid').filter((f) => f.endsWith('.yaml')).map((f) => `samples/invalid/${f}`),
];

/** Every feature at one position; returns the completion items for range checks. */
function everything(text: string, line: number, character: number) {
  const a = analyzeSpec(text);
  const p = { line, character };
  const list = completion(a, p);
  for (const item of list.items.slice(0, 3)) resolveCompletion(a, item);
  hover(a, p);
  definition(a, 'u', p);
  references(a, 'u', p);
  prepareRename(a, p);
  rename(a, 'u', p, 'renamed');
  return list;
}

describe('every feature at every position of every sample, and on edits of them', () => {
  it('never throws, and completion edits replace text on the cursor line around the cursor', () => {
    for (const file of SPECS) {
      const text = readFileSync(file, 'utf8');
      const a = analyzeSpec(text);
      const lines = new LineIndex(text);
      documentSymbols(a);
      foldingRanges(a);
      documentLinks(a, { baseUri: 'file:///ws/', fileExists: () => true });
      inlayHints(a);
      semanticTokens(a);
      for (const d of toDiagnostics(a.problems, 'u')) codeActions(a, 'u', d.range, [d]);
      // Every third offset (every offset is slow for no gain), each line's end, and past the end.
      for (let o = 0; o <= text.length + 1; o += 3) {
        const p = lines.position(o);
        const list = completion(a, p);
        for (const item of list.items) {
          const r = (item.textEdit as { range: { start: { line: number; character: number }; end: { line: number; character: number } } }).range;
          assert.ok(r.start.line === p.line && r.end.line === p.line && r.start.character <= p.character && p.character <= r.end.character, `${file} ${JSON.stringify(p)} ${item.label} ${JSON.stringify(r)}`);
        }
        hover(a, p);
        definition(a, 'u', p);
        references(a, 'u', p);
        prepareRename(a, p);
      }
      everything(text, lines.lineCount + 5, 0);
    }
  });

  it('truncations and single-character deletions of a sample (documents mid-edit) never throw', () => {
    const text = readFileSync('samples/sweep-deploy/mlpipeline.yaml', 'utf8');
    for (let cut = 0; cut < text.length; cut += 41) {
      const part = text.slice(0, cut);
      const lines = new LineIndex(part);
      const end = lines.position(part.length);
      assert.doesNotThrow(() => everything(part, end.line, end.character), `cut at ${cut}`);
      const deleted = text.slice(0, cut) + text.slice(cut + 1);
      const p = new LineIndex(deleted).position(cut);
      assert.doesNotThrow(() => everything(deleted, p.line, p.character), `delete at ${cut}`);
    }
  });
});
