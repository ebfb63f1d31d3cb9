//! RELOAD from the admin console, and SIGHUP to the real binary, against the shared
//! PostgreSQL test bed: a broken file is refused with file, key and reason and the running
//! config stays; a valid one adds a replica that then gets reads, without dropping a client.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_testbed::shared_pg;

/// Config text for the shared primary and the given replicas (indexes into the test bed).
fn config(replicas: &[usize], extra_user: bool) -> String {
    let pg = shared_pg();
    let mut text = String::from(
        "[admin]\nlisten_postgres = \"127.0.0.1:0\"\n\n[[admin.users]]\nname = \"admin\"\npassword = \"admin\"\nrole = \"admin\"\n\n[[clusters]]\nname = \"rl\"\nlisten = \"127.0.0.1:0\"\nhealth_check_interval = \"200ms\"\n\n[[clusters.users]]\nname = \"app\"\npassword = \"app\"\n",
    );
    if extra_user {
        text += "\n[[clusters.users]]\nname = \"app2\"\npassword = \"app\"\n";
    }
    for i in std::iter::once(0).chain(replicas.iter().copied()) {
        let n = &pg.nodes()[i];
        text += &format!(
            "\n[[clusters.nodes]]\nname = \"{}\"\naddr = \"127.0.0.1:{}\"\n",
            n.name, n.port
        );
    }
    text
}

fn psql_admin(port: u16, sql: &str) -> Result<String, String> {
    psql_console(port, "admin", "admin", sql)
}

/// Ports `n` one-query sessions' reads land on.
async fn read_ports(addr: std::net::SocketAddr, n: usize) -> Vec<i32> {
    let mut out = Vec::new();
    for _ in 0..n {
        let c = connect(addr).await;
        out.push(
            c.query_one("SELECT inet_server_port()", &[])
                .await
                .expect("read")
                .get(0),
        );
    }
    out
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_refuses_a_broken_file_and_applies_a_valid_one() {
    let pg = shared_pg();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("switchyard.toml");
    let first = config(&[1], false);
    write(&path, &first);
    let (addr, console) = start_server_at(&first, Some(path.clone()), |r| {
        r.admin_postgres.expect("console")
    });
    let console = console.port();
    let (p1, p2) = (i32::from(pg.nodes()[1].port), i32::from(pg.nodes()[2].port));
    // A client connected before the reloads, with a session setting.
    let kept = connect(addr).await;
    kept.batch_execute("SET application_name = 'kept'")
        .await
        .expect("set");
    assert!(read_ports(addr, 10).await.iter().all(|p| *p == p1));

    // A broken file: refused with file, key and reason; everything stays.
    write(
        &path,
        &first.replace(
            "health_check_interval = \"200ms\"",
            "health_check_interval = \"soon\"",
        ),
    );
    let err = tokio::task::spawn_blocking(move || psql_admin(console, "RELOAD"))
        .await
        .expect("task")
        .expect_err("a broken file is refused");
    println!("broken reload: {err}");
    assert!(
        err.contains("switchyard.toml")
            && err.contains("health_check_interval")
            && err.contains("running one stays"),
        "{err}"
    );
    let name: String = kept
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .expect("the kept client still works")
        .get(0);
    assert_eq!(name, "kept");

    // A valid file adds pg2 and a user (who exists on the servers).
    pg.psql(
        0,
        "DO $$ BEGIN CREATE ROLE app2 LOGIN PASSWORD 'app'; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    .expect("create role app2");
    write(&path, &config(&[1, 2], true));
    let started = Instant::now();
    let ok = tokio::task::spawn_blocking(move || psql_admin(console, "RELOAD"))
        .await
        .expect("task")
        .expect("a valid reload");
    println!("reload ({:?}): {ok}", started.elapsed());
    assert!(
        ok.contains("node pg2 added") && ok.contains("user app2 added"),
        "{ok}"
    );
    let ports = read_ports(addr, 40).await;
    let on2 = ports.iter().filter(|p| **p == p2).count();
    println!("reads after the reload: {on2} of 40 on pg2");
    assert!((10..=30).contains(&on2), "{ports:?}");
    assert!(ports.iter().all(|p| *p == p1 || *p == p2));
    let nodes = tokio::task::spawn_blocking(move || {
        psql_admin(console, "SELECT name FROM nodes ORDER BY id")
    })
    .await
    .expect("task")
    .expect("nodes");
    assert_eq!(nodes, "pg0\npg1\npg2");
    // The new user logs in; the kept client was never dropped.
    let url = format!(
        "host=127.0.0.1 port={} user=app2 password=app dbname=app",
        addr.port()
    );
    let (c2, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("the added user logs in");
    tokio::spawn(conn);
    c2.simple_query("SELECT 1").await.expect("query as app2");
    let name: String = kept
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .expect("the kept client still works")
        .get(0);
    assert_eq!(name, "kept");
}

#[test]
fn sighup_reloads_the_running_binary() {
    let pg = shared_pg();
    let dir = tempfile::tempdir().expect("tempdir");
    let path: PathBuf = dir.path().join("switchyard.toml");
    // Fixed ports are needed to reach a separate process: pick free ones.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port()
    };
    let (port, console) = (free(), free());
    let text = |replicas: &[usize]| {
        config(replicas, false)
            .replace(
                "listen_postgres = \"127.0.0.1:0\"",
                &format!("listen_postgres = \"127.0.0.1:{console}\""),
            )
            .replace(
                "listen = \"127.0.0.1:0\"",
                &format!("listen = \"127.0.0.1:{port}\""),
            )
    };
    write(&path, &text(&[1]));
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["run", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switchyard");
    let nodes = || psql_admin(console, "SELECT count(*) FROM nodes");
    let up = wait_until(Duration::from_secs(20), || nodes().is_ok_and(|n| n == "2"));
    write(&path, &text(&[1, 2]));
    let pid = child.id().to_string();
    let hup = Command::new("kill").args(["-HUP", &pid]).status();
    let reloaded = wait_until(Duration::from_secs(10), || nodes().is_ok_and(|n| n == "3"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "switchyard did not come up");
    assert!(hup.is_ok_and(|s| s.success()), "kill -HUP");
    assert!(reloaded, "SIGHUP did not add the node: {:?}", nodes());
    let _ = pg;
}
