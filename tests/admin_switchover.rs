//! Admin console commands that act on sessions and topology, against real servers of their
//! own: SHOW CLIENTS and KILL CLIENT, PAUSE and RESUME, and PROMOTE NODE (a planned
//! switchover) under a write load with no lost write and no failed transaction, on PostgreSQL
//! and on MariaDB.

mod common;

use common::*;
use mysql_async::prelude::*;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchyard_testbed::{
    MariaCluster, MariaOptions, PgCluster, PgOptions, ADMIN_PASSWORD, ADMIN_ROLE,
};

const ADMIN: &str = "\n[admin]\nlisten_postgres = \"127.0.0.1:0\"\n\n[[admin.users]]\nname = \"admin\"\npassword = \"admin\"\nrole = \"admin\"\n";

/// psql against the console at `console` as admin; Ok(unaligned rows) or Err(stderr).
fn admin(console: SocketAddr, sql: &str) -> Result<String, String> {
    psql_console(console.port(), "admin", "admin", sql)
}

async fn admin_async(console: SocketAddr, sql: &'static str) -> Result<String, String> {
    tokio::task::spawn_blocking(move || admin(console, sql))
        .await
        .expect("admin task")
}

fn pg_config(pg: &PgCluster) -> String {
    let mut text = format!(
        "[general]\nstartup_timeout = \"2s\"\n\n[[clusters]]\nname = \"sw\"\nlisten = \"127.0.0.1:0\"\nhealth_check_interval = \"200ms\"\n\n[clusters.failover]\nuser = \"{ADMIN_ROLE}\"\npassword = \"{ADMIN_PASSWORD}\"\n\n[[clusters.users]]\nname = \"app\"\npassword = \"app\"\n"
    );
    for n in pg.nodes() {
        text += &format!(
            "\n[[clusters.nodes]]\nname = \"{}\"\naddr = \"127.0.0.1:{}\"\n",
            n.name, n.port
        );
    }
    text + ADMIN
}

fn start(config: &str) -> (Proxy, SocketAddr) {
    let (addr, (ctx, console)) = start_server(config, |r| {
        (r.clusters[0].clone(), r.admin_postgres.expect("console"))
    });
    (Proxy { addr, ctx }, console)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_pause_resume_and_kill_on_postgres() {
    let pg = switchyard_testbed::shared_pg();
    let (p, console) = start(
        &config_for(pg, &[1, 1], "").replace("[general]", &format!("{}\n[general]", ADMIN.trim())),
    );
    let a = connect(p.addr).await;
    let b = connect(p.addr).await;
    a.simple_query("SELECT 1").await.expect("a");
    let clients = admin_async(
        console,
        "SELECT id, user, database FROM clients ORDER BY id",
    )
    .await
    .expect("show clients");
    let rows: Vec<&str> = clients.lines().collect();
    assert_eq!(rows.len(), 2, "{clients}");
    assert!(rows.iter().all(|r| r.ends_with("|app|app")), "{clients}");

    // PAUSE: a transaction in flight finishes; a new statement waits until RESUME.
    a.batch_execute("BEGIN").await.expect("begin");
    admin_async(console, "PAUSE").await.expect("pause");
    a.simple_query("SELECT 1")
        .await
        .expect("in-flight transaction goes on");
    a.batch_execute("COMMIT").await.expect("commit");
    let started = Instant::now();
    let held = tokio::spawn(async move { b.query_one("SELECT 2", &[]).await.map(|_| b) });
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!held.is_finished(), "a new statement waits while paused");
    admin_async(console, "RESUME").await.expect("resume");
    let b = held
        .await
        .expect("task")
        .expect("the held statement runs after RESUME");
    println!("statement held by PAUSE for {:?}", started.elapsed());
    assert!(started.elapsed() >= Duration::from_millis(600));

    // KILL CLIENT: that client gets 57P01, the other goes on.
    let id = admin_async(console, "SELECT max(id) FROM clients")
        .await
        .expect("id");
    let kill = format!("KILL CLIENT {id}");
    tokio::task::spawn_blocking(move || admin(console, &kill))
        .await
        .expect("task")
        .expect("kill");
    let err = b.simple_query("SELECT 3").await.expect_err("killed");
    println!("killed client: {err}");
    assert!(
        err.code().map(|c| c.code()) == Some("57P01") || err.is_closed(),
        "{err}"
    );
    a.simple_query("SELECT 4")
        .await
        .expect("the other client goes on");
    let left = admin_async(console, "SELECT count(*) FROM clients")
        .await
        .expect("count");
    assert_eq!(left, "1");
}

/// Writers that each run `BEGIN; INSERT; INSERT; COMMIT` in a loop; every acknowledged id.
struct Load {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
    acked: Arc<Mutex<Vec<i64>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    async fn finish(self) -> (Vec<i64>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("writer");
        }
        let acked = self.acked.lock().expect("lock").clone();
        (acked, self.failed.load(Ordering::Relaxed))
    }
}

fn pg_load(addr: SocketAddr) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let tasks = (0..3i64)
        .map(|w| {
            let (stop, failed, acked) = (stop.clone(), failed.clone(), acked.clone());
            tokio::spawn(async move {
                let c = connect(addr).await;
                let deadline = Instant::now() + Duration::from_secs(40);
                let mut id = w * 1_000_000;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    id += 2;
                    let sql = format!(
                        "BEGIN; INSERT INTO sw VALUES ({id}); INSERT INTO sw VALUES ({}); COMMIT",
                        id + 1
                    );
                    match c.batch_execute(&sql).await {
                        Ok(()) => acked.lock().expect("lock").extend([id, id + 1]),
                        Err(e) => {
                            eprintln!("write failed: {e}");
                            failed.fetch_add(1, Ordering::Relaxed);
                            let _ = c.batch_execute("ROLLBACK").await;
                        }
                    }
                }
            })
        })
        .collect();
    Load {
        stop,
        failed,
        acked,
        tasks,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_node_switches_postgres_over_with_no_lost_or_failed_write() {
    let pg = PgCluster::start(PgOptions::default()).expect("start cluster");
    let (p, console) = start(&pg_config(&pg));
    let c = connect(p.addr).await;
    c.batch_execute("CREATE TABLE sw (id bigint PRIMARY KEY)")
        .await
        .expect("ddl");
    let load = pg_load(p.addr);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = Instant::now();
    let result = admin_async(console, "PROMOTE NODE pg1").await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (acked, failed) = load.finish().await;
    let result = result.expect("PROMOTE NODE");
    println!(
        "switchover: {result} (command took {took:?}); {} writes acknowledged, {failed} failed",
        acked.len()
    );
    assert_eq!(failed, 0, "no transaction failed");
    let snap = p.ctx.state.load();
    assert_eq!(snap.primary().map(|n| n.name.as_str()), Some("pg1"));
    assert!(snap.nodes[0].fenced, "the old primary is fenced");
    // Every acknowledged write is on the new primary, and new writes go there.
    let on_new = pg.psql(1, "SELECT id FROM sw").expect("read new primary");
    let have: HashSet<i64> = on_new
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let lost: Vec<&i64> = acked.iter().filter(|id| !have.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(acked.len() > 20);
    let port: i32 = c
        .query_one(
            "INSERT INTO sw VALUES (-1) RETURNING inet_server_port()",
            &[],
        )
        .await
        .expect("write after")
        .get(0);
    assert_eq!(port, i32::from(pg.nodes()[1].port));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_node_switches_mariadb_over_with_no_lost_or_failed_write() {
    let maria = MariaCluster::start(MariaOptions::default()).expect("start MariaDB");
    let mut text = format!(
        "[general]\nstartup_timeout = \"2s\"\n\n[[clusters]]\nname = \"msw\"\nprotocol = \"mysql\"\nlisten = \"127.0.0.1:0\"\nhealth_check_interval = \"200ms\"\n\n[clusters.failover]\nuser = \"{ADMIN_ROLE}\"\npassword = \"{ADMIN_PASSWORD}\"\n\n[[clusters.users]]\nname = \"app\"\npassword = \"app\"\n"
    );
    for n in maria.nodes() {
        text += &format!(
            "\n[[clusters.nodes]]\nname = \"{}\"\naddr = \"127.0.0.1:{}\"\n",
            n.name, n.port
        );
    }
    text += ADMIN;
    let (addr, (ctx, console)) = start_server(&text, |r| {
        (r.mysql[0].clone(), r.admin_postgres.expect("console"))
    });
    let url = format!(
        "mysql://app:app@127.0.0.1:{}/app?prefer_socket=false",
        addr.port()
    );
    let pool = mysql_async::Pool::new(url.as_str());
    let mut c = pool.get_conn().await.expect("connect");
    c.query_drop("CREATE TABLE msw (id BIGINT PRIMARY KEY)")
        .await
        .expect("ddl");
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..3i64)
        .map(|w| {
            let (pool, stop, failed, acked) =
                (pool.clone(), stop.clone(), failed.clone(), acked.clone());
            tokio::spawn(async move {
                let mut c = pool.get_conn().await.expect("writer connects");
                let deadline = Instant::now() + Duration::from_secs(40);
                let mut id = w * 1_000_000;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    id += 2;
                    let sql = format!(
                        "BEGIN; INSERT INTO msw VALUES ({id}); INSERT INTO msw VALUES ({}); COMMIT",
                        id + 1
                    );
                    match c.query_drop(sql).await {
                        Ok(()) => acked.lock().expect("lock").extend([id, id + 1]),
                        Err(e) => {
                            eprintln!("write failed: {e}");
                            failed.fetch_add(1, Ordering::Relaxed);
                            let _ = c.query_drop("ROLLBACK").await;
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let result = admin_async(console, "PROMOTE NODE maria1").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    let result = result.expect("PROMOTE NODE");
    let acked = acked.lock().expect("lock").clone();
    let failed = failed.load(Ordering::Relaxed);
    println!(
        "switchover: {result}; {} writes acknowledged, {failed} failed",
        acked.len()
    );
    assert_eq!(failed, 0, "no transaction failed");
    let snap = ctx.state.load();
    assert_eq!(snap.primary().map(|n| n.name.as_str()), Some("maria1"));
    let on_new = maria
        .mysql(1, "SELECT id FROM msw")
        .expect("read new primary");
    let have: HashSet<i64> = on_new
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let lost = acked.iter().filter(|id| !have.contains(id)).count();
    assert_eq!(lost, 0, "acknowledged writes lost");
    assert!(acked.len() > 20);
    let port: Option<u16> = c
        .query_first("SELECT @@port FROM msw LIMIT 1 FOR UPDATE")
        .await
        .expect("read");
    assert_eq!(port, Some(maria.nodes()[1].port));
    drop(c);
    pool.disconnect().await.expect("disconnect");
}
