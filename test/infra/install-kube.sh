#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kubectl 1.20.2 offline from Debian's `kubernetes`
# source package (the only Kubernetes server code reachable here) with Debian's Go, for the tests in
# test/runtime/kubernetes-*.test.ts. Also installs etcd (Debian's etcd-server) and openssl.
# Idempotent: when the cached binaries exist and run, nothing is downloaded or built.
# Prints the directory holding the binaries last (kube-apiserver, kube-controller-manager, kubectl).
#
# Recipe (docs: /work/shared/design/testing.md, "Kubernetes"):
#   deb-src for bookworm -> apt-get source --download-only kubernetes -> unpack the orig tarball ->
#   fix vendor/modules.txt for Go >= 1.17 (fix-kube-modules-txt.mjs) -> make gen_openapi ->
#   go build -mod=vendor with GOPROXY=off, CGO_ENABLED=0 and version ldflags.
#
# Env:
#   MLP_SKIP_APT=1        do not touch apt (fail if a package is missing)
#   MLP_KUBE_CACHE=DIR    cache directory (default ~/.cache/mlpipeline-test/kube-1.20.2)
#   MLP_KUBE_KEEP_SRC=1   keep the unpacked source tree after a successful build (about 1.5 GB)
set -euo pipefail

VERSION=1.20.2
GIT_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56 # upstream v1.20.2
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${MLP_KUBE_CACHE:-$HOME/.cache/mlpipeline-test/kube-$VERSION}"
BIN="$CACHE/bin"
SRC="$CACHE/src"
LOGFILE="$CACHE/install.log"

log() { echo "[install-kube] $*" >&2; }
die() { echo "[install-kube] ERROR: $*" >&2; exit 1; }

binaries_ok() {
  [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-controller-manager" ] && [ -x "$BIN/kubectl" ] || return 1
  "$BIN/kube-apiserver" --version 2>/dev/null | grep -q "v$VERSION" || return 1
  "$BIN/kube-controller-manager" --version 2>/dev/null | grep -q "v$VERSION" || return 1
  "$BIN/kubectl" version --client --short 2>/dev/null | grep -q "v$VERSION" || return 1
}

mkdir -p "$CACHE"
# Other installers may hold the dpkg lock (apt runs one at a time): wait for it instead of failing.
APT_CONF="$CACHE/apt.conf"
printf 'DPkg::Lock::Timeout "900";\n' >"$APT_CONF"
export APT_CONFIG="$APT_CONF"

# shellcheck source=apt.sh
source "$HERE/apt.sh"
ensure_apt_packages "$CACHE/apt.log" etcd-server openssl
command -v etcd >/dev/null || die "etcd not found after installing etcd-server"

if binaries_ok; then
  log "cached: $("$BIN/kube-apiserver" --version) in $BIN"
  echo "$BIN"
  exit 0
fi

ensure_apt_packages "$CACHE/apt.log" golang-go rsync make dpkg-dev
GO_VERSION="$(go env GOVERSION)"
log "building Kubernetes v$VERSION with $GO_VERSION (log: $LOGFILE); takes 3-8 minutes on 2 cores"
start=$(date +%s)
: >"$LOGFILE"

# 1. The source package. Debian's sources list ships without deb-src: add one for the same mirror.
mkdir -p "$SRC"
if ! ls "$SRC"/kubernetes_*.orig.tar.gz >/dev/null 2>&1; then
  if ! apt-cache showsrc kubernetes 2>/dev/null | grep -q "^Version: .*$VERSION"; then
    [ "${MLP_SKIP_APT:-}" = 1 ] && die "no deb-src entry for kubernetes and MLP_SKIP_APT=1 set"
    list=/etc/apt/sources.list.d/mlpipeline-deb-src.sources
    log "adding $list"
    mirror="$(grep -rhoE 'https?://[^ ]*debian/?$' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1)"
    mirror="${mirror:-http://deb.debian.org/debian}"
    printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" >"$list"
    apt-get update -qq >>"$LOGFILE" 2>&1 || { tail -n 20 "$LOGFILE" >&2; die "apt-get update failed"; }
  fi
  (cd "$SRC" && apt-get source --download-only kubernetes >>"$LOGFILE" 2>&1) \
    || { tail -n 20 "$LOGFILE" >&2; die "apt-get source --download-only kubernetes failed"; }
fi
TARBALL="$(ls "$SRC"/kubernetes_*.orig.tar.gz | head -n1)"

# 2. A fresh tree, unless an earlier attempt got as far as generating the OpenAPI code (then go build's cache
#    makes resuming cheap): a half-unpacked or half-fixed tree never leaks into this attempt.
TREE="$SRC/tree"
if [ ! -f "$TREE/.mlp-prepared" ]; then
  rm -rf "$TREE"
  mkdir -p "$TREE"
  tar -xzf "$TARBALL" -C "$TREE" --strip-components=1
  [ -f "$TREE/vendor/modules.txt" ] || die "unexpected tarball layout: no vendor/modules.txt in $TARBALL"
  node "$HERE/fix-kube-modules-txt.mjs" "$TREE/vendor/modules.txt" 2>>"$LOGFILE" || die "fixing vendor/modules.txt failed (log: $LOGFILE)"
fi
cd "$TREE"

# 3. Offline Go build settings. The Go build cache survives in $SRC/gocache, so a rebuild is faster.
export GOPATH="$SRC/gopath" GOCACHE="$SRC/gocache" GOFLAGS=-mod=vendor GOPROXY=off GO111MODULE=on CGO_ENABLED=0
export GOTOOLCHAIN=local GOSUMDB=off
mkdir -p "$GOPATH" "$GOCACHE"

if [ ! -f .mlp-prepared ]; then
  log "make gen_openapi"
  make gen_openapi >>"$LOGFILE" 2>&1 || { tail -n 30 "$LOGFILE" >&2; die "make gen_openapi failed (log: $LOGFILE)"; }
  [ -f pkg/generated/openapi/zz_generated.openapi.go ] || die "make gen_openapi did not write pkg/generated/openapi/zz_generated.openapi.go"
  touch .mlp-prepared
fi

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=v$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20 -X $pkg.gitCommit=$GIT_COMMIT"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
mkdir -p "$BIN.new"
for cmd in kube-apiserver kube-controller-manager kubectl; do
  log "go build ./cmd/$cmd"
  # providerless: leave out the legacy in-tree cloud providers (AWS, Azure, GCE, vSphere SDKs): a third of
  # the compile time, and nothing the tests use.
  go build -trimpath -tags providerless -ldflags "$ldflags" -o "$BIN.new/$cmd" "./cmd/$cmd" >>"$LOGFILE" 2>&1 \
    || { tail -n 30 "$LOGFILE" >&2; die "go build ./cmd/$cmd failed (log: $LOGFILE)"; }
done
rm -rf "$BIN"
mv "$BIN.new" "$BIN"
binaries_ok || die "built binaries do not report v$VERSION"
cd "$CACHE"
[ "${MLP_KUBE_KEEP_SRC:-}" = 1 ] || rm -rf "$TREE"
log "built in $(( $(date +%s) - start )) s: $("$BIN/kube-apiserver" --version) in $BIN"
echo "$BIN"
