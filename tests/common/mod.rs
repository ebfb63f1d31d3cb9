//! Shared helpers for integration tests: a switchyard in front of a real PostgreSQL topology.
#![allow(dead_code)]

pub mod mysql;
pub mod process;
pub mod raw;

use std::net::SocketAddr;
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};
use switchyard::config::Config;
use switchyard::frontend::pg::ClusterContext;
use switchyard_testbed::PgCluster;
use tokio_postgres::{Client, NoTls};

/// A switchyard serving one cluster, on a runtime thread of its own so it outlives each test's runtime.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// The cluster's shared state, to watch what the proxy believes.
    pub ctx: Arc<ClusterContext>,
}

/// Config text for `pg` with replica weights `weights` (primary weight 1), plus `extra` cluster keys.
pub fn config_for(pg: &PgCluster, weights: &[u32], extra: &str) -> String {
    let mut text = format!(
        "[general]\nstartup_timeout = \"2s\"\nmax_message_bytes = 1048576\n\n[[clusters]]\nname = \"test\"\nlisten = \"127.0.0.1:0\"\nhealth_check_interval = \"200ms\"\nhealth_check_timeout = \"3s\"\n{extra}\n[[clusters.users]]\nname = \"app\"\npassword = \"app\"\n"
    );
    for (i, n) in pg.nodes().iter().enumerate() {
        let w = if i == 0 {
            1
        } else {
            weights.get(i - 1).copied().unwrap_or(1)
        };
        text += &format!(
            "\n[[clusters.nodes]]\nname = \"{}\"\naddr = \"127.0.0.1:{}\"\nweight = {w}\n",
            n.name, n.port
        );
    }
    text
}

/// Starts a proxy for `config` (TOML text) on its own runtime thread.
pub fn start_proxy(config: &str) -> Proxy {
    let (addr, ctx) = start_server(config, |r| r.clusters[0].clone());
    Proxy { addr, ctx }
}

/// Starts a switchyard for `config` on a runtime thread of its own (it outlives each test's
/// runtime), with logs when SWITCHYARD_TEST_LOG is set; returns the first listener's address
/// and what `pick` takes from the running server.
pub fn start_server<T: Send + 'static>(
    config: &str,
    pick: fn(&switchyard::server::Running) -> T,
) -> (SocketAddr, T) {
    start_server_at(config, None, pick)
}

/// `start_server`, remembering `path` as the config file (for RELOAD).
pub fn start_server_at<T: Send + 'static>(
    config: &str,
    path: Option<std::path::PathBuf>,
    pick: fn(&switchyard::server::Running) -> T,
) -> (SocketAddr, T) {
    let cfg = Config::parse(config, "test.toml").expect("test config is valid");
    if std::env::var("SWITCHYARD_TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env(
                "SWITCHYARD_TEST_LOG",
            ))
            .with_test_writer()
            .try_init();
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let running = switchyard::server::start_from(cfg, path)
                .await
                .expect("proxy starts");
            tx.send((running.addrs[0], pick(&running)))
                .expect("report address");
            std::future::pending::<()>().await;
        });
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("proxy started")
}

/// One proxy per test binary over the shared topology, replicas weighted 1:3.
pub fn shared_proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| start_proxy(&config_for(switchyard_testbed::shared_pg(), &[1, 3], "")))
}

/// key=value connection string for the proxy.
pub fn conn_str(addr: SocketAddr, user: &str, password: &str) -> String {
    format!(
        "host={} port={} user={user} password={password} dbname=app",
        addr.ip(),
        addr.port()
    )
}

/// A tokio-postgres client through the proxy, as app/app.
pub async fn connect(addr: SocketAddr) -> Client {
    connect_as(addr, "app", "app").await
}

/// Polls `f` every 50 ms until it is true or `timeout` passes; returns whether it became true.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Port of the node a statement ran on, and whether it was in recovery.
pub async fn where_ran(c: &Client, sql_prefix: &str) -> (u16, bool) {
    let row = c
        .query_one(
            &format!("{sql_prefix}SELECT inet_server_port(), pg_is_in_recovery()"),
            &[],
        )
        .await
        .expect("where query");
    let port: i32 = row.get(0);
    (port as u16, row.get(1))
}

/// Runs pgbench through the proxy as app/app; panics when it fails; returns what it printed.
pub fn pgbench(p: &Proxy, args: &[&str]) -> String {
    let o = std::process::Command::new("pgbench")
        .args(["-h", "127.0.0.1", "-U", "app"])
        .arg("-p")
        .arg(p.addr.port().to_string())
        .args(args)
        .arg("app")
        .env("PGPASSWORD", "app")
        .output()
        .expect("run pgbench");
    let out = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "pgbench {args:?} failed:\n{out}");
    out
}

/// Makes login role `name` (password `name`, may use schema public) on the shared cluster,
/// so a test can count or terminate exactly its own server connections.
pub fn ensure_role(name: &str) {
    let pg = switchyard_testbed::shared_pg();
    pg.psql(
        0,
        &format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN CREATE ROLE {name} LOGIN PASSWORD '{name}'; END IF; END $$; GRANT ALL ON SCHEMA public TO {name}"
        ),
    )
    .expect("create role");
    pg.wait_replicas_caught_up(Duration::from_secs(10))
        .expect("replicas replay the role");
}

/// `config` with one more user `name` (password `name`) and its `extra` keys.
pub fn with_user(config: &str, name: &str, extra: &str) -> String {
    format!("{config}\n[[clusters.users]]\nname = \"{name}\"\npassword = \"{name}\"\n{extra}\n")
}

/// A tokio-postgres client through the proxy as `user` with password `password`.
pub async fn connect_as(addr: SocketAddr, user: &str, password: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(&conn_str(addr, user, password), NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// psql against the admin console on 127.0.0.1:`port` as `user`; Ok(its rows, unaligned,
/// columns separated by `|`) or Err(stderr).
pub fn psql_console(port: u16, user: &str, password: &str, sql: &str) -> Result<String, String> {
    let out = std::process::Command::new("psql")
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", user, "-d", "admin", "-X", "-A", "-t", "-F", "|"])
        .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run psql");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
