//! Bounded waits on replication state, polled through psql.

use std::time::{Duration, Instant};

use super::control::no_primary;
use super::PgCluster;
use crate::error::TestbedError;

/// Between polls; a psql round trip costs about 10 ms, so this keeps the CPU mostly free.
const POLL: Duration = Duration::from_millis(20);

impl PgCluster {
    /// Polls `check` until it returns true, failing with `what` after `timeout`.
    pub(super) fn poll_until(
        &self,
        what: &str,
        timeout: Duration,
        log_of: usize,
        mut check: impl FnMut() -> Result<bool, TestbedError>,
    ) -> Result<(), TestbedError> {
        let deadline = Instant::now() + timeout;
        let mut last_err = None;
        loop {
            match check() {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last_err = Some(e),
            }
            if Instant::now() >= deadline {
                let last = last_err.map_or(String::new(), |e| format!(" (last error: {e})"));
                return Err(TestbedError::Timeout {
                    what: format!("{what}{last}"),
                    secs: timeout.as_secs_f64(),
                    log: self.log_tail(log_of).unwrap_or_default(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until at least `n` walsenders on the primary are streaming.
    pub(super) fn wait_streaming_count(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<(), TestbedError> {
        let sql = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'";
        self.poll_until(
            &format!("{n} replicas to stream from the primary"),
            timeout,
            0,
            || Ok(self.psql(0, sql)?.parse::<usize>().unwrap_or(0) >= n),
        )
    }

    /// Waits until replica `i`'s WAL receiver is streaming (after a restart of it or of
    /// its primary).
    pub fn wait_streaming(&self, i: usize, timeout: Duration) -> Result<(), TestbedError> {
        let name = &self.node(i)?.name;
        let sql = "SELECT status FROM pg_stat_wal_receiver";
        self.poll_until(&format!("{name} to stream"), timeout, i, || {
            Ok(self.psql(i, sql)? == "streaming")
        })
    }

    /// Waits until every running, unpaused replica has replayed the primary's current WAL
    /// position. Roles are asked, not assumed: the primary is the first running node that
    /// is not in recovery, so this still works after a promotion.
    pub fn wait_replicas_caught_up(&self, timeout: Duration) -> Result<(), TestbedError> {
        let deadline = Instant::now() + timeout;
        let (primary, replicas) = self.roles()?;
        let primary = primary.ok_or_else(no_primary)?;
        let lsn = self.psql(primary, "SELECT pg_current_wal_lsn()")?;
        let sql = format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn");
        for i in replicas {
            let left = deadline.saturating_duration_since(Instant::now());
            let name = &self.nodes[i].name;
            self.poll_until(&format!("{name} to replay up to {lsn}"), left, i, || {
                Ok(self.psql(i, &sql)? == "t")
            })?;
        }
        Ok(())
    }
}
