//! The client handshake: greeting, TLS when the client asks and the cluster has a certificate,
//! HandshakeResponse41, password check (mysql_native_password, or caching_sha2_password's fast
//! path, which needs no TLS or RSA because the proxy knows the password; other plugins are
//! switched to mysql_native_password).

use crate::backend::mysql::proxy_capabilities;
use crate::tls::MaybeTls;
use bytes::BytesMut;
use std::collections::HashMap;
use switchyard_mysql::CapabilityFlags;
use switchyard_mysql::{self as my, StatusFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// Version string in the greeting; "5.7" keeps clients on the plain 4.1 protocol paths.
const SERVER_VERSION: &[u8] = b"5.7.99-switchyard";
/// utf8mb4_general_ci, MariaDB's default collation.
const DEFAULT_CHARSET: u8 = 45;

/// Who may log in and how: a cluster's users and TLS settings, or the admin console's.
pub(crate) struct LoginPolicy<'a> {
    /// Passwords by user name.
    pub users: &'a HashMap<String, String>,
    /// Offer TLS with this acceptor.
    pub tls_acceptor: Option<&'a TlsAcceptor>,
    /// Refuse logins without TLS.
    pub tls_require: bool,
    /// Offer CLIENT_LOCAL_FILES.
    pub local_infile: bool,
}

/// A client that logged in.
pub(crate) struct Login {
    /// User name.
    pub user: String,
    /// Database named in the handshake ("" for none).
    pub database: String,
    /// Sequence id of the proxy's next packet (the final OK).
    pub next_seq: u8,
    /// The greeting's nonce: COM_CHANGE_USER answers are made with it.
    pub nonce: Vec<u8>,
}

/// Why a handshake ended without a login; the message is for the client's ERR packet.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    /// The socket failed or closed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Malformed packets.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Refused, with a MySQL error code and SQLSTATE; the ERR was sent.
    #[error("{message}")]
    Refused {
        /// MySQL error code.
        code: u16,
        /// SQLSTATE.
        state: &'static str,
        /// Message.
        message: String,
    },
}

/// Runs the handshake on `tcp`; `buf` keeps bytes read past it. Returns the client's stream
/// (TLS when it asked for it) with the outcome; the stream is None only when a TLS handshake
/// started and failed.
pub(crate) async fn handshake(
    tcp: TcpStream,
    buf: &mut BytesMut,
    ctx: &LoginPolicy<'_>,
    id: u64,
) -> (Option<MaybeTls>, Result<Login, HandshakeError>) {
    let mut tcp = tcp;
    let nonce = my::generate_nonce();
    let mut capabilities = proxy_capabilities();
    if ctx.tls_acceptor.is_some() {
        capabilities |= CapabilityFlags::CLIENT_SSL;
    }
    if ctx.local_infile {
        capabilities |= CapabilityFlags::CLIENT_LOCAL_FILES;
    }
    let greeting = my::HandshakeV10 {
        server_version: SERVER_VERSION.to_vec(),
        connection_id: u32::try_from(id % u64::from(u32::MAX)).unwrap_or(0),
        auth_plugin_data: nonce.to_vec(),
        capabilities,
        charset: DEFAULT_CHARSET,
        status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        reserved: [0; 10],
        auth_plugin_name: Some(my::MYSQL_NATIVE_PASSWORD.as_bytes().to_vec()),
    };
    let first = async {
        tcp.write_all(&my::encode_packet(0, &greeting.encode()))
            .await?;
        read_packet(&mut tcp, buf, MAX_LOGIN_PACKET).await
    };
    let p = first.await;
    let mut stream = MaybeTls::Plain(tcp);
    let p = match p {
        Ok(p) => p,
        Err(e) => return (Some(stream), Err(e)),
    };
    if !my::is_ssl_request(&p.payload) {
        let result = login(&mut stream, buf, ctx, &nonce, p).await;
        return (Some(stream), result);
    }
    let Some(acceptor) = ctx.tls_acceptor else {
        let msg = "TLS is not configured on this switchyard listener ([clusters.tls])".into();
        let result = refuse(&mut stream, p.next_seq(), 1043, "08S01", msg).await;
        return (Some(stream), result);
    };
    let MaybeTls::Plain(tcp) = stream else {
        let e = HandshakeError::Protocol("SSL request over TLS".into());
        return (Some(stream), Err(e));
    };
    // The client does not wait for an answer to its SSL request: its ClientHello may already
    // be in `buf`, and is handed to TLS before anything more is read from the socket.
    let early = buf.split();
    let accept = acceptor.accept_with(tcp, |tls| {
        let mut rest: &[u8] = &early;
        while !rest.is_empty() {
            match tls.read_tls(&mut rest) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        // An error here is kept by the connection and ends the handshake below.
        let _ = tls.process_new_packets();
    });
    let mut stream = match accept.await {
        Ok(tls) => MaybeTls::from(tls),
        Err(e) => return (None, Err(HandshakeError::Io(e))),
    };
    let result = match read_packet(&mut stream, buf, MAX_LOGIN_PACKET).await {
        Ok(p) => login(&mut stream, buf, ctx, &nonce, p).await,
        Err(e) => Err(e),
    };
    (Some(stream), result)
}

/// Largest handshake packet accepted (user, database and attributes fit easily).
const MAX_LOGIN_PACKET: usize = 64 * 1024;

/// Checks the HandshakeResponse41 in `p` and the password (with an auth switch if needed).
async fn login(
    stream: &mut MaybeTls,
    buf: &mut BytesMut,
    ctx: &LoginPolicy<'_>,
    nonce: &[u8],
    p: my::Packet,
) -> Result<Login, HandshakeError> {
    if ctx.tls_require && !stream.is_tls() {
        let msg = "Connections using insecure transport are prohibited: this switchyard listener requires TLS (connect with --ssl, or ssl-mode=REQUIRED)".into();
        return refuse(stream, p.next_seq(), 3159, "HY000", msg).await;
    }
    let resp = my::HandshakeResponse41::parse(&p.payload)
        .map_err(|e| HandshakeError::Protocol(e.to_string()))?;
    let user = String::from_utf8_lossy(&resp.username).into_owned();
    let password = ctx.users.get(&user);
    let plugin = resp
        .auth_plugin_name
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_else(|| my::MYSQL_NATIVE_PASSWORD.into())
        .into_owned();
    let pw = password.map(|p| p.as_bytes()).unwrap_or_default();
    let mut seq = p.next_seq();
    let accepted = match check_proof(
        plugin.as_bytes(),
        nonce,
        password.map(|_| pw),
        &resp.auth_response,
    ) {
        Proof::Accepted { fast_auth } => {
            if fast_auth {
                let more = my::AuthMoreData::fast_auth_success().encode();
                stream.write_all(&my::encode_packet(seq, &more)).await?;
                seq = seq.wrapping_add(1);
            }
            true
        }
        Proof::Refused => false,
        Proof::Switch => {
            let switch =
                my::AuthSwitchRequest::with_nonce(my::MYSQL_NATIVE_PASSWORD.as_bytes(), nonce);
            stream
                .write_all(&my::encode_packet(seq, &switch.encode()))
                .await?;
            let answer = read_packet(stream, buf, MAX_LOGIN_PACKET).await?;
            seq = answer.next_seq();
            password.is_some() && my::verify_native_password(nonce, pw, &answer.payload)
        }
    };
    if !accepted {
        let using = if resp.auth_response.is_empty() {
            "NO"
        } else {
            "YES"
        };
        let message = format!("Access denied for user '{user}' (using password: {using})");
        return refuse(stream, seq, 1045, "28000", message).await;
    }
    let database = resp
        .database
        .as_deref()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .unwrap_or_default();
    Ok(Login {
        user,
        database,
        next_seq: seq,
        nonce: nonce.to_vec(),
    })
}

/// What a password proof sent with `plugin` says, checked against `nonce` and the user's
/// `password` (None: unknown user).
pub(super) enum Proof {
    /// Right; caching_sha2_password's fast path is to be confirmed to the client.
    Accepted {
        /// Send AuthMoreData(fast_auth_success) before the OK.
        fast_auth: bool,
    },
    /// Wrong password or unknown user.
    Refused,
    /// Another plugin: switch the client to mysql_native_password over the same nonce.
    Switch,
}

/// Checks a proof made with mysql_native_password or caching_sha2_password (the two the
/// proxy verifies itself, knowing the passwords); other plugins need a switch.
pub(super) fn check_proof(
    plugin: &[u8],
    nonce: &[u8],
    password: Option<&[u8]>,
    response: &[u8],
) -> Proof {
    let verdict = |ok: bool, fast_auth| {
        if ok {
            Proof::Accepted { fast_auth }
        } else {
            Proof::Refused
        }
    };
    if plugin == my::MYSQL_NATIVE_PASSWORD.as_bytes() {
        verdict(
            password.is_some_and(|pw| my::verify_native_password(nonce, pw, response)),
            false,
        )
    } else if plugin == my::CACHING_SHA2_PASSWORD.as_bytes() {
        verdict(
            password.is_some_and(|pw| my::verify_caching_sha2(nonce, pw, response)),
            true,
        )
    } else {
        Proof::Switch
    }
}

async fn refuse(
    stream: &mut MaybeTls,
    seq: u8,
    code: u16,
    state: &'static str,
    message: String,
) -> Result<Login, HandshakeError> {
    let err = super::err_payload(code, state, &message);
    let _ = stream.write_all(&my::encode_packet(seq, &err)).await;
    Err(HandshakeError::Refused {
        code,
        state,
        message,
    })
}

async fn read_packet(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    buf: &mut BytesMut,
    max: usize,
) -> Result<my::Packet, HandshakeError> {
    loop {
        match my::decode_packet(buf, max) {
            Ok(Some(p)) => return Ok(p),
            Ok(None) => {
                if stream.read_buf(buf).await? == 0 {
                    return Err(HandshakeError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
            }
            Err(e) => return Err(HandshakeError::Protocol(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{check_proof, Proof};
    use switchyard_mysql as my;

    #[test]
    fn proofs_are_checked_per_plugin() {
        let nonce = my::generate_nonce();
        let native = my::native_password_scramble(&nonce, b"pw");
        let plugin = my::MYSQL_NATIVE_PASSWORD.as_bytes();
        assert!(matches!(
            check_proof(plugin, &nonce, Some(b"pw"), &native),
            Proof::Accepted { fast_auth: false }
        ));
        assert!(matches!(
            check_proof(plugin, &nonce, Some(b"other"), &native),
            Proof::Refused
        ));
        assert!(matches!(
            check_proof(plugin, &nonce, None, &native),
            Proof::Refused
        ));
        let sha2 = my::CACHING_SHA2_PASSWORD.as_bytes();
        let fast = my::caching_sha2_scramble(&nonce, b"pw");
        assert!(matches!(
            check_proof(sha2, &nonce, Some(b"pw"), &fast),
            Proof::Accepted { fast_auth: true }
        ));
        assert!(matches!(
            check_proof(sha2, &nonce, Some(b"pw"), &native),
            Proof::Refused
        ));
        assert!(matches!(
            check_proof(b"client_ed25519", &nonce, Some(b"pw"), &native),
            Proof::Switch
        ));
    }
}
