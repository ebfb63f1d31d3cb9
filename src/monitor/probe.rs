//! Health probes: ask a node its role over a monitor connection kept open between probes
//! (reconnecting after any failure), every step under a timeout.

use crate::config::{ClusterConfig, Role};
use tokio_postgres::Client;

/// What a successful probe learned.
#[derive(Debug, Clone, Copy)]
pub struct ProbeResult {
    /// Role the server reports (pg_is_in_recovery()).
    pub role: Role,
    /// A primary's current WAL LSN, a replica's replay LSN.
    pub lsn: u64,
    /// A replica's last received LSN (0 on a primary).
    pub receive_lsn: u64,
    /// Timeline, when the server tells it.
    pub timeline: Option<u32>,
    /// A replica's replay delay in seconds: 0 when it replayed all it received.
    pub lag_seconds: Option<f64>,
    /// When the query was sent (the figures are from no earlier).
    pub at: std::time::Instant,
}

/// One round trip for everything a probe needs. A replica that replayed everything it received
/// is not behind in time, however old its last replayed transaction is.
const PROBE_SQL: &str = "SELECT pg_is_in_recovery(), \
 (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text, \
 (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() END)::text, \
 CASE WHEN pg_is_in_recovery() THEN (SELECT received_tli FROM pg_stat_wal_receiver LIMIT 1) \
      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END, \
 CASE WHEN pg_is_in_recovery() THEN \
   CASE WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0::float8 \
   ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END END";

/// Parses PostgreSQL's text form of an LSN ("16/B374D848").
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    (hi <= u64::from(u32::MAX) && lo <= u64::from(u32::MAX)).then_some((hi << 32) | lo)
}

/// The text form of an LSN.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Connect, authentication or query failed.
    #[error("{}", pg_error_text(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The probe did not finish in time.
    #[error("probe timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// A MySQL probe failed.
    #[error("{0}")]
    MySql(Box<crate::backend::BackendError>),
    /// The node address is not host:port.
    #[error("bad address {0}")]
    Address(String),
}

/// Probes one node, reusing its monitor connection: a login per probe would cost the server a
/// backend start and both sides a SCRAM exchange every interval.
#[derive(Default)]
pub struct Prober {
    client: Option<Client>,
    mysql: Option<crate::backend::mysql::MyConn>,
}

impl Prober {
    /// Probes node `id` of `config` once.
    pub async fn probe(
        &mut self,
        config: &ClusterConfig,
        id: usize,
    ) -> Result<ProbeResult, ProbeError> {
        let timeout = config.health_check_timeout;
        let r = if config.protocol == crate::config::Protocol::Mysql {
            tokio::time::timeout(timeout, self.probe_mysql(config, id))
                .await
                .map_err(|_| ProbeError::Timeout(timeout))
                .and_then(|r| r)
        } else {
            tokio::time::timeout(timeout, self.probe_inner(config, id))
                .await
                .map_err(|_| ProbeError::Timeout(timeout))
                .and_then(|r| r)
        };
        if r.is_err() {
            self.client = None;
            self.mysql = None;
        }
        r
    }

    async fn probe_inner(
        &mut self,
        config: &ClusterConfig,
        id: usize,
    ) -> Result<ProbeResult, ProbeError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.client = Some(connect(config, id).await?);
        }
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| ProbeError::Address("no client".into()))?;
        let at = std::time::Instant::now();
        let row = client.query_one(PROBE_SQL, &[]).await?;
        let in_recovery: bool = row.try_get(0)?;
        let lsn: Option<String> = row.try_get(1)?;
        let receive: Option<String> = row.try_get(2)?;
        let timeline: Option<i32> = row.try_get(3)?;
        let lag_seconds: Option<f64> = row.try_get(4)?;
        Ok(ProbeResult {
            role: if in_recovery {
                Role::Replica
            } else {
                Role::Primary
            },
            lsn: lsn.as_deref().and_then(parse_lsn).unwrap_or(0),
            receive_lsn: receive.as_deref().and_then(parse_lsn).unwrap_or(0),
            timeline: timeline.and_then(|t| u32::try_from(t).ok()),
            lag_seconds: lag_seconds.map(|s| s.max(0.0)),
            at,
        })
    }
}

impl Prober {
    /// MySQL/MariaDB: role from @@read_only, replay delay from SHOW SLAVE STATUS
    /// (Seconds_Behind_Master; NULL while replication is stopped counts as not caught up).
    async fn probe_mysql(
        &mut self,
        config: &ClusterConfig,
        id: usize,
    ) -> Result<ProbeResult, ProbeError> {
        let timeout = config.health_check_timeout;
        let max = 1 << 20;
        if self.mysql.as_ref().is_none_or(|c| c.looks_closed()) {
            let (user, password) = config
                .monitor_login()
                .ok_or_else(|| ProbeError::Address("no user to probe with".into()))?;
            let node = &config.nodes[id];
            let spec = crate::backend::mysql::MyConnectSpec {
                node: id,
                name: node.name.as_deref().unwrap_or(&node.addr),
                addr: &node.addr,
                user,
                password,
                database: "",
                timeout,
                max_packet: max,
                incarnation: 0,
                local_infile: false,
            };
            self.mysql = Some(
                crate::backend::mysql::connect(&spec)
                    .await
                    .map_err(|e| ProbeError::MySql(Box::new(e)))?,
            );
        }
        let conn = self
            .mysql
            .as_mut()
            .ok_or_else(|| ProbeError::Address("no connection".into()))?;
        let at = std::time::Instant::now();
        let row = conn
            .query_row(
                "SELECT @@read_only, @@gtid_binlog_pos, @@gtid_slave_pos",
                timeout,
                max,
            )
            .await
            .map_err(|e| ProbeError::MySql(Box::new(e)))?
            .unwrap_or_default();
        let value = |i: usize| row.get(i).and_then(|(_, v)| v.as_deref()).unwrap_or("");
        let read_only = value(0) == "1";
        // Position in transactions (GTID sequence numbers summed over domains): what the
        // primary has written, or what a replica has applied. Their difference is the lag in
        // transactions, at the probe's resolution rather than Seconds_Behind_Master's seconds.
        let position: u64 = super::gtid::parse_gtid_pos(value(if read_only { 2 } else { 1 }))
            .values()
            .sum();
        let lag_seconds = if read_only {
            let status = conn
                .query_row("SHOW SLAVE STATUS", timeout, max)
                .await
                .map_err(|e| ProbeError::MySql(Box::new(e)))?
                .unwrap_or_default();
            let behind = status
                .iter()
                .find(|(n, _)| n == "Seconds_Behind_Master")
                .and_then(|(_, v)| v.as_deref())
                .and_then(|v| v.parse::<f64>().ok());
            // Replication stopped (NULL) is as bad as it gets.
            Some(behind.unwrap_or(f64::MAX))
        } else {
            None
        };
        Ok(ProbeResult {
            role: if read_only {
                Role::Replica
            } else {
                Role::Primary
            },
            lsn: position,
            receive_lsn: 0,
            timeline: None,
            lag_seconds,
            at,
        })
    }
}

/// Opens a monitor connection to node `id`.
async fn connect(config: &ClusterConfig, id: usize) -> Result<Client, ProbeError> {
    let (user, password) = config
        .monitor_login()
        .ok_or_else(|| ProbeError::Address("no user to probe with".into()))?;
    connect_as(config, id, user, password).await
}

/// Opens a connection to node `id`'s `postgres` database as `user`, within the probe timeout.
pub async fn connect_as(
    config: &ClusterConfig,
    id: usize,
    user: &str,
    password: &str,
) -> Result<Client, ProbeError> {
    let node = &config.nodes[id];
    let (host, port) = node
        .addr
        .rsplit_once(':')
        .and_then(|(h, p)| {
            Some((
                h.trim_matches(|c| c == '[' || c == ']'),
                p.parse::<u16>().ok()?,
            ))
        })
        .ok_or_else(|| ProbeError::Address(node.addr.clone()))?;
    let mut pg = tokio_postgres::Config::new();
    pg.host(host)
        .port(port)
        .user(user)
        .password(password)
        .dbname("postgres")
        .application_name("switchyard-monitor")
        .connect_timeout(config.health_check_timeout);
    let timeout = config.health_check_timeout;
    let (client, conn) = tokio::time::timeout(timeout, pg.connect(tokio_postgres::NoTls))
        .await
        .map_err(|_| ProbeError::Timeout(timeout))??;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// A tokio-postgres error with the server's message and SQLSTATE when there is one (its
/// Display says only "db error").
fn pg_error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}
