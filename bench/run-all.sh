#!/usr/bin/env bash
# `npm run bench`: every benchmark, each printing its figures beside its target. Not a test: numbers vary
# with the machine; compare ratios and run them side by side on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."
node esbuild.mjs --production >/dev/null
for b in bench/executor.ts bench/cache-check.ts bench/runs-list.ts bench/lsp.ts bench/activation.ts bench/panels.ts bench/panels-lineage.ts; do
  echo
  echo "=== $b"
  node --import tsx "$b"
done
