//! The test bed against real PostgreSQL 15: roles, SCRAM, replication, and the node
//! controls the proxy's failure tests rely on.

use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use switchyard_testbed::{
    shared_pg, PgCluster, PgOptions, ADMIN_PASSWORD, ADMIN_ROLE, REPLICATION_PASSWORD,
    REPLICATION_ROLE,
};
use tokio_postgres::{Client, NoTls};

const WAIT: Duration = Duration::from_secs(30);

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

fn small_cluster() -> PgCluster {
    PgCluster::start(PgOptions {
        replicas: 1,
        ..PgOptions::default()
    })
    .expect("start a primary with one replica")
}

fn postmaster_pid(data_dir: &Path) -> i32 {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).expect("postmaster.pid");
    text.lines()
        .next()
        .and_then(|l| l.parse().ok())
        .expect("pid line")
}

/// A zombie counts as gone: this machine's pid 1 may never reap orphans.
fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

#[tokio::test]
async fn roles_over_tcp_with_scram() {
    let pg = shared_pg();
    assert_eq!(pg.nodes().len(), 3);
    assert_eq!(pg.primary().name, "pg0");
    for (i, node) in pg.nodes().iter().enumerate() {
        let client = connect(&pg.app_url(i)).await;
        let row = client
            .query_one(
                "SELECT pg_is_in_recovery(), current_user::text, inet_server_port()",
                &[],
            )
            .await
            .expect("query");
        assert_eq!(
            row.get::<_, bool>(0),
            i != 0,
            "{} recovery state",
            node.name
        );
        assert_eq!(row.get::<_, String>(1), "app");
        assert_eq!(row.get::<_, i32>(2), i32::from(node.port));
    }
    let stored = pg
        .psql(
            0,
            "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'app'",
        )
        .expect("psql");
    assert_eq!(stored, "SCRAM-SHA-256$");
    let wrong = pg.app_url(0).replace("password=app", "password=wrong");
    let err = tokio_postgres::connect(&wrong, NoTls).await.err();
    assert!(err.is_some(), "a wrong password must be refused");
}

#[tokio::test]
async fn admin_url_is_superuser_over_unix_socket() {
    let pg = shared_pg();
    let client = connect(&pg.admin_url(1)).await;
    let row = client
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .expect("query");
    assert!(row.get::<_, bool>(0));
}

#[test]
fn replicas_stream_over_tcp_as_the_replication_role() {
    let pg = shared_pg();
    let rows = pg
        .psql(
            0,
            "SELECT application_name, usename, client_addr, state FROM pg_stat_replication \
             ORDER BY 1",
        )
        .expect("psql");
    assert_eq!(
        rows,
        "pg1|replicator|127.0.0.1|streaming\npg2|replicator|127.0.0.1|streaming"
    );
    let role = pg
        .psql(
            0,
            "SELECT rolreplication, rolsuper, left(rolpassword, 14) FROM pg_authid \
             WHERE rolname = 'replicator'",
        )
        .expect("psql");
    assert_eq!(role, "t|f|SCRAM-SHA-256$");
    let hba = "SELECT count(*) FROM pg_hba_file_rules WHERE type = 'host' \
               AND database = '{replication}' AND address = '127.0.0.1' \
               AND auth_method = 'scram-sha-256'";
    assert_eq!(pg.psql(0, hba).expect("psql"), "1");
    for (i, node) in pg.nodes().iter().enumerate().skip(1) {
        let conninfo = pg.psql(i, "SHOW primary_conninfo").expect("psql");
        let words: Vec<&str> = conninfo.split_whitespace().collect();
        let port = format!("port={}", pg.primary().port);
        let user = format!("user={REPLICATION_ROLE}");
        let password = format!("password={REPLICATION_PASSWORD}");
        let app = format!("application_name={}", node.name);
        for want in ["host=127.0.0.1", &port, &user, &password, &app] {
            assert!(words.contains(&want), "{want} missing in {conninfo}");
        }
        let slot = pg.psql(i, "SHOW primary_slot_name").expect("psql");
        assert_eq!(slot, node.name);
    }
}

#[tokio::test]
async fn admin_role_is_superuser_over_tcp_with_scram() {
    let pg = shared_pg();
    let url = pg.admin_tcp_url(2);
    assert!(url.contains(&format!("user={ADMIN_ROLE} password={ADMIN_PASSWORD}")));
    let client = connect(&url).await;
    let row = client
        .query_one(
            "SELECT rolsuper, current_user::text FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .expect("query");
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, String>(1), ADMIN_ROLE);
    let wrong = url.replace(&format!("password={ADMIN_PASSWORD}"), "password=wrong");
    let err = tokio_postgres::connect(&wrong, NoTls).await.err();
    assert!(err.is_some(), "a wrong password must be refused");
}

#[tokio::test]
async fn rows_reach_every_replica() {
    let pg = shared_pg();
    let primary = connect(&pg.app_url(0)).await;
    primary
        .batch_execute(
            "CREATE TABLE replicated (id int PRIMARY KEY, note text);
             INSERT INTO replicated VALUES (1, 'hello');",
        )
        .await
        .expect("write on the primary");
    pg.wait_replicas_caught_up(WAIT).expect("catch up");
    for i in 1..pg.nodes().len() {
        let replica = connect(&pg.app_url(i)).await;
        let row = replica
            .query_one("SELECT note FROM replicated WHERE id = 1", &[])
            .await
            .expect("read on a replica");
        assert_eq!(row.get::<_, String>(0), "hello");
        let err = replica
            .batch_execute("INSERT INTO replicated VALUES (2, 'no')")
            .await
            .expect_err("a replica refuses writes");
        assert_eq!(err.code().map(|c| c.code()), Some("25006"));
    }
}

#[test]
fn psql_reports_errors_with_the_server_log() {
    let pg = shared_pg();
    let err = pg
        .psql(0, "SELECT * FROM no_such_table")
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains("no_such_table"), "{msg}");
    assert!(msg.contains("tail of"), "{msg}");
    assert!(pg.psql(9, "SELECT 1").is_err());
}

#[test]
fn kill_and_restart_a_replica_and_the_primary() {
    let pg = small_cluster();
    let port = pg.replicas()[0].port;
    pg.kill(1).expect("kill");
    assert!(!port_open(port), "a killed node's port is closed");
    assert!(!pg.is_running(1).expect("state"));
    pg.psql(0, "CREATE TABLE t (x int); INSERT INTO t VALUES (1);")
        .expect("write while the replica is down");
    pg.start_node(1).expect("restart the replica");
    assert_eq!(pg.replicas()[0].port, port);
    pg.wait_streaming(1, WAIT).expect("streams again");
    pg.wait_replicas_caught_up(WAIT).expect("catch up");
    assert_eq!(pg.psql(1, "SELECT sum(x) FROM t").expect("read"), "1");

    pg.stop(0).expect("fast shutdown of the primary");
    assert!(!port_open(pg.primary().port));
    pg.start_node(0).expect("restart the primary");
    pg.psql(0, "INSERT INTO t VALUES (2)").expect("write");
    pg.wait_streaming(1, WAIT).expect("the replica reconnects");
    pg.wait_replicas_caught_up(WAIT).expect("catch up");
    assert_eq!(pg.psql(1, "SELECT sum(x) FROM t").expect("read"), "3");
}

#[tokio::test]
async fn pause_and_resume_a_replica() {
    let pg = small_cluster();
    pg.pause(1).expect("pause");
    assert!(!pg.is_running(1).expect("state"));
    let attempt = tokio::time::timeout(
        Duration::from_millis(500),
        tokio_postgres::connect(&pg.app_url(1), NoTls),
    )
    .await;
    assert!(attempt.is_err(), "a paused node must not answer");
    pg.psql(0, "CREATE TABLE p (x int); INSERT INTO p VALUES (7);")
        .expect("write");
    pg.wait_replicas_caught_up(WAIT)
        .expect("paused replicas are skipped");
    pg.resume(1).expect("resume");
    pg.wait_replicas_caught_up(WAIT)
        .expect("catch up after resume");
    let client = connect(&pg.app_url(1)).await;
    let row = client
        .query_one("SELECT x FROM p", &[])
        .await
        .expect("read");
    assert_eq!(row.get::<_, i32>(0), 7);
}

#[test]
fn drop_stops_everything_and_removes_the_dir() {
    let pg = small_cluster();
    let base = pg.base_dir().to_path_buf();
    let pids: Vec<i32> = pg
        .nodes()
        .iter()
        .map(|n| postmaster_pid(&n.data_dir))
        .collect();
    let ports: Vec<u16> = pg.nodes().iter().map(|n| n.port).collect();
    assert!(base.is_dir());
    assert!(pids.iter().all(|&p| pid_alive(p)));
    pg.pause(1).expect("a paused node must not stall the drop");
    drop(pg);
    assert!(!base.exists(), "{} still exists", base.display());
    assert!(pids.iter().all(|&p| !pid_alive(p)), "postmasters survived");
    assert!(ports.iter().all(|&p| !port_open(p)), "ports still open");
}
