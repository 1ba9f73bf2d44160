import { readFileSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import { analyzeSpec } from '../../../server/src/core/validate';
import { UsageError } from './args';
import { findSpecs } from './find-specs';
import { counts, formatJson, formatSarif, formatText, type FileResult, type Format } from './formats';
import { runCommand } from './run';
import { compareCommand, lineageCommand, logsCommand, runsCommand, showCommand } from './runs';
import { sweepCommand } from './sweep';
import { PLAN_USAGE, planCommand } from './plan';
import { DEPLOY_USAGE, deployCommand, deploymentsCommand, loadCommand, monitorCommand, rollbackCommand, superviseCommand, undeployCommand } from './deploy';

declare const MLPIPELINE_VERSION: string;
const VERSION = typeof MLPIPELINE_VERSION === 'string' ? MLPIPELINE_VERSION : '0.0.0-dev';

const USAGE = `Usage: mlpipeline <command> [options]

Commands:
  validate [files...]   Check specs (default: every mlpipeline.yaml / *.mlpipeline.yaml below the
                        current folder). Exit code 1 when any error is found, 0 otherwise.
    --format text|json|sarif   Output format (default: text)
    --no-hints                 Leave out hints such as unused params
  run [spec]            Run the pipeline on the local executor; unchanged steps are skipped (cached).
    --step NAME                Run this step and what it depends on (repeatable)
    --set params.NAME=VALUE    Override a param (repeatable)
    --force                    Run every step even when its inputs are unchanged
    --jobs N                   At most N steps at once (default: CPU count)
    --label TEXT               A label stored with the run
    --target NAME              Compute target for steps that name none
    --json                     Print the run record as JSON instead of the live log
  sweep NAME [spec]     Run a sweep's trials (each an ordinary, cached run) and report the best
    --jobs N                   Trials at once (default: the sweep's maxParallel)
  runs [--json]         List recorded runs, newest first (--spec PATH, --limit N)
  show RUN [--json]     One run: params, git commit, steps, metrics, input and output hashes
  compare RUN RUN...    Params, metrics and output hashes side by side (--only-diff, --json)
  lineage [ARTIFACT]    Dataset -> step -> output edges with runs and commits (--run RUN, --json)
  logs RUN              A run's logs (--step NAME, --follow)
${PLAN_USAGE}${DEPLOY_USAGE}
Options:
  --help, -h     Show this help
  --version      Show the version
`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  run: runCommand,
  sweep: sweepCommand,
  runs: runsCommand,
  show: showCommand,
  compare: compareCommand,
  lineage: lineageCommand,
  logs: logsCommand,
  plan: planCommand,
  deploy: deployCommand,
  undeploy: undeployCommand,
  rollback: rollbackCommand,
  deployments: deploymentsCommand,
  load: loadCommand,
  monitor: monitorCommand,
  __supervise: superviseCommand,
};

export async function main(argv: string[]): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(USAGE);
      return command ? 0 : 2;
    }
    if (command === '--version') {
      process.stdout.write(`${VERSION}\n`);
      return 0;
    }
    if (command === 'validate') return validateCommand(rest);
    const run = COMMANDS[command];
    if (run) return await run(rest);
    throw new UsageError(`Unknown command \`${command}\`.`);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`mlpipeline: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
}

function validateCommand(args: string[]): number {
  let format: Format = 'text';
  let hints = true;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--format' || a.startsWith('--format=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[++i];
      if (v !== 'text' && v !== 'json' && v !== 'sarif') throw new UsageError(`--format takes text, json or sarif, not \`${v ?? ''}\`.`);
      format = v;
    } else if (a === '--no-hints') hints = false;
    else if (a.startsWith('-')) throw new UsageError(`Unknown option \`${a}\`.`);
    else files.push(a);
  }
  const targets = files.length ? files : findSpecs(process.cwd()).map((f) => relative(process.cwd(), f));
  if (targets.length === 0) {
    process.stderr.write('mlpipeline: no mlpipeline.yaml or *.mlpipeline.yaml found below this folder. Name the files to check.\n');
    return 2;
  }
  const results: FileResult[] = [];
  let unreadable = 0;
  for (const file of targets) {
    try {
      const inside = statSync(file).isDirectory() ? findSpecs(file) : [file];
      for (const f of inside) results.push(check(f, readFileSync(f), hints));
    } catch (e) {
      process.stderr.write(`mlpipeline: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
      unreadable++;
    }
  }
  const out = format === 'json' ? formatJson(results) : format === 'sarif' ? formatSarif(results, VERSION) : formatText(results, process.stdout.isTTY === true && !process.env.NO_COLOR);
  process.stdout.write(out);
  if (unreadable) return 2;
  return counts(results).errors > 0 ? 1 : 0;
}

function check(file: string, bytes: Buffer, hints: boolean): FileResult {
  // Invalid UTF-8 becomes U+FFFD, which the core reports (MLP005) exactly as the editor would see it.
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  return { file, problems: analyzeSpec(text, { unusedHints: hints }).problems };
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
