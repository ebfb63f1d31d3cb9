//! Sending a batch to a server connection: checking one out of the pool, bringing it to the
//! session's state, mapping prepared-statement names to their global names, and returning the
//! connection to the pool when the transaction is over.

use super::batch::{Batch, PreparedDef};
use super::cancel::CancelTarget;
use super::link::{Completion, Link, Pending};
use super::route::{want, RouteFailure, Want};
use super::session::Session;
use super::vars::Action;
use crate::backend::{BackendError, ServerConn};
use crate::config::ReadYourWrites;
use crate::pool::PoolError;
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::Arc;
use switchyard_postgres as pg;

/// Most statements kept prepared on one server connection; past it the least recently used
/// one is closed, so sessions with ever-new statement texts cannot grow servers without bound.
const MAX_STATEMENTS_PER_SERVER: usize = 1000;

/// Why no server connection could be had.
#[derive(Debug, thiserror::Error)]
pub(super) enum LinkError {
    /// The pool stayed full for the whole wait.
    #[error("{0}")]
    Pool(#[from] PoolError),
    /// Opening a new connection failed.
    #[error("{0}")]
    Backend(#[from] BackendError),
}

impl Session {
    /// Makes sure the session holds a connection to `node`: its own, or one from the pool.
    pub(super) async fn ensure_link(&mut self, node: usize) -> Result<(), LinkError> {
        let (incarnation, role) = self
            .ctx
            .state
            .load()
            .node(node)
            .map_or((0, None), |n| (n.incarnation, n.role));
        match &mut self.links[node] {
            Some(l) if l.conn.incarnation == incarnation => {
                l.role = role;
                return Ok(());
            }
            // The node went down since this connection was opened: it is likely dead.
            Some(_) => self.links[node] = None,
            None => {}
        }
        let pool = self.pools[node].clone();
        let (lease, conn) = self.ctx.lease(&pool, node, incarnation).await?;
        let node_down = self.ctx.state.watch_node(node);
        let queues = self.spare_queues.take().unwrap_or_default();
        let mut link = Link::new(conn, lease, node_down, queues);
        link.role = role;
        self.links[node] = Some(link);
        Ok(())
    }

    /// Gives node `node`'s connection back to the pool when transaction pooling allows it:
    /// nothing in flight, no transaction, nothing pinned to it.
    pub(super) fn maybe_release(&mut self, node: usize) {
        if !self.transaction_pooling
            || self.open_batch == Some(node)
            || self.pinned_node == Some(node)
        {
            return;
        }
        let releasable = self.links[node]
            .as_ref()
            .is_some_and(|l| l.idle() && !l.dirty && l.conn.inbuf.is_empty());
        if !releasable {
            return;
        }
        if let Some(link) = self.links[node].take() {
            if self.active == Some(node) {
                self.active = None;
            }
            // An idle client must not cancel whatever the connection runs next for someone else.
            if self.cancel_for.is_some_and(|(n, _)| n == node) {
                self.cancel_for = None;
                *self.cancel_slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
            self.spare_queues = Some(link.release());
        }
    }

    /// Queues a batch on node `node`'s link and makes that node the active one. Statements are
    /// sent under their global names, prepared first where the server lacks them; session
    /// settings are replayed first where the server's differ.
    pub(super) fn send_batch(&mut self, node: usize, mut batch: Batch) {
        let committed_write = self.commits_write(node, &batch);
        let Some(link) = self.links[node].as_mut() else {
            let message = "server connection lost".to_string();
            self.fail_batch(
                &batch,
                RouteFailure {
                    code: "08006",
                    message,
                    awaits_primary: false,
                },
            );
            return;
        };
        if link.status == b'I' {
            if let Some(sql) = self.vars.sync_server(&mut link.conn) {
                link.out.push(pg::query(&sql));
                link.outstanding.push_back(Pending {
                    internal: true,
                    ..Pending::default()
                });
            }
        }
        let retryable = batch.has_sync
            && self.open_batch.is_none()
            && self.tx_status == b'I'
            && self.pinned.is_none()
            && batch.pin.is_none()
            && want(&batch) == Want::Replica;
        if let Some(why) = batch.pin {
            if self.pinned.is_none() {
                tracing::info!(session = self.id, "pinned to the primary: {why}");
                self.pinned = Some(why);
                self.pinned_node = Some(node);
            }
            link.dirty = true;
        }
        let mut actions = std::mem::take(&mut self.open_actions);
        if retryable {
            // The retry needs them again.
            actions.extend(batch.actions.iter().cloned());
        } else {
            actions.append(&mut batch.actions);
        }
        let has_sync = batch.has_sync;
        // The statements it executes (with those of its parts sent up to a Flush) are counted
        // when its Sync completes; a retried read is counted where it completes.
        let mut tally = std::mem::take(&mut self.open_tally);
        let mut mine = batch.tally;
        mine.reason = batch.reason;
        tally.merge(mine);
        let mut sent = None;
        // Frames are relayed by reference (a Bytes clone is a reference count) so that a
        // retryable read keeps its batch without copying it.
        for frame in &batch.frames {
            let body = frame.body();
            let raw = match frame.tag {
                b'P' => {
                    let Some(def) = pg::parse_parse(&body)
                        .ok()
                        .and_then(|p| self.prepared.get(p.name))
                    else {
                        link.completions.push(Completion::Parse {
                            injected: false,
                            global: None,
                        });
                        link.out.push(frame.raw.clone());
                        continue;
                    };
                    if touch(&mut link.conn, &def.global) {
                        // Already prepared here: a Parse of the (otherwise unused) unnamed
                        // statement answers the client's ParseComplete in its place.
                        link.completions.push(Completion::Parse {
                            injected: false,
                            global: None,
                        });
                        pg::parse("", "", &[])
                    } else {
                        evict_if_full(link);
                        link.conn
                            .statements
                            .insert(def.global.to_string(), link.conn.tick);
                        link.completions.push(Completion::Parse {
                            injected: false,
                            global: Some(def.global.clone()),
                        });
                        def.parse.clone()
                    }
                }
                b'B' | b'D' => {
                    let name = if frame.tag == b'B' {
                        pg::parse_bind(&body).ok().map(|b| b.statement)
                    } else {
                        pg::parse_describe(&body)
                            .ok()
                            .filter(|d| d.kind == b'S')
                            .map(|d| d.name)
                    };
                    let def: Option<&PreparedDef> = name.and_then(|name| {
                        self.prepared.get(name).or_else(|| {
                            batch.closed.iter().find(|(n, _)| n == name).map(|(_, d)| d)
                        })
                    });
                    let raw = match def {
                        Some(def) => {
                            if !touch(&mut link.conn, &def.global) {
                                evict_if_full(link);
                                link.out.push(def.parse.clone());
                                link.completions.push(Completion::Parse {
                                    injected: true,
                                    global: Some(def.global.clone()),
                                });
                                link.conn
                                    .statements
                                    .insert(def.global.to_string(), link.conn.tick);
                            }
                            if frame.tag == b'B' {
                                rename_bind(&body, &def.global).unwrap_or_else(|| frame.raw.clone())
                            } else {
                                pg::describe(b'S', &def.global)
                            }
                        }
                        None => frame.raw.clone(),
                    };
                    if frame.tag == b'B' {
                        link.completions.push(Completion::Bind);
                    }
                    raw
                }
                b'C' => {
                    link.completions.push(Completion::Close { injected: false });
                    match pg::parse_close(&body) {
                        // Statements stay prepared on the server for whoever needs them next;
                        // closing the unnamed one answers the client's CloseComplete.
                        Ok(c) if c.kind == b'S' => pg::close(b'S', ""),
                        _ => frame.raw.clone(),
                    }
                }
                b'S' | b'Q' | b'F' => {
                    link.completions.push(Completion::Sync);
                    let tally = std::mem::take(&mut tally);
                    // No clock read unless metrics are on and it runs statements.
                    sent = if tally.is_empty() {
                        None
                    } else {
                        self.ctx.metrics.clock()
                    };
                    link.outstanding.push_back(Pending {
                        actions: std::mem::take(&mut actions),
                        tally,
                        role: link.role,
                        sent,
                        ..Pending::default()
                    });
                    frame.raw.clone()
                }
                _ => frame.raw.clone(),
            };
            link.out.push(raw);
        }
        if committed_write {
            if let Some(p) = link.outstanding.back_mut() {
                p.wrote = true;
            }
            if self.ctx.config.read_your_writes == ReadYourWrites::Lsn {
                // Pipelined behind the client's batch: it runs once that commits, and its
                // answer is in before the connection can serve the client's next read.
                link.out.push(pg::query("SELECT pg_current_wal_lsn()"));
                link.outstanding.push_back(Pending {
                    internal: true,
                    capture_lsn: true,
                    ..Pending::default()
                });
            }
        }
        if retryable {
            // A retryable batch ends with its only Sync, whose Pending was pushed last.
            if let Some(p) = link.outstanding.back_mut() {
                p.retry = Some(batch);
            }
        }
        if has_sync {
            self.open_batch = None;
        } else {
            self.open_batch = Some(node);
            self.open_actions = actions;
            self.open_tally = tally;
        }
        if self.active.is_none() && self.ctx.config.query_timeout.is_some() {
            // The metrics' clock read, when there was one, serves here too.
            self.active_since =
                Some(sent.map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std));
            self.timeout_cancelled = false;
        }
        self.active = Some(node);
        // Cancels go to the server running the client's work; update only when that changes.
        if self.cancel_for != Some((node, link.conn.key)) {
            self.cancel_for = Some((node, link.conn.key));
            let target = CancelTarget {
                addr: self.ctx.config.nodes[node].addr.clone(),
                key: link.conn.key,
            };
            *self.cancel_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(target);
        }
    }

    /// Whether `batch`, sent to `node`, commits a write the session's reads must then see
    /// (read-your-writes): an autocommit write, or the COMMIT of a transaction, on the primary.
    fn commits_write(&self, node: usize, batch: &Batch) -> bool {
        if self.ctx.config.read_your_writes == ReadYourWrites::Off || !batch.has_sync {
            return false;
        }
        let autocommit_write = self.tx_status == b'I'
            && batch.intent == Some(crate::route::Intent::Write)
            && (batch.ends_txn || !batch.opens_txn);
        (autocommit_write || batch.ends_txn)
            && self
                .ctx
                .state
                .load()
                .node(node)
                .is_some_and(|n| n.role == Some(crate::cluster::Role::Primary))
    }

    /// Records on the connection that ran them what successful session changes did there.
    pub(super) fn note_applied(&mut self, node: usize, actions: &[Action]) {
        let Some(l) = self.links[node].as_mut() else {
            return;
        };
        if actions
            .iter()
            .any(|a| matches!(a, Action::ResetAll | Action::Discard))
        {
            // The server went back to its defaults, which may differ from the session's
            // startup settings: replay everything next time.
            l.conn.state_sig = 0;
        } else {
            l.conn.state_sig = self.vars.sig;
        }
        if actions.contains(&Action::Discard) {
            l.conn.statements.clear();
        }
    }
}

/// Marks a statement used on `conn`; true if the server has it.
fn touch(conn: &mut ServerConn, global: &str) -> bool {
    conn.tick += 1;
    match conn.statements.get_mut(global) {
        Some(t) => {
            *t = conn.tick;
            true
        }
        None => false,
    }
}

/// Closes the least recently used statement when the server holds too many.
fn evict_if_full(link: &mut Link) {
    if link.conn.statements.len() < MAX_STATEMENTS_PER_SERVER {
        return;
    }
    let oldest = link
        .conn
        .statements
        .iter()
        .min_by_key(|(_, t)| **t)
        .map(|(n, _)| n.clone());
    if let Some(name) = oldest {
        link.conn.statements.remove(&name);
        link.out.push(pg::close(b'S', &name));
        link.completions.push(Completion::Close { injected: true });
    }
}

/// Re-encodes a Bind body with another statement name; None if the body is malformed.
fn rename_bind(body: &[u8], statement: &Arc<str>) -> Option<Bytes> {
    let portal_end = body.iter().position(|&b| b == 0)?;
    let stmt_len = body[portal_end + 1..].iter().position(|&b| b == 0)?;
    let rest = &body[portal_end + 1 + stmt_len + 1..];
    let len = 4 + portal_end + 1 + statement.len() + 1 + rest.len();
    let mut m = BytesMut::with_capacity(1 + len);
    m.put_u8(b'B');
    m.put_i32(i32::try_from(len).ok()?);
    m.put_slice(&body[..=portal_end]);
    m.put_slice(statement.as_bytes());
    m.put_u8(0);
    m.put_slice(rest);
    Some(m.freeze())
}
