//! Promote mode for MySQL/MariaDB. The replica that RECEIVED the most (`Gtid_IO_Pos`, what
//! its IO thread wrote to the relay log, which with semi-synchronous replication includes
//! every acknowledged commit) is chosen; its IO thread is stopped and its SQL thread given a
//! bounded time to apply everything received (MASTER_GTID_WAIT), and only then is it
//! promoted (STOP SLAVE, RESET SLAVE ALL, SET GLOBAL read_only = 0): RESET SLAVE ALL throws
//! the relay log away, and with it whatever was received but not yet applied. The others are
//! re-pointed with CHANGE MASTER TO ... MASTER_USE_GTID = slave_pos, and a returning old
//! primary is set read_only so nothing writes to it by accident.

use super::failover::FailoverError;
use super::ProbeError;
use crate::backend::mysql::{connect, MyConn, MyConnectSpec};
use crate::cluster::events::EventKind;
use crate::cluster::{ClusterState, Health, Role};
use crate::config::ClusterConfig;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use switchyard_mysql::Command;

use super::gtid::*;

/// One MASTER_GTID_WAIT call waits at most this long, so that a SQL thread that stops on an
/// error is noticed within a second instead of at the end of the whole catch-up budget.
const CATCH_UP_STEP: Duration = Duration::from_secs(1);

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
            .map_err(node_err(name))?;
    }
    Ok(())
}

fn node_err(name: &str) -> impl FnOnce(crate::backend::BackendError) -> FailoverError + '_ {
    move |e| FailoverError::Node {
        node: name.to_string(),
        source: ProbeError::MySql(Box::new(e)),
    }
}

/// The first column of the first row of `sql` ("" for no row or NULL), within `timeout`.
async fn scalar(
    conn: &mut MyConn,
    name: &str,
    sql: &str,
    timeout: Duration,
) -> Result<String, FailoverError> {
    let row = conn
        .query_row(sql, timeout, 1 << 20)
        .await
        .map_err(node_err(name))?;
    Ok(row
        .and_then(|r| r.into_iter().next())
        .and_then(|(_, v)| v)
        .unwrap_or_default())
}

/// `SHOW SLAVE STATUS` as column -> value (NULL as ""); empty when the node replicates from
/// nothing.
async fn slave_status(
    config: &ClusterConfig,
    conn: &mut MyConn,
    name: &str,
) -> Result<HashMap<String, String>, FailoverError> {
    let row = conn
        .query_row("SHOW SLAVE STATUS", config.health_check_timeout, 1 << 20)
        .await
        .map_err(node_err(name))?;
    Ok(row
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// A replica that could be promoted, as it answered just now.
#[derive(Debug, Clone)]
struct Candidate {
    id: usize,
    /// Per domain, the larger of what its IO thread received (`Gtid_IO_Pos`) and what it
    /// applied or wrote itself (`@@gtid_current_pos`): everything it can serve once promoted.
    received: HashMap<u32, u64>,
    /// `@@gtid_current_pos`.
    applied: HashMap<u32, u64>,
}

/// Candidate order: most received, then most applied (less to catch up before the
/// promotion), then the lower node id, so the choice is stable.
fn rank(a: &Candidate, b: &Candidate) -> Ordering {
    compare_gtid(&a.received, &b.received)
        .then_with(|| compare_gtid(&a.applied, &b.applied))
        .then_with(|| b.id.cmp(&a.id))
}

/// Asks replica `id` what it received and applied.
async fn ask_candidate(
    config: &ClusterConfig,
    id: usize,
    name: &str,
) -> Result<(Candidate, String, String), FailoverError> {
    let mut c = admin(config, id).await?;
    let status = slave_status(config, &mut c, name).await?;
    let io_pos = status.get("Gtid_IO_Pos").cloned().unwrap_or_default();
    let current = scalar(
        &mut c,
        name,
        "SELECT @@gtid_current_pos",
        config.health_check_timeout,
    )
    .await?;
    let applied = parse_gtid_pos(&current);
    let candidate = Candidate {
        id,
        received: gtid_max(&parse_gtid_pos(&io_pos), &applied),
        applied,
    };
    Ok((candidate, io_pos, current))
}

/// With the chosen replica's IO thread stopped, lets its SQL thread apply everything the IO
/// thread received (`Gtid_IO_Pos`, read again now that it can no longer move), waiting with
/// MASTER_GTID_WAIT for at most [`catch_up_budget`]. Returns a note for the event record.
///
/// On timeout, or when the SQL thread stops on an error, the promotion goes on and what was
/// not applied is logged as a warning (how many transactions, the GTID positions): promote
/// mode is asked for availability, and a SQL thread that cannot apply (an error, a
/// MASTER_DELAY) would otherwise leave the cluster without a primary for good. The missing
/// transactions are still in the old primary's binary log for an operator to recover.
async fn catch_up(
    config: &ClusterConfig,
    state: &ClusterState,
    conn: &mut MyConn,
    name: &str,
) -> Result<String, FailoverError> {
    let status = slave_status(config, conn, name).await?;
    let target = status.get("Gtid_IO_Pos").cloned().unwrap_or_default();
    let target_map = parse_gtid_pos(&target);
    if target_map.is_empty() {
        return Ok("nothing received beyond what was applied".into());
    }
    let started = Instant::now();
    let budget = catch_up_budget(config.failover.timeout);
    if status.get("Slave_SQL_Running").map(String::as_str) != Some("Yes") {
        tracing::warn!(
            cluster = %state.name,
            node = %name,
            "its SQL thread is not running (last error: {:?}): starting it to apply what it received before the promotion",
            status.get("Last_SQL_Error").map(String::as_str).unwrap_or("")
        );
        if let Err(e) = run(config, conn, name, &["START SLAVE SQL_THREAD"]).await {
            tracing::warn!(cluster = %state.name, node = %name, "START SLAVE SQL_THREAD: {e}");
        }
    }
    let mut stopped = None;
    loop {
        let step = budget.saturating_sub(started.elapsed()).min(CATCH_UP_STEP);
        let Some(sql) = gtid_wait_sql(&target, step) else {
            tracing::warn!(cluster = %state.name, node = %name, "unexpected Gtid_IO_Pos {target:?}: not waiting for it to be applied");
            return Ok(format!(
                "Gtid_IO_Pos {target:?} not understood, not waited for"
            ));
        };
        // The server waits `step`; the reply gets a probe timeout on top.
        let waited = scalar(conn, name, &sql, step + config.health_check_timeout).await?;
        if waited == "0" {
            let note = format!(
                "applied everything received ({target}) in {} ms",
                started.elapsed().as_millis()
            );
            tracing::info!(cluster = %state.name, node = %name, "{note}");
            return Ok(note);
        }
        if started.elapsed() >= budget {
            break;
        }
        let status = slave_status(config, conn, name).await?;
        if status.get("Slave_SQL_Running").map(String::as_str) != Some("Yes") {
            stopped = Some(status.get("Last_SQL_Error").cloned().unwrap_or_default());
            break;
        }
    }
    let applied = scalar(
        conn,
        name,
        "SELECT @@gtid_slave_pos",
        config.health_check_timeout,
    )
    .await?;
    let behind = transactions_behind(&parse_gtid_pos(&applied), &target_map);
    let why = match stopped {
        Some(error) => format!("its SQL thread stopped (last error: {error:?})"),
        None => format!("not done after {} ms", started.elapsed().as_millis()),
    };
    let note = format!(
        "applied up to {applied} of {target} received, {why}: {behind} received transaction(s) not applied are discarded by the promotion"
    );
    tracing::warn!(cluster = %state.name, node = %name, "promoting anyway (availability): {note}; they remain in the old primary's binary log");
    Ok(note)
}

/// Promotes the healthy replica that received the most in place of `old`, after it applied
/// what it received (see [`catch_up`]); returns its id.
pub(super) async fn promote(
    config: &ClusterConfig,
    state: &ClusterState,
    old: usize,
    old_name: &str,
    started: Instant,
) -> Result<usize, FailoverError> {
    let snap = state.load_full();
    let mut best: Option<Candidate> = None;
    for n in snap
        .nodes
        .iter()
        .filter(|n| n.role == Some(Role::Replica) && n.health == Health::Up && !n.fenced)
    {
        match ask_candidate(config, n.id, &n.name).await {
            Ok((c, io_pos, current)) => {
                tracing::info!(cluster = %state.name, node = %n.name, "failover candidate: GTID received {io_pos:?}, current {current:?}");
                if best
                    .as_ref()
                    .is_none_or(|b| rank(&c, b) == Ordering::Greater)
                {
                    best = Some(c);
                }
            }
            Err(e) => {
                tracing::warn!(cluster = %state.name, node = %n.name, "not a failover candidate: {e}")
            }
        }
    }
    let new = best.ok_or(FailoverError::NoCandidate)?.id;
    promote_chosen(config, state, old, old_name, new, started).await
}

/// Promotes replica `new` in place of `old` once it applied what it received (bounded),
/// fences `old` and re-points the other replicas; returns `new`.
pub(super) async fn promote_chosen(
    config: &ClusterConfig,
    state: &ClusterState,
    old: usize,
    old_name: &str,
    new: usize,
    started: Instant,
) -> Result<usize, FailoverError> {
    let snap = state.load_full();
    let new_name = snap.nodes[new].name.clone();
    let mut conn = admin(config, new).await?;
    // The IO thread first: what it received is then final, and the SQL thread applies it.
    run(config, &mut conn, &new_name, &["STOP SLAVE IO_THREAD"]).await?;
    let caught_up = match catch_up(config, state, &mut conn, &new_name).await {
        Ok(note) => note,
        Err(e) => {
            tracing::warn!(cluster = %state.name, node = %new_name, "could not check that it applied what it received: {e}; promoting anyway");
            // The connection may be half way through a reply: use a new one.
            conn = admin(config, new).await?;
            format!("catch-up not checked: {e}")
        }
    };
    run(
        config,
        &mut conn,
        &new_name,
        &["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0"],
    )
    .await?;
    let position = scalar(
        &mut conn,
        &new_name,
        "SELECT @@gtid_current_pos",
        config.health_check_timeout,
    )
    .await
    .unwrap_or_else(|e| format!("unknown: {e}"));
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
            "promoted (GTID position {position}; {caught_up}), {} ms after the decision; writes move here",
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

/// Planned switchover to replica `new`: the old primary is set read_only (no write in flight:
/// the caller paused the cluster and waited for its transactions), `new` waits until it
/// applied the old primary's last transaction (MASTER_GTID_WAIT, bounded by `limit`), then it
/// is promoted as in a failover. Err leaves the old primary writable again.
pub(super) async fn switch_to(
    config: &ClusterConfig,
    state: &ClusterState,
    old: usize,
    new: usize,
    limit: Duration,
) -> Result<String, FailoverError> {
    let snap = state.load_full();
    let (old_name, new_name) = (snap.nodes[old].name.clone(), snap.nodes[new].name.clone());
    let started = Instant::now();
    let mut primary = admin(config, old).await?;
    run(
        config,
        &mut primary,
        &old_name,
        &["SET GLOBAL read_only = 1"],
    )
    .await?;
    let caught_up = async {
        let pos = scalar(
            &mut primary,
            &old_name,
            "SELECT @@gtid_binlog_pos",
            config.health_check_timeout,
        )
        .await?;
        let Some(sql) = gtid_wait_sql(&pos, limit) else {
            return Ok::<_, FailoverError>((pos, true));
        };
        let mut replica = admin(config, new).await?;
        let waited = scalar(
            &mut replica,
            &new_name,
            &sql,
            limit + config.health_check_timeout,
        )
        .await?;
        Ok((pos, waited == "0"))
    }
    .await;
    let pos = match caught_up {
        Ok((pos, true)) => pos,
        Ok((pos, false)) => {
            let _ = run(
                config,
                &mut primary,
                &old_name,
                &["SET GLOBAL read_only = 0"],
            )
            .await;
            return Err(FailoverError::NotCaughtUp(format!(
                "{new_name} did not apply GTID position {pos} within {limit:?}; {old_name} is writable again"
            )));
        }
        Err(e) => {
            let _ = run(
                config,
                &mut primary,
                &old_name,
                &["SET GLOBAL read_only = 0"],
            )
            .await;
            return Err(e);
        }
    };
    promote_chosen(config, state, old, &old_name, new, started).await?;
    Ok(format!(
        "{new_name} applied {old_name}'s last transactions ({pos}) and was promoted in {} ms; {old_name} is read_only and fenced",
        started.elapsed().as_millis()
    ))
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
    use super::*;

    fn pos(text: &str) -> HashMap<u32, u64> {
        parse_gtid_pos(text)
    }

    #[test]
    fn gtid_positions_by_domain() {
        let p = parse_gtid_pos("0-1-100,1-2-7");
        assert_eq!(p.get(&0), Some(&100));
        assert_eq!(p.get(&1), Some(&7));
        assert!(parse_gtid_pos("").is_empty());
        assert!(parse_gtid_pos("garbage").is_empty());
        assert_eq!(parse_gtid_pos("0-1-5, 1-2-3").get(&1), Some(&3));
    }

    #[test]
    fn gtid_positions_compare_per_domain() {
        assert_eq!(
            compare_gtid(&pos("0-1-10"), &pos("0-2-10")),
            Ordering::Equal
        );
        assert_eq!(
            compare_gtid(&pos("0-1-11"), &pos("0-1-10")),
            Ordering::Greater
        );
        assert_eq!(compare_gtid(&pos(""), &pos("0-1-1")), Ordering::Less);
        assert_eq!(
            compare_gtid(&pos("0-1-10,1-1-1"), &pos("0-1-10")),
            Ordering::Greater
        );
        // Ahead in every domain wins even when another domain makes the sum larger.
        assert_eq!(
            compare_gtid(&pos("0-1-10,1-1-5"), &pos("0-1-9,1-1-5")),
            Ordering::Greater
        );
        // Diverged: each ahead in one domain; the one with more transactions wins.
        assert_eq!(
            compare_gtid(&pos("0-1-10,1-1-2"), &pos("0-1-9,1-1-5")),
            Ordering::Less
        );
    }

    #[test]
    fn received_is_the_larger_of_io_and_current_per_domain() {
        let m = gtid_max(&pos("0-1-10,1-1-2"), &pos("0-1-8,1-1-4,2-3-1"));
        assert_eq!(m, pos("0-1-10,1-1-4,2-3-1"));
        assert_eq!(gtid_max(&pos(""), &pos("0-1-3")), pos("0-1-3"));
    }

    #[test]
    fn candidates_rank_by_received_then_applied_then_id() {
        let c = |id, received: &str, applied: &str| Candidate {
            id,
            received: gtid_max(&pos(received), &pos(applied)),
            applied: pos(applied),
        };
        // Applied more but received less loses: the other has acknowledged writes in its
        // relay log.
        let applied_more = c(1, "0-1-100", "0-1-100");
        let received_more = c(2, "0-1-120", "0-1-90");
        assert_eq!(rank(&received_more, &applied_more), Ordering::Greater);
        // Same received: less to catch up wins.
        let a = c(1, "0-1-120", "0-1-120");
        let b = c(2, "0-1-120", "0-1-90");
        assert_eq!(rank(&a, &b), Ordering::Greater);
        // Empty Gtid_IO_Pos falls back to what was applied.
        let d = c(3, "", "0-1-130");
        assert_eq!(rank(&d, &a), Ordering::Greater);
        // A full tie: the lower id.
        let e = c(4, "0-1-120", "0-1-120");
        assert_eq!(rank(&a, &e), Ordering::Greater);
        let best = [b.clone(), e.clone(), a.clone()]
            .into_iter()
            .max_by(rank)
            .map(|c| c.id);
        assert_eq!(best, Some(1));
    }

    #[test]
    fn behind_counts_transactions_per_domain() {
        assert_eq!(transactions_behind(&pos("0-1-90"), &pos("0-1-120")), 30);
        assert_eq!(transactions_behind(&pos("0-1-130"), &pos("0-1-120")), 0);
        assert_eq!(
            transactions_behind(&pos("0-1-90"), &pos("0-1-100,1-2-5")),
            15
        );
        assert_eq!(transactions_behind(&pos(""), &pos("")), 0);
    }

    #[test]
    fn wait_sql_takes_only_gtid_characters() {
        assert_eq!(
            gtid_wait_sql("0-1-100,1-2-7", Duration::from_millis(1500)).as_deref(),
            Some("SELECT MASTER_GTID_WAIT('0-1-100,1-2-7', 1.500)")
        );
        assert_eq!(
            gtid_wait_sql(" 0-1-5, 1-2-3 ", Duration::from_secs(1)).as_deref(),
            Some("SELECT MASTER_GTID_WAIT('0-1-5,1-2-3', 1.000)")
        );
        assert_eq!(gtid_wait_sql("", Duration::from_secs(1)), None);
        assert_eq!(gtid_wait_sql("0-1-5'); DROP", Duration::from_secs(1)), None);
    }

    #[test]
    fn catch_up_takes_half_the_failover_timeout() {
        assert_eq!(
            catch_up_budget(Duration::from_secs(30)),
            Duration::from_secs(15)
        );
        assert_eq!(
            catch_up_budget(Duration::from_millis(500)),
            Duration::from_secs(1)
        );
    }
}
