//! Real command-line clients through the proxy: psql and pgbench.

mod common;

use common::*;
use std::process::Command;
use switchyard_testbed::shared_pg;

fn psql(p: &Proxy, sql: &str) -> std::process::Output {
    Command::new("psql")
        .args([
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "app",
            "-d",
            "app",
        ])
        .arg("-p")
        .arg(p.addr.port().to_string())
        .arg("-c")
        .arg(sql)
        .env("PGPASSWORD", "app")
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("run psql")
}

fn stdout(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn psql_reads_on_replicas_and_writes_on_the_primary() {
    let p = shared_proxy();
    let pg = shared_pg();
    assert_eq!(stdout(&psql(p, "SELECT pg_is_in_recovery()")), "t");
    let out = stdout(&psql(
        p,
        "CREATE TABLE IF NOT EXISTS psql_t (v int); INSERT INTO psql_t VALUES (1); SELECT inet_server_port()",
    ));
    assert_eq!(out, pg.nodes()[0].port.to_string());
    // One psql session, several statements: SET survives a move between backends.
    let out = stdout(&psql(
        p,
        "SET application_name = 'from-psql'; SELECT current_setting('application_name'), pg_is_in_recovery()",
    ));
    // SET and SELECT are both reads: the whole text runs on a replica.
    assert_eq!(out, "from-psql|t");
}

#[test]
fn psql_wrong_password_is_28p01() {
    let p = shared_proxy();
    let o = Command::new("psql")
        .args([
            "-XAtq",
            "-h",
            "127.0.0.1",
            "-U",
            "app",
            "-d",
            "app",
            "-c",
            "SELECT 1",
        ])
        .arg("-p")
        .arg(p.addr.port().to_string())
        .env("PGPASSWORD", "wrong")
        .output()
        .expect("run psql");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("password authentication failed for user \"app\""),
        "{err}"
    );
}

fn failed_transactions(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no failed-transactions line in:\n{out}"))
}

fn processed(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|rest| rest.split('/').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no processed line in:\n{out}"))
}

#[test]
fn pgbench_runs_clean_in_every_query_mode() {
    let p = shared_proxy();
    pgbench(p, &["-i", "-s", "1", "-q"]);
    for mode in ["simple", "extended", "prepared"] {
        let out = pgbench(p, &["-c", "4", "-j", "2", "-T", "10", "-M", mode]);
        assert_eq!(failed_transactions(&out), 0, "mode {mode}:\n{out}");
        assert!(processed(&out) > 0, "mode {mode}:\n{out}");
        // Read-only runs too, which the proxy spreads over the replicas.
        let out = pgbench(p, &["-S", "-c", "4", "-j", "2", "-t", "200", "-M", mode]);
        assert_eq!(failed_transactions(&out), 0, "mode {mode} -S:\n{out}");
        assert_eq!(processed(&out), 800, "mode {mode} -S:\n{out}");
    }
}
