//! The published cluster snapshot and the single writer that replaces it.

use super::Role;
use crate::config::ClusterConfig;
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex};

/// Whether a node may receive traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet.
    Unknown,
    /// Answering probes.
    Up,
    /// Failed probes or client traffic saw it fail.
    Down,
}

/// One node as last observed.
#[derive(Debug, Clone)]
pub struct NodeState {
    /// Index of the node in the cluster's config.
    pub id: usize,
    /// Name from config (defaults to the address).
    pub name: String,
    /// "host:port".
    pub addr: String,
    /// Read weight; 0 means drained.
    pub weight: u32,
    /// Role from config when given, else as last probed.
    pub role: Option<Role>,
    /// Health as last decided by the monitor or by passive checks.
    pub health: Health,
    /// Bumped each time the node goes down: connections opened before belong to a server
    /// that may have restarted since, and are not reused.
    pub incarnation: u64,
}

impl NodeState {
    /// True when the node may be given new work.
    pub fn usable(&self) -> bool {
        self.health != Health::Down
    }
}

/// An immutable view of a cluster; sessions load it with one atomic read.
#[derive(Debug, Clone)]
pub struct ClusterSnapshot {
    /// Increases with every published change.
    pub generation: u64,
    /// All nodes, indexed by id.
    pub nodes: Vec<NodeState>,
}

impl ClusterSnapshot {
    /// The usable primary, if exactly one node is known as primary and it is usable.
    pub fn primary(&self) -> Option<&NodeState> {
        let mut it = self
            .nodes
            .iter()
            .filter(|n| n.role == Some(Role::Primary) && n.usable());
        let first = it.next()?;
        // Two primaries is split brain: refuse to pick either rather than guess.
        it.next().is_none().then_some(first)
    }

    /// Node by id.
    pub fn node(&self, id: usize) -> Option<&NodeState> {
        self.nodes.get(id)
    }
}

/// Holder of a cluster's current snapshot; writers are serialised, readers never block.
pub struct ClusterState {
    /// Cluster name.
    pub name: String,
    current: ArcSwap<ClusterSnapshot>,
    writer: Mutex<()>,
}

impl ClusterState {
    /// Builds the initial snapshot from config: configured roles, health unknown.
    pub fn new(config: &ClusterConfig) -> Self {
        let nodes = config
            .nodes
            .iter()
            .enumerate()
            .map(|(id, n)| NodeState {
                id,
                name: n.name.clone().unwrap_or_else(|| n.addr.clone()),
                addr: n.addr.clone(),
                weight: n.weight,
                role: n.role,
                health: Health::Unknown,
                incarnation: 0,
            })
            .collect();
        ClusterState {
            name: config.name.clone(),
            current: ArcSwap::from_pointee(ClusterSnapshot {
                generation: 0,
                nodes,
            }),
            writer: Mutex::new(()),
        }
    }

    /// The latest snapshot, as a cheap guard for the hot path (no reference count touched);
    /// do not hold it across an await.
    pub fn load(&self) -> arc_swap::Guard<Arc<ClusterSnapshot>> {
        self.current.load()
    }

    /// The latest snapshot as an owned reference, for holding across awaits.
    pub fn load_full(&self) -> Arc<ClusterSnapshot> {
        self.current.load_full()
    }

    /// Applies `change` to a copy of the node list and publishes it if anything changed.
    pub fn update(&self, change: impl FnOnce(&mut Vec<NodeState>)) -> Arc<ClusterSnapshot> {
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.current.load_full();
        let mut nodes = old.nodes.clone();
        change(&mut nodes);
        for (new, old) in nodes.iter_mut().zip(old.nodes.iter()) {
            if new.health == Health::Down && old.health != Health::Down {
                new.incarnation = old.incarnation + 1;
            }
        }
        let changed = nodes
            .iter()
            .zip(old.nodes.iter())
            .any(|(a, b)| a.health != b.health || a.role != b.role || a.weight != b.weight);
        if !changed {
            return old;
        }
        let next = Arc::new(ClusterSnapshot {
            generation: old.generation + 1,
            nodes,
        });
        self.current.store(next.clone());
        next
    }

    /// Passive check: client traffic could not reach `id`; take it out until probes readmit it.
    pub fn report_failure(&self, id: usize, why: &str) {
        let snap = self.update(|nodes| {
            if let Some(n) = nodes.get_mut(id) {
                if n.health != Health::Down {
                    tracing::warn!(cluster = %self.name, node = %n.name, "node marked down by client traffic: {why}");
                    n.health = Health::Down;
                }
            }
        });
        let _ = snap;
    }
}
