# shellcheck shell=bash
# Helpers shared by scripts/test and scripts/demo; source it, do not run it.

# The PostgreSQL binaries the test bed uses (it honours the same variable).
SWITCHYARD_PG_BIN=${SWITCHYARD_PG_BIN:-/usr/lib/postgresql/15/bin}

# Debian packages the project's tests, demo and benchmarks need.
# libmariadb-dev and gcc: tests build a small MariaDB Connector/C client (server-side cursors,
# which no Rust driver sends).
SWITCHYARD_DEBIAN_PACKAGES=(postgresql postgresql-contrib mariadb-server mariadb-client sysbench libmariadb-dev gcc)

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
  # The MariaDB test bed starts mariadbd itself (PATH or /usr/sbin) after mariadb-install-db.
  if [[ ! -x /usr/sbin/mariadbd ]] && ! command -v mariadbd >/dev/null 2>&1; then
    echo mariadb-server
  elif ! command -v mariadb-install-db >/dev/null 2>&1; then
    echo mariadb-server
  fi
  if ! command -v mariadb >/dev/null 2>&1; then
    echo mariadb-client
  fi
  if ! command -v sysbench >/dev/null 2>&1; then
    echo sysbench
  fi
  if [[ ! -e /usr/include/mariadb/mysql.h ]]; then
    echo libmariadb-dev
  fi
  if ! command -v gcc >/dev/null 2>&1; then
    echo gcc
  fi
}

# Makes sure cargo and the PostgreSQL and MariaDB binaries are there: installs the missing
# Debian packages when root, else names them and exits 1. Never starts the system's
# PostgreSQL or MariaDB itself: the test bed starts its own servers.
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

# The Python packages tests drive switchyard with (tests/python/), pip-installed into a venv.
SWITCHYARD_PYTHON_PACKAGES=('psycopg[binary]' asyncpg)
# Modules that show SWITCHYARD_PYTHON_PACKAGES are installed (psycopg_binary: libpq included).
SWITCHYARD_PYTHON_MODULES=(psycopg psycopg_binary asyncpg)

# Makes sure the venv $1 (default target/pyenv) exists and has SWITCHYARD_PYTHON_PACKAGES:
# creates it with python3 -m venv (installing python3 and python3-venv when root and they
# are missing, else naming them and exiting 1), then pip-installs the packages if an import
# fails. tests/pg_psycopg.rs runs tests/python/ with target/pyenv/bin/python.
ensure_python_deps() {
  local venv=${1:-target/pyenv} imports
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    if ((EUID != 0)); then
      log "python3 with its venv module is needed for the Python client tests"
      log "install it with: sudo apt-get update && sudo apt-get install -y --no-install-recommends python3 python3-venv"
      exit 1
    fi
    log "installing python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends python3 python3-venv
    python3 -c 'import venv, ensurepip' 2>/dev/null || die "python3 -m venv still unusable after apt-get install"
  fi
  # A venv whose interpreter is gone (python3 upgraded or moved) is rebuilt in place.
  if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c '' 2>/dev/null; then
    log "creating the Python venv $venv"
    python3 -m venv --clear "$venv" || die "python3 -m venv $venv failed"
  fi
  imports=$(IFS=,; echo "${SWITCHYARD_PYTHON_MODULES[*]}")
  "$venv/bin/python" -c "import $imports" 2>/dev/null && return 0
  log "pip-installing into $venv: ${SWITCHYARD_PYTHON_PACKAGES[*]}"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${SWITCHYARD_PYTHON_PACKAGES[@]}" ||
    die "pip install ${SWITCHYARD_PYTHON_PACKAGES[*]} into $venv failed"
  "$venv/bin/python" -c "import $imports" || die "$venv still lacks: ${SWITCHYARD_PYTHON_MODULES[*]}"
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
