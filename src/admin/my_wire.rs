//! The console on the MySQL wire: the front end's handshake (mysql_native_password and
//! caching_sha2_password) with the console's users, then COM_QUERY answered with text result
//! sets; COM_PING, COM_INIT_DB and COM_QUIT as a server would.

use super::{execute, AdminContext, Reply, MAX_ADMIN_CLIENTS};
use crate::frontend::mysql::handshake::{handshake, LoginPolicy};
use bytes::{BufMut, BytesMut};
use std::sync::Arc;
use switchyard_mysql::{self as my, Command, StatusFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Largest packet accepted from a console client.
const MAX_PACKET: usize = 1 << 20;
/// A console client must log in within this time.
const LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// utf8mb4_general_ci.
const CHARSET: u16 = 45;

/// Accepts console clients on `listener` until `shutdown` flips.
pub async fn serve_mysql(
    ctx: Arc<AdminContext>,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) {
    let refusal = |_| {
        let err = crate::frontend::mysql::err_payload(
            1040,
            "08004",
            "too many admin console connections",
        );
        my::encode_packet(0, &err)
    };
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

async fn client(ctx: Arc<AdminContext>, tcp: tokio::net::TcpStream) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(1024);
    let policy = LoginPolicy {
        users: &ctx.passwords,
        tls_acceptor: None,
        tls_require: false,
        local_infile: false,
    };
    let (mut s, login) =
        match tokio::time::timeout(LOGIN_TIMEOUT, handshake(tcp, &mut buf, &policy, 0)).await {
            Ok((Some(s), Ok(login))) => (s, login),
            Ok(_) | Err(_) => return Ok(()),
        };
    let ok = |status| crate::frontend::mysql::ok_payload(status);
    let status = StatusFlags::SERVER_STATUS_AUTOCOMMIT;
    s.write_all(&my::encode_packet(login.next_seq, &ok(status)))
        .await?;
    let role = ctx.role(&login.user);
    tracing::info!(user = %login.user, ?role, "admin console login (mysql wire)");
    loop {
        let p = loop {
            match my::decode_packet(&mut buf, MAX_PACKET) {
                Ok(Some(p)) => break p,
                Ok(None) => {
                    if s.read_buf(&mut buf).await? == 0 {
                        return Ok(());
                    }
                }
                Err(e) => {
                    let err = crate::frontend::mysql::err_payload(1153, "08S01", &e.to_string());
                    s.write_all(&my::encode_packet(1, &err)).await?;
                    return Ok(());
                }
            }
        };
        let seq = p.next_seq();
        let out = match my::command_of(&p.payload) {
            Some(Command::COM_QUIT) => return Ok(()),
            Some(Command::COM_PING) | Some(Command::COM_INIT_DB) => {
                my::encode_packet(seq, &ok(status)).to_vec()
            }
            Some(Command::COM_QUERY) => {
                let sql = String::from_utf8_lossy(&p.payload[1..]).into_owned();
                match execute(&ctx, role, &sql).await {
                    Ok(Reply::Rows { columns, rows }) => result_set(seq, &columns, &rows),
                    Ok(Reply::Done(_)) => my::encode_packet(seq, &ok(status)).to_vec(),
                    Err(e) => {
                        let err = crate::frontend::mysql::err_payload(
                            e.mysql_code(),
                            "42000",
                            &e.to_string(),
                        );
                        my::encode_packet(seq, &err).to_vec()
                    }
                }
            }
            _ => {
                let err = crate::frontend::mysql::err_payload(
                    1047,
                    "08S01",
                    "the admin console answers COM_QUERY, COM_PING, COM_INIT_DB and COM_QUIT",
                );
                my::encode_packet(seq, &err).to_vec()
            }
        };
        s.write_all(&out).await?;
    }
}

/// A text result set: column count, definitions, EOF, rows, EOF (no CLIENT_DEPRECATE_EOF).
fn result_set(first_seq: u8, columns: &[String], rows: &[Vec<Option<String>>]) -> Vec<u8> {
    let mut seq = first_seq;
    let mut out = Vec::new();
    let mut push = |payload: &[u8], out: &mut Vec<u8>| {
        out.extend_from_slice(&my::encode_packet(seq, payload));
        seq = seq.wrapping_add(1);
    };
    let mut p = BytesMut::new();
    my::put_lenenc_int(&mut p, columns.len() as u64);
    push(&p, &mut out);
    for c in columns {
        let mut d = BytesMut::new();
        my::put_lenenc_str(&mut d, b"def");
        my::put_lenenc_str(&mut d, b"switchyard");
        my::put_lenenc_str(&mut d, b"");
        my::put_lenenc_str(&mut d, b"");
        my::put_lenenc_str(&mut d, c.as_bytes());
        my::put_lenenc_str(&mut d, c.as_bytes());
        d.put_u8(0x0c);
        d.put_u16_le(CHARSET);
        d.put_u32_le(1024);
        d.put_u8(0xfd); // VAR_STRING
        d.put_u16_le(0);
        d.put_u8(0);
        d.put_u16_le(0);
        push(&d, &mut out);
    }
    let eof = my::EofPacket {
        warnings: 0,
        status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
    }
    .encode();
    push(&eof, &mut out);
    for row in rows {
        let mut r = BytesMut::new();
        for v in row {
            match v {
                Some(text) => my::put_lenenc_str(&mut r, text.as_bytes()),
                None => r.put_u8(0xfb),
            }
        }
        push(&r, &mut out);
    }
    push(&eof, &mut out);
    out
}
