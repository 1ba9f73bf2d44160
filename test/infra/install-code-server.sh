#!/usr/bin/env bash
# Installs what the extension integration tests need, without any download outside
# Debian apt and the npm registry:
#   - apt: build-essential python3 pkg-config libkrb5-dev (native modules of code-server),
#          ripgrep (stands in for @vscode/ripgrep's GitHub download), chromium (the browser);
#   - code-server@4.100.3 (VS Code 1.100.3, Node 20) installed with npm into a cache dir
#     outside the repo: ${MLP_CACHE_DIR:-$HOME/.cache/mlpipeline-test}/code-server-4.100.3
#
# Idempotent: apt runs only for missing packages; code-server is skipped when its marker
# file exists and its binary answers --version. Prints the code-server binary path last.
#
# Env:
#   MLP_CACHE_DIR         cache root (default $HOME/.cache/mlpipeline-test)
#   MLP_SKIP_APT=1        do not touch apt (e.g. non-root machine that already has the packages)
#   MLP_FORCE_REINSTALL=1 wipe and reinstall code-server
set -euo pipefail

CODE_SERVER_VERSION=4.100.3
APT_PACKAGES=(build-essential python3 pkg-config libkrb5-dev ripgrep chromium)

CACHE_ROOT="${MLP_CACHE_DIR:-$HOME/.cache/mlpipeline-test}"
INSTALL_DIR="$CACHE_ROOT/code-server-$CODE_SERVER_VERSION"
MARKER="$INSTALL_DIR/.install-complete"
BIN="$INSTALL_DIR/node_modules/.bin/code-server"
LOG="$CACHE_ROOT/code-server-$CODE_SERVER_VERSION-install.log"

# code-server writes a default config into $HOME when --config is absent, and its logs into
# $XDG_DATA_HOME/code-server even for --version: keep both inside the cache dir.
VERSION_CONFIG="$CACHE_ROOT/version-check-config.yaml"
cs_version() {
  XDG_DATA_HOME="$CACHE_ROOT/xdg-data" XDG_CONFIG_HOME="$CACHE_ROOT/xdg-config" \
    "$BIN" --config "$VERSION_CONFIG" --version 2>&1 | grep -E '^[0-9]+\.[0-9]+\.[0-9]+ ' | head -n1
}

log() { echo "[install-code-server] $*" >&2; }
die() { echo "[install-code-server] ERROR: $*" >&2; exit 1; }

mkdir -p "$CACHE_ROOT"
[ -f "$VERSION_CONFIG" ] || printf 'auth: none\n' >"$VERSION_CONFIG"
# Two CI jobs (or a developer and a job) sharing the cache must not install at once.
exec 9>"$CACHE_ROOT/.install.lock"
flock 9

# ---------------------------------------------------------------- apt packages
# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
ensure_apt_packages "$CACHE_ROOT/apt-install.log" "${APT_PACKAGES[@]}"
[ -x /usr/bin/rg ] || die "/usr/bin/rg not found after installing ripgrep"
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium not found after installing chromium"

# ---------------------------------------------------------------- code-server
if [ "${MLP_FORCE_REINSTALL:-}" != 1 ] && [ -f "$MARKER" ] && [ -x "$BIN" ] \
  && [ -n "$(cs_version)" ]; then
  log "code-server $CODE_SERVER_VERSION already installed in $INSTALL_DIR"
  echo "$BIN"
  exit 0
fi

# Node 20 is what code-server 4.100.3 declares (its postinstall refuses other majors).
node_major="$(node -p 'process.versions.node.split(".")[0]')" || die "node not found"
[ "$node_major" = 20 ] || die "code-server $CODE_SERVER_VERSION needs Node 20, found $(node -v)"

# Fix 4: native modules (node-pty, kerberos, spdlog, ...) are compiled by node-gyp; point it at
# the local Node headers so it does not try to download them from nodejs.org.
NODE_PREFIX="$(node -p 'require("path").resolve(process.execPath, "..", "..")')"
[ -f "$NODE_PREFIX/include/node/node_version.h" ] \
  || die "Node headers not found in $NODE_PREFIX/include/node (needed by node-gyp offline)"

# When this script runs under `npm run`/`npm exec`, npm has exported its own prefix/global
# settings; they would redirect the installs below (and the nested one in code-server's
# postinstall) into the calling project.
unset npm_config_prefix npm_config_global npm_config_local_prefix npm_config_global_prefix

rm -rf "$INSTALL_DIR"
mkdir -p "$INSTALL_DIR"
# Private TMPDIR: the ripgrep cache we seed lives there, and node-gyp scratch stays out of /tmp.
WORK_TMP="$CACHE_ROOT/tmp"
rm -rf "$WORK_TMP"
mkdir -p "$WORK_TMP"
: >"$LOG"

# Fix 3: @vscode/ripgrep's postinstall downloads rg from GitHub (unreachable). It first looks in
# $TMPDIR/vscode-ripgrep-cache-<pkg version>/ripgrep-<tag>-<target>.tar.gz, so we put Debian's rg
# there. The package version comes from code-server's lib/vscode/npm-shrinkwrap.json and the tag
# from that @vscode/ripgrep version's lib/postinstall.js; both read from the npm tarballs (npm
# caches them, so the real install below does not download them again).
log "reading @vscode/ripgrep version and tag from the package files"
PACK_DIR="$WORK_TMP/pack"
mkdir -p "$PACK_DIR"
(cd "$PACK_DIR" && npm pack --loglevel=error "code-server@$CODE_SERVER_VERSION" >>"$LOG" 2>&1) \
  || { tail -n 30 "$LOG" >&2; die "npm pack code-server@$CODE_SERVER_VERSION failed (log: $LOG)"; }
tar -xzf "$PACK_DIR/code-server-$CODE_SERVER_VERSION.tgz" -C "$PACK_DIR" package/lib/vscode/npm-shrinkwrap.json
RG_PKG_VERSION="$(node -e '
  const s = require(process.argv[1]);
  const e = (s.packages || {})["node_modules/@vscode/ripgrep"];
  if (!e) process.exit(1);
  console.log(e.version);' "$PACK_DIR/package/lib/vscode/npm-shrinkwrap.json")" \
  || die "no node_modules/@vscode/ripgrep entry in code-server's lib/vscode/npm-shrinkwrap.json"
(cd "$PACK_DIR" && npm pack --loglevel=error "@vscode/ripgrep@$RG_PKG_VERSION" >>"$LOG" 2>&1) \
  || { tail -n 30 "$LOG" >&2; die "npm pack @vscode/ripgrep@$RG_PKG_VERSION failed (log: $LOG)"; }
mkdir -p "$PACK_DIR/rg"
tar -xzf "$PACK_DIR/vscode-ripgrep-$RG_PKG_VERSION.tgz" -C "$PACK_DIR/rg" package/lib/postinstall.js
RG_TAG="$(sed -n "s/^const VERSION = ['\"]\([^'\"]*\)['\"].*/\1/p" "$PACK_DIR/rg/package/lib/postinstall.js")"
[ -n "$RG_TAG" ] || die "could not find 'const VERSION = ...' in @vscode/ripgrep@$RG_PKG_VERSION lib/postinstall.js"
case "$(uname -m)" in
  x86_64) RG_TARGET=x86_64-unknown-linux-musl ;;
  aarch64) RG_TARGET=aarch64-unknown-linux-musl ;;
  *) die "unsupported architecture $(uname -m) for the ripgrep cache name" ;;
esac
RG_CACHE="$WORK_TMP/vscode-ripgrep-cache-$RG_PKG_VERSION"
mkdir -p "$RG_CACHE"
# The postinstall runs `tar xvf <file> -C <dest>` and expects a top-level `rg`.
tar -czf "$RG_CACHE/ripgrep-$RG_TAG-$RG_TARGET.tar.gz" -C /usr/bin rg
log "seeded $RG_CACHE/ripgrep-$RG_TAG-$RG_TARGET.tar.gz with /usr/bin/rg ($(/usr/bin/rg --version | head -n1))"

log "npm install code-server@$CODE_SERVER_VERSION in $INSTALL_DIR (about a minute; log: $LOG)"
# A plain local install, run from inside INSTALL_DIR. Not `-g --prefix` and not `--prefix`: npm
# exports npm_config_global / npm_config_prefix to lifecycle scripts, code-server's postinstall
# runs a nested `npm install` in lib/vscode that inherits them, and with `-g --prefix` that nested
# install failed here with "tar ENOENT: Cannot cd into .../lib/vscode/node_modules/...".
echo '{ "name": "mlpipeline-code-server-cache", "private": true }' >"$INSTALL_DIR/package.json"
start=$(date +%s)
# Fix 1: npm_config_unsafe_perm=true - code-server's postinstall refuses root without it.
# Fix 2: npm_config_yes=true - node-pty's install runs `npx node-gyp`, which would prompt (the env
#        var also wins over a `yes=false` in ~/.npmrc, as on these machines).
if ! env TMPDIR="$WORK_TMP" \
  npm_config_unsafe_perm=true \
  npm_config_yes=true \
  npm_config_nodedir="$NODE_PREFIX" \
  npm_config_update_notifier=false \
  npm_config_fund=false \
  npm_config_audit=false \
  bash -c 'cd "$1" && npm install --no-save "code-server@$2"' _ "$INSTALL_DIR" "$CODE_SERVER_VERSION" >>"$LOG" 2>&1; then
  echo "----- last 60 lines of $LOG -----" >&2
  tail -n 60 "$LOG" >&2
  die "npm install code-server@$CODE_SERVER_VERSION failed (full log: $LOG)"
fi
log "npm install took $(($(date +%s) - start)) s"

[ -x "$BIN" ] || die "npm finished but $BIN is missing (log: $LOG)"
version_out="$(cs_version || true)"
case "$version_out" in
  "$CODE_SERVER_VERSION"*) ;;
  *) XDG_DATA_HOME="$CACHE_ROOT/xdg-data" "$BIN" --config "$VERSION_CONFIG" --version >&2 || true
     die "unexpected code-server version output (expected $CODE_SERVER_VERSION)" ;;
esac
# The ripgrep VS Code uses for search must be the seeded Debian binary, and runnable.
CS_RG="$INSTALL_DIR/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg"
"$CS_RG" --version >/dev/null 2>&1 || die "ripgrep inside code-server is not runnable: $CS_RG"

rm -rf "$WORK_TMP"
echo "$version_out" >"$MARKER"
log "installed code-server $version_out in $INSTALL_DIR"
echo "$BIN"
