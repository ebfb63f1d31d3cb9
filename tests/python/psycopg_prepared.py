#!/usr/bin/env python3
"""psycopg 3 through switchyard: server-side prepared statements and transactions.

Usage: psycopg_prepared.py CONNINFO   (e.g. "host=127.0.0.1 port=P user=app password=app dbname=app")

For each prepare mode (prepare_threshold=0: every statement prepared at once; the default
threshold 5: prepared on the 5th run; None: never prepared) it checks that
- many autocommit reads with varying parameters all run on replicas, spread over both;
- explicit transactions that write and read back run on the primary, and the primary has the
  write after commit (a plain read right after commit is only counted when it misses the
  write: read-your-writes is not implemented yet);
- a READ ONLY transaction runs on one node throughout;
- executemany (pipelined by psycopg) inserts every row;
- cursor.execute(..., prepare=True) works for reads and writes.
Prints a one-line JSON summary; exits 1 with a message on the first failure.
"""

import json
import sys
import time
import uuid

import psycopg

READS = 200
TRANSACTIONS = 5
MANY = 50
REPLICAS = 2
# Routes a statement to the primary (switchyard's hint comment).
PRIMARY = "/* switchyard:primary */ "
MODES = {"threshold_0": 0, "threshold_default": "default", "never_prepared": None}


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def connect(conninfo, threshold, autocommit=True):
    kwargs = {"autocommit": autocommit, "connect_timeout": 10}
    conn = psycopg.connect(conninfo, **kwargs)
    if threshold != "default":
        conn.prepare_threshold = threshold
    return conn


def spread_reads(conn, mode):
    ports = {}
    for i in range(READS):
        n, port, recovery = conn.execute(
            "SELECT %s::int + 1, inet_server_port(), pg_is_in_recovery()", (i,)
        ).fetchone()
        check(n == i + 1, f"{mode}: read {i} returned {n}, expected {i + 1}")
        check(recovery is True, f"{mode}: read {i} ran on port {port}, not a replica")
        ports[port] = ports.get(port, 0) + 1
    check(
        len(ports) == REPLICAS,
        f"{mode}: {READS} reads reached {len(ports)} replica(s), expected {REPLICAS}: {ports}",
    )
    return {str(p): c for p, c in sorted(ports.items())}


def write_transactions(conn, mode, run, primary_ports):
    """Explicit transactions (autocommit connection, BEGIN/COMMIT by conn.transaction()).
    Returns how many plain reads right after a COMMIT did not see it yet."""
    stale = 0
    for k in range(TRANSACTIONS):
        with conn.transaction():
            conn.execute(
                "INSERT INTO psy_t (run, id, v) VALUES (%s, %s, %s)", (run, k, f"{mode}-{k}")
            )
            v, port, recovery = conn.execute(
                "SELECT v, inet_server_port(), pg_is_in_recovery() FROM psy_t "
                "WHERE run = %s AND id = %s",
                (run, k),
            ).fetchone()
            check(recovery is False, f"{mode}: transaction {k} read back on replica {port}")
            check(v == f"{mode}-{k}", f"{mode}: transaction {k} read back {v!r}")
            primary_ports.add(port)
        # After COMMIT the primary has it.
        row = conn.execute(
            f"{PRIMARY}SELECT v, pg_is_in_recovery() FROM psy_t WHERE run = %s AND id = %s",
            (run, k),
        ).fetchone()
        check(row == (f"{mode}-{k}", False), f"{mode}: primary read after commit {k} saw {row}")
        # A plain read right after COMMIT goes to a replica. Read-your-writes (DESIGN.md) is
        # not implemented yet, so a replica that has not replayed the commit is only counted.
        row = conn.execute("SELECT v FROM psy_t WHERE run = %s AND id = %s", (run, k)).fetchone()
        check(row in (None, (f"{mode}-{k}",)), f"{mode}: replica read after commit {k} saw {row}")
        stale += row is None
    return stale


def implicit_transaction(conninfo, threshold, mode, run, primary_ports):
    """A non-autocommit connection: psycopg sends BEGIN before the first statement."""
    with connect(conninfo, threshold, autocommit=False) as conn:
        for k in range(TRANSACTIONS):
            conn.execute("INSERT INTO psy_t (run, id, v) VALUES (%s, %s, %s)", (run, 1000 + k, "i"))
            (count, port, recovery) = conn.execute(
                "SELECT count(*), inet_server_port(), pg_is_in_recovery() FROM psy_t "
                "WHERE run = %s AND id >= 1000",
                (run,),
            ).fetchone()
            check(recovery is False, f"{mode}: implicit transaction read on replica {port}")
            check(count == k + 1, f"{mode}: implicit transaction counted {count}, expected {k + 1}")
            primary_ports.add(port)
            conn.commit()
        # Rolled back: never visible.
        conn.execute("INSERT INTO psy_t (run, id, v) VALUES (%s, %s, %s)", (run, 1999, "gone"))
        conn.rollback()
        (count,) = conn.execute(
            "SELECT count(*) FROM psy_t WHERE run = %s AND id = 1999", (run,)
        ).fetchone()
        check(count == 0, f"{mode}: a rolled-back insert is visible")
        conn.rollback()


def read_only_transaction(conn, mode):
    """BEGIN READ ONLY (psycopg's read_only): one node, whichever, for the whole transaction."""
    conn.read_only = True
    try:
        with conn.transaction():
            rows = [
                conn.execute(
                    "SELECT inet_server_port(), current_setting('transaction_read_only'), %s::int",
                    (i,),
                ).fetchone()
                for i in range(5)
            ]
    finally:
        conn.read_only = None
    ports = {r[0] for r in rows}
    check(len(ports) == 1, f"{mode}: a READ ONLY transaction ran on several nodes: {ports}")
    check(all(r[1] == "on" for r in rows), f"{mode}: READ ONLY transaction was not read only: {rows}")
    return ports.pop()


def execute_many(conn, mode, run):
    rows = [(run, 100 + i, f"many-{i}") for i in range(MANY)]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO psy_t (run, id, v) VALUES (%s, %s, %s)", rows)
        cur.executemany(
            "UPDATE psy_t SET v = v || '!' WHERE run = %s AND id = %s RETURNING id",
            [(run, 100 + i) for i in range(MANY)],
            returning=True,
        )
        ids = []
        while True:
            ids.extend(r[0] for r in cur.fetchall())
            if not cur.nextset():
                break
    check(sorted(ids) == list(range(100, 100 + MANY)), f"{mode}: executemany RETURNING gave {ids}")
    (count,) = conn.execute(
        f"{PRIMARY}SELECT count(*) FROM psy_t "
        "WHERE run = %s AND id >= 100 AND id < %s AND v LIKE '%%!'",
        (run, 100 + MANY),
    ).fetchone()
    check(count == MANY, f"{mode}: executemany left {count} updated rows, expected {MANY}")
    return MANY


def prepare_true(conn, mode, run):
    ports = set()
    with conn.cursor() as cur:
        for i in range(20):
            cur.execute(
                "SELECT %s::text || '-x', inet_server_port(), pg_is_in_recovery()",
                (f"p{i}",),
                prepare=True,
            )
            s, port, recovery = cur.fetchone()
            check(s == f"p{i}-x", f"{mode}: prepare=True read {i} returned {s!r}")
            check(recovery is True, f"{mode}: prepare=True read {i} ran on port {port}, not a replica")
            ports.add(port)
        for i in range(5):
            cur.execute(
                "INSERT INTO psy_t (run, id, v) VALUES (%s, %s, %s) RETURNING pg_is_in_recovery()",
                (run, 500 + i, "prep"),
                prepare=True,
            )
            check(cur.fetchone() == (False,), f"{mode}: prepare=True insert {i} not on the primary")
    return len(ports)


def wait_replicas_see_table(conn, timeout_s=10.0, tries=500):
    """Polls until reads on both replicas find psy_t (bounded in time and count)."""
    seen = set()
    end = time.monotonic() + timeout_s
    for _ in range(tries):
        found, port, recovery = conn.execute(
            "SELECT to_regclass('psy_t') IS NOT NULL, inet_server_port(), pg_is_in_recovery()"
        ).fetchone()
        if found and recovery:
            seen.add(port)
        if len(seen) == REPLICAS or time.monotonic() > end:
            break
        time.sleep(0.02)
    check(len(seen) == REPLICAS, f"setup: psy_t visible on replicas {seen} only")


class Timer:
    """Seconds per phase, for the summary."""

    def __init__(self):
        self.phases = {}
        self.last = time.monotonic()

    def lap(self, phase):
        now = time.monotonic()
        self.phases[phase] = round(now - self.last, 3)
        self.last = now


def run_mode(conninfo, mode, threshold, primary_ports):
    run = f"{mode}-{uuid.uuid4().hex[:12]}"
    t = Timer()
    with connect(conninfo, threshold) as conn:
        t.lap("connect")
        ports = spread_reads(conn, mode)
        t.lap("reads")
        stale = write_transactions(conn, mode, run, primary_ports)
        t.lap("transactions")
        read_only_port = read_only_transaction(conn, mode)
        t.lap("read_only")
        many = execute_many(conn, mode, run)
        t.lap("executemany")
        prep_ports = prepare_true(conn, mode, run)
        t.lap("prepare_true")
        # Reads after all that still spread (prepared statements live on, per server).
        after = spread_reads(conn, mode)
        t.lap("reads_after")
        prepared = conn.prepare_threshold is not None
    implicit_transaction(conninfo, threshold, mode, run, primary_ports)
    t.lap("implicit_transaction")
    return {
        "seconds": t.phases,
        "reads": READS,
        "ports": ports,
        "ports_after": after,
        "transactions": 2 * TRANSACTIONS,
        "stale_reads_after_commit": stale,
        "executemany": many,
        "prepare_true_ports": prep_ports,
        "read_only_tx_port": read_only_port,
        "prepares": prepared,
    }


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    conninfo = sys.argv[1]
    started = time.monotonic()
    summary = {"psycopg": psycopg.__version__, "libpq": psycopg.pq.version(), "modes": {}}
    primary_ports = set()
    mode = "setup"
    try:
        with connect(conninfo, None) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS psy_t (run text, id int, v text, PRIMARY KEY (run, id))"
            )
            wait_replicas_see_table(conn)
        summary["setup_s"] = round(time.monotonic() - started, 3)
        for mode, threshold in MODES.items():
            summary["modes"][mode] = run_mode(conninfo, mode, threshold, primary_ports)
        check(len(primary_ports) == 1, f"writes ran on several primaries: {primary_ports}")
    except Failure as e:
        print(f"psycopg_prepared: FAILED: {e}", file=sys.stderr)
        return 1
    except psycopg.Error as e:
        sqlstate = getattr(e, "sqlstate", None)
        print(
            f"psycopg_prepared: FAILED in {mode}: {type(e).__name__} (SQLSTATE {sqlstate}): {e}",
            file=sys.stderr,
        )
        return 1
    summary["primary_port"] = primary_ports.pop()
    summary["elapsed_s"] = round(time.monotonic() - started, 2)
    summary["ok"] = True
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
