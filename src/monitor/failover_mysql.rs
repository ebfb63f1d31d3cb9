//! Promote mode for MySQL/MariaDB: the replica with the most advanced GTID position is
//! promoted (STOP SLAVE, RESET SLAVE ALL, SET GLOBAL read_only = 0), the others are re-pointed
//! with CHANGE MASTER TO ... MASTER_USE_GTID = slave_pos, and a returning old primary is set
//! read_only so nothing writes to it by accident.

use super::failover::FailoverError;
use super::ProbeError;
use crate::backend::mysql::{connect, MyConn, MyConnectSpec};
use crate::cluster::events::EventKind;
use crate::cluster::{ClusterState, Health, Role};
use crate::config::ClusterConfig;
use std::collections::HashMap;
use std::time::Instant;
use switchyard_mysql::Command;

/// An admin connection to node `id` (failover user, else the monitor user).
async fn admin(config: &ClusterConfig, id: usize) -> Result<MyConn, FailoverError> {
    let node = &config.nodes[id];
    let name = node.name.clone().unwrap_or_else(|| node.addr.clone());
    let (user, password) = config.failover_login().ok_or(FailoverError::NoCandidate)?;
    let spec = MyConnectSpec {
        node: id,
        name: &name,
        addr: &node.addr,
        user,
        password,
        database: "",
        timeout: config.health_check_timeout,
        max_packet: 1 << 20,
        incarnation: 0,
        local_infile: false,
    };
    connect(&spec).await.map_err(|e| FailoverError::Node {
        node: name,
        source: ProbeError::MySql(Box::new(e)),
    })
}

/// Runs statements one by one on `conn`.
async fn run(
    config: &ClusterConfig,
    conn: &mut MyConn,
    name: &str,
    sqls: &[&str],
) -> Result<(), FailoverError> {
    for sql in sqls {
        let mut cmd = vec![Command::COM_QUERY as u8];
        cmd.extend_from_slice(sql.as_bytes());
        conn.run(&cmd, config.health_check_timeout, 1 << 20)
            .await
            .map_err(|e| FailoverError::Node {
                node: name.to_string(),
                source: ProbeError::MySql(Box::new(e)),
            })?;
    }
    Ok(())
}

/// A GTID position ("0-1-100,1-2-7") as sequence number per domain.
pub fn parse_gtid_pos(text: &str) -> HashMap<u32, u64> {
    text.split(',')
        .filter_map(|g| {
            let mut parts = g.trim().split('-');
            let domain = parts.next()?.parse().ok()?;
            let _server = parts.next()?;
            let seq = parts.next()?.parse().ok()?;
            Some((domain, seq))
        })
        .collect()
}

/// Promotes the most advanced healthy replica in place of `old`; returns its id.
pub(super) async fn promote(
    config: &ClusterConfig,
    state: &ClusterState,
    old: usize,
    old_name: &str,
    started: Instant,
) -> Result<usize, FailoverError> {
    let snap = state.load_full();
    let mut best: Option<(u64, usize, String)> = None;
    for n in snap
        .nodes
        .iter()
        .filter(|n| n.role == Some(Role::Replica) && n.health == Health::Up && !n.fenced)
    {
        let asked = async {
            let mut c = admin(config, n.id).await?;
            let row = c
                .query_row(
                    "SELECT @@gtid_current_pos",
                    config.health_check_timeout,
                    1 << 20,
                )
                .await
                .map_err(|e| FailoverError::Node {
                    node: n.name.clone(),
                    source: ProbeError::MySql(Box::new(e)),
                })?
                .unwrap_or_default();
            Ok::<_, FailoverError>(row.first().and_then(|(_, v)| v.clone()).unwrap_or_default())
        };
        match asked.await {
            Ok(pos) => {
                let total: u64 = parse_gtid_pos(&pos).values().sum();
                tracing::info!(cluster = %state.name, node = %n.name, "failover candidate: GTID position {pos}");
                if best.as_ref().is_none_or(|(t, _, _)| total > *t) {
                    best = Some((total, n.id, pos));
                }
            }
            Err(e) => {
                tracing::warn!(cluster = %state.name, node = %n.name, "not a failover candidate: {e}")
            }
        }
    }
    let (_, new, position) = best.ok_or(FailoverError::NoCandidate)?;
    let new_name = snap.nodes[new].name.clone();
    let mut conn = admin(config, new).await?;
    run(
        config,
        &mut conn,
        &new_name,
        &["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0"],
    )
    .await?;
    state.update(|nodes| {
        nodes[new].role = Some(Role::Primary);
        nodes[new].lag_seconds = None;
        let evidence = format!("{new_name} was promoted in its place");
        state.record(
            EventKind::Fenced,
            old_name,
            "lost primary",
            "fenced",
            &evidence,
        );
        nodes[old].fenced = true;
    });
    state.record(
        EventKind::FailoverSucceeded,
        &new_name,
        "replica",
        "primary",
        &format!(
            "promoted (GTID position {position}), {} ms after the decision; writes move here",
            started.elapsed().as_millis()
        ),
    );
    let (host, port) = snap.nodes[new]
        .addr
        .rsplit_once(':')
        .unwrap_or((snap.nodes[new].addr.as_str(), "3306"));
    let host = host
        .trim_matches(|c| c == '[' || c == ']')
        .replace('\'', "");
    let port: u16 = port.parse().unwrap_or(3306);
    for r in snap.nodes.iter().filter(|n| {
        n.id != new && n.id != old && n.role == Some(Role::Replica) && n.health == Health::Up
    }) {
        let change = format!(
            "CHANGE MASTER TO MASTER_HOST = '{host}', MASTER_PORT = {port}, MASTER_USE_GTID = slave_pos"
        );
        let result = async {
            let mut c = admin(config, r.id).await?;
            run(
                config,
                &mut c,
                &r.name,
                &["STOP SLAVE", &change, "START SLAVE"],
            )
            .await
        }
        .await;
        match result {
            Ok(()) => state.record(
                EventKind::Repointed,
                &r.name,
                &format!("following {old_name}"),
                &format!("following {new_name}"),
                "CHANGE MASTER TO ... MASTER_USE_GTID = slave_pos and START SLAVE",
            ),
            Err(e) => tracing::error!(
                cluster = %state.name,
                node = %r.name,
                "could not re-point it to {new_name}: {e}; operator step: on {}, STOP SLAVE; {change}; START SLAVE",
                r.name
            ),
        }
    }
    Ok(new)
}

/// A fenced former primary that is back and writable gets read_only = 1, so that nothing
/// connecting to it directly writes there either.
pub(super) async fn fence_returning(config: &ClusterConfig, state: &ClusterState) {
    let snap = state.load_full();
    for n in snap
        .nodes
        .iter()
        .filter(|n| n.fenced && n.health == Health::Up && n.role == Some(Role::Primary))
    {
        let done = async {
            let mut c = admin(config, n.id).await?;
            run(config, &mut c, &n.name, &["SET GLOBAL read_only = 1"]).await
        }
        .await;
        match done {
            Ok(()) => {
                tracing::warn!(cluster = %state.name, node = %n.name, "fenced former primary set read_only = 1; rejoin it as a replica (SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos, CHANGE MASTER TO ..., START SLAVE)")
            }
            Err(e) => {
                tracing::warn!(cluster = %state.name, node = %n.name, "could not set read_only on the fenced former primary: {e}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_gtid_pos;

    #[test]
    fn gtid_positions_by_domain() {
        let p = parse_gtid_pos("0-1-100,1-2-7");
        assert_eq!(p.get(&0), Some(&100));
        assert_eq!(p.get(&1), Some(&7));
        assert!(parse_gtid_pos("").is_empty());
        assert!(parse_gtid_pos("garbage").is_empty());
    }
}
