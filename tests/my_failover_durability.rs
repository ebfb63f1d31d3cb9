//! MySQL/MariaDB promote mode loses no acknowledged write: with semi-synchronous replication
//! (AFTER_SYNC) a commit is acknowledged only once a replica has it in its relay log, and the
//! failover promotes the replica that received the most after letting it apply everything
//! it received. Then sysbench's oltp_write_only through the proxy while the primary is
//! SIGKILLed: it keeps going (ignoring the proxy's in-flight and no-node errors, which makes
//! it retry the transaction) and its per-second report shows writes resuming.

mod common;

use common::mysql::*;
use mysql_async::prelude::*;
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchyard::cluster::Health;
use switchyard_testbed::{MariaCluster, MariaOptions, ADMIN_PASSWORD, ADMIN_ROLE};

/// Config in promote mode with the default monitor and failover settings plus `keys` in the
/// cluster and `failover` in its failover section.
fn config(maria: &MariaCluster, keys: &str, failover: &str) -> String {
    let mut text = format!(
        "[general]\nstartup_timeout = \"2s\"\n\n[[clusters]]\nname = \"mdur\"\nprotocol = \"mysql\"\nlisten = \"127.0.0.1:0\"\n{keys}\n\n[clusters.failover]\nmode = \"promote\"\n{failover}\nuser = \"{ADMIN_ROLE}\"\npassword = \"{ADMIN_PASSWORD}\"\n\n[[clusters.users]]\nname = \"app\"\npassword = \"app\"\n"
    );
    for n in maria.nodes() {
        text += &format!(
            "\n[[clusters.nodes]]\nname = \"{}\"\naddr = \"127.0.0.1:{}\"\n",
            n.name, n.port
        );
    }
    text
}

fn url(p: &MyProxy) -> String {
    format!(
        "mysql://app:app@127.0.0.1:{}/app?prefer_socket=false",
        p.addr.port()
    )
}

/// A GTID position as domain -> sequence number.
fn gtid(pos: &str) -> HashMap<u32, u64> {
    pos.split(',')
        .filter_map(|g| {
            let mut parts = g.trim().split('-');
            let domain = parts.next()?.parse().ok()?;
            let _server = parts.next()?;
            Some((domain, parts.next()?.parse().ok()?))
        })
        .collect()
}

/// Transactions replica `i` has received (relay log) but not applied yet.
fn received_not_applied(maria: &MariaCluster, i: usize) -> u64 {
    let io = maria
        .slave_status(i)
        .ok()
        .and_then(|s| s.get("Gtid_IO_Pos").cloned())
        .unwrap_or_default();
    let applied = gtid(&maria.gtid_slave_pos(i).unwrap_or_default());
    gtid(&io)
        .iter()
        .map(|(d, s)| s.saturating_sub(applied.get(d).copied().unwrap_or(0)))
        .sum()
}

/// MASTER_DELAY of the replicas in the semi-sync test: longer than the failover takes to
/// start (failover.after = 2 s plus detection).
const APPLY_DELAY_SECS: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_write_is_lost_with_semi_sync() {
    let maria = MariaCluster::start(MariaOptions {
        semi_sync: true,
        ..MariaOptions::default()
    })
    .expect("start semi-sync MariaDB");
    // Both replicas apply what they receive 5 s late, as a SQL thread far behind its IO
    // thread under load does: when the promotion starts (about 3.5 s after the kill), the
    // last seconds of acknowledged writes are only in the relay logs, which a promotion that
    // does not let the SQL thread finish throws away. (So the time to the first write after
    // the kill includes about 1.5 s of catching up that a replica keeping up would not need.)
    for i in 1..=2 {
        maria
            .mysql(
                i,
                &format!(
                    "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = {APPLY_DELAY_SECS}; START SLAVE"
                ),
            )
            .expect("delay the SQL thread");
    }
    maria
        .wait_semi_sync(0, 2, Duration::from_secs(30))
        .expect("replicas back as semi-sync clients");
    let p = start_mysql_proxy(&config(&maria, "", ""));
    let pool = mysql_async::Pool::new(url(&p).as_str());
    let mut c = pool.get_conn().await.expect("connect");
    c.query_drop("CREATE TABLE dur (id BIGINT PRIMARY KEY, w INT NOT NULL)")
        .await
        .expect("ddl");
    drop(c);

    let stop = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let first_after_kill: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let (pool, stop, killed, first) = (
            pool.clone(),
            stop.clone(),
            killed_at.clone(),
            first_after_kill.clone(),
        );
        writers.push(tokio::spawn(async move {
            // Every attempt gets a new id: a failed INSERT may still have committed.
            let mut acked = Vec::new();
            let mut id = w * 1_000_000_000;
            let (mut failed, mut after_kill) = (0u64, 0u64);
            // Bounded: the test stops the writers within a minute; this is a backstop.
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                id += 1;
                let kill = *killed.lock().expect("lock");
                let ok = match pool.get_conn().await {
                    Ok(mut c) => c
                        .exec_drop("INSERT INTO dur VALUES (?, ?)", (id, w))
                        .await
                        .is_ok(),
                    Err(_) => false,
                };
                if ok {
                    acked.push(id);
                    if kill.is_some() {
                        after_kill += 1;
                        first.lock().expect("lock").get_or_insert_with(Instant::now);
                    }
                } else {
                    failed += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            (acked, failed, after_kill)
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Every commit so far waited for a replica's acknowledgement (none fell back to async).
    let semi = maria.semi_sync_status(0).expect("semi-sync status");
    let relay_only = [1, 2].map(|i| received_not_applied(&maria, i));
    maria.kill(0).expect("kill the primary");
    let kill = Instant::now();
    *killed_at.lock().expect("lock") = Some(kill);
    assert_eq!(semi["Rpl_semi_sync_master_status"], "ON", "{semi:?}");
    assert_eq!(semi["Rpl_semi_sync_master_no_tx"], "0", "{semi:?}");
    assert!(
        common::wait_until(Duration::from_secs(10), || p.ctx.state.load().nodes[0]
            .health
            == Health::Down),
        "primary loss not noticed"
    );
    let resumed = {
        let first = first_after_kill.clone();
        common::wait_until(Duration::from_secs(40), move || {
            first.lock().expect("lock").is_some()
        })
    };
    // A second of writes on the new primary, then stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    let (mut failed, mut after_kill) = (0, 0);
    for w in writers {
        let (ids, f, a) = w.await.expect("writer");
        acked.extend(ids);
        failed += f;
        after_kill += a;
    }
    assert!(resumed, "writes never resumed");
    let took = first_after_kill
        .lock()
        .expect("lock")
        .map(|t| t - kill)
        .unwrap_or_default();
    let snap = p.ctx.state.load();
    let new = snap.primary().map(|n| n.id).expect("a new primary");
    assert_ne!(new, 0);
    let present: HashSet<i64> = maria
        .mysql(new, "SELECT id FROM app.dur")
        .expect("read the new primary")
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let lost: Vec<i64> = acked
        .iter()
        .copied()
        .filter(|id| !present.contains(id))
        .collect();
    println!(
        "mysql semi-sync failover: {} writes acknowledged ({after_kill} after the kill, {failed} failed attempts), {} lost; \
         received but not applied at the kill: {relay_only:?} transactions (replicas 1, 2); \
         first successful write {:.2} s after SIGKILL of the primary; new primary maria{new}",
        acked.len(),
        lost.len(),
        took.as_secs_f64()
    );
    assert!(
        relay_only.iter().any(|&n| n > 0),
        "no transaction was waiting in a relay log at the kill: the test did not test the catch-up"
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged writes are missing on the new primary, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    pool.disconnect().await.expect("disconnect");
}

#[test]
fn catch_up_is_bounded_and_the_promotion_goes_on() {
    let maria = MariaCluster::start(MariaOptions::default()).expect("start MariaDB");
    // The replicas apply everything 60 s late; failover.timeout = 4 s gives the catch-up 2 s.
    for i in 1..=2 {
        maria
            .mysql(
                i,
                "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 60; START SLAVE",
            )
            .expect("delay the SQL thread");
    }
    let p = start_mysql_proxy(&config(&maria, "", "timeout = \"4s\""));
    maria
        .mysql(
            0,
            "CREATE TABLE late (id INT PRIMARY KEY); INSERT INTO late VALUES (1), (2), (3)",
        )
        .expect("writes on the primary");
    let target = gtid(&maria.gtid_binlog_pos(0).expect("primary position"));
    let received = |i: usize| {
        maria
            .slave_status(i)
            .ok()
            .and_then(|s| s.get("Gtid_IO_Pos").map(|p| gtid(p)))
            .is_some_and(|have| {
                target
                    .iter()
                    .all(|(d, s)| have.get(d).is_some_and(|h| h >= s))
            })
    };
    assert!(
        common::wait_until(Duration::from_secs(10), || received(1) && received(2)),
        "the replicas did not receive the writes"
    );
    maria.kill(0).expect("kill the primary");
    let kill = Instant::now();
    let promoted = common::wait_until(Duration::from_secs(30), || {
        p.ctx.state.load().primary().is_some_and(|n| n.id != 0)
    });
    let took = kill.elapsed();
    assert!(promoted, "no promotion while the catch-up cannot finish");
    let new = p
        .ctx
        .state
        .load()
        .primary()
        .map(|n| n.id)
        .expect("new primary");
    println!(
        "mysql failover with a replica that cannot catch up: promoted {:.2} s after the kill (failover.after 2 s, catch-up budget 2 s)",
        took.as_secs_f64()
    );
    // Detection (about 1-3 s), failover.after, the 2 s budget, a probe timeout of slack.
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(15),
        "{took:?}"
    );
    assert_eq!(maria.mysql(new, "SELECT @@read_only").expect("ask"), "0");
    // What was received but not applied is gone (logged as a warning): the availability
    // choice of promote mode.
    assert_eq!(
        maria
            .mysql(
                new,
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'late'"
            )
            .expect("ask"),
        "0"
    );
}

/// One `[ Ns ] thds: .. tps: X ... err/s: E ...` line of sysbench's --report-interval
/// output: (N, X, E).
fn report_line(line: &str) -> Option<(u64, f64, f64)> {
    let rest = line.trim_start().strip_prefix('[')?;
    let (secs, rest) = rest.split_once(']')?;
    let secs = secs.trim().strip_suffix('s')?.parse().ok()?;
    let field = |name: &str| -> Option<f64> {
        rest.split_once(name)?
            .1
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((secs, field(" tps:")?, field("err/s:").unwrap_or(0.0)))
}

/// The number after `label` in sysbench's final summary ("ignored errors: 3 (0.21 per sec.)").
fn tally(out: &str, label: &str) -> Option<u64> {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn sysbench_command(p: &MyProxy) -> std::process::Command {
    let mut cmd = std::process::Command::new("sysbench");
    cmd.args(["--db-driver=mysql", "--mysql-host=127.0.0.1"])
        .arg(format!("--mysql-port={}", p.addr.port()))
        .args(["--mysql-user=app", "--mysql-password=app", "--mysql-db=app"])
        .args(["--tables=1", "--table-size=2000"])
        .stdin(std::process::Stdio::null());
    cmd
}

#[test]
fn sysbench_write_load_survives_a_primary_kill() {
    let maria = MariaCluster::start(MariaOptions::default()).expect("start MariaDB");
    let p = start_mysql_proxy(&config(&maria, "pool_size = 20", ""));
    let out = sysbench_command(&p)
        .args(["--mysql-ignore-errors=none", "oltp_write_only", "prepare"])
        .output()
        .expect("run sysbench (Debian package sysbench)");
    assert!(
        out.status.success(),
        "sysbench prepare: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // 1927: in flight on the node that died; 9001: no node (see below); 1213: deadlocks
    // among the threads, which happen without a proxy too. sysbench restarts the
    // transaction on an ignored error, on the same connection.
    //
    // With prepared statements (sysbench's default) the tally of ignored errors is in the
    // tens of thousands: until a probe marks the dead primary down (1-2 s), each
    // COM_STMT_EXECUTE that needs a new server connection to it gets 9001 ("Connection
    // refused") at once, and sysbench retries in a tight loop. COM_QUERY instead reports the
    // node down and waits for the failover (--db-ps-mode=disable: a few dozen errors, and
    // writes resume about a second sooner). Printed, not asserted, until that is fixed.
    let mut child = sysbench_command(&p)
        .args([
            "--threads=3",
            "--time=14",
            "--report-interval=1",
            "--mysql-ignore-errors=1927,9001,1213",
            "oltp_write_only",
            "run",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run sysbench");
    let started = Instant::now();
    let lines: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let reader = {
        let stdout = child.stdout.take().expect("stdout");
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("lock").push((Instant::now(), line));
            }
        })
    };
    let stderr = {
        let mut err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut s);
            s
        })
    };
    // Kill the primary once sysbench has reported 4 seconds of load.
    let warmed = common::wait_until(Duration::from_secs(30), || {
        lines
            .lock()
            .expect("lock")
            .iter()
            .any(|(_, l)| report_line(l).is_some_and(|(s, ..)| s >= 4))
    });
    if !warmed {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "sysbench reported no 4 s of load: {:?}",
            lines.lock().expect("lock")
        );
    }
    maria.kill(0).expect("kill the primary");
    let kill = Instant::now();
    // --time=14 plus a bound for a transaction stuck in the failover window.
    let deadline = started + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for sysbench") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "sysbench still running after 60 s:\n{}",
                lines
                    .lock()
                    .expect("lock")
                    .iter()
                    .map(|(_, l)| l.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().expect("stdout reader");
    let err = stderr.join().expect("stderr reader");
    let lines = lines.lock().expect("lock").clone();
    let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    assert!(status.success(), "sysbench failed ({status}):\n{text}{err}");
    let reports: Vec<(Instant, u64, f64, f64)> = lines
        .iter()
        .filter_map(|(at, l)| report_line(l).map(|(s, tps, errs)| (*at, s, tps, errs)))
        .collect();
    let before: Vec<f64> = reports
        .iter()
        .filter(|(at, ..)| *at < kill)
        .map(|r| r.2)
        .collect();
    let after: Vec<&(Instant, u64, f64, f64)> =
        reports.iter().filter(|(at, ..)| *at >= kill).collect();
    let mean_before = before.iter().sum::<f64>() / before.len().max(1) as f64;
    // The stall: the first report line after the kill with no transaction, else the first
    // dip under a quarter of the rate before; writes resumed at the next line with
    // transactions.
    let stall = after
        .iter()
        .position(|r| r.2 == 0.0)
        .or_else(|| after.iter().position(|r| r.2 < mean_before / 4.0));
    let resumed = stall.and_then(|i| after[i + 1..].iter().find(|r| r.2 > 0.0));
    let zero_seconds = after.iter().filter(|r| r.2 == 0.0).count();
    let ignored = tally(&text, "ignored errors:");
    let transactions = tally(&text, "transactions:");
    let reconnects = tally(&text, "reconnects:");
    println!(
        "sysbench oltp_write_only, 3 threads, primary SIGKILLed after 4 s: tps before {mean_before:.0}; \
         after the kill, tps {:?} and err/s {:?}; {zero_seconds} second(s) with no transaction; \
         {transactions:?} transactions, {ignored:?} ignored errors, {reconnects:?} reconnects",
        after.iter().map(|r| r.2).collect::<Vec<_>>(),
        after.iter().map(|r| r.3).collect::<Vec<_>>()
    );
    let (at, secs, tps, _) = resumed.unwrap_or_else(|| {
        panic!("no report line with transactions after the failover stall:\n{text}")
    });
    println!(
        "sysbench: writes resumed at the [ {secs}s ] report ({tps} tps), {:.2} s after the kill (1 s report resolution)",
        (*at - kill).as_secs_f64()
    );
    assert!(transactions.is_some_and(|n| n > 0), "{text}");
    assert!(ignored.is_some(), "no ignored-errors tally:\n{text}");
    let new = p.ctx.state.load().primary().map(|n| n.id);
    assert!(new.is_some_and(|n| n != 0), "no new primary: {new:?}");
}

#[test]
fn sysbench_report_lines_parse() {
    let l = "[ 5s ] thds: 3 tps: 85.01 qps: 510.05 (r/w/o: 0.00/340.03/170.02) lat (ms,95%): 46.63 err/s: 1.00 reconn/s: 0.00";
    assert_eq!(report_line(l), Some((5, 85.01, 1.0)));
    assert_eq!(
        report_line("[ 12s ] thds: 3 tps: 0.00 qps: 0.00"),
        Some((12, 0.0, 0.0))
    );
    assert_eq!(report_line("Threads started!"), None);
    let summary = "    transactions:                        1234   (88.10 per sec.)\n    ignored errors:                      3      (0.21 per sec.)\n";
    assert_eq!(tally(summary, "transactions:"), Some(1234));
    assert_eq!(tally(summary, "ignored errors:"), Some(3));
}
