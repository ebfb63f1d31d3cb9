# shellcheck shell=bash
# Helpers shared by scripts/test and scripts/demo; source it, do not run it.

# The PostgreSQL binaries the test bed uses (it honours the same variable).
SWITCHYARD_PG_BIN=${SWITCHYARD_PG_BIN:-/usr/lib/postgresql/15/bin}

# Debian packages the project's tests, demo and benchmarks need.
SWITCHYARD_DEBIAN_PACKAGES=(postgresql postgresql-contrib)

log() { printf '%s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Prints the Debian packages of SWITCHYARD_DEBIAN_PACKAGES that are missing, one a line.
missing_debian_packages() {
  local bin
  for bin in postgres initdb pg_ctl pg_basebackup pg_rewind pgbench psql; do
    if [[ ! -x $SWITCHYARD_PG_BIN/$bin ]]; then
      echo postgresql
      break
    fi
  done
  # A metapackage has no files to look for: ask dpkg, where there is one.
  if command -v dpkg-query >/dev/null 2>&1 &&
    [[ $(dpkg-query -W -f='${Status}' postgresql-contrib 2>/dev/null) != *"ok installed" ]]; then
    echo postgresql-contrib
  fi
}

# Makes sure cargo and the PostgreSQL binaries are there: installs the missing Debian
# packages when root, else names them and exits 1. Never starts the system's PostgreSQL.
ensure_packages() {
  # Non-login shells (CI) may lack rustup's PATH entry.
  if ! command -v cargo >/dev/null 2>&1 && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    export PATH
  fi
  command -v cargo >/dev/null 2>&1 ||
    die "cargo not found: a Rust toolchain is needed (install rustup from https://rustup.rs, then 'rustup default stable')"

  local missing
  mapfile -t missing < <(missing_debian_packages)
  ((${#missing[@]} == 0)) && return 0
  if ((EUID != 0)); then
    log "missing Debian packages: ${missing[*]}"
    log "install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
  log "installing missing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${SWITCHYARD_DEBIAN_PACKAGES[@]}"
  mapfile -t missing < <(missing_debian_packages)
  ((${#missing[@]} == 0)) || die "still missing after apt-get install: ${missing[*]} (is $SWITCHYARD_PG_BIN right?)"
}

# Waits up to $2 seconds for file $1 to exist; fails early if process $3 (optional) exits.
wait_for_file() {
  local file=$1 secs=$2 pid=${3:-} i
  for ((i = 0; i < secs * 10; i++)); do
    [[ -e $file ]] && return 0
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    sleep 0.1
  done
  return 1
}

# Waits up to $3 seconds for a TCP listener on host $1 port $2; fails early if process $4
# (optional) exits.
wait_for_port() {
  local host=$1 port=$2 secs=$3 pid=${4:-} i
  for ((i = 0; i < secs * 10; i++)); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
      return 0
    fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    sleep 0.1
  done
  return 1
}
