//! Per-digest statement counters for the admin console (SHOW QUERIES): calls, where they ran
//! and their time, keyed by a hash of the normalised text. Bounded: past `MAX_DIGESTS`
//! distinct digests, new ones are counted under one "(other digests)" entry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Most distinct digests kept per cluster.
pub const MAX_DIGESTS: usize = 5000;
const SHARDS: usize = 16;
/// Key of the catch-all entry.
const OTHER: u64 = 1;

#[derive(Debug, Default, Clone)]
struct Entry {
    text: Box<str>,
    calls: u64,
    /// By role index (primary, replica, unknown).
    by_role: [u64; 3],
    timed: u64,
    time_us: u64,
}

/// One row of the console's `queries` table.
#[derive(Debug, Clone)]
pub struct DigestRow {
    /// The normalised statement text.
    pub digest: String,
    /// Statements run.
    pub calls: u64,
    /// Of them on the primary.
    pub primary: u64,
    /// Of them on a replica.
    pub replica: u64,
    /// Total round-trip time in milliseconds, when timed (metrics on).
    pub total_ms: Option<f64>,
    /// Mean of the timed round trips.
    pub mean_ms: Option<f64>,
}

/// The digests of one cluster.
pub struct DigestStats {
    shards: [Mutex<HashMap<u64, Entry>>; SHARDS],
    distinct: std::sync::atomic::AtomicUsize,
    /// `[general] query_digests`.
    enabled: std::sync::atomic::AtomicBool,
}

impl Default for DigestStats {
    fn default() -> Self {
        DigestStats {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            distinct: Default::default(),
            enabled: std::sync::atomic::AtomicBool::new(true),
        }
    }
}

impl DigestStats {
    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.shards[(key % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Turns digest counting on or off (`[general] query_digests`).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The digest key of `sql` (its normalised text is built and kept only the first time);
    /// 0 when digests are off.
    pub fn key(&self, sql: &str, mysql: bool) -> u64 {
        if !self.enabled.load(std::sync::atomic::Ordering::Relaxed) {
            return 0;
        }
        let key = crate::route::digest::hash(sql, mysql);
        let mut shard = self.shard(key);
        if shard.contains_key(&key) {
            return key;
        }
        let text = crate::route::digest::normalize(sql, mysql);
        use std::sync::atomic::Ordering::Relaxed;
        if self.distinct.fetch_add(1, Relaxed) >= MAX_DIGESTS {
            self.distinct.fetch_sub(1, Relaxed);
            drop(shard);
            let mut other = self.shard(OTHER);
            other.entry(OTHER).or_insert_with(|| Entry {
                text: "(other digests)".into(),
                ..Entry::default()
            });
            return OTHER;
        }
        shard.insert(
            key,
            Entry {
                text: text.into(),
                ..Entry::default()
            },
        );
        key
    }

    /// Counts `statements` of digest `key` run in role `role` (index), taking `took` when timed.
    pub fn record(&self, key: u64, role: usize, statements: u64, took: Option<Duration>) {
        if key == 0 {
            return;
        }
        let mut shard = self.shard(key);
        if let Some(e) = shard.get_mut(&key) {
            e.calls += statements;
            if let Some(r) = e.by_role.get_mut(role) {
                *r += statements;
            }
            if let Some(t) = took {
                e.timed += 1;
                e.time_us += u64::try_from(t.as_micros()).unwrap_or(u64::MAX);
            }
        }
    }

    /// Every digest that ran.
    pub fn rows(&self) -> Vec<DigestRow> {
        let mut rows = Vec::new();
        for s in &self.shards {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            for e in s.values().filter(|e| e.calls > 0) {
                let total = (e.timed > 0).then(|| e.time_us as f64 / 1000.0);
                rows.push(DigestRow {
                    digest: e.text.to_string(),
                    calls: e.calls,
                    primary: e.by_role[0],
                    replica: e.by_role[1],
                    total_ms: total,
                    mean_ms: total.map(|t| t / e.timed as f64),
                });
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_count_by_role_and_stay_bounded() {
        let d = DigestStats::default();
        let a = d.key("SELECT * FROM t WHERE id = 1", false);
        let b = d.key("SELECT * FROM t WHERE id = 2", false);
        assert_eq!(a, b);
        d.record(a, 1, 1, Some(Duration::from_millis(2)));
        d.record(b, 0, 1, None);
        let rows = d.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].calls, rows[0].primary, rows[0].replica), (2, 1, 1));
        assert_eq!(rows[0].mean_ms, Some(2.0));
        for i in 0..MAX_DIGESTS + 10 {
            let k = d.key(&format!("SELECT c{i} FROM t"), false);
            d.record(k, 0, 1, None);
        }
        let rows = d.rows();
        assert!(rows.len() <= MAX_DIGESTS + 1);
        assert!(rows
            .iter()
            .any(|r| r.digest == "(other digests)" && r.calls >= 10));
    }
}
