//! The console on the PostgreSQL wire: startup (TLS and GSSAPI encryption declined), md5
//! password authentication, then the simple query protocol, every value as text.

use super::{execute, AdminContext, Reply, MAX_ADMIN_CLIENTS};
use bytes::{BufMut, BytesMut};
use std::sync::Arc;
use switchyard_postgres::{self as pg, StartupPacket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Largest message accepted from a console client.
const MAX_MESSAGE: usize = 1 << 20;
/// A console client must log in within this time.
const LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Accepts console clients on `listener` until `shutdown` flips.
pub async fn serve_postgres(
    ctx: Arc<AdminContext>,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) {
    let refusal = |_| pg::error_response("FATAL", "53300", "too many admin console connections");
    crate::frontend::accept::accept_loop(
        listener,
        MAX_ADMIN_CLIENTS,
        shutdown,
        refusal,
        |stream, peer| {
            let ctx = ctx.clone();
            async move {
                if let Err(e) = client(ctx, stream).await {
                    tracing::debug!(%peer, "admin console client ended: {e}");
                }
            }
        },
    )
    .await
}

async fn client(ctx: Arc<AdminContext>, mut s: TcpStream) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(1024);
    let user = match tokio::time::timeout(LOGIN_TIMEOUT, login(&ctx, &mut s, &mut buf)).await {
        Ok(Ok(Some(user))) => user,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            let _ = s
                .write_all(&pg::error_response("FATAL", "08006", "login timed out"))
                .await;
            return Ok(());
        }
    };
    let role = ctx.role(&user);
    tracing::info!(%user, ?role, "admin console login (postgres wire)");
    loop {
        let frame = loop {
            match pg::decode_frame(&mut buf, MAX_MESSAGE) {
                Ok(Some(f)) => break f,
                Ok(None) => {
                    if s.read_buf(&mut buf).await? == 0 {
                        return Ok(());
                    }
                }
                Err(e) => {
                    let msg = format!("bad message: {e}");
                    s.write_all(&pg::error_response("FATAL", "08P01", &msg))
                        .await?;
                    return Ok(());
                }
            }
        };
        let mut out = BytesMut::new();
        match frame.tag {
            b'Q' => {
                let body = frame.body();
                match pg::query_text(&body) {
                    Ok(sql) if sql.trim().trim_end_matches(';').trim().is_empty() => {
                        out.put_slice(&pg::empty_query_response());
                    }
                    Ok(sql) => match execute(&ctx, role, sql).await {
                        Ok(reply) => write_reply(&mut out, &reply),
                        Err(e) => out.put_slice(&pg::error_response(
                            "ERROR",
                            e.sqlstate(),
                            &e.to_string(),
                        )),
                    },
                    Err(e) => out.put_slice(&pg::error_response("ERROR", "08P01", &e.to_string())),
                }
                out.put_slice(&pg::ready_for_query(b'I'));
            }
            b'X' => return Ok(()),
            b'S' => out.put_slice(&pg::ready_for_query(b'I')),
            // The extended protocol: one error per message run, then wait for Sync.
            b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => {
                if frame.tag == b'P' {
                    out.put_slice(&pg::error_response(
                        "ERROR",
                        "0A000",
                        "the admin console speaks the simple query protocol only",
                    ));
                }
            }
            other => {
                let msg = format!("unexpected message '{}'", other as char);
                s.write_all(&pg::error_response("FATAL", "08P01", &msg))
                    .await?;
                return Ok(());
            }
        }
        if !out.is_empty() {
            s.write_all(&out).await?;
        }
    }
}

/// A result as RowDescription, DataRows and CommandComplete, or a command's tag.
fn write_reply(out: &mut BytesMut, reply: &Reply) {
    match reply {
        Reply::Rows { columns, rows } => {
            let names: Vec<&str> = columns.iter().map(String::as_str).collect();
            out.put_slice(&pg::row_description(&names));
            for row in rows {
                let values: Vec<Option<&str>> = row.iter().map(|v| v.as_deref()).collect();
                out.put_slice(&pg::data_row(&values));
            }
            out.put_slice(&pg::command_complete(&format!("SELECT {}", rows.len())));
        }
        Reply::Done(tag) => out.put_slice(&pg::command_complete(tag)),
    }
}

/// Startup and md5 authentication; Some(user) once logged in, None when the client left or
/// was refused (the error was sent).
async fn login(
    ctx: &AdminContext,
    s: &mut TcpStream,
    buf: &mut BytesMut,
) -> std::io::Result<Option<String>> {
    let params = loop {
        match pg::decode_startup(buf, 10_000) {
            Ok(Some(StartupPacket::SslRequest | StartupPacket::GssEncRequest)) => {
                s.write_all(&pg::ssl_refused()).await?;
            }
            Ok(Some(StartupPacket::Cancel { .. })) => return Ok(None),
            Ok(Some(StartupPacket::Startup { params, .. })) => break params,
            Ok(None) => {
                if s.read_buf(buf).await? == 0 {
                    return Ok(None);
                }
            }
            Err(e) => {
                let msg = format!("bad startup packet: {e}");
                s.write_all(&pg::error_response("FATAL", "08P01", &msg))
                    .await?;
                return Ok(None);
            }
        }
    };
    let user = params
        .iter()
        .rev()
        .find(|(k, _)| k == "user")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let salt: [u8; 4] = rand::random();
    s.write_all(&pg::auth_md5(salt)).await?;
    let frame = loop {
        match pg::decode_frame(buf, 10_000) {
            Ok(Some(f)) => break f,
            Ok(None) => {
                if s.read_buf(buf).await? == 0 {
                    return Ok(None);
                }
            }
            Err(_) => return Ok(None),
        }
    };
    let body = frame.body();
    let ok = frame.tag == b'p'
        && pg::password_text(&body).is_ok_and(|response| {
            ctx.users
                .get(&user)
                .is_some_and(|(pw, _)| pg::md5_verify(&user, pw, salt, response))
        });
    if !ok {
        let msg = format!("password authentication failed for user \"{user}\"");
        s.write_all(&pg::error_response("FATAL", "28P01", &msg))
            .await?;
        return Ok(None);
    }
    let mut out = BytesMut::new();
    out.put_slice(&pg::auth_ok());
    for (k, v) in [
        ("server_version", "15.0 (switchyard admin console)"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
    ] {
        out.put_slice(&pg::parameter_status(k, v));
    }
    out.put_slice(&pg::backend_key_data(0, 0));
    out.put_slice(&pg::ready_for_query(b'I'));
    s.write_all(&out).await?;
    Ok(Some(user))
}
