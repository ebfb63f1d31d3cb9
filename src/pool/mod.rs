//! Bounded pools of server connections per (node, user, database): a checkout waits for a free
//! slot up to a timeout; idle connections are reused, aged out, and kept at a minimum.

mod error;

pub use error::PoolError;

use crate::backend::ServerConn;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Identifies a pool: connections are only interchangeable within one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// Node id.
    pub node: usize,
    /// Login.
    pub user: String,
    /// Database.
    pub database: String,
}

/// Limits shared by every pool of a cluster.
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    /// Most connections per key (open, idle or in use).
    pub size: usize,
    /// Connections kept open per key once it exists.
    pub min_size: usize,
    /// Longest wait for a free slot.
    pub timeout: Duration,
    /// Idle connections older than this are closed.
    pub idle_timeout: Duration,
    /// Connections older than this are closed when next idle.
    pub lifetime: Duration,
}

/// What a pool needs to know of the server connections it keeps (PostgreSQL's by default;
/// the MySQL side brings its own).
pub trait Pooled: Send + 'static {
    /// The node's incarnation when the connection was opened.
    fn incarnation(&self) -> u64;
    /// When the connection was opened.
    fn created(&self) -> Instant;
    /// When the connection was last returned to its pool.
    fn since(&self) -> Instant;
    /// Records a return to the pool.
    fn set_since(&mut self, at: Instant);
    /// True when an idle connection was closed by the server or has unsolicited data.
    fn looks_closed(&self) -> bool;
}

impl Pooled for ServerConn {
    fn incarnation(&self) -> u64 {
        self.incarnation
    }
    fn created(&self) -> Instant {
        self.created
    }
    fn since(&self) -> Instant {
        self.since
    }
    fn set_since(&mut self, at: Instant) {
        self.since = at;
    }
    fn looks_closed(&self) -> bool {
        ServerConn::looks_closed(self)
    }
}

/// Where a node's pools report to the metrics (no-op handles by default).
#[derive(Clone)]
pub struct PoolMetrics {
    /// How long checkouts that found the pool busy waited.
    pub wait_seconds: metrics::Histogram,
    /// Checkouts that timed out.
    pub timeouts: metrics::Counter,
}

impl Default for PoolMetrics {
    fn default() -> Self {
        PoolMetrics {
            wait_seconds: metrics::Histogram::noop(),
            timeouts: metrics::Counter::noop(),
        }
    }
}

/// A node's pools summed up, for the metrics endpoint and the admin console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Idle connections.
    pub idle: usize,
    /// Connections lent to clients (or being opened for them).
    pub in_use: usize,
    /// Checkouts waiting for a free slot now.
    pub waiting: usize,
    /// Most connections the pools may open (pool size times the number of pools).
    pub max: usize,
}

/// One pool: a semaphore with one permit per open connection (idle or in use), so the pool
/// never holds more than `size` connections, and a stack of idle ones with their permits.
pub struct NodePool<C: Pooled = ServerConn> {
    /// What the pool serves.
    pub key: PoolKey,
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<(Box<C>, OwnedSemaphorePermit)>>,
    returned: Notify,
    limits: PoolLimits,
    /// Checkouts waiting now (only the slow path touches it).
    waiting: AtomicUsize,
    metrics: PoolMetrics,
}

/// A checkout that had to wait: counted while it waits; its wait is recorded when it ends.
struct Waiting<'a> {
    waiting: &'a AtomicUsize,
    metrics: &'a PoolMetrics,
    since: tokio::time::Instant,
}

impl<'a> Waiting<'a> {
    fn start(waiting: &'a AtomicUsize, metrics: &'a PoolMetrics) -> Self {
        waiting.fetch_add(1, Ordering::Relaxed);
        Waiting {
            waiting,
            metrics,
            since: tokio::time::Instant::now(),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        self.metrics.wait_seconds.record(self.since.elapsed());
    }
}

/// An idle connection taken from a pool.
pub struct Idle<C: Pooled = ServerConn> {
    /// The connection (boxed: it moves through several calls on every checkout).
    pub conn: Box<C>,
    /// How long it sat in the pool.
    pub idle_for: Duration,
}

/// The right to hold one connection of a pool; dropping it (with its connection) frees the slot.
pub struct Lease<C: Pooled = ServerConn> {
    permit: OwnedSemaphorePermit,
    pool: Arc<NodePool<C>>,
}

impl<C: Pooled> Lease<C> {
    /// The pool this lease belongs to.
    pub fn pool(&self) -> &Arc<NodePool<C>> {
        &self.pool
    }

    /// Returns a clean, idle connection to its pool, keeping its slot, and wakes one waiter.
    pub fn release(self, mut conn: Box<C>) {
        conn.set_since(Instant::now());
        let pool = self.pool;
        pool.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((conn, self.permit));
        pool.returned.notify_one();
    }
}

impl<C: Pooled> NodePool<C> {
    fn usable(&self, conn: &C, incarnation: u64, now: Instant) -> bool {
        conn.incarnation() == incarnation
            && now.saturating_duration_since(conn.since()) < self.limits.idle_timeout
            && now.saturating_duration_since(conn.created()) < self.limits.lifetime
            && !conn.looks_closed()
    }

    fn pop_idle(self: &Arc<Self>, incarnation: u64) -> Option<(Lease<C>, Idle<C>)> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.is_empty() {
            return None;
        }
        // One clock read per checkout: it runs once per transaction.
        let now = Instant::now();
        while let Some((conn, permit)) = idle.pop() {
            if self.usable(&conn, incarnation, now) {
                let lease = Lease {
                    permit,
                    pool: self.clone(),
                };
                let idle_for = now.saturating_duration_since(conn.since());
                return Some((lease, Idle { conn, idle_for }));
            }
            // Dropping a stale connection frees its slot.
        }
        None
    }

    /// Gets an idle connection of the node's current incarnation, or a free slot to open a new
    /// one (then the connection is None), waiting up to the pool timeout for either.
    pub async fn checkout(
        self: &Arc<Self>,
        incarnation: u64,
    ) -> Result<(Lease<C>, Option<Idle<C>>), PoolError> {
        // Read the clock only once a wait is needed: most checkouts find a connection at once.
        let mut deadline = None;
        let mut waiting: Option<Waiting<'_>> = None;
        loop {
            let returned = self.returned.notified();
            if let Some((lease, idle)) = self.pop_idle(incarnation) {
                return Ok((lease, Some(idle)));
            }
            if let Ok(permit) = self.slots.clone().try_acquire_owned() {
                let lease = Lease {
                    permit,
                    pool: self.clone(),
                };
                return Ok((lease, None));
            }
            let since = waiting
                .get_or_insert_with(|| Waiting::start(&self.waiting, &self.metrics))
                .since;
            tokio::select! {
                _ = returned => {}
                p = self.slots.clone().acquire_owned() => {
                    let permit = p.map_err(|_| PoolError::Closed)?;
                    return Ok((Lease { permit, pool: self.clone() }, None));
                }
                _ = tokio::time::sleep_until(*deadline.get_or_insert(since + self.limits.timeout)) => {
                    self.metrics.timeouts.increment(1);
                    return Err(PoolError::Timeout {
                        node: self.key.node,
                        user: self.key.user.clone(),
                        database: self.key.database.clone(),
                        size: self.limits.size,
                        waited: self.limits.timeout,
                    });
                }
            }
        }
    }

    /// Closes idle connections that aged out or belong to an old incarnation; returns how many
    /// more connections the pool needs to reach its minimum size.
    pub fn trim(&self, incarnation: u64) -> usize {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        idle.retain(|(c, _)| self.usable(c, incarnation, now));
        let open = self.limits.size - self.slots.available_permits();
        self.limits.min_size.saturating_sub(open)
    }

    /// Takes a free slot without waiting, for topping the pool up to its minimum.
    pub fn try_lease(self: &Arc<Self>) -> Option<Lease<C>> {
        let permit = self.slots.clone().try_acquire_owned().ok()?;
        Some(Lease {
            permit,
            pool: self.clone(),
        })
    }

    /// Drops every idle connection (after the node failed).
    pub fn clear(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Each idle connection: when it was opened and when it was last returned.
    pub fn idle_ages(&self) -> Vec<(Instant, Instant)> {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(c, _)| (c.created(), c.since()))
            .collect()
    }

    /// (idle, in use) connection counts.
    pub fn counts(&self) -> (usize, usize) {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).len();
        let open = self.limits.size - self.slots.available_permits();
        (idle, open.saturating_sub(idle))
    }

    /// Checkouts waiting for a free slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// Every pool of a cluster, created on first use. The map is locked only when a session
/// starts (each session keeps its own handles) and by the maintenance task.
pub struct Pools<C: Pooled = ServerConn> {
    pools: Mutex<HashMap<PoolKey, Arc<NodePool<C>>>>,
    limits: PoolLimits,
    /// Per node id; missing ones report nowhere.
    metrics: Vec<PoolMetrics>,
}

impl<C: Pooled> Pools<C> {
    /// No pools yet; each will follow `limits`.
    pub fn new(limits: PoolLimits) -> Self {
        Pools {
            pools: Mutex::new(HashMap::new()),
            limits,
            metrics: Vec::new(),
        }
    }

    /// Reports the pools of node `i` to `metrics[i]` (pools created from now on).
    pub fn observe(&mut self, metrics: Vec<PoolMetrics>) {
        self.metrics = metrics;
    }

    /// The pool for `key`, created if needed.
    pub fn get(&self, key: PoolKey) -> Arc<NodePool<C>> {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(NodePool {
                    metrics: self.metrics.get(key.node).cloned().unwrap_or_default(),
                    key,
                    slots: Arc::new(Semaphore::new(self.limits.size)),
                    idle: Mutex::new(Vec::new()),
                    returned: Notify::new(),
                    limits: self.limits,
                    waiting: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// Every pool, for maintenance and reporting.
    pub fn all(&self) -> Vec<Arc<NodePool<C>>> {
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Drops every idle connection to `node` (after it failed).
    pub fn forget_node(&self, node: usize) {
        for p in self.all() {
            if p.key.node == node {
                p.clear();
            }
        }
    }

    /// Connection counts of every node's pools, indexed by node id (`nodes` of them).
    pub fn stats(&self, nodes: usize) -> Vec<PoolStats> {
        let mut out = vec![PoolStats::default(); nodes];
        for p in self.all() {
            let Some(s) = out.get_mut(p.key.node) else {
                continue;
            };
            let (idle, in_use) = p.counts();
            s.idle += idle;
            s.in_use += in_use;
            s.waiting += p.waiting();
            s.max += self.limits.size;
        }
        out
    }

    /// Idle connections over all pools, for tests and the admin console.
    pub fn idle_count(&self) -> usize {
        self.all().iter().map(|p| p.counts().0).sum()
    }
}
