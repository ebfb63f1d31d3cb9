//! Node and cluster state changes: each one is logged (cluster, node, old and new state,
//! evidence) and counted here, in one place, for the metrics endpoint and the admin console.

use std::sync::atomic::{AtomicU64, Ordering};

/// Kinds of state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A node stopped answering (probes or client traffic).
    NodeDown,
    /// A node was taken back.
    NodeUp,
    /// A node reported another role.
    RoleChanged,
    /// A replica went past the lag limit and stopped getting reads.
    LagEjected,
    /// A lagging replica came back under the limit.
    LagReadmitted,
    /// A lagging replica kept serving because of `min_serving_replicas`.
    FloorKept,
    /// A former primary was fenced (never written to until it rejoins as a replica).
    Fenced,
    /// A fenced node rejoined as a replica or was released by an operator.
    Unfenced,
    /// Two unfenced nodes claimed to be primary: writes stopped.
    SplitBrain,
    /// The proxy began promoting a replica.
    FailoverStarted,
    /// A promotion finished and writes moved.
    FailoverSucceeded,
    /// A promotion failed.
    FailoverFailed,
    /// A replica was re-pointed to a new primary.
    Repointed,
}

/// Every kind, in a stable order (for reports).
pub const ALL_KINDS: [EventKind; 13] = [
    EventKind::NodeDown,
    EventKind::NodeUp,
    EventKind::RoleChanged,
    EventKind::LagEjected,
    EventKind::LagReadmitted,
    EventKind::FloorKept,
    EventKind::Fenced,
    EventKind::Unfenced,
    EventKind::SplitBrain,
    EventKind::FailoverStarted,
    EventKind::FailoverSucceeded,
    EventKind::FailoverFailed,
    EventKind::Repointed,
];

impl EventKind {
    /// Stable snake_case name, used in logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::NodeDown => "node_down",
            EventKind::NodeUp => "node_up",
            EventKind::RoleChanged => "role_changed",
            EventKind::LagEjected => "lag_ejected",
            EventKind::LagReadmitted => "lag_readmitted",
            EventKind::FloorKept => "floor_kept",
            EventKind::Fenced => "fenced",
            EventKind::Unfenced => "unfenced",
            EventKind::SplitBrain => "split_brain",
            EventKind::FailoverStarted => "failover_started",
            EventKind::FailoverSucceeded => "failover_succeeded",
            EventKind::FailoverFailed => "failover_failed",
            EventKind::Repointed => "repointed",
        }
    }

    fn index(self) -> usize {
        ALL_KINDS.iter().position(|k| *k == self).unwrap_or(0)
    }

    fn loud(self) -> bool {
        matches!(
            self,
            EventKind::NodeDown
                | EventKind::LagEjected
                | EventKind::Fenced
                | EventKind::SplitBrain
                | EventKind::FailoverStarted
                | EventKind::FailoverFailed
        )
    }
}

/// Counters of one cluster's state changes.
#[derive(Debug, Default)]
pub struct ClusterEvents {
    counts: [AtomicU64; ALL_KINDS.len()],
}

/// One state change, as logged.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// What changed.
    pub kind: EventKind,
    /// Cluster name.
    pub cluster: &'a str,
    /// Node name ("" for cluster-wide changes).
    pub node: &'a str,
    /// State before.
    pub old: &'a str,
    /// State after.
    pub new: &'a str,
    /// What was observed.
    pub evidence: &'a str,
}

impl ClusterEvents {
    /// Logs and counts a change.
    pub fn record(&self, e: Event<'_>) {
        self.counts[e.kind.index()].fetch_add(1, Ordering::Relaxed);
        let kind = e.kind.name();
        if e.kind == EventKind::SplitBrain || e.kind == EventKind::FailoverFailed {
            tracing::error!(
                cluster = e.cluster,
                node = e.node,
                event = kind,
                old = e.old,
                new = e.new,
                "{}",
                e.evidence
            );
        } else if e.kind.loud() {
            tracing::warn!(
                cluster = e.cluster,
                node = e.node,
                event = kind,
                old = e.old,
                new = e.new,
                "{}",
                e.evidence
            );
        } else {
            tracing::info!(
                cluster = e.cluster,
                node = e.node,
                event = kind,
                old = e.old,
                new = e.new,
                "{}",
                e.evidence
            );
        }
    }

    /// How many changes of `kind` happened.
    pub fn count(&self, kind: EventKind) -> u64 {
        self.counts[kind.index()].load(Ordering::Relaxed)
    }
}
