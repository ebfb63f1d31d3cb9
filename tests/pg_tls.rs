//! TLS on both sides of the proxy against real PostgreSQL: psql and tokio-postgres (rustls)
//! as clients, `[clusters.tls] require`, and TLS towards servers (`[clusters.server_tls]`).

mod common;

use common::*;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use switchyard_testbed::{shared_pg, PgCluster, PgOptions, TestPki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Bound for one psql run (connect, query, exit).
const PSQL_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound for one tokio-postgres connect or query.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The client-facing PKI: a certificate for "localhost" only, so 127.0.0.1 is a wrong name.
fn proxy_pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate(&["localhost"]).expect("test pki"))
}

/// `[clusters.tls]` for the proxy's certificate, appended after the whole cluster text so it
/// lands in the (only) `[[clusters]]` entry.
fn with_client_tls(config: String, require: bool) -> String {
    let pki = proxy_pki();
    format!(
        "{config}\n[clusters.tls]\ncert = {:?}\nkey = {:?}\nrequire = {require}\n",
        pki.server_cert.display().to_string(),
        pki.server_key.display().to_string()
    )
}

/// A proxy over the shared topology with client TLS offered but not required.
fn tls_proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| {
        start_proxy(&with_client_tls(
            config_for(shared_pg(), &[1, 1], ""),
            false,
        ))
    })
}

/// The same with `require = true`.
fn required_proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| start_proxy(&with_client_tls(config_for(shared_pg(), &[1, 1], ""), true)))
}

/// A psql process whose output is drained while it runs (a result larger than the pipe
/// buffer would otherwise block it).
struct Psql {
    child: std::process::Child,
    what: String,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        out
    })
}

impl Psql {
    /// Starts psql with `conninfo` (as app/app on the proxy's port) and `-c sql`.
    fn start(p: &Proxy, conninfo: &str, sql: &str) -> Psql {
        let conninfo = format!(
            "port={} user=app dbname=app connect_timeout=10 {conninfo}",
            p.addr.port()
        );
        let mut child = Command::new("psql")
            .args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-d", &conninfo, "-c", sql])
            .env("PGPASSWORD", "app")
            .env_remove("PGSSLMODE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql");
        Psql {
            stdout: drain(child.stdout.take()),
            stderr: drain(child.stderr.take()),
            child,
            what: format!("psql {conninfo:?} -c {sql:?}"),
        }
    }

    /// Waits for psql to exit, killing it after `PSQL_TIMEOUT`.
    fn finish(mut self) -> Output {
        let end = Instant::now() + PSQL_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for psql") {
                break status;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not finish in {PSQL_TIMEOUT:?}", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: self.stdout.join().expect("psql stdout"),
            stderr: self.stderr.join().expect("psql stderr"),
        }
    }
}

/// Runs psql with `conninfo` and `-c sql` to its end.
fn psql(p: &Proxy, conninfo: &str, sql: &str) -> Output {
    Psql::start(p, conninfo, sql).finish()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn failed(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "psql should have failed, printed {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// verify-full towards the proxy, connecting to 127.0.0.1 while checking the name "localhost".
fn verify_full() -> String {
    format!(
        "host=localhost hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={}",
        proxy_pki().ca_cert.display()
    )
}

#[test]
fn psql_verify_full_through_the_proxy() {
    let p = tls_proxy();
    assert_eq!(
        ok(&psql(p, &verify_full(), "SELECT pg_is_in_recovery()")),
        "t"
    );
    // \conninfo describes the client's own connection, i.e. the one to the proxy.
    let info = ok(&psql(p, &verify_full(), "\\conninfo"));
    assert!(info.contains("SSL connection (protocol: TLSv1."), "{info}");
    // A session over TLS does real work: a write, then a big read relayed through TLS.
    let out = ok(&psql(
        p,
        &verify_full(),
        "CREATE TABLE IF NOT EXISTS tls_t (v int); INSERT INTO tls_t VALUES (1); SELECT count(*) FROM tls_t WHERE v = 1",
    ));
    assert_ne!(out, "0");
    let out = ok(&psql(
        p,
        &verify_full(),
        "SELECT sum(length(repeat('x', i % 100))) FROM generate_series(1, 100000) i",
    ));
    assert_eq!(out, "4950000");
    let out = ok(&psql(
        p,
        &verify_full(),
        "SELECT repeat('y', 5000) FROM generate_series(1, 2000)",
    ));
    assert_eq!(out.lines().count(), 2000);
}

#[test]
fn psql_verify_full_rejects_a_name_not_in_the_certificate() {
    let p = tls_proxy();
    let ca = proxy_pki().ca_cert.display().to_string();
    for host in ["host=127.0.0.1", "host=db.example.com hostaddr=127.0.0.1"] {
        let err = failed(&psql(
            p,
            &format!("{host} sslmode=verify-full sslrootcert={ca}"),
            "SELECT 1",
        ));
        assert!(err.contains("does not match host name"), "{host}: {err}");
    }
    // A CA that did not sign the proxy's certificate.
    let other = TestPki::generate(&["localhost"]).expect("test pki");
    let err = failed(&psql(
        p,
        &format!(
            "host=localhost hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={}",
            other.ca_cert.display()
        ),
        "SELECT 1",
    ));
    // OpenSSL words it "certificate verify failed" or, when the other CA has the same name, "EVP lib".
    assert!(err.contains("SSL error"), "{err}");
}

#[test]
fn psql_without_tls_still_works_when_tls_is_optional() {
    let p = tls_proxy();
    let out = ok(&psql(p, "host=127.0.0.1 sslmode=disable", "\\conninfo"));
    assert!(!out.contains("SSL connection"), "{out}");
    // sslmode=prefer (libpq's default) picks TLS when offered.
    let out = ok(&psql(p, "host=127.0.0.1 sslmode=prefer", "\\conninfo"));
    assert!(out.contains("SSL connection"), "{out}");
}

#[test]
fn tls_required_refuses_plain_text_clients() {
    let p = required_proxy();
    let err = failed(&psql(p, "host=127.0.0.1 sslmode=disable", "SELECT 1"));
    assert!(err.contains("TLS is required"), "{err}");
    let out = ok(&psql(
        p,
        "host=127.0.0.1 sslmode=require",
        "SELECT pg_is_in_recovery()",
    ));
    assert_eq!(out, "t");
    assert_eq!(ok(&psql(p, &verify_full(), "SELECT 1")), "1");
}

/// rustls client config trusting the proxy's CA (chain and host name checked: verify-full).
fn rustls_client(ca: &std::path::Path) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("read ca") {
        roots.add(cert.expect("ca pem")).expect("add ca");
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// tokio-postgres over TLS (sslmode=require, the certificate verified by rustls) to the proxy,
/// naming the server `host` while connecting to 127.0.0.1.
async fn tls_client(p: &Proxy, host: &str, ca: &std::path::Path) -> Result<Client, String> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(host)
        .hostaddr(std::net::IpAddr::from([127, 0, 0, 1]))
        .port(p.addr.port())
        .user("app")
        .password("app")
        .dbname("app")
        .ssl_mode(SslMode::Require)
        .connect_timeout(Duration::from_secs(10));
    let tls = MakeRustlsConnect::new(rustls_client(ca));
    let (client, conn) = tokio::time::timeout(CLIENT_TIMEOUT, cfg.connect(tls))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))?;
    tokio::spawn(conn);
    Ok(client)
}

#[tokio::test]
async fn tokio_postgres_over_rustls() {
    let p = tls_proxy();
    let ca = &proxy_pki().ca_cert;
    let c = tls_client(p, "localhost", ca).await.expect("tls connect");
    let work = async {
        let row = c.query_one("SELECT pg_is_in_recovery()", &[]).await?;
        assert!(row.get::<_, bool>(0));
        // Extended protocol with parameters, and a result of ~10 MB relayed over TLS both ways.
        let rows = c
            .query(
                "SELECT i, repeat('z', 1000) FROM generate_series(1, $1::int) i",
                &[&10_000i32],
            )
            .await?;
        assert_eq!(rows.len(), 10_000);
        let big = "q".repeat(1 << 19);
        let row = c.query_one("SELECT length($1::text)", &[&big]).await?;
        assert_eq!(row.get::<_, i32>(0), 1 << 19);
        Ok::<_, tokio_postgres::Error>(())
    };
    tokio::time::timeout(CLIENT_TIMEOUT, work)
        .await
        .expect("queries over tls timed out")
        .expect("queries over tls");

    let err = tls_client(p, "db.example.com", ca)
        .await
        .map(drop)
        .expect_err("a name not in the certificate must fail");
    assert!(
        err.contains("NotValidForName") || err.contains("not valid for name"),
        "{err}"
    );
}

#[test]
fn plain_cancel_reaches_a_tls_session_when_tls_is_required() {
    let p = required_proxy();
    let sleeper = Psql::start(p, "host=127.0.0.1 sslmode=require", "SELECT pg_sleep(20)");
    std::thread::sleep(Duration::from_millis(1500));
    // On SIGINT psql (libpq's PQcancel) sends the CancelRequest over a fresh plain connection.
    let pid = sleeper.child.id().to_string();
    let kill = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let started = Instant::now();
    let err = failed(&sleeper.finish());
    assert!(
        err.contains("canceling statement due to user request"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn cancel_over_tls_reaches_the_session() {
    let p = required_proxy();
    let ca = &proxy_pki().ca_cert;
    let c = tls_client(p, "localhost", ca).await.expect("tls connect");
    let token = c.cancel_token();
    let sleeper = tokio::spawn(async move { c.simple_query("SELECT pg_sleep(20)").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // With sslmode=require tokio-postgres sends SSLRequest, then the CancelRequest over TLS.
    let tls = MakeRustlsConnect::new(rustls_client(ca));
    tokio::time::timeout(CLIENT_TIMEOUT, token.cancel_query(tls))
        .await
        .expect("cancel timed out")
        .expect("cancel sent");
    let err = tokio::time::timeout(Duration::from_secs(10), sleeper)
        .await
        .expect("the query was not cancelled")
        .expect("query task")
        .map(drop)
        .expect_err("the query must fail");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{err}"
    );
}

#[tokio::test]
async fn plain_bytes_after_the_ssl_request_end_the_connection() {
    let p = tls_proxy();
    let mut s = tokio::net::TcpStream::connect(p.addr)
        .await
        .expect("connect");
    // SSLRequest and, in the same segment, a StartupMessage: injected plain text.
    let mut msg = switchyard::tls::SSL_REQUEST.to_vec();
    let params = b"user\0app\0database\0app\0\0";
    msg.extend_from_slice(&(8 + params.len() as i32).to_be_bytes());
    msg.extend_from_slice(&196608i32.to_be_bytes());
    msg.extend_from_slice(params);
    s.write_all(&msg).await.expect("write");
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut reply))
        .await
        .expect("the proxy must close")
        .expect("read");
    // Never 'S': an ErrorResponse, then the connection is closed.
    assert_eq!(reply.first(), Some(&b'E'), "{reply:?}");
    assert!(
        String::from_utf8_lossy(&reply).contains("unencrypted data after SSL request"),
        "{reply:?}"
    );
}

/// Turns on TLS in a running single-node cluster with `pki`'s certificate.
fn enable_server_ssl(pg: &PgCluster, pki: &TestPki) {
    pki.chown_for_postgres().expect("chown pki");
    pg.psql(
        0,
        &format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}';\nALTER SYSTEM SET ssl_key_file = '{}';\nALTER SYSTEM SET ssl = on;\nSELECT pg_reload_conf();",
            pki.server_cert.display(),
            pki.server_key.display()
        ),
    )
    .expect("enable ssl");
    assert!(
        wait_until(Duration::from_secs(10), || pg
            .psql(0, "SHOW ssl")
            .is_ok_and(|v| v == "on")),
        "ssl did not turn on: {}",
        pg.log_tail(0).unwrap_or_default()
    );
}

/// Config for `pg` with its node addressed as `localhost:PORT` (the name in the certificate)
/// and `[clusters.server_tls]` as given.
fn backend_tls_config(pg: &PgCluster, server_tls: &str) -> String {
    let text = config_for(pg, &[], "").replace("addr = \"127.0.0.1:", "addr = \"localhost:");
    format!("{text}\n[clusters.server_tls]\n{server_tls}\n")
}

async fn plain_client(p: &Proxy) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = tokio::time::timeout(
        CLIENT_TIMEOUT,
        tokio_postgres::connect(&conn_str(p.addr, "app", "app"), NoTls),
    )
    .await
    .expect("connect timed out")?;
    tokio::spawn(conn);
    Ok(client)
}

async fn backend_ssl(c: &Client) -> bool {
    tokio::time::timeout(
        CLIENT_TIMEOUT,
        c.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        ),
    )
    .await
    .expect("query timed out")
    .expect("pg_stat_ssl")
    .get(0)
}

#[tokio::test]
async fn server_tls_modes_against_a_tls_server() {
    let pg = PgCluster::start(PgOptions {
        replicas: 0,
        ..PgOptions::default()
    })
    .expect("start primary");
    let pki = TestPki::generate(&["localhost", "127.0.0.1"]).expect("test pki");
    enable_server_ssl(&pg, &pki);

    let ca = pki.ca_cert.display().to_string();
    let p = start_proxy(&backend_tls_config(
        &pg,
        &format!("mode = \"verify-full\"\nca = {ca:?}"),
    ));
    let c = plain_client(&p).await.expect("connect through the proxy");
    assert!(
        backend_ssl(&c).await,
        "verify-full must reach the server over TLS"
    );
    // Writes and a big result over the TLS server link.
    let rows = tokio::time::timeout(
        CLIENT_TIMEOUT,
        c.query(
            "SELECT i, repeat('s', 1000) FROM generate_series(1, $1::int) i",
            &[&10_000i32],
        ),
    )
    .await
    .expect("query timed out")
    .expect("big query");
    assert_eq!(rows.len(), 10_000);

    // Both ends encrypted at once.
    let p2 = start_proxy(&with_client_tls(
        backend_tls_config(&pg, &format!("mode = \"verify-full\"\nca = {ca:?}")),
        true,
    ));
    let c = tls_client(&p2, "localhost", &proxy_pki().ca_cert)
        .await
        .expect("tls connect");
    assert!(backend_ssl(&c).await);

    for mode in ["prefer", "require"] {
        let p = start_proxy(&backend_tls_config(&pg, &format!("mode = \"{mode}\"")));
        let c = plain_client(&p).await.expect("connect through the proxy");
        assert!(
            backend_ssl(&c).await,
            "{mode} must use TLS when the server has it"
        );
    }

    // A CA that did not sign the server's certificate: the node is unusable, the client is told why.
    let other = TestPki::generate(&["localhost"]).expect("test pki");
    let p = start_proxy(&backend_tls_config(
        &pg,
        &format!(
            "mode = \"verify-full\"\nca = {:?}",
            other.ca_cert.display().to_string()
        ),
    ));
    let err = plain_client(&p)
        .await
        .map(drop)
        .expect_err("an untrusted server certificate must fail");
    assert!(format!("{err:?}").contains("tls handshake"), "{err:?}");
}

#[tokio::test]
async fn server_tls_modes_against_a_plain_server() {
    // The shared topology has ssl off.
    let pg = shared_pg();
    let p = start_proxy(&backend_tls_config(pg, "mode = \"prefer\""));
    let c = plain_client(&p).await.expect("prefer falls back to plain");
    assert!(!backend_ssl(&c).await);

    let p = start_proxy(&backend_tls_config(pg, "mode = \"require\""));
    let err = plain_client(&p)
        .await
        .map(drop)
        .expect_err("require must refuse a server without TLS");
    assert!(
        format!("{err:?}").contains("refused TLS but backend tls mode is require"),
        "{err:?}"
    );
}

/// A client socket whose reads can be held back, to make the proxy's writes to it block.
struct Gated {
    tcp: tokio::net::TcpStream,
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    closed: std::sync::atomic::AtomicBool,
    waker: std::sync::Mutex<Option<std::task::Waker>>,
}

impl Gate {
    fn set(&self, closed: bool) {
        self.closed
            .store(closed, std::sync::atomic::Ordering::SeqCst);
        if !closed {
            if let Some(w) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
                w.wake();
            }
        }
    }
}

impl tokio::io::AsyncRead for Gated {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.gate.closed.load(std::sync::atomic::Ordering::SeqCst) {
            *self.gate.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
            if self.gate.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return std::task::Poll::Pending;
            }
        }
        std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Gated {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// A client that stops reading while a big result is produced: the proxy's TLS writes then
/// block, and what TLS buffered must still reach the client once it reads again. tokio-rustls
/// may keep up to 64 KiB of a write in its own buffer when the socket is full, sent only on a
/// later write or flush; a relay that stops writing once its queue is empty without flushing
/// leaves the client waiting forever for the end of its result. That happens only when the
/// result's end lands in that 64 KiB window past what the sockets hold (about 4 MB here, when it
/// hung at 486 rows of 8000 bytes), so the sizes sweep the range in steps smaller than the window.
#[tokio::test]
async fn a_slow_reader_gets_the_whole_result_over_tls() {
    use tokio_postgres::tls::MakeTlsConnect;
    let p = tls_proxy();
    let gate = Arc::new(Gate::default());
    let tcp = tokio::net::TcpStream::connect(p.addr)
        .await
        .expect("connect");
    let stream = Gated {
        tcp,
        gate: gate.clone(),
    };
    let mut make = MakeRustlsConnect::new(rustls_client(&proxy_pki().ca_cert));
    let tls =
        <MakeRustlsConnect as MakeTlsConnect<Gated>>::make_tls_connect(&mut make, "localhost")
            .expect("tls connect");
    let mut cfg = tokio_postgres::Config::new();
    cfg.user("app")
        .password("app")
        .dbname("app")
        .ssl_mode(SslMode::Require);
    let (mut c, conn) = tokio::time::timeout(CLIENT_TIMEOUT, cfg.connect_raw(stream, tls))
        .await
        .expect("connect timed out")
        .expect("connect");
    tokio::spawn(conn);
    // Results around the size of the socket buffers (4 MiB send buffer at most on Linux),
    // written while the client does not read, so the last write meets a full socket.
    for (round, rows) in (400..=600).step_by(2).enumerate() {
        gate.set(true);
        let query = tokio::spawn({
            let sql = format!("SELECT {round}, repeat('g', 8000) FROM generate_series(1, {rows})");
            async move {
                let c = c;
                let r = c.simple_query(&sql).await;
                (c, r)
            }
        });
        tokio::time::sleep(Duration::from_millis(120)).await;
        gate.set(false);
        let (back, r) = tokio::time::timeout(Duration::from_secs(20), query)
            .await
            .unwrap_or_else(|_| {
                panic!("round {round}, {rows} rows: the rest of the result never came")
            })
            .expect("query task");
        let got = r
            .expect("big query")
            .iter()
            .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
            .count();
        assert_eq!(got, rows);
        c = back;
    }
}
