//! Losing nodes: reads carry on on the remaining replica (or the primary when none is left), a lost primary gives the client an
//! 08xxx error naming the node while its session stays usable, and nodes that come back are
//! readmitted. Runs its own topology, since it kills nodes.

mod common;

use common::*;
use std::collections::HashSet;
use std::time::Duration;
use switchyard::cluster::Health;
use switchyard_testbed::{PgCluster, PgOptions};

fn health(p: &Proxy, node: usize) -> Health {
    p.ctx.state.load().nodes[node].health
}

async fn read_ports(c: &tokio_postgres::Client, n: usize) -> HashSet<u16> {
    let mut ports = HashSet::new();
    for i in 0..n {
        let rows = c
            .simple_query("SELECT inet_server_port(), pg_is_in_recovery()")
            .await
            .unwrap_or_else(|e| panic!("read {i} failed: {e}"));
        for m in rows {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                assert_eq!(r.get(1), Some("t"));
                ports.insert(r.get(0).unwrap_or("0").parse().unwrap_or(0));
            }
        }
    }
    ports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_loss_and_return() {
    let pg = PgCluster::start(PgOptions::default()).expect("start cluster");
    let p = start_proxy(&config_for(
        &pg,
        &[1, 1],
        "eject_after = 2\nreadmit_after = 2",
    ));
    let (r1, r2) = (pg.nodes()[1].port, pg.nodes()[2].port);
    let c = connect(p.addr).await;
    assert_eq!(read_ports(&c, 20).await, HashSet::from([r1, r2]));

    // A replica dies. Even before the monitor notices, a read that hits it is retried elsewhere.
    pg.kill(2).expect("kill replica");
    let early = read_ports(&c, 10).await;
    assert_eq!(early, HashSet::from([r1]), "reads after the kill");
    assert!(
        wait_until(Duration::from_secs(10), || health(&p, 2) == Health::Down),
        "replica not marked down"
    );
    assert_eq!(read_ports(&c, 50).await, HashSet::from([r1]));
    let fresh = connect(p.addr).await;
    assert_eq!(read_ports(&fresh, 10).await, HashSet::from([r1]));

    // It comes back and is readmitted after readmit_after good probes.
    pg.start_node(2).expect("restart replica");
    assert!(
        wait_until(Duration::from_secs(15), || health(&p, 2) == Health::Up),
        "replica not readmitted"
    );
    assert_eq!(read_ports(&c, 20).await, HashSet::from([r1, r2]));

    // With no replica left, reads fall back to the primary (logged), without errors.
    pg.kill(1).expect("kill replica 1");
    pg.kill(2).expect("kill replica 2");
    assert!(
        wait_until(Duration::from_secs(10), || health(&p, 1) == Health::Down
            && health(&p, 2) == Health::Down),
        "replicas not marked down"
    );
    for _ in 0..10 {
        let (port, in_recovery) = where_ran(&c, "").await;
        assert_eq!((port, in_recovery), (pg.nodes()[0].port, false));
    }
    pg.start_node(1).expect("restart replica 1");
    pg.start_node(2).expect("restart replica 2");
    assert!(
        wait_until(Duration::from_secs(15), || health(&p, 1) == Health::Up
            && health(&p, 2) == Health::Up),
        "replicas not readmitted"
    );
    assert_eq!(read_ports(&c, 10).await, HashSet::from([r1, r2]));

    // The primary dies: a write fails with an 08xxx error naming it, the session stays usable.
    c.batch_execute("CREATE TABLE loss_t (v int)")
        .await
        .expect("ddl");
    // ...with a transaction open on it, which is lost with it.
    c.batch_execute("BEGIN; INSERT INTO loss_t VALUES (0)")
        .await
        .expect("open a transaction");
    pg.kill(0).expect("kill primary");
    let err = c
        .execute("INSERT INTO loss_t VALUES (1)", &[])
        .await
        .expect_err("primary is gone");
    let db = err.as_db_error().expect("a server-style error");
    assert!(db.code().code().starts_with("08"), "{db:?}");
    assert!(db.message().contains("pg0"), "{}", db.message());
    assert_eq!(read_ports(&c, 5).await.len(), 2, "reads carry on");
    pg.start_node(0).expect("restart primary");
    assert!(
        wait_until(Duration::from_secs(15), || health(&p, 0) == Health::Up),
        "primary not readmitted"
    );
    c.execute("INSERT INTO loss_t VALUES (2)", &[])
        .await
        .expect("writes work again on the same session");
    let row = c
        .query_one(
            "/* switchyard:primary */ SELECT count(*) FILTER (WHERE v = 0), count(*) FROM loss_t",
            &[],
        )
        .await
        .expect("count");
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (0, 1),
        "the lost transaction left nothing"
    );
}

/// A server process crash makes PostgreSQL end every connection with WARNING 57P02: client
/// traffic that sees it takes the node out at once (the monitor readmits it after recovery).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_shutdown_seen_by_client_traffic_takes_the_node_out() {
    use switchyard::cluster::events::EventKind;
    let pg = PgCluster::start(PgOptions::default()).expect("start cluster");
    let p = start_proxy(&config_for(&pg, &[1, 0], "eject_after = 5"));
    let c = connect(p.addr).await;
    // A read on pg1 (pg2 has weight 0) that is still running when a backend there crashes.
    let reader = tokio::spawn(async move { c.simple_query("SELECT pg_sleep(5)").await });
    let victim = wait_until(Duration::from_secs(5), || {
        pg.psql(
            1,
            "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)'",
        )
        .is_ok_and(|n| n == "1")
    });
    assert!(victim, "the read did not reach pg1");
    let pid = pg
        .psql(
            1,
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'",
        )
        .ok();
    // Kill another backend (not the one running the read) with SIGKILL: the postmaster
    // then ends all connections with 57P02 and reinitialises.
    let other = pg
        .psql(1, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND query <> 'SELECT pg_sleep(5)' AND pid <> pg_backend_pid() LIMIT 1")
        .ok()
        .filter(|s| !s.is_empty());
    let target = other.or(pid).expect("a process to kill");
    let status = std::process::Command::new("kill")
        .args(["-9", &target])
        .status()
        .expect("kill");
    assert!(status.success());
    let r = reader.await.expect("reader task");
    assert!(r.is_err(), "the read was cut by the crash");
    assert!(
        wait_until(Duration::from_secs(5), || p
            .ctx
            .state
            .events
            .count(EventKind::NodeDown)
            >= 1),
        "client traffic did not take pg1 out"
    );
    assert!(
        wait_until(Duration::from_secs(20), || health(&p, 1) == Health::Up),
        "pg1 not readmitted after recovery"
    );
}
