//! Extended-protocol corner cases spoken byte by byte: Flush before Sync, and statement names
//! closed and re-parsed while copies live on several servers.

mod common;

use common::raw::*;
use common::*;
use std::sync::OnceLock;
use switchyard_postgres as pg;
use switchyard_testbed::shared_pg;
use tokio::io::AsyncWriteExt;

fn proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| start_proxy(&config_for(shared_pg(), &[1, 1], "auth = \"md5\"")))
}

async fn send(s: &mut tokio::net::TcpStream, msgs: &[bytes::Bytes]) {
    for m in msgs {
        s.write_all(m).await.expect("send");
    }
}

#[tokio::test]
async fn flush_then_sync_completes_on_one_server() {
    let mut s = raw_login(proxy()).await;
    for _ in 0..4 {
        send(
            &mut s,
            &[
                pg::parse("", "SELECT pg_is_in_recovery()", &[]),
                pg::describe(b'S', ""),
                pg::flush(),
            ],
        )
        .await;
        let mut tags = String::new();
        for _ in 0..3 {
            let (tag, _) = read_msg(&mut s)
                .await
                .expect("describe answers before Sync");
            tags.push(tag as char);
        }
        assert_eq!(tags, "1tT");
        send(&mut s, &[bind(""), pg::execute("", 0), pg::sync()]).await;
        let (tags, values) = until_ready(&mut s).await;
        assert_eq!(tags, "2DCZ");
        assert_eq!(values, ["t"]);
    }
}

#[tokio::test]
async fn a_closed_and_reparsed_name_runs_the_new_text_everywhere() {
    let mut s = raw_login(proxy()).await;
    send(&mut s, &[pg::parse("s1", "SELECT 1", &[]), pg::sync()]).await;
    assert_eq!(until_ready(&mut s).await.0, "1Z");
    // Executions spread over both replicas, each re-preparing s1 where it is missing.
    for _ in 0..4 {
        send(&mut s, &[bind("s1"), pg::execute("", 0), pg::sync()]).await;
        assert_eq!(
            until_ready(&mut s).await,
            ("2DCZ".to_string(), vec!["1".to_string()])
        );
    }
    send(&mut s, &[pg::close(b'S', "s1"), pg::sync()]).await;
    assert_eq!(until_ready(&mut s).await.0, "3Z");
    send(
        &mut s,
        &[
            pg::parse("s1", "SELECT 2", &[]),
            bind("s1"),
            pg::execute("", 0),
            pg::sync(),
        ],
    )
    .await;
    assert_eq!(
        until_ready(&mut s).await,
        ("12DCZ".to_string(), vec!["2".to_string()])
    );
    // Servers that still hold the old s1 must close and re-prepare it, never run "SELECT 1".
    for _ in 0..4 {
        send(&mut s, &[bind("s1"), pg::execute("", 0), pg::sync()]).await;
        assert_eq!(
            until_ready(&mut s).await,
            ("2DCZ".to_string(), vec!["2".to_string()])
        );
    }
    // An unknown statement is the server's error, and the session goes on.
    send(&mut s, &[bind("nope"), pg::execute("", 0), pg::sync()]).await;
    assert_eq!(until_ready(&mut s).await.0, "EZ");
    send(&mut s, &[pg::query("SELECT 3")]).await;
    assert_eq!(until_ready(&mut s).await.1, ["3"]);
}

#[tokio::test]
async fn describe_before_any_parse_on_a_server_and_deallocate() {
    let mut s = raw_login(proxy()).await;
    send(
        &mut s,
        &[pg::parse("d1", "SELECT $1::int AS n", &[]), pg::sync()],
    )
    .await;
    assert_eq!(until_ready(&mut s).await.0, "1Z");
    // Describes land on servers that never saw the Parse: the proxy prepares it there first.
    for _ in 0..4 {
        send(&mut s, &[pg::describe(b'S', "d1"), pg::sync()]).await;
        assert_eq!(until_ready(&mut s).await.0, "tTZ");
    }
    // DEALLOCATE of a protocol-level statement is the proxy's to answer.
    send(&mut s, &[pg::query("DEALLOCATE d1")]).await;
    assert_eq!(until_ready(&mut s).await.0, "CZ");
    send(&mut s, &[bind("d1"), pg::execute("", 0), pg::sync()]).await;
    assert_eq!(
        until_ready(&mut s).await.0,
        "EZ",
        "d1 is gone for this client"
    );
    send(&mut s, &[pg::query("DEALLOCATE d1")]).await;
    assert_eq!(
        until_ready(&mut s).await.0,
        "EZ",
        "a second DEALLOCATE fails like PostgreSQL's"
    );
    send(
        &mut s,
        &[
            pg::parse("d2", "SELECT 2", &[]),
            pg::sync(),
            pg::query("DEALLOCATE ALL"),
        ],
    )
    .await;
    assert_eq!(until_ready(&mut s).await.0, "1Z");
    assert_eq!(until_ready(&mut s).await.0, "CZ");
}
