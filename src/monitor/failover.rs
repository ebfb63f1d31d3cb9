//! Promote mode: when the primary has been unreachable for `failover.after`, promote the
//! replica that holds the most WAL, fence the old primary, and re-point the other replicas.

use super::probe::{connect_as, format_lsn, parse_lsn};
use super::{ProbeError, Prober};
use crate::cluster::events::EventKind;
use crate::cluster::{ClusterState, Health, Role};
use crate::config::ClusterConfig;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_postgres::Client;

/// Why a promotion did not happen.
#[derive(Debug, thiserror::Error)]
pub(super) enum FailoverError {
    /// Talking to a node failed.
    #[error("node {node}: {source}")]
    Node {
        node: String,
        #[source]
        source: ProbeError,
    },
    /// No replica is healthy.
    #[error("no healthy replica to promote")]
    NoCandidate,
    /// pg_promote() returned false.
    #[error("pg_promote() on {0} did not finish in time")]
    NotPromoted(String),
    /// A planned switchover's target did not catch up in time; nothing changed.
    #[error("{0}")]
    NotCaughtUp(String),
}

fn node_err(node: &str) -> impl FnOnce(tokio_postgres::Error) -> FailoverError + '_ {
    move |e| FailoverError::Node {
        node: node.to_string(),
        source: ProbeError::Postgres(e),
    }
}

/// Watches the cluster and promotes a replica when its primary is lost.
pub async fn run(
    config: Arc<ClusterConfig>,
    state: Arc<ClusterState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut changes = state.subscribe();
    let mut known_primary = state.load().primary().map(|p| p.id);
    let mut lost_since: Option<Instant> = None;
    let recheck = config.health_check_interval.min(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(recheck) => {}
            _ = shutdown.changed() => return,
        }
        let snap = state.load_full();
        if config.protocol == crate::config::Protocol::Mysql
            && snap
                .nodes
                .iter()
                .any(|n| n.fenced && n.health == Health::Up && n.role == Some(Role::Primary))
        {
            super::failover_mysql::fence_returning(&config, &state).await;
        }
        if let Some(p) = snap.primary() {
            known_primary = Some(p.id);
            lost_since = None;
            continue;
        }
        // A split brain is for an operator; a primary never seen is nothing to replace; a
        // primary that is up but no longer claims the role is being handled by someone else.
        let lost = known_primary
            .and_then(|id| snap.node(id))
            .filter(|n| !snap.split_brain && n.health == Health::Down && !n.fenced);
        let Some(old) = lost.map(|n| n.id) else {
            lost_since = None;
            continue;
        };
        let since = *lost_since.get_or_insert_with(Instant::now);
        if since.elapsed() < config.failover.after {
            continue;
        }
        match failover(&config, &state, old, since).await {
            Ok(Some(new)) => {
                known_primary = Some(new);
                lost_since = None;
            }
            Ok(None) => lost_since = None,
            Err(e) => {
                let name = &snap.nodes[old].name;
                state.record(
                    EventKind::FailoverFailed,
                    name,
                    "primary lost",
                    "no primary",
                    &format!("{e}; retrying after failover.after"),
                );
                lost_since = Some(Instant::now());
            }
        }
    }
}

/// Promotes a replica in place of node `old`; None when the old primary answers again.
async fn failover(
    config: &ClusterConfig,
    state: &ClusterState,
    old: usize,
    since: Instant,
) -> Result<Option<usize>, FailoverError> {
    let snap = state.load_full();
    let old_name = snap.nodes[old].name.clone();
    // Passive checks can mark a node down on one refused connection: ask it directly first.
    if let Ok(p) = Prober::default().probe(config, old).await {
        if p.role == Role::Primary {
            tracing::info!(cluster = %state.name, node = %old_name, "primary answers again: no failover");
            return Ok(None);
        }
    }
    let started = Instant::now();
    state.record(
        EventKind::FailoverStarted,
        &old_name,
        "primary",
        "lost",
        &format!(
            "primary unreachable for {:.1} s (failover.after = {:?})",
            since.elapsed().as_secs_f64(),
            config.failover.after
        ),
    );
    if config.protocol == crate::config::Protocol::Mysql {
        return super::failover_mysql::promote(config, state, old, &old_name, started)
            .await
            .map(Some);
    }
    let (new, position) = pick_candidate(config, state).await?;
    promote_chosen(config, state, old, &old_name, new, position, started)
        .await
        .map(Some)
}

/// Promotes replica `new` (holding WAL up to `position`) in place of `old`, fences `old` and
/// re-points the other replicas; returns `new`.
async fn promote_chosen(
    config: &ClusterConfig,
    state: &ClusterState,
    old: usize,
    old_name: &str,
    new: usize,
    position: u64,
    started: Instant,
) -> Result<usize, FailoverError> {
    let snap = state.load_full();
    let old_name = old_name.to_string();
    let new_name = snap.nodes[new].name.clone();
    let client = admin(config, new, &new_name).await?;
    let promoted: bool = client
        .query_one("SELECT pg_promote(true, 30)", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(node_err(&new_name))?;
    if !promoted {
        return Err(FailoverError::NotPromoted(new_name));
    }
    state.update(|nodes| {
        nodes[new].role = Some(Role::Primary);
        nodes[new].timeline = None;
        let evidence = format!("{new_name} was promoted in its place");
        state.record(
            EventKind::Fenced,
            &old_name,
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
            "promoted (received WAL up to {}), {} ms after the decision; writes move here",
            format_lsn(position),
            started.elapsed().as_millis()
        ),
    );
    for r in snap.nodes.iter().filter(|n| {
        n.id != new && n.id != old && n.role == Some(Role::Replica) && n.health == Health::Up
    }) {
        match repoint(
            config,
            &client,
            &new_name,
            &snap.nodes[new].addr,
            r.id,
            &r.name,
        )
        .await
        {
            Ok(()) => state.record(
                EventKind::Repointed,
                &r.name,
                &format!("following {old_name}"),
                &format!("following {new_name}"),
                "primary_conninfo changed and configuration reloaded",
            ),
            Err(e) => tracing::error!(
                cluster = %state.name,
                node = %r.name,
                "could not re-point it to {new_name}: {e}; operator step: on {}, set primary_conninfo to the new primary's host and port (and create its replication slot on {new_name}), then SELECT pg_reload_conf()",
                r.name
            ),
        }
    }
    Ok(new)
}

/// Planned switchover to replica `new`: the old primary is made read-only for new
/// transactions (no write in flight: the caller paused the cluster and waited for its
/// transactions), `new` replays up to the old primary's last WAL position (bounded by
/// `limit`), then it is promoted as in a failover. Err leaves the old primary writable.
pub(super) async fn switch_to(
    config: &ClusterConfig,
    state: &ClusterState,
    old: usize,
    new: usize,
    limit: Duration,
) -> Result<String, FailoverError> {
    if config.protocol == crate::config::Protocol::Mysql {
        return super::failover_mysql::switch_to(config, state, old, new, limit).await;
    }
    let snap = state.load_full();
    let (old_name, new_name) = (snap.nodes[old].name.clone(), snap.nodes[new].name.clone());
    let started = Instant::now();
    let primary = admin(config, old, &old_name).await?;
    // ALTER SYSTEM cannot run in a transaction block: two round trips.
    let read_only = |on: bool| {
        let primary = &primary;
        async move {
            let value = if on { "on" } else { "off" };
            primary
                .batch_execute(&format!(
                    "ALTER SYSTEM SET default_transaction_read_only = {value}"
                ))
                .await?;
            primary.batch_execute("SELECT pg_reload_conf()").await
        }
    };
    read_only(true).await.map_err(node_err(&old_name))?;
    let lsn_text: String = primary
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(node_err(&old_name))?;
    let target_lsn = parse_lsn(&lsn_text).unwrap_or(u64::MAX);
    let replica = admin(config, new, &new_name).await?;
    let deadline = Instant::now() + limit;
    let mut replayed = 0;
    while Instant::now() < deadline {
        let row: Option<String> = replica
            .query_one("SELECT pg_last_wal_replay_lsn()::text", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(node_err(&new_name))?;
        replayed = row.as_deref().and_then(parse_lsn).unwrap_or(0);
        if replayed >= target_lsn {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if replayed < target_lsn {
        let _ = read_only(false).await;
        return Err(FailoverError::NotCaughtUp(format!(
            "{new_name} replayed up to {} of {lsn_text} within {limit:?}; {old_name} is writable again",
            format_lsn(replayed)
        )));
    }
    promote_chosen(config, state, old, &old_name, new, replayed, started).await?;
    Ok(format!(
        "{new_name} replayed {old_name}'s WAL up to {lsn_text} and was promoted in {} ms; {old_name} is read-only (default_transaction_read_only) and fenced",
        started.elapsed().as_millis()
    ))
}

/// An admin connection to node `id` (failover user, else the monitor user).
async fn admin(config: &ClusterConfig, id: usize, name: &str) -> Result<Client, FailoverError> {
    let (user, password) = config.failover_login().ok_or(FailoverError::NoCandidate)?;
    connect_as(config, id, user, password)
        .await
        .map_err(|source| FailoverError::Node {
            node: name.to_string(),
            source,
        })
}

/// The healthy replica holding the most WAL (received, which a promotion replays first),
/// asked fresh rather than from the last probe.
async fn pick_candidate(
    config: &ClusterConfig,
    state: &ClusterState,
) -> Result<(usize, u64), FailoverError> {
    let snap = state.load_full();
    let mut best: Option<(u64, u64, usize)> = None;
    for n in snap
        .nodes
        .iter()
        .filter(|n| n.role == Some(Role::Replica) && n.health == Health::Up && !n.fenced)
    {
        let asked = async {
            let c = admin(config, n.id, &n.name).await?;
            let row = c
                .query_one(
                    "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text",
                    &[],
                )
                .await
                .map_err(node_err(&n.name))?;
            let recovering: bool = row.try_get(0).map_err(node_err(&n.name))?;
            let receive: Option<String> = row.try_get(1).map_err(node_err(&n.name))?;
            let replay: Option<String> = row.try_get(2).map_err(node_err(&n.name))?;
            let replay = replay.as_deref().and_then(parse_lsn).unwrap_or(0);
            let receive = receive.as_deref().and_then(parse_lsn).unwrap_or(0);
            Ok::<_, FailoverError>((recovering, receive.max(replay), replay))
        };
        match asked.await {
            Ok((true, position, replay)) => {
                tracing::info!(cluster = %state.name, node = %n.name, "failover candidate: WAL received up to {}, replayed up to {}", format_lsn(position), format_lsn(replay));
                if best.is_none_or(|(p, r, _)| (position, replay) > (p, r)) {
                    best = Some((position, replay, n.id));
                }
            }
            Ok((false, ..)) => {
                tracing::warn!(cluster = %state.name, node = %n.name, "not a failover candidate: no longer in recovery")
            }
            Err(e) => {
                tracing::warn!(cluster = %state.name, node = %n.name, "not a failover candidate: {e}")
            }
        }
    }
    best.map(|(p, _, id)| (id, p))
        .ok_or(FailoverError::NoCandidate)
}

/// Points replica `id` at the new primary: its slot created there, its primary_conninfo's host
/// and port replaced, configuration reloaded (PostgreSQL 13+ restarts the WAL receiver).
async fn repoint(
    config: &ClusterConfig,
    new_primary: &Client,
    new_name: &str,
    new_addr: &str,
    id: usize,
    name: &str,
) -> Result<(), FailoverError> {
    let replica = admin(config, id, name).await?;
    let conninfo: String = replica
        .query_one("SELECT current_setting('primary_conninfo')", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(node_err(name))?;
    let slot: String = replica
        .query_one("SELECT current_setting('primary_slot_name')", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(node_err(name))?;
    if !slot.is_empty() {
        new_primary
            .execute(
                "SELECT pg_create_physical_replication_slot($1, true) \
                 WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
                &[&slot],
            )
            .await
            .map_err(node_err(new_name))?;
    }
    let (host, port) = new_addr.rsplit_once(':').unwrap_or((new_addr, "5432"));
    let host = host.trim_matches(|c| c == '[' || c == ']');
    let conninfo = super::conninfo::with_host_port(&conninfo, host, port);
    let sql = format!(
        "ALTER SYSTEM SET primary_conninfo = '{}'",
        conninfo.replace('\'', "''")
    );
    replica.batch_execute(&sql).await.map_err(node_err(name))?;
    replica
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .map_err(node_err(name))?;
    Ok(())
}
