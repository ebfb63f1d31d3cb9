//! The proxy streams: ~1 GiB of COPY FROM STDIN, ~1 GiB of COPY TO STDOUT and a 200 MiB
//! result read by a slow client all pass through a switchyard process whose resident memory
//! stays within RSS_GROWTH_BOUND_KIB of its warmed-up baseline. Each test runs its own proxy
//! process (the real binary), so its RSS and peak (VmHWM) are that test's alone.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::process::{spawn_proxy_process, ProxyProcess};
use common::{config_for, conn_str, connect, where_ran};
use futures_util::{SinkExt, StreamExt};
use std::fmt::Write as _;
use std::future::Future;
use std::time::{Duration, Instant};
use switchyard_testbed::shared_pg;
use tokio_postgres::NoTls;

/// The bound under test: the proxy's RSS may grow at most this much (64 MiB) over its
/// baseline (measured after login and a few queries) while the data streams through it.
/// Buffering a whole COPY or result would take ~1 GiB or 200 MiB.
const RSS_GROWTH_BOUND_KIB: u64 = 64 * 1024;
/// How often the RSS is sampled while data flows.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// Bytes each COPY test moves through the proxy (at least).
const COPY_BYTES: u64 = 1 << 30;
/// Size of each CopyData the client sends.
const CHUNK: usize = 64 * 1024;
/// Width of the text column of every generated row.
const PAYLOAD: usize = 1000;
/// Bound for one whole COPY of COPY_BYTES.
const COPY_TIMEOUT: Duration = Duration::from_secs(240);

fn start() -> ProxyProcess {
    spawn_proxy_process(&config_for(shared_pg(), &[1, 1], ""))
}

/// The proxy's RSS while some work ran: the highest of `samples` readings (KiB).
struct Sampled {
    peak: u64,
    samples: u32,
}

impl Sampled {
    fn take(&mut self, p: &ProxyProcess) {
        self.peak = self.peak.max(p.rss_kib());
        self.samples += 1;
    }
}

/// Runs `work` while sampling the proxy's RSS every SAMPLE_EVERY; returns its output and
/// the samples' peak.
async fn sampled<T>(p: &ProxyProcess, work: impl Future<Output = T>) -> (T, Sampled) {
    tokio::pin!(work);
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut s = Sampled {
        peak: 0,
        samples: 0,
    };
    loop {
        tokio::select! {
            out = &mut work => {
                s.take(p);
                return (out, s);
            }
            _ = tick.tick() => s.take(p),
        }
    }
}

/// Asserts the sampled peak and the kernel's peak (VmHWM, which sampling cannot miss) stay
/// within RSS_GROWTH_BOUND_KIB of `baseline`, and prints them.
fn assert_rss_bounded(p: &ProxyProcess, what: &str, baseline: u64, sampled: &Sampled) {
    let hwm = p.peak_rss_kib();
    let sampled_peak = sampled.peak;
    eprintln!(
        "{what}: proxy RSS baseline {baseline} KiB, peak of {} samples {sampled_peak} KiB \
         (+{} KiB), VmHWM {hwm} KiB (+{} KiB), bound +{RSS_GROWTH_BOUND_KIB} KiB",
        sampled.samples,
        sampled_peak.saturating_sub(baseline),
        hwm.saturating_sub(baseline),
    );
    let limit = baseline + RSS_GROWTH_BOUND_KIB;
    assert!(
        sampled_peak <= limit,
        "{what}: proxy RSS peaked at {sampled_peak} KiB, over baseline {baseline} KiB + {RSS_GROWTH_BOUND_KIB} KiB"
    );
    assert!(
        hwm <= limit,
        "{what}: proxy VmHWM {hwm} KiB, over baseline {baseline} KiB + {RSS_GROWTH_BOUND_KIB} KiB"
    );
}

/// Login plus a few reads on the replicas and the primary, so server connections, buffers
/// and the allocator are warm before the baseline is taken.
async fn warm_up(c: &tokio_postgres::Client) {
    for _ in 0..4 {
        where_ran(c, "").await;
    }
    where_ran(c, "/* switchyard:primary */ ").await;
}

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64().max(1e-9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_of_a_gib_keeps_proxy_memory_bounded() {
    let proxy = start();
    let c = connect(proxy.addr).await;
    warm_up(&c).await;
    // Unlogged: no WAL, so nothing of the 1 GiB is replicated or written twice.
    c.batch_execute(
        "DROP TABLE IF EXISTS copy_mem_in; \
         CREATE UNLOGGED TABLE copy_mem_in (id bigint, payload text)",
    )
    .await
    .expect("create the unlogged table");
    let baseline = proxy.rss_kib();

    let started = Instant::now();
    let work = async {
        let sink = c
            .copy_in("COPY copy_mem_in (id, payload) FROM STDIN")
            .await
            .expect("start COPY FROM STDIN");
        futures_util::pin_mut!(sink);
        let payload = "x".repeat(PAYLOAD);
        let mut buf = BytesMut::with_capacity(CHUNK + PAYLOAD + 32);
        let (mut rows, mut sent) = (0u64, 0u64);
        while sent < COPY_BYTES {
            while buf.len() < CHUNK {
                rows += 1;
                write!(buf, "{rows}\t").expect("format a row");
                buf.put_slice(payload.as_bytes());
                buf.put_u8(b'\n');
            }
            let chunk: Bytes = buf.split().freeze();
            sent += chunk.len() as u64;
            sink.send(chunk).await.expect("send a CopyData chunk");
        }
        let copied = sink.finish().await.expect("finish COPY FROM STDIN");
        (rows, sent, copied)
    };
    let ((rows, sent, copied), peak) = tokio::time::timeout(COPY_TIMEOUT, sampled(&proxy, work))
        .await
        .expect("COPY FROM STDIN finished in time");
    let took = started.elapsed();
    eprintln!(
        "copy in: {sent} bytes, {rows} rows in {took:.1?} ({:.0} MiB/s)",
        mib_per_s(sent, took)
    );
    assert_eq!(copied, rows, "COPY reports every row sent");

    let row = c
        .query_one(
            "/* switchyard:primary */ SELECT count(*), inet_server_port() FROM copy_mem_in",
            &[],
        )
        .await
        .expect("count the copied rows on the primary");
    let (count, port): (i64, i32) = (row.get(0), row.get(1));
    assert_eq!(
        port as u16,
        shared_pg().primary().port,
        "the count ran on the primary"
    );
    assert_eq!(count as u64, rows, "every copied row is in the table");
    c.batch_execute("DROP TABLE copy_mem_in")
        .await
        .expect("drop the table");
    assert_rss_bounded(&proxy, "copy in", baseline, &peak);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_out_of_a_gib_keeps_proxy_memory_bounded() {
    let proxy = start();
    let c = connect(proxy.addr).await;
    warm_up(&c).await;
    let baseline = proxy.rss_kib();

    // Rows "i<TAB>x..x<LF>", enough of them for at least COPY_BYTES; the exact byte count
    // is known in advance.
    let rows = COPY_BYTES / (PAYLOAD as u64 + 2) + 1;
    let expected: u64 = (1..=rows)
        .map(|i| i.to_string().len() as u64 + PAYLOAD as u64 + 2)
        .sum();
    let sql = format!(
        "COPY (SELECT i, repeat('x', {PAYLOAD}) FROM generate_series(1, {rows}) i) TO STDOUT"
    );
    let started = Instant::now();
    let work = async {
        let stream = c.copy_out(&sql).await.expect("start COPY TO STDOUT");
        futures_util::pin_mut!(stream);
        let (mut bytes, mut chunks, mut lines) = (0u64, 0u64, 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("a CopyData chunk");
            bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            chunks += 1;
        }
        (bytes, chunks, lines)
    };
    let ((bytes, chunks, lines), peak) = tokio::time::timeout(COPY_TIMEOUT, sampled(&proxy, work))
        .await
        .expect("COPY TO STDOUT finished in time");
    let took = started.elapsed();
    eprintln!(
        "copy out: {bytes} bytes in {chunks} CopyData, {lines} rows in {took:.1?} ({:.0} MiB/s)",
        mib_per_s(bytes, took)
    );
    assert_eq!(lines, rows, "every row arrived");
    assert_eq!(bytes, expected, "every byte arrived");
    assert_rss_bounded(&proxy, "copy out", baseline, &peak);
}

/// How long the slow client keeps reading before it gives up on the rest.
const SLOW_READ_FOR: Duration = Duration::from_secs(8);
/// Rows of ~1 KB the slow query returns (~200 MiB).
const SLOW_ROWS: u64 = 200_000;
/// Marks the slow query so it can be found in pg_stat_activity.
const SLOW_SQL: &str =
    "SELECT repeat('x', 1000) AS slow_reader_marker FROM generate_series(1, 200000)";

/// Counts the server sessions running SLOW_SQL.
const MARKED_ACTIVE: &str = "SELECT count(*) FROM pg_stat_activity \
    WHERE query LIKE '%slow_reader_marker%' AND pid <> pg_backend_pid() AND state = 'active'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_does_not_make_the_proxy_buffer_its_result() {
    let pg = shared_pg();
    let proxy = start();
    // Its own connection task, to hang up abruptly: dropping only the Client would make
    // tokio-postgres read (and discard) the rest of the result before closing the socket.
    let (c, conn) = tokio_postgres::connect(&conn_str(proxy.addr, "app", "app"), NoTls)
        .await
        .expect("connect through the proxy");
    let conn = tokio::spawn(conn);
    warm_up(&c).await;
    let baseline = proxy.rss_kib();

    // The row stream lives until the client hangs up: dropping it earlier would make
    // tokio-postgres drain the rest of the result at full speed.
    let mut rows = Box::pin(
        c.query_raw(SLOW_SQL, std::iter::empty::<i32>())
            .await
            .expect("start the big query"),
    );
    let work = async {
        let end = Instant::now() + SLOW_READ_FOR;
        let mut read = 0u64;
        // 50 rows (~50 KB) every 100 ms: about 4 MB of the 200 MiB in SLOW_READ_FOR.
        while Instant::now() < end {
            for _ in 0..50 {
                let row = rows
                    .next()
                    .await
                    .expect("the result is not over yet")
                    .expect("a row");
                assert_eq!(row.get::<_, &str>(0).len(), 1000);
                read += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        read
    };
    let (read, peak) = sampled(&proxy, work).await;
    eprintln!("slow reader: read {read} of {SLOW_ROWS} rows in {SLOW_READ_FOR:?}");
    assert!(
        read < SLOW_ROWS,
        "the reader was slow enough to leave rows unread"
    );
    assert_rss_bounded(&proxy, "slow reader", baseline, &peak);
    // Backpressure reaches the server: it waits to write the rest of its result (polled:
    // while the client reads, the server is now and then busy making rows).
    let blocked = |i: usize| {
        pg.psql(
            i,
            &format!("{MARKED_ACTIVE} AND wait_event = 'ClientWrite'"),
        )
        .expect("query pg_stat_activity")
            == "1"
    };
    let blocked = tokio::task::spawn_blocking(move || {
        common::wait_until(Duration::from_secs(5), || {
            (0..pg.nodes().len()).any(blocked)
        })
    })
    .await
    .expect("join the pg_stat_activity poll");
    eprintln!("slow reader: a server blocked in ClientWrite on its result: {blocked}");
    assert!(
        blocked,
        "no server was seen blocked writing the slow query's result (ClientWrite) in 5 s"
    );
    // Gone mid-result: the client's socket closes with most of the result unsent.
    conn.abort();
    let _ = conn.await;
    drop(rows);
    drop(c);

    // The proxy still serves, on every node, with answers that are not the old result's.
    // A named statement: tokio-postgres runs an unnamed one as two round trips (prepare,
    // then execute), which the balancer alternates so every execute lands on one replica.
    let fresh = connect(proxy.addr).await;
    let read = fresh
        .prepare("SELECT $1::int + 1, inet_server_port(), pg_is_in_recovery()")
        .await
        .expect("prepare on a fresh client");
    let mut ports = std::collections::BTreeSet::new();
    for i in 0..8 {
        let row = tokio::time::timeout(Duration::from_secs(10), fresh.query_one(&read, &[&i]))
            .await
            .expect("a fresh client's read answers in time")
            .expect("a fresh client's read");
        assert_eq!(row.get::<_, i32>(0), i + 1);
        assert!(row.get::<_, bool>(2), "a read ran on a replica");
        ports.insert(row.get::<_, i32>(1));
    }
    assert_eq!(ports.len(), 2, "reads still reach both replicas: {ports:?}");
    let (port, in_recovery) = where_ran(&fresh, "/* switchyard:primary */ ").await;
    assert_eq!((port, in_recovery), (pg.primary().port, false));

    // The abandoned query does not run on: the proxy closes (or drains) its server side.
    let active = |i: usize| pg.psql(i, MARKED_ACTIVE).expect("query pg_stat_activity");
    let started = Instant::now();
    let gone = tokio::task::spawn_blocking(move || {
        common::wait_until(Duration::from_secs(10), || {
            (0..pg.nodes().len()).all(|i| active(i) == "0")
        })
    })
    .await
    .expect("join the pg_stat_activity poll");
    eprintln!(
        "slow reader: abandoned query {} after {:.1?}",
        if gone { "gone" } else { "still active" },
        started.elapsed()
    );
    if !gone {
        for i in 0..pg.nodes().len() {
            eprintln!(
                "node {i} sessions of app: {}",
                pg.psql(
                    i,
                    "SELECT string_agg(state || ' ' || coalesce(wait_event, '-') || ' ' || \
                     left(query, 60), E'\\n') FROM pg_stat_activity WHERE usename = 'app'"
                )
                .unwrap_or_else(|e| e.to_string())
            );
        }
        eprintln!("proxy log tail:\n{}", proxy.log_tail(40));
    }
    assert!(
        gone,
        "the abandoned query is still active on a server 10 s after its client left"
    );
}
