//! Failover controls: roles, promotion, WAL replay pause, synchronous standbys and
//! re-pointing a replica at another primary.

use std::time::Duration;

use super::setup::{quote_ident, quote_literal};
use super::PgCluster;
use crate::error::TestbedError;

/// Bound for a promotion, a replay pause or resume, or a synchronous standby to take effect.
const SWITCH_TIMEOUT: Duration = Duration::from_secs(30);

impl PgCluster {
    /// True while node `i` is in recovery (a replica), false once it is a primary.
    pub fn is_in_recovery(&self, i: usize) -> Result<bool, TestbedError> {
        let out = self.psql(i, "SELECT pg_is_in_recovery()")?;
        self.parse_bool(i, "pg_is_in_recovery()", &out)
    }

    /// The first running node that is not in recovery: the primary, even after a promotion
    /// (with two primaries, the lower index wins).
    pub fn current_primary(&self) -> Result<usize, TestbedError> {
        self.roles()?.0.ok_or_else(no_primary)
    }

    /// The first running primary, if any, and the running replicas (paused nodes skipped).
    pub(super) fn roles(&self) -> Result<(Option<usize>, Vec<usize>), TestbedError> {
        let mut primary = None;
        let mut replicas = Vec::new();
        for i in 0..self.nodes.len() {
            if !self.is_running(i)? {
                continue;
            }
            if self.is_in_recovery(i)? {
                replicas.push(i);
            } else if primary.is_none() {
                primary = Some(i);
            }
        }
        Ok((primary, replicas))
    }

    /// Promotes replica `i` with `pg_promote(true, 30)` and waits until it has left recovery.
    pub fn promote(&self, i: usize) -> Result<(), TestbedError> {
        let out = self.psql(i, "SELECT pg_promote(true, 30)")?;
        if out != "t" {
            return Err(self.state(i, format!("pg_promote() returned {out:?}")));
        }
        let what = format!("{} to leave recovery", self.node(i)?.name);
        self.poll_until(&what, SWITCH_TIMEOUT, i, || Ok(!self.is_in_recovery(i)?))
    }

    /// Pauses WAL replay on replica `i` and waits until replay has actually stopped.
    pub fn pause_replay(&self, i: usize) -> Result<(), TestbedError> {
        self.psql(i, "SELECT pg_wal_replay_pause()")?;
        self.wait_replay_state(i, "paused")
    }

    /// Resumes WAL replay on replica `i` and waits until it is no longer paused.
    pub fn resume_replay(&self, i: usize) -> Result<(), TestbedError> {
        self.psql(i, "SELECT pg_wal_replay_resume()")?;
        self.wait_replay_state(i, "not paused")
    }

    fn wait_replay_state(&self, i: usize, state: &str) -> Result<(), TestbedError> {
        let what = format!("{}'s WAL replay to be {state}", self.node(i)?.name);
        self.poll_until(&what, SWITCH_TIMEOUT, i, || {
            Ok(self.psql(i, "SELECT pg_get_wal_replay_pause_state()")? == state)
        })
    }

    /// The last WAL position replica `i` has replayed (`pg_last_wal_replay_lsn()`).
    pub fn replay_lsn(&self, i: usize) -> Result<String, TestbedError> {
        self.psql(i, "SELECT pg_last_wal_replay_lsn()::text")
    }

    /// The current WAL write position of primary `i` (`pg_current_wal_lsn()`).
    pub fn current_lsn(&self, i: usize) -> Result<String, TestbedError> {
        self.psql(i, "SELECT pg_current_wal_lsn()::text")
    }

    /// [`PgCluster::set_synchronous_on`] the current primary (see
    /// [`PgCluster::current_primary`]).
    pub fn set_synchronous(&self, names: &[&str]) -> Result<(), TestbedError> {
        self.set_synchronous_on(self.current_primary()?, names)
    }

    /// Sets `synchronous_standby_names` on primary `primary` to `FIRST 1 (names...)`, or
    /// clears it when `names` is empty, reloads, and waits until the first named standby
    /// is `sync` in `pg_stat_replication` (or, when clearing, until none is).
    pub fn set_synchronous_on(&self, primary: usize, names: &[&str]) -> Result<(), TestbedError> {
        let value = synchronous_standby_names(names);
        let sql = format!(
            "ALTER SYSTEM SET synchronous_standby_names = {};\nSELECT pg_reload_conf();",
            quote_literal(&value)
        );
        self.psql(primary, &sql)?;
        let (what, check) = match names.first() {
            Some(first) => (
                format!("{first} to be a synchronous standby"),
                format!(
                    "SELECT count(*) = 1 FROM pg_stat_replication \
                     WHERE application_name = {} AND sync_state = 'sync'",
                    quote_literal(first)
                ),
            ),
            None => (
                "no standby to be synchronous".to_owned(),
                "SELECT count(*) = 0 FROM pg_stat_replication WHERE sync_state <> 'async'"
                    .to_owned(),
            ),
        };
        self.poll_until(&what, SWITCH_TIMEOUT, primary, || {
            Ok(self.psql(primary, &check)? == "t")
        })
    }

    /// Makes replica `i` stream from node `primary`: creates the physical slot named after
    /// `i` there (WAL reserved) unless it exists, sets `i`'s `primary_conninfo` to the same
    /// string with `primary`'s port, and reloads `i`. Returns without waiting: see
    /// [`PgCluster::wait_streaming`].
    pub fn repoint(&self, i: usize, primary: usize) -> Result<(), TestbedError> {
        let slot = quote_literal(&self.node(i)?.name);
        let port = self.node(primary)?.port;
        self.psql(
            primary,
            &format!(
                "SELECT pg_create_physical_replication_slot({slot}, true) \
                 WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = {slot})"
            ),
        )?;
        let old = self.psql(i, "SHOW primary_conninfo")?;
        let new = conninfo_with_port(&old, port)
            .ok_or_else(|| self.state(i, format!("no port= in primary_conninfo {old:?}")))?;
        let sql = format!(
            "ALTER SYSTEM SET primary_conninfo = {};\nSELECT pg_reload_conf();",
            quote_literal(&new)
        );
        self.psql(i, &sql)?;
        Ok(())
    }

    fn parse_bool(&self, i: usize, what: &str, out: &str) -> Result<bool, TestbedError> {
        match out {
            "t" => Ok(true),
            "f" => Ok(false),
            _ => Err(self.state(i, format!("{what} returned {out:?}"))),
        }
    }

    fn state(&self, i: usize, what: String) -> TestbedError {
        TestbedError::State {
            node: self
                .node(i)
                .map_or_else(|_| format!("node {i}"), |n| n.name.clone()),
            what,
        }
    }
}

/// The error when every running node is in recovery.
pub(super) fn no_primary() -> TestbedError {
    TestbedError::State {
        node: "cluster".into(),
        what: "no running node is a primary".into(),
    }
}

/// `FIRST 1 ("a", "b")`, or "" for no synchronous standby.
fn synchronous_standby_names(names: &[&str]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let list: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
    format!("FIRST 1 ({})", list.join(", "))
}

/// The libpq key=value string with its `port=` value replaced; None if it has none. Values
/// are taken to be unquoted, as pg_basebackup -R writes the test bed's.
fn conninfo_with_port(conninfo: &str, port: u16) -> Option<String> {
    let mut found = false;
    let words: Vec<String> = conninfo
        .split_whitespace()
        .map(|w| {
            if w.starts_with("port=") {
                found = true;
                format!("port={port}")
            } else {
                w.to_owned()
            }
        })
        .collect();
    found.then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::{conninfo_with_port, synchronous_standby_names};

    #[test]
    fn only_the_port_changes() {
        assert_eq!(
            conninfo_with_port("user=r host=127.0.0.1 port=5432 application_name=pg2", 6000)
                .as_deref(),
            Some("user=r host=127.0.0.1 port=6000 application_name=pg2")
        );
        assert_eq!(conninfo_with_port("host=127.0.0.1", 6000), None);
    }

    #[test]
    fn synchronous_names_are_quoted() {
        assert_eq!(synchronous_standby_names(&[]), "");
        assert_eq!(
            synchronous_standby_names(&["pg1", "pg2"]),
            r#"FIRST 1 ("pg1", "pg2")"#
        );
    }
}
