//! Relaying one command's whole response from a server connection to the client, with
//! backpressure, and what a lost server connection means for the session.

use super::link::MyLink;
use super::session::Session;
use super::{err_payload, CONNECTION_LOST};
use crate::backend::mysql::{ResponseEnd, ResponseTracker};
use bytes::{Bytes, BytesMut};
use switchyard_mysql::{self as my, StatusFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Stop reading the server while this much waits for the client (backpressure).
const HIGH_WATER: usize = 1 << 20;

impl Session {
    /// Sends one framed command to `node` and relays its whole response. Some(true) when it
    /// ended in OK/EOF, Some(false) on ERR (or a lost connection after part of the reply, which
    /// the client is told about); None when the connection was lost before any reply and
    /// `retryable`, so the caller may try elsewhere.
    pub(super) async fn relay(
        &mut self,
        node: usize,
        raw: Bytes,
        retryable: bool,
    ) -> std::io::Result<Option<bool>> {
        self.relay_as(node, raw, retryable, false).await
    }

    /// `relay`, for an answer of rows up to an EOF (COM_FIELD_LIST, COM_STMT_FETCH) when
    /// `rows_only`.
    pub(super) async fn relay_as(
        &mut self,
        node: usize,
        raw: Bytes,
        retryable: bool,
        rows_only: bool,
    ) -> std::io::Result<Option<bool>> {
        let max = self.ctx.general.max_message_bytes;
        let Some(link) = self.links[node].as_mut() else {
            return Ok(Some(false));
        };
        let MyLink {
            conn, node_down, ..
        } = link;
        let incarnation = conn.incarnation;
        let mut tracker = if rows_only {
            ResponseTracker::rows(conn.capabilities)
        } else {
            ResponseTracker::new(conn.capabilities)
        };
        let mut last_seq = 0u8;
        let mut forwarded = false;
        let sent = async {
            conn.writer.write_all(&raw).await?;
            conn.writer.flush().await
        }
        .await;
        let mut out = BytesMut::new();
        let mut failure = sent.err().map(|e| e.to_string());
        let mut result = None;
        while failure.is_none() && result.is_none() {
            match my::decode_packet(&mut conn.inbuf, max) {
                Ok(Some(p)) => {
                    last_seq = p.last_seq;
                    out.extend_from_slice(&p.raw);
                    match tracker.feed(&p.payload) {
                        Some(ResponseEnd::Ok(status)) => {
                            conn.status = status;
                            if !status.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS) {
                                result = Some(true);
                            } else {
                                tracker = ResponseTracker::new(conn.capabilities);
                            }
                        }
                        Some(ResponseEnd::Err) => result = Some(false),
                        Some(ResponseEnd::LocalInfile) if self.infile_allowed => {
                            // The request goes to the client; its file comes back through.
                            forwarded = true;
                            self.client_w.write_all(&out).await?;
                            self.client_w.flush().await?;
                            out.clear();
                            let streamed =
                                stream_local_file(&mut self.client_r, &mut self.cin, conn, max)
                                    .await;
                            match streamed {
                                Ok(()) => tracker = ResponseTracker::new(conn.capabilities),
                                Err(InfileError::Server(e)) => failure = Some(e),
                                Err(InfileError::Client(e)) => {
                                    // The server waits for the rest of a file: unusable.
                                    self.links[node] = None;
                                    return Err(e);
                                }
                            }
                        }
                        Some(ResponseEnd::LocalInfile) => {
                            failure = Some("unexpected LOCAL INFILE request from the server".into())
                        }
                        None => {}
                    }
                    if out.len() >= HIGH_WATER {
                        forwarded = true;
                        self.client_w.write_all(&out).await?;
                        out.clear();
                    }
                }
                Ok(None) => {
                    if !out.is_empty() {
                        forwarded = true;
                        self.client_w.write_all(&out).await?;
                        self.client_w.flush().await?;
                        out.clear();
                    }
                    // A hung server answers nothing: the node being declared down ends the wait.
                    let read = tokio::select! {
                        biased;
                        r = conn.reader.read_buf(&mut conn.inbuf) => Some(r),
                        _ = node_down.wait_for(|i| *i > incarnation) => None,
                    };
                    match read {
                        Some(Ok(0)) => failure = Some("server closed the connection".into()),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => failure = Some(e.to_string()),
                        None => failure = Some("the node was declared down".into()),
                    }
                }
                Err(e) => failure = Some(format!("bad packet from server: {e}")),
            }
        }
        if let Some(why) = failure {
            let name = self
                .ctx
                .state
                .load()
                .node(node)
                .map_or_else(String::new, |n| n.name.clone());
            tracing::warn!(session = self.id, node = %name, "server connection lost: {why}");
            self.links[node] = None;
            self.cursors.retain(|_, c| c.node != node);
            if self.txn_node == Some(node) {
                self.txn_node = None;
            }
            self.pinned = None;
            if !forwarded && out.is_empty() && retryable {
                return Ok(None);
            }
            self.ctx
                .metrics
                .error(crate::observe::ErrorKind::ConnectionLost);
            out.extend_from_slice(&my::encode_packet(
                last_seq.wrapping_add(1),
                &err_payload(
                    CONNECTION_LOST,
                    "HY000",
                    &format!("Lost connection to server {name} during query ({why})"),
                ),
            ));
            self.client_w.write_all(&out).await?;
            self.client_w.flush().await?;
            return Ok(Some(false));
        }
        self.client_w.write_all(&out).await?;
        self.client_w.flush().await?;
        let status = link.conn.status;
        let in_trans = status.contains(StatusFlags::SERVER_STATUS_IN_TRANS);
        self.autocommit = status.contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT);
        self.txn_node = in_trans.then_some(node);
        Ok(result)
    }
}

/// A client that stops sending its LOCAL INFILE data for this long is dropped.
const INFILE_STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// Why streaming a client's file to the server stopped.
enum InfileError {
    /// The client went away, stalled or sent a malformed packet: it is dropped.
    Client(std::io::Error),
    /// Writing to the server failed.
    Server(String),
}

/// Streams the client's LOCAL INFILE packets to the server as they come (bounded: one
/// packet at a time), up to and including the empty packet that ends the file.
async fn stream_local_file(
    client_r: &mut crate::net::NetRead,
    cin: &mut BytesMut,
    conn: &mut crate::backend::mysql::MyConn,
    max: usize,
) -> Result<(), InfileError> {
    loop {
        match my::decode_packet(cin, max) {
            Ok(Some(p)) => {
                conn.writer
                    .write_all(&p.raw)
                    .await
                    .map_err(|e| InfileError::Server(e.to_string()))?;
                if p.payload.is_empty() {
                    return conn
                        .writer
                        .flush()
                        .await
                        .map_err(|e| InfileError::Server(e.to_string()));
                }
            }
            Ok(None) => {
                conn.writer
                    .flush()
                    .await
                    .map_err(|e| InfileError::Server(e.to_string()))?;
                match tokio::time::timeout(INFILE_STALL, client_r.read_buf(cin)).await {
                    Ok(Ok(0)) => {
                        let e = std::io::ErrorKind::UnexpectedEof.into();
                        return Err(InfileError::Client(e));
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(InfileError::Client(e)),
                    Err(_) => {
                        let e = std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the client stopped sending its LOCAL INFILE data",
                        );
                        return Err(InfileError::Client(e));
                    }
                }
            }
            Err(e) => {
                let e = std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string());
                return Err(InfileError::Client(e));
            }
        }
    }
}
