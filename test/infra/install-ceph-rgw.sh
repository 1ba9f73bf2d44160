#!/usr/bin/env bash
# Installs a Ceph monitor, OSD and RADOS Gateway from Debian's apt repository (Ceph 16 on Debian 12), for the
# S3 tests (test/runtime/s3-*.test.ts, started by test/helpers/ceph-rgw.ts). Idempotent: apt runs only when a
# package is missing. Prints the radosgw binary path last.
#
# Env:
#   MLP_SKIP_APT=1   do not touch apt (fail if a package is missing)
set -euo pipefail

log() { echo "[install-ceph-rgw] $*" >&2; }
die() { echo "[install-ceph-rgw] ERROR: $*" >&2; exit 1; }

# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
# openssl: the fault-proxy tests make throwaway TLS certificates.
ensure_apt_packages "${TMPDIR:-/tmp}/mlpipeline-install-ceph-rgw.log" ceph-mon ceph-osd radosgw ceph-common openssl

for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool; do
  command -v "$bin" >/dev/null || die "$bin not found after installing the ceph packages"
done
log "$(ceph --version)"
command -v radosgw
