//! The admin console against real clusters (the PostgreSQL and MariaDB test beds), driven by
//! psql and the mariadb client: every documented example on both wires, SELECTs over the
//! tables, roles, weights changed in the console shifting the measured read split, and a
//! drain under load with no client error.

mod common;

use common::*;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use switchyard_testbed::{shared_maria, shared_pg};

/// A switchyard over both test beds with the console on both wires.
struct Console {
    pg: SocketAddr,
    my: SocketAddr,
    proxy: Proxy,
}

fn console() -> &'static Console {
    static C: OnceLock<Console> = OnceLock::new();
    C.get_or_init(|| {
        let pg = config_for(shared_pg(), &[1, 1], "");
        let my = common::mysql::mysql_config_for(shared_maria(), &[1, 1], "");
        let my = my.split_once("[[clusters]]").map(|x| x.1).unwrap_or("");
        let text = format!(
            "{pg}\n[[clusters]]{my}\n[admin]\nlisten_postgres = \"127.0.0.1:0\"\nlisten_mysql = \"127.0.0.1:0\"\n\n[[admin.users]]\nname = \"admin\"\npassword = \"admin\"\nrole = \"admin\"\n\n[[admin.users]]\nname = \"watcher\"\npassword = \"watch\"\n"
        );
        let (addr, (pg, my, ctx)) = start_server(&text, |r| {
            (
                r.admin_postgres.expect("pg console"),
                r.admin_mysql.expect("mysql console"),
                r.clusters[0].clone(),
            )
        });
        Console {
            pg,
            my,
            proxy: Proxy { addr, ctx },
        }
    })
}

/// psql against the console; Ok(unaligned output) or Err(stderr).
fn psql(user: &str, password: &str, sql: &str) -> Result<String, String> {
    psql_console(console().pg.port(), user, password, sql)
}

/// The mariadb client against the console; Ok(batch output) or Err(stderr).
fn mariadb(user: &str, password: &str, sql: &str) -> Result<String, String> {
    let c = console();
    let out = Command::new("mariadb")
        .args(["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1"])
        .arg(format!("-P{}", c.my.port()))
        .arg(format!("-u{user}"))
        .arg(format!("-p{password}"))
        .args(["--connect-timeout=10", "-N", "-B", "-e", sql])
        .stdin(Stdio::null())
        .output()
        .expect("run mariadb");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Every line of the ```sql blocks in docs/admin.md.
fn documented_examples() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/admin.md"))
        .expect("docs/admin.md");
    let mut out = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        if line.trim() == "```sql" {
            inside = true;
        } else if line.trim() == "```" {
            inside = false;
        } else if inside && !line.trim().is_empty() {
            out.push(line.trim().to_string());
        }
    }
    out
}

#[test]
fn every_documented_example_runs_in_psql_and_mariadb() {
    let examples = documented_examples();
    assert!(examples.len() >= 15, "examples found: {examples:?}");
    // A client through the proxy, so that SHOW POOLS has a pool to show.
    let out = Command::new("psql")
        .env("PGPASSWORD", "app")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &console().proxy.addr.port().to_string(),
        ])
        .args(["-U", "app", "-d", "app", "-X", "-c", "SELECT 1"])
        .stdin(Stdio::null())
        .output()
        .expect("psql through the proxy");
    assert!(out.status.success());
    for sql in &examples {
        let a = psql("admin", "admin", sql).unwrap_or_else(|e| panic!("psql {sql}: {e}"));
        let b = mariadb("admin", "admin", sql).unwrap_or_else(|e| panic!("mariadb {sql}: {e}"));
        let first = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        // SHOW CLIENTS may be empty (no client need be connected now), and so may a filter on
        // the errors (none may have happened).
        let may_be_empty = sql.contains("CLIENTS") || sql.contains("FROM errors WHERE");
        // SHOW SERVERS has the pool the first psql opened (idle connections stay pooled).
        if ["show", "select", "explain"].contains(&first.as_str()) && !may_be_empty {
            assert!(!a.is_empty() && !b.is_empty(), "{sql}: no rows");
        }
    }
    // What the examples show is right.
    let nodes = psql("admin", "admin", "SHOW NODES").expect("show nodes");
    assert_eq!(
        nodes.lines().count(),
        6,
        "three nodes per cluster:\n{nodes}"
    );
    let primaries = psql(
        "admin",
        "admin",
        "SELECT cluster, name FROM nodes WHERE role = 'primary' ORDER BY cluster",
    )
    .expect("select");
    assert_eq!(primaries, "mtest|maria0\ntest|pg0");
    let route = mariadb(
        "admin",
        "admin",
        "EXPLAIN ROUTE SELECT * FROM accounts WHERE id = 1 FOR UPDATE",
    )
    .expect("explain");
    for line in route.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(&cols[1..4], ["write", "for-update", "primary"], "{line}");
    }
    let read = psql("watcher", "watch", "EXPLAIN ROUTE SELECT 1").expect("explain");
    assert!(
        read.lines().all(|l| l.contains("|read|select|replica|")),
        "{read}"
    );
}

#[test]
fn roles_and_errors() {
    let err = psql("watcher", "watch", "SET NODE pg1 WEIGHT 2").expect_err("monitor");
    assert!(err.contains("permission denied"), "{err}");
    let err = mariadb("watcher", "watch", "DRAIN NODE pg1").expect_err("monitor");
    assert!(err.contains("1227"), "{err}");
    let err = psql("admin", "wrong", "SHOW NODES").expect_err("bad password");
    assert!(err.contains("password authentication failed"), "{err}");
    let err = mariadb("admin", "wrong", "SHOW NODES").expect_err("bad password");
    assert!(err.contains("1045"), "{err}");
    let err = psql("admin", "admin", "DELETE FROM nodes").expect_err("read-only");
    assert!(
        err.contains("read-only") || err.contains("unknown statement"),
        "{err}"
    );
    let err = psql("admin", "admin", "SELECT * FROM nodes WHERE").expect_err("bad sql");
    assert!(
        err.contains("syntax error") || err.contains("incomplete"),
        "{err}"
    );
    let err = psql("admin", "admin", "DRAIN NODE nosuch").expect_err("no node");
    assert!(err.contains("no node"), "{err}");
    let err = mariadb("admin", "admin", "FROBNICATE").expect_err("unknown");
    assert!(
        err.contains("1064") && err.contains("SHOW CLUSTERS"),
        "{err}"
    );
    // Still serving afterwards.
    assert_eq!(
        psql("watcher", "watch", "SELECT count(*) FROM clusters").as_deref(),
        Ok("2")
    );
}

/// Where `n` one-query sessions' reads land: counts per server port.
async fn read_split(addr: SocketAddr, n: usize) -> std::collections::HashMap<i32, usize> {
    let mut out = std::collections::HashMap::new();
    for _ in 0..n {
        let c = connect(addr).await;
        let row = c
            .query_one("SELECT inet_server_port()", &[])
            .await
            .expect("read");
        *out.entry(row.get::<_, i32>(0)).or_insert(0) += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_weights_and_drain_steer_reads_under_load() {
    let c = console();
    let pg = shared_pg();
    let (r1, r2) = (i32::from(pg.nodes()[1].port), i32::from(pg.nodes()[2].port));
    // 1:3 set in the console.
    tokio::task::spawn_blocking(|| {
        psql("admin", "admin", "SET NODE test/pg1 WEIGHT 1")?;
        psql("admin", "admin", "SET NODE test/pg2 WEIGHT 3")
    })
    .await
    .expect("task")
    .expect("set weights");
    let split = read_split(c.proxy.addr, 80).await;
    println!("reads after SET NODE WEIGHT 1:3: {split:?}");
    let on2 = split.get(&r2).copied().unwrap_or(0);
    assert!((55..=65).contains(&on2), "{split:?}");
    assert_eq!(split.get(&r1).copied().unwrap_or(0) + on2, 80);

    // A read load on both replicas; pg2 is drained in the middle.
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (stop, errors, done, addr) = (stop.clone(), errors.clone(), done.clone(), c.proxy.addr);
        workers.push(tokio::spawn(async move {
            let client = connect(addr).await;
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match client
                    .query_one("SELECT inet_server_port(), pg_sleep(0.002)", &[])
                    .await
                {
                    Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("read failed: {e}");
                        errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::spawn_blocking(|| psql("admin", "admin", "DRAIN NODE test/pg2"))
        .await
        .expect("task")
        .expect("drain");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let during = read_split(c.proxy.addr, 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    let state = tokio::task::spawn_blocking(|| {
        psql(
            "admin",
            "admin",
            "SELECT serving, not_serving FROM nodes WHERE cluster = 'test' AND name = 'pg2'",
        )
    })
    .await
    .expect("task")
    .expect("select");
    tokio::task::spawn_blocking(|| {
        psql("admin", "admin", "UNDRAIN NODE test/pg2")?;
        psql("admin", "admin", "SET NODE test/pg2 WEIGHT 1")
    })
    .await
    .expect("task")
    .expect("undrain");
    println!(
        "drain under load: {} reads, {} errors; reads after the drain: {during:?}; pg2: {state}",
        done.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed)
    );
    assert_eq!(errors.load(Ordering::Relaxed), 0, "no client error");
    // SHOW STATS counted those reads, on the replicas.
    let reads: usize = tokio::task::spawn_blocking(|| {
        psql(
            "admin",
            "admin",
            "SELECT sum(reads) FROM stats WHERE cluster = 'test' AND role = 'replica'",
        )
    })
    .await
    .expect("task")
    .expect("stats")
    .parse()
    .expect("a count");
    assert!(
        reads >= done.load(Ordering::Relaxed) + 100,
        "stats: {reads} reads"
    );
    assert!(done.load(Ordering::Relaxed) > 50);
    assert_eq!(
        during.get(&r2),
        None,
        "the drained replica gets no new reads: {during:?}"
    );
    assert_eq!(state, "0|drained");
}
