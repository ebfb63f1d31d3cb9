//! Binary-protocol prepared statements under pooling: the client gets ids of the proxy's own;
//! each statement is prepared on demand on whichever server connection runs it (reads on
//! replicas, writes on the primary), and executes are rewritten for that server's id.

use super::cursor::CURSOR_TYPE_READ_ONLY;
use super::session::{lease_error, Session, Target};
use super::{err_payload, CONNECTION_LOST};
use crate::backend::mysql::{bound_types, execute_payload};
use bytes::Bytes;
use std::sync::Arc;
use switchyard_mysql::{self as my};

/// Long data (COM_STMT_SEND_LONG_DATA) kept per statement until its execute, at most.
const MAX_LONG_DATA: usize = 64 << 20;

/// A statement the client prepared.
pub(super) struct ClientStatement {
    /// Its text.
    sql: Arc<str>,
    /// Number of `?` parameters.
    params: u16,
    /// Where its executes go, from its classification.
    wants_primary: bool,
    /// Its classification, for read-your-writes.
    class: crate::route::Classification,
    /// Digest key of its text (SHOW QUERIES).
    digest: u64,
    /// Parameter types the client last bound (an execute may omit them afterwards).
    types: Option<Bytes>,
    /// Long data sent for the next execute: (parameter id, data), bounded.
    long_data: Vec<(u16, Bytes)>,
    long_data_bytes: usize,
}

impl Session {
    /// COM_STMT_PREPARE: prepared where it will run, answered with the proxy's id.
    pub(super) async fn stmt_prepare(&mut self, p: my::Packet) -> std::io::Result<()> {
        let seq = p.next_seq();
        let sql: Arc<str> = String::from_utf8_lossy(&p.payload[1..]).into();
        let class = crate::route::classify_mysql(&sql, &self.ctx.classify);
        if let Some(err) = self.wait_if_paused().await {
            return self.reply(seq, &err).await;
        }
        let target = self.target(Some(&class));
        let wants_primary = !matches!(target, Target::Replica);
        let mut node = None;
        for _ in 0..self.links.len() + 2 {
            let Some(n) = self.choose_waiting(&target).await else {
                return self.reply(seq, &self.no_primary()).await;
            };
            match self.ensure_link(n).await {
                Ok(()) => {
                    node = Some(n);
                    break;
                }
                Err(e) if self.try_elsewhere(n, &target, &e) => {}
                Err(e) => return self.reply(seq, &lease_error(&e)).await,
            }
        }
        let Some(node) = node else {
            return self.reply(seq, &self.no_primary()).await;
        };
        let (timeout, max) = (
            self.ctx.general.connect_timeout,
            self.ctx.general.max_message_bytes,
        );
        let Some(link) = self.links[node].as_mut() else {
            return Ok(());
        };
        let prepared = match link.conn.prepare(&sql, timeout, max).await {
            Ok(r) => r,
            Err(e) => {
                self.links[node] = None;
                let err = err_payload(
                    CONNECTION_LOST,
                    "HY000",
                    &format!("Lost connection to server during prepare ({e})"),
                );
                return self.reply(seq, &err).await;
            }
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(err) => {
                // The server's own error, relayed as it is.
                self.client_w_write(&err.raw).await?;
                self.maybe_release(node);
                return Ok(());
            }
        };
        let id = self.next_statement;
        self.next_statement = self.next_statement.wrapping_add(1).max(1);
        let mut ok = prepared.ok;
        ok.statement_id = id;
        let mut out = bytes::BytesMut::new();
        out.extend_from_slice(&my::encode_packet(seq, &ok.encode()));
        for pkt in prepared.packets.iter().skip(1) {
            out.extend_from_slice(&pkt.raw);
        }
        let digest = self.ctx.metrics.digests.key(&sql, true);
        self.prepared.insert(
            id,
            ClientStatement {
                sql,
                params: prepared.ok.num_params,
                wants_primary,
                digest,
                class,
                types: None,
                long_data: Vec::new(),
                long_data_bytes: 0,
            },
        );
        self.client_w_write(&out).await?;
        self.maybe_release(node);
        Ok(())
    }

    /// COM_STMT_EXECUTE: routed like its statement, prepared on that connection if needed.
    pub(super) async fn stmt_execute(&mut self, p: my::Packet) -> std::io::Result<()> {
        let seq = p.next_seq();
        let Some(id) = my::statement_id(&p.payload).ok() else {
            return self
                .reply(
                    seq,
                    &err_payload(1210, "HY000", "Incorrect arguments to mysqld_stmt_execute"),
                )
                .await;
        };
        let Some(st) = self.prepared.get_mut(&id) else {
            let msg =
                format!("Unknown prepared statement handler ({id}) given to mysqld_stmt_execute");
            return self.reply(seq, &err_payload(1243, "HY000", &msg)).await;
        };
        let flags = p.payload.get(5).copied().unwrap_or(0);
        let wants_cursor = flags & CURSOR_TYPE_READ_ONLY != 0;
        if flags & !CURSOR_TYPE_READ_ONLY != 0 {
            let msg =
                format!("switchyard supports read-only cursors only (execute flags 0x{flags:02x})");
            return self.reply(seq, &err_payload(1235, "42000", &msg)).await;
        }
        if let Some(t) = bound_types(&p.payload, st.params) {
            st.types = Some(Bytes::copy_from_slice(t));
        }
        let (sql, params, types) = (st.sql.clone(), st.params, st.types.clone());
        let class = st.class.clone();
        let digest = st.digest;
        let long_data = std::mem::take(&mut st.long_data);
        st.long_data_bytes = 0;
        let wants_primary = st.wants_primary;
        if let Some(err) = self.wait_if_paused().await {
            return self.reply(seq, &err).await;
        }
        let mut target = match (
            self.txn_node.or_else(|| self.cursor_node(id)),
            wants_primary || self.pinned.is_some() || !self.autocommit,
        ) {
            (Some(n), _) => Target::Node(n),
            (None, true) => Target::Primary,
            (None, false) => Target::Replica,
        };
        target = self.ryw_target(target);
        for _ in 0..self.links.len() + 2 {
            let retryable = matches!(target, Target::Replica);
            let Some(node) = self.choose_waiting(&target).await else {
                return self.reply(seq, &self.no_primary()).await;
            };
            if let Err(e) = self.ensure_link(node).await {
                if self.try_elsewhere(node, &target, &e) {
                    continue;
                }
                return self.reply(seq, &lease_error(&e)).await;
            }
            if matches!(target, Target::Replica)
                && self.is_replica(node)
                && !self.replica_caught_up(node).await
            {
                self.maybe_release(node);
                target = self.ryw_next_target();
                continue;
            }
            let (timeout, max) = (
                self.ctx.general.connect_timeout,
                self.ctx.general.max_message_bytes,
            );
            let Some(link) = self.links[node].as_mut() else {
                continue;
            };
            // A cursor of this statement already open here keeps its server statement (the
            // execute closes it and opens the new one); a cursor while another client
            // statement's cursor holds the shared server statement gets a private one.
            let own = self.cursors.get(&id).filter(|c| c.node == node);
            let shared = link.conn.statements.get(&sql).copied();
            let busy = |sid: u32| {
                self.cursors
                    .values()
                    .any(|c| c.node == node && c.server_id == sid)
            };
            let reuse = match (own, shared) {
                (Some(c), _) => Some((c.server_id, c.owned)),
                (None, Some(sid)) if !(wants_cursor && busy(sid)) => Some((sid, false)),
                _ => None,
            };
            let (server_id, owned) = match reuse {
                Some(r) => r,
                None => {
                    let private = shared.is_some();
                    let prepared = if private {
                        link.conn.prepare_private(&sql, timeout, max).await
                    } else {
                        link.conn.prepare(&sql, timeout, max).await
                    };
                    match prepared {
                        Ok(Ok(prepared)) => (prepared.ok.statement_id, private),
                        Ok(Err(err)) => {
                            // It prepared once; here it fails (a missing table on a replica...).
                            let err = err.payload.clone();
                            self.maybe_release(node);
                            return self.reply(seq, &err).await;
                        }
                        Err(e) => {
                            self.links[node] = None;
                            if retryable {
                                continue;
                            }
                            let msg = format!("Lost connection to server during execute ({e})");
                            return self
                                .reply(seq, &err_payload(CONNECTION_LOST, "HY000", &msg))
                                .await;
                        }
                    }
                }
            };
            for (param, data) in &long_data {
                let mut cmd = vec![my::Command::COM_STMT_SEND_LONG_DATA as u8];
                cmd.extend_from_slice(&server_id.to_le_bytes());
                cmd.extend_from_slice(&param.to_le_bytes());
                cmd.extend_from_slice(data);
                if let Err(e) = link.conn.send_raw(&my::encode_packet(0, &cmd)).await {
                    self.links[node] = None;
                    let msg = format!("Lost connection to server during execute ({e})");
                    return self
                        .reply(seq, &err_payload(CONNECTION_LOST, "HY000", &msg))
                        .await;
                }
            }
            let Some(payload) = execute_payload(&p.payload, server_id, params, types.as_deref())
            else {
                let msg =
                    "Incorrect arguments to mysqld_stmt_execute (parameter types never bound)";
                return self.reply(seq, &err_payload(1210, "HY000", msg)).await;
            };
            let role = self.links[node].as_ref().and_then(|l| l.role);
            let sent = self.ctx.metrics.clock();
            match self
                .relay(node, my::encode_packet(0, &payload), retryable)
                .await?
            {
                Some(ok) => {
                    let done = sent.map(|_| std::time::Instant::now());
                    let mut tally = crate::observe::Tally::of(&class);
                    tally.digest = digest;
                    self.ctx.metrics.record(node, role, &tally, sent, done);
                    if ok && self.committed_write(node, Some(&class)) {
                        self.note_write(node).await;
                    }
                    self.note_cursor(id, node, server_id, owned).await;
                    self.maybe_release(node);
                    return Ok(());
                }
                None => continue,
            }
        }
        let err = err_payload(
            CONNECTION_LOST,
            "HY000",
            "Lost connection to server during query",
        );
        self.reply(seq, &err).await
    }

    /// COM_STMT_SEND_LONG_DATA: kept (bounded) for the statement's next execute; no reply.
    pub(super) fn stmt_long_data(&mut self, p: &my::Packet) {
        let Some(id) = my::statement_id(&p.payload).ok() else {
            return;
        };
        let Some(st) = self.prepared.get_mut(&id) else {
            return;
        };
        let Some(param) = p
            .payload
            .get(5..7)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
        else {
            return;
        };
        let data = p.payload.slice(7..);
        if st.long_data_bytes + data.len() > MAX_LONG_DATA {
            tracing::warn!(
                session = self.id,
                "long data past {MAX_LONG_DATA} bytes dropped"
            );
            return;
        }
        st.long_data_bytes += data.len();
        st.long_data.push((param, data));
    }

    /// COM_STMT_CLOSE: the client's id is forgotten; server copies stay for reuse (an open
    /// cursor of it is closed there). No reply.
    pub(super) async fn stmt_close(&mut self, p: &my::Packet) {
        if let Ok(id) = my::statement_id(&p.payload) {
            self.prepared.remove(&id);
            // A failure already dropped the connection; nothing to tell a client expecting no reply.
            let _ = self.close_cursor(id, false).await;
        }
    }

    /// COM_STMT_RESET: drops the statement's pending long data; answered by the proxy.
    pub(super) async fn stmt_reset(&mut self, p: my::Packet) -> std::io::Result<()> {
        let seq = p.next_seq();
        let id = my::statement_id(&p.payload).ok();
        if let Some(id) = id.filter(|id| self.prepared.contains_key(id)) {
            if let Some(st) = self.prepared.get_mut(&id) {
                st.long_data.clear();
                st.long_data_bytes = 0;
            }
            // An open cursor is closed by the server, whose answer the client gets.
            if self.cursors.contains_key(&id) && self.close_cursor(id, true).await? {
                return Ok(());
            }
        }
        let known = id.and_then(|id| self.prepared.get_mut(&id));
        match known {
            Some(st) => {
                st.long_data.clear();
                st.long_data_bytes = 0;
                let ok = super::ok_payload(self.status());
                self.reply(seq, &ok).await
            }
            None => {
                let err = err_payload(
                    1243,
                    "HY000",
                    "Unknown prepared statement handler given to mysqld_stmt_reset",
                );
                self.reply(seq, &err).await
            }
        }
    }
}
