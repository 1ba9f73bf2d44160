import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { SymbolKind, type DocumentSymbol } from 'vscode-languageserver';
import { documentSymbols, foldingRanges } from '../../../server/src/service/symbols';
import { analyzeSpec } from '../../../server/src/core/validate';
import { textAt } from '../../helpers/spec';

const CHURN = readFileSync('samples/churn-local/mlpipeline.yaml', 'utf8');
const K8S = readFileSync('samples/gpu-k8s-s3/mlpipeline.yaml', 'utf8');

const tree = (symbols: DocumentSymbol[] | undefined): unknown[] => (symbols ?? []).map((s) => (s.children ? [s.name, s.kind, tree(s.children)] : [s.name, s.kind]));

describe('document symbols (outline)', () => {
  it('sections with their named things, each with its kind', () => {
    const symbols = documentSymbols(analyzeSpec(CHURN));
    const { Property: P, Module: M, Variable: V, File: F, Object: O, Function: Fn, Field: Fd, Operator: Op, Interface: I, Event: E } = SymbolKind;
    assert.deepEqual(tree(symbols), [
      ['apiVersion', P],
      ['name', P],
      ['description', P],
      ['params', M, [['lr', V], ['epochs', V], ['l2', V]]],
      ['datasets', M, [['raw', F]]],
      ['compute', M, [['local', O]]],
      ['steps', M, [['prepare', Fn, [['features', Fd]]], ['train', Fn, [['model', Fd]]], ['evaluate', Fn]]],
      ['sweeps', M, [['lr-search', Op]]],
      ['deployments', M, [['churn-api', I]]],
      ['monitors', M, [['churn-api-latency', E]]],
      ['alerts', M, [['alert #1', E]]],
    ]);
    assert.deepEqual(tree(documentSymbols(analyzeSpec(K8S)).filter((s) => s.name === 'secrets' || s.name === 'storage')), [['storage', M], ['secrets', M, [['HF_TOKEN', SymbolKind.Key]]]]);
  });

  it('details, and ranges: the whole entry, with the name as the selection', () => {
    const symbols = documentSymbols(analyzeSpec(CHURN));
    const params = symbols.find((s) => s.name === 'params')!;
    assert.equal(params.children![0].detail, 'float = 0.01');
    const steps = symbols.find((s) => s.name === 'steps')!;
    const prepare = steps.children![0];
    assert.equal(prepare.detail, 'Clean the raw table, encode categoricals and split train/test');
    assert.equal(textAt(CHURN, prepare.selectionRange), 'prepare');
    assert.ok(textAt(CHURN, prepare.range).startsWith('prepare:\n    description:'));
    assert.ok(textAt(CHURN, prepare.range).endsWith('features: data/features/'));
    assert.equal(textAt(CHURN, prepare.children![0].range), 'features: data/features/');
    assert.equal(symbols.find((s) => s.name === 'datasets')!.children![0].detail, 'data/churn.csv');
    assert.equal(symbols.find((s) => s.name === 'name')!.detail, 'churn-local');
    // Every selection range lies inside its range, as LSP requires.
    const check = (list: DocumentSymbol[]): void => {
      for (const s of list) {
        const inside = (s.range.start.line < s.selectionRange.start.line || (s.range.start.line === s.selectionRange.start.line && s.range.start.character <= s.selectionRange.start.character)) && (s.range.end.line > s.selectionRange.end.line || (s.range.end.line === s.selectionRange.end.line && s.range.end.character >= s.selectionRange.end.character));
        assert.ok(inside, s.name);
        check(s.children ?? []);
      }
    };
    check(symbols);
  });

  it('empty for a document that is not a mapping; never throws', () => {
    assert.deepEqual(documentSymbols(analyzeSpec('- a\n- b\n')), []);
    for (const t of ['', '{{', 'a: *x', '\u0000']) assert.doesNotThrow(() => documentSymbols(analyzeSpec(t)));
  });
});

describe('folding ranges', () => {
  it('mappings, lists, block scalars and comment blocks fold; single lines do not', () => {
    const text = '# a pipeline\n# two comment lines\napiVersion: mlpipeline/v1\nname: t\nsteps:\n  a:\n    command: >-\n      python x\n      --flag\n    needs: [b]\n  b:\n    command: y\nalerts:\n- when: [monitors.m]\n  notify: [log]\n';
    const ranges = foldingRanges(analyzeSpec(text)).map((r) => [r.startLine, r.endLine, r.kind ?? '']);
    assert.deepEqual(ranges, [
      [0, 1, 'comment'],
      [4, 11, ''], // steps
      [5, 9, ''], // a
      [6, 8, ''], // command: >-
      [10, 11, ''], // b
      [12, 14, ''], // alerts
      [13, 14, ''], // - when
    ]);
  });

  it('work while the YAML is broken', () => {
    const ranges = foldingRanges(analyzeSpec('steps:\n  a:\n    needs: [\n    command: x\n'));
    assert.deepEqual(ranges.map((r) => [r.startLine, r.endLine]), [[0, 3], [1, 3]]);
  });
});
