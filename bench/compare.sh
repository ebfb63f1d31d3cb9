#!/usr/bin/env bash
# Side-by-side pgbench: direct (the primary), switchyard, PgBouncer and Pgpool-II, on a local
# PostgreSQL primary + two streaming replicas started by the test bed, in one run with the
# candidates alternating inside each scenario.
#
# Scenarios: select-only (pgbench -S) and tpcb-like (pgbench's default script), each at
# -c 64 and -c 500, -j 2, -M simple, -n (the tpcb-like pre-run vacuum is done here, directly
# on the primary, before every run, as pgbench would do without -n).
#
# Candidates:
#   direct      pgbench against the primary
#   switchyard  transaction pooling (the default), pool_size 60 per node; reads go to the
#               two replicas, transactions with writes to the primary
#   pgbouncer   pool_mode=transaction, default_pool_size 60, max_client_conn 1000, forwards
#               everything to the primary
#   pgpool      Pgpool-II in streaming-replication mode, load_balance_mode=on over the
#               primary and both replicas (weights 1:1:1, per session), one process per
#               client: num_init_children = clients + 10, connection_cache off
#
# For every run it prints tps, pgbench's latency average, the 99th percentile of the
# per-transaction latencies (from pgbench --log), failed transactions, and the proxy's own
# CPU microseconds per transaction: utime+stime from /proc, divided by the transactions, from
# the moment all clients are connected to the end (steady state), and over the whole run
# including the clients' SCRAM logins. For Pgpool-II that is the parent plus all its
# children, including the children it reaped during the run. Ends with a markdown table.
#
# pgbench 15 counts the logins inside -T (and leaves them out of tps), so each run gets
# -T seconds + clients/20 s: 500 logins through Pgpool-II take 10-15 s on this machine.
#
# The test bed sets max_connections = 300. Direct at -c 500 and Pgpool-II at -c 500 (which
# opens one connection per client to every node) need more, so the nodes are restarted with
# max_connections = 800 (replicas first: a standby needs at least its primary's value); the
# script stops if that fails. With RAISE_MAX_CONNECTIONS=0, direct at -c 500 is reported as
# n/a and Pgpool-II at -c 500 as whatever it does with too few server connections.
#
# Usage: bench/compare.sh [seconds=15] [rounds=1]
# Environment: CLIENTS="64 500"  SCENARIOS="select-only tpcb-like"
#              CANDIDATES="direct switchyard pgbouncer pgpool"  RAISE_MAX_CONNECTIONS=1
#              SKIP_BUILD=1 (use the binaries already in target/release)  LOGIN_ALLOWANCE=seconds
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
ensure_packages

T=${1:-15}
ROUNDS=${2:-1}
read -r -a CLIENT_COUNTS <<<"${CLIENTS:-64 500}"
read -r -a SCENARIO_LIST <<<"${SCENARIOS:-select-only tpcb-like}"
read -r -a CANDIDATE_LIST <<<"${CANDIDATES:-direct switchyard pgbouncer pgpool}"
RAISE_MAX_CONNECTIONS=${RAISE_MAX_CONNECTIONS:-1}
RAISED_MAX_CONNECTIONS=800
POOL_SIZE=60
[[ $T =~ ^[0-9]+$ && $T -gt 0 ]] || die "seconds must be a positive integer, not '$T'"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -gt 0 ]] || die "rounds must be a positive integer, not '$ROUNDS'"

# --- packages -------------------------------------------------------------------------------
have_pgbouncer() { command -v pgbouncer >/dev/null 2>&1 || [[ -x /usr/sbin/pgbouncer ]]; }
have_pgpool() { command -v pgpool >/dev/null 2>&1 || [[ -x /usr/sbin/pgpool ]]; }
PATH=$PATH:/usr/sbin
missing=()
have_pgbouncer || missing+=(pgbouncer)
have_pgpool || missing+=(pgpool2)
if ((${#missing[@]} > 0)); then
  if ((EUID == 0)); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; }; } >/dev/null 2>&1 ||
      log "apt-get install ${missing[*]} failed; the missing candidates are skipped"
  else
    log "missing Debian packages: ${missing[*]} (their candidates are skipped)"
    log "install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
  fi
fi

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  cargo build --release --bins -q || die "cargo build --release --bins failed (SKIP_BUILD=1 uses the binaries already built)"
fi
[[ -x target/release/switchyard && -x target/release/switchyard-testbed ]] || die "target/release lacks switchyard or switchyard-testbed"

# --- processes and cleanup ------------------------------------------------------------------
tmp=$(mktemp -d -t switchyard-compare.XXXXXX)
chmod 755 "$tmp"
TESTBED_PID="" SY_PID="" PB_PID="" PB_WRAPPER="" PP_PID="" PP_WRAPPER=""
RESTARTED_PIDS=() # postmasters restarted by pg_ctl: no longer the test bed's children

# as_pg CMD...: runs CMD as the postgres OS user when we are root (PostgreSQL, PgBouncer and
# Pgpool-II refuse to run as root), else as ourselves.
as_pg() {
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

# alive PID: the process exists and is not a zombie.
alive() {
  local st
  [[ -r /proc/$1/stat ]] || return 1
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $st && $st != Z ]]
}

# stop_pid PID SIGNAL SECONDS: sends SIGNAL, waits up to SECONDS, then SIGKILL.
stop_pid() {
  local pid=$1 sig=$2 secs=$3 i
  [[ -n $pid ]] || return 0
  alive "$pid" || return 0
  kill "-$sig" "$pid" 2>/dev/null || return 0
  for ((i = 0; i < secs * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# Pgpool-II's children, to be killed too should the parent have to be SIGKILLed.
children_of() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v p="$1" '{ pid = $1; sub(/^.*\) /, ""); if ($2 == p) print pid }'
}

stop_pgpool() {
  local kids
  [[ -n $PP_PID ]] || return 0
  kids=$(children_of "$PP_PID" | tr '\n' ' ')
  stop_pid "$PP_PID" INT 10 # fast shutdown: disconnects clients, stops the children
  # shellcheck disable=SC2086
  if [[ -n $kids ]]; then kill -KILL $kids 2>/dev/null || true; fi
  [[ -n $PP_WRAPPER ]] && { stop_pid "$PP_WRAPPER" TERM 3; wait "$PP_WRAPPER" 2>/dev/null || true; }
  PP_PID="" PP_WRAPPER=""
}

cleaned=0
cleanup() {
  local status=$? last=$BASH_COMMAND
  ((cleaned)) && return 0
  cleaned=1
  ((status == 0 || status == 130 || status == 143)) || log "compare.sh stopped with status $status at: $last"
  trap '' INT TERM
  stop_pgpool || true
  [[ -n $PB_PID ]] && stop_pid "$PB_PID" TERM 5 # SIGTERM: immediate shutdown
  [[ -n $PB_WRAPPER ]] && stop_pid "$PB_WRAPPER" TERM 3
  [[ -n $SY_PID ]] && stop_pid "$SY_PID" TERM 12
  # Postmasters we restarted are no longer the test bed's children: stop them ourselves,
  # immediate shutdown (SIGQUIT) all at once, before the test bed removes their directories.
  local p
  for p in "${RESTARTED_PIDS[@]}"; do alive "$p" && kill -QUIT "$p" 2>/dev/null; done
  for p in "${RESTARTED_PIDS[@]}"; do stop_pid "$p" QUIT 10; done
  [[ -n $TESTBED_PID ]] && stop_pid "$TESTBED_PID" TERM 20
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the test bed -----------------------------------------------------------------------------
# In its own session, so that a Ctrl-C in the terminal reaches only us: the test bed removes
# its directory when it gets SIGINT, and the postmasters restarted below must go first.
setsid target/release/switchyard-testbed pg --env-file "$tmp/env" >"$tmp/testbed.log" 2>&1 &
TESTBED_PID=$!
for _ in $(seq 1 600); do
  [[ -s $tmp/env ]] && break
  alive "$TESTBED_PID" || break
  sleep 0.1
done
[[ -s $tmp/env ]] || die "test bed did not start: $(tail -5 "$tmp/testbed.log")"
# shellcheck disable=SC1091
source "$tmp/env"
NODE_PORTS=("$PG_PRIMARY_PORT" "$PG_REPLICA1_PORT" "$PG_REPLICA2_PORT")
NODE_SOCKS=("$PG_SOCKET_DIR_0" "$PG_SOCKET_DIR_1" "$PG_SOCKET_DIR_2")

# su_psql NODE SQL: psql as the postgres superuser over node NODE's unix socket.
su_psql() {
  timeout --foreground 30 psql -XAtq -v ON_ERROR_STOP=1 -h "${NODE_SOCKS[$1]}" -p "${NODE_PORTS[$1]}" -U postgres -d "${3:-postgres}" -c "$2"
}

MAX_CONNECTIONS=$(su_psql 0 "SHOW max_connections")
if [[ $RAISE_MAX_CONNECTIONS == 1 ]]; then
  # Replicas first: a standby stops if its primary's max_connections exceeds its own.
  raise_ok=1
  for i in 2 1 0; do
    data=$PG_BASE_DIR/pg$i/data
    [[ -d $data ]] || { raise_ok=0; break; }
    rc=0
    as_pg timeout 60 "$PG_BIN_DIR/pg_ctl" -D "$data" -o "-c max_connections=$RAISED_MAX_CONNECTIONS" \
      -l "$PG_BASE_DIR/pg$i/restart.log" -w -t 50 -m fast restart >"$tmp/restart.log" 2>&1 || rc=$?
    pm=$(head -1 "$data/postmaster.pid" 2>/dev/null || true)
    [[ $pm =~ ^[0-9]+$ ]] && RESTARTED_PIDS+=("$pm")
    if ((rc != 0)); then
      log "restarting pg$i with max_connections=$RAISED_MAX_CONNECTIONS failed: $(tail -3 "$tmp/restart.log")"
      raise_ok=0
      break
    fi
  done
  ((raise_ok)) || die "could not restart the nodes with a higher max_connections (RAISE_MAX_CONNECTIONS=0 skips that)"
  MAX_CONNECTIONS=$(su_psql 0 "SHOW max_connections")
  for i in 1 2; do
    for _ in $(seq 1 100); do
      [[ $(su_psql 0 "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg$i' AND state = 'streaming'" 2>/dev/null) == 1 ]] && break
      sleep 0.1
    done
  done
fi

# --- switchyard -------------------------------------------------------------------------------
SY_PORT=$(free_port)
cat >"$tmp/switchyard.toml" <<TOML
[[clusters]]
name = "bench"
listen = "127.0.0.1:$SY_PORT"
pool_mode = "transaction"
pool_size = $POOL_SIZE

[[clusters.users]]
name = "app"
password = "app"

[[clusters.nodes]]
name = "pg0"
addr = "127.0.0.1:$PG_PRIMARY_PORT"

[[clusters.nodes]]
name = "pg1"
addr = "127.0.0.1:$PG_REPLICA1_PORT"

[[clusters.nodes]]
name = "pg2"
addr = "127.0.0.1:$PG_REPLICA2_PORT"
TOML
RUST_LOG=warn target/release/switchyard run --config "$tmp/switchyard.toml" 2>"$tmp/switchyard.log" &
SY_PID=$!
wait_for_port 127.0.0.1 "$SY_PORT" 30 "$SY_PID" || die "switchyard did not start: $(tail -5 "$tmp/switchyard.log")"

# --- PgBouncer --------------------------------------------------------------------------------
PB_PORT="" PB_SKIP=""
if have_pgbouncer; then
  PB_PORT=$(free_port)
  pb=$tmp/pgbouncer
  mkdir -p "$pb"
  cat >"$pb/pgbouncer.ini" <<INI
[databases]
app = host=127.0.0.1 port=$PG_PRIMARY_PORT dbname=app
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $pb/userlist.txt
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_client_conn = 1000
logfile = $pb/pgbouncer.log
pidfile = $pb/pgbouncer.pid
INI
  echo '"app" "app"' >"$pb/userlist.txt"
  ((EUID == 0)) && chown -R postgres "$pb"
  as_pg pgbouncer "$pb/pgbouncer.ini" >"$pb/stdout.log" 2>&1 &
  PB_WRAPPER=$!
  if wait_for_port 127.0.0.1 "$PB_PORT" 15 "$PB_WRAPPER" && wait_for_file "$pb/pgbouncer.pid" 5; then
    PB_PID=$(tr -d '\0' <"$pb/pgbouncer.pid")
  else
    PB_SKIP="did not start: $(tail -2 "$pb/pgbouncer.log" "$pb/stdout.log" 2>/dev/null | tr '\n' ' ')"
    log "pgbouncer $PB_SKIP"
  fi
else
  PB_SKIP="not installed (Debian package pgbouncer)"
fi

# --- Pgpool-II (started per client count: one process per client) ----------------------------
PP_PORT="" PP_SKIP=""
pp=$tmp/pgpool
have_pgpool || PP_SKIP="not installed (Debian package pgpool2)"

# start_pgpool CHILDREN: (re)starts Pgpool-II with num_init_children = CHILDREN; on failure
# sets PP_SKIP to the reason and returns 1.
start_pgpool() {
  local children=$1
  stop_pgpool
  PP_SKIP=""
  rm -rf "$pp"
  mkdir -p "$pp"
  PP_PORT=$(free_port)
  cat >"$pp/pgpool.conf" <<CONF
backend_clustering_mode = 'streaming_replication'
listen_addresses = '127.0.0.1'
port = $PP_PORT
socket_dir = '$pp'
pcp_listen_addresses = ''
pcp_port = $(free_port)
pcp_socket_dir = '$pp'
wd_ipc_socket_dir = '$pp'
pid_file_name = '$pp/pgpool.pid'
logdir = '$pp'
log_destination = 'stderr'
backend_hostname0 = '127.0.0.1'
backend_port0 = $PG_PRIMARY_PORT
backend_weight0 = 1
backend_flag0 = 'DISALLOW_TO_FAILOVER'
backend_hostname1 = '127.0.0.1'
backend_port1 = $PG_REPLICA1_PORT
backend_weight1 = 1
backend_flag1 = 'DISALLOW_TO_FAILOVER'
backend_hostname2 = '127.0.0.1'
backend_port2 = $PG_REPLICA2_PORT
backend_weight2 = 1
backend_flag2 = 'DISALLOW_TO_FAILOVER'
enable_pool_hba = on
pool_passwd = '$pp/pool_passwd'
num_init_children = $children
reserved_connections = 0
max_pool = 1
connection_cache = off
child_life_time = 0
child_max_connections = 0
load_balance_mode = on
statement_level_load_balance = off
sr_check_period = 0
sr_check_user = 'app'
sr_check_password = 'app'
sr_check_database = 'app'
health_check_period = 0
failover_on_backend_error = off
use_watchdog = off
memory_cache_enabled = off
CONF
  echo 'host all all 127.0.0.1/32 scram-sha-256' >"$pp/pool_hba.conf"
  echo 'app:TEXTapp' >"$pp/pool_passwd"
  : >"$pp/pcp.conf"
  chmod 600 "$pp/pool_passwd"
  ((EUID == 0)) && chown -R postgres "$pp"
  # -n: stay in the foreground; -D: forget node states from an earlier start.
  as_pg pgpool -n -D -f "$pp/pgpool.conf" -a "$pp/pool_hba.conf" -F "$pp/pcp.conf" >"$pp/pgpool.log" 2>&1 &
  PP_WRAPPER=$!
  local started
  started=$(date +%s.%N)
  if wait_for_port 127.0.0.1 "$PP_PORT" 60 "$PP_WRAPPER" && wait_for_file "$pp/pgpool.pid" 10; then
    # Pgpool-II writes NUL bytes into its pid file.
    PP_PID=$(tr -d '\0\n ' <"$pp/pgpool.pid")
    # Its children may still be forking when the port opens: wait for all of them.
    for _ in $(seq 1 300); do
      (($(pgrep -c -P "$PP_PID" -f 'wait for connection' || true) >= children)) && break
      sleep 0.1
    done
    if PGPASSWORD=app timeout --foreground 20 psql -XAtq -h 127.0.0.1 -p "$PP_PORT" -U app -d app -c 'SELECT 1' >/dev/null 2>"$pp/probe.err"; then
      log "pgpool started with num_init_children=$children in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s"
      return 0
    fi
    PP_SKIP="does not answer: $(head -c 200 "$pp/probe.err" | tr '\n' ' ')"
  else
    PP_SKIP="did not start with num_init_children=$children: $(grep -m2 -E 'FATAL|ERROR' "$pp/pgpool.log" | tr '\n' ' ' | head -c 300)"
  fi
  log "pgpool $PP_SKIP"
  stop_pgpool
  return 1
}

# --- data -------------------------------------------------------------------------------------
export PGPASSWORD=app PGUSER=app PGHOST=127.0.0.1 PGDATABASE=app
timeout --foreground 300 pgbench -i -s 10 -q -p "$PG_PRIMARY_PORT" app >"$tmp/init.log" 2>&1 || die "pgbench -i failed: $(tail -3 "$tmp/init.log")"

# Waits until both replicas have replayed everything the primary has written so far.
wait_replicas() {
  local lsn i
  lsn=$(su_psql 0 "SELECT pg_current_wal_lsn()")
  for i in 1 2; do
    for _ in $(seq 1 300); do
      [[ $(su_psql "$i" "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn" 2>/dev/null) == t ]] && break
      sleep 0.1
    done
  done
}
wait_replicas

# --- measuring --------------------------------------------------------------------------------
HZ=$(getconf CLK_TCK)
# cpu_ticks PID [tree]: utime+stime of PID; with "tree", plus its reaped children's
# (cutime+cstime) and every live child's.
cpu_ticks() {
  if [[ ${2:-} == tree ]]; then
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v p="$1" '{ pid = $1; sub(/^.*\) /, "")
      # now $1 = state, $2 = ppid, $12 utime, $13 stime, $14 cutime, $15 cstime
      if (pid == p || $2 == p) s += $12 + $13 + $14 + $15 } END { print s + 0 }'
  else
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
  fi
}

# mark_connected PORT CLIENTS PID MODE OUT: in the background, waits until CLIENTS TCP
# connections to PORT (the proxy's side) are established, then writes the proxy's CPU ticks
# to OUT. pgbench 15 starts its transactions only once every client is connected, so the
# ticks from then on are the steady state, without the clients' logins (SCRAM costs the
# proxy a few ms each: at -c 500 that is a large share of a short run).
mark_connected() {
  local port_hex n i
  port_hex=$(printf ':%04X' "$1")
  for ((i = 0; i < (T + 300) * 20; i++)); do
    n=$(awk -v p="$port_hex" 'substr($2, length($2) - 4) == p && $4 == "01" { n++ } END { print n + 0 }' /proc/net/tcp 2>/dev/null || echo 0)
    if ((n >= $2)); then
      cpu_ticks "$3" "$4" >"$5.tmp" && mv "$5.tmp" "$5"
      return 0
    fi
    sleep 0.05
  done
}

ROWS=()
declare -A DIRECT_TPS=()

# field REGEX TEXT: the first capture group of REGEX in TEXT.
field() { sed -nE "s/$1/\\1/p" <<<"$2" | head -1; }

# row SCENARIO CLIENTS ROUND CANDIDATE TPS AVG P99 FAILED CPU CPU_ALL CONN NOTE: prints the
# line and keeps it for the table.
row() {
  local ratio="-" key="$1/$2/$3"
  if [[ $4 == direct && $5 != - ]]; then DIRECT_TPS[$key]=$5; fi
  if [[ $4 != direct && $5 != - && -n ${DIRECT_TPS[$key]:-} ]]; then
    ratio=$(awk -v a="$5" -v b="${DIRECT_TPS[$key]}" 'BEGIN { printf "%.2f", a / b }')
  fi
  printf '%-11s c=%-3s r%s  %-10s  tps %6s  lat avg %8s ms  p99 %8s ms  failed %-3s  proxy CPU us/txn %6s (incl. logins %6s)  conn %7s ms  %s\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "${10}" "${11}" "${12}"
  local IFS=$'\x1f'
  ROWS+=("$1${IFS}$2${IFS}$3${IFS}$4${IFS}$5${IFS}$ratio${IFS}$6${IFS}$7${IFS}$8${IFS}$9${IFS}${10}${IFS}${11}${IFS}${12}")
}

# us_per_tx TICKS TX
us_per_tx() { awk -v d="$1" -v hz="$HZ" -v tx="$2" 'BEGIN { printf "%.1f", d / hz * 1e6 / tx }'; }

# login_allowance CLIENTS: seconds added to -T for the logins, clients/20 (LOGIN_ALLOWANCE
# overrides it). pgbench 15 counts the time its clients take to connect inside -T (and leaves
# it out of tps): 500 SCRAM logins take about 3 s direct and up to 15 s through Pgpool-II
# (which logs in to all three nodes for every client), which would eat most of a short run.
login_allowance() {
  if [[ -n ${LOGIN_ALLOWANCE:-} ]]; then echo "$LOGIN_ALLOWANCE"; else echo $((($1 + 19) / 20)); fi
}

# allowances: "N s at -c C, ..." for the header.
allowances() {
  local c out=""
  for c in "${CLIENT_COUNTS[@]}"; do out+="${out:+, }$(login_allowance "$c") s at -c $c"; done
  echo "$out"
}

# run SCENARIO CLIENTS ROUND CANDIDATE PORT PID PIDMODE
run() {
  local scenario=$1 c=$2 r=$3 cand=$4 port=$5 pid=$6 mode=${7:-} before="" after="" out rc
  local tps avg tx failed cpu="-" cpu_all="-" conn p99 note="" logdir=$tmp/log marker=$tmp/connected marker_pid=""
  local dur
  dur=$((T + $(login_allowance "$c")))
  local -a args=(-n -j 2 -c "$c" -T "$dur" -M simple -h 127.0.0.1 -p "$port" -U app)
  [[ $scenario == select-only ]] && args+=(-S)
  if [[ $scenario == tpcb-like ]]; then
    # What pgbench does before a run without -n, done on the primary for every candidate.
    su_psql 0 "VACUUM pgbench_branches; VACUUM pgbench_tellers; TRUNCATE pgbench_history" app >/dev/null 2>&1 || true
  fi
  rm -rf "$logdir" "$marker"
  mkdir -p "$logdir"
  if [[ -n $pid ]]; then
    before=$(cpu_ticks "$pid" "$mode")
    mark_connected "$port" "$c" "$pid" "$mode" "$marker" &
    marker_pid=$!
  fi
  rc=0
  out=$(timeout --foreground -k 5 $((dur + 120)) pgbench "${args[@]}" --log --log-prefix="$logdir/tx" app 2>&1) || rc=$?
  if [[ -n $pid ]]; then
    after=$(cpu_ticks "$pid" "$mode")
    kill "$marker_pid" 2>/dev/null || true
    wait "$marker_pid" 2>/dev/null || true
  fi
  printf '%s\n' "$out" >"$tmp/last-$cand.out"
  tps=$(field '^tps = ([0-9.]+) .*' "$out")
  avg=$(field '^latency average = ([0-9.]+) ms.*' "$out")
  tx=$(field '^number of transactions actually processed: ([0-9]+).*' "$out")
  failed=$(field '^number of failed transactions: ([0-9]+).*' "$out")
  conn=$(field '^initial connection time = ([0-9.]+) ms.*' "$out")
  # pgbench killed by SIGINT or SIGTERM: Ctrl-C (or a stop), not a result.
  if ((rc == 130 || rc == 143)); then exit "$rc"; fi
  if ((rc == 124 || rc == 137)); then note="timed out after $((dur + 120)) s; "; fi
  if grep -q 'Run was aborted' <<<"$out"; then note+="run aborted; "; fi
  local err
  err=$(grep -m1 -iE 'error|fatal' <<<"$out" | cut -c1-160 || true)
  if [[ -n $err ]]; then note+="$(grep -ciE 'error|fatal' <<<"$out") error lines, first: $err; "; fi
  if [[ -z $tx || $tx == 0 ]]; then
    if [[ $tx == 0 ]]; then
      note+="0 transactions: the $c logins took all of -T $dur s (pgbench 15 counts them inside -T); "
    fi
    [[ -n $note ]] || note="$(tail -1 <<<"$out" | cut -c1-160); "
    if [[ $cand == pgpool ]]; then
      err=$(grep -E 'ERROR|FATAL' "$pp/pgpool.log" 2>/dev/null | tail -1 | sed 's/^.*\(ERROR\|FATAL\)/\1/' | cut -c1-160 || true)
      [[ -z $err ]] || note+="pgpool log: $err; "
    fi
    row "$scenario" "$c" "$r" "$cand" - - - - - - "${conn:--}" "no transactions (pgbench exit $rc): ${note%; }"
    rm -rf "$logdir"
    return 0
  fi
  tps=$(awk -v t="$tps" 'BEGIN { printf "%.0f", t }')
  # p99 by nearest rank over every logged transaction's latency (field 3, microseconds);
  # failed transactions log a word there instead and are left out.
  p99=$({ cat "$logdir"/tx.* 2>/dev/null || true; } | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n |
    awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int(NR * 0.99); if (i < NR * 0.99) i++; printf "%.2f", v[i] / 1000 }')
  if [[ -n $pid ]]; then
    cpu_all=$(us_per_tx $((after - before)) "$tx")
    if [[ -s $marker ]]; then
      cpu=$(us_per_tx $((after - $(cat "$marker"))) "$tx")
    fi
  fi
  row "$scenario" "$c" "$r" "$cand" "$tps" "$avg" "$p99" "${failed:-?}" "$cpu" "$cpu_all" "${conn:--}" "${note%; }"
  rm -rf "$logdir"
}

# skip SCENARIO CLIENTS ROUND CANDIDATE WHY
skip() { row "$1" "$2" "$3" "$4" - - - - - - - "n/a: $5"; }

echo "switchyard compare: pgbench -j 2 -T $T (+ $(allowances) for the logins) -M simple -n, scale 10, $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB;" \
  "PostgreSQL $(su_psql 0 'SHOW server_version' | cut -d' ' -f1) primary + 2 replicas on loopback, max_connections $MAX_CONNECTIONS;" \
  "pgbouncer $(pgbouncer --version 2>/dev/null | head -1 | awk '{ print $NF }'), pgpool $(pgpool --version 2>&1 | awk '{ print $3 }')"
echo "per run: tps (without initial connection time), pgbench's latency average, p99 of the per-transaction latencies, failed transactions," \
  "proxy CPU us/txn once all clients are connected (and over the whole run, logins included), pgbench's initial connection time"
START=$(date +%s)
for c in "${CLIENT_COUNTS[@]}"; do
  if [[ " ${CANDIDATE_LIST[*]} " == *" pgpool "* ]] && have_pgpool; then
    # The clients, plus headroom for pgbench's own first connection.
    start_pgpool $((c + 10)) || true
  fi
  for scenario in "${SCENARIO_LIST[@]}"; do
    for r in $(seq 1 "$ROUNDS"); do
      for cand in "${CANDIDATE_LIST[@]}"; do
        case $cand in
        direct)
          # Leave room for the poolers' idle server connections and the monitors.
          if ((c + 2 * POOL_SIZE + 20 > MAX_CONNECTIONS)); then
            skip "$scenario" "$c" "$r" direct "max_connections $MAX_CONNECTIONS"
          else
            run "$scenario" "$c" "$r" direct "$PG_PRIMARY_PORT" ""
          fi
          ;;
        switchyard)
          if alive "$SY_PID"; then
            run "$scenario" "$c" "$r" switchyard "$SY_PORT" "$SY_PID"
          else
            skip "$scenario" "$c" "$r" switchyard "exited: $(tail -2 "$tmp/switchyard.log" | tr '\n' ' ')"
          fi
          ;;
        pgbouncer)
          if [[ -n $PB_PID ]] && alive "$PB_PID"; then
            run "$scenario" "$c" "$r" pgbouncer "$PB_PORT" "$PB_PID"
          else
            skip "$scenario" "$c" "$r" pgbouncer "${PB_SKIP:-exited}"
          fi
          ;;
        pgpool)
          if [[ -n $PP_PID ]] && alive "$PP_PID"; then
            run "$scenario" "$c" "$r" pgpool "$PP_PORT" "$PP_PID" tree
          else
            skip "$scenario" "$c" "$r" pgpool "${PP_SKIP:-exited}"
          fi
          ;;
        *) die "unknown candidate $cand" ;;
        esac
      done
    done
  done
  stop_pgpool
  wait_replicas
done
log "measured in $(($(date +%s) - START)) s"

# --- the table ---------------------------------------------------------------------------------
echo
echo "Command: \`bench/compare.sh $T $ROUNDS\` — pgbench -j 2 -M simple -n, scale 10;" \
  "-T $T s + $(allowances) for the logins (pgbench 15 counts them inside -T; tps leaves them out); switchyard and PgBouncer pool_size $POOL_SIZE per node, Pgpool-II num_init_children = clients + 10; max_connections $MAX_CONNECTIONS."
echo "select-only: direct and PgBouncer read the primary, switchyard the two replicas, Pgpool-II all three (per session);" \
  "tpcb-like: writes go to the primary on every candidate."
echo
echo "| scenario | clients | round | candidate | tps | tps vs direct | latency avg ms | p99 ms | failed | proxy CPU µs/txn | … incl. logins | initial conn ms | note |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for line in "${ROWS[@]}"; do
  IFS=$'\x1f' read -r s c r cand tps ratio avg p99 failed cpu cpu_all conn note <<<"$line"
  note=${note//|/\\|}
  echo "| $s | $c | $r | $cand | $tps | $ratio | $avg | $p99 | $failed | $cpu | $cpu_all | $conn | $note |"
done
