#!/usr/bin/env bash
# sysbench oltp_point_select and oltp_read_only directly against the MariaDB primary, through
# switchyard (reads spread over the two replicas) and through HAProxy (Debian's package, TCP
# mode, round robin over the two replicas), alternating, on a local MariaDB primary + two GTID
# replicas started by the test bed. Prints queries per second, p95 latency and each proxy's
# own CPU microseconds per query (utime+stime from /proc).
# Usage: bench/sysbench.sh [seconds=15] [threads=16] [rounds=2]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
ensure_packages

T=${1:-15}
C=${2:-16}
ROUNDS=${3:-2}

if ! command -v haproxy >/dev/null 2>&1 && ((EUID == 0)); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null 2>&1 ||
    log "haproxy could not be installed; the anchor is skipped"
fi

cargo build --release --bins -q
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

target/release/switchyard-testbed maria --env-file "$tmp/env" >"$tmp/testbed.log" 2>&1 &
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
protocol = "mysql"
listen = "127.0.0.1:$SY_PORT"
pool_size = 64

[[clusters.users]]
name = "$MARIA_USER"
password = "$MARIA_PASSWORD"

[[clusters.nodes]]
name = "m0"
addr = "127.0.0.1:$MARIA_PRIMARY_PORT"

[[clusters.nodes]]
name = "m1"
addr = "127.0.0.1:$MARIA_REPLICA1_PORT"

[[clusters.nodes]]
name = "m2"
addr = "127.0.0.1:$MARIA_REPLICA2_PORT"
TOML
RUST_LOG=warn target/release/switchyard run --config "$tmp/switchyard.toml" 2>"$tmp/switchyard.log" &
SY_PID=$!
pids+=("$SY_PID")

HA_PID=""
if command -v haproxy >/dev/null 2>&1; then
  HA_PORT=$(free_port)
  cat >"$tmp/haproxy.cfg" <<CFG
global
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 1m
  timeout server 1m
listen mysql_replicas
  bind 127.0.0.1:$HA_PORT
  balance roundrobin
  server m1 127.0.0.1:$MARIA_REPLICA1_PORT
  server m2 127.0.0.1:$MARIA_REPLICA2_PORT
CFG
  haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 &
  HA_PID=$!
  pids+=("$HA_PID")
fi

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
wait_port "$SY_PORT" || die "switchyard did not start: $(tail -5 "$tmp/switchyard.log")"
[[ -n $HA_PID ]] && { wait_port "$HA_PORT" || die "haproxy did not start: $(tail -5 "$tmp/haproxy.log")"; }

sb() { sysbench --db-driver=mysql --mysql-host=127.0.0.1 --mysql-user="$MARIA_USER" --mysql-password="$MARIA_PASSWORD" --mysql-db="$MARIA_DATABASE" --tables=4 --table-size=10000 "$@"; }
sb --mysql-port="$MARIA_PRIMARY_PORT" --threads=4 oltp_read_only prepare >/dev/null
# Let the replicas replay the load before reading from them.
sleep 3

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# run TEST LABEL PORT PID -> one line: qps, p95 latency, proxy CPU us per query
run() {
  local test=$1 label=$2 port=$3 pid=$4 before after out qps q p95 cpu
  [[ -n $pid ]] && before=$(ticks "$pid")
  out=$(sb --mysql-port="$port" --threads="$C" --time="$T" --percentile=95 "$test" run 2>&1) || true
  [[ -n $pid ]] && after=$(ticks "$pid")
  qps=$(sed -n 's/^ *queries: *[0-9]* *(\([0-9.]*\) per sec.)/\1/p' <<<"$out")
  q=$(sed -n 's/^ *queries: *\([0-9]*\).*/\1/p' <<<"$out")
  p95=$(sed -n 's/^ *95th percentile: *\([0-9.]*\)/\1/p' <<<"$out")
  if [[ -n $pid && -n $q && $q -gt 0 ]]; then
    cpu=$(awk -v d=$((after - before)) -v hz="$HZ" -v q="$q" 'BEGIN { printf "%.1f", d / hz * 1e6 / q }')
  else
    cpu="-"
  fi
  printf '%-18s %-11s round %s  qps %10s  p95 ms %7s  proxy CPU us/query %s\n' "$test" "$label" "$r" "${qps:-?}" "${p95:-?}" "$cpu"
}

echo "sysbench -T $T --threads=$C, 4 tables x 10000 rows, $(nproc) cores; MariaDB primary + 2 replicas on loopback"
for test in oltp_point_select oltp_read_only; do
  for r in $(seq 1 "$ROUNDS"); do
    run "$test" direct "$MARIA_REPLICA1_PORT" ""
    run "$test" switchyard "$SY_PORT" "$SY_PID"
    [[ -n $HA_PID ]] && run "$test" haproxy "$HA_PORT" "$HA_PID"
  done
done
