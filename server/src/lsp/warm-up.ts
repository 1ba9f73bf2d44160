import { IncrementalAnalyzer } from '../core/incremental';

/**
 * Runs the analysis on a small made-up spec, opened and edited a few dozen times, so that the first
 * real document is analyzed by optimized code rather than by V8's interpreter: cold, the first few
 * edits of a 1,000-step spec cost 5-10 times what later ones do. Bounded to about 150 ms of work.
 */
export function warmUp(budgetMs = 150): void {
  const started = performance.now();
  const lines = ['apiVersion: mlpipeline/v1', 'name: warm-up', 'params:', '  lr: {type: float, default: 0.01}', 'steps:'];
  for (let i = 0; i < 40; i++) {
    lines.push(`  s${i}:`, `    command: python train.py --lr \${params.lr} --in ${i ? `\${steps.s${i - 1}.outputs.model}` : 'data.csv'}`);
    if (i) lines.push(`    needs: [s${i - 1}]`);
    lines.push(`    outputs: {model: m${i}.pkl}`, '    timeout: 1h');
  }
  const text = lines.join('\n') + '\n';
  const at = text.indexOf('command:', text.indexOf('  s20:')) + 10;
  const analyzer = new IncrementalAnalyzer();
  for (let i = 0; i < 60 && performance.now() - started < budgetMs; i++) {
    analyzer.analyze(i % 10 === 0 ? text : text.slice(0, at) + 'x'.repeat(i % 3) + text.slice(at));
  }
}
