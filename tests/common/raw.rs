//! Raw protocol helpers for tests that must send exact bytes.

use super::Proxy;
use bytes::{Buf, BufMut, BytesMut};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads one backend message (tag, body) with a timeout.
pub async fn read_msg(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let work = async {
        let tag = s.read_u8().await.ok()?;
        let len = s.read_i32().await.ok()?;
        let mut body = vec![0; usize::try_from(len).ok()?.checked_sub(4)?];
        s.read_exact(&mut body).await.ok()?;
        Some((tag, body))
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .ok()
        .flatten()
}

pub fn sqlstate(body: &[u8]) -> String {
    let mut b = body;
    while b.has_remaining() {
        let field = b.get_u8();
        if field == 0 {
            break;
        }
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        let value = String::from_utf8_lossy(&b[..end]).to_string();
        b.advance((end + 1).min(b.len()));
        if field == b'C' {
            return value;
        }
    }
    String::new()
}

/// Logs in as app/app over md5 by hand and waits for ReadyForQuery.
pub async fn raw_login(p: &Proxy) -> TcpStream {
    let mut s = TcpStream::connect(p.addr).await.expect("connect");
    let mut params = BytesMut::new();
    for (k, v) in [("user", "app"), ("database", "app")] {
        params.put_slice(k.as_bytes());
        params.put_u8(0);
        params.put_slice(v.as_bytes());
        params.put_u8(0);
    }
    params.put_u8(0);
    let mut msg = BytesMut::new();
    msg.put_i32(8 + params.len() as i32);
    msg.put_i32(196608);
    msg.put_slice(&params);
    s.write_all(&msg).await.expect("startup");
    let (tag, body) = read_msg(&mut s).await.expect("auth request");
    assert_eq!(tag, b'R');
    assert_eq!(&body[..4], &5i32.to_be_bytes(), "md5 requested");
    let salt: [u8; 4] = body[4..8].try_into().expect("salt");
    let hash = postgres_protocol::authentication::md5_hash(b"app", b"app", salt);
    let mut pw = BytesMut::new();
    pw.put_u8(b'p');
    pw.put_i32(4 + hash.len() as i32 + 1);
    pw.put_slice(hash.as_bytes());
    pw.put_u8(0);
    s.write_all(&pw).await.expect("password");
    loop {
        let (tag, body) = read_msg(&mut s).await.expect("login reply");
        match tag {
            b'Z' => return s,
            b'E' => panic!("login failed: {}", sqlstate(&body)),
            _ => {}
        }
    }
}

/// A Bind of `statement` to the unnamed portal, no parameters, text results.
pub fn bind(statement: &str) -> bytes::Bytes {
    let mut body = BytesMut::new();
    body.put_u8(0); // unnamed portal
    body.put_slice(statement.as_bytes());
    body.put_u8(0);
    body.put_i16(0); // parameter formats
    body.put_i16(0); // parameters
    body.put_i16(0); // result formats
    let mut m = BytesMut::new();
    m.put_u8(b'B');
    m.put_i32(4 + body.len() as i32);
    m.put_slice(&body);
    m.freeze()
}

/// The first column of a DataRow body, as text.
pub fn first_value(body: &[u8]) -> String {
    let mut b = body;
    if b.remaining() < 6 || b.get_i16() < 1 {
        return String::new();
    }
    let len = b.get_i32();
    let len = usize::try_from(len).unwrap_or(0).min(b.remaining());
    String::from_utf8_lossy(&b[..len]).to_string()
}

/// Reads messages until ReadyForQuery; returns the tags seen and the DataRow first values.
pub async fn until_ready(s: &mut TcpStream) -> (String, Vec<String>) {
    let mut tags = String::new();
    let mut values = Vec::new();
    while let Some((tag, body)) = read_msg(s).await {
        tags.push(tag as char);
        if tag == b'D' {
            values.push(first_value(&body));
        }
        if tag == b'Z' {
            break;
        }
    }
    (tags, values)
}
