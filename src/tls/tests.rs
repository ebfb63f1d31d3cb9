use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use switchyard_testbed::TestPki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::*;

const HOSTS: &[&str] = &["localhost", "127.0.0.1"];

fn pki() -> TestPki {
    TestPki::generate(HOSTS).expect("test pki")
}

/// unwrap_err without needing Debug on acceptors and connectors.
fn fails<T>(r: Result<T, TlsError>) -> TlsError {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn server_cfg(pki: &TestPki) -> ServerTlsConfig {
    ServerTlsConfig {
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        require: false,
    }
}

fn backend_cfg(mode: BackendTlsMode, ca: Option<&PathBuf>) -> BackendTlsConfig {
    BackendTlsConfig {
        mode,
        ca: ca.cloned(),
    }
}

/// Every test is bounded: a TLS bug tends to show up as both sides waiting forever.
async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("test timed out")
}

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// Reads "ping" and answers "pong" over whatever stream the server ended up with.
async fn ping_pong_server(mut s: MaybeTls) -> MaybeTls {
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"ping");
    s.write_all(b"pong").await.expect("write");
    s.flush().await.expect("flush");
    s
}

async fn ping_pong_client(s: &mut MaybeTls) {
    // Vectored on purpose, so the forwarding of poll_write_vectored is exercised.
    let bufs = [IoSlice::new(b"pi"), IoSlice::new(b"ng")];
    let n = s.write_vectored(&bufs).await.expect("write");
    assert!(n > 0);
    // A partial vectored write is legal; finish with a plain one.
    s.write_all(&b"ping"[n..]).await.expect("write");
    s.flush().await.expect("flush");
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"pong");
}

/// A TLS server on loopback that runs `acceptor` on one connection and plays ping-pong.
async fn tls_server(
    acceptor: TlsAcceptor,
) -> (SocketAddr, JoinHandle<Result<MaybeTls, io::Error>>) {
    let (listener, addr) = listen().await;
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let tls = acceptor.accept(tcp).await?;
        Ok(ping_pong_server(MaybeTls::from(tls)).await)
    });
    (addr, task)
}

#[tokio::test]
async fn verify_full_round_trip_both_ways() {
    bounded(async {
        let pki = pki();
        let acceptor = acceptor(&server_cfg(&pki)).expect("acceptor");
        let (addr, server) = tls_server(acceptor).await;
        let connector = connector(&backend_cfg(BackendTlsMode::VerifyFull, Some(&pki.ca_cert)))
            .expect("connector")
            .expect("verify-full builds one");
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("server name");
        let tls = connector.connect(name, tcp).await.expect("tls handshake");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_POSTGRESQL));
        let mut client = MaybeTls::from(tls);
        assert!(client.is_tls());
        assert_eq!(client.tcp().peer_addr().expect("peer addr"), addr);
        ping_pong_client(&mut client).await;
        let server = server.await.expect("server task").expect("server");
        assert!(matches!(server, MaybeTls::ServerTls(_)));
        assert_eq!(server.tcp().local_addr().expect("local addr"), addr);
    })
    .await;
}

#[tokio::test]
async fn verify_full_accepts_ip_address_names() {
    bounded(async {
        let pki = pki();
        let (addr, server) = tls_server(acceptor(&server_cfg(&pki)).expect("acceptor")).await;
        let connector = connector(&backend_cfg(BackendTlsMode::VerifyFull, Some(&pki.ca_cert)))
            .expect("connector")
            .expect("verify-full builds one");
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("127.0.0.1").expect("server name");
        let mut client = MaybeTls::from(connector.connect(name, tcp).await.expect("tls handshake"));
        ping_pong_client(&mut client).await;
        server.await.expect("server task").expect("server");
    })
    .await;
}

#[tokio::test]
async fn wrong_host_name_fails_verification() {
    bounded(async {
        let pki = pki();
        let (addr, server) = tls_server(acceptor(&server_cfg(&pki)).expect("acceptor")).await;
        let connector = connector(&backend_cfg(BackendTlsMode::VerifyFull, Some(&pki.ca_cert)))
            .expect("connector")
            .expect("verify-full builds one");
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("db.example.com").expect("server name");
        let err = connector.connect(name, tcp).await.expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("not valid for name"), "{msg}");
        assert!(
            server.await.expect("server task").is_err(),
            "server must see the alert"
        );
    })
    .await;
}

#[tokio::test]
async fn acceptor_missing_files_name_the_file() {
    let pki = pki();
    let missing = pki.dir.path().join("nope.crt");
    let err = fails(acceptor(&ServerTlsConfig {
        cert: missing.clone(),
        ..server_cfg(&pki)
    }));
    let msg = err.to_string();
    assert!(matches!(err, TlsError::Cert { .. }), "{err:?}");
    assert!(
        msg.starts_with(&format!("tls cert {}: cannot read", missing.display())),
        "{msg}"
    );
    assert!(err.is_config());

    let err = fails(acceptor(&ServerTlsConfig {
        key: missing.clone(),
        ..server_cfg(&pki)
    }));
    assert!(matches!(err, TlsError::Key { .. }), "{err:?}");
    assert!(err.to_string().contains(&missing.display().to_string()));
}

#[tokio::test]
async fn acceptor_garbage_key_names_the_file() {
    let pki = pki();
    let garbage = pki.dir.path().join("garbage.key");
    std::fs::write(&garbage, "this is not a key\n").expect("write file");
    let err = fails(acceptor(&ServerTlsConfig {
        key: garbage.clone(),
        ..server_cfg(&pki)
    }));
    let msg = err.to_string();
    assert_eq!(
        msg,
        format!(
            "tls key {}: no PKCS#8, PKCS#1 or SEC1 private key found (expected PEM)",
            garbage.display()
        )
    );

    // A PEM block that claims to be a key but holds junk: rustls refuses it when signing is set up.
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("write file");
    let err = fails(acceptor(&ServerTlsConfig {
        key: garbage.clone(),
        ..server_cfg(&pki)
    }));
    assert!(matches!(err, TlsError::Key { .. }), "{err:?}");
    assert!(err.to_string().contains(&garbage.display().to_string()));

    // The usual mix-up: the key given as the certificate.
    let err = fails(acceptor(&ServerTlsConfig {
        cert: pki.server_key.clone(),
        ..server_cfg(&pki)
    }));
    assert_eq!(
        err.to_string(),
        format!(
            "tls cert {}: no CERTIFICATE block found (expected PEM)",
            pki.server_key.display()
        )
    );
}

#[tokio::test]
async fn acceptor_key_of_another_certificate_is_refused() {
    let pki = pki();
    let other = TestPki::generate(HOSTS).expect("test pki");
    let err = fails(acceptor(&ServerTlsConfig {
        key: other.server_key.clone(),
        ..server_cfg(&pki)
    }));
    assert_eq!(
        err.to_string(),
        format!(
            "tls key {}: does not match the certificate in {}",
            other.server_key.display(),
            pki.server_cert.display()
        )
    );
}

#[test]
fn connector_config_checks() {
    assert!(connector(&BackendTlsConfig::default())
        .expect("connector")
        .is_none());
    assert!(connector(&backend_cfg(BackendTlsMode::Prefer, None))
        .expect("connector")
        .is_some());
    let err = fails(connector(&backend_cfg(BackendTlsMode::VerifyFull, None)));
    assert_eq!(
        err.to_string(),
        "tls config: backend tls mode verify-full needs `ca`"
    );
    let ca = PathBuf::from("/nonexistent/ca.pem");
    let err = fails(connector(&backend_cfg(BackendTlsMode::Require, Some(&ca))));
    assert!(err
        .to_string()
        .contains("only used by mode verify-full, but mode is require"));
    let err = fails(connector(&backend_cfg(
        BackendTlsMode::VerifyFull,
        Some(&ca),
    )));
    assert!(
        err.to_string()
            .starts_with("tls ca /nonexistent/ca.pem: cannot read"),
        "{err}"
    );
}

#[test]
fn config_deserializes() {
    #[derive(Debug, serde::Deserialize)]
    struct File {
        listen: ServerTlsConfig,
        backend: BackendTlsConfig,
    }
    let f: File = toml::from_str(
        r#"
        listen = { cert = "a.crt", key = "a.key" }
        backend = { mode = "verify-full", ca = "ca.crt" }
        "#,
    )
    .expect("toml");
    assert!(!f.listen.require);
    assert_eq!(f.backend.mode, BackendTlsMode::VerifyFull);
    assert_eq!(f.backend.ca, Some(PathBuf::from("ca.crt")));
    assert!(f.backend.validate().is_ok());

    let b: BackendTlsConfig = toml::from_str("").expect("toml");
    assert_eq!(b.mode, BackendTlsMode::Disable);
    let b: BackendTlsConfig = toml::from_str(r#"mode = "prefer""#).expect("toml");
    assert_eq!(b.mode, BackendTlsMode::Prefer);
    assert!(toml::from_str::<BackendTlsConfig>(r#"mode = "verify-ca""#).is_err());
    assert!(toml::from_str::<BackendTlsConfig>(r#"sslmode = "require""#).is_err());
    assert!(toml::from_str::<ServerTlsConfig>(
        r#"cert = "a"
key = "b"
required = true"#
    )
    .is_err());
    for mode in ["disable", "prefer", "require", "verify-full"] {
        let b: BackendTlsConfig = toml::from_str(&format!("mode = {mode:?}")).expect("toml");
        assert_eq!(b.mode.to_string(), mode);
    }
}

/// A fake PostgreSQL server: checks the SSLRequest, answers `answer`, then plays ping-pong in
/// plain text or, after 'S', over TLS with `acceptor`.
async fn fake_backend(
    answer: u8,
    acceptor: Option<TlsAcceptor>,
) -> (SocketAddr, JoinHandle<Option<MaybeTls>>) {
    let (listener, addr) = listen().await;
    let task = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.expect("accept");
        let mut req = [0u8; 8];
        tcp.read_exact(&mut req).await.expect("read");
        assert_eq!(req, SSL_REQUEST);
        tcp.write_all(&[answer]).await.expect("write");
        let stream = match (answer, acceptor) {
            (b'S', Some(a)) => match a.accept(tcp).await {
                Ok(tls) => MaybeTls::from(tls),
                Err(_) => return None,
            },
            (b'N', _) => MaybeTls::from(tcp),
            _ => return None,
        };
        Some(ping_pong_server(stream).await)
    });
    (addr, task)
}

async fn negotiate(
    addr: SocketAddr,
    cfg: &BackendTlsConfig,
    name: &str,
) -> Result<MaybeTls, TlsError> {
    let connector = connector(cfg).expect("connector");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    negotiate_backend(tcp, connector.as_ref(), cfg.mode, name).await
}

#[tokio::test]
async fn server_answering_n_is_plain_for_prefer() {
    bounded(async {
        let (addr, server) = fake_backend(b'N', None).await;
        let mut s = negotiate(
            addr,
            &backend_cfg(BackendTlsMode::Prefer, None),
            "localhost",
        )
        .await
        .expect("negotiate");
        assert!(!s.is_tls());
        ping_pong_client(&mut s).await;
        assert!(!server.await.expect("server task").expect("server").is_tls());
    })
    .await;
}

#[tokio::test]
async fn server_answering_n_is_an_error_for_require_and_verify_full() {
    bounded(async {
        let pki = pki();
        for cfg in [
            backend_cfg(BackendTlsMode::Require, None),
            backend_cfg(BackendTlsMode::VerifyFull, Some(&pki.ca_cert)),
        ] {
            let (addr, _server) = fake_backend(b'N', None).await;
            let err = negotiate(addr, &cfg, "localhost")
                .await
                .expect_err("must fail");
            assert_eq!(
                err.to_string(),
                format!(
                    "server localhost refused TLS but backend tls mode is {}",
                    cfg.mode
                )
            );
            assert!(!err.is_config());
        }
    })
    .await;
}

#[tokio::test]
async fn server_answering_s_works_with_require_any_cert() {
    bounded(async {
        let pki = pki();
        let (addr, server) =
            fake_backend(b'S', Some(acceptor(&server_cfg(&pki)).expect("acceptor"))).await;
        // A name the certificate does not hold: require checks nothing about the certificate.
        let mut s = negotiate(
            addr,
            &backend_cfg(BackendTlsMode::Require, None),
            "db.example.com",
        )
        .await
        .expect("negotiate");
        assert!(matches!(s, MaybeTls::ClientTls(_)));
        ping_pong_client(&mut s).await;
        assert!(server.await.expect("server task").expect("server").is_tls());
    })
    .await;
}

#[tokio::test]
async fn server_answering_s_works_with_prefer() {
    bounded(async {
        let pki = pki();
        let (addr, server) =
            fake_backend(b'S', Some(acceptor(&server_cfg(&pki)).expect("acceptor"))).await;
        let mut s = negotiate(
            addr,
            &backend_cfg(BackendTlsMode::Prefer, None),
            "127.0.0.1",
        )
        .await
        .expect("negotiate");
        assert!(s.is_tls());
        ping_pong_client(&mut s).await;
        server.await.expect("server task").expect("server");
    })
    .await;
}

#[tokio::test]
async fn server_answering_s_works_with_verify_full() {
    bounded(async {
        let pki = pki();
        let cfg = backend_cfg(BackendTlsMode::VerifyFull, Some(&pki.ca_cert));
        for name in ["localhost", "127.0.0.1", "[127.0.0.1]"] {
            let (addr, server) =
                fake_backend(b'S', Some(acceptor(&server_cfg(&pki)).expect("acceptor"))).await;
            let mut s = negotiate(addr, &cfg, name).await.expect("negotiate");
            assert!(s.is_tls());
            ping_pong_client(&mut s).await;
            server.await.expect("server task").expect("server");
        }
    })
    .await;
}

#[tokio::test]
async fn verify_full_rejects_other_ca_and_wrong_name() {
    bounded(async {
        let pki = pki();
        let other = TestPki::generate(HOSTS).expect("test pki");
        let cases = [
            (
                backend_cfg(BackendTlsMode::VerifyFull, Some(&other.ca_cert)),
                "localhost",
                "invalid peer certificate",
            ),
            (
                backend_cfg(BackendTlsMode::VerifyFull, Some(&pki.ca_cert)),
                "db.example.com",
                "not valid for name",
            ),
        ];
        for (cfg, name, expect) in cases {
            let (addr, server) =
                fake_backend(b'S', Some(acceptor(&server_cfg(&pki)).expect("acceptor"))).await;
            let err = negotiate(addr, &cfg, name).await.expect_err("must fail");
            assert!(matches!(err, TlsError::Handshake { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("server {name}: tls handshake: ")),
                "{msg}"
            );
            assert!(msg.contains(expect), "{msg}");
            assert!(server.await.expect("server task").is_none());
        }
    })
    .await;
}

#[tokio::test]
async fn unexpected_answer_and_bad_names_are_errors() {
    bounded(async {
        let (addr, _server) = fake_backend(b'E', None).await;
        let err = negotiate(
            addr,
            &backend_cfg(BackendTlsMode::Prefer, None),
            "localhost",
        )
        .await
        .expect_err("must fail");
        assert_eq!(
            err.to_string(),
            "server localhost answered the SSLRequest with byte 0x45, expected 'S' or 'N'"
        );

        let (listener, addr) = listen().await;
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let connector = connector(&backend_cfg(BackendTlsMode::Require, None)).expect("connector");
        let err = negotiate_backend(
            tcp,
            connector.as_ref(),
            BackendTlsMode::Require,
            "bad name!",
        )
        .await
        .expect_err("must fail");
        assert!(matches!(err, TlsError::ServerName { .. }), "{err:?}");
        assert!(err.is_config());
        drop(listener);

        // A server that closes instead of answering.
        let (listener, addr) = listen().await;
        let closer = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.expect("accept");
            let mut req = [0u8; 8];
            tcp.read_exact(&mut req).await.expect("read");
        });
        let err = negotiate(
            addr,
            &backend_cfg(BackendTlsMode::Require, None),
            "localhost",
        )
        .await
        .expect_err("must fail");
        assert!(matches!(err, TlsError::Io { .. }), "{err:?}");
        closer.await.expect("closer task");

        // A mode that wants TLS but no connector: a wiring bug, reported rather than ignored.
        let (_listener, addr) = listen().await;
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let err = negotiate_backend(tcp, None, BackendTlsMode::Prefer, "localhost")
            .await
            .expect_err("must fail");
        assert!(matches!(err, TlsError::Config(_)), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn disable_sends_nothing() {
    bounded(async {
        let (listener, addr) = listen().await;
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            ping_pong_server(MaybeTls::from(tcp)).await
        });
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let mut s = negotiate_backend(tcp, None, BackendTlsMode::Disable, "localhost")
            .await
            .expect("negotiate");
        assert!(!s.is_tls());
        ping_pong_client(&mut s).await;
        server.await.expect("server task");
    })
    .await;
}
