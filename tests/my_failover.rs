//! MySQL/MariaDB health and failover against real GTID topologies (one per test): SIGKILL of
//! the primary under write load in promote mode, and a replica whose SQL thread is stopped
//! losing its reads past max_lag and getting them back.

mod common;

use common::mysql::*;
use mysql_async::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchyard::cluster::Health;
use switchyard_testbed::{MariaCluster, MariaOptions, ADMIN_PASSWORD, ADMIN_ROLE};

/// Config with the default monitor settings (interval 1 s, timeout 2 s) plus `keys`.
fn config(maria: &MariaCluster, keys: &str) -> String {
    let mut text = format!(
        "[general]\nstartup_timeout = \"2s\"\n\n[[clusters]]\nname = \"mfo\"\nprotocol = \"mysql\"\nlisten = \"127.0.0.1:0\"\n{keys}\n\n[clusters.failover]\nmode = \"promote\"\nuser = \"{ADMIN_ROLE}\"\npassword = \"{ADMIN_PASSWORD}\"\n\n[[clusters.users]]\nname = \"app\"\npassword = \"app\"\n"
    );
    for n in maria.nodes() {
        text += &format!(
            "\n[[clusters.nodes]]\nname = \"{}\"\naddr = \"127.0.0.1:{}\"\n",
            n.name, n.port
        );
    }
    text
}

/// The mariadb CLI against a proxy address, for use from other threads.
struct MyProxyAddr(std::net::SocketAddr);

impl MyProxyAddr {
    fn run(&self, sql: &str) -> Result<String, String> {
        let out = std::process::Command::new("mariadb")
            .args(["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1"])
            .arg(format!("-P{}", self.0.port()))
            .args(["-uapp", "-papp", "-N", "-B", "app", "-e", sql])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

fn url(p: &MyProxy) -> String {
    format!(
        "mysql://app:app@127.0.0.1:{}/app?prefer_socket=false",
        p.addr.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_after_sigkill_under_write_load() {
    let maria = MariaCluster::start(MariaOptions::default()).expect("start MariaDB");
    let p = start_mysql_proxy(&config(&maria, ""));
    let pool = mysql_async::Pool::new(url(&p).as_str());
    let mut c = pool.get_conn().await.expect("connect");
    c.query_drop("CREATE TABLE fo (id BIGINT PRIMARY KEY)")
        .await
        .expect("ddl");

    let stop = Arc::new(AtomicBool::new(false));
    let first_after_kill: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let mut writers = Vec::new();
    for w in 0..3i64 {
        let (pool, stop, first, killed) = (
            pool.clone(),
            stop.clone(),
            first_after_kill.clone(),
            killed_at.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut acked = 0u64;
            let mut id = w * 1_000_000_000;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                let kill = *killed.lock().expect("lock");
                let ok = match pool.get_conn().await {
                    Ok(mut c) => c
                        .exec_drop("INSERT INTO fo VALUES (?)", (id,))
                        .await
                        .is_ok(),
                    Err(_) => false,
                };
                if ok {
                    acked += 1;
                    if kill.is_some() {
                        first.lock().expect("lock").get_or_insert_with(Instant::now);
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    maria.kill(0).expect("kill the primary");
    let kill = Instant::now();
    *killed_at.lock().expect("lock") = Some(kill);
    assert!(
        common::wait_until(Duration::from_secs(10), || p.ctx.state.load().nodes[0]
            .health
            == Health::Down),
        "primary loss not noticed"
    );
    // New transactions begun inside the failover window wait and succeed.
    let window: Vec<_> = (0..3i64)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut c = pool.get_conn().await?;
                c.exec_drop("INSERT INTO fo VALUES (?)", (-10 - i,)).await
            })
        })
        .collect();
    // A new client logging in during the window too (its login is checked on a replica).
    let cli = {
        let addr = p.addr;
        tokio::task::spawn_blocking(move || MyProxyAddr(addr).run("INSERT INTO fo VALUES (-20)"))
    };
    for t in window {
        t.await
            .expect("task")
            .expect("a write begun during the failover succeeds");
    }
    cli.await
        .expect("cli task")
        .expect("a new session's write during the failover succeeds");
    let resumed = {
        let first = first_after_kill.clone();
        common::wait_until(Duration::from_secs(40), move || {
            first.lock().expect("lock").is_some()
        })
    };
    stop.store(true, Ordering::Relaxed);
    let mut acked = 0;
    for w in writers {
        acked += w.await.expect("writer");
    }
    assert!(resumed, "writes never resumed");
    let took = first_after_kill
        .lock()
        .expect("lock")
        .map(|t| t - kill)
        .unwrap_or_default();
    println!("mysql failover: first successful write {:.2} s after SIGKILL of the primary (default settings); {acked} writes acknowledged", took.as_secs_f64());
    let snap = p.ctx.state.load();
    let new = snap.primary().map(|n| n.id).expect("a new primary");
    assert_ne!(new, 0);
    assert!(snap.nodes[0].fenced, "the old primary is fenced");
    // The other replica follows the new primary.
    let other = if new == 1 { 2 } else { 1 };
    c.query_drop("INSERT INTO fo VALUES (-1)")
        .await
        .expect("marker write");
    assert!(
        common::wait_until(Duration::from_secs(15), || maria
            .mysql(other, "SELECT count(*) FROM app.fo WHERE id = -1")
            .is_ok_and(|o| o == "1")),
        "replica {other} does not follow the new primary"
    );
    drop(c);
    pool.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_its_sql_thread_stopped_loses_its_reads() {
    let maria = MariaCluster::start(MariaOptions::default()).expect("start MariaDB");
    let p = start_mysql_proxy(&config(
        &maria,
        "health_check_interval = \"200ms\"\nmax_lag = \"2s\"\nslow_start = \"0s\"",
    ));
    let r1 = maria.nodes()[1].port.to_string();
    maria
        .mysql(2, "STOP SLAVE SQL_THREAD")
        .expect("stop the SQL thread");
    assert!(
        common::wait_until(Duration::from_secs(10), || p.ctx.state.load().nodes[2]
            .lagging),
        "replica not taken out: {:?}",
        p.ctx.state.load().nodes[2]
    );
    for _ in 0..10 {
        assert_eq!(
            mariadb(&p, "app", "app", "SELECT @@port").expect("read"),
            r1
        );
    }
    maria
        .mysql(2, "START SLAVE SQL_THREAD")
        .expect("start the SQL thread");
    assert!(
        common::wait_until(Duration::from_secs(10), || !p.ctx.state.load().nodes[2]
            .lagging),
        "replica not taken back"
    );
    let ports: std::collections::HashSet<String> = (0..12)
        .map(|_| mariadb(&p, "app", "app", "SELECT @@port").expect("read"))
        .collect();
    assert_eq!(ports.len(), 2, "both replicas read again: {ports:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_your_writes_by_gtid_with_one_replica_stopped() {
    let maria = MariaCluster::start(MariaOptions::default()).expect("start MariaDB");
    let p = start_mysql_proxy(&config(
        &maria,
        "read_your_writes = \"gtid\"\nread_your_writes_wait = \"200ms\"",
    ));
    let (r1, r2) = (maria.nodes()[1].port, maria.nodes()[2].port);
    let pool = mysql_async::Pool::new(url(&p).as_str());
    let mut c = pool.get_conn().await.expect("connect");
    c.query_drop("CREATE TABLE ryw (id INT PRIMARY KEY)")
        .await
        .expect("ddl");
    maria.mysql(2, "STOP SLAVE").expect("stop replica 2");
    let mut stale = 0;
    let mut by_port = std::collections::HashMap::new();
    for i in 0..1000i32 {
        if i % 2 == 0 {
            c.query_drop(format!("INSERT INTO ryw VALUES ({i})"))
                .await
                .expect("insert");
            let row: Option<(u16, i64)> = c
                .query_first(format!(
                    "SELECT @@port, (SELECT count(*) FROM ryw WHERE id = {i})"
                ))
                .await
                .expect("read");
            let (port, n) = row.expect("row");
            stale += usize::from(n != 1);
            *by_port.entry(port).or_insert(0) += 1;
        } else {
            c.exec_drop("INSERT INTO ryw VALUES (?)", (i,))
                .await
                .expect("insert");
            let row: Option<(u16, i64)> = c
                .exec_first(
                    "SELECT @@port, (SELECT count(*) FROM ryw WHERE id = ?)",
                    (i,),
                )
                .await
                .expect("read");
            let (port, n) = row.expect("row");
            stale += usize::from(n != 1);
            *by_port.entry(port).or_insert(0) += 1;
        }
    }
    println!("read-your-writes (gtid): reads by port {by_port:?} (replicas {r1}, {r2} stopped)");
    assert_eq!(stale, 0, "stale reads");
    assert_eq!(by_port.get(&r2), None, "the stopped replica served reads");
    assert!(by_port.get(&r1).is_some_and(|n| *n > 0), "{by_port:?}");
    drop(c);
    pool.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_after_sigstop_and_the_old_primary_is_set_read_only() {
    let maria = MariaCluster::start(MariaOptions::default()).expect("start MariaDB");
    let p = start_mysql_proxy(&config(&maria, "health_check_timeout = \"1s\""));
    let pool = mysql_async::Pool::new(url(&p).as_str());
    let mut c = pool.get_conn().await.expect("connect");
    c.query_drop("CREATE TABLE st (v VARCHAR(20))")
        .await
        .expect("ddl");
    maria
        .wait_replicas_caught_up(Duration::from_secs(10))
        .expect("caught up");
    maria.pause(0).expect("SIGSTOP the primary");
    let t = Instant::now();
    // In flight on the hung primary when it is declared down: error 1927, then a retry on
    // the same connection waits for the failover and succeeds.
    if let Err(e) = c.query_drop("INSERT INTO st VALUES ('in flight')").await {
        assert!(e.to_string().contains("1927"), "{e}");
    }
    c.query_drop("INSERT INTO st VALUES ('during')")
        .await
        .expect("a retried write succeeds after the failover");
    println!(
        "mysql SIGSTOP: write succeeded {:.2} s after the primary hung",
        t.elapsed().as_secs_f64()
    );
    let new = p
        .ctx
        .state
        .load()
        .primary()
        .map(|n| n.id)
        .expect("new primary");
    assert_ne!(new, 0);
    maria.resume(0).expect("SIGCONT");
    // Back, the old primary is made read_only and stays fenced; writes stay on the new one.
    assert!(
        common::wait_until(Duration::from_secs(15), || maria
            .mysql(0, "SELECT @@read_only")
            .is_ok_and(|v| v == "1")),
        "old primary not set read_only"
    );
    assert!(p.ctx.state.load().nodes[0].fenced);
    for _ in 0..5 {
        c.query_drop("INSERT INTO st VALUES ('after')")
            .await
            .expect("write after SIGCONT");
    }
    assert_eq!(p.ctx.state.load().primary().map(|n| n.id), Some(new));
    let on_old = maria
        .mysql(
            0,
            "SELECT count(*) FROM app.st WHERE v IN ('during', 'after')",
        )
        .expect("ask the old primary");
    assert_eq!(on_old, "0", "the fenced node got writes");
    let on_new = maria
        .mysql(
            new,
            "SELECT count(*) FROM app.st WHERE v IN ('during', 'after')",
        )
        .expect("ask the new primary");
    assert_eq!(on_new, "6");
    drop(c);
    pool.disconnect().await.expect("disconnect");
}

#[test]
fn lag_in_transactions_takes_a_delayed_replica_out_within_a_probe() {
    let maria = MariaCluster::start(MariaOptions::default()).expect("start MariaDB");
    let p = start_mysql_proxy(&config(
        &maria,
        "health_check_interval = \"200ms\"\nmax_lag_bytes = 5\nslow_start = \"0s\"",
    ));
    let r1 = maria.nodes()[1].port.to_string();
    mariadb(&p, "app", "app", "CREATE TABLE lagt (id INT PRIMARY KEY)").expect("ddl");
    // Replica 2 applies everything 4 s late: Seconds_Behind_Master would take seconds to show
    // it, the GTID position shows it at the next probe.
    maria
        .mysql(
            2,
            "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 4; START SLAVE",
        )
        .expect("delay replica 2");
    let inserts: String = (0..10)
        .map(|i| format!("INSERT INTO lagt VALUES ({i});"))
        .collect();
    mariadb(&p, "app", "app", &inserts).expect("ten transactions");
    let t = Instant::now();
    assert!(
        common::wait_until(Duration::from_secs(3), || p.ctx.state.load().nodes[2]
            .lagging),
        "delayed replica not taken out: {:?}",
        p.ctx.state.load().nodes[2]
    );
    println!(
        "mysql: a replica 10 transactions behind was taken out {:.2} s after the writes (lag {:?} transactions)",
        t.elapsed().as_secs_f64(),
        p.ctx.state.load().nodes[2].lag_bytes
    );
    for _ in 0..6 {
        assert_eq!(
            mariadb(&p, "app", "app", "SELECT @@port").expect("read"),
            r1
        );
    }
    // Once the delay has passed it applies them and is taken back.
    assert!(
        common::wait_until(Duration::from_secs(15), || !p.ctx.state.load().nodes[2]
            .lagging),
        "replica not taken back"
    );
}
