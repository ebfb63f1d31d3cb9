//! Health probes: ask a node its role over a monitor connection kept open between probes
//! (reconnecting after any failure), every step under a timeout.

use crate::config::{ClusterConfig, Role};
use tokio_postgres::Client;

/// What a successful probe learned.
#[derive(Debug, Clone, Copy)]
pub struct ProbeResult {
    /// Role the server reports (pg_is_in_recovery()).
    pub role: Role,
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Connect, authentication or query failed.
    #[error("{0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The probe did not finish in time.
    #[error("probe timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The node address is not host:port.
    #[error("bad address {0}")]
    Address(String),
}

/// Probes one node, reusing its monitor connection: a login per probe would cost the server a
/// backend start and both sides a SCRAM exchange every interval.
#[derive(Default)]
pub struct Prober {
    client: Option<Client>,
}

impl Prober {
    /// Probes node `id` of `config` once.
    pub async fn probe(
        &mut self,
        config: &ClusterConfig,
        id: usize,
    ) -> Result<ProbeResult, ProbeError> {
        let timeout = config.health_check_timeout;
        let r = tokio::time::timeout(timeout, self.probe_inner(config, id))
            .await
            .map_err(|_| ProbeError::Timeout(timeout))
            .and_then(|r| r);
        if r.is_err() {
            self.client = None;
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
        let row = client.query_one("SELECT pg_is_in_recovery()", &[]).await?;
        let in_recovery: bool = row.try_get(0)?;
        Ok(ProbeResult {
            role: if in_recovery {
                Role::Replica
            } else {
                Role::Primary
            },
        })
    }
}

/// Opens a monitor connection to node `id`.
async fn connect(config: &ClusterConfig, id: usize) -> Result<Client, ProbeError> {
    let node = &config.nodes[id];
    let user = config
        .monitor_user
        .as_deref()
        .and_then(|m| config.users.iter().find(|u| u.name == m))
        .or_else(|| config.users.first())
        .ok_or_else(|| ProbeError::Address("no user to probe with".into()))?;
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
        .user(&user.name)
        .password(&user.password)
        .dbname("postgres")
        .application_name("switchyard-monitor")
        .connect_timeout(config.health_check_timeout);
    let (client, conn) = pg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}
