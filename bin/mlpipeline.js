#!/usr/bin/env node
// Thin launcher: the CLI is bundled by esbuild.mjs into dist/cli/main.js.
const { main } = require('../dist/cli/main.js');
process.exitCode = main(process.argv.slice(2));
