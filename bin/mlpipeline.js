#!/usr/bin/env node
// Thin launcher: the CLI is bundled by esbuild.mjs into dist/cli/main.js.
const { main } = require('../dist/cli/main.js');
main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err) => {
    process.stderr.write(`mlpipeline: ${err && err.message ? err.message : err}\n`);
    process.exitCode = 1;
  },
);
