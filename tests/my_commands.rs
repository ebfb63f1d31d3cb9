//! MySQL commands no Rust driver at hand sends, through the proxy against the MariaDB test
//! bed: server-side cursors (COM_STMT_EXECUTE with a read-only cursor, COM_STMT_FETCH,
//! COM_STMT_RESET and COM_STMT_CLOSE with a cursor open) and COM_CHANGE_USER, driven by a
//! MariaDB Connector/C client (tests/c/cursor_client.c, built here with gcc); and
//! COM_CHANGE_USER and COM_RESET_CONNECTION from mysql_async.

mod common;

use common::mysql::*;
use mysql_async::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use switchyard_testbed::{shared_maria, MariaCluster};

/// A second user, for changes of user.
const OTHER: (&str, &str) = ("other", "otherpw");

/// The shared test bed with the second user and a 100-row table, replicated.
fn bed() -> &'static MariaCluster {
    static READY: OnceLock<()> = OnceLock::new();
    let maria = shared_maria();
    READY.get_or_init(|| {
        let (user, pw) = OTHER;
        maria
            .mysql(
                0,
                &format!(
                    "CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{pw}';\
                     GRANT ALL ON app.* TO '{user}'@'%';\
                     CREATE TABLE IF NOT EXISTS cur_t (id INT PRIMARY KEY);\
                     INSERT IGNORE INTO cur_t SELECT seq FROM seq_1_to_100;"
                ),
            )
            .expect("set up the user and table");
        maria
            .wait_replicas_caught_up(Duration::from_secs(20))
            .expect("replicated");
    });
    maria
}

/// A proxy that knows both users.
fn proxy() -> MyProxy {
    let (user, pw) = OTHER;
    start_mysql_proxy(&format!(
        "{}\n[[clusters.users]]\nname = \"{user}\"\npassword = \"{pw}\"\n",
        mysql_config_for(bed(), &[1, 1], "")
    ))
}

/// Builds tests/c/cursor_client.c against MariaDB Connector/C (Debian's libmariadb-dev).
fn client() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/c/cursor_client.c");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cursor_client");
        let flags = Command::new("mariadb_config")
            .args(["--cflags", "--libs"])
            .output()
            .expect("mariadb_config (Debian package libmariadb-dev)");
        let flags = String::from_utf8_lossy(&flags.stdout).into_owned();
        let status = Command::new("gcc")
            .args(["-O1", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(&src)
            .args(flags.split_whitespace())
            .status()
            .expect("gcc");
        assert!(status.success(), "building {}", src.display());
        out
    })
}

/// Runs the C client against `port`; its "key values..." lines.
fn run_client(port: u16) -> HashMap<String, String> {
    let (other, other_pw) = OTHER;
    let out = Command::new(client())
        .args([
            "127.0.0.1",
            &port.to_string(),
            "app",
            "app",
            "app",
            other,
            other_pw,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run the C client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && !text.contains("error:"),
        "C client failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn cursors_and_change_user_from_connector_c() {
    let maria = bed();
    // The same program straight against the primary: what the answers must be.
    let direct = run_client(maria.nodes()[0].port);
    let p = proxy();
    let proxied = run_client(p.addr.port());
    println!("direct: {direct:?}\nproxied: {proxied:?}");
    for key in [
        "interleaved",
        "after_reset",
        "after_close",
        "user_before",
        "wrong_password",
        "user_after",
        "marker_after",
        "rows_after",
        "after_wrong",
    ] {
        assert_eq!(proxied.get(key), direct.get(key), "{key}");
    }
    assert_eq!(proxied["interleaved"], "a 100 5050 b 50 1275");
    assert_eq!(proxied["wrong_password"], "1045");
    assert_eq!(
        proxied["after_wrong"],
        format!("user {}@%", OTHER.0),
        "a refused change of user keeps the session as it was"
    );
    assert_eq!(proxied["user_after"], format!("{}@%", OTHER.0));
    assert_eq!(
        proxied["marker_after"], "NULL",
        "a change of user resets the session"
    );
    // The whole cursor ran on one replica (a read), each fetch on the connection holding it.
    let whole: Vec<&str> = proxied["whole"].split_whitespace().collect();
    assert_eq!(&whole[..4], ["rows", "100", "sum", "5050"]);
    let replica_ports: Vec<String> = maria.nodes()[1..]
        .iter()
        .map(|n| n.port.to_string())
        .collect();
    assert!(
        replica_ports.iter().any(|p| p == whole[5]),
        "cursor read ran on port {} (replicas {replica_ports:?})",
        whole[5]
    );
    // Every connection the session held went back to its pool (cursors were closed).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let in_use: usize = p.ctx.pools.all().iter().map(|pool| pool.counts().1).sum();
        if in_use == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{in_use} server connections still held"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_and_reset_connection_from_mysql_async() {
    let _ = bed();
    let p = proxy();
    let url = format!(
        "mysql://app:app@127.0.0.1:{}/app?prefer_socket=false",
        p.addr.port()
    );
    let mut c = mysql_async::Conn::from_url(url.as_str())
        .await
        .expect("connect");
    c.query_drop("SET @v = 1, SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .expect("set");
    let user: Option<String> = c.query_first("SELECT CURRENT_USER()").await.expect("q");
    assert_eq!(user.as_deref(), Some("app@%"));
    // COM_RESET_CONNECTION: user variables and settings back to the defaults.
    c.reset().await.expect("reset connection");
    let (v, quotes): (Option<i64>, i64) = c
        .query_first("SELECT @v, @@sql_mode LIKE '%ANSI_QUOTES%'")
        .await
        .expect("q")
        .expect("row");
    assert_eq!(
        (v, quotes),
        (None, 0),
        "reset clears variables and settings"
    );
    // COM_CHANGE_USER to the other user, a transaction as that user, then back.
    let (other, other_pw) = OTHER;
    c.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some(other.into()))
            .with_pass(Some(other_pw.into())),
    )
    .await
    .expect("change user");
    let user: Option<String> = c.query_first("SELECT CURRENT_USER()").await.expect("q");
    assert_eq!(user.as_deref(), Some("other@%"));
    let mut tx = c
        .start_transaction(Default::default())
        .await
        .expect("begin");
    let (read_only, n): (i64, i64) = tx
        .query_first("SELECT @@read_only, count(*) FROM cur_t")
        .await
        .expect("q")
        .expect("row");
    assert_eq!(
        (read_only, n),
        (0, 100),
        "the transaction runs on the primary"
    );
    tx.commit().await.expect("commit");
    // A wrong password is refused and the session stays usable as the user it was.
    let err = c
        .change_user(
            mysql_async::ChangeUserOpts::default()
                .with_user(Some("app".into()))
                .with_pass(Some("nope".into())),
        )
        .await
        .expect_err("wrong password");
    println!("wrong password: {err}");
    assert!(err.to_string().contains("1045"), "{err}");
    drop(c);
    // The proxy keeps serving new clients.
    assert_eq!(mariadb(&p, "app", "app", "SELECT 1").as_deref(), Ok("1"));
}

/// Runs the mariadb CLI with LOCAL INFILE enabled on the client side.
fn mariadb_infile(p: &MyProxy, sql: &str) -> Result<String, String> {
    mariadb_with(p, "127.0.0.1", &["-uapp", "-papp", "--local-infile=1"], sql)
}

#[test]
fn load_data_local_infile_is_refused_unless_enabled() {
    let maria = bed();
    // 200,000 rows, about 5 MB: many packets from the client, streamed to the primary.
    let rows = 200_000;
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("local_infile.csv");
    let text: String = (1..=rows).map(|i| format!("{i},row-{i:010}\n")).collect();
    std::fs::write(&file, text).expect("write the data file");
    let load = format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE li FIELDS TERMINATED BY ','",
        file.display()
    );
    mariadb(
        &proxy(),
        "app",
        "app",
        "CREATE TABLE IF NOT EXISTS li (id INT PRIMARY KEY, v VARCHAR(20)); TRUNCATE li",
    )
    .expect("table");

    let off = proxy();
    let err = mariadb_infile(&off, &load).expect_err("refused by default");
    println!("local_infile off: {err}");
    assert!(
        err.contains("1148") && err.contains("local_infile = true"),
        "{err}"
    );

    let on = start_mysql_proxy(&mysql_config_for(maria, &[1, 1], "local_infile = true"));
    mariadb_infile(&on, &load).expect("LOAD DATA LOCAL INFILE through the proxy");
    let expected_sum: u64 = (1..=rows as u64).sum();
    // It ran on the primary, every row, and replicates like any write.
    assert_eq!(
        maria
            .mysql(0, "SELECT count(*), sum(id) FROM li")
            .expect("primary"),
        format!("{rows}\t{expected_sum}")
    );
    maria
        .wait_replicas_caught_up(Duration::from_secs(30))
        .expect("replicated");
    // The session is usable after the file, and so is the proxy.
    assert_eq!(
        mariadb_infile(&on, "SELECT 1; TRUNCATE li").as_deref(),
        Ok("1")
    );
    let _ = std::fs::remove_file(&file);
}
