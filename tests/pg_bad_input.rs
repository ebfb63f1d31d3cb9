//! Bad input from clients: each bad client gets a clear error and is closed; everyone else
//! carries on. Runs its own proxy with md5 authentication, which a raw-socket test can speak.

mod common;

use common::raw::*;
use common::*;
use std::sync::OnceLock;
use std::time::Duration;
use switchyard_testbed::shared_pg;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn md5_proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| start_proxy(&config_for(shared_pg(), &[1, 1], "auth = \"md5\"")))
}

/// Sends `bytes` after login; expects an 08P01 error and then the connection closed.
async fn expect_protocol_error(bytes: &[u8]) {
    let p = md5_proxy();
    let mut s = raw_login(p).await;
    s.write_all(bytes).await.expect("send bad bytes");
    let (tag, body) = read_msg(&mut s).await.expect("an error before closing");
    assert_eq!(tag, b'E');
    assert_eq!(sqlstate(&body), "08P01");
    assert!(
        read_msg(&mut s).await.is_none(),
        "connection closed after the error"
    );
    // Everyone else is unaffected.
    let c = connect(p.addr).await;
    where_ran(&c, "").await;
}

#[tokio::test]
async fn malformed_length_is_a_protocol_error() {
    expect_protocol_error(&[b'Q', 0, 0, 0, 2]).await;
}

#[tokio::test]
async fn oversized_message_is_a_protocol_error() {
    // The test config caps messages at 1 MiB.
    let mut m = vec![b'Q'];
    m.extend_from_slice(&(4 * 1024 * 1024i32).to_be_bytes());
    expect_protocol_error(&m).await;
}

#[tokio::test]
async fn unknown_message_type_is_a_protocol_error() {
    expect_protocol_error(&[b'!', 0, 0, 0, 4]).await;
}

#[tokio::test]
async fn query_text_without_terminator_is_a_protocol_error() {
    expect_protocol_error(&[b'Q', 0, 0, 0, 7, b'S', b'E', b'L']).await;
}

#[tokio::test]
async fn garbage_startup_packet_is_refused() {
    let p = md5_proxy();
    let mut s = TcpStream::connect(p.addr).await.expect("connect");
    s.write_all(&[0, 0, 0, 12, 0x12, 0x34, 0x56, 0x78, 1, 2, 3, 4])
        .await
        .expect("send");
    let (tag, body) = read_msg(&mut s).await.expect("error");
    assert_eq!(tag, b'E');
    assert_eq!(sqlstate(&body), "08P01");
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_startup_timeout() {
    let p = md5_proxy();
    let mut s = TcpStream::connect(p.addr).await.expect("connect");
    // startup_timeout is 2s in the test config; read_msg waits at most 10s.
    let started = std::time::Instant::now();
    if let Some((tag, body)) = read_msg(&mut s).await {
        assert_eq!(tag, b'E');
        assert_eq!(sqlstate(&body), "08006");
    }
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "closed by the timeout, not by the test"
    );
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    assert!(matches!(n, Ok(Ok(_))), "connection closed");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_28p01() {
    for (user, pass) in [("app", "nope"), ("nobody", "app")] {
        for p in [md5_proxy(), shared_proxy()] {
            let err = tokio_postgres::connect(&conn_str(p.addr, user, pass), tokio_postgres::NoTls)
                .await
                .err()
                .expect("login refused");
            assert_eq!(
                err.code(),
                Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn md5_login_works_with_a_real_client() {
    let c = connect(md5_proxy().addr).await;
    let (_, in_recovery) = where_ran(&c, "").await;
    assert!(in_recovery);
}
