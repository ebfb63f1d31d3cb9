//! The MySQL front end against a real MariaDB primary with two GTID replicas: login, reads on
//! the replicas by weight, writes and transactions on the primary, session settings replayed
//! across pooled connections, errors as MySQL error codes.

mod common;

use common::mysql::*;
use std::collections::HashMap;
use switchyard_testbed::shared_maria;

fn proxy() -> MyProxy {
    start_mysql_proxy(&mysql_config_for(shared_maria(), &[1, 3], ""))
}

#[test]
fn reads_go_to_replicas_by_weight_and_writes_to_the_primary() {
    let maria = shared_maria();
    let p = proxy();
    let ports: Vec<u16> = maria.nodes().iter().map(|n| n.port).collect();
    // One statement per connection: transaction pooling spreads them, 1:3.
    let mut by_port: HashMap<String, usize> = HashMap::new();
    for _ in 0..40 {
        let out = mariadb(&p, "app", "app", "SELECT @@port, @@read_only").expect("read");
        *by_port.entry(out).or_insert(0) += 1;
    }
    let r1 = by_port
        .get(&format!("{}\t1", ports[1]))
        .copied()
        .unwrap_or(0);
    let r2 = by_port
        .get(&format!("{}\t1", ports[2]))
        .copied()
        .unwrap_or(0);
    assert_eq!(r1 + r2, 40, "every read on a replica: {by_port:?}");
    assert!(
        (5..=15).contains(&r1),
        "weights 1:3 over 40 reads: {by_port:?}"
    );

    // Writes, and reads inside a transaction, run on the primary.
    let out = mariadb(
        &p,
        "app",
        "app",
        "CREATE TABLE IF NOT EXISTS my_route (id INT PRIMARY KEY, v INT); \
         REPLACE INTO my_route VALUES (1, 1); \
         BEGIN; SELECT @@port, @@read_only, (SELECT v FROM my_route WHERE id = 1); COMMIT; \
         SELECT @@port FROM my_route WHERE id = 1 FOR UPDATE",
    )
    .expect("write and transaction");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("{}\t0\t1", ports[0]), "{out}");
    assert_eq!(
        lines[1],
        ports[0].to_string(),
        "locking read on the primary: {out}"
    );
}

#[test]
fn settings_follow_the_session_across_pooled_connections() {
    let p = proxy();
    // Several reads after the SET land on different replicas (and connections): each one
    // must see the session's setting.
    let out = mariadb(
        &p,
        "app",
        "app",
        "SET SESSION sql_mode = 'ANSI_QUOTES'; SELECT @@sql_mode; SELECT @@sql_mode; SELECT @@sql_mode; SELECT @@sql_mode",
    )
    .expect("set and read");
    for line in out.lines() {
        assert_eq!(line, "ANSI_QUOTES", "{out}");
    }
    // A new session starts from the server defaults again.
    let out = mariadb(&p, "app", "app", "SELECT @@sql_mode").expect("read");
    assert_ne!(out, "ANSI_QUOTES");
}

#[test]
fn bad_logins_and_errors_are_mysql_errors() {
    let p = proxy();
    let err = mariadb(&p, "app", "wrong", "SELECT 1").expect_err("wrong password");
    assert!(
        err.contains("1045") && err.contains("Access denied"),
        "{err}"
    );
    let err = mariadb(&p, "nobody", "x", "SELECT 1").expect_err("unknown user");
    assert!(err.contains("1045"), "{err}");
    let err = mariadb(&p, "app", "app", "SELECT * FROM no_such_table").expect_err("missing table");
    assert!(err.contains("1146"), "{err}");
    // The session goes on after an error.
    let out = mariadb(&p, "app", "app", "SELECT * FROM no_such_table; SELECT 1");
    assert!(out.is_err());
    assert_eq!(
        mariadb(&p, "app", "app", "SELECT 41 + 1").expect("still serving"),
        "42"
    );
}

#[test]
fn autocommit_off_keeps_the_session_on_the_primary_until_commit() {
    let maria = shared_maria();
    let p = proxy();
    let primary = maria.nodes()[0].port.to_string();
    let out = mariadb(
        &p,
        "app",
        "app",
        "CREATE TABLE IF NOT EXISTS my_ac (id INT PRIMARY KEY); SET autocommit = 0; \
         REPLACE INTO my_ac VALUES (7); SELECT @@port, (SELECT count(*) FROM my_ac WHERE id = 7); \
         COMMIT; SELECT @@port",
    )
    .expect("autocommit off");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("{primary}\t1"),
        "the open transaction's read: {out}"
    );
    // autocommit = 0 is session state: every statement opens a transaction, so it stays put.
    assert_eq!(lines[1], primary, "{out}");
}

#[test]
fn a_stopped_replica_loses_its_reads() {
    use switchyard_testbed::{MariaCluster, MariaOptions};
    let maria = MariaCluster::start(MariaOptions::default()).expect("start MariaDB");
    let p = start_mysql_proxy(&mysql_config_for(&maria, &[1, 1], ""));
    let r1 = maria.nodes()[1].port.to_string();
    maria.kill(2).expect("kill replica 2");
    // Reads never fail: the first that meets the dead replica is retried on the other.
    for _ in 0..10 {
        let out = mariadb(&p, "app", "app", "SELECT @@port").expect("read");
        assert_eq!(out, r1);
    }
    assert!(
        common::wait_until(std::time::Duration::from_secs(10), || {
            p.ctx.state.load().nodes[2].health == switchyard::cluster::Health::Down
        }),
        "replica not marked down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_async_runs_text_queries_and_transactions() {
    use mysql_async::prelude::*;
    let maria = shared_maria();
    let p = proxy();
    // prefer_socket: mysql_async otherwise reads @@socket and, the server being local,
    // reconnects straight to the replica's unix socket, around the proxy.
    let url = format!(
        "mysql://app:app@127.0.0.1:{}/app?prefer_socket=false",
        p.addr.port()
    );
    let pool = mysql_async::Pool::new(url.as_str());
    let mut c = pool.get_conn().await.expect("connect through the proxy");
    c.query_drop("CREATE TABLE IF NOT EXISTS my_async (id INT PRIMARY KEY, v TEXT)")
        .await
        .expect("ddl");
    c.query_drop("REPLACE INTO my_async VALUES (1, 'one'), (2, 'two')")
        .await
        .expect("insert");
    let mut tx = c
        .start_transaction(mysql_async::TxOpts::default())
        .await
        .expect("begin");
    let rows: Vec<(u16, String)> = tx
        .query("SELECT @@port, v FROM my_async ORDER BY id")
        .await
        .expect("read in the transaction");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|(port, _)| *port == maria.nodes()[0].port));
    tx.commit().await.expect("commit");
    let ro: Option<u8> = c.query_first("SELECT @@read_only").await.expect("read");
    assert_eq!(
        ro,
        Some(1),
        "a read outside the transaction goes to a replica"
    );
    // Binary-protocol prepared statements: mysql_async prepares once per connection and
    // executes many times; the proxy prepares on whichever replica runs each execute.
    let mut ports = std::collections::HashSet::new();
    for i in 0..20i64 {
        let row: Option<(u16, i64)> = c
            .exec_first("SELECT @@port, ? + 1", (i,))
            .await
            .expect("prepared read");
        let (port, v) = row.expect("a row");
        assert_eq!(v, i + 1);
        ports.insert(port);
    }
    let replicas: std::collections::HashSet<u16> =
        maria.nodes()[1..].iter().map(|n| n.port).collect();
    assert_eq!(ports, replicas, "prepared reads spread over both replicas");
    c.exec_drop("REPLACE INTO my_async VALUES (?, ?)", (3, "three"))
        .await
        .expect("prepared write");
    let mut tx = c
        .start_transaction(mysql_async::TxOpts::default())
        .await
        .expect("begin");
    let row: Option<(u16, String)> = tx
        .exec_first("SELECT @@port, v FROM my_async WHERE id = ?", (3,))
        .await
        .expect("prepared read in a transaction");
    assert_eq!(row, Some((maria.nodes()[0].port, "three".to_string())));
    tx.commit().await.expect("commit");
    let one: Option<i64> = c.query_first("SELECT 1").await.expect("session goes on");
    assert_eq!(one, Some(1));
    drop(c);
    pool.disconnect().await.expect("disconnect");
}

#[test]
fn use_switches_the_database_for_later_statements() {
    let maria = shared_maria();
    maria
        .mysql(0, "CREATE DATABASE IF NOT EXISTS app2; GRANT ALL ON app2.* TO 'app'@'%'; CREATE TABLE IF NOT EXISTS app2.only_here (x INT); ")
        .expect("second database");
    maria
        .wait_replicas_caught_up(std::time::Duration::from_secs(10))
        .expect("replicated");
    let p = proxy();
    let out = mariadb(
        &p,
        "app",
        "app",
        "USE app2; SELECT DATABASE(); SELECT count(*) FROM only_here; SELECT DATABASE()",
    )
    .expect("use");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["app2", "0", "app2"],
        "{out}"
    );
}
