//! sysbench (a real MySQL benchmark client) through the proxy against the MariaDB test bed:
//! oltp_read_write with and without server-side prepared statements, and oltp_point_select,
//! with every error counted (none ignored).

mod common;

use common::mysql::*;
use switchyard_testbed::shared_maria;

fn sysbench(p: &MyProxy, args: &[&str]) -> String {
    let out = std::process::Command::new("sysbench")
        .args(["--db-driver=mysql", "--mysql-host=127.0.0.1"])
        .arg(format!("--mysql-port={}", p.addr.port()))
        .args(["--mysql-user=app", "--mysql-password=app", "--mysql-db=app"])
        .args([
            "--tables=1",
            "--table-size=2000",
            "--mysql-ignore-errors=none",
        ])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run sysbench (Debian package sysbench)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "sysbench {args:?} failed:\n{text}");
    text
}

fn transactions(out: &str) -> u64 {
    out.lines()
        .find(|l| l.trim_start().starts_with("transactions:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn sysbench_oltp_runs_through_the_proxy_without_errors() {
    let _maria = shared_maria();
    let p = start_mysql_proxy(&mysql_config_for(shared_maria(), &[1, 1], "pool_size = 20"));
    let _ = sysbench(&p, &["oltp_read_write", "cleanup"]);
    sysbench(&p, &["oltp_read_write", "prepare"]);
    // One thread: oltp_read_write's random updates deadlock among threads even without a
    // proxy (1213), which would not say anything about switchyard.
    for ps in ["--db-ps-mode=auto", "--db-ps-mode=disable"] {
        let out = sysbench(
            &p,
            &["--threads=1", "--time=3", ps, "oltp_read_write", "run"],
        );
        println!("oltp_read_write {ps}: {} transactions", transactions(&out));
        assert!(transactions(&out) > 0, "{out}");
    }
    let out = sysbench(&p, &["--threads=4", "--time=3", "oltp_point_select", "run"]);
    println!(
        "oltp_point_select, 4 threads: {} transactions",
        transactions(&out)
    );
    assert!(transactions(&out) > 0, "{out}");
    sysbench(&p, &["oltp_read_write", "cleanup"]);
}
