//! What the monitors' raw figures mean for reads: lag in bytes, the lag limits with hysteresis,
//! the floor of serving replicas, and the slow start of a replica taken back.

use super::events::EventKind;
use super::state::{ClusterState, Health, NodeState};
use super::Role;
use crate::config::ClusterConfig;
use std::time::{Duration, Instant};

/// Lowest share of its weight a replica gets at the start of its slow start.
const SLOW_START_FLOOR: f64 = 0.1;

/// The cluster's lag and slow-start settings.
#[derive(Debug, Clone)]
pub struct LagPolicy {
    max_bytes: Option<u64>,
    max_seconds: Option<f64>,
    min_serving: usize,
    slow_start: Duration,
}

impl LagPolicy {
    /// From `max_lag_bytes`, `max_lag`, `min_serving_replicas` and `slow_start`.
    pub fn from_config(c: &ClusterConfig) -> Self {
        LagPolicy {
            max_bytes: c.max_lag_bytes,
            max_seconds: c.max_lag.map(|d| d.as_secs_f64()),
            min_serving: c.min_serving_replicas,
            slow_start: c.slow_start,
        }
    }

    fn over(&self, n: &NodeState) -> bool {
        // A replica that does not replicate at all (MySQL's Seconds_Behind_Master is NULL when
        // a replication thread is stopped) would serve ever staler reads: out, limits or not.
        n.lag_seconds.is_some_and(|l| l == f64::MAX)
            || self
                .max_bytes
                .zip(n.lag_bytes)
                .is_some_and(|(max, lag)| lag > max)
            || self
                .max_seconds
                .zip(n.lag_seconds)
                .is_some_and(|(max, lag)| lag > max)
    }

    /// Back under half of every limit: the hysteresis that keeps a replica near the limit
    /// from flapping in and out.
    fn well_under(&self, n: &NodeState) -> bool {
        n.lag_seconds.is_none_or(|l| l < f64::MAX)
            && self
                .max_bytes
                .is_none_or(|max| n.lag_bytes.is_some_and(|lag| lag <= max / 2))
            && self
                .max_seconds
                .is_none_or(|max| n.lag_seconds.is_some_and(|lag| lag <= max / 2.0))
    }
}

/// Recomputes the derived fields of `nodes` (after a change from `old`), logging what moved.
pub fn derive(
    policy: &LagPolicy,
    nodes: &mut [NodeState],
    old: &[NodeState],
    state: &ClusterState,
) {
    let now = Instant::now();
    let mut primaries = nodes
        .iter()
        .filter(|n| n.role == Some(Role::Primary) && n.usable() && !n.fenced);
    let primary = match (primaries.next(), primaries.next()) {
        (Some(p), None) if p.lsn > 0 => Some(PrimarySamples {
            latest: p.probed_at.map(|t| (t, p.lsn)),
            previous: p.prev_probed_at.map(|t| (t, p.prev_lsn)),
        }),
        _ => None,
    };
    for (n, o) in nodes.iter_mut().zip(old) {
        if n.role != Some(Role::Replica) {
            n.lag_bytes = None;
            n.lagging = false;
            n.kept_by_floor = false;
            continue;
        }
        let sample = primary
            .as_ref()
            .zip(n.probed_at.filter(|_| n.lsn > 0))
            .and_then(|(p, at)| p.at_or_before(at));
        if let Some(p) = sample {
            n.lag_bytes = Some(p.saturating_sub(n.lsn));
        }
        if !n.lagging && policy.over(n) {
            n.lagging = true;
            let evidence = lag_evidence(n, policy);
            state.record(
                EventKind::LagEjected,
                &n.name,
                "serving",
                "lagging",
                &evidence,
            );
        } else if n.lagging && policy.well_under(n) {
            n.lagging = false;
            n.serving_since = Some(now);
            let evidence = lag_evidence(n, policy);
            state.record(
                EventKind::LagReadmitted,
                &n.name,
                "lagging",
                "serving",
                &evidence,
            );
        }
        if o.health == Health::Down && n.health == Health::Up {
            n.serving_since = Some(now);
        }
    }
    apply_floor(policy, nodes, state);
    for n in nodes.iter_mut() {
        n.effective_weight = slow_start_weight(n, policy.slow_start, now);
    }
}

/// The primary's last two WAL positions with their probe times.
struct PrimarySamples {
    latest: Option<(Instant, u64)>,
    previous: Option<(Instant, u64)>,
}

impl PrimarySamples {
    /// The primary's position read no later than `at`: compared with a replica's position
    /// read at `at`, it never overstates the lag (a primary probed just after a burst of
    /// writes would make a healthy replica look behind).
    fn at_or_before(&self, at: Instant) -> Option<u64> {
        [self.latest, self.previous]
            .into_iter()
            .flatten()
            .find(|(t, _)| *t <= at)
            .map(|(_, lsn)| lsn)
    }
}

fn lag_evidence(n: &NodeState, policy: &LagPolicy) -> String {
    format!(
        "lag {} bytes / {} s (limits: {} bytes / {} s; readmitted under half)",
        n.lag_bytes.map_or("?".into(), |b| b.to_string()),
        n.lag_seconds.map_or("?".into(), |s| format!("{s:.3}")),
        policy.max_bytes.map_or("none".into(), |b| b.to_string()),
        policy.max_seconds.map_or("none".into(), |s| format!("{s}")),
    )
}

/// Keeps the least lagging replicas serving when fewer than `min_serving` are within limits.
fn apply_floor(policy: &LagPolicy, nodes: &mut [NodeState], state: &ClusterState) {
    let candidate = |n: &NodeState| n.role == Some(Role::Replica) && n.usable() && n.weight > 0;
    let serving = nodes.iter().filter(|n| candidate(n) && !n.lagging).count();
    let wanted = policy.min_serving.saturating_sub(serving);
    let mut lagging: Vec<usize> = nodes
        .iter()
        .filter(|n| candidate(n) && n.lagging)
        .map(|n| n.id)
        .collect();
    lagging.sort_by_key(|&id| {
        let n = &nodes[id];
        (
            n.lag_bytes.unwrap_or(u64::MAX),
            (n.lag_seconds.unwrap_or(f64::MAX) * 1e3) as u64,
        )
    });
    let keep: Vec<usize> = lagging.into_iter().take(wanted).collect();
    for n in nodes.iter_mut() {
        let kept = keep.contains(&n.id);
        if kept && !n.kept_by_floor {
            let evidence = format!(
                "only {serving} replica(s) within the lag limits and min_serving_replicas = {}: keeping the least lagging one serving ({} bytes behind)",
                policy.min_serving,
                n.lag_bytes.map_or("?".into(), |b| b.to_string())
            );
            state.record(
                EventKind::FloorKept,
                &n.name,
                "lagging",
                "kept serving",
                &evidence,
            );
        }
        n.kept_by_floor = kept;
    }
}

/// Read weight in hundredths: full weight, or a ramp from 10 % while in slow start.
fn slow_start_weight(n: &mut NodeState, slow_start: Duration, now: Instant) -> u32 {
    let full = n.weight.saturating_mul(100);
    if full == 0 {
        return 0;
    }
    let Some(since) = n.serving_since else {
        return full;
    };
    let elapsed = now.saturating_duration_since(since);
    if slow_start.is_zero() || elapsed >= slow_start {
        n.serving_since = None;
        return full;
    }
    let share = (elapsed.as_secs_f64() / slow_start.as_secs_f64()).max(SLOW_START_FLOOR);
    ((f64::from(full) * share).ceil() as u32).clamp(1, full.max(1))
}
