//! Opening an authenticated server connection.

use super::BackendError;
use crate::net::{NetRead, NetWrite};
use crate::tls::{negotiate_backend, BackendTlsMode};
use bytes::{Bytes, BytesMut};
use std::time::{Duration, Instant};
use switchyard_postgres::{self as pg, ClientAuth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// ParameterStatus values a server reported, in arrival order.
pub type ServerParams = Vec<(String, String)>;

/// An authenticated server connection that has reached ReadyForQuery.
pub struct ServerConn {
    /// Node id in the cluster.
    pub node: usize,
    /// Read half.
    pub reader: NetRead,
    /// Write half.
    pub writer: NetWrite,
    /// Bytes read but not yet consumed.
    pub inbuf: BytesMut,
    /// ParameterStatus values as the server last reported them.
    pub params: ServerParams,
    /// The server's BackendKeyData (pid, secret), for cancel requests.
    pub key: (i32, i32),
    /// When the connection was opened or last returned to a pool.
    pub since: Instant,
    /// The node's incarnation when the connection was opened (see `NodeState::incarnation`).
    pub incarnation: u64,
    /// When the connection was opened, for the maximum lifetime.
    pub created: Instant,
    /// Session settings applied here, as `SessionVars::signature` (0: server defaults).
    pub state_sig: u64,
    /// Prepared statements (global names) that exist here, with a use tick for LRU eviction.
    pub statements: std::collections::HashMap<String, u64>,
    /// Clock for `statements`.
    pub tick: u64,
}

/// What `connect` needs to know.
pub struct ConnectSpec<'a> {
    /// Node id.
    pub node: usize,
    /// Node name for errors.
    pub name: &'a str,
    /// host:port.
    pub addr: &'a str,
    /// Login.
    pub user: &'a str,
    /// Password for the login.
    pub password: Option<&'a str>,
    /// Database.
    pub database: &'a str,
    /// Connect and authentication timeout.
    pub timeout: Duration,
    /// Largest message accepted from the server.
    pub max_message: usize,
    /// The node's current incarnation, recorded on the connection.
    pub incarnation: u64,
    /// The cluster's backend TLS connector (None for mode `disable`), built once per cluster.
    pub tls: Option<&'a TlsConnector>,
    /// The cluster's backend TLS mode: whether to send an SSLRequest and whether 'N' is fatal.
    pub tls_mode: BackendTlsMode,
}

/// Opens, authenticates and readies a server connection, all within `spec.timeout`.
pub async fn connect(spec: &ConnectSpec<'_>) -> Result<ServerConn, BackendError> {
    match tokio::time::timeout(spec.timeout, connect_inner(spec)).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::Timeout {
            node: spec.name.to_string(),
            addr: spec.addr.to_string(),
            after: spec.timeout,
        }),
    }
}

async fn connect_inner(spec: &ConnectSpec<'_>) -> Result<ServerConn, BackendError> {
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
    // The certificate is checked against the host part of the node's address, as written.
    let stream = negotiate_backend(stream, spec.tls, spec.tls_mode, host_of(spec.addr))
        .await
        .map_err(|source| BackendError::Tls {
            node: spec.name.to_string(),
            source,
        })?;
    let (mut reader, mut writer) = crate::net::split(stream);
    let startup = pg::startup_message(&[("user", spec.user), ("database", spec.database)]);
    send(&mut writer, &startup).await.map_err(io)?;
    let mut auth = ClientAuth::new(spec.user, spec.password);
    let mut inbuf = BytesMut::with_capacity(8192);
    let mut params = ServerParams::new();
    let mut key = (0, 0);
    loop {
        let frame = loop {
            match pg::decode_frame(&mut inbuf, spec.max_message) {
                Ok(Some(f)) => break f,
                Ok(None) => {
                    if reader.read_buf(&mut inbuf).await.map_err(io)? == 0 {
                        return Err(proto("server closed the connection during startup".into()));
                    }
                }
                Err(e) => return Err(proto(e.to_string())),
            }
        };
        let body = frame.body();
        match frame.tag {
            b'R' => {
                let req = pg::parse_authentication(&body).map_err(|e| proto(e.to_string()))?;
                let reply = auth.respond(&req).map_err(|source| BackendError::Auth {
                    node: spec.name.to_string(),
                    source,
                })?;
                if let Some(msg) = reply {
                    send(&mut writer, &msg).await.map_err(io)?;
                }
            }
            b'S' => {
                let p = pg::parse_parameter_status(&body).map_err(|e| proto(e.to_string()))?;
                set_param(&mut params, p.name, p.value);
            }
            b'K' => key = pg::parse_backend_key(&body).map_err(|e| proto(e.to_string()))?,
            b'E' => {
                let fields = pg::parse_error_fields(&body).map_err(|e| proto(e.to_string()))?;
                return Err(BackendError::Server {
                    node: spec.name.to_string(),
                    fields,
                });
            }
            b'Z' => {
                return Ok(ServerConn {
                    node: spec.node,
                    reader,
                    writer,
                    inbuf,
                    params,
                    key,
                    since: Instant::now(),
                    incarnation: spec.incarnation,
                    created: Instant::now(),
                    state_sig: 0,
                    statements: std::collections::HashMap::new(),
                    tick: 0,
                })
            }
            // NoticeResponse and NegotiateProtocolVersion need no answer.
            b'N' | b'v' => {}
            other => {
                return Err(proto(format!(
                    "unexpected message '{}' during startup",
                    other as char
                )))
            }
        }
    }
}

/// The host part of "host:port" or "[v6]:port" (validated config guarantees the port).
fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(host, _)| host)
}

/// Writes a whole message and flushes: over TLS, bytes can otherwise stay in the session
/// buffer while we wait for the answer.
async fn send(writer: &mut NetWrite, msg: &[u8]) -> std::io::Result<()> {
    writer.write_all(msg).await?;
    writer.flush().await
}

/// Records a ParameterStatus value, replacing an earlier one of the same name.
pub fn set_param(params: &mut ServerParams, name: &str, value: &str) {
    match params.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value.to_string(),
        None => params.push((name.to_string(), value.to_string())),
    }
}

impl ServerConn {
    /// True when an idle connection already has something to read: the server closed it
    /// (it died, or terminated the backend) or sent an unsolicited error. Reads the readiness
    /// the runtime already has from epoll, so it costs no system call; TLS connections are not
    /// checked this way.
    pub fn looks_closed(&self) -> bool {
        !self.inbuf.is_empty() || self.reader.has_unread_input()
    }

    /// Runs `sql` as a simple query and discards its results, within `timeout`; true when it
    /// reached ReadyForQuery with status idle and no error.
    pub async fn run_quietly(&mut self, sql: &str, timeout: Duration, max_message: usize) -> bool {
        let work = async {
            send(&mut self.writer, &pg::query(sql)).await.ok()?;
            let mut ok = true;
            loop {
                match pg::decode_frame(&mut self.inbuf, max_message) {
                    Ok(Some(f)) => match f.tag {
                        b'E' => ok = false,
                        b'S' => {
                            let b: Bytes = f.body();
                            if let Ok(p) = pg::parse_parameter_status(&b) {
                                set_param(&mut self.params, p.name, p.value);
                            }
                        }
                        b'Z' => return Some(ok && pg::ready_status(&f.body()).ok()? == b'I'),
                        _ => {}
                    },
                    Ok(None) => {
                        if self.reader.read_buf(&mut self.inbuf).await.ok()? == 0 {
                            return None;
                        }
                    }
                    Err(_) => return None,
                }
            }
        };
        matches!(tokio::time::timeout(timeout, work).await, Ok(Some(true)))
    }
}
