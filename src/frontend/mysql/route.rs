//! Where a MySQL session's next command goes: the target a statement needs, the node chosen
//! for it (waiting, bounded, for a failover or the end of a PAUSE), and what to do when the
//! chosen node cannot be reached.

use super::session::Session;
use super::{err_payload, NO_NODE};
use crate::route::{Effect, Intent, RouteHint};
use bytes::Bytes;

/// Where a statement goes, decided before any connection is taken.
pub(super) enum Target {
    /// The primary (waiting for one during a failover).
    Primary,
    /// A replica by weight, else the primary.
    Replica,
    /// The node holding the session's transaction or cursor.
    Node(usize),
}

impl Session {
    /// PAUSE (admin console) or a switchover: outside a transaction, new work waits until
    /// the cluster resumes, at most `failover.timeout`; Some(ERR payload) when it did not.
    pub(super) async fn wait_if_paused(&self) -> Option<Bytes> {
        if self.txn_node.is_some() || !self.ctx.state.is_paused() {
            return None;
        }
        let limit = self.ctx.config.failover.timeout;
        if self.ctx.state.wait_unpaused(limit).await {
            return None;
        }
        let msg = format!(
            "cluster {} is paused (waited {limit:?}); RESUME it from the admin console",
            self.ctx.config.name
        );
        Some(err_payload(NO_NODE, "08S01", &msg))
    }

    /// After `ensure_link(node)` failed with `e`: an unreachable node is taken out, and true
    /// when the statement may go elsewhere (a read to another node, a write to the primary
    /// after a failover, outside a transaction: a new connection loses nothing).
    pub(super) fn try_elsewhere(
        &self,
        node: usize,
        target: &Target,
        e: &super::context::LeaseError,
    ) -> bool {
        let movable = match target {
            Target::Replica => true,
            Target::Primary => self.ctx.config.failover.mode != crate::config::FailoverMode::Off,
            Target::Node(_) => false,
        };
        match e {
            super::context::LeaseError::Backend(b) if b.node_unreachable() && movable => {
                self.ctx.state.report_failure(node, &b.to_string());
                self.ctx.pools.forget_node(node);
                true
            }
            _ => false,
        }
    }

    /// Where a statement with classification `class` (None: not UTF-8) goes.
    pub(super) fn target(&self, class: Option<&crate::route::Classification>) -> Target {
        match (class, self.txn_node) {
            (_, Some(n)) => Target::Node(n),
            (None, None) => Target::Primary,
            (Some(c), None) => {
                let begins_write = c
                    .effects()
                    .any(|e| matches!(e, Effect::Begin { read_only: false }));
                let primary = self.pinned.is_some()
                    || !self.autocommit
                    || c.pins().is_some()
                    || begins_write
                    || c.hint == Some(RouteHint::Primary)
                    || (c.intent == Intent::Write && c.hint != Some(RouteHint::Replica));
                if primary {
                    Target::Primary
                } else {
                    Target::Replica
                }
            }
        }
    }

    /// `choose`, but a statement that needs the primary while the cluster has none waits up
    /// to `failover.timeout` for one (failover modes follow and promote), as on PostgreSQL.
    pub(super) async fn choose_waiting(&mut self, target: &Target) -> Option<usize> {
        if let Some(n) = self.choose(target) {
            return Some(n);
        }
        if self.ctx.config.failover.mode == crate::config::FailoverMode::Off
            || !matches!(target, Target::Primary)
        {
            return None;
        }
        let mut changes = self.ctx.state.subscribe();
        let deadline = tokio::time::Instant::now() + self.ctx.config.failover.timeout;
        loop {
            if let Some(n) = self.choose(target) {
                return Some(n);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.choose(target),
            }
        }
    }

    /// True when `node` is a replica in the current snapshot.
    pub(super) fn is_replica(&self, node: usize) -> bool {
        self.ctx
            .state
            .load()
            .node(node)
            .is_some_and(|n| n.role == Some(crate::cluster::Role::Replica))
    }

    pub(super) fn choose(&mut self, target: &Target) -> Option<usize> {
        let snap = self.ctx.state.load();
        match target {
            Target::Node(n) => Some(*n),
            Target::Primary => snap.primary().map(|p| p.id),
            Target::Replica => self
                .picker
                .pick(&snap, None)
                .or_else(|| snap.primary().map(|p| p.id)),
        }
    }
}
