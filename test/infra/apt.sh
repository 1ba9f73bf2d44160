# Sourced by the test/infra installers: installs Debian packages that are missing, and nothing else.
# Needs log() and die() from the caller. Honours MLP_SKIP_APT=1 (fail instead of installing).
#   ensure_apt_packages LOGFILE PACKAGE...
ensure_apt_packages() {
  local logfile="$1"
  shift
  local missing=() p
  for p in "$@"; do
    # "install ok installed" is the only state in which the package is really usable.
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "apt: all packages present ($*)"
    return 0
  fi
  [ "${MLP_SKIP_APT:-}" = 1 ] && die "missing apt packages: ${missing[*]} (MLP_SKIP_APT=1 set, not installing)"
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get on this machine"
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "missing packages ${missing[*]}; run as root or install them (apt-get install ${missing[*]})"
    sudo=(sudo)
  fi
  log "apt: installing ${missing[*]} (log: $logfile)"
  : >"$logfile"
  "${sudo[@]}" apt-get update -qq >>"$logfile" 2>&1 \
    || { tail -n 30 "$logfile" >&2; die "apt-get update failed (log: $logfile)"; }
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$logfile" 2>&1 \
    || { tail -n 30 "$logfile" >&2; die "apt-get install ${missing[*]} failed (log: $logfile)"; }
}
