#!/usr/bin/env bash
# Installs Neovim from Debian's apt repository (0.7.2 on Debian 12), for the headless LSP client test
# (test/neovim). Idempotent: apt runs only when the package is missing. Prints the nvim binary path last.
#
# Env:
#   MLP_SKIP_APT=1   do not touch apt (fail if neovim is missing)
set -euo pipefail

log() { echo "[install-neovim] $*" >&2; }
die() { echo "[install-neovim] ERROR: $*" >&2; exit 1; }

# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
ensure_apt_packages "${TMPDIR:-/tmp}/mlpipeline-install-neovim.log" neovim

NVIM="$(command -v nvim)" || die "nvim not found after installing neovim"
# The test needs the built-in LSP client of 0.7 or newer (vim.lsp.start_client, vim.diagnostic).
"$NVIM" --headless --clean -c 'lua if vim.fn.has("nvim-0.7") == 0 then os.exit(1) end' -c 'qa!' </dev/null >/dev/null 2>&1 \
  || die "$("$NVIM" --version | head -n1) is older than 0.7"
log "$("$NVIM" --version | head -n1)"
echo "$NVIM"
