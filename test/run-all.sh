#!/usr/bin/env bash
# The README's test command (`npm test`): installs what the tests need on a fresh Debian machine, builds,
# type-checks and runs every layer. Each step says what it does; any failure stops the run non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

if [ ! -x node_modules/.bin/esbuild ]; then
  step "npm ci"
  npm ci
fi

step "code-server 4.100.3 and Debian chromium for the in-editor tests"
bash test/infra/install-code-server.sh

step "neovim 0.7 (Debian) for the second LSP client test"
bash test/infra/install-neovim.sh

step "type-check and build"
npx tsc --noEmit -p .
node esbuild.mjs

step "tests: unit, golden, CLI, LSP over stdio, yaml-language-server peer, local engine, sample pipeline, VS Code extension host"
node --import tsx --test test/unit/*.test.ts test/unit/features/*.test.ts test/lsp/*.test.ts test/neovim/*.test.ts test/runtime/*.test.ts test/sample/*.test.mjs test/e2e/*.test.ts
