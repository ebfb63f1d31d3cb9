//! Encoders for the messages the proxy writes, each returning one complete message.
//!
//! Strings are written as C strings, so anything after an embedded NUL is dropped: the
//! alternative would be a message the peer parses differently from what was meant.
//! Inputs are assumed far below PostgreSQL's 1 GiB message limit; a body that does not
//! fit the i32 length field gets a saturated length rather than a panic.

use bytes::{BufMut, Bytes, BytesMut};

use crate::backend::ErrorFields;
use crate::startup::PROTOCOL_3_0;

#[cfg(test)]
mod tests;

fn put_cstr(buf: &mut BytesMut, s: &[u8]) {
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    buf.put_slice(s.get(..end).unwrap_or_default());
    buf.put_u8(0);
}

fn patch_len(buf: &mut BytesMut, at: usize) {
    let len = buf.len().saturating_sub(at);
    let len = i32::try_from(len).unwrap_or(i32::MAX);
    if let Some(slot) = buf.get_mut(at..at + 4) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
}

/// Builds a tagged message: `body` writes the body, the length is patched in afterwards.
fn tagged(tag: u8, capacity: usize, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::with_capacity(capacity.saturating_add(5));
    buf.put_u8(tag);
    buf.put_i32(0);
    body(&mut buf);
    patch_len(&mut buf, 1);
    buf.freeze()
}

/// Builds an untagged (startup-phase) packet whose length counts itself.
fn untagged(capacity: usize, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::with_capacity(capacity.saturating_add(4));
    buf.put_i32(0);
    body(&mut buf);
    patch_len(&mut buf, 0);
    buf.freeze()
}

fn error_like(tag: u8, f: &ErrorFields) -> Bytes {
    let cap = f.severity.len() * 2
        + f.code.len()
        + f.message.len()
        + f.detail.as_ref().map_or(0, String::len)
        + f.hint.as_ref().map_or(0, String::len)
        + 16;
    tagged(tag, cap, |b| {
        for (kind, value) in [
            (b'S', Some(&f.severity)),
            (b'V', Some(&f.severity)),
            (b'C', Some(&f.code)),
            (b'M', Some(&f.message)),
            (b'D', f.detail.as_ref()),
            (b'H', f.hint.as_ref()),
        ] {
            if let Some(v) = value {
                b.put_u8(kind);
                put_cstr(b, v.as_bytes());
            }
        }
        b.put_u8(0);
    })
}

fn simple_fields(severity: &str, code: &str, message: &str) -> ErrorFields {
    ErrorFields {
        severity: severity.to_owned(),
        code: code.to_owned(),
        message: message.to_owned(),
        detail: None,
        hint: None,
    }
}

/// ErrorResponse ('E') with fields S, V (same as S), C, M.
pub fn error_response(severity: &str, code: &str, message: &str) -> Bytes {
    error_like(b'E', &simple_fields(severity, code, message))
}

/// ErrorResponse ('E') with S, V, C, M and, when set, D and H.
pub fn error_response_fields(f: &ErrorFields) -> Bytes {
    error_like(b'E', f)
}

/// RowDescription ('T') for text columns (type `text`, OID 25, text format).
pub fn row_description(columns: &[&str]) -> Bytes {
    let size: usize = columns.iter().map(|c| c.len() + 19).sum();
    tagged(b'T', size + 2, |b| {
        b.put_i16(i16::try_from(columns.len()).unwrap_or(i16::MAX));
        for c in columns.iter().take(i16::MAX as usize) {
            b.put_slice(c.as_bytes());
            b.put_u8(0);
            b.put_i32(0); // table OID
            b.put_i16(0); // column number
            b.put_i32(25); // type OID: text
            b.put_i16(-1); // variable length
            b.put_i32(-1); // no type modifier
            b.put_i16(0); // text format
        }
    })
}

/// DataRow ('D') of text values (None is NULL).
pub fn data_row(values: &[Option<&str>]) -> Bytes {
    let size: usize = values.iter().map(|v| v.map_or(0, str::len) + 4).sum();
    tagged(b'D', size + 2, |b| {
        b.put_i16(i16::try_from(values.len()).unwrap_or(i16::MAX));
        for v in values.iter().take(i16::MAX as usize) {
            match v {
                Some(text) => {
                    b.put_i32(i32::try_from(text.len()).unwrap_or(i32::MAX));
                    b.put_slice(text.as_bytes());
                }
                None => b.put_i32(-1),
            }
        }
    })
}

/// EmptyQueryResponse ('I').
pub fn empty_query_response() -> Bytes {
    tagged(b'I', 0, |_| {})
}

/// NoticeResponse ('N') with fields S, V (same as S), C, M.
pub fn notice_response(severity: &str, code: &str, message: &str) -> Bytes {
    error_like(b'N', &simple_fields(severity, code, message))
}

fn auth(code: i32, capacity: usize, rest: impl FnOnce(&mut BytesMut)) -> Bytes {
    tagged(b'R', capacity + 4, |b| {
        b.put_i32(code);
        rest(b);
    })
}

/// AuthenticationOk.
pub fn auth_ok() -> Bytes {
    auth(0, 0, |_| {})
}

/// AuthenticationCleartextPassword.
pub fn auth_cleartext() -> Bytes {
    auth(3, 0, |_| {})
}

/// AuthenticationMD5Password with the salt the client must hash with.
pub fn auth_md5(salt: [u8; 4]) -> Bytes {
    auth(5, 4, |b| b.put_slice(&salt))
}

/// AuthenticationSASL offering `mechanisms` in order of preference.
pub fn auth_sasl(mechanisms: &[&str]) -> Bytes {
    let cap = mechanisms.iter().map(|m| m.len() + 1).sum::<usize>() + 1;
    auth(10, cap, |b| {
        for m in mechanisms {
            put_cstr(b, m.as_bytes());
        }
        b.put_u8(0);
    })
}

/// AuthenticationSASLContinue carrying the server-first-message.
pub fn auth_sasl_continue(data: &[u8]) -> Bytes {
    auth(11, data.len(), |b| b.put_slice(data))
}

/// AuthenticationSASLFinal carrying the server-final-message.
pub fn auth_sasl_final(data: &[u8]) -> Bytes {
    auth(12, data.len(), |b| b.put_slice(data))
}

/// ParameterStatus ('S').
pub fn parameter_status(name: &str, value: &str) -> Bytes {
    tagged(b'S', name.len() + value.len() + 2, |b| {
        put_cstr(b, name.as_bytes());
        put_cstr(b, value.as_bytes());
    })
}

/// BackendKeyData ('K') with a 4-byte secret (protocol 3.0).
pub fn backend_key_data(pid: i32, secret: i32) -> Bytes {
    tagged(b'K', 8, |b| {
        b.put_i32(pid);
        b.put_i32(secret);
    })
}

/// ReadyForQuery ('Z') with transaction status b'I', b'T' or b'E'.
pub fn ready_for_query(status: u8) -> Bytes {
    tagged(b'Z', 1, |b| b.put_u8(status))
}

/// CommandComplete ('C') with the given command tag.
pub fn command_complete(tag: &str) -> Bytes {
    tagged(b'C', tag.len() + 1, |b| put_cstr(b, tag.as_bytes()))
}

/// NegotiateProtocolVersion ('v'): the newest minor version supported and the
/// `_pq_.` options that were not recognised.
pub fn negotiate_protocol_version(newest_minor: u16, unrecognized: &[&str]) -> Bytes {
    let cap = unrecognized.iter().map(|s| s.len() + 1).sum::<usize>() + 8;
    tagged(b'v', cap, |b| {
        b.put_i32(i32::from(newest_minor));
        b.put_i32(i32::try_from(unrecognized.len()).unwrap_or(i32::MAX));
        for s in unrecognized {
            put_cstr(b, s.as_bytes());
        }
    })
}

/// The single byte b'N' answering an SSLRequest or GSSENCRequest the proxy declines.
pub fn ssl_refused() -> Bytes {
    Bytes::from_static(b"N")
}

/// StartupMessage for protocol 3.0 with the given parameters.
pub fn startup_message(params: &[(&str, &str)]) -> Bytes {
    let cap = params
        .iter()
        .map(|(n, v)| n.len() + v.len() + 2)
        .sum::<usize>()
        + 5;
    untagged(cap, |b| {
        b.put_i32(PROTOCOL_3_0);
        for (name, value) in params {
            put_cstr(b, name.as_bytes());
            put_cstr(b, value.as_bytes());
        }
        b.put_u8(0);
    })
}

/// PasswordMessage ('p') with a cleartext password or an md5 response.
pub fn password_message(password: &[u8]) -> Bytes {
    tagged(b'p', password.len() + 1, |b| put_cstr(b, password))
}

/// SASLInitialResponse ('p') with the chosen mechanism and client-first-message.
pub fn sasl_initial_response(mechanism: &str, data: &[u8]) -> Bytes {
    tagged(b'p', mechanism.len() + data.len() + 5, |b| {
        put_cstr(b, mechanism.as_bytes());
        b.put_i32(i32::try_from(data.len()).unwrap_or(i32::MAX));
        b.put_slice(data);
    })
}

/// SASLResponse ('p') with the client-final-message.
pub fn sasl_response(data: &[u8]) -> Bytes {
    tagged(b'p', data.len(), |b| b.put_slice(data))
}

/// Query ('Q').
pub fn query(sql: &str) -> Bytes {
    tagged(b'Q', sql.len() + 1, |b| put_cstr(b, sql.as_bytes()))
}

/// Parse ('P'); at most i16::MAX parameter types are written, the protocol's own limit.
pub fn parse(name: &str, sql: &str, param_types: &[u32]) -> Bytes {
    let types = param_types
        .get(..param_types.len().min(i16::MAX as usize))
        .unwrap_or_default();
    tagged(b'P', name.len() + sql.len() + 4 + types.len() * 4, |b| {
        put_cstr(b, name.as_bytes());
        put_cstr(b, sql.as_bytes());
        b.put_i16(i16::try_from(types.len()).unwrap_or(i16::MAX));
        for t in types {
            b.put_u32(*t);
        }
    })
}

/// Close ('C', frontend) of a statement (b'S') or portal (b'P').
pub fn close(kind: u8, name: &str) -> Bytes {
    tagged(b'C', name.len() + 2, |b| {
        b.put_u8(kind);
        put_cstr(b, name.as_bytes());
    })
}

/// Describe ('D', frontend) of a statement (b'S') or portal (b'P').
pub fn describe(kind: u8, name: &str) -> Bytes {
    tagged(b'D', name.len() + 2, |b| {
        b.put_u8(kind);
        put_cstr(b, name.as_bytes());
    })
}

/// Execute ('E', frontend) of a portal with a row limit (0 = all rows).
pub fn execute(portal: &str, max_rows: i32) -> Bytes {
    tagged(b'E', portal.len() + 5, |b| {
        put_cstr(b, portal.as_bytes());
        b.put_i32(max_rows);
    })
}

fn via_postgres_protocol(write: fn(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::with_capacity(16);
    write(&mut buf);
    buf.freeze()
}

/// Sync ('S', frontend).
pub fn sync() -> Bytes {
    via_postgres_protocol(postgres_protocol::message::frontend::sync)
}

/// Flush ('H').
pub fn flush() -> Bytes {
    via_postgres_protocol(postgres_protocol::message::frontend::flush)
}

/// Terminate ('X').
pub fn terminate() -> Bytes {
    via_postgres_protocol(postgres_protocol::message::frontend::terminate)
}

/// CancelRequest: the 16-byte untagged packet sent on a fresh connection.
pub fn cancel_request(pid: i32, secret: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(16);
    postgres_protocol::message::frontend::cancel_request(pid, secret, &mut buf);
    buf.freeze()
}
