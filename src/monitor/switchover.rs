//! Planned switchover (the admin console's PROMOTE NODE): new transactions are held, the
//! ones in flight on the primary finish, the target replica catches up with the primary's
//! last write, is promoted, and the held transactions go to it. No acknowledged write is lost
//! and no transaction fails; the wait is bounded by `failover.timeout`.

use crate::cluster::{ClusterState, Health, Role};
use crate::config::ClusterConfig;
use std::time::{Duration, Instant};

/// Why a switchover did not happen (nothing changed, and writes were released).
#[derive(Debug, thiserror::Error)]
pub enum SwitchoverError {
    /// The target cannot be promoted.
    #[error("{0}")]
    Refused(String),
    /// Work on the primary did not finish in time.
    #[error("{0} server connection(s) of the primary stayed in use (transactions, or sessions pinned or in session pooling) for {1:?}; nothing changed")]
    Busy(usize, Duration),
    /// The promotion itself failed.
    #[error("{0}")]
    Failed(String),
}

/// Resumes the cluster when the switchover ends, however it ends (unless an operator had
/// paused it before).
struct Resume<'a>(&'a ClusterState, bool);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.set_paused(false);
        }
    }
}

/// Switches the primary role to replica `target`; `primary_in_use` counts the server
/// connections of the current primary that sessions hold. Returns what happened.
pub async fn switchover(
    config: &ClusterConfig,
    state: &ClusterState,
    target: usize,
    primary_in_use: impl Fn(usize) -> usize,
) -> Result<String, SwitchoverError> {
    let snap = state.load_full();
    let Some(old) = snap.primary().map(|p| p.id) else {
        return Err(SwitchoverError::Refused(format!(
            "cluster {} has no primary now",
            state.name
        )));
    };
    let t = snap
        .node(target)
        .ok_or_else(|| SwitchoverError::Refused("no such node".into()))?;
    if t.role != Some(Role::Replica) || t.health != Health::Up || t.fenced {
        return Err(SwitchoverError::Refused(format!(
            "{} is not a healthy replica (role {:?}, state {}, fenced {})",
            t.name,
            t.role,
            t.health.name(),
            t.fenced
        )));
    }
    if config.failover_login().is_none() {
        return Err(SwitchoverError::Refused(
            "no login to promote with: set [clusters.failover] user and password".into(),
        ));
    }
    let limit = config.failover.timeout / 2;
    let started = Instant::now();
    let was_paused = !state.set_paused(true);
    let _resume = Resume(state, was_paused);
    // Transactions in flight on the primary finish; new ones wait.
    loop {
        let busy = primary_in_use(old);
        if busy == 0 {
            break;
        }
        if started.elapsed() >= limit {
            return Err(SwitchoverError::Busy(busy, limit));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let left = limit
        .saturating_sub(started.elapsed())
        .max(Duration::from_secs(1));
    let summary = super::failover::switch_to(config, state, old, target, left)
        .await
        .map_err(|e| SwitchoverError::Failed(e.to_string()))?;
    Ok(format!(
        "{summary}; writes were held {} ms",
        started.elapsed().as_millis()
    ))
}
