//! MySQL/MariaDB server connections: connect, authenticate (mysql_native_password, or
//! caching_sha2_password's fast path), and the raw halves a session relays over.

mod response;
mod stmt;

pub use response::{ResponseEnd, ResponseTracker};
pub use stmt::{bound_types, execute_payload, Prepared, MAX_STATEMENTS_PER_SERVER};

use super::BackendError;
use crate::net::{NetRead, NetWrite};
use bytes::BytesMut;
use std::time::{Duration, Instant};
use switchyard_mysql::{self as my, CapabilityFlags, StatusFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Capabilities the proxy speaks on both sides. Result sets are relayed untouched, so the
/// client side is offered exactly what server connections use: EOF packets (no
/// CLIENT_DEPRECATE_EOF), no session tracking, no LOCAL INFILE, no compression.
pub fn proxy_capabilities() -> CapabilityFlags {
    CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_LONG_FLAG
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB
        | CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS
        | CapabilityFlags::CLIENT_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
}

/// An authenticated MySQL server connection, idle (between commands).
pub struct MyConn {
    /// Node id in the cluster.
    pub node: usize,
    /// Read half.
    pub reader: NetRead,
    /// Write half.
    pub writer: NetWrite,
    /// Bytes read but not yet consumed.
    pub inbuf: BytesMut,
    /// Capabilities agreed with the server.
    pub capabilities: CapabilityFlags,
    /// Status flags of the last OK/EOF the server sent (transaction state, autocommit).
    pub status: StatusFlags,
    /// The server's connection id (for KILL QUERY).
    pub connection_id: u32,
    /// Database the connection uses.
    pub database: String,
    /// Session settings applied here, as a signature (0: server defaults).
    pub state_sig: u64,
    /// When the connection was opened or last returned to a pool.
    pub since: Instant,
    /// The node's incarnation when the connection was opened.
    pub incarnation: u64,
    /// When the connection was opened, for the maximum lifetime.
    pub created: Instant,
    /// Statements prepared here: text -> server statement id (cleared by a reset).
    pub statements: std::collections::HashMap<std::sync::Arc<str>, u32>,
}

/// What `connect` needs to know.
pub struct MyConnectSpec<'a> {
    /// Node id.
    pub node: usize,
    /// Node name for errors.
    pub name: &'a str,
    /// host:port.
    pub addr: &'a str,
    /// Login.
    pub user: &'a str,
    /// Password.
    pub password: &'a str,
    /// Database ("" for none).
    pub database: &'a str,
    /// Connect and authentication timeout.
    pub timeout: Duration,
    /// Largest packet accepted from the server.
    pub max_packet: usize,
    /// The node's current incarnation.
    pub incarnation: u64,
    /// Offer CLIENT_LOCAL_FILES (the cluster allows LOAD DATA LOCAL INFILE).
    pub local_infile: bool,
}

/// Opens and authenticates a server connection within `spec.timeout`.
pub async fn connect(spec: &MyConnectSpec<'_>) -> Result<MyConn, BackendError> {
    match tokio::time::timeout(spec.timeout, connect_inner(spec)).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::Timeout {
            node: spec.name.to_string(),
            addr: spec.addr.to_string(),
            after: spec.timeout,
        }),
    }
}

async fn connect_inner(spec: &MyConnectSpec<'_>) -> Result<MyConn, BackendError> {
    let io = |source| BackendError::Io {
        node: spec.name.to_string(),
        addr: spec.addr.to_string(),
        source,
    };
    let proto = |reason: String| BackendError::Protocol {
        node: spec.name.to_string(),
        reason,
    };
    let stream = TcpStream::connect(spec.addr).await.map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    let (r, w) = stream.into_split();
    let (mut reader, mut writer) = (NetRead::Plain(r), NetWrite::Plain(w));
    let mut inbuf = BytesMut::with_capacity(8192);
    let greeting = read_packet(&mut reader, &mut inbuf, spec.max_packet, spec.name).await?;
    if greeting.payload.first() == Some(&my::ERR_HEADER) {
        return Err(server_error(spec.name, &greeting.payload));
    }
    let hello = my::HandshakeV10::parse(&greeting.payload).map_err(|e| proto(e.to_string()))?;
    let mut offered = proxy_capabilities();
    if spec.local_infile {
        offered |= CapabilityFlags::CLIENT_LOCAL_FILES;
    }
    let mut caps = offered & hello.capabilities;
    if spec.database.is_empty() {
        caps.remove(CapabilityFlags::CLIENT_CONNECT_WITH_DB);
    }
    if !caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
        return Err(proto("server does not speak protocol 4.1".into()));
    }
    let plugin = hello
        .auth_plugin_name
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_else(|| my::MYSQL_NATIVE_PASSWORD.into())
        .into_owned();
    let response = my::HandshakeResponse41 {
        capabilities: caps,
        max_packet_size: 1 << 24,
        charset: hello.charset,
        username: spec.user.as_bytes().to_vec(),
        auth_response: scramble(&plugin, &hello.auth_plugin_data, spec.password),
        database: (!spec.database.is_empty()).then(|| spec.database.as_bytes().to_vec()),
        auth_plugin_name: Some(plugin.clone().into_bytes()),
        connect_attrs: None,
    };
    let payload = response.encode().map_err(|e| proto(e.to_string()))?;
    send(
        &mut writer,
        &my::encode_packet(greeting.next_seq(), &payload),
    )
    .await
    .map_err(io)?;
    loop {
        let p = read_packet(&mut reader, &mut inbuf, spec.max_packet, spec.name).await?;
        let seq = p.next_seq();
        match p.payload.first().copied() {
            Some(my::OK_HEADER) => {
                let ok = my::OkPacket::parse(&p.payload, caps).map_err(|e| proto(e.to_string()))?;
                return Ok(MyConn {
                    node: spec.node,
                    reader,
                    writer,
                    inbuf,
                    capabilities: caps,
                    status: ok.status,
                    connection_id: hello.connection_id,
                    database: spec.database.to_string(),
                    state_sig: 0,
                    since: Instant::now(),
                    incarnation: spec.incarnation,
                    created: Instant::now(),
                    statements: std::collections::HashMap::new(),
                });
            }
            Some(my::ERR_HEADER) => return Err(server_error(spec.name, &p.payload)),
            Some(my::EOF_HEADER) => {
                // AuthSwitchRequest: answer with the named plugin over the new nonce.
                let switch =
                    my::AuthSwitchRequest::parse(&p.payload).map_err(|e| proto(e.to_string()))?;
                let name = String::from_utf8_lossy(&switch.plugin_name).into_owned();
                let data = scramble(&name, switch.nonce(), spec.password);
                send(&mut writer, &my::encode_packet(seq, &data))
                    .await
                    .map_err(io)?;
            }
            Some(my::AUTH_MORE_DATA_HEADER) => {
                let more = my::AuthMoreData::parse(&p.payload).map_err(|e| proto(e.to_string()))?;
                if more.is_perform_full_auth() {
                    return Err(proto(
                        "the server asks for caching_sha2_password's full authentication, which needs TLS or an RSA key; log in once directly (to fill its cache) or use mysql_native_password".into(),
                    ));
                }
                // Fast-auth success: the OK follows.
            }
            _ => return Err(proto("unexpected packet during authentication".into())),
        }
    }
}

/// The auth response for `plugin` (unknown plugins get mysql_native_password's, which the
/// server then answers with an AuthSwitchRequest or an error).
fn scramble(plugin: &str, nonce: &[u8], password: &str) -> Vec<u8> {
    if plugin == my::CACHING_SHA2_PASSWORD {
        my::caching_sha2_scramble(nonce, password.as_bytes())
    } else {
        my::native_password_scramble(nonce, password.as_bytes())
    }
}

/// A server ERR payload as a BackendError.
pub fn server_error(node: &str, payload: &[u8]) -> BackendError {
    match my::ErrPacket::parse(payload) {
        Ok(e) => BackendError::MySql {
            node: node.to_string(),
            code: e.code,
            sql_state: e
                .sql_state
                .map(|s| String::from_utf8_lossy(&s).into_owned())
                .unwrap_or_else(|| "HY000".into()),
            message: String::from_utf8_lossy(&e.message).into_owned(),
        },
        Err(e) => BackendError::Protocol {
            node: node.to_string(),
            reason: e.to_string(),
        },
    }
}

/// Reads one whole packet.
async fn read_packet(
    reader: &mut NetRead,
    inbuf: &mut BytesMut,
    max: usize,
    node: &str,
) -> Result<my::Packet, BackendError> {
    loop {
        match my::decode_packet(inbuf, max) {
            Ok(Some(p)) => return Ok(p),
            Ok(None) => {
                let n = reader
                    .read_buf(inbuf)
                    .await
                    .map_err(|source| BackendError::Io {
                        node: node.to_string(),
                        addr: String::new(),
                        source,
                    })?;
                if n == 0 {
                    return Err(BackendError::Protocol {
                        node: node.to_string(),
                        reason: "server closed the connection".into(),
                    });
                }
            }
            Err(e) => {
                return Err(BackendError::Protocol {
                    node: node.to_string(),
                    reason: e.to_string(),
                })
            }
        }
    }
}

async fn send(writer: &mut NetWrite, bytes: &[u8]) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

impl MyConn {
    /// Writes bytes already framed (a command that gets no reply, such as
    /// COM_STMT_SEND_LONG_DATA).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        send(&mut self.writer, bytes).await
    }

    /// True when an idle connection has something to read (closed by the server, or an
    /// unsolicited error), from the readiness the runtime already has.
    pub fn looks_closed(&self) -> bool {
        !self.inbuf.is_empty() || self.reader.has_unread_input()
    }

    /// Runs one command (`COM_QUERY` text, `COM_RESET_CONNECTION`, ...) and waits for its
    /// complete response within `timeout`; Ok(status) when it ended in OK/EOF, Err otherwise.
    pub async fn run(
        &mut self,
        command: &[u8],
        timeout: Duration,
        max: usize,
    ) -> Result<StatusFlags, BackendError> {
        self.exchange(command, timeout, max, |_, _| Ok(())).await
    }

    /// Sends `command` and reads its whole response (every result of a multi-result one)
    /// within `timeout`, showing each packet to `inspect` with what it ended, if anything
    /// (an Err from it is a protocol error); Ok(last status) when it ended in OK/EOF, the
    /// server's error on ERR.
    async fn exchange(
        &mut self,
        command: &[u8],
        timeout: Duration,
        max: usize,
        mut inspect: impl FnMut(&my::Packet, Option<ResponseEnd>) -> Result<(), String>,
    ) -> Result<StatusFlags, BackendError> {
        let node = self.node.to_string();
        let work = async {
            send(&mut self.writer, &my::encode_packet(0, command))
                .await
                .map_err(|source| BackendError::Io {
                    node: node.clone(),
                    addr: String::new(),
                    source,
                })?;
            let mut tracker = ResponseTracker::new(self.capabilities);
            loop {
                let p = read_packet(&mut self.reader, &mut self.inbuf, max, &node).await?;
                let end = tracker.feed(&p.payload);
                inspect(&p, end).map_err(|reason| BackendError::Protocol {
                    node: node.clone(),
                    reason,
                })?;
                match end {
                    Some(ResponseEnd::Ok(status)) => {
                        self.status = status;
                        if !status.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS) {
                            return Ok(status);
                        }
                        tracker = ResponseTracker::new(self.capabilities);
                    }
                    Some(ResponseEnd::Err) => return Err(server_error(&node, &p.payload)),
                    Some(ResponseEnd::LocalInfile) => {
                        // Never invited here (the proxy's own statements read no files).
                        return Err(BackendError::Protocol {
                            node: node.clone(),
                            reason: "unexpected LOCAL INFILE request".into(),
                        });
                    }
                    None => {}
                }
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(BackendError::Timeout {
                node: self.node.to_string(),
                addr: String::new(),
                after: timeout,
            }),
        }
    }
}

impl crate::pool::Pooled for MyConn {
    fn incarnation(&self) -> u64 {
        self.incarnation
    }
    fn created(&self) -> Instant {
        self.created
    }
    fn since(&self) -> Instant {
        self.since
    }
    fn set_since(&mut self, at: Instant) {
        self.since = at;
    }
    fn looks_closed(&self) -> bool {
        MyConn::looks_closed(self)
    }
}

impl MyConn {
    /// Runs a text query and returns its first row as (column name, value as text or None
    /// for NULL), reading the whole response; for monitors.
    pub async fn query_row(
        &mut self,
        sql: &str,
        timeout: Duration,
        max: usize,
    ) -> Result<Option<Vec<(String, Option<String>)>>, BackendError> {
        let mut cmd = vec![my::Command::COM_QUERY as u8];
        cmd.extend_from_slice(sql.as_bytes());
        let mut packets = 0usize;
        let mut columns = 0u64;
        let mut names = Vec::new();
        let mut first_row = None;
        self.exchange(&cmd, timeout, max, |p, end| {
            packets += 1;
            if packets == 1 && p.payload.first() != Some(&my::OK_HEADER) {
                columns = my::read_lenenc_int(&p.payload).map(|(n, _)| n).unwrap_or(0);
            }
            // Count, `columns` definitions, EOF: the next packet is the first row.
            let first_row_at = usize::try_from(columns)
                .unwrap_or(usize::MAX)
                .saturating_add(3);
            if packets > 1 && packets < first_row_at - 1 {
                names.push(column_name(&p.payload));
            }
            if packets == first_row_at && end.is_none() {
                let values = parse_text_row(&p.payload, columns)?;
                first_row = Some(std::mem::take(&mut names).into_iter().zip(values).collect());
            }
            Ok(())
        })
        .await?;
        Ok(first_row)
    }
}

/// The name of a ColumnDefinition41 (its fifth length-encoded string).
fn column_name(payload: &[u8]) -> String {
    let mut rest = payload;
    for _ in 0..4 {
        match my::read_lenenc_str(rest) {
            Ok((_, tail)) => rest = tail,
            Err(_) => return String::new(),
        }
    }
    my::read_lenenc_str(rest)
        .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
        .unwrap_or_default()
}

/// A text-protocol row: `columns` length-encoded strings, 0xFB for NULL.
fn parse_text_row(payload: &[u8], columns: u64) -> Result<Vec<Option<String>>, String> {
    let mut rest = payload;
    let mut values = Vec::new();
    for _ in 0..columns {
        if rest.first() == Some(&0xFB) {
            values.push(None);
            rest = &rest[1..];
            continue;
        }
        let (v, tail) = my::read_lenenc_str(rest).map_err(|e| e.to_string())?;
        values.push(Some(String::from_utf8_lossy(v).into_owned()));
        rest = tail;
    }
    Ok(values)
}
