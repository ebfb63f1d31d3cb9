//! Idle server connections kept per (node, user, database) for reuse by later clients.

use crate::backend::ServerConn;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Idle connections by key. Touched only when a session opens a server connection or ends,
/// never per statement, so one mutex is enough.
pub struct Pool {
    idle: Mutex<HashMap<PoolKey, Vec<ServerConn>>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl Pool {
    /// An empty pool keeping at most `max_idle` idle connections per key.
    pub fn new(max_idle: usize, idle_timeout: Duration) -> Self {
        Pool {
            idle: Mutex::new(HashMap::new()),
            max_idle,
            idle_timeout,
        }
    }

    /// Takes an idle connection for `key` that has not outlived the idle timeout and was
    /// opened in the node's current `incarnation`.
    pub fn take(&self, key: &PoolKey, incarnation: u64) -> Option<ServerConn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(key)?;
        while let Some(conn) = list.pop() {
            if conn.since.elapsed() < self.idle_timeout && conn.incarnation == incarnation {
                return Some(conn);
            }
        }
        None
    }

    /// Returns a clean, idle connection for reuse; drops it when the pool is full.
    pub fn put(&self, key: PoolKey, mut conn: ServerConn) {
        conn.since = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(key).or_default();
        if list.len() < self.max_idle {
            list.push(conn);
        }
    }

    /// Drops every idle connection to `node` (after it failed).
    pub fn forget_node(&self, node: usize) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|k, _| k.node != node);
    }

    /// Number of idle connections, for tests and the admin console.
    pub fn idle_count(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.values().map(Vec::len).sum()
    }
}
