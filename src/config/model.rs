//! The config file's model. Every field documents its default. A reload (RELOAD, SIGHUP)
//! applies any change inside `[[clusters]]` but `listen` and `protocol`; the rest needs a restart.

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
    /// The admin console (`[admin]`); absent: no console.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// Prometheus metrics and health endpoints (`[metrics]`); absent: no HTTP endpoint and no
    /// metrics recorded. Read at start.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

/// The HTTP endpoint serving `/metrics`, `/health` and `/ready`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the endpoint, e.g. "127.0.0.1:9191". Required. Read at start.
    pub listen: String,
}

/// The admin console: SQL over the PostgreSQL and MySQL wire protocols, on listeners of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address for psql and other PostgreSQL clients, e.g. "127.0.0.1:6090". Optional.
    #[serde(default)]
    pub listen_postgres: Option<String>,
    /// Address for the mariadb / mysql client, e.g. "127.0.0.1:6091". Optional.
    #[serde(default)]
    pub listen_mysql: Option<String>,
    /// Who may log in; at least one.
    #[serde(default)]
    pub users: Vec<AdminUser>,
}

/// A user of the admin console.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminUser {
    /// User name.
    pub name: String,
    /// Plain-text password (md5 on the PostgreSQL wire, mysql_native_password on MySQL's).
    pub password: String,
    /// "admin" (may change things) or "monitor" (read-only). Default "monitor".
    #[serde(default)]
    pub role: AdminRole,
}

/// What an admin console user may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    /// Read-only: SHOW, SELECT, EXPLAIN ROUTE.
    #[default]
    Monitor,
    /// Everything, including changes (weights, drains, reloads).
    Admin,
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
    /// Most clients served at once per listener; past it new clients get SQLSTATE 53300. Default 10000.
    #[serde(default = "default_max_clients")]
    pub max_client_connections: usize,
    /// Runtime threads: absent = one per core; 0 = a single-threaded runtime. Read at start.
    #[serde(default)]
    pub worker_threads: Option<usize>,
    /// Grace period for in-flight work at shutdown. Default 10s.
    #[serde(default = "default_shutdown_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Count statements per normalised digest for the admin console's SHOW QUERIES. Default
    /// true; false saves the hashing of each simple-protocol statement.
    #[serde(default = "default_true")]
    pub query_digests: bool,
}

fn default_true() -> bool {
    true
}

impl Default for General {
    fn default() -> Self {
        General {
            max_message_bytes: default_max_message_bytes(),
            startup_timeout: default_startup_timeout(),
            connect_timeout: default_connect_timeout(),
            shutdown_grace: default_shutdown_grace(),
            query_digests: true,
            max_client_connections: default_max_clients(),
            worker_threads: None,
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
fn default_max_clients() -> usize {
    10_000
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
    /// Wire protocol of the cluster: "postgres" (default) or "mysql" (MySQL and MariaDB).
    #[serde(default)]
    pub protocol: Protocol,
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
    /// MySQL: let clients run LOAD DATA LOCAL INFILE (their file is streamed to the primary).
    /// Off by default: such statements get error 1148 saying how to enable it.
    #[serde(default)]
    pub local_infile: bool,
    /// User the health monitor logs in as. Default: the first user.
    #[serde(default)]
    pub monitor_user: Option<String>,
    /// "transaction" (default): a server connection serves a client for one transaction;
    /// "session": for the client's whole session. Users can override it.
    #[serde(default)]
    pub pool_mode: PoolMode,
    /// Most server connections per (node, user, database). Default 20.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Server connections kept open per (node, user, database) once it has been used. Default 0.
    #[serde(default)]
    pub pool_min_size: usize,
    /// How long a client waits for a server connection when the pool is at pool_size;
    /// then it gets SQLSTATE 53300 naming the pool. Default 5s.
    #[serde(default = "default_pool_timeout", with = "humantime_serde")]
    pub pool_timeout: Duration,
    /// Idle server connections older than this are closed. Default 10min.
    #[serde(default = "default_pool_idle_timeout", with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
    /// An idle server connection unused for this long is checked with an empty query before a
    /// client gets it; a dead one is replaced. Default 30s; "0s" checks every checkout.
    #[serde(default = "default_server_check_delay", with = "humantime_serde")]
    pub server_check_delay: Duration,
    /// Server connections are closed once this old, when next idle. Default 1h.
    #[serde(default = "default_server_lifetime", with = "humantime_serde")]
    pub server_lifetime: Duration,
    /// Cancel a query running longer than this and tell the client (57014). Default off.
    #[serde(default, with = "humantime_serde")]
    pub query_timeout: Option<Duration>,
    /// Close a client idle inside a transaction for this long (25P03). Default off.
    #[serde(default, with = "humantime_serde")]
    pub idle_transaction_timeout: Option<Duration>,
    /// Close a client idle outside a transaction for this long (57P05). Default off.
    #[serde(default, with = "humantime_serde")]
    pub client_idle_timeout: Option<Duration>,
    /// Replicas more than this many bytes of WAL behind the primary stop getting reads (back
    /// under half of it). Default off.
    #[serde(default)]
    pub max_lag_bytes: Option<u64>,
    /// Replicas whose replay is this far behind stop getting reads (back under half of it).
    /// Default off.
    #[serde(default, with = "humantime_serde")]
    pub max_lag: Option<Duration>,
    /// At least this many replicas keep serving reads (the least lagging) even past the lag
    /// limits, instead of every read moving to the primary. Default 0.
    #[serde(default)]
    pub min_serving_replicas: usize,
    /// A replica taken back (after failing or lagging) ramps its read weight up over this long.
    /// Default 10s; "0s" turns slow start off.
    #[serde(
        default = "super::health::default_slow_start",
        with = "humantime_serde"
    )]
    pub slow_start: Duration,
    /// "off" (default), "lsn" or "window": how a session's reads see its own writes.
    #[serde(default)]
    pub read_your_writes: super::health::ReadYourWrites,
    /// Window mode: reads go to the primary this long after a write. Default 1s.
    #[serde(
        default = "super::health::default_ryw_window",
        with = "humantime_serde"
    )]
    pub read_your_writes_window: Duration,
    /// Lsn mode: how long a read may wait for a replica to reach the session's last write
    /// before it goes to the primary. Default 20ms.
    #[serde(default = "super::health::default_ryw_wait", with = "humantime_serde")]
    pub read_your_writes_wait: Duration,
    /// Failover (`[clusters.failover]`): mode, after, timeout, user, password.
    #[serde(default)]
    pub failover: super::health::FailoverConfig,
    /// TLS for clients of this listener (`[clusters.tls]`): cert, key, require. Default off.
    #[serde(default)]
    pub tls: Option<crate::tls::ServerTlsConfig>,
    /// TLS towards the servers (`[clusters.server_tls]`): mode, ca. Default mode "disable".
    #[serde(default)]
    pub server_tls: crate::tls::BackendTlsConfig,
}

impl ClusterConfig {
    /// The login of the health monitor: `monitor_user`, else the first user.
    pub fn monitor_login(&self) -> Option<(&str, &str)> {
        self.monitor_user
            .as_deref()
            .and_then(|m| self.users.iter().find(|u| u.name == m))
            .or_else(|| self.users.first())
            .map(|u| (u.name.as_str(), u.password.as_str()))
    }

    /// The login that promotes and re-points: `failover.user`, else the monitor's.
    pub fn failover_login(&self) -> Option<(&str, &str)> {
        match (&self.failover.user, &self.failover.password) {
            (Some(u), Some(p)) => Some((u.as_str(), p.as_str())),
            _ => self.monitor_login(),
        }
    }
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
fn default_pool_size() -> usize {
    20
}
fn default_pool_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_server_check_delay() -> Duration {
    Duration::from_secs(30)
}
fn default_server_lifetime() -> Duration {
    Duration::from_secs(3600)
}
fn default_pool_idle_timeout() -> Duration {
    Duration::from_secs(600)
}

/// Wire protocol a cluster speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// PostgreSQL v3.
    #[default]
    Postgres,
    /// MySQL / MariaDB client/server protocol 4.1.
    Mysql,
}

/// How long a client keeps a server connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolMode {
    /// Only for the duration of a transaction (or a statement outside one).
    #[default]
    Transaction,
    /// For the whole client session.
    Session,
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
    /// Overrides the cluster's pool_mode for this user.
    #[serde(default)]
    pub pool_mode: Option<PoolMode>,
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
