//! One cluster's metric handles. Per-statement counters are built once per label combination
//! (lazily, on first use) and kept here; the front ends only increment through them. Gauges
//! derived from the published snapshot, the pools and the event counters are refreshed when
//! `/metrics` is scraped, never per query.

use super::labels::{role_index, ErrorKind, ReasonLabel, StatementKind, ROLES};
use super::names;
use crate::cluster::events::{EventKind, ALL_KINDS};
use crate::cluster::{ClusterSnapshot, ClusterState, Health, Role};
use crate::config::{ClusterConfig, Protocol};
use crate::pool::{PoolMetrics, PoolStats};
use crate::route::Classification;
use metrics::{Counter, Gauge, Histogram};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Instant;

const KINDS: usize = StatementKind::ALL.len();

/// Statements of one client round trip, by kind, and the reason that routed it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    kinds: [u32; KINDS],
    /// The reason that decided the route.
    pub reason: ReasonLabel,
    /// Digest key of the round trip's first statement (0: none), for SHOW QUERIES.
    pub digest: u64,
}

impl Tally {
    /// Counts one statement of kind `k`.
    pub fn add(&mut self, k: StatementKind) {
        let n = &mut self.kinds[k as usize];
        *n = n.saturating_add(1);
    }

    /// Counts every statement of a classified text; the reason is the classification's.
    pub fn of(class: &Classification) -> Tally {
        let mut t = Tally {
            reason: class.reason.into(),
            ..Tally::default()
        };
        for st in &class.statements {
            t.add(StatementKind::of(st.intent, st.reason));
        }
        t
    }

    /// Adds `other`'s statements; keeps this reason unless it has none.
    pub fn merge(&mut self, other: Tally) {
        for (a, b) in self.kinds.iter_mut().zip(other.kinds) {
            *a = a.saturating_add(b);
        }
        if self.reason == ReasonLabel::None {
            self.reason = other.reason;
        }
        if self.digest == 0 {
            self.digest = other.digest;
        }
    }

    /// True when no statement was counted.
    pub fn is_empty(&self) -> bool {
        self.kinds.iter().all(|n| *n == 0)
    }

    /// Statements of kind `k`.
    pub fn count(&self, k: StatementKind) -> u32 {
        self.kinds[k as usize]
    }
}

/// Gauges of one node, refreshed at scrape time.
struct NodeGauges {
    /// up, down, unknown.
    state: [Gauge; 3],
    /// primary, replica, unknown (as `ROLES`).
    role: [Gauge; 3],
    serving: Gauge,
    /// Registered once the lag is first known (a primary never shows one).
    lag_amount: OnceLock<Gauge>,
    lag_seconds: OnceLock<Gauge>,
    pool_idle: Gauge,
    pool_in_use: Gauge,
    pool_waiting: Gauge,
    pool_max: Gauge,
}

/// Handles refreshed at scrape time (only built when metrics are on).
struct ScrapeHandles {
    nodes: Vec<NodeGauges>,
    ready: Gauge,
    /// started, succeeded, failed.
    failovers: [Counter; 3],
    /// One per `ALL_KINDS`.
    changes: Vec<Counter>,
}

/// Health label values, in `NodeGauges::state` order.
const HEALTH: [&str; 3] = ["up", "down", "unknown"];

fn health_index(h: Health) -> usize {
    match h {
        Health::Up => 0,
        Health::Down => 1,
        Health::Unknown => 2,
    }
}

/// The metric handles of one cluster, shared by its sessions, pools and the HTTP endpoint.
pub struct ClusterMetrics {
    enabled: bool,
    cluster: String,
    protocol: Protocol,
    nodes: Vec<String>,
    /// `[node][role][kind]`, flattened.
    queries: Box<[OnceLock<Counter>]>,
    /// By `ReasonLabel::index`.
    decisions: Box<[OnceLock<Counter>]>,
    /// By role index.
    latency: [OnceLock<Histogram>; 3],
    /// By `ErrorKind` (registered at once, so every kind shows 0 before its first error).
    errors: Vec<Counter>,
    clients: Gauge,
    pool: Vec<PoolMetrics>,
    scrape: Option<ScrapeHandles>,
    /// Statements by digest, for the admin console (SHOW QUERIES).
    pub digests: super::digest::DigestStats,
    /// `[node][role][kind]` totals for the admin console (SHOW STATS), kept whether or not
    /// metrics are on: one relaxed atomic add per kind of a round trip.
    totals: Box<[AtomicU64]>,
    /// By role: round trips timed and their microseconds (metrics on only: no clock else).
    timed: [AtomicU64; 3],
    time_us: [AtomicU64; 3],
    /// By `ErrorKind`, for the console.
    error_totals: Box<[AtomicU64]>,
}

/// One row of the console's `stats` table: a node in a role, its statements by kind.
#[derive(Debug, Clone)]
pub struct StatsRow {
    /// Node name.
    pub node: String,
    /// "primary", "replica" or "unknown" (the role when the statements ran).
    pub role: &'static str,
    /// Statements by kind, as `StatementKind::ALL` orders them.
    pub kinds: Vec<(&'static str, u64)>,
    /// Mean round-trip latency in this role, when metrics are on and any was timed.
    pub mean_latency_ms: Option<f64>,
}

impl std::fmt::Debug for ClusterMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterMetrics")
            .field("cluster", &self.cluster)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl ClusterMetrics {
    /// Handles for `config`'s cluster; with `enabled` false every handle is a no-op and no
    /// clock is read for metrics.
    pub fn new(config: &ClusterConfig, enabled: bool) -> Self {
        let cluster = config.name.clone();
        let nodes: Vec<String> = config
            .nodes
            .iter()
            .map(|n| n.name.clone().unwrap_or_else(|| n.addr.clone()))
            .collect();
        let protocol = config.protocol;
        let c = || cluster.clone();
        let errors: Vec<Counter> = ErrorKind::ALL
            .iter()
            .map(|k| match enabled {
                true => metrics::counter!(names::ERRORS, "cluster" => c(), "kind" => k.as_str()),
                false => Counter::noop(),
            })
            .collect();
        let protocol_name = match protocol {
            Protocol::Postgres => "postgres",
            Protocol::Mysql => "mysql",
        };
        let clients = match enabled {
            true => metrics::gauge!(names::CLIENTS, "cluster" => c(), "protocol" => protocol_name),
            false => Gauge::noop(),
        };
        let pool = nodes
            .iter()
            .map(|node| match enabled {
                true => PoolMetrics {
                    wait_seconds: metrics::histogram!(names::POOL_WAIT, "cluster" => c(), "node" => node.clone()),
                    timeouts: errors_handle(&errors, ErrorKind::PoolTimeout),
                },
                false => PoolMetrics::default(),
            })
            .collect();
        let scrape = enabled.then(|| ScrapeHandles::new(&cluster, &nodes));
        ClusterMetrics {
            enabled,
            queries: (0..nodes.len() * ROLES.len() * KINDS)
                .map(|_| OnceLock::new())
                .collect(),
            decisions: (0..ReasonLabel::COUNT).map(|_| OnceLock::new()).collect(),
            latency: Default::default(),
            errors,
            clients,
            pool,
            scrape,
            totals: (0..nodes.len() * ROLES.len() * KINDS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            timed: Default::default(),
            time_us: Default::default(),
            digests: Default::default(),
            error_totals: ErrorKind::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            cluster,
            protocol,
            nodes,
        }
    }

    /// Statements per node and role, for the admin console (rows with none are left out).
    pub fn stats(&self) -> Vec<StatsRow> {
        let mut rows = Vec::new();
        for (n, node) in self.nodes.iter().enumerate() {
            for (r, role) in ROLES.iter().enumerate() {
                let row = (n * ROLES.len() + r) * KINDS;
                let kinds: Vec<(&'static str, u64)> = StatementKind::ALL
                    .iter()
                    .enumerate()
                    .map(|(k, kind)| {
                        let v = self.totals.get(row + k).map_or(0, |a| a.load(Relaxed));
                        (kind.as_str(), v)
                    })
                    .collect();
                if kinds.iter().all(|(_, v)| *v == 0) {
                    continue;
                }
                let timed = self.timed[r].load(Relaxed);
                let mean_latency_ms = (timed > 0)
                    .then(|| self.time_us[r].load(Relaxed) as f64 / timed as f64 / 1000.0);
                rows.push(StatsRow {
                    node: node.clone(),
                    role,
                    kinds,
                    mean_latency_ms,
                });
            }
        }
        rows
    }

    /// Errors sent to clients, by kind, for the admin console.
    pub fn error_totals(&self) -> Vec<(&'static str, u64)> {
        ErrorKind::ALL
            .iter()
            .zip(self.error_totals.iter())
            .map(|(k, n)| (k.as_str(), n.load(Relaxed)))
            .collect()
    }

    /// True when metrics are recorded.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// What the cluster's pools report to, one per node.
    pub fn pool_metrics(&self) -> Vec<PoolMetrics> {
        self.pool.clone()
    }

    /// The time now when metrics are on (for the latency histogram), else None: no clock read.
    #[inline]
    pub fn clock(&self) -> Option<Instant> {
        self.enabled.then(Instant::now)
    }

    /// Counts an error sent to a client.
    pub fn error(&self, kind: ErrorKind) {
        if let Some(c) = self.errors.get(kind as usize) {
            c.increment(1);
        }
        if let Some(n) = self.error_totals.get(kind as usize) {
            n.fetch_add(1, Relaxed);
        }
    }

    /// Counts a connected client until the guard is dropped.
    pub fn client_connected(&self) -> ClientGuard {
        self.clients.increment(1.0);
        ClientGuard(self.clients.clone())
    }

    /// Records a completed round trip on `node` (in `role`): its statements by kind, its
    /// routing reason, and its latency when both instants are known.
    pub fn record(
        &self,
        node: usize,
        role: Option<Role>,
        t: &Tally,
        sent: Option<Instant>,
        done: Option<Instant>,
    ) {
        if t.is_empty() || node >= self.nodes.len() {
            return;
        }
        let role = role_index(role);
        let row = (node * ROLES.len() + role) * KINDS;
        for (k, n) in t.kinds.iter().enumerate() {
            if *n > 0 {
                if let Some(total) = self.totals.get(row + k) {
                    total.fetch_add(u64::from(*n), Relaxed);
                }
                self.query_counter(row + k, node, role, k)
                    .increment(u64::from(*n));
            }
        }
        self.decision_counter(t.reason.index()).increment(1);
        let took = sent.zip(done).map(|(s, d)| d.saturating_duration_since(s));
        let statements: u64 = t.kinds.iter().map(|n| u64::from(*n)).sum();
        self.digests.record(t.digest, role, statements, took);
        if let Some(took) = took {
            self.timed[role].fetch_add(1, Relaxed);
            self.time_us[role]
                .fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Relaxed);
            self.latency_histogram(role).record(took);
        }
    }

    fn query_counter(&self, i: usize, node: usize, role: usize, kind: usize) -> &Counter {
        self.queries[i].get_or_init(|| match self.enabled {
            true => metrics::counter!(
                names::QUERIES,
                "cluster" => self.cluster.clone(),
                "node" => self.nodes[node].clone(),
                "role" => ROLES[role],
                "kind" => StatementKind::ALL[kind].as_str()
            ),
            false => Counter::noop(),
        })
    }

    fn decision_counter(&self, i: usize) -> &Counter {
        self.decisions[i].get_or_init(|| match self.enabled {
            true => metrics::counter!(
                names::ROUTE_DECISIONS,
                "cluster" => self.cluster.clone(),
                "reason" => ReasonLabel::name_of(i)
            ),
            false => Counter::noop(),
        })
    }

    fn latency_histogram(&self, role: usize) -> &Histogram {
        self.latency[role].get_or_init(|| match self.enabled {
            true => metrics::histogram!(
                names::QUERY_DURATION,
                "cluster" => self.cluster.clone(),
                "role" => ROLES[role]
            ),
            false => Histogram::noop(),
        })
    }

    /// Refreshes the gauges and event counters from the latest snapshot, the pools' counts
    /// and the event counters; returns whether the cluster is ready (see [`readiness`]).
    pub fn refresh(&self, state: &ClusterState, pools: &[PoolStats]) -> Result<(), &'static str> {
        let snap = state.load_full();
        let ready = readiness(&snap);
        let Some(h) = &self.scrape else {
            return ready;
        };
        h.ready.set(if ready.is_ok() { 1.0 } else { 0.0 });
        let primary = snap.primary().map(|p| p.id);
        for (n, g) in snap.nodes.iter().zip(&h.nodes) {
            let health = health_index(n.health);
            for (i, s) in g.state.iter().enumerate() {
                s.set(if i == health { 1.0 } else { 0.0 });
            }
            let role = role_index(n.role);
            for (i, r) in g.role.iter().enumerate() {
                r.set(if i == role { 1.0 } else { 0.0 });
            }
            let serving = primary == Some(n.id) || n.serves_reads();
            g.serving.set(if serving { 1.0 } else { 0.0 });
            let amount_name = match self.protocol {
                Protocol::Postgres => names::LAG_BYTES,
                Protocol::Mysql => names::LAG_TRANSACTIONS,
            };
            set_lag(
                &g.lag_amount,
                n.lag_bytes.map(|b| b as f64),
                || metrics::gauge!(amount_name, "cluster" => self.cluster.clone(), "node" => n.name.clone()),
            );
            let seconds = n
                .lag_seconds
                .map(|s| if s == f64::MAX { f64::INFINITY } else { s });
            set_lag(
                &g.lag_seconds,
                seconds,
                || metrics::gauge!(names::LAG_SECONDS, "cluster" => self.cluster.clone(), "node" => n.name.clone()),
            );
            let p = pools.get(n.id).copied().unwrap_or_default();
            g.pool_idle.set(p.idle as f64);
            g.pool_in_use.set(p.in_use as f64);
            g.pool_waiting.set(p.waiting as f64);
            g.pool_max.set(p.max as f64);
        }
        let events = &state.events;
        for (c, kind) in h.failovers.iter().zip([
            EventKind::FailoverStarted,
            EventKind::FailoverSucceeded,
            EventKind::FailoverFailed,
        ]) {
            c.absolute(events.count(kind));
        }
        for (c, kind) in h.changes.iter().zip(ALL_KINDS) {
            c.absolute(events.count(kind));
        }
        ready
    }
}

/// Sets a lag gauge: the value when known; NaN once registered and unknown again.
fn set_lag(slot: &OnceLock<Gauge>, value: Option<f64>, register: impl FnOnce() -> Gauge) {
    match (value, slot.get()) {
        (Some(v), _) => slot.get_or_init(register).set(v),
        (None, Some(g)) => g.set(f64::NAN),
        (None, None) => {}
    }
}

fn errors_handle(errors: &[Counter], kind: ErrorKind) -> Counter {
    errors
        .get(kind as usize)
        .cloned()
        .unwrap_or_else(Counter::noop)
}

impl ScrapeHandles {
    fn new(cluster: &str, nodes: &[String]) -> Self {
        let c = || cluster.to_string();
        let nodes = nodes
            .iter()
            .map(|node| {
                let n = || node.clone();
                NodeGauges {
                    state: HEALTH.map(|s| {
                        metrics::gauge!(names::NODE_STATE, "cluster" => c(), "node" => n(), "state" => s)
                    }),
                    role: ROLES.map(|r| {
                        metrics::gauge!(names::NODE_ROLE, "cluster" => c(), "node" => n(), "role" => r)
                    }),
                    serving: metrics::gauge!(names::NODE_SERVING, "cluster" => c(), "node" => n()),
                    lag_amount: OnceLock::new(),
                    lag_seconds: OnceLock::new(),
                    pool_idle: metrics::gauge!(names::POOL_CONNECTIONS, "cluster" => c(), "node" => n(), "state" => "idle"),
                    pool_in_use: metrics::gauge!(names::POOL_CONNECTIONS, "cluster" => c(), "node" => n(), "state" => "in_use"),
                    pool_waiting: metrics::gauge!(names::POOL_WAITING, "cluster" => c(), "node" => n()),
                    pool_max: metrics::gauge!(names::POOL_MAX, "cluster" => c(), "node" => n()),
                }
            })
            .collect();
        ScrapeHandles {
            nodes,
            ready: metrics::gauge!(names::CLUSTER_READY, "cluster" => c()),
            failovers: ["started", "succeeded", "failed"]
                .map(|r| metrics::counter!(names::FAILOVERS, "cluster" => c(), "result" => r)),
            changes: ALL_KINDS
                .iter()
                .map(|k| metrics::counter!(names::STATE_CHANGES, "cluster" => c(), "event" => k.name()))
                .collect(),
        }
    }
}

/// Decrements the connected-clients gauge when the client's task ends.
pub struct ClientGuard(Gauge);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Whether a cluster can serve: it has a primary that answers probes, or a replica that
/// answers probes and serves reads. Err says why not.
pub fn readiness(snap: &ClusterSnapshot) -> Result<(), &'static str> {
    let primary = snap.primary().is_some_and(|p| p.health == Health::Up);
    let reads = snap
        .nodes
        .iter()
        .any(|n| n.health == Health::Up && n.serves_reads());
    if primary || reads {
        Ok(())
    } else if snap.split_brain {
        Err("two nodes claim to be primary and no replica serves reads")
    } else {
        Err("no primary and no replica serving reads")
    }
}
