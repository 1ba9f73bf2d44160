#!/usr/bin/env bash
# Installs Neovim from Debian's apt repository (0.7.2 on Debian 12), for the headless LSP client test
# (test/neovim). Idempotent: apt runs only when the package is missing. Prints the nvim binary path last.
#
# Env:
#   MLP_SKIP_APT=1   do not touch apt (fail if neovim is missing)
set -euo pipefail

log() { echo "[install-neovim] $*" >&2; }
die() { echo "[install-neovim] ERROR: $*" >&2; exit 1; }

if [ "$(dpkg-query -W -f='${Status}' neovim 2>/dev/null || true)" = "install ok installed" ] && command -v nvim >/dev/null; then
  log "neovim present ($(nvim --version | head -n1))"
else
  [ "${MLP_SKIP_APT:-}" = 1 ] && die "neovim is not installed (MLP_SKIP_APT=1 set, not installing)"
  command -v apt-get >/dev/null || die "neovim is not installed and there is no apt-get on this machine"
  SUDO=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "neovim is not installed; run as root or install it (apt-get install neovim)"
    SUDO=(sudo)
  fi
  LOG="${TMPDIR:-/tmp}/mlpipeline-install-neovim.log"
  log "apt: installing neovim (log: $LOG)"
  : >"$LOG"
  "${SUDO[@]}" apt-get update -qq >>"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; die "apt-get update failed (log: $LOG)"; }
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends neovim >>"$LOG" 2>&1 \
    || { tail -n 30 "$LOG" >&2; die "apt-get install neovim failed (log: $LOG)"; }
fi

NVIM="$(command -v nvim)" || die "nvim not found after installing neovim"
# The test needs the built-in LSP client of 0.7 or newer (vim.lsp.start_client, vim.diagnostic).
"$NVIM" --headless --clean -c 'lua if vim.fn.has("nvim-0.7") == 0 then os.exit(1) end' -c 'qa!' </dev/null >/dev/null 2>&1 \
  || die "$("$NVIM" --version | head -n1) is older than 0.7"
log "$("$NVIM" --version | head -n1)"
echo "$NVIM"
