//! Replication lag and read-your-writes against a real primary and two streaming replicas:
//! the monitor's LSN and lag figures, a paused replica losing its reads past `max_lag_bytes`
//! and getting them back, and exact read-your-writes in lsn and window modes. Each test runs
//! its own topology, since it pauses replay.

mod common;

use common::*;
use std::collections::HashMap;
use std::time::Duration;
use switchyard_testbed::{PgCluster, PgOptions};

fn node(p: &Proxy, i: usize) -> switchyard::cluster::NodeState {
    p.ctx.state.load().nodes[i].clone()
}

/// Where `n` reads of `SELECT inet_server_port()` ran, by port.
async fn read_spread(c: &tokio_postgres::Client, n: usize) -> HashMap<u16, usize> {
    let mut spread = HashMap::new();
    for _ in 0..n {
        let (port, _) = where_ran(c, "").await;
        *spread.entry(port).or_insert(0) += 1;
    }
    spread
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_replica_loses_its_reads_past_max_lag_and_gets_them_back() {
    let pg = PgCluster::start(PgOptions::default()).expect("start cluster");
    let p = start_proxy(&config_for(
        &pg,
        &[1, 1],
        "max_lag_bytes = 262144\nslow_start = \"0s\"",
    ));
    let (r1, r2) = (pg.nodes()[1].port, pg.nodes()[2].port);
    let c = connect(p.addr).await;
    c.batch_execute("CREATE TABLE lag_t (id int, pad text)")
        .await
        .expect("ddl");

    // The monitor publishes positions, lag and timelines.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (p0, p1) = (node(&p, 0), node(&p, 1));
            p0.lsn > 0
                && p0.timeline == Some(1)
                && p1.lag_bytes.is_some()
                && p1.lag_seconds.is_some()
        }),
        "lag figures not published: {:?}",
        p.ctx.state.load().nodes
    );
    let spread = read_spread(&c, 20).await;
    assert_eq!(spread.len(), 2, "both replicas read: {spread:?}");

    pg.psql(2, "SELECT pg_wal_replay_pause()")
        .expect("pause replay");
    // About 2 MB of WAL while pg2 does not replay it.
    c.batch_execute(
        "INSERT INTO lag_t SELECT g, repeat('x', 1000) FROM generate_series(1, 2000) g",
    )
    .await
    .expect("write load");
    assert!(
        wait_until(Duration::from_secs(10), || node(&p, 2).lagging),
        "paused replica not taken out: {:?}",
        node(&p, 2)
    );
    let lag = node(&p, 2).lag_bytes.unwrap_or(0);
    assert!(lag > 262_144, "lag {lag}");
    assert_eq!(node(&p, 2).not_serving_reason(), Some("lagging"));
    let spread = read_spread(&c, 20).await;
    assert_eq!(
        spread.get(&r1),
        Some(&20),
        "reads avoid the lagging replica: {spread:?}"
    );

    pg.psql(2, "SELECT pg_wal_replay_resume()")
        .expect("resume replay");
    assert!(
        wait_until(Duration::from_secs(10), || !node(&p, 2).lagging),
        "replica not taken back: {:?}",
        node(&p, 2)
    );
    let spread = read_spread(&c, 20).await;
    assert!(
        spread.get(&r2).is_some_and(|n| *n > 0),
        "reads return: {spread:?}"
    );
    let events = &p.ctx.state.events;
    use switchyard::cluster::events::EventKind;
    assert_eq!(events.count(EventKind::LagEjected), 1);
    assert_eq!(events.count(EventKind::LagReadmitted), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_your_writes_lsn_and_window() {
    let pg = PgCluster::start(PgOptions::default()).expect("start cluster");
    let p = start_proxy(&config_for(
        &pg,
        &[1, 1],
        "read_your_writes = \"lsn\"\nread_your_writes_wait = \"50ms\"",
    ));
    let (primary, r1, r2) = (pg.nodes()[0].port, pg.nodes()[1].port, pg.nodes()[2].port);
    let c = connect(p.addr).await;
    c.batch_execute("CREATE TABLE ryw (id int PRIMARY KEY, v int)")
        .await
        .expect("ddl");
    pg.psql(2, "SELECT pg_wal_replay_pause()")
        .expect("pause replay");

    // 1,000 write-then-read pairs, simple and extended protocol alternating.
    let mut ran: HashMap<u16, usize> = HashMap::new();
    let mut stale = 0;
    for i in 0..1000i32 {
        let (port, found) = if i % 2 == 0 {
            c.batch_execute(&format!("INSERT INTO ryw VALUES ({i}, {i})"))
                .await
                .expect("insert");
            let rows = c
                .simple_query(&format!(
                    "SELECT inet_server_port(), (SELECT count(*) FROM ryw WHERE id = {i})"
                ))
                .await
                .expect("read");
            let row = rows
                .iter()
                .find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some((
                        r.get(0).unwrap_or("0").parse::<u16>().unwrap_or(0),
                        r.get(1) == Some("1"),
                    )),
                    _ => None,
                })
                .expect("a row");
            row
        } else {
            c.execute("INSERT INTO ryw VALUES ($1, $1)", &[&i])
                .await
                .expect("insert");
            let row = c
                .query_one(
                    "SELECT inet_server_port(), (SELECT count(*) FROM ryw WHERE id = $1)",
                    &[&i],
                )
                .await
                .expect("read");
            (row.get::<_, i32>(0) as u16, row.get::<_, i64>(1) == 1)
        };
        if !found {
            stale += 1;
        }
        *ran.entry(port).or_insert(0) += 1;
    }
    println!("read-your-writes (lsn): reads by port {ran:?} (primary {primary}, replicas {r1}, {r2 } paused)");
    assert_eq!(stale, 0, "stale reads");
    assert_eq!(ran.get(&r2), None, "the paused replica got reads");
    assert!(
        ran.get(&r1).is_some_and(|n| *n > 0),
        "the live replica should take some reads: {ran:?}"
    );
    pg.psql(2, "SELECT pg_wal_replay_resume()")
        .expect("resume replay");

    // Window mode: right after a write, reads go to the primary; after the window, replicas.
    let w = start_proxy(&config_for(
        &pg,
        &[1, 1],
        "read_your_writes = \"window\"\nread_your_writes_window = \"700ms\"",
    ));
    let c = connect(w.addr).await;
    c.batch_execute("INSERT INTO ryw VALUES (100000, 1)")
        .await
        .expect("insert");
    assert_eq!(
        where_ran(&c, "").await,
        (primary, false),
        "inside the window"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(where_ran(&c, "").await.1, "after the window: a replica");
}
