//! The watchdog removes a cluster whose test process died without running Drop.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_testbed::{PgCluster, PgOptions};

const CHILD_ENV: &str = "SWITCHYARD_TESTBED_WATCHDOG_CHILD";

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

#[test]
#[ignore = "helper: run by watchdog_cleans_up_after_a_killed_process"]
fn child_holds_a_cluster() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let pg = PgCluster::start(PgOptions {
        replicas: 1,
        ..PgOptions::default()
    })
    .expect("start");
    pg.pause(1).expect("pause");
    let pids: Vec<String> = pg
        .nodes()
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(n.data_dir.join("postmaster.pid")).expect("pid");
            text.lines().next().expect("pid line").to_owned()
        })
        .collect();
    println!("READY {} {}", pg.base_dir().display(), pids.join(","));
    std::io::stdout().flush().expect("flush");
    // The parent SIGKILLs us long before this ends.
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn watchdog_cleans_up_after_a_killed_process() {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "child_holds_a_cluster",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child test process");
    let stdout = child.stdout.take().expect("stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("READY "));
    let Some(ready) = ready else {
        let _ = child.kill();
        panic!("the child did not start a cluster: {:?}", child.wait());
    };
    let mut parts = ready.split_whitespace().skip(1);
    let base = PathBuf::from(parts.next().expect("base dir"));
    let pids: Vec<i32> = parts
        .next()
        .expect("pids")
        .split(',')
        .map(|p| p.parse().expect("pid"))
        .collect();
    assert!(base.is_dir());
    assert!(pids.iter().all(|&p| pid_alive(p)));

    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");

    let deadline = Instant::now() + Duration::from_secs(20);
    while (base.exists() || pids.iter().any(|&p| pid_alive(p))) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!base.exists(), "{} was not removed", base.display());
    assert!(pids.iter().all(|&p| !pid_alive(p)), "postmasters survived");
}
