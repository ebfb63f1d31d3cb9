//! Messages the client sends: HandshakeResponse41, SSLRequest, command bytes, and the
//! statement id at the start of the prepared-statement commands.

use bytes::{BufMut, Bytes, BytesMut};
use mysql_common::constants::{CapabilityFlags, Command};

use crate::error::ProtocolError;
use crate::lenenc::put_lenenc_str;
use crate::reader::Reader;
use crate::server::put_cstr;

#[cfg(test)]
mod tests;

/// Size of an SSLRequest payload: capabilities, max packet, charset, 23 filler bytes.
pub const SSL_REQUEST_LEN: usize = 32;

/// The client's reply to the greeting (protocol 4.1 form).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeResponse41 {
    /// Client capability flags; unknown bits are kept.
    pub capabilities: CapabilityFlags,
    /// Largest packet the client will send.
    pub max_packet_size: u32,
    /// Collation id the client wants.
    pub charset: u8,
    /// Login user name.
    pub username: Vec<u8>,
    /// The plugin's response to the nonce (a scramble, or empty for an empty password).
    pub auth_response: Vec<u8>,
    /// Initial database, sent with CLIENT_CONNECT_WITH_DB.
    pub database: Option<Vec<u8>>,
    /// Auth plugin the response was made with, sent with CLIENT_PLUGIN_AUTH.
    pub auth_plugin_name: Option<Vec<u8>>,
    /// Raw connection attribute block (without its length prefix), sent with
    /// CLIENT_CONNECT_ATTRS; kept undecoded because the proxy only forwards it.
    pub connect_attrs: Option<Vec<u8>>,
}

impl HandshakeResponse41 {
    /// Parses the payload (not an SSLRequest: check `is_ssl_request` first).
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload, "handshake response");
        let capabilities = CapabilityFlags::from_bits_retain(r.u32()?);
        if !capabilities.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
            return Err(r.err("client does not speak protocol 4.1"));
        }
        let max_packet_size = r.u32()?;
        let charset = r.u8()?;
        r.take(23)?;
        let username = r.cbytes()?.to_vec();
        let auth_response =
            if capabilities.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
                r.lenenc_bytes()?
            } else if capabilities.contains(CapabilityFlags::CLIENT_SECURE_CONNECTION) {
                let n = usize::from(r.u8()?);
                r.take(n)?
            } else {
                r.cbytes()?
            }
            .to_vec();
        let mut resp = HandshakeResponse41 {
            capabilities,
            max_packet_size,
            charset,
            username,
            auth_response,
            ..HandshakeResponse41::default()
        };
        if capabilities.contains(CapabilityFlags::CLIENT_CONNECT_WITH_DB) {
            resp.database = Some(r.cbytes()?.to_vec());
        }
        if capabilities.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) {
            // Some old clients omit the NUL when the plugin name ends the packet.
            let name = if capabilities.contains(CapabilityFlags::CLIENT_CONNECT_ATTRS) {
                r.cbytes()?
            } else {
                r.cbytes_or_rest()
            };
            resp.auth_plugin_name = Some(name.to_vec());
        }
        if capabilities.contains(CapabilityFlags::CLIENT_CONNECT_ATTRS) && !r.is_empty() {
            resp.connect_attrs = Some(r.lenenc_bytes()?.to_vec());
        }
        Ok(resp)
    }

    /// Encodes the payload; fails only when the auth response is over 255 bytes and the
    /// capabilities demand the 1-byte length form.
    pub fn encode(&self) -> Result<Bytes, ProtocolError> {
        let caps = self.capabilities;
        let mut out = BytesMut::with_capacity(64 + self.username.len() + self.auth_response.len());
        out.put_u32_le(caps.bits());
        out.put_u32_le(self.max_packet_size);
        out.put_u8(self.charset);
        out.put_bytes(0, 23);
        put_cstr(&mut out, &self.username);
        if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
            put_lenenc_str(&mut out, &self.auth_response);
        } else if caps.contains(CapabilityFlags::CLIENT_SECURE_CONNECTION) {
            let n = u8::try_from(self.auth_response.len()).map_err(|_| {
                ProtocolError::malformed(
                    "handshake response",
                    "auth response over 255 bytes needs the lenenc form",
                )
            })?;
            out.put_u8(n);
            out.put_slice(&self.auth_response);
        } else {
            put_cstr(&mut out, &self.auth_response);
        }
        if caps.contains(CapabilityFlags::CLIENT_CONNECT_WITH_DB) {
            put_cstr(&mut out, self.database.as_deref().unwrap_or_default());
        }
        if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) {
            put_cstr(
                &mut out,
                self.auth_plugin_name.as_deref().unwrap_or_default(),
            );
        }
        if caps.contains(CapabilityFlags::CLIENT_CONNECT_ATTRS) {
            put_lenenc_str(&mut out, self.connect_attrs.as_deref().unwrap_or_default());
        }
        Ok(out.freeze())
    }
}

/// The truncated handshake response a client sends before starting TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SslRequest {
    /// Client capability flags (include CLIENT_SSL).
    pub capabilities: CapabilityFlags,
    /// Largest packet the client will send.
    pub max_packet_size: u32,
    /// Collation id the client wants.
    pub charset: u8,
}

impl SslRequest {
    /// Parses a 32-byte SSLRequest payload.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        if !is_ssl_request(payload) {
            return Err(ProtocolError::malformed(
                "ssl request",
                "not 32 bytes with CLIENT_SSL",
            ));
        }
        let mut r = Reader::new(payload, "ssl request");
        Ok(SslRequest {
            capabilities: CapabilityFlags::from_bits_retain(r.u32()?),
            max_packet_size: r.u32()?,
            charset: r.u8()?,
        })
    }

    /// Encodes the 32-byte payload (CLIENT_SSL is added if missing).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(SSL_REQUEST_LEN);
        out.put_u32_le((self.capabilities | CapabilityFlags::CLIENT_SSL).bits());
        out.put_u32_le(self.max_packet_size);
        out.put_u8(self.charset);
        out.put_bytes(0, 23);
        out.freeze()
    }
}

/// True when a handshake-response payload is an SSLRequest: exactly 32 bytes with
/// COM_CHANGE_USER: log in again as another user on the same connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeUser {
    /// User name.
    pub username: Vec<u8>,
    /// Auth response for the handshake's nonce (1-byte length prefixed, as every 4.1 client
    /// with CLIENT_SECURE_CONNECTION sends it).
    pub auth_response: Vec<u8>,
    /// Database to use ("" for none).
    pub database: Vec<u8>,
    /// Character set, when sent.
    pub charset: Option<u16>,
    /// Auth plugin the response was made with, when sent.
    pub auth_plugin_name: Option<Vec<u8>>,
}

impl ChangeUser {
    /// Parses the payload, command byte included; connect attributes are skipped.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload, "COM_CHANGE_USER");
        if r.u8()? != 0x11 {
            return Err(r.err("not a COM_CHANGE_USER"));
        }
        let username = r.cbytes()?.to_vec();
        let n = usize::from(r.u8()?);
        let auth_response = r.take(n)?.to_vec();
        // Old clients may end the packet after the user and response.
        let database = if r.is_empty() {
            Vec::new()
        } else {
            r.cbytes_or_rest().to_vec()
        };
        let mut cu = ChangeUser {
            username,
            auth_response,
            database,
            ..ChangeUser::default()
        };
        if r.is_empty() {
            return Ok(cu);
        }
        cu.charset = Some(u16::from_le_bytes([r.u8()?, r.u8()?]));
        if !r.is_empty() {
            cu.auth_plugin_name = Some(r.cbytes_or_rest().to_vec());
        }
        Ok(cu)
    }
}

/// CLIENT_SSL (a full response always has at least the username's NUL after them).
pub fn is_ssl_request(payload: &[u8]) -> bool {
    let Some(&[a, b, c, d]) = payload.get(..4) else {
        return false;
    };
    payload.len() == SSL_REQUEST_LEN
        && CapabilityFlags::from_bits_retain(u32::from_le_bytes([a, b, c, d]))
            .contains(CapabilityFlags::CLIENT_SSL)
}

/// The command a command-phase payload carries, or `None` for an empty or unknown byte.
pub fn command_of(payload: &[u8]) -> Option<Command> {
    // mysql_common's Command has no TryFrom<u8>, so the mapping is spelled out here.
    use Command::*;
    let cmd = match payload.first()? {
        0x00 => COM_SLEEP,
        0x01 => COM_QUIT,
        0x02 => COM_INIT_DB,
        0x03 => COM_QUERY,
        0x04 => COM_FIELD_LIST,
        0x05 => COM_CREATE_DB,
        0x06 => COM_DROP_DB,
        0x07 => COM_REFRESH,
        0x08 => COM_DEPRECATED_1,
        0x09 => COM_STATISTICS,
        0x0A => COM_PROCESS_INFO,
        0x0B => COM_CONNECT,
        0x0C => COM_PROCESS_KILL,
        0x0D => COM_DEBUG,
        0x0E => COM_PING,
        0x0F => COM_TIME,
        0x10 => COM_DELAYED_INSERT,
        0x11 => COM_CHANGE_USER,
        0x12 => COM_BINLOG_DUMP,
        0x13 => COM_TABLE_DUMP,
        0x14 => COM_CONNECT_OUT,
        0x15 => COM_REGISTER_SLAVE,
        0x16 => COM_STMT_PREPARE,
        0x17 => COM_STMT_EXECUTE,
        0x18 => COM_STMT_SEND_LONG_DATA,
        0x19 => COM_STMT_CLOSE,
        0x1A => COM_STMT_RESET,
        0x1B => COM_SET_OPTION,
        0x1C => COM_STMT_FETCH,
        0x1D => COM_DAEMON,
        0x1E => COM_BINLOG_DUMP_GTID,
        0x1F => COM_RESET_CONNECTION,
        _ => return None,
    };
    Some(cmd)
}

/// Builds a command payload: the command byte followed by `body` (SQL text, schema name...).
pub fn command_payload(cmd: Command, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + body.len());
    out.put_u8(cmd as u8);
    out.put_slice(body);
    out.freeze()
}

/// True for the commands whose payload starts with a 4-byte statement id.
pub fn carries_statement_id(cmd: Command) -> bool {
    matches!(
        cmd,
        Command::COM_STMT_EXECUTE
            | Command::COM_STMT_SEND_LONG_DATA
            | Command::COM_STMT_CLOSE
            | Command::COM_STMT_RESET
            | Command::COM_STMT_FETCH
    )
}

/// The statement id of a COM_STMT_EXECUTE / SEND_LONG_DATA / CLOSE / RESET / FETCH payload.
pub fn statement_id(payload: &[u8]) -> Result<u32, ProtocolError> {
    let mut r = Reader::new(payload, "statement command");
    let cmd = command_of(payload).ok_or_else(|| r.err("unknown command"))?;
    if !carries_statement_id(cmd) {
        return Err(r.err("command has no statement id"));
    }
    r.u8()?;
    r.u32()
}

/// Replaces the statement id in such a payload in place and returns the old one. Also
/// works on a relayed packet's raw bytes past the 4-byte header: a split packet's first
/// chunk is 0xFFFFFF bytes, so the id is always in it.
pub fn rewrite_statement_id(payload: &mut [u8], new_id: u32) -> Result<u32, ProtocolError> {
    let old = statement_id(payload)?;
    if let Some(slot) = payload.get_mut(1..5) {
        slot.copy_from_slice(&new_id.to_le_bytes());
    }
    Ok(old)
}
