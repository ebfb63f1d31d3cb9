//! Config of replication-aware routing and failover: lag limits, read-your-writes, failover.

use serde::Deserialize;
use std::time::Duration;

/// How a session's reads see its own earlier writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadYourWrites {
    /// Reads go to any fit replica.
    #[default]
    Off,
    /// After a write commits, reads go only to replicas whose replay LSN reached that commit
    /// (PostgreSQL) or that applied its GTID (MySQL/MariaDB, also spelled "gtid").
    #[serde(alias = "gtid")]
    Lsn,
    /// After a write commits, reads go to the primary for `read_your_writes_window`.
    Window,
}

/// What the proxy does when the primary is lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailoverMode {
    /// Roles as configured (or as first probed); nothing moves by itself.
    Off,
    /// Follow the roles the servers report (an external manager promotes); fence a returning
    /// former primary.
    #[default]
    Follow,
    /// Like follow, and promote the most advanced replica after the primary has been
    /// unreachable for `after`, re-pointing the other replicas to it.
    Promote,
}

/// `[clusters.failover]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverConfig {
    /// "off", "follow" (default) or "promote".
    #[serde(default)]
    pub mode: FailoverMode,
    /// How long the primary must be unreachable before a promotion. Default 2s.
    #[serde(default = "default_after", with = "humantime_serde")]
    pub after: Duration,
    /// How long new write transactions wait for a primary before failing. Default 30s.
    /// MySQL promote mode also gives the chosen replica half of it (at least 1 s) to apply
    /// what it received before promoting it.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Superuser that promotes and re-points (pg_promote, ALTER SYSTEM, slots). Default: the
    /// monitor user.
    #[serde(default)]
    pub user: Option<String>,
    /// Its password (required with `user`).
    #[serde(default)]
    pub password: Option<String>,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            mode: FailoverMode::default(),
            after: default_after(),
            timeout: default_timeout(),
            user: None,
            password: None,
        }
    }
}

fn default_after() -> Duration {
    Duration::from_secs(2)
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
/// Default of `slow_start`.
pub(super) fn default_slow_start() -> Duration {
    Duration::from_secs(10)
}
/// Default of `read_your_writes_window`.
pub(super) fn default_ryw_window() -> Duration {
    Duration::from_secs(1)
}
/// Default of `read_your_writes_wait`.
pub(super) fn default_ryw_wait() -> Duration {
    Duration::from_millis(20)
}
