//! TLS on the MySQL listener against the MariaDB test bed, with the mariadb CLI as the client:
//! a verified TLS login (the proxy's certificate, checked against the test CA and the host
//! name), a wrong host name refused by the client, `require = true` refusing plain logins, and
//! a listener without a certificate telling a TLS-only client so.

mod common;

use common::mysql::*;
use std::sync::OnceLock;
use switchyard_testbed::{shared_maria, TestPki};

/// The client-facing PKI: a certificate for "localhost" only, so 127.0.0.1 is a wrong name.
fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate(&["localhost"]).expect("test pki"))
}

/// A MySQL proxy over the shared test bed with `[clusters.tls]`.
fn tls_proxy(require: bool) -> MyProxy {
    let pki = pki();
    let config = format!(
        "{}\n[clusters.tls]\ncert = {:?}\nkey = {:?}\nrequire = {require}\n",
        mysql_config_for(shared_maria(), &[1, 1], ""),
        pki.server_cert.display().to_string(),
        pki.server_key.display().to_string()
    );
    start_mysql_proxy(&config)
}

/// Runs the mariadb CLI against the proxy at `host` with `tls_args`; Ok(stdout) or Err(stderr).
fn mariadb_at(p: &MyProxy, host: &str, tls_args: &[&str], sql: &str) -> Result<String, String> {
    let mut args = vec!["-uapp", "-papp", "--connect-timeout=10"];
    args.extend_from_slice(tls_args);
    mariadb_with(p, host, &args, sql)
}

/// The CLI's `status` line about the connection's cipher ("" when not over TLS).
fn cipher_line(status: &str) -> String {
    status
        .lines()
        .find(|l| l.starts_with("SSL:"))
        .unwrap_or("")
        .to_string()
}

#[test]
fn verified_tls_login_and_queries_through_the_proxy() {
    let p = tls_proxy(false);
    let ca = pki().ca_cert.display().to_string();
    let verify = ["--ssl", "--ssl-ca", ca.as_str(), "--ssl-verify-server-cert"];
    // "localhost" may resolve to ::1 first; the proxy listens on 127.0.0.1 and the client
    // tries the next address.
    let out = mariadb_at(&p, "localhost", &verify, "status").expect("verified TLS login");
    let cipher = cipher_line(&out);
    assert!(
        cipher.contains("Cipher in use"),
        "the connection is not encrypted: {out}"
    );
    println!("mariadb through the proxy: {cipher}");
    // Reads, writes and a transaction over TLS, routed as usual.
    let out = mariadb_at(
        &p,
        "localhost",
        &verify,
        "SELECT @@read_only; CREATE TABLE IF NOT EXISTS tls_t (id INT PRIMARY KEY); \
         BEGIN; REPLACE INTO tls_t VALUES (1); SELECT count(*) FROM tls_t WHERE id = 1; COMMIT; \
         DROP TABLE tls_t",
    )
    .expect("statements over TLS");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["1", "1"],
        "a replica read, then a transaction's own write"
    );
    // The certificate names localhost only: a client that checks the name refuses 127.0.0.1.
    let err = mariadb_at(&p, "127.0.0.1", &verify, "SELECT 1")
        .expect_err("a verifying client refuses a certificate for another name");
    println!("wrong host name: {err}");
    assert!(
        err.contains("SSL") || err.contains("TLS") || err.contains("certificate"),
        "{err}"
    );
    // Plain clients still get in when TLS is offered but not required.
    let out = mariadb_at(&p, "127.0.0.1", &["--skip-ssl"], "status").expect("plain login");
    assert!(!cipher_line(&out).contains("Cipher in use"), "{out}");
}

#[test]
fn required_tls_refuses_plain_clients() {
    let p = tls_proxy(true);
    let err = mariadb_at(&p, "127.0.0.1", &["--skip-ssl"], "SELECT 1")
        .expect_err("a plain client is refused");
    println!("plain client: {err}");
    assert!(
        err.contains("3159") && err.contains("requires TLS"),
        "{err}"
    );
    let out = mariadb_at(&p, "127.0.0.1", &["--ssl"], "SELECT 1").expect("a TLS client gets in");
    assert_eq!(out, "1");
}

#[test]
fn a_listener_without_a_certificate_says_so() {
    let p = start_mysql_proxy(&mysql_config_for(shared_maria(), &[1, 1], ""));
    let ca = pki().ca_cert.display().to_string();
    let err = mariadb_at(
        &p,
        "127.0.0.1",
        &["--ssl", "--ssl-ca", ca.as_str(), "--ssl-verify-server-cert"],
        "SELECT 1",
    )
    .expect_err("a client insisting on TLS cannot have it");
    println!("no certificate configured: {err}");
    assert!(err.contains("SSL") || err.contains("TLS"), "{err}");
    // The default client settles for plain text.
    assert_eq!(mariadb(&p, "app", "app", "SELECT 1").as_deref(), Ok("1"));
}

/// The client may send its TLS ClientHello right behind the SSL request, in one segment (it
/// waits for no answer): the proxy must hand those bytes to TLS, not lose or refuse them.
#[test]
fn a_client_hello_in_the_same_segment_as_the_ssl_request_is_served() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::io::{Read, Write};
    use std::sync::Arc;
    use switchyard_mysql as my;

    fn read_packet(r: &mut impl Read) -> Vec<u8> {
        let mut head = [0u8; 4];
        r.read_exact(&mut head).expect("packet header");
        let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).expect("packet body");
        body
    }

    let p = tls_proxy(false);
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pki().ca_cert).expect("ca file") {
        roots.add(cert.expect("ca cert")).expect("add ca");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name).expect("client");

    let mut tcp = std::net::TcpStream::connect(p.addr).expect("connect");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let hello = my::HandshakeV10::parse(&read_packet(&mut tcp)).expect("greeting");
    assert!(hello.capabilities.contains(my::CapabilityFlags::CLIENT_SSL));
    let caps = hello.capabilities;
    let ssl = my::SslRequest {
        capabilities: caps,
        max_packet_size: 1 << 24,
        charset: 45,
    };
    let mut segment = my::encode_packet(1, &ssl.encode()).to_vec();
    tls.write_tls(&mut segment).expect("client hello");
    tcp.write_all(&segment)
        .expect("ssl request and client hello at once");
    let mut s = rustls::StreamOwned::new(tls, tcp);
    let resp = my::HandshakeResponse41 {
        capabilities: caps,
        max_packet_size: 1 << 24,
        charset: 45,
        username: b"app".to_vec(),
        auth_response: my::native_password_scramble(&hello.auth_plugin_data, b"app"),
        database: Some(b"app".to_vec()),
        auth_plugin_name: Some(b"mysql_native_password".to_vec()),
        connect_attrs: None,
    };
    s.write_all(&my::encode_packet(2, &resp.encode().expect("encode")))
        .expect("login over TLS");
    assert_eq!(read_packet(&mut s)[0], 0, "logged in over TLS");
    s.write_all(&my::encode_packet(0, b"\x03SELECT 1"))
        .expect("query");
    assert_eq!(read_packet(&mut s), vec![1], "one column");
}
