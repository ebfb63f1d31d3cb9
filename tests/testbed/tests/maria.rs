//! The test bed against real MariaDB 10.11: users, GTID replication, read_only replicas,
//! and the node controls the proxy's failure tests rely on.

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use switchyard_testbed::{shared_maria, MariaCluster, MariaOptions, ADMIN_PASSWORD, ADMIN_ROLE};

const WAIT: Duration = Duration::from_secs(30);

/// Reads the server's handshake packet within `timeout`; Err when none came.
fn greeting(port: u16, timeout: Duration) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout)?;
    s.set_read_timeout(Some(timeout))?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf)?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(buf[..n].to_vec())
}

fn wait_row(m: &MariaCluster, i: usize, sql: &str, want: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = m.mysql(i, sql);
        if got.as_deref().ok() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {i}: {sql} gave {got:?}, want {want:?}\n{}",
            m.log_tail(i).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn comes_up_with_gtid_replication_and_read_only_replicas() {
    let m = shared_maria();
    assert_eq!(m.nodes().len(), 3);
    assert!(!m.is_read_only(0).expect("test bed call"));
    assert_eq!(m.current_primary().expect("test bed call"), 0);
    let ids: Vec<String> = (0..3)
        .map(|i| m.mysql(i, "SELECT @@server_id").expect("test bed call"))
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);
    for i in 1..3 {
        let s = m.slave_status(i).expect("test bed call");
        assert_eq!(s["Using_Gtid"], "Slave_Pos", "{s:?}");
        assert_eq!(s["Slave_IO_Running"], "Yes");
        assert_eq!(s["Slave_SQL_Running"], "Yes");
        assert_eq!(s["Master_Port"], m.primary().port.to_string());
        assert!(m.is_read_only(i).expect("test bed call"));
        // The application user can read replication state (SLAVE MONITOR).
        let status = m.mysql_app(i, "SHOW SLAVE STATUS").expect("test bed call");
        assert!(status.contains("Slave_Pos"), "{status}");
    }
    assert!(m.app_url(0).starts_with("mysql://app:app@127.0.0.1:"));
    assert!(m.admin_url(1).contains(&format!(
        "{ADMIN_ROLE}:{ADMIN_PASSWORD}@127.0.0.1:{}",
        m.nodes()[1].port
    )));

    m.mysql_app(
        0,
        "CREATE TABLE shared_t (id INT PRIMARY KEY, v TEXT); INSERT INTO shared_t VALUES (1, 'one')",
    )
    .expect("test bed call");
    m.wait_replicas_caught_up(WAIT).expect("test bed call");
    for i in 1..3 {
        assert_eq!(
            m.mysql(i, "SELECT v FROM shared_t WHERE id = 1")
                .expect("test bed call"),
            "one"
        );
        assert_eq!(
            m.gtid_slave_pos(i).expect("test bed call"),
            m.gtid_binlog_pos(0).expect("test bed call")
        );
        let err = m
            .mysql_app(i, "INSERT INTO shared_t VALUES (2, 'two')")
            .expect_err("the write must fail")
            .to_string();
        assert!(err.contains("ERROR 1290"), "{err}");
    }
    assert_eq!(
        m.mysql(1, "SELECT COUNT(*) FROM shared_t")
            .expect("test bed call"),
        "1",
        "nothing was written on the replica"
    );
}

#[test]
fn stop_kill_pause_resume_and_start_node() {
    let m = MariaCluster::start(MariaOptions {
        replicas: 1,
        ..MariaOptions::default()
    })
    .expect("start a primary with one replica");
    let port0 = m.primary().port;
    m.mysql(0, "CREATE TABLE t (id INT PRIMARY KEY)")
        .expect("test bed call");

    // Pause: the kernel accepts, the server never greets; resume: it does.
    m.pause(0).expect("test bed call");
    assert!(!m.is_running(0).expect("test bed call"));
    let started = Instant::now();
    assert!(greeting(port0, Duration::from_millis(500)).is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
    m.resume(0).expect("test bed call");
    assert!(m.is_running(0).expect("test bed call"));
    assert!(greeting(port0, Duration::from_secs(10)).is_ok());
    m.resume(0).expect("test bed call");

    // Stop and start a replica: it resumes replicating and catches up.
    m.stop(1).expect("test bed call");
    assert!(!m.is_running(1).expect("test bed call"));
    assert!(m.pause(1).is_err());
    m.mysql(0, "INSERT INTO t VALUES (1)")
        .expect("test bed call");
    m.start_node(1).expect("test bed call");
    assert!(
        m.is_read_only(1).expect("test bed call"),
        "a restarted replica stays read_only"
    );
    m.wait_replicating(1, WAIT).expect("test bed call");
    wait_row(&m, 1, "SELECT COUNT(*) FROM t", "1");

    // Kill the primary: its port closes; started again, the replica reconnects by itself.
    m.kill(0).expect("test bed call");
    assert!(!m.is_running(0).expect("test bed call"));
    assert!(TcpStream::connect(("127.0.0.1", port0)).is_err());
    assert!(m.mysql(0, "SELECT 1").is_err());
    m.start_node(0).expect("test bed call");
    assert_eq!(m.nodes()[0].port, port0);
    assert!(!m.is_read_only(0).expect("test bed call"));
    m.mysql(0, "INSERT INTO t VALUES (2)")
        .expect("test bed call");
    m.wait_replicating(1, WAIT).expect("test bed call");
    m.wait_replicas_caught_up(WAIT).expect("test bed call");
    assert_eq!(
        m.mysql(1, "SELECT COUNT(*) FROM t").expect("test bed call"),
        "2"
    );
    assert!(m
        .log_tail(0)
        .expect("test bed call")
        .contains("ready for connections"));

    let base = m.base_dir().to_path_buf();
    drop(m);
    assert!(!base.exists(), "drop removes the temp dir");
    assert!(TcpStream::connect(("127.0.0.1", port0)).is_err());
}

#[test]
fn promote_and_repoint() {
    let started = Instant::now();
    let m = MariaCluster::start(MariaOptions::default()).expect("start three nodes");
    println!(
        "3-node MariaDB start: {:.2}s",
        started.elapsed().as_secs_f64()
    );
    m.mysql(0, "CREATE TABLE t (id INT PRIMARY KEY, at INT)")
        .expect("test bed call");
    m.mysql(0, "INSERT INTO t VALUES (1, @@server_id)")
        .expect("test bed call");
    m.wait_replicas_caught_up(WAIT).expect("test bed call");

    m.kill(0).expect("test bed call");
    let t = Instant::now();
    m.promote(1).expect("test bed call");
    println!("promote: {:.3}s", t.elapsed().as_secs_f64());
    assert!(!m.is_read_only(1).expect("test bed call"));
    assert!(m.slave_status(1).expect("test bed call").is_empty());
    assert_eq!(m.current_primary().expect("test bed call"), 1);
    m.repoint(2, 1).expect("test bed call");
    m.wait_replicating(2, WAIT).expect("test bed call");
    assert_eq!(
        m.slave_status(2).expect("test bed call")["Master_Port"],
        m.nodes()[1].port.to_string()
    );
    m.mysql_app(1, "INSERT INTO t VALUES (2, @@server_id)")
        .expect("test bed call");
    wait_row(&m, 2, "SELECT at FROM t WHERE id = 2", "2");
    m.wait_replicas_caught_up(WAIT).expect("test bed call");

    // A promoted node restarts writable.
    m.stop(1).expect("test bed call");
    m.start_node(1).expect("test bed call");
    assert!(!m.is_read_only(1).expect("test bed call"));

    // The old primary comes back writable, then rejoins as a replica of node 1.
    m.start_node(0).expect("test bed call");
    assert_eq!(
        m.current_primary().expect("test bed call"),
        0,
        "two primaries: lower index"
    );
    m.repoint(0, 1).expect("test bed call");
    assert!(m.is_read_only(0).expect("test bed call"));
    m.wait_replicating(0, WAIT).expect("test bed call");
    m.wait_replicas_caught_up(WAIT).expect("test bed call");
    assert_eq!(m.current_primary().expect("test bed call"), 1);
    assert_eq!(
        m.mysql(0, "SELECT at FROM t WHERE id = 2")
            .expect("test bed call"),
        "2"
    );
    let err = m
        .mysql_app(0, "INSERT INTO t VALUES (3, 0)")
        .expect_err("the write must fail")
        .to_string();
    assert!(err.contains("ERROR 1290"), "{err}");
}

#[test]
fn semi_sync_replicas_acknowledge_commits() {
    let m = MariaCluster::start(MariaOptions {
        replicas: 1,
        semi_sync: true,
        ..MariaOptions::default()
    })
    .expect("start a semi-sync primary with one replica");
    let tx = |key: &str| -> u64 {
        m.semi_sync_status(0).expect("test bed call")[key]
            .parse()
            .expect("a number")
    };
    let before = tx("Rpl_semi_sync_master_yes_tx");
    m.mysql(
        0,
        "CREATE TABLE s (id INT PRIMARY KEY); INSERT INTO s VALUES (1)",
    )
    .expect("test bed call");
    assert!(tx("Rpl_semi_sync_master_yes_tx") >= before + 2);
    assert_eq!(tx("Rpl_semi_sync_master_no_tx"), 0);
    // A restarted replica comes back as a semi-sync client by itself.
    m.kill(1).expect("test bed call");
    m.start_node(1).expect("test bed call");
    m.wait_semi_sync(0, 1, WAIT)
        .expect("the replica reconnects as semi-sync");
    m.wait_replicas_caught_up(WAIT).expect("caught up");
    // A test bed promotion turns the master side on at the new primary.
    m.promote(1).expect("test bed call");
    assert_eq!(
        m.semi_sync_status(1).expect("test bed call")["Rpl_semi_sync_master_status"],
        "ON"
    );
}
