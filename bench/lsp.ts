/**
 * Language server speed, side by side with yaml-language-server 1.25 (the same JSON Schema through a
 * modeline) on generated specs of 100, 1,000 and 3,000 steps. Both run as real servers over stdio.
 * Run: node esbuild.mjs --production && BENCH_SIZES=100,1000,3000 node --import tsx bench/lsp.ts
 * (BENCH_PEER=0 leaves yaml-language-server out; MLPIPELINE_TRACE=1 makes our server log each analysis.)
 *
 * yaml-language-server validates after a fixed 200 ms delay; its figures are given raw and with that
 * delay subtracted. Peak memory is the server process's VmHWM (peak resident set) from /proc.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { StdioClient } from '../test/helpers/lsp-client';

const ROOT = resolve(__dirname, '..');
const YLS = resolve(ROOT, 'node_modules/yaml-language-server/bin/yaml-language-server');
const SCHEMA = pathToFileURL(resolve(ROOT, 'schemas/mlpipeline.schema.json')).href;
const SIZES = (process.env.BENCH_SIZES ?? '100,1000,3000').split(',').map(Number);
const REPEAT = 7;
const YLS_DELAY = 200;

function generate(steps: number): string {
  const lines = ['apiVersion: mlpipeline/v1', 'name: bench', 'params:', '  lr: {type: float, default: 0.01, min: 0.00001, max: 1}', '  epochs: {type: int, default: 10}', 'datasets:', '  raw: {uri: data/raw.csv}', 'compute:', '  local: {type: local, default: true}', 'steps:'];
  for (let i = 0; i < steps; i++) {
    lines.push(`  s${i}:`);
    lines.push(`    command: python train.py --lr \${params.lr} --epochs \${params.epochs} --in ${i ? `\${steps.s${i - 1}.outputs.model}` : '${datasets.raw}'} --out \${outputs.model}`);
    if (i) lines.push(`    needs: [s${i - 1}]`);
    lines.push(`    outputs: {model: models/m${i}.pkl}`);
    lines.push('    timeout: 1h');
  }
  return lines.join('\n') + '\n';
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function peakMiB(pid: number | undefined): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Waits for the next publishDiagnostics of a URI after `count` earlier ones. */
async function nextPublish(c: StdioClient, uri: string, count: number, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (c.allPublished(uri).length <= count) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`no diagnostics for ${uri} within ${timeoutMs} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

interface Figures {
  open: number;
  edit: number;
  completion: number;
  hover: number;
  definition: number;
  peak: number;
}

async function measure(kind: 'mlpipeline' | 'yaml-language-server', text: string, steps: number): Promise<Figures> {
  const yls = kind === 'yaml-language-server';
  const client = yls
    ? new StdioClient({ validate: true, hover: true, completion: true, schemaStore: { enable: false }, format: { enable: false } }, [YLS, '--stdio'])
    : new StdioClient({ validation: { enable: true } });
  await client.initialize();
  const body = yls ? `# yaml-language-server: $schema=${SCHEMA}\n${text}` : text;
  const offsetLines = yls ? 1 : 0;
  const opens: number[] = [];
  const edits: number[] = [];
  const completions: number[] = [];
  const hovers: number[] = [];
  const definitions: number[] = [];
  const lines = body.split('\n');
  const mid = Math.floor(steps / 2);
  const needsLine = lines.findIndex((l, i) => i > lines.indexOf(`  s${mid}:`) && l.startsWith('    needs: ['));
  const commandLine = lines.indexOf(`  s${mid}:`) + 1;
  const refCol = lines[commandLine].indexOf('${steps.') + '${steps.'.length + 1;
  for (let r = 0; r < REPEAT; r++) {
    const uri = `file:///bench/${kind}/${steps}/${r}/mlpipeline.yaml`;
    let t = performance.now();
    await client.open(uri, body, 1);
    await nextPublish(client, uri, 0);
    opens.push(performance.now() - t);
    // A one-character edit inside a command, then the next diagnostics.
    const before = client.allPublished(uri).length;
    t = performance.now();
    await client.change(uri, 2, [{ range: { start: { line: commandLine, character: 10 }, end: { line: commandLine, character: 10 } }, text: 'x' }]);
    await nextPublish(client, uri, before);
    edits.push(performance.now() - t);
    t = performance.now();
    await client.conn.sendRequest('textDocument/completion', { textDocument: { uri }, position: { line: needsLine, character: 12 } });
    completions.push(performance.now() - t);
    t = performance.now();
    await client.conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line: commandLine, character: refCol } });
    hovers.push(performance.now() - t);
    t = performance.now();
    await client.conn.sendRequest('textDocument/definition', { textDocument: { uri }, position: { line: commandLine, character: refCol } });
    definitions.push(performance.now() - t);
    await client.conn.sendNotification('textDocument/didClose', { textDocument: { uri } });
  }
  void offsetLines;
  const peak = peakMiB(client.proc.pid);
  if (process.env.MLPIPELINE_TRACE === '1') process.stderr.write(client.stderr);
  await client.shutdown();
  // The first open warms the JIT; report the median of the rest.
  return { open: median(opens.slice(1)), edit: median(edits.slice(1)), completion: median(completions.slice(1)), hover: median(hovers.slice(1)), definition: median(definitions.slice(1)), peak };
}

async function main(): Promise<void> {
  const fmt = (n: number): string => (Number.isNaN(n) ? '-' : n < 10 ? n.toFixed(2) : n.toFixed(0));
  console.log(`LSP benchmark: median of ${REPEAT - 1} (after one warm-up), ms; peak RSS in MiB`);
  console.log('steps  metric        mlpipeline  yaml-ls  yaml-ls-200ms  ratio(yaml-ls/ours)  target');
  for (const steps of SIZES) {
    const text = generate(steps);
    const ours = await measure('mlpipeline', text, steps);
    // BENCH_PEER=0 skips yaml-language-server (quick runs while working on our server).
    const peer = process.env.BENCH_PEER === '0' ? { open: NaN, edit: NaN, completion: NaN, hover: NaN, definition: NaN, peak: NaN } : await measure('yaml-language-server', text, steps);
    const targets: Record<keyof Figures, string> = { open: steps === 3000 ? '≤ 250' : '', edit: steps === 1000 ? '≤ 20' : '', completion: steps === 3000 ? '≤ 5' : '', hover: steps === 3000 ? '≤ 5' : '', definition: steps === 3000 ? '≤ 5' : '', peak: steps === 3000 ? '≤ 250 MiB' : '' };
    for (const k of Object.keys(ours) as (keyof Figures)[]) {
      const delayed = k === 'open' || k === 'edit' ? peer[k] - YLS_DELAY : NaN;
      console.log(`${String(steps).padEnd(6)} ${k.padEnd(13)} ${fmt(ours[k]).padStart(10)} ${fmt(peer[k]).padStart(8)} ${fmt(delayed).padStart(14)} ${(peer[k] / ours[k]).toFixed(1).padStart(20)}  ${targets[k]}`);
    }
  }
}

void main();
