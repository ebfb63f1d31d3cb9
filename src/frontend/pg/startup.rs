//! Startup phase: SSL/GSS negotiation, cancel requests, the startup packet and client authentication.

use super::{ClusterContext, FrontendError};
use crate::config::AuthMethod;
use bytes::BytesMut;
use switchyard_postgres::{self as pg, AuthError, Frame, ScramServer, StartupPacket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// Runs the startup phase over `stream`, leaving any bytes read past it in `buf`.
pub async fn startup(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    ctx: &ClusterContext,
) -> Result<Startup, FrontendError> {
    let packet = loop {
        match pg::decode_startup(buf, MAX_STARTUP)? {
            Some(StartupPacket::SslRequest) | Some(StartupPacket::GssEncRequest) => {
                // Encryption arrives with the TLS issue; 'N' makes clients continue in plain text.
                stream.write_all(&pg::ssl_refused()).await?;
            }
            Some(StartupPacket::Cancel { pid, secret }) => {
                return Ok(Startup::Cancel((pid, secret)))
            }
            Some(StartupPacket::Startup { minor, params, .. }) => break (minor, params),
            None => read_more(stream, buf).await?,
        }
    };
    let (minor, params) = packet;
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
        stream
            .write_all(&pg::negotiate_protocol_version(0, &names))
            .await?;
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
    stream: &mut TcpStream,
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
            stream.write_all(&pg::auth_sasl(&["SCRAM-SHA-256"])).await?;
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
            stream.write_all(&pg::auth_sasl_continue(&reply)).await?;
            let last = expect_password(stream, buf, max).await?;
            let fin = server.client_final(&last.body()).map_err(auth_err(user))?;
            if entry.is_none() {
                return Err(failed());
            }
            stream.write_all(&pg::auth_sasl_final(&fin)).await?;
        }
        AuthMethod::Md5 => {
            let salt: [u8; 4] = rand::random();
            stream.write_all(&pg::auth_md5(salt)).await?;
            let msg = expect_password(stream, buf, max).await?;
            let body = msg.body();
            let response = pg::password_text(&body)?;
            let ok = entry.is_some_and(|e| pg::md5_verify(user, &e.password, salt, response));
            if !ok {
                return Err(failed());
            }
        }
    }
    stream.write_all(&pg::auth_ok()).await?;
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
    stream: &mut TcpStream,
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

async fn read_more(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<(), FrontendError> {
    if stream.read_buf(buf).await? == 0 {
        return Err(FrontendError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "client closed the connection during startup",
        )));
    }
    Ok(())
}
