//! The config file's model. Every field documents its default and whether a reload may change it
//! (reload arrives with the admin issue; until then every field is read at start).

use serde::Deserialize;
use std::time::Duration;

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Process-wide settings.
    #[serde(default)]
    pub general: General,
    /// Database clusters, each served on its own listener.
    #[serde(default)]
    pub clusters: Vec<ClusterConfig>,
}

/// Process-wide settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct General {
    /// Largest protocol message accepted from a client or a server, in bytes. Default 64 MiB.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// A client must finish startup and authentication within this time. Default 15s.
    #[serde(default = "default_startup_timeout", with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// Timeout for opening (and authenticating) a server connection. Default 5s.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Grace period for in-flight work at shutdown. Default 10s.
    #[serde(default = "default_shutdown_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for General {
    fn default() -> Self {
        General {
            max_message_bytes: default_max_message_bytes(),
            startup_timeout: default_startup_timeout(),
            connect_timeout: default_connect_timeout(),
            shutdown_grace: default_shutdown_grace(),
        }
    }
}

fn default_max_message_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_startup_timeout() -> Duration {
    Duration::from_secs(15)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(10)
}

/// One replicated PostgreSQL cluster behind one listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Name used in logs and metrics. Required, unique.
    pub name: String,
    /// Address clients connect to, e.g. "127.0.0.1:6432". Required.
    pub listen: String,
    /// How clients authenticate: "scram-sha-256" (default) or "md5".
    #[serde(default)]
    pub auth: AuthMethod,
    /// Users clients may log in as; the same credentials are used towards the servers.
    pub users: Vec<UserConfig>,
    /// The servers of the cluster.
    pub nodes: Vec<NodeConfig>,
    /// How often each node is probed for health and role. Default 1s; sub-second allowed.
    #[serde(default = "default_health_interval", with = "humantime_serde")]
    pub health_check_interval: Duration,
    /// Timeout of one probe (connect plus query). Default 2s.
    #[serde(default = "default_health_timeout", with = "humantime_serde")]
    pub health_check_timeout: Duration,
    /// Consecutive failed probes before a node is taken out. Default 2.
    #[serde(default = "default_eject_after")]
    pub eject_after: u32,
    /// Consecutive good probes before a node is taken back. Default 2.
    #[serde(default = "default_readmit_after")]
    pub readmit_after: u32,
    /// Where reads go when no replica can take them: "primary" (default) or "error".
    #[serde(default)]
    pub replica_fallback: ReplicaFallback,
    /// Extra functions (lowercase names) whose calls force the primary, besides the built-in list.
    #[serde(default)]
    pub side_effect_functions: Vec<String>,
    /// User the health monitor logs in as. Default: the first user.
    #[serde(default)]
    pub monitor_user: Option<String>,
    /// Idle server connections kept per (node, user, database). Default 32.
    #[serde(default = "default_pool_idle")]
    pub pool_max_idle: usize,
    /// Idle server connections older than this are closed instead of reused. Default 10min.
    #[serde(default = "default_pool_idle_timeout", with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
}

fn default_health_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_health_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_eject_after() -> u32 {
    2
}
fn default_readmit_after() -> u32 {
    2
}
fn default_pool_idle() -> usize {
    32
}
fn default_pool_idle_timeout() -> Duration {
    Duration::from_secs(600)
}

/// Client authentication method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// SCRAM-SHA-256 (RFC 7677), PostgreSQL's default since 14.
    #[default]
    ScramSha256,
    /// The legacy md5 challenge.
    Md5,
}

/// What to do with reads when no replica is fit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicaFallback {
    /// Send them to the primary, with a log line.
    #[default]
    Primary,
    /// Fail them with SQLSTATE 08000.
    Error,
}

/// A login accepted from clients and used towards the servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// User name. Required, unique within the cluster.
    pub name: String,
    /// Plain-text password, checked from clients and sent (by SCRAM, md5 or cleartext) to servers.
    pub password: String,
}

/// One server of the cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Name in logs, errors and metrics. Default: the address.
    #[serde(default)]
    pub name: Option<String>,
    /// "host:port" of the server. Required.
    pub addr: String,
    /// Share of reads relative to the other replicas; 0 drains the node. Default 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// "primary" or "replica"; when absent the monitor asks the node (pg_is_in_recovery()).
    #[serde(default)]
    pub role: Option<Role>,
}

fn default_weight() -> u32 {
    1
}

/// The role a node plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Takes writes.
    Primary,
    /// Read-only hot standby.
    Replica,
}
