//! Read/write splitting through the proxy against a real primary and two streaming replicas.

mod common;

use common::*;
use std::collections::HashMap;
use std::time::Duration;
use switchyard_testbed::shared_pg;

fn ports() -> (u16, u16, u16) {
    let n = shared_pg().nodes();
    (n[0].port, n[1].port, n[2].port)
}

#[tokio::test]
async fn autocommit_selects_hit_replicas_by_weight() {
    let p = shared_proxy();
    let c = connect(p.addr).await;
    let (primary, r1, r2) = ports();
    let mut by_port: HashMap<u16, u32> = HashMap::new();
    for _ in 0..100 {
        // Simple protocol, so each statement is routed on its own.
        let rows = c
            .simple_query("SELECT inet_server_port(), pg_is_in_recovery()")
            .await
            .expect("select");
        let row = rows
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .expect("a row");
        assert_eq!(row.get(1), Some("t"), "a read ran on the primary");
        *by_port
            .entry(row.get(0).expect("port").parse().expect("port"))
            .or_default() += 1;
    }
    assert_eq!(by_port.get(&primary), None);
    // Weights 1:3 over 100 reads: smooth weighted round robin gives 25/75; allow +-5.
    let (a, b) = (
        by_port.get(&r1).copied().unwrap_or(0),
        by_port.get(&r2).copied().unwrap_or(0),
    );
    assert!(
        (20..=30).contains(&a) && (70..=80).contains(&b),
        "split {a}:{b}"
    );
}

#[tokio::test]
async fn writes_ddl_locks_and_side_effects_go_to_the_primary() {
    let p = shared_proxy();
    let c = connect(p.addr).await;
    let primary = ports().0 as i32;
    c.batch_execute(
        "DROP TABLE IF EXISTS rw_t; CREATE TABLE rw_t (id serial PRIMARY KEY, v text); CREATE SEQUENCE IF NOT EXISTS rw_seq",
    )
    .await
    .expect("ddl on the primary");
    let row = c
        .query_one(
            "INSERT INTO rw_t (v) VALUES ('a') RETURNING inet_server_port()",
            &[],
        )
        .await
        .expect("insert");
    assert_eq!(row.get::<_, i32>(0), primary);
    let n = c
        .execute("UPDATE rw_t SET v = 'b' WHERE v = 'a'", &[])
        .await
        .expect("update");
    assert_eq!(n, 1);
    // On a replica these fail with 25006, so success proves they reached the primary.
    c.query_one("SELECT nextval('rw_seq')", &[])
        .await
        .expect("nextval on primary");
    let row = c
        .query_one(
            "SELECT inet_server_port() FROM rw_t WHERE v = 'b' FOR UPDATE",
            &[],
        )
        .await
        .expect("for update on primary");
    assert_eq!(row.get::<_, i32>(0), primary);
    let row = c
        .query_one("SELECT inet_server_port() FROM rw_t FOR NO KEY UPDATE", &[])
        .await
        .expect("for no key update");
    assert_eq!(row.get::<_, i32>(0), primary);
    let n = c.execute("DELETE FROM rw_t", &[]).await.expect("delete");
    assert_eq!(n, 1);
    // A multi-statement simple query that writes anywhere goes to the primary.
    c.batch_execute("SELECT 1; INSERT INTO rw_t (v) VALUES ('multi')")
        .await
        .expect("multi");
    // A hint overrides the classifier.
    let (port, rec) = where_ran(&c, "/* switchyard:primary */ ").await;
    assert_eq!((port as i32, rec), (primary, false));
}

#[tokio::test]
async fn a_transaction_stays_on_one_node_and_sees_its_writes() {
    let p = shared_proxy();
    let c = connect(p.addr).await;
    let primary = ports().0;
    c.batch_execute("CREATE TABLE IF NOT EXISTS tx_t (v int)")
        .await
        .expect("ddl");
    c.batch_execute("BEGIN").await.expect("begin");
    c.execute("INSERT INTO tx_t VALUES (42)", &[])
        .await
        .expect("insert");
    let row = c
        .query_one(
            "SELECT count(*), inet_server_port() FROM tx_t WHERE v = 42",
            &[],
        )
        .await
        .expect("read own write");
    assert!(row.get::<_, i64>(0) >= 1);
    assert_eq!(row.get::<_, i32>(1) as u16, primary);
    for _ in 0..5 {
        assert_eq!(where_ran(&c, "").await, (primary, false));
    }
    c.batch_execute("COMMIT").await.expect("commit");

    c.batch_execute("BEGIN READ ONLY")
        .await
        .expect("begin read only");
    let first = where_ran(&c, "").await;
    assert!(first.1, "a READ ONLY transaction runs on a replica");
    for _ in 0..5 {
        assert_eq!(where_ran(&c, "").await, first, "the transaction moved");
    }
    c.batch_execute("COMMIT").await.expect("commit");
}

#[tokio::test]
async fn set_state_follows_the_client_across_backends() {
    let p = shared_proxy();
    let pg = shared_pg();
    let c = connect(p.addr).await;
    c.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS s_path; CREATE TABLE IF NOT EXISTS s_path.only_here (x int)",
    )
    .await
    .expect("schema");
    pg.wait_replicas_caught_up(Duration::from_secs(10))
        .expect("replicas catch up");
    c.batch_execute("SET search_path TO s_path, public")
        .await
        .expect("set search_path");
    c.batch_execute("SET application_name = 'switchyard-test'")
        .await
        .expect("set application_name");
    let mut ports = std::collections::HashSet::new();
    for _ in 0..12 {
        let rows = c
            .simple_query("SELECT current_setting('application_name'), current_setting('search_path'), inet_server_port(), (SELECT count(*) FROM only_here)")
            .await
            .expect("read with the session's settings");
        let row = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        });
        if let Some(r) = row {
            assert_eq!(r.get(0), Some("switchyard-test"));
            assert_eq!(r.get(1), Some("s_path, public"));
            ports.insert(r.get(2).unwrap_or("").to_string());
        } else {
            panic!("no row");
        }
    }
    assert_eq!(
        ports.len(),
        2,
        "reads should reach both replicas: {ports:?}"
    );
    let row = c
        .query_one(
            "INSERT INTO only_here VALUES (1) RETURNING current_setting('application_name')",
            &[],
        )
        .await
        .expect("write on the primary with the settings");
    assert_eq!(row.get::<_, String>(0), "switchyard-test");
    c.batch_execute("RESET application_name")
        .await
        .expect("reset");
    let row = c
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .expect("read");
    assert_eq!(row.get::<_, String>(0), "");
}

#[tokio::test]
async fn a_named_prepared_statement_spreads_across_replicas() {
    let p = shared_proxy();
    let c = connect(p.addr).await;
    let (_, r1, r2) = ports();
    let stmt = c
        .prepare("SELECT inet_server_port(), pg_is_in_recovery()")
        .await
        .expect("prepare");
    let mut by_port: HashMap<u16, u32> = HashMap::new();
    for _ in 0..50 {
        let row = c.query_one(&stmt, &[]).await.expect("execute");
        assert!(row.get::<_, bool>(1));
        *by_port.entry(row.get::<_, i32>(0) as u16).or_default() += 1;
    }
    assert!(
        by_port.get(&r1).copied().unwrap_or(0) > 0 && by_port.get(&r2).copied().unwrap_or(0) > 0,
        "{by_port:?}"
    );
    // One-off statements (prepare, then execute: two round trips each) spread too.
    let mut ports = std::collections::HashSet::new();
    for _ in 0..10 {
        let row = c
            .query_one("SELECT inet_server_port()", &[])
            .await
            .expect("one-off");
        ports.insert(row.get::<_, i32>(0) as u16);
    }
    assert_eq!(
        ports,
        std::collections::HashSet::from([r1, r2]),
        "one-off reads stuck to one replica"
    );
    // A parameterised one, too, re-prepared wherever it lands.
    let stmt = c.prepare("SELECT $1::int + 1").await.expect("prepare");
    for i in 0..10 {
        let row = c.query_one(&stmt, &[&i]).await.expect("execute");
        assert_eq!(row.get::<_, i32>(0), i + 1);
    }
}

#[tokio::test]
async fn pipelined_extended_queries_keep_order() {
    let p = shared_proxy();
    let c = connect(p.addr).await;
    c.batch_execute("CREATE TABLE IF NOT EXISTS pipe_t (v int)")
        .await
        .expect("ddl");
    let primary = ports().0 as i32;
    // tokio-postgres pipelines requests polled together.
    let q1 = c.query_one("SELECT 1::int, pg_is_in_recovery()", &[]);
    let q2 = c.query_one(
        "INSERT INTO pipe_t VALUES (2) RETURNING v, inet_server_port()",
        &[],
    );
    let q3 = c.query_one("SELECT 3::int, pg_is_in_recovery()", &[]);
    let (a, b, d) = futures_util::join!(q1, q2, q3);
    let (a, b, d) = (a.expect("q1"), b.expect("q2"), d.expect("q3"));
    assert_eq!(a.get::<_, i32>(0), 1);
    assert_eq!((b.get::<_, i32>(0), b.get::<_, i32>(1)), (2, primary));
    assert_eq!(d.get::<_, i32>(0), 3);
}

#[tokio::test]
async fn state_that_cannot_be_replayed_pins_to_the_primary() {
    let p = shared_proxy();
    let c = connect(p.addr).await;
    let primary = ports().0;
    c.batch_execute("CREATE TEMP TABLE pin_me (x int)")
        .await
        .expect("temp table");
    c.batch_execute("INSERT INTO pin_me VALUES (1)")
        .await
        .expect("insert");
    for _ in 0..5 {
        let row = c
            .query_one("SELECT count(*), inet_server_port() FROM pin_me", &[])
            .await
            .expect("read temp");
        assert_eq!(row.get::<_, i64>(0), 1);
        assert_eq!(row.get::<_, i32>(1) as u16, primary);
    }
}

#[tokio::test]
async fn cancel_reaches_the_running_query() {
    let p = shared_proxy();
    let c = connect(p.addr).await;
    let token = c.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await
    });
    let err = c
        .simple_query("SELECT pg_sleep(20)")
        .await
        .expect_err("cancelled");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{err}"
    );
    canceller.await.expect("join").expect("cancel sent");
    // The session is still usable.
    where_ran(&c, "").await;
}

#[tokio::test]
async fn copy_from_stdin_and_to_stdout() {
    use futures_util::SinkExt;
    let p = shared_proxy();
    let c = connect(p.addr).await;
    c.batch_execute("DROP TABLE IF EXISTS copy_t; CREATE TABLE copy_t (a int, b text)")
        .await
        .expect("ddl");
    let sink = c.copy_in("COPY copy_t FROM STDIN").await.expect("copy in");
    let mut sink = Box::pin(sink);
    let mut data = String::new();
    for i in 0..1000 {
        data += &format!("{i}\tv{i}\n");
    }
    sink.send(bytes::Bytes::from(data)).await.expect("send");
    let n = sink.as_mut().finish().await.expect("finish");
    assert_eq!(n, 1000);
    let row = c
        .query_one("/* switchyard:primary */ SELECT count(*) FROM copy_t", &[])
        .await
        .expect("count");
    assert_eq!(row.get::<_, i64>(0), 1000);
}
