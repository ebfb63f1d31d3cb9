//! Messages the server sends: the Handshake v10 greeting, auth switch and more-data
//! packets, OK/ERR/EOF, and the COM_STMT_PREPARE response.

use bytes::{BufMut, Bytes, BytesMut};
use mysql_common::constants::{CapabilityFlags, StatusFlags};

use crate::error::ProtocolError;
use crate::lenenc::{lenenc_int_len, put_lenenc_int, put_lenenc_str};
use crate::reader::Reader;

#[cfg(test)]
mod tests;

/// First payload byte of an OK packet.
pub const OK_HEADER: u8 = 0x00;
/// First payload byte of an EOF packet, of an OK-as-EOF, and of an AuthSwitchRequest.
pub const EOF_HEADER: u8 = 0xFE;
/// First payload byte of an ERR packet.
pub const ERR_HEADER: u8 = 0xFF;
/// First payload byte of an AuthMoreData packet.
pub const AUTH_MORE_DATA_HEADER: u8 = 0x01;
/// caching_sha2_password: the scramble matched the server's cache; an OK follows.
pub const FAST_AUTH_SUCCESS: u8 = 0x03;
/// caching_sha2_password: the client must send the password (over TLS or RSA).
pub const PERFORM_FULL_AUTH: u8 = 0x04;

/// The server's initial greeting (protocol version 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeV10 {
    /// Server version string, e.g. `8.0.36` or `5.5.5-10.11.6-MariaDB`.
    pub server_version: Vec<u8>,
    /// Connection (thread) id.
    pub connection_id: u32,
    /// The nonce: both parts of auth-plugin-data joined, without the trailing NUL
    /// (20 bytes from real servers; nonces never contain NUL bytes).
    pub auth_plugin_data: Vec<u8>,
    /// Lower and upper capability flags joined; unknown bits are kept.
    pub capabilities: CapabilityFlags,
    /// Default collation id.
    pub charset: u8,
    /// Server status flags.
    pub status: StatusFlags,
    /// The 10 reserved bytes, kept verbatim: MariaDB puts extended capabilities in the last four.
    pub reserved: [u8; 10],
    /// Default auth plugin name, present with CLIENT_PLUGIN_AUTH.
    pub auth_plugin_name: Option<Vec<u8>>,
}

impl HandshakeV10 {
    /// Parses a greeting payload; an ERR payload (0xFF) is rejected, check for it first.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload, "handshake v10");
        if r.u8()? != 10 {
            return Err(r.err("protocol version is not 10"));
        }
        let server_version = r.cbytes()?.to_vec();
        let connection_id = r.u32()?;
        let part1 = r.take(8)?;
        r.u8()?; // filler
        let lower = u32::from(r.u16()?);
        let charset = r.u8()?;
        let status = StatusFlags::from_bits_retain(r.u16()?);
        let upper = u32::from(r.u16()?);
        let capabilities = CapabilityFlags::from_bits_retain(lower | upper << 16);
        let auth_len = usize::from(r.u8()?);
        let reserved = r.array::<10>()?;
        let mut auth_plugin_data = part1.to_vec();
        if capabilities.contains(CapabilityFlags::CLIENT_SECURE_CONNECTION) {
            // MySQL: part 2 is max(13, auth_len - 8) bytes, the last of which is a NUL.
            let n = auth_len.saturating_sub(8).max(13);
            let part2 = r.take(n)?;
            let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
            auth_plugin_data.extend_from_slice(part2);
        }
        let auth_plugin_name = if capabilities.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) {
            Some(r.cbytes_or_rest().to_vec())
        } else {
            None
        };
        Ok(HandshakeV10 {
            server_version,
            connection_id,
            auth_plugin_data,
            capabilities,
            charset,
            status,
            reserved,
            auth_plugin_name,
        })
    }

    /// Encodes the payload; a nonce shorter than 20 bytes is zero-padded because clients
    /// read part 1 (8 bytes) and part 2 (at least 12) at fixed widths.
    pub fn encode(&self) -> Bytes {
        let caps = self.capabilities.bits();
        let data = &self.auth_plugin_data;
        let mut out = BytesMut::with_capacity(64 + self.server_version.len() + data.len());
        out.put_u8(10);
        put_cstr(&mut out, &self.server_version);
        out.put_u32_le(self.connection_id);
        let mut part1 = [0u8; 8];
        let n1 = data.len().min(8);
        part1[..n1].copy_from_slice(&data[..n1]);
        out.put_slice(&part1);
        out.put_u8(0);
        out.put_u16_le((caps & 0xFFFF) as u16);
        out.put_u8(self.charset);
        out.put_u16_le(self.status.bits());
        out.put_u16_le((caps >> 16) as u16);
        let part2 = data.get(8..).unwrap_or_default();
        let secure = self
            .capabilities
            .contains(CapabilityFlags::CLIENT_SECURE_CONNECTION);
        let plugin = self
            .capabilities
            .contains(CapabilityFlags::CLIENT_PLUGIN_AUTH);
        // Declared length counts part 2's trailing NUL; capped so it fits the byte.
        let auth_len = if plugin {
            (8 + part2.len().max(12) + 1).min(255)
        } else {
            0
        };
        out.put_u8(auth_len as u8);
        out.put_slice(&self.reserved);
        if secure {
            let n2 = auth_len.saturating_sub(8).max(13);
            let body = &part2[..part2.len().min(n2 - 1)];
            out.put_slice(body);
            out.put_bytes(0, n2 - body.len());
        }
        if plugin {
            put_cstr(
                &mut out,
                self.auth_plugin_name.as_deref().unwrap_or_default(),
            );
        }
        out.freeze()
    }
}

/// Asks the client to restart authentication with another plugin (0xFE + name + data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSwitchRequest {
    /// Plugin to switch to, e.g. `mysql_native_password`.
    pub plugin_name: Vec<u8>,
    /// Plugin data kept verbatim; servers send the 20-byte nonce followed by a NUL.
    pub plugin_data: Vec<u8>,
}

impl AuthSwitchRequest {
    /// Builds a request carrying `nonce` with the trailing NUL servers send.
    pub fn with_nonce(plugin_name: &[u8], nonce: &[u8]) -> Self {
        let mut plugin_data = nonce.to_vec();
        plugin_data.push(0);
        AuthSwitchRequest {
            plugin_name: plugin_name.to_vec(),
            plugin_data,
        }
    }

    /// The plugin data without one trailing NUL: the nonce to scramble with.
    pub fn nonce(&self) -> &[u8] {
        self.plugin_data
            .strip_suffix(&[0])
            .unwrap_or(&self.plugin_data)
    }

    /// Parses a payload starting with 0xFE.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload, "auth switch request");
        if r.u8()? != EOF_HEADER {
            return Err(r.err("header is not 0xfe"));
        }
        let plugin_name = r.cbytes()?.to_vec();
        let plugin_data = r.rest().to_vec();
        Ok(AuthSwitchRequest {
            plugin_name,
            plugin_data,
        })
    }

    /// Encodes the payload.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(2 + self.plugin_name.len() + self.plugin_data.len());
        out.put_u8(EOF_HEADER);
        put_cstr(&mut out, &self.plugin_name);
        out.put_slice(&self.plugin_data);
        out.freeze()
    }
}

/// Extra auth exchange data (0x01 + data), e.g. caching_sha2_password's fast-auth result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMoreData {
    /// The bytes after the 0x01 header.
    pub data: Vec<u8>,
}

impl AuthMoreData {
    /// caching_sha2_password: fast authentication succeeded.
    pub fn fast_auth_success() -> Self {
        AuthMoreData {
            data: vec![FAST_AUTH_SUCCESS],
        }
    }

    /// caching_sha2_password: the client must perform full authentication.
    pub fn perform_full_auth() -> Self {
        AuthMoreData {
            data: vec![PERFORM_FULL_AUTH],
        }
    }

    /// True when this is caching_sha2_password's fast-auth success.
    pub fn is_fast_auth_success(&self) -> bool {
        self.data == [FAST_AUTH_SUCCESS]
    }

    /// True when this is caching_sha2_password's request for full authentication.
    pub fn is_perform_full_auth(&self) -> bool {
        self.data == [PERFORM_FULL_AUTH]
    }

    /// Parses a payload starting with 0x01.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload, "auth more data");
        if r.u8()? != AUTH_MORE_DATA_HEADER {
            return Err(r.err("header is not 0x01"));
        }
        Ok(AuthMoreData {
            data: r.rest().to_vec(),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(1 + self.data.len());
        out.put_u8(AUTH_MORE_DATA_HEADER);
        out.put_slice(&self.data);
        out.freeze()
    }
}

/// An OK packet (header 0x00, or 0xFE when it ends a result set under CLIENT_DEPRECATE_EOF).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OkPacket {
    /// 0x00, or 0xFE for an OK-as-EOF.
    pub header: u8,
    /// Rows changed by the statement.
    pub affected_rows: u64,
    /// Last AUTO_INCREMENT value generated.
    pub last_insert_id: u64,
    /// Server status flags (transaction state, more results, ...).
    pub status: StatusFlags,
    /// Number of warnings.
    pub warnings: u16,
    /// Human-readable info, e.g. `Records: 2  Duplicates: 0  Warnings: 0`.
    pub info: Vec<u8>,
    /// Raw session state change block, present with CLIENT_SESSION_TRACK and
    /// SERVER_SESSION_STATE_CHANGED; kept undecoded because the proxy only relays it.
    pub session_state_changes: Option<Vec<u8>>,
}

impl OkPacket {
    /// Parses an OK payload; `capabilities` are the ones both sides agreed on.
    pub fn parse(payload: &[u8], capabilities: CapabilityFlags) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload, "ok packet");
        let header = r.u8()?;
        if header != OK_HEADER && header != EOF_HEADER {
            return Err(r.err("header is not 0x00 or 0xfe"));
        }
        let affected_rows = r.lenenc_int()?;
        let last_insert_id = r.lenenc_int()?;
        let status = StatusFlags::from_bits_retain(r.u16()?);
        let warnings = r.u16()?;
        let mut ok = OkPacket {
            header,
            affected_rows,
            last_insert_id,
            status,
            warnings,
            ..OkPacket::default()
        };
        if capabilities.contains(CapabilityFlags::CLIENT_SESSION_TRACK) {
            // Servers omit the info string entirely when it and the state block are empty.
            if !r.is_empty() {
                ok.info = r.lenenc_bytes()?.to_vec();
            }
            if status.contains(StatusFlags::SERVER_SESSION_STATE_CHANGED) && !r.is_empty() {
                ok.session_state_changes = Some(r.lenenc_bytes()?.to_vec());
            }
        } else if !r.is_empty() {
            // The docs say string<EOF>, but MySQL and MariaDB servers write a
            // length-encoded string and libmysql reads one; accept both.
            let rest = r.rest();
            ok.info = match crate::lenenc::read_lenenc_str(rest) {
                Ok((info, [])) => info,
                _ => rest,
            }
            .to_vec();
        }
        Ok(ok)
    }

    /// Encodes the payload for a peer with `capabilities`.
    pub fn encode(&self, capabilities: CapabilityFlags) -> Bytes {
        let mut out = BytesMut::with_capacity(
            1 + lenenc_int_len(self.affected_rows)
                + lenenc_int_len(self.last_insert_id)
                + 13
                + self.info.len(),
        );
        out.put_u8(self.header);
        put_lenenc_int(&mut out, self.affected_rows);
        put_lenenc_int(&mut out, self.last_insert_id);
        out.put_u16_le(self.status.bits());
        out.put_u16_le(self.warnings);
        if capabilities.contains(CapabilityFlags::CLIENT_SESSION_TRACK) {
            let state = self.session_state_changes.as_deref().filter(|_| {
                self.status
                    .contains(StatusFlags::SERVER_SESSION_STATE_CHANGED)
            });
            if !self.info.is_empty() || state.is_some() {
                put_lenenc_str(&mut out, &self.info);
            }
            if let Some(state) = state {
                put_lenenc_str(&mut out, state);
            }
        } else if !self.info.is_empty() {
            put_lenenc_str(&mut out, &self.info);
        }
        out.freeze()
    }
}

/// An ERR packet (0xFF + code + optional `#` SQLSTATE + message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket {
    /// Server error code, e.g. 1045 for access denied.
    pub code: u16,
    /// Five-character SQLSTATE; absent in errors sent before capabilities are agreed.
    pub sql_state: Option<[u8; 5]>,
    /// Human-readable message.
    pub message: Vec<u8>,
}

impl ErrPacket {
    /// Builds an error with a SQLSTATE.
    pub fn new(code: u16, sql_state: [u8; 5], message: impl Into<Vec<u8>>) -> Self {
        ErrPacket {
            code,
            sql_state: Some(sql_state),
            message: message.into(),
        }
    }

    /// Parses a payload starting with 0xFF.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload, "err packet");
        if r.u8()? != ERR_HEADER {
            return Err(r.err("header is not 0xff"));
        }
        let code = r.u16()?;
        let sql_state = if r.peek() == Some(b'#') {
            r.u8()?;
            Some(r.array::<5>()?)
        } else {
            None
        };
        Ok(ErrPacket {
            code,
            sql_state,
            message: r.rest().to_vec(),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(9 + self.message.len());
        out.put_u8(ERR_HEADER);
        out.put_u16_le(self.code);
        if let Some(state) = &self.sql_state {
            out.put_u8(b'#');
            out.put_slice(state);
        }
        out.put_slice(&self.message);
        out.freeze()
    }
}

/// A classic EOF packet (0xFE + warnings + status), used without CLIENT_DEPRECATE_EOF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EofPacket {
    /// Number of warnings.
    pub warnings: u16,
    /// Server status flags.
    pub status: StatusFlags,
}

impl EofPacket {
    /// Parses a 5-byte EOF payload.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload, "eof packet");
        if r.u8()? != EOF_HEADER {
            return Err(r.err("header is not 0xfe"));
        }
        let warnings = r.u16()?;
        let status = StatusFlags::from_bits_retain(r.u16()?);
        if !r.is_empty() {
            return Err(r.err("unexpected trailing bytes"));
        }
        Ok(EofPacket { warnings, status })
    }

    /// Encodes the payload.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(5);
        out.put_u8(EOF_HEADER);
        out.put_u16_le(self.warnings);
        out.put_u16_le(self.status.bits());
        out.freeze()
    }
}

/// Whether a payload read in the result-set phase ends it: a classic EOF (0xFE, under 9
/// bytes), or under CLIENT_DEPRECATE_EOF an OK-as-EOF. Not for the auth phase, where 0xFE
/// is an AuthSwitchRequest.
pub fn is_eof_packet(payload: &[u8], capabilities: CapabilityFlags) -> bool {
    if payload.first() != Some(&EOF_HEADER) {
        return false;
    }
    // A row can start with 0xFE only as an 8-byte length prefix, which needs at least 9
    // bytes, and a row string that long (>= 2^24) makes the payload at least 0xFFFFFF. An
    // OK-as-EOF carrying info or session state can exceed 9 bytes, so it is told apart by
    // the second bound.
    payload.len() < 9
        || (capabilities.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
            && payload.len() < crate::frame::MAX_CHUNK)
}

/// The response to COM_STMT_PREPARE (header 0x00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StmtPrepareOk {
    /// Server-side statement id.
    pub statement_id: u32,
    /// Number of result columns.
    pub num_columns: u16,
    /// Number of `?` parameters.
    pub num_params: u16,
    /// Number of warnings.
    pub warnings: u16,
}

impl StmtPrepareOk {
    /// Parses the payload; trailing bytes (MySQL's metadata_follows flag) are ignored.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload, "stmt prepare ok");
        if r.u8()? != OK_HEADER {
            return Err(r.err("header is not 0x00"));
        }
        let statement_id = r.u32()?;
        let num_columns = r.u16()?;
        let num_params = r.u16()?;
        // Filler and warning count are absent from some old servers' replies.
        let warnings = if r.is_empty() {
            0
        } else {
            r.u8()?;
            r.u16()?
        };
        Ok(StmtPrepareOk {
            statement_id,
            num_columns,
            num_params,
            warnings,
        })
    }

    /// Encodes the 12-byte payload.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(12);
        out.put_u8(OK_HEADER);
        out.put_u32_le(self.statement_id);
        out.put_u16_le(self.num_columns);
        out.put_u16_le(self.num_params);
        out.put_u8(0);
        out.put_u16_le(self.warnings);
        out.freeze()
    }
}

/// Appends `s` and a NUL terminator.
pub(crate) fn put_cstr(out: &mut BytesMut, s: &[u8]) {
    out.put_slice(s);
    out.put_u8(0);
}
