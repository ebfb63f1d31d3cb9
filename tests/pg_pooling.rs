//! Transaction pooling against the real cluster: many clients share a few server connections,
//! session state and prepared statements survive moving between them, and nothing leaks from
//! one client to the next.

mod common;

use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use switchyard_testbed::shared_pg;
use tokio_postgres::{AsyncMessage, NoTls};

/// A proxy with small pools, so sharing is forced.
fn small_pool_proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| {
        // md5 keeps a thousand logins cheap for the test's own clients (SCRAM's PBKDF2 is slow
        // in a debug build); the proxy's side of either is cheap.
        // The crowd logs in as a user of its own, so the servers' view of its connections is exact.
        let pg = shared_pg();
        ensure_role("crowd");
        let extra = "auth = \"md5\"\npool_size = 20\npool_timeout = \"30s\"";
        let text = config_for(pg, &[1, 1], extra).replace(
            "startup_timeout = \"2s\"",
            "startup_timeout = \"60s\"\nmax_client_connections = 5000",
        );
        start_proxy(&with_user(&text, "crowd", ""))
    })
}

/// A proxy whose every pool has one connection: consecutive clients get the same server.
fn single_conn_proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| {
        start_proxy(&config_for(
            shared_pg(),
            &[1, 1],
            "pool_size = 1\npool_timeout = \"20s\"",
        ))
    })
}

/// Server connections of database app per node, as the servers see them.
fn server_connections() -> Vec<usize> {
    let pg = shared_pg();
    (0..pg.nodes().len())
        .map(|i| {
            pg.psql(
                i,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' AND usename = 'crowd'",
            )
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_share_twenty_connections_per_node() {
    let p = small_pool_proxy();
    let c = connect(p.addr).await;
    c.batch_execute("CREATE TABLE IF NOT EXISTS pool_t (id int PRIMARY KEY, n int); INSERT INTO pool_t VALUES (1, 0) ON CONFLICT DO NOTHING; GRANT ALL ON pool_t TO crowd")
        .await
        .expect("setup");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = vec![0; 3];
            while !stop.load(Ordering::Relaxed) {
                for (i, n) in server_connections().into_iter().enumerate() {
                    peak[i] = peak[i].max(n);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        })
    };
    let errors = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let (errors, done, addr) = (errors.clone(), done.clone(), p.addr);
        tasks.push(tokio::spawn(async move {
            let (client, conn) = match tokio_postgres::connect(&conn_str(addr, "crowd", "crowd"), NoTls).await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("client {i}: connect: {e:?}");
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            tokio::spawn(conn);
            for round in 0..3 {
                let r = if (i + round) % 3 == 0 {
                    client
                        .batch_execute("BEGIN; UPDATE pool_t SET n = n + 1 WHERE id = 1; SELECT pg_sleep(0.01); COMMIT")
                        .await
                } else {
                    client.simple_query("SELECT pg_sleep(0.005), pg_is_in_recovery()").await.map(|_| ())
                };
                if let Err(e) = r {
                    eprintln!("client {i} round {round}: {e:?}");
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            done.fetch_add(1, Ordering::Relaxed);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    stop.store(true, Ordering::Relaxed);
    let peak = watcher.join().expect("watcher");
    eprintln!(
        "1000 clients, 3 transactions each, in {:?}; peak server connections per node {peak:?}",
        started.elapsed()
    );
    assert_eq!(errors.load(Ordering::Relaxed), 0);
    assert_eq!(done.load(Ordering::Relaxed), 1000);
    for (i, n) in peak.iter().enumerate() {
        assert!(*n <= 20, "node {i} reached {n} server connections");
    }
    assert_eq!(peak[0], 20, "the primary's pool was used to its limit");
    let row = c
        .query_one(
            "/* switchyard:primary */ SELECT n FROM pool_t WHERE id = 1",
            &[],
        )
        .await
        .expect("count");
    assert!(row.get::<_, i32>(0) >= 333);
}

#[tokio::test]
async fn pgbench_prepared_with_fifty_clients_through_transaction_pooling() {
    let p = small_pool_proxy();
    pgbench(p, &["-i", "-q"]);
    let text = pgbench(
        p,
        &[
            "-n", "-S", "-M", "prepared", "-c", "50", "-j", "2", "-T", "5",
        ],
    );
    assert!(text.contains("number of failed transactions: 0"), "{text}");
}

#[tokio::test]
async fn session_settings_do_not_leak_between_clients_sharing_a_connection() {
    let p = single_conn_proxy();
    let a = connect(p.addr).await;
    let b = connect(p.addr).await;
    a.batch_execute("SET search_path TO leak_schema, public; SET application_name = 'client-a'")
        .await
        .expect("set");
    for _ in 0..4 {
        let row = b
            .query_one(
                "SELECT current_setting('search_path'), current_setting('application_name')",
                &[],
            )
            .await
            .expect("b reads");
        assert_eq!(row.get::<_, String>(0), "\"$user\", public");
        assert_eq!(row.get::<_, String>(1), "");
        let row = a
            .query_one(
                "SELECT current_setting('search_path'), current_setting('application_name')",
                &[],
            )
            .await
            .expect("a reads");
        assert_eq!(row.get::<_, String>(0), "leak_schema, public");
        assert_eq!(row.get::<_, String>(1), "client-a");
    }
    // SET LOCAL lasts for its transaction only.
    a.batch_execute("BEGIN; SET LOCAL statement_timeout = '4321ms'")
        .await
        .expect("set local");
    let row = a
        .query_one("SHOW statement_timeout", &[])
        .await
        .expect("show");
    assert_eq!(row.get::<_, String>(0), "4321ms");
    a.batch_execute("COMMIT").await.expect("commit");
    for c in [&a, &b] {
        let row = c
            .query_one("SHOW statement_timeout", &[])
            .await
            .expect("show");
        assert_eq!(row.get::<_, String>(0), "0");
    }
    // RESET ALL brings a back to its defaults.
    a.batch_execute("RESET ALL").await.expect("reset all");
    let row = a
        .query_one(
            "SELECT current_setting('search_path'), current_setting('application_name')",
            &[],
        )
        .await
        .expect("a reads");
    assert_eq!(row.get::<_, String>(0), "\"$user\", public");
    assert_eq!(row.get::<_, String>(1), "");
    // set_config(..., false) with literals is recorded like SET: it follows a, not b.
    a.query_one(
        "SELECT set_config('application_name', 'via-set-config', false)",
        &[],
    )
    .await
    .expect("set_config");
    for _ in 0..4 {
        let row = a
            .query_one(
                "SELECT current_setting('application_name'), pg_is_in_recovery()",
                &[],
            )
            .await
            .expect("a");
        assert_eq!(row.get::<_, String>(0), "via-set-config");
        let row = b
            .query_one("SELECT current_setting('application_name')", &[])
            .await
            .expect("b");
        assert_eq!(row.get::<_, String>(0), "");
    }
}

#[tokio::test]
async fn prepared_statements_survive_sharing_one_connection() {
    let p = single_conn_proxy();
    let a = connect(p.addr).await;
    let b = connect(p.addr).await;
    let sa = a.prepare("SELECT $1::int * 2").await.expect("prepare a");
    let sb = b.prepare("SELECT $1::int * 3").await.expect("prepare b");
    // tokio-postgres names both s0 on their own connections; the proxy keeps them apart.
    for i in 0..20 {
        let ra = a.query_one(&sa, &[&i]).await.expect("a");
        let rb = b.query_one(&sb, &[&i]).await.expect("b");
        assert_eq!((ra.get::<_, i32>(0), rb.get::<_, i32>(0)), (i * 2, i * 3));
    }
}

#[tokio::test]
async fn listen_notify_is_delivered_and_unlisten_frees_the_connection() {
    let p = small_pool_proxy();
    let (listener, mut conn) = tokio_postgres::connect(&conn_str(p.addr, "app", "app"), NoTls)
        .await
        .expect("connect");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        use futures_util::StreamExt;
        while let Some(Ok(m)) = stream.next().await {
            if let AsyncMessage::Notification(n) = m {
                let _ = tx.send((n.channel().to_string(), n.payload().to_string()));
            }
        }
    });
    listener
        .batch_execute("LISTEN sy_channel")
        .await
        .expect("listen");
    let sender = connect(p.addr).await;
    for i in 0..3 {
        sender
            .batch_execute(&format!("NOTIFY sy_channel, 'hello {i}'"))
            .await
            .expect("notify");
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("notification in time");
        assert_eq!(got, Some(("sy_channel".to_string(), format!("hello {i}"))));
    }
    listener
        .batch_execute("UNLISTEN *")
        .await
        .expect("unlisten");
    sender
        .batch_execute("NOTIFY sy_channel, 'after'")
        .await
        .expect("notify");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err(),
        "no notification after UNLISTEN *"
    );
    // The session still works (now pooled again).
    where_ran(&listener, "").await;
}

#[tokio::test]
async fn cancel_is_fast_and_harmless_when_idle() {
    let p = single_conn_proxy();
    let c = connect(p.addr).await;
    let other = connect(p.addr).await;
    // A cancel while idle reaches nothing.
    c.cancel_token()
        .cancel_query(NoTls)
        .await
        .expect("idle cancel sent");
    where_ran(&c, "").await;
    where_ran(&other, "").await;
    let token = c.cancel_token();
    let started = Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        token.cancel_query(NoTls).await
    });
    let err = c
        .simple_query("SELECT pg_sleep(10)")
        .await
        .expect_err("cancelled");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "cancel took {:?}",
        started.elapsed()
    );
    canceller.await.expect("join").expect("cancel sent");
    where_ran(&c, "").await;
}

#[tokio::test]
async fn query_timeout_cancels_on_the_server() {
    let p = start_proxy(&config_for(
        shared_pg(),
        &[1, 1],
        "query_timeout = \"1500ms\"",
    ));
    let c = connect(p.addr).await;
    let started = Instant::now();
    let err = c
        .simple_query("SELECT pg_sleep(10)")
        .await
        .expect_err("timed out");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    where_ran(&c, "").await;
}

#[tokio::test]
async fn idle_timeouts_close_the_client() {
    let p = start_proxy(&config_for(
        shared_pg(),
        &[1, 1],
        "idle_transaction_timeout = \"300ms\"\nclient_idle_timeout = \"1s\"",
    ));
    let c = connect(p.addr).await;
    c.batch_execute("BEGIN").await.expect("begin");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let err = c
        .simple_query("SELECT 1")
        .await
        .expect_err("closed in transaction");
    eprintln!("idle in transaction: {err}");
    let c = connect(p.addr).await;
    where_ran(&c, "").await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let err = c
        .simple_query("SELECT 1")
        .await
        .expect_err("closed when idle");
    eprintln!("idle: {err}");
}

#[tokio::test]
async fn a_full_pool_and_too_many_clients_get_clear_errors() {
    let text = config_for(
        shared_pg(),
        &[1, 1],
        "pool_size = 1\npool_timeout = \"300ms\"",
    )
    .replace(
        "startup_timeout = \"2s\"",
        "startup_timeout = \"2s\"\nmax_client_connections = 3",
    );
    let p = start_proxy(&text);
    let a = connect(p.addr).await;
    let b = connect(p.addr).await;
    // a holds the primary's only connection in an open transaction.
    a.batch_execute("BEGIN; SELECT txid_current()")
        .await
        .expect("begin");
    let err = b
        .simple_query("/* switchyard:primary */ SELECT 1")
        .await
        .expect_err("the pool is exhausted");
    let db = err.as_db_error().expect("a server-style error");
    assert_eq!(db.code().code(), "53300", "{db:?}");
    assert!(
        db.message().contains("pool") && db.message().contains("database app"),
        "{}",
        db.message()
    );
    a.batch_execute("COMMIT").await.expect("commit");
    b.simple_query("/* switchyard:primary */ SELECT 1")
        .await
        .expect("b's session goes on");
    // Two clients are connected; the third is the last one allowed.
    let _c = connect(p.addr).await;
    let err = tokio_postgres::connect(&conn_str(p.addr, "app", "app"), NoTls)
        .await
        .err()
        .expect("too many clients");
    assert_eq!(err.code().map(|c| c.code()), Some("53300"), "{err}");
}

#[tokio::test]
async fn a_user_can_have_session_pooling() {
    let pg = shared_pg();
    ensure_role("sess");
    let text = config_for(pg, &[1, 1], "pool_size = 4");
    let p = start_proxy(&with_user(&text, "sess", "pool_mode = \"session\""));
    async fn backend_pid(c: &tokio_postgres::Client) -> i32 {
        c.query_one("/* switchyard:primary */ SELECT pg_backend_pid()", &[])
            .await
            .expect("pid")
            .get(0)
    }
    // Connections in use per user, as the proxy's pools count them.
    let in_use = |user: &str| -> usize {
        p.ctx
            .pools
            .all()
            .iter()
            .filter(|pool| pool.key.user == user)
            .map(|pool| pool.counts().1)
            .sum()
    };
    // Transaction pooling (app): idle clients hold no server connection.
    let (a, t) = (
        connect_as(p.addr, "app", "app").await,
        connect_as(p.addr, "app", "app").await,
    );
    backend_pid(&a).await;
    backend_pid(&t).await;
    assert!(
        wait_until(Duration::from_secs(2), || in_use("app") == 0),
        "idle transaction-pooled clients hold nothing (in use: {})",
        in_use("app")
    );
    // Session pooling (sess): each idle client keeps its connection, and always the same one.
    let (s, s2) = (
        connect_as(p.addr, "sess", "sess").await,
        connect_as(p.addr, "sess", "sess").await,
    );
    let first = backend_pid(&s).await;
    let other = backend_pid(&s2).await;
    assert_ne!(first, other);
    for _ in 0..3 {
        s2.batch_execute("BEGIN; SELECT 1; COMMIT")
            .await
            .expect("s2 works");
        assert_eq!(
            backend_pid(&s).await,
            first,
            "session pooling keeps the connection"
        );
    }
    assert_eq!(
        in_use("sess"),
        2,
        "idle session-pooled clients keep their connections"
    );
}

#[tokio::test]
async fn a_dead_idle_connection_is_replaced_before_a_client_gets_it() {
    let pg = shared_pg();
    ensure_role("chk");
    let text = config_for(pg, &[1, 1], "server_check_delay = \"0s\"");
    let p = start_proxy(&with_user(&text, "chk", ""));
    let c = connect_as(p.addr, "chk", "chk").await;
    c.batch_execute("CREATE TABLE IF NOT EXISTS chk_t (v int)")
        .await
        .expect("ddl");
    // The server ends every idle pooled connection of this user behind the proxy's back.
    terminate_backends_of("chk");
    // A write cannot be retried by the proxy, so only the check keeps it from failing.
    c.execute("INSERT INTO chk_t VALUES (1)", &[])
        .await
        .expect("write on a fresh connection");
}

#[tokio::test]
async fn a_server_fatal_is_an_error_for_the_client_whose_session_goes_on() {
    let pg = shared_pg();
    ensure_role("fat");
    let text = config_for(pg, &[1, 1], "server_check_delay = \"1h\"");
    let p = start_proxy(&with_user(&text, "fat", ""));
    let c = connect_as(p.addr, "fat", "fat").await;
    // The server ends the connection running this very statement with FATAL 57P01.
    let err = c
        .simple_query("/* switchyard:primary */ SELECT pg_terminate_backend(pg_backend_pid())")
        .await
        .expect_err("the server connection was terminated");
    let db = err.as_db_error().expect("server error");
    assert_eq!(db.severity(), "ERROR", "{db:?}");
    assert_eq!(db.code().code(), "57P01");
    assert!(!c.is_closed(), "the client's session must survive");
    // The terminated connection may surface once more (as a plain 08006 ERROR, never a
    // FATAL) when its close races the next statement; the session itself goes on.
    let mut last = None;
    for _ in 0..3 {
        match c.simple_query("/* switchyard:primary */ SELECT 3").await {
            Ok(_) => {
                last = None;
                break;
            }
            Err(e) => {
                let severity = e.as_db_error().map(|d| d.severity().to_string());
                assert_eq!(severity.as_deref(), Some("ERROR"), "{e:?}");
                last = Some(e);
            }
        }
    }
    assert!(last.is_none(), "the session never recovered: {last:?}");
    // Idle pooled connections the server ends behind the proxy's back are noticed at checkout
    // (their socket is readable: the FATAL or the close), so the next client never meets them.
    terminate_backends_of("fat");
    // pg_terminate_backend only signals: give the backends a moment to exit.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for _ in 0..3 {
        c.simple_query("/* switchyard:primary */ SELECT 4")
            .await
            .expect("a terminated idle connection is not handed out");
    }
    assert!(!c.is_closed());
}

/// Ends every server connection of `user` on the primary, behind the proxy's back.
fn terminate_backends_of(user: &str) {
    shared_pg()
        .psql(
            0,
            &format!("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{user}' AND pid <> pg_backend_pid()"),
        )
        .expect("terminate");
}
