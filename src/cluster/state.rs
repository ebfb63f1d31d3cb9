//! The published cluster snapshot and the single writer that replaces it.

use super::events::{ClusterEvents, Event, EventKind};
use super::lag::{self, LagPolicy};
use super::Role;
use crate::config::ClusterConfig;
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, Notify};

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

impl Health {
    /// Lowercase name for logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
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
    /// WAL position: a primary's current LSN, a replica's replay LSN (0 until probed).
    pub lsn: u64,
    /// When `lsn` was read.
    pub probed_at: Option<std::time::Instant>,
    /// The probe before: position and time (lag compares a replica with a primary sample
    /// taken no later than the replica's own).
    pub prev_lsn: u64,
    /// When `prev_lsn` was read.
    pub prev_probed_at: Option<std::time::Instant>,
    /// A replica's last received (flushed) LSN; what it would hold after a promotion.
    pub receive_lsn: u64,
    /// Timeline the node is on, when known.
    pub timeline: Option<u32>,
    /// Replica lag behind the primary in bytes, once both were probed.
    pub lag_bytes: Option<u64>,
    /// Replica replay delay in seconds (0 when it has replayed all it received).
    pub lag_seconds: Option<f64>,
    /// Past the lag limits: gets no reads (unless kept by the floor).
    pub lagging: bool,
    /// Lagging, but kept serving by `min_serving_replicas`.
    pub kept_by_floor: bool,
    /// A former primary that must not be written to until it rejoins as a replica.
    pub fenced: bool,
    /// Read weight now, in hundredths of `weight` (slow start ramps it up).
    pub effective_weight: u32,
    /// When the node last became fit for reads, for slow start.
    pub serving_since: Option<std::time::Instant>,
    /// Drained by an operator (admin console): no new reads; work in flight finishes.
    pub drained: bool,
}

impl NodeState {
    /// True when the node may be given new work.
    pub fn usable(&self) -> bool {
        self.health != Health::Down
    }

    /// True when the node may take reads as a replica now.
    pub fn serves_reads(&self) -> bool {
        self.role == Some(Role::Replica)
            && self.usable()
            && !self.fenced
            && !self.drained
            && (!self.lagging || self.kept_by_floor)
            && self.effective_weight > 0
    }

    /// Why the node takes no reads, or None when it does.
    pub fn not_serving_reason(&self) -> Option<&'static str> {
        if self.health == Health::Down {
            Some("down")
        } else if self.fenced {
            Some("fenced")
        } else if self.role != Some(Role::Replica) {
            None
        } else if self.weight == 0 || self.drained {
            Some("drained")
        } else if self.lagging && !self.kept_by_floor {
            Some("lagging")
        } else {
            None
        }
    }
}

/// An immutable view of a cluster; sessions load it with one atomic read.
#[derive(Debug, Clone)]
pub struct ClusterSnapshot {
    /// Increases with every published change (lag figures included).
    pub generation: u64,
    /// Increases only when something routing depends on changed (roles, health, weights).
    pub routing_generation: u64,
    /// All nodes, indexed by id.
    pub nodes: Vec<NodeState>,
    /// Two unfenced nodes claim to be primary: writes are refused until it is resolved.
    pub split_brain: bool,
}

impl ClusterSnapshot {
    /// The usable, unfenced primary, if exactly one node claims to be primary.
    pub fn primary(&self) -> Option<&NodeState> {
        if self.split_brain {
            return None;
        }
        let mut it = self.primaries();
        let first = it.next()?;
        it.next().is_none().then_some(first)
    }

    /// Usable, unfenced nodes reporting the primary role.
    pub fn primaries(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes
            .iter()
            .filter(|n| n.role == Some(Role::Primary) && n.usable() && !n.fenced)
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
    policy: LagPolicy,
    /// Failover mode is not off: former primaries are fenced.
    fencing: bool,
    /// The cluster's failover mode.
    pub failover_mode: crate::config::FailoverMode,
    /// Generation, for tasks that wait for a change (writes waiting for a primary, reads
    /// waiting for a replica to catch up).
    changes: watch::Sender<u64>,
    /// Per node: asks its monitor to probe now instead of at its next tick (a permit is kept
    /// when the monitor is busy, so no request is lost).
    pub probe_now: Vec<Notify>,
    /// State-change counters.
    pub events: ClusterEvents,
    /// Per node: its incarnation, so work in flight on a node that went down (a hung host
    /// answers nothing) is failed instead of waiting for it.
    incarnations: Vec<watch::Sender<u64>>,
    /// Paused from the admin console: transactions in flight finish, new ones wait.
    paused: watch::Sender<bool>,
    /// Mirror of `paused` read on the hot path without a lock.
    paused_now: std::sync::atomic::AtomicBool,
    /// Per node: failed probes and connections that client traffic could not make.
    errors: Vec<std::sync::atomic::AtomicU64>,
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
                lsn: 0,
                probed_at: None,
                prev_lsn: 0,
                prev_probed_at: None,
                receive_lsn: 0,
                timeline: None,
                lag_bytes: None,
                lag_seconds: None,
                lagging: false,
                kept_by_floor: false,
                fenced: false,
                effective_weight: n.weight.saturating_mul(100),
                serving_since: None,
                drained: false,
            })
            .collect();
        ClusterState {
            name: config.name.clone(),
            current: ArcSwap::from_pointee(ClusterSnapshot {
                generation: 0,
                routing_generation: 0,
                nodes,
                split_brain: false,
            }),
            writer: Mutex::new(()),
            policy: LagPolicy::from_config(config),
            fencing: config.failover.mode != crate::config::FailoverMode::Off,
            failover_mode: config.failover.mode,
            changes: watch::channel(0).0,
            probe_now: config.nodes.iter().map(|_| Notify::new()).collect(),
            events: ClusterEvents::default(),
            paused: watch::channel(false).0,
            paused_now: std::sync::atomic::AtomicBool::new(false),
            errors: config
                .nodes
                .iter()
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
            incarnations: config.nodes.iter().map(|_| watch::channel(0).0).collect(),
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

    /// A receiver that changes when node `id` goes down (its incarnation moves on).
    pub fn watch_node(&self, id: usize) -> watch::Receiver<u64> {
        match self.incarnations.get(id) {
            Some(tx) => tx.subscribe(),
            None => watch::channel(0).1,
        }
    }

    /// A receiver that sees every published change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Applies `change` to a copy of the node list, derives lag, floor, slow start and split
    /// brain from it, and publishes it if anything changed.
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
        if self.fencing {
            super::fence::fence_stale_primaries(&mut nodes, self);
        }
        lag::derive(&self.policy, &mut nodes, &old.nodes, self);
        let primaries = nodes
            .iter()
            .filter(|n| n.role == Some(Role::Primary) && n.usable() && !n.fenced)
            .count();
        let split_brain = primaries > 1;
        if split_brain != old.split_brain {
            let claimants: Vec<&str> = nodes
                .iter()
                .filter(|n| n.role == Some(Role::Primary) && n.usable() && !n.fenced)
                .map(|n| n.name.as_str())
                .collect();
            let (o, n, why) = if split_brain {
                (
                    "one primary",
                    "split brain",
                    format!("nodes {} all claim to be primary: writes are refused until one of them is demoted or fenced", claimants.join(", ")),
                )
            } else {
                ("split brain", "resolved", "one primary left".to_string())
            };
            self.record(EventKind::SplitBrain, "", o, n, &why);
        }
        let routing_changed = split_brain != old.split_brain
            || nodes
                .iter()
                .zip(old.nodes.iter())
                .any(|(a, b)| routing_key(a) != routing_key(b));
        let changed = routing_changed
            || nodes.iter().zip(old.nodes.iter()).any(|(a, b)| {
                a.lsn != b.lsn
                    || a.receive_lsn != b.receive_lsn
                    || a.lag_bytes != b.lag_bytes
                    || a.lag_seconds != b.lag_seconds
                    || a.timeline != b.timeline
            });
        if !changed {
            return old;
        }
        let next = Arc::new(ClusterSnapshot {
            generation: old.generation + 1,
            routing_generation: old.routing_generation + u64::from(routing_changed),
            nodes,
            split_brain,
        });
        self.current.store(next.clone());
        self.changes.send_replace(next.generation);
        for (n, tx) in next.nodes.iter().zip(&self.incarnations) {
            if *tx.borrow() != n.incarnation {
                tx.send_replace(n.incarnation);
            }
        }
        next
    }

    /// Pauses (true) or resumes (false) new work; false when it already was so.
    pub fn set_paused(&self, paused: bool) -> bool {
        self.paused_now
            .store(paused, std::sync::atomic::Ordering::Release);
        self.paused
            .send_if_modified(|p| std::mem::replace(p, paused) != paused)
    }

    /// True while paused (one atomic load).
    pub fn is_paused(&self) -> bool {
        self.paused_now.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits while the cluster is paused, at most `limit`; false when still paused then.
    pub async fn wait_unpaused(&self, limit: std::time::Duration) -> bool {
        let mut rx = self.paused.subscribe();
        let waited = tokio::time::timeout(limit, rx.wait_for(|p| !*p)).await;
        matches!(waited, Ok(Ok(_)))
    }

    /// Logs and counts a state change of this cluster.
    pub fn record(&self, kind: EventKind, node: &str, old: &str, new: &str, evidence: &str) {
        self.events.record(Event {
            kind,
            cluster: &self.name,
            node,
            old,
            new,
            evidence,
        });
    }

    /// Passive check: client traffic could not reach `id`; take it out until probes readmit it.
    pub fn report_failure(&self, id: usize, why: &str) {
        self.count_error(id);
        self.update(|nodes| {
            if let Some(n) = nodes.get_mut(id) {
                if n.health != Health::Down {
                    let evidence = format!("client traffic could not reach it: {why}");
                    self.record(
                        EventKind::NodeDown,
                        &n.name,
                        n.health.name(),
                        "down",
                        &evidence,
                    );
                    n.health = Health::Down;
                }
            }
        });
    }

    /// Counts a failed probe or connection of node `id` (SHOW NODES).
    pub fn count_error(&self, id: usize) {
        if let Some(e) = self.errors.get(id) {
            e.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Failed probes and connections of node `id` since start.
    pub fn errors(&self, id: usize) -> u64 {
        self.errors
            .get(id)
            .map_or(0, |e| e.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Asks the monitors of the replicas to probe now.
    pub fn probe_replicas_now(&self) {
        let snap = self.load();
        for n in snap.nodes.iter().filter(|n| n.role == Some(Role::Replica)) {
            if let Some(notify) = self.probe_now.get(n.id) {
                notify.notify_one();
            }
        }
    }

    /// Releases a fenced node (an operator re-adds it).
    pub fn unfence(&self, id: usize, why: &str) {
        self.update(|nodes| {
            if let Some(n) = nodes.get_mut(id) {
                if n.fenced {
                    self.record(EventKind::Unfenced, &n.name, "fenced", "unfenced", why);
                    n.fenced = false;
                }
            }
        });
    }
}

/// The fields routing decisions read.
fn routing_key(n: &NodeState) -> (bool, Health, Option<Role>, u32, u32, bool, bool, bool) {
    (
        n.drained,
        n.health,
        n.role,
        n.weight,
        n.effective_weight,
        n.lagging,
        n.kept_by_floor,
        n.fenced,
    )
}
