//! Typed, borrowing views over the bodies of server messages the proxy needs to inspect.

use bytes::Bytes;

use crate::error::ProtocolError;
use crate::reader::Reader;

#[cfg(test)]
mod tests;

/// ReadyForQuery ('Z'): transaction status b'I' (idle), b'T' (in a block) or b'E' (failed block).
pub fn ready_status(body: &[u8]) -> Result<u8, ProtocolError> {
    let mut r = Reader::new(body, "ReadyForQuery");
    let status = r.u8()?;
    r.finish()?;
    match status {
        b'I' | b'T' | b'E' => Ok(status),
        _ => Err(ProtocolError::malformed("ReadyForQuery", "unknown status")),
    }
}

/// DataRow ('D'): the first column's value, None when it is NULL or the row has no column.
pub fn data_row_first(body: &[u8]) -> Result<Option<&[u8]>, ProtocolError> {
    let mut r = Reader::new(body, "DataRow");
    let count = r.i16()?;
    if count < 1 {
        return Ok(None);
    }
    let len = r.i32()?;
    if len < 0 {
        return Ok(None);
    }
    let len =
        usize::try_from(len).map_err(|_| ProtocolError::malformed("DataRow", "bad length"))?;
    Ok(Some(r.take(len)?))
}

/// ParameterStatus ('S'): a run-time parameter the server reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterStatus<'a> {
    /// Parameter name.
    pub name: &'a str,
    /// Current value.
    pub value: &'a str,
}

/// Decodes a ParameterStatus ('S') body.
pub fn parse_parameter_status(body: &[u8]) -> Result<ParameterStatus<'_>, ProtocolError> {
    let mut r = Reader::new(body, "ParameterStatus");
    let name = r.cstr()?;
    let value = r.cstr()?;
    r.finish()?;
    Ok(ParameterStatus { name, value })
}

/// BackendKeyData ('K'): (pid, secret). Only the 4-byte secret of protocol 3.0 is accepted,
/// which is all a server sends to the 3.0 startup this crate builds.
pub fn parse_backend_key(body: &[u8]) -> Result<(i32, i32), ProtocolError> {
    let mut r = Reader::new(body, "BackendKeyData");
    let pid = r.i32()?;
    let secret = r.i32()?;
    r.finish()?;
    Ok((pid, secret))
}

/// CommandComplete ('C', backend): the command tag such as "INSERT 0 1".
pub fn command_tag(body: &[u8]) -> Result<&str, ProtocolError> {
    let mut r = Reader::new(body, "CommandComplete");
    let tag = r.cstr()?;
    r.finish()?;
    Ok(tag)
}

/// The fields of an ErrorResponse or NoticeResponse the proxy uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFields {
    /// Severity (the non-localized 'V' field when present, else 'S').
    pub severity: String,
    /// SQLSTATE code.
    pub code: String,
    /// Primary message.
    pub message: String,
    /// Optional detail.
    pub detail: Option<String>,
    /// Optional hint.
    pub hint: Option<String>,
}

/// Decodes an ErrorResponse ('E') or NoticeResponse ('N') body. Text is decoded lossily
/// because the server writes it in client_encoding, which need not be UTF-8.
pub fn parse_error_fields(body: &[u8]) -> Result<ErrorFields, ProtocolError> {
    const WHAT: &str = "ErrorResponse";
    let mut r = Reader::new(body, WHAT);
    let mut f = ErrorFields::default();
    let mut have_v = false;
    loop {
        let kind = r.u8()?;
        if kind == 0 {
            r.finish()?;
            return Ok(f);
        }
        let value = String::from_utf8_lossy(r.cbytes()?).into_owned();
        match kind {
            b'V' => {
                f.severity = value;
                have_v = true;
            }
            b'S' if !have_v => f.severity = value,
            b'C' => f.code = value,
            b'M' => f.message = value,
            b'D' => f.detail = Some(value),
            b'H' => f.hint = Some(value),
            _ => {}
        }
    }
}

/// An Authentication ('R') request from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// AuthenticationOk.
    Ok,
    /// AuthenticationCleartextPassword.
    CleartextPassword,
    /// AuthenticationMD5Password with its salt.
    Md5Password {
        /// Salt to hash the password with.
        salt: [u8; 4],
    },
    /// AuthenticationSASL with the offered mechanisms.
    Sasl {
        /// Mechanism names in the server's order of preference.
        mechanisms: Vec<String>,
    },
    /// AuthenticationSASLContinue with the server-first-message.
    SaslContinue {
        /// Mechanism-specific data.
        data: Bytes,
    },
    /// AuthenticationSASLFinal with the server-final-message.
    SaslFinal {
        /// Mechanism-specific data.
        data: Bytes,
    },
    /// Any other method (Kerberos, GSSAPI, SSPI, ...) by its code.
    Unsupported(i32),
}

/// Decodes an Authentication ('R') body.
pub fn parse_authentication(body: &[u8]) -> Result<Authentication, ProtocolError> {
    const WHAT: &str = "Authentication";
    let mut r = Reader::new(body, WHAT);
    let code = r.i32()?;
    let auth = match code {
        0 => Authentication::Ok,
        3 => Authentication::CleartextPassword,
        5 => Authentication::Md5Password { salt: r.array()? },
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let m = r.cstr()?;
                if m.is_empty() {
                    break;
                }
                mechanisms.push(m.to_owned());
            }
            Authentication::Sasl { mechanisms }
        }
        11 => Authentication::SaslContinue {
            data: Bytes::copy_from_slice(r.take(r.remaining().len())?),
        },
        12 => Authentication::SaslFinal {
            data: Bytes::copy_from_slice(r.take(r.remaining().len())?),
        },
        // Other methods carry bodies this crate does not interpret; accept them unread.
        other => return Ok(Authentication::Unsupported(other)),
    };
    r.finish()?;
    Ok(auth)
}
