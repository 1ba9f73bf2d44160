#!/usr/bin/env bash
# Installs Prometheus from Debian's apt repository (2.42 on Debian 12) for the serving tests, which start
# it themselves on 127.0.0.1 (test/helpers/prometheus.ts). The package does not start a server here.
# Idempotent: apt runs only when the package is missing. Prints the prometheus binary path last.
#
# Env:
#   MLP_SKIP_APT=1   do not touch apt (fail if prometheus is missing)
set -euo pipefail

log() { echo "[install-prometheus] $*" >&2; }
die() { echo "[install-prometheus] ERROR: $*" >&2; exit 1; }

# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
ensure_apt_packages "${TMPDIR:-/tmp}/mlpipeline-install-prometheus.log" prometheus

PROM="$(command -v prometheus)" || die "prometheus not found after installing the package"
log "$("$PROM" --version 2>&1 | head -n1)"
echo "$PROM"
