//! Choosing the node for a batch and sending it there.

use super::batch::Batch;
use super::send::LinkError;
use super::session::Session;
use super::FrontendError;
use crate::cluster::{ReplicaPicker, Role};
use crate::config::{FailoverMode, ReplicaFallback};
use crate::route::{Intent, RouteHint};
use std::sync::atomic::Ordering;
use switchyard_postgres as pg;

/// A routing failure the client is told about; the session carries on.
pub(super) struct RouteFailure {
    pub code: &'static str,
    pub message: String,
    /// No primary is known: worth waiting for a failover.
    pub awaits_primary: bool,
}

/// The failure of a batch that needs the primary when there is none.
fn no_primary(cluster: &str, split_brain: bool) -> RouteFailure {
    let why = if split_brain {
        "two nodes claim to be primary (split brain): writes are refused until one is demoted or fenced"
    } else {
        "no node is an available primary"
    };
    RouteFailure {
        code: "08000",
        message: format!("no primary in cluster {cluster}: {why}"),
        awaits_primary: true,
    }
}

/// What `choose` decided.
enum Choice {
    /// Send it to this node.
    Node(usize),
    /// Read-your-writes: no replica has replayed the session's last write yet.
    AwaitReplica,
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
            Want::Replica => {
                let replayed = self
                    .ryw_lsn
                    .is_none_or(|l| snap.node(a).is_some_and(|n| n.lsn >= l));
                // Read-your-writes decides anew (the primary during the window).
                role == Some(Role::Replica) && replayed && self.ryw_until.is_none()
            }
            Want::Primary => primary == Some(a),
            Want::Any => true,
        }
    }

    /// Picks the node for a batch when nothing else is in flight. `ryw_gave_up`: the bounded
    /// wait for a replica that replayed the session's last write is over.
    fn choose(&mut self, batch: &Batch, ryw_gave_up: bool) -> Result<Choice, RouteFailure> {
        if self.tx_status != b'I' {
            if let Some(n) = self.txn_node {
                return Ok(Choice::Node(n));
            }
        }
        let snap = self.ctx.state.load();
        let cluster = &self.ctx.config.name;
        let primary = || {
            snap.primary()
                .map(|p| Choice::Node(p.id))
                .ok_or_else(|| no_primary(cluster, snap.split_brain))
        };
        if self.pinned.is_some() || batch.pin.is_some() {
            return primary();
        }
        match want(batch) {
            Want::Primary => primary(),
            Want::Any => {
                // Nothing to route by: reuse a server the session already has, to save a connection.
                let reuse = self
                    .links
                    .iter()
                    .enumerate()
                    .find(|(i, l)| {
                        l.is_some() && snap.node(*i).is_some_and(|n| n.usable() && !n.fenced)
                    })
                    .map(|(i, _)| Choice::Node(i));
                reuse.map_or_else(primary, Ok)
            }
            Want::Replica => {
                if let Some(until) = self.ryw_until {
                    if tokio::time::Instant::now() < until {
                        return primary();
                    }
                    self.ryw_until = None;
                }
                if ryw_gave_up {
                    return primary();
                }
                // Only batches that execute something advance the rotation, so that a prepare
                // round trip does not make every following execute land on the same replica.
                let executes = batch.frames.iter().any(|f| matches!(f.tag, b'E' | b'Q'));
                let pick = if executes {
                    self.picker.pick(&snap, self.ryw_lsn)
                } else {
                    self.picker.peek(&snap, self.ryw_lsn)
                };
                if let Some(r) = pick {
                    if self.ctx.fallback_logged.swap(false, Ordering::Relaxed) {
                        tracing::info!(cluster = %self.ctx.config.name, "a replica is serving reads again");
                    }
                    return Ok(Choice::Node(r));
                }
                if self.ryw_lsn.is_some() && ReplicaPicker::any_serving(&snap) {
                    return Ok(Choice::AwaitReplica);
                }
                if self.ctx.config.replica_fallback == ReplicaFallback::Error {
                    return Err(RouteFailure {
                        code: "08000",
                        message: format!(
                            "no replica is available in cluster {} for a read",
                            self.ctx.config.name
                        ),
                        awaits_primary: false,
                    });
                }
                if !self.ctx.fallback_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(cluster = %self.ctx.config.name, "no replica available: reads go to the primary");
                }
                primary()
            }
        }
    }

    /// Chooses a node, waiting (bounded) where waiting beats an error or a detour: a write
    /// while the cluster has no primary waits up to `failover.timeout` for one; a read after
    /// the session's write waits up to `read_your_writes_wait` for a replica to replay it.
    async fn route(&mut self, batch: &Batch) -> Result<usize, RouteFailure> {
        if self.tx_status == b'I' && self.ctx.state.is_paused() {
            // PAUSE (admin console) or a switchover: transactions in flight finish, new ones
            // wait here, bounded like a wait for a failover.
            let limit = self.ctx.config.failover.timeout;
            if !self.ctx.state.wait_unpaused(limit).await {
                return Err(RouteFailure {
                    code: "57P03",
                    message: format!(
                        "cluster {} is paused (waited {limit:?}); RESUME it from the admin console",
                        self.ctx.config.name
                    ),
                    awaits_primary: false,
                });
            }
        }
        let mut changes: Option<tokio::sync::watch::Receiver<u64>> = None;
        let (mut ryw_deadline, mut primary_deadline) = (None, None);
        let mut ryw_gave_up = false;
        let failover_on = self.ctx.config.failover.mode != FailoverMode::Off;
        loop {
            let now = tokio::time::Instant::now();
            let (deadline, failure) = match self.choose(batch, ryw_gave_up) {
                Ok(Choice::Node(n)) => return Ok(n),
                Ok(Choice::AwaitReplica) => {
                    tracing::debug!(session = self.id, lsn = ?self.ryw_lsn, "waiting for a replica to replay the session's last write");
                    self.ctx.state.probe_replicas_now();
                    let wait = self.ctx.config.read_your_writes_wait;
                    (*ryw_deadline.get_or_insert(now + wait), None)
                }
                Err(f) if f.awaits_primary && failover_on && self.tx_status == b'I' => {
                    let wait = self.ctx.config.failover.timeout;
                    (*primary_deadline.get_or_insert(now + wait), Some(f))
                }
                Err(f) => return Err(f),
            };
            let Some(rx) = changes.as_mut() else {
                // Subscribe, then decide again: a change in between is not missed.
                changes = Some(self.ctx.state.subscribe());
                continue;
            };
            if let Ok(Ok(())) = tokio::time::timeout_at(deadline, rx.changed()).await {
                continue;
            }
            match failure {
                None => ryw_gave_up = true,
                Some(mut f) => {
                    f.message = format!(
                        "{} (waited {:?} for a failover)",
                        f.message, self.ctx.config.failover.timeout
                    );
                    return Err(f);
                }
            }
        }
    }

    /// Routes a batch, opening a server connection if needed; a read whose replica cannot be
    /// reached tries the next one, a write whose primary cannot be reached waits for a
    /// failover. Failures become an error for this batch only.
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
        let failover_on = self.ctx.config.failover.mode != FailoverMode::Off;
        let attempts = self.links.len() + 1;
        for _ in 0..attempts {
            let node = match self.route(&batch).await {
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
                            awaits_primary: false,
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
                    let movable = match want(&batch) {
                        Want::Replica => true,
                        Want::Primary | Want::Any => failover_on,
                    };
                    let retry = e.node_unreachable()
                        && self.tx_status == b'I'
                        && self.pinned.is_none()
                        && movable;
                    if !retry {
                        let code = if e.node_unreachable() {
                            "08001"
                        } else {
                            "08004"
                        };
                        let message = format!("could not connect to node {name}: {e}");
                        self.fail_batch(
                            &batch,
                            RouteFailure {
                                code,
                                message,
                                awaits_primary: false,
                            },
                        );
                        return Ok(());
                    }
                    tracing::warn!(node = %name, "statement goes elsewhere: {e}");
                }
            }
        }
        self.fail_batch(
            &batch,
            RouteFailure {
                code: "08001",
                message: "no node could be reached for this statement".into(),
                awaits_primary: false,
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
            awaits_primary: false,
        })
    }

    /// Answers a batch that could not be sent with an error, keeping the protocol in step.
    pub(super) fn fail_batch(&mut self, batch: &Batch, f: RouteFailure) {
        tracing::warn!(session = self.id, code = f.code, "{}", f.message);
        if let Some(kind) = crate::observe::ErrorKind::of_sqlstate(f.code) {
            self.ctx.metrics.error(kind);
        }
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
