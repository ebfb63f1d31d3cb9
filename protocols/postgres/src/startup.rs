//! Untagged packets a client sends before the first regular message.

use bytes::{Buf, BytesMut};

use crate::error::ProtocolError;
use crate::reader::Reader;

#[cfg(test)]
mod tests;

/// Request code of an SSLRequest packet.
pub const SSL_REQUEST_CODE: i32 = 80_877_103;
/// Request code of a GSSENCRequest packet.
pub const GSSENC_REQUEST_CODE: i32 = 80_877_104;
/// Request code of a CancelRequest packet.
pub const CANCEL_REQUEST_CODE: i32 = 80_877_102;
/// Protocol 3.0 as sent in a StartupMessage.
pub const PROTOCOL_3_0: i32 = 196_608;

/// The first packet of a client connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    /// The client wants TLS before anything else.
    SslRequest,
    /// The client wants GSSAPI encryption before anything else.
    GssEncRequest,
    /// The client asks to cancel the query running on another connection.
    Cancel {
        /// Backend process id from BackendKeyData.
        pid: i32,
        /// Secret key from BackendKeyData.
        secret: i32,
    },
    /// A StartupMessage for protocol 3.x.
    Startup {
        /// Always 3.
        major: u16,
        /// Minor version the client asked for; the caller negotiates down if needed.
        minor: u16,
        /// Parameter name/value pairs in the order sent (user, database, options, ...).
        params: Vec<(String, String)>,
    },
}

impl StartupPacket {
    /// Value of a startup parameter, if the client sent it (the last one wins, as in PostgreSQL).
    pub fn param(&self, name: &str) -> Option<&str> {
        match self {
            StartupPacket::Startup { params, .. } => params
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str()),
            _ => None,
        }
    }
}

const WHAT: &str = "startup packet";

/// Ok(None) on short input; rejects lengths < 8 or > max_len; params are NUL-terminated
/// pairs ended by a NUL; must be valid UTF-8 else Malformed. Major version must be 3 for
/// Startup (any minor) else UnsupportedVersion.
pub fn decode_startup(
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<Option<StartupPacket>, ProtocolError> {
    let Some(&[a, b, c, d]) = buf.get(..4) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([a, b, c, d]);
    if len < 8 {
        return Err(ProtocolError::BadLength(i64::from(len)));
    }
    let len = usize::try_from(len).map_err(|_| ProtocolError::BadLength(i64::from(len)))?;
    if len > max_len {
        return Err(ProtocolError::TooLarge { len, max: max_len });
    }
    if buf.len() < len {
        buf.reserve(len - buf.len());
        return Ok(None);
    }
    let mut packet = buf.split_to(len);
    packet.advance(4);
    let mut r = Reader::new(&packet, WHAT);
    let code = r.i32()?;
    match code {
        SSL_REQUEST_CODE | GSSENC_REQUEST_CODE => {
            if !r.is_empty() {
                return Err(ProtocolError::malformed(
                    WHAT,
                    "encryption request has a body",
                ));
            }
            Ok(Some(if code == SSL_REQUEST_CODE {
                StartupPacket::SslRequest
            } else {
                StartupPacket::GssEncRequest
            }))
        }
        CANCEL_REQUEST_CODE => {
            let pid = r.i32()?;
            let secret = r.i32()?;
            // Protocol 3.2 allows longer secrets; the proxy only issues 4-byte ones.
            if !r.is_empty() {
                return Err(ProtocolError::malformed(
                    WHAT,
                    "cancel request is not 16 bytes",
                ));
            }
            Ok(Some(StartupPacket::Cancel { pid, secret }))
        }
        _ => {
            let [h0, h1, l0, l1] = code.to_be_bytes();
            let major = u16::from_be_bytes([h0, h1]);
            let minor = u16::from_be_bytes([l0, l1]);
            if major != 3 {
                return Err(ProtocolError::UnsupportedVersion { major, minor });
            }
            let params = decode_params(r.remaining())?;
            Ok(Some(StartupPacket::Startup {
                major,
                minor,
                params,
            }))
        }
    }
}

fn decode_params(body: &[u8]) -> Result<Vec<(String, String)>, ProtocolError> {
    let mut r = Reader::new(body, WHAT);
    let mut params = Vec::new();
    loop {
        match r.remaining().first() {
            None => return Err(ProtocolError::malformed(WHAT, "missing terminator")),
            Some(0) => {
                r.take(1)?;
                r.finish()?;
                return Ok(params);
            }
            Some(_) => {
                let name = r.cstr()?;
                let value = r.cstr()?;
                params.push((name.to_owned(), value.to_owned()));
            }
        }
    }
}
