//! Failover against real PostgreSQL 15 topologies (one per test, since each kills or stops its
//! primary): promotion after SIGKILL under write load with a synchronous replica (no
//! acknowledged transaction lost, writes begun during the failover window all succeed),
//! promotion after SIGSTOP with the old primary fenced after SIGCONT, and follow mode moving
//! writes to a replica promoted by hand.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchyard::cluster::Health;
use switchyard_testbed::{PgCluster, PgOptions, ADMIN_PASSWORD, ADMIN_ROLE};

/// Config with the default monitor settings (interval 1 s, timeout 2 s, eject after 2),
/// failover `mode` run by the test bed's superuser, plus `keys`.
fn failover_config(pg: &PgCluster, mode: &str, keys: &str) -> String {
    let mut text = format!(
        "[general]\nstartup_timeout = \"2s\"\n\n[[clusters]]\nname = \"test\"\nlisten = \"127.0.0.1:0\"\n{keys}\n\n[clusters.failover]\nmode = \"{mode}\"\nuser = \"{ADMIN_ROLE}\"\npassword = \"{ADMIN_PASSWORD}\"\n\n[[clusters.users]]\nname = \"app\"\npassword = \"app\"\n"
    );
    for n in pg.nodes() {
        text += &format!(
            "\n[[clusters.nodes]]\nname = \"{}\"\naddr = \"127.0.0.1:{}\"\n",
            n.name, n.port
        );
    }
    text
}

fn primary_id(p: &Proxy) -> Option<usize> {
    p.ctx.state.load().primary().map(|n| n.id)
}

/// What the background writers saw.
#[derive(Default)]
struct Writes {
    acked: Vec<i64>,
    first_after_kill: Option<Instant>,
    errors: Vec<String>,
}

/// A writer inserting ids `base..` until `stop`, recording what was acknowledged; errors
/// (work in flight on the primary when it died) are recorded and the writer goes on.
async fn writer(
    addr: std::net::SocketAddr,
    base: i64,
    stop: Arc<AtomicBool>,
    kill_at: Arc<Mutex<Option<Instant>>>,
    out: Arc<Mutex<Writes>>,
) {
    let c = connect(addr).await;
    let mut id = base;
    while !stop.load(Ordering::Relaxed) {
        id += 1;
        let killed = *kill_at.lock().expect("lock");
        let r = c.execute("INSERT INTO fo VALUES ($1)", &[&id]).await;
        let failed = {
            let mut w = out.lock().expect("lock");
            match r {
                Ok(_) => {
                    w.acked.push(id);
                    if killed.is_some() && w.first_after_kill.is_none() {
                        w.first_after_kill = Some(Instant::now());
                    }
                    false
                }
                Err(e) => {
                    w.errors.push(e.to_string());
                    true
                }
            }
        };
        if failed {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_after_sigkill_under_write_load_loses_no_acknowledged_write() {
    let pg = PgCluster::start(PgOptions::default()).expect("start cluster");
    pg.set_synchronous_on(0, &["pg1"])
        .expect("synchronous standby");
    let p = start_proxy(&failover_config(&pg, "promote", ""));
    let c = connect(p.addr).await;
    c.batch_execute(
        "CREATE TABLE fo (id bigint PRIMARY KEY); CREATE TABLE fo_bench (id bigint PRIMARY KEY)",
    )
    .await
    .expect("ddl");

    // pgbench adds write load; its clients may abort at the kill (an in-flight error ends a
    // pgbench client), so its exit status is not judged.
    let script = tempfile::NamedTempFile::new().expect("script");
    std::fs::write(
        script.path(),
        "\\set id random(1, 1000000000)\nINSERT INTO fo_bench VALUES (:id) ON CONFLICT DO NOTHING;\n",
    )
    .expect("write script");
    let bench = {
        let (addr, path) = (p.addr, script.path().to_path_buf());
        std::thread::spawn(move || {
            std::process::Command::new("pgbench")
                .args(["-n", "-c", "4", "-T", "12", "-f"])
                .arg(path)
                .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
                .args(["-U", "app", "app"])
                .env("PGPASSWORD", "app")
                .output()
        })
    };

    let stop = Arc::new(AtomicBool::new(false));
    let kill_at = Arc::new(Mutex::new(None));
    let out = Arc::new(Mutex::new(Writes::default()));
    let writers: Vec<_> = (0..3)
        .map(|i| {
            tokio::spawn(writer(
                p.addr,
                i * 1_000_000_000,
                stop.clone(),
                kill_at.clone(),
                out.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.kill(0).expect("kill primary");
    let killed = Instant::now();
    *kill_at.lock().expect("lock") = Some(killed);
    // New transactions begun once the proxy knows the primary is gone (the failover window)
    // wait for the new primary and succeed, on existing sessions and on new ones.
    assert!(
        wait_until(Duration::from_secs(10), || p.ctx.state.load().nodes[0]
            .health
            == Health::Down),
        "primary loss not noticed"
    );
    assert_eq!(primary_id(&p), None, "no primary during the window");
    let window: Vec<_> = (0..4i64)
        .map(|i| {
            let addr = p.addr;
            tokio::spawn(async move {
                let c = connect(addr).await;
                c.execute("INSERT INTO fo VALUES ($1)", &[&(-100 - i)])
                    .await
            })
        })
        .collect();
    let mut window_errors = Vec::new();
    for t in window {
        if let Err(e) = t.await.expect("window write task") {
            window_errors.push(e.to_string());
        }
    }
    let resumed = {
        let out = out.clone();
        wait_until(Duration::from_secs(40), move || {
            out.lock().expect("lock").first_after_kill.is_some()
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    let w = std::mem::take(&mut *out.lock().expect("lock"));
    assert!(resumed, "writes never resumed");
    assert!(
        window_errors.is_empty(),
        "writes begun during the failover window failed: {window_errors:?}"
    );
    let took = w.first_after_kill.map(|t| t - killed).unwrap_or_default();
    println!(
        "failover: first successful write {:.2} s after SIGKILL of the primary (default settings); {} writes acknowledged, {} errors (in flight at the kill): {:?}",
        took.as_secs_f64(),
        w.acked.len(),
        w.errors.len(),
        w.errors.first()
    );
    let bench = bench.join().expect("pgbench thread").expect("pgbench runs");
    println!(
        "pgbench: {}",
        String::from_utf8_lossy(&bench.stdout)
            .lines()
            .filter(|l| l.contains("processed") || l.contains("tps"))
            .collect::<Vec<_>>()
            .join("; ")
    );

    let new = primary_id(&p).expect("a new primary");
    assert_ne!(new, 0);
    assert!(p.ctx.state.load().nodes[0].fenced, "old primary fenced");
    assert!(
        w.errors.len() <= 3 + 4,
        "more errors than writes in flight: {:?}",
        w.errors
    );
    // Every acknowledged write survived: the synchronous replica had it.
    let row = c
        .query_one("SELECT count(*) FROM fo WHERE id = ANY($1)", &[&w.acked])
        .await
        .expect("count");
    assert_eq!(
        row.get::<_, i64>(0),
        w.acked.len() as i64,
        "acknowledged writes lost"
    );

    // The other replica was re-pointed and follows the new primary.
    let other = if new == 1 { 2 } else { 1 };
    c.execute("INSERT INTO fo VALUES (-1)", &[])
        .await
        .expect("marker");
    assert!(
        wait_until(Duration::from_secs(15), || pg
            .psql(other, "SELECT count(*) FROM fo WHERE id = -1")
            .is_ok_and(|o| o == "1")),
        "replica {other} does not follow the new primary"
    );
    use switchyard::cluster::events::EventKind;
    let ev = &p.ctx.state.events;
    assert_eq!(ev.count(EventKind::FailoverSucceeded), 1);
    assert_eq!(ev.count(EventKind::Repointed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_after_sigstop_and_the_old_primary_stays_fenced() {
    let pg = PgCluster::start(PgOptions::default()).expect("start cluster");
    let p = start_proxy(&failover_config(
        &pg,
        "promote",
        "health_check_timeout = \"1s\"",
    ));
    let c = connect(p.addr).await;
    c.batch_execute("CREATE TABLE st (v text)")
        .await
        .expect("ddl");
    pg.wait_replicas_caught_up(Duration::from_secs(10))
        .expect("replicas caught up");

    pg.pause(0).expect("SIGSTOP primary");
    let t = Instant::now();
    // Sent to the hung primary, this one is in flight there when the node is declared down:
    // it gets 08006 (its outcome on the old node is unknown, so it is not counted below) and
    // the client retries on the same connection, which waits for the failover.
    if let Err(e) = c.execute("INSERT INTO st VALUES ('in flight')", &[]).await {
        let code = e.as_db_error().map(|d| d.code().code().to_string());
        assert_eq!(code.as_deref(), Some("08006"), "{e}");
    }
    c.execute("INSERT INTO st VALUES ('during')", &[])
        .await
        .expect("a write retried during the hang waits for the failover and succeeds");
    println!(
        "SIGSTOP: write succeeded {:.2} s after the primary hung",
        t.elapsed().as_secs_f64()
    );
    let new = primary_id(&p).expect("new primary");
    assert_ne!(new, 0);

    pg.resume(0).expect("SIGCONT primary");
    assert!(
        wait_until(Duration::from_secs(15), || {
            let n = &p.ctx.state.load().nodes[0];
            n.health == Health::Up && n.fenced
        }),
        "old primary back and fenced: {:?}",
        p.ctx.state.load().nodes[0]
    );
    for _ in 0..5 {
        c.execute("INSERT INTO st VALUES ('after')", &[])
            .await
            .expect("write after SIGCONT");
    }
    assert_eq!(
        primary_id(&p),
        Some(new),
        "writes stay on the promoted node"
    );
    let on_old = pg
        .psql(0, "SELECT count(*) FROM st WHERE v IN ('during', 'after')")
        .expect("ask the old primary");
    assert_eq!(on_old, "0", "the fenced node got writes");
    let on_new = pg
        .psql(
            new,
            "SELECT count(*) FROM st WHERE v IN ('during', 'after')",
        )
        .expect("ask the new primary");
    assert_eq!(on_new, "6");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_mode_moves_writes_to_a_replica_promoted_by_hand() {
    let pg = PgCluster::start(PgOptions::default()).expect("start cluster");
    let interval = Duration::from_millis(200);
    let p = start_proxy(&failover_config(
        &pg,
        "follow",
        "health_check_interval = \"200ms\"",
    ));
    let c = connect(p.addr).await;
    assert_eq!(primary_id(&p), Some(0));

    pg.promote(1).expect("promote pg1 by hand");
    let t = Instant::now();
    let moved = wait_until(interval + Duration::from_secs(1), || {
        primary_id(&p) == Some(1)
    });
    println!(
        "follow: writes moved {:.2} s after pg_promote() returned",
        t.elapsed().as_secs_f64()
    );
    assert!(
        moved,
        "writes did not move within the interval plus a second"
    );
    // The old primary, still running on the older timeline, is fenced rather than a split brain.
    assert!(p.ctx.state.load().nodes[0].fenced);
    assert!(!p.ctx.state.load().split_brain);
    let row = c
        .query_one(
            "CREATE TABLE follow_t AS SELECT inet_server_port() AS port",
            &[],
        )
        .await;
    assert!(row.is_err(), "CREATE TABLE AS returns no row");
    let row = c
        .query_one("/* switchyard:primary */ SELECT port FROM follow_t", &[])
        .await
        .expect("read back");
    assert_eq!(
        row.get::<_, i32>(0) as u16,
        pg.nodes()[1].port,
        "the write ran on pg1"
    );
}
