#!/usr/bin/env bash
# Read-only pgbench through switchyard, directly against the primary, and through PgBouncer
# (the anchor), alternating, on a local primary + two replicas started by the test bed.
# Prints tps and each proxy's own CPU microseconds per transaction (utime+stime from /proc).
# Usage: bench/pgbench.sh [seconds=15] [clients=16] [rounds=2] [mode=simple]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
ensure_packages

T=${1:-15}
C=${2:-16}
ROUNDS=${3:-2}
MODE=${4:-simple}

if ! command -v pgbouncer >/dev/null 2>&1 && ((EUID == 0)); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null 2>&1 ||
    log "pgbouncer could not be installed; the anchor is skipped"
fi

cargo build --release --bins -q
tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

target/release/switchyard-testbed pg --env-file "$tmp/env" >"$tmp/testbed.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [[ -s $tmp/env ]] && break; sleep 0.1; done
[[ -s $tmp/env ]] || die "test bed did not start: $(tail -5 "$tmp/testbed.log")"
# shellcheck disable=SC1091
source "$tmp/env"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SY_PORT=$(free_port)
cat >"$tmp/switchyard.toml" <<TOML
[[clusters]]
name = "bench"
listen = "127.0.0.1:$SY_PORT"
pool_size = 64

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
pids+=("$SY_PID")

BOUNCER_PID=""
if command -v pgbouncer >/dev/null 2>&1; then
  PB_PORT=$(free_port)
  pb="$tmp/pgbouncer"
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
default_pool_size = 32
max_client_conn = 200
logfile = $pb/pgbouncer.log
pidfile = $pb/pgbouncer.pid
INI
  echo '"app" "app"' >"$pb/userlist.txt"
  # PgBouncer refuses to run as root.
  if ((EUID == 0)); then
    chown -R postgres "$pb"
    runuser -u postgres -- pgbouncer "$pb/pgbouncer.ini" >/dev/null 2>&1 &
  else
    pgbouncer "$pb/pgbouncer.ini" >/dev/null 2>&1 &
  fi
  pids+=($!)
  BOUNCER_PID=pending
fi

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
wait_port "$SY_PORT" || die "switchyard did not start: $(tail -5 "$tmp/switchyard.log")"
if [[ -n $BOUNCER_PID ]]; then
  if wait_port "$PB_PORT" && [[ -s $pb/pgbouncer.pid ]]; then
    BOUNCER_PID=$(tr -d '\0' <"$pb/pgbouncer.pid")
    pids+=("$BOUNCER_PID")
  else
    log "pgbouncer did not start; the anchor is skipped"
    BOUNCER_PID=""
  fi
fi

export PGPASSWORD=app PGUSER=app PGHOST=127.0.0.1
pgbench -i -s 10 -q -p "$PG_PRIMARY_PORT" app >/dev/null 2>&1
# Let the replicas replay the initial load before reading from them.
for _ in $(seq 1 100); do
  lag=$(psql -XAtq -p "$PG_REPLICA1_PORT" -d app -c "SELECT count(*) FROM pgbench_branches" 2>/dev/null || echo 0)
  [[ $lag == 10 ]] && break
  sleep 0.2
done
sleep 1

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# run LABEL PORT PID -> prints "label tps cpu_us_per_txn"
run() {
  local label=$1 port=$2 pid=$3 before after out tps tx cpu
  [[ -n $pid ]] && before=$(ticks "$pid")
  # A candidate that cannot run the mode (PgBouncer 1.18 has no prepared statements in
  # transaction pooling) is reported, not fatal.
  out=$(pgbench -S -n -c "$C" -j 2 -T "$T" -M "$MODE" -p "$port" app 2>&1) || true
  [[ -n $pid ]] && after=$(ticks "$pid")
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")
  tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
  if [[ -n $pid && -n $tx && $tx -gt 0 ]]; then
    cpu=$(awk -v d=$((after - before)) -v hz="$HZ" -v tx="$tx" 'BEGIN { printf "%.1f", d / hz * 1e6 / tx }')
  else
    cpu="-"
  fi
  if [[ -z $tx ]]; then
    printf '%-11s round %s  did not run: %s\n' "$label" "$r" "$(grep -m1 -iE 'error|fatal' <<<"$out")"
    return 0
  fi
  printf '%-11s round %s  tps %10s  transactions %8s  failed %s  proxy CPU us/txn %s\n' "$label" "$r" "$tps" "$tx" "${failed:-?}" "$cpu"
}

echo "pgbench -S -c $C -j 2 -T $T -M $MODE, scale 10, $(nproc) cores; primary + 2 replicas on loopback"
for r in $(seq 1 "$ROUNDS"); do
  run direct "$PG_PRIMARY_PORT" ""
  run switchyard "$SY_PORT" "$SY_PID"
  [[ -n $BOUNCER_PID ]] && run pgbouncer "$PB_PORT" "$BOUNCER_PID"
done
