//! One health probe: connect, ask the role, disconnect; all under a timeout.

use crate::config::{ClusterConfig, Role};

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

/// Probes node `id` of `config` once.
pub async fn probe_once(config: &ClusterConfig, id: usize) -> Result<ProbeResult, ProbeError> {
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
    let timeout = config.health_check_timeout;
    let work = async {
        let (client, conn) = pg.connect(tokio_postgres::NoTls).await?;
        let conn = tokio::spawn(conn);
        let row = client.query_one("SELECT pg_is_in_recovery()", &[]).await;
        drop(client);
        let _ = conn.await;
        let in_recovery: bool = row?.get(0);
        Ok(ProbeResult {
            role: if in_recovery {
                Role::Replica
            } else {
                Role::Primary
            },
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ProbeError::Timeout(timeout))?
}
