//! Choosing the node for a batch and sending it there.

use super::batch::Batch;
use super::send::LinkError;
use super::session::Session;
use super::FrontendError;
use crate::cluster::Role;
use crate::config::ReplicaFallback;
use crate::route::{Intent, RouteHint};
use std::sync::atomic::Ordering;
use switchyard_postgres as pg;

/// A routing failure the client is told about; the session carries on.
pub(super) struct RouteFailure {
    pub code: &'static str,
    pub message: String,
}

/// Which kind of node a batch wants, before transactions and pins are considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    Replica,
    Primary,
    Any,
}

pub(super) fn want(batch: &Batch) -> Want {
    match (batch.hint, batch.intent) {
        (Some(RouteHint::Primary), _) => Want::Primary,
        (Some(RouteHint::Replica), _) => Want::Replica,
        (None, Some(Intent::Read)) => Want::Replica,
        (None, Some(Intent::Write)) => Want::Primary,
        (None, None) => Want::Any,
    }
}

impl Session {
    /// Sends a complete batch now if it can go to the node already relaying, else holds it.
    pub(super) async fn submit(&mut self, batch: Batch) -> Result<(), FrontendError> {
        if batch.local_reply.is_some() && self.active.is_some() {
            // The proxy's own answer must wait for the replies to what came before it.
            self.held = Some(batch);
            return Ok(());
        }
        if let Some(n) = self.open_batch {
            self.send_batch(n, batch);
            return Ok(());
        }
        match self.active {
            Some(a) if self.fits_active(&batch, a) => {
                self.send_batch(a, batch);
                Ok(())
            }
            Some(_) => {
                self.held = Some(batch);
                Ok(())
            }
            None => self.dispatch(batch).await,
        }
    }

    /// Whether a batch may be pipelined behind the work in flight on node `a`.
    fn fits_active(&self, batch: &Batch, a: usize) -> bool {
        if self.tx_status != b'I' {
            return self.txn_node == Some(a);
        }
        let snap = self.ctx.state.load();
        let role = snap
            .node(a)
            .and_then(|n| n.usable().then_some(n.role))
            .flatten();
        let primary = snap.primary().map(|p| p.id);
        if self.pinned.is_some() || batch.pin.is_some() {
            return primary == Some(a);
        }
        match want(batch) {
            Want::Replica => role == Some(Role::Replica),
            Want::Primary => primary == Some(a),
            Want::Any => true,
        }
    }

    /// Picks the node for a batch when nothing else is in flight.
    fn choose(&mut self, batch: &Batch) -> Result<usize, RouteFailure> {
        if self.tx_status != b'I' {
            if let Some(n) = self.txn_node {
                return Ok(n);
            }
        }
        let snap = self.ctx.state.load();
        let no_primary = || {
            RouteFailure {
            code: "08000",
            message: format!(
                "no primary is available in cluster {} (all nodes down, or two nodes claim to be primary)",
                self.ctx.config.name
            ),
        }
        };
        if self.pinned.is_some() || batch.pin.is_some() {
            return snap.primary().map(|p| p.id).ok_or_else(no_primary);
        }
        match want(batch) {
            Want::Primary => snap.primary().map(|p| p.id).ok_or_else(no_primary),
            Want::Any => {
                // Nothing to route by: reuse a server the session already has, to save a connection.
                let reuse = self
                    .links
                    .iter()
                    .enumerate()
                    .find(|(i, l)| l.is_some() && snap.node(*i).is_some_and(|n| n.usable()))
                    .map(|(i, _)| i);
                reuse
                    .or_else(|| snap.primary().map(|p| p.id))
                    .ok_or_else(no_primary)
            }
            Want::Replica => {
                // Only batches that execute something advance the rotation, so that a prepare
                // round trip does not make every following execute land on the same replica.
                let executes = batch.frames.iter().any(|f| matches!(f.tag, b'E' | b'Q'));
                let pick = if executes {
                    self.picker.pick(&snap)
                } else {
                    self.picker.peek(&snap)
                };
                if let Some(r) = pick {
                    if self.ctx.fallback_logged.swap(false, Ordering::Relaxed) {
                        tracing::info!(cluster = %self.ctx.config.name, "a replica is serving reads again");
                    }
                    return Ok(r);
                }
                if self.ctx.config.replica_fallback == ReplicaFallback::Error {
                    return Err(RouteFailure {
                        code: "08000",
                        message: format!(
                            "no replica is available in cluster {} for a read",
                            self.ctx.config.name
                        ),
                    });
                }
                if !self.ctx.fallback_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(cluster = %self.ctx.config.name, "no replica available: reads go to the primary");
                }
                snap.primary().map(|p| p.id).ok_or_else(no_primary)
            }
        }
    }

    /// Routes a batch, opening a server connection if needed; a read whose replica cannot be
    /// reached tries the next one. Failures become an error for this batch only.
    pub(super) async fn dispatch(&mut self, batch: Batch) -> Result<(), FrontendError> {
        if let Some(reply) = batch.local_reply {
            for m in reply {
                self.queue_client(m);
            }
            let status = self.tx_status;
            self.queue_client(pg::ready_for_query(status));
            return Ok(());
        }
        if let Some(f) = self.lost_transaction() {
            self.fail_batch(&batch, f);
            return Ok(());
        }
        let attempts = self.links.len() + 1;
        for _ in 0..attempts {
            let node = match self.choose(&batch) {
                Ok(n) => n,
                Err(f) => {
                    self.fail_batch(&batch, f);
                    return Ok(());
                }
            };
            match self.ensure_link(node).await {
                Ok(()) => {
                    self.send_batch(node, batch);
                    return Ok(());
                }
                Err(LinkError::Pool(e)) => {
                    self.fail_batch(
                        &batch,
                        RouteFailure {
                            code: "53300",
                            message: e.to_string(),
                        },
                    );
                    return Ok(());
                }
                Err(LinkError::Backend(e)) => {
                    let name = self.ctx.config.nodes[node].name.clone().unwrap_or_default();
                    if e.node_unreachable() {
                        self.ctx.state.report_failure(node, &e.to_string());
                        self.ctx.pools.forget_node(node);
                    }
                    let retry = e.node_unreachable()
                        && self.tx_status == b'I'
                        && self.pinned.is_none()
                        && want(&batch) == Want::Replica;
                    if !retry {
                        let code = if e.node_unreachable() {
                            "08001"
                        } else {
                            "08004"
                        };
                        let message = format!("could not connect to node {name}: {e}");
                        self.fail_batch(&batch, RouteFailure { code, message });
                        return Ok(());
                    }
                    tracing::warn!(node = %name, "read goes elsewhere: {e}");
                }
            }
        }
        self.fail_batch(
            &batch,
            RouteFailure {
                code: "08001",
                message: "no node could be reached for this statement".into(),
            },
        );
        Ok(())
    }

    /// The open transaction's server went down (and maybe came back) since the transaction
    /// began: the transaction is gone, so say so instead of running on a new connection.
    fn lost_transaction(&mut self) -> Option<RouteFailure> {
        let node = self.txn_node.filter(|_| self.tx_status != b'I')?;
        let snap = self.ctx.state.load();
        let n = snap.node(node)?;
        let link = self.links[node].as_ref();
        if link.is_some_and(|l| l.conn.incarnation == n.incarnation) {
            return None;
        }
        let message = format!(
            "the server connection of this transaction (node {}) was lost; the transaction is rolled back and the session is still usable",
            n.name
        );
        self.links[node] = None;
        self.tx_status = b'I';
        self.txn_node = None;
        self.txn_actions.clear();
        Some(RouteFailure {
            code: "08006",
            message,
        })
    }

    /// Answers a batch that could not be sent with an error, keeping the protocol in step.
    pub(super) fn fail_batch(&mut self, batch: &Batch, f: RouteFailure) {
        tracing::warn!(session = self.id, code = f.code, "{}", f.message);
        self.queue_client(pg::error_response("ERROR", f.code, &f.message));
        self.open_actions.clear();
        if batch.has_sync {
            let status = self.tx_status;
            self.queue_client(pg::ready_for_query(status));
        } else {
            self.discard_until_sync = true;
        }
    }
}
