//! Startup phase: TLS and GSS negotiation, cancel requests, the startup packet and client
//! authentication, all under the startup timeout.

use super::{ClusterContext, FrontendError};
use crate::config::AuthMethod;
use crate::tls::MaybeTls;
use bytes::BytesMut;
use switchyard_postgres::{self as pg, AuthError, Frame, ScramServer, StartupPacket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsAcceptor;

/// Largest startup packet accepted; PostgreSQL itself caps it at 10000 bytes.
const MAX_STARTUP: usize = 10_000;

/// What the startup phase ended with.
pub enum Startup {
    /// An authenticated client.
    Login {
        /// Login name.
        user: String,
        /// Database.
        database: String,
        /// Other startup parameters (application_name, client_encoding, options, ...).
        params: Vec<(String, String)>,
    },
    /// A CancelRequest for the given proxy key.
    Cancel((i32, i32)),
}

/// The first packet that is not an SSLRequest or GSSENCRequest answered 'N'.
enum Opening<'a> {
    /// The client asked for TLS and was answered 'S': the handshake comes next.
    Tls(&'a TlsAcceptor),
    /// A CancelRequest.
    Cancel((i32, i32)),
    /// A StartupMessage.
    Startup {
        minor: u16,
        params: Vec<(String, String)>,
    },
}

/// Which encryption requests the client already made (each is allowed once, as in PostgreSQL).
#[derive(Default)]
struct Asked {
    ssl: bool,
    gss: bool,
}

/// Runs the startup phase over a freshly accepted connection within the startup timeout: the
/// connection becomes TLS when the client asks and the cluster has `[clusters.tls]`, then the
/// startup packet is read and the client authenticated. Bytes read past the phase stay in `buf`.
///
/// Returns the client's stream with the outcome, so the caller can report an error on it; the
/// stream is None only when a TLS handshake started and failed (nothing left to talk to).
pub async fn startup(
    tcp: TcpStream,
    buf: &mut BytesMut,
    ctx: &ClusterContext,
) -> (Option<MaybeTls>, Result<Startup, FrontendError>) {
    let deadline = Instant::now() + ctx.general.startup_timeout;
    let mut stream = MaybeTls::Plain(tcp);
    let mut asked = Asked::default();
    let (minor, params) = loop {
        let step = timeout_at(deadline, opening(&mut stream, buf, ctx, &mut asked)).await;
        match step {
            Err(_) => return (Some(stream), Err(FrontendError::StartupTimeout)),
            Ok(Err(e)) => return (Some(stream), Err(e)),
            Ok(Ok(Opening::Cancel(key))) => return (Some(stream), Ok(Startup::Cancel(key))),
            Ok(Ok(Opening::Startup { minor, params })) => break (minor, params),
            Ok(Ok(Opening::Tls(acceptor))) => {
                let tcp = match stream {
                    MaybeTls::Plain(tcp) => tcp,
                    // `opening` only agrees to TLS on a plain stream; kept total for safety.
                    other => {
                        let e = FrontendError::Protocol("SSLRequest over TLS".into());
                        return (Some(other), Err(e));
                    }
                };
                match timeout_at(deadline, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => stream = MaybeTls::from(tls),
                    Ok(Err(e)) => return (None, Err(FrontendError::Io(e))),
                    Err(_) => return (None, Err(FrontendError::StartupTimeout)),
                }
            }
        }
    };
    if ctx.tls_require && !stream.is_tls() {
        let e = FrontendError::Refused {
            code: "28000",
            message: "TLS is required: connect with sslmode=require (or verify-ca, verify-full)"
                .into(),
        };
        return (Some(stream), Err(e));
    }
    let outcome = match timeout_at(deadline, login(&mut stream, buf, ctx, minor, params)).await {
        Ok(r) => r,
        Err(_) => Err(FrontendError::StartupTimeout),
    };
    (Some(stream), outcome)
}

/// Answers encryption requests until the client sends a cancel or startup packet, or a TLS
/// handshake is due.
async fn opening<'a>(
    stream: &mut MaybeTls,
    buf: &mut BytesMut,
    ctx: &'a ClusterContext,
    asked: &mut Asked,
) -> Result<Opening<'a>, FrontendError> {
    loop {
        match pg::decode_startup(buf, MAX_STARTUP)? {
            Some(StartupPacket::SslRequest) => {
                if asked.ssl || stream.is_tls() {
                    return Err(FrontendError::Protocol("SSLRequest sent twice".into()));
                }
                asked.ssl = true;
                let Some(acceptor) = ctx.tls_acceptor.as_ref() else {
                    send(stream, &pg::ssl_refused()).await?;
                    continue;
                };
                // Bytes already here were sent in clear before the handshake: a client bug or
                // a man in the middle injecting them (CVE-2021-23214). Never treat them as
                // part of the encrypted session.
                if !buf.is_empty() {
                    return Err(FrontendError::Protocol(
                        "received unencrypted data after SSL request".into(),
                    ));
                }
                send(stream, b"S").await?;
                return Ok(Opening::Tls(acceptor));
            }
            Some(StartupPacket::GssEncRequest) => {
                if asked.gss || stream.is_tls() {
                    return Err(FrontendError::Protocol(
                        "GSSENCRequest sent twice or over TLS".into(),
                    ));
                }
                asked.gss = true;
                // No GSSAPI encryption: 'N' makes clients go on to TLS or plain text.
                send(stream, &pg::ssl_refused()).await?;
            }
            Some(StartupPacket::Cancel { pid, secret }) => {
                return Ok(Opening::Cancel((pid, secret)))
            }
            Some(StartupPacket::Startup { minor, params, .. }) => {
                return Ok(Opening::Startup { minor, params })
            }
            None => read_more(stream, buf).await?,
        }
    }
}

/// Checks the startup parameters and authenticates the client.
async fn login(
    stream: &mut MaybeTls,
    buf: &mut BytesMut,
    ctx: &ClusterContext,
    minor: u16,
    params: Vec<(String, String)>,
) -> Result<Startup, FrontendError> {
    let mut user = None;
    let mut database = None;
    let mut rest = Vec::new();
    let mut unrecognized = Vec::new();
    for (k, v) in params {
        match k.as_str() {
            "user" => user = Some(v),
            "database" => database = Some(v),
            "replication" if v != "false" && v != "0" && v != "off" => {
                return Err(FrontendError::Refused {
                    code: "08P01",
                    message: "replication connections are not supported through switchyard".into(),
                })
            }
            "replication" => {}
            _ if k.starts_with("_pq_.") => unrecognized.push(k),
            _ => rest.push((k, v)),
        }
    }
    if minor > 0 || !unrecognized.is_empty() {
        let names: Vec<&str> = unrecognized.iter().map(String::as_str).collect();
        send(stream, &pg::negotiate_protocol_version(0, &names)).await?;
    }
    let user = user
        .filter(|u| !u.is_empty())
        .ok_or(FrontendError::Refused {
            code: "28000",
            message: "no PostgreSQL user name specified in startup packet".into(),
        })?;
    let database = database
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| user.clone());
    authenticate(stream, buf, ctx, &user).await?;
    Ok(Startup::Login {
        user,
        database,
        params: rest,
    })
}

/// Authenticates `user` by the cluster's method; unknown users fail exactly like wrong passwords.
async fn authenticate(
    stream: &mut MaybeTls,
    buf: &mut BytesMut,
    ctx: &ClusterContext,
    user: &str,
) -> Result<(), FrontendError> {
    let entry = ctx.users.get(user);
    let max = ctx.general.max_message_bytes.min(64 * 1024);
    let failed = || FrontendError::AuthFailed(user.to_string());
    match ctx.config.auth {
        AuthMethod::ScramSha256 => {
            let verifier = entry
                .map(|e| e.scram.clone())
                .unwrap_or_else(|| ctx.decoy.clone());
            let mut server = ScramServer::new(verifier);
            send(stream, &pg::auth_sasl(&["SCRAM-SHA-256"])).await?;
            let first = expect_password(stream, buf, max).await?;
            let first_body = first.body();
            let initial = pg::parse_sasl_initial(&first_body)?;
            if initial.mechanism != "SCRAM-SHA-256" {
                return Err(FrontendError::Protocol(format!(
                    "unsupported SASL mechanism {}",
                    initial.mechanism
                )));
            }
            let reply = server.client_first(initial.data).map_err(auth_err(user))?;
            send(stream, &pg::auth_sasl_continue(&reply)).await?;
            let last = expect_password(stream, buf, max).await?;
            let fin = server.client_final(&last.body()).map_err(auth_err(user))?;
            if entry.is_none() {
                return Err(failed());
            }
            send(stream, &pg::auth_sasl_final(&fin)).await?;
        }
        AuthMethod::Md5 => {
            let salt: [u8; 4] = rand::random();
            send(stream, &pg::auth_md5(salt)).await?;
            let msg = expect_password(stream, buf, max).await?;
            let body = msg.body();
            let response = pg::password_text(&body)?;
            let ok = entry.is_some_and(|e| pg::md5_verify(user, &e.password, salt, response));
            if !ok {
                return Err(failed());
            }
        }
    }
    send(stream, &pg::auth_ok()).await?;
    Ok(())
}

fn auth_err(user: &str) -> impl Fn(AuthError) -> FrontendError + '_ {
    move |e| match e {
        AuthError::InvalidPassword => FrontendError::AuthFailed(user.to_string()),
        other => FrontendError::Protocol(other.to_string()),
    }
}

/// Reads the next message, which must be a password-type message ('p').
async fn expect_password(
    stream: &mut MaybeTls,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Frame, FrontendError> {
    loop {
        if let Some(f) = pg::decode_frame(buf, max)? {
            if f.tag != b'p' {
                return Err(FrontendError::Protocol(format!(
                    "expected a password message, got '{}'",
                    f.tag as char
                )));
            }
            return Ok(f);
        }
        read_more(stream, buf).await?;
    }
}

/// Writes a whole message and flushes it: over TLS, bytes could otherwise wait in the TLS
/// session while we wait for the client's answer.
async fn send(stream: &mut MaybeTls, msg: &[u8]) -> std::io::Result<()> {
    stream.write_all(msg).await?;
    stream.flush().await
}

async fn read_more(stream: &mut MaybeTls, buf: &mut BytesMut) -> Result<(), FrontendError> {
    if stream.read_buf(buf).await? == 0 {
        return Err(FrontendError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "client closed the connection during startup",
        )));
    }
    Ok(())
}
