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

step "Prometheus (Debian) for the serving tests"
bash test/infra/install-prometheus.sh >/dev/null

step "Ceph RADOS Gateway (Debian) for the S3 tests"
bash test/infra/install-ceph-rgw.sh >/dev/null

step "kube-apiserver, kube-controller-manager and kubectl 1.20.2, built from Debian's source (cached per machine; 3-8 min the first time)"
bash test/infra/install-kube.sh >/dev/null

step "type-check (extension, server, CLI, tests; webviews) and build"
npm run typecheck
node esbuild.mjs

step "tests: unit, golden, CLI, LSP over stdio, yaml-language-server peer, Neovim, local engine, Kubernetes, S3, serving, sample pipeline, panels in Chromium, VS Code extension host"
node --import tsx --test test/unit/*.test.ts test/unit/features/*.test.ts test/lsp/*.test.ts test/neovim/*.test.ts test/runtime/*.test.ts test/sample/*.test.mjs test/webview/*.test.ts test/e2e/*.test.ts
