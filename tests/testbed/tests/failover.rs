//! The failover controls against real PostgreSQL 15: promotion, re-pointing a replica at
//! the new primary, WAL replay pause and synchronous standbys.

use std::time::{Duration, Instant};

use switchyard_testbed::{PgCluster, PgOptions};
use tokio_postgres::{Client, NoTls};

const WAIT: Duration = Duration::from_secs(30);
/// How soon a row written on a primary must show up on a replica streaming from it.
const ROW_WAIT: Duration = Duration::from_secs(10);

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

fn cluster(replicas: usize) -> PgCluster {
    PgCluster::start(PgOptions {
        replicas,
        ..PgOptions::default()
    })
    .expect("start a primary with replicas")
}

/// Polls `sql` on node `i` until it prints `want`; panics with the last answer after `within`.
fn wait_for(pg: &PgCluster, i: usize, sql: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = pg.psql(i, sql);
        if matches!(&got, Ok(out) if out == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {i}: {sql:?} gave {got:?}, not {want:?}, within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The SQL that is true once replica `name` streams from the node it runs on as replicator.
fn streams_as_replicator(name: &str) -> String {
    format!(
        "SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = '{name}' \
         AND usename = 'replicator' AND state = 'streaming'"
    )
}

#[tokio::test]
async fn promote_makes_a_replica_accept_writes() {
    let pg = cluster(1);
    assert!(pg.is_in_recovery(1).expect("recovery state"));
    assert_eq!(pg.current_primary().expect("primary"), 0);
    let started = Instant::now();
    pg.promote(1).expect("promote");
    assert!(started.elapsed() < WAIT);
    assert!(!pg.is_in_recovery(1).expect("recovery state"));
    let client = connect(&pg.app_url(1)).await;
    client
        .batch_execute("CREATE TABLE promoted (x int); INSERT INTO promoted VALUES (1);")
        .await
        .expect("the promoted node accepts writes");
    assert!(!pg.current_lsn(1).expect("lsn").is_empty());
    pg.stop(0).expect("stop the old primary");
    assert_eq!(pg.current_primary().expect("primary"), 1);
    let err = pg
        .promote(1)
        .expect_err("a primary cannot be promoted again");
    assert!(
        err.to_string().contains("recovery is not in progress"),
        "{err}"
    );
}

#[test]
fn a_replica_repointed_by_hand_streams_from_the_promoted_node() {
    let pg = cluster(2);
    pg.psql(0, "CREATE TABLE moved (x int)").expect("create");
    pg.wait_replicas_caught_up(WAIT).expect("catch up");
    pg.stop(0).expect("stop the old primary");
    pg.promote(1).expect("promote");

    let old = pg.psql(2, "SHOW primary_conninfo").expect("conninfo");
    let from = format!("port={}", pg.nodes()[0].port);
    let to = format!("port={}", pg.nodes()[1].port);
    assert!(old.contains(&from), "{old}");
    let new = old.replace(&from, &to);
    pg.psql(1, "SELECT pg_create_physical_replication_slot('pg2', true)")
        .expect("slot on the new primary");
    pg.psql(
        2,
        &format!(
            "ALTER SYSTEM SET primary_conninfo = '{}';\nSELECT pg_reload_conf();",
            new.replace('\'', "''")
        ),
    )
    .expect("re-point");

    pg.psql(1, "INSERT INTO moved VALUES (42)").expect("write");
    wait_for(
        &pg,
        2,
        "SELECT count(*) FROM moved WHERE x = 42",
        "1",
        ROW_WAIT,
    );
    wait_for(&pg, 1, &streams_as_replicator("pg2"), "t", WAIT);
    assert!(pg.is_in_recovery(2).expect("recovery state"));
    // The helper does the same thing, so repeating it changes nothing.
    pg.repoint(2, 1).expect("repoint again");
    assert_eq!(pg.psql(2, "SHOW primary_conninfo").expect("conninfo"), new);
}

#[test]
fn repoint_follows_a_new_primary() {
    let pg = cluster(2);
    pg.psql(0, "CREATE TABLE moved (x int)").expect("create");
    pg.wait_replicas_caught_up(WAIT).expect("catch up");
    pg.stop(0).expect("stop the old primary");
    pg.promote(2).expect("promote");
    pg.repoint(1, 2).expect("re-point pg1 at pg2");
    pg.psql(2, "INSERT INTO moved VALUES (7)").expect("write");
    wait_for(
        &pg,
        1,
        "SELECT count(*) FROM moved WHERE x = 7",
        "1",
        ROW_WAIT,
    );
    wait_for(&pg, 2, &streams_as_replicator("pg1"), "t", WAIT);
    let slot = "SELECT active FROM pg_replication_slots WHERE slot_name = 'pg1'";
    wait_for(&pg, 2, slot, "t", WAIT);
    pg.wait_replicas_caught_up(WAIT)
        .expect("caught up with the new primary");
}

#[test]
fn paused_replay_holds_rows_back_until_resumed() {
    let pg = cluster(1);
    pg.psql(0, "CREATE TABLE held (x int)").expect("create");
    pg.wait_replicas_caught_up(WAIT).expect("catch up");
    pg.pause_replay(1).expect("pause replay");
    pg.psql(0, "INSERT INTO held VALUES (1)").expect("write");
    let lsn = pg.current_lsn(0).expect("primary lsn");
    let received = format!("SELECT pg_last_wal_receive_lsn() >= '{lsn}'::pg_lsn");
    wait_for(&pg, 1, &received, "t", WAIT);
    assert_eq!(pg.psql(1, "SELECT count(*) FROM held").expect("read"), "0");
    let replayed = pg.replay_lsn(1).expect("replay lsn");
    let behind = format!("SELECT '{replayed}'::pg_lsn < '{lsn}'::pg_lsn");
    assert_eq!(pg.psql(1, &behind).expect("compare"), "t");

    pg.resume_replay(1).expect("resume replay");
    wait_for(&pg, 1, "SELECT count(*) FROM held", "1", ROW_WAIT);
    assert!(
        pg.pause_replay(0).is_err(),
        "a primary has no replay to pause"
    );
}

#[tokio::test]
async fn synchronous_commits_wait_for_the_named_standby() {
    let pg = cluster(1);
    pg.psql(0, "CREATE TABLE synced (x int)").expect("create");
    pg.set_synchronous_on(0, &["pg1"])
        .expect("make pg1 synchronous");
    assert_eq!(
        pg.psql(0, "SHOW synchronous_standby_names").expect("show"),
        r#"FIRST 1 ("pg1")"#
    );
    pg.psql(0, "INSERT INTO synced VALUES (1)")
        .expect("a commit with the standby up");

    // With the synchronous standby frozen, a commit waits for it...
    pg.pause(1).expect("freeze pg1");
    let client = connect(&pg.app_url(0)).await;
    let mut commit =
        tokio::spawn(async move { client.batch_execute("INSERT INTO synced VALUES (2)").await });
    let early = tokio::time::timeout(Duration::from_millis(500), &mut commit).await;
    assert!(early.is_err(), "the commit must wait for pg1");
    assert_eq!(
        pg.psql(0, "SELECT count(*) FROM synced").expect("read"),
        "1"
    );

    // ...until synchronous replication is switched off.
    pg.set_synchronous(&[])
        .expect("clear synchronous_standby_names");
    tokio::time::timeout(ROW_WAIT, commit)
        .await
        .expect("the commit is released")
        .expect("task")
        .expect("insert");
    assert_eq!(
        pg.psql(0, "SELECT count(*) FROM synced").expect("read"),
        "2"
    );
    pg.resume(1).expect("thaw pg1");
}
