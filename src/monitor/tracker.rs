//! Turns one node's probe outcomes into published state: health with ejection and readmission
//! thresholds, role, WAL position and replay delay; every change is logged with its evidence.

use super::{ProbeError, ProbeResult};
use crate::cluster::events::EventKind;
use crate::cluster::{ClusterState, Health, Role};
use crate::config::{ClusterConfig, FailoverMode};

/// Consecutive probe outcomes of one node, for ejection and readmission thresholds.
#[derive(Default)]
pub(super) struct Tracker {
    failures: u32,
    successes: u32,
    warned_role: bool,
}

fn role_name(r: Option<Role>) -> &'static str {
    match r {
        Some(Role::Primary) => "primary",
        Some(Role::Replica) => "replica",
        None => "unknown",
    }
}

impl Tracker {
    /// Publishes what probe `r` of node `id` says; `first` is the probe before serving starts.
    pub(super) fn record(
        &mut self,
        config: &ClusterConfig,
        state: &ClusterState,
        id: usize,
        r: Result<ProbeResult, ProbeError>,
        first: bool,
    ) {
        match r {
            Ok(p) => self.record_success(config, state, id, p, first),
            Err(e) => self.record_failure(config, state, id, &e, first),
        }
    }

    fn record_success(
        &mut self,
        config: &ClusterConfig,
        state: &ClusterState,
        id: usize,
        p: ProbeResult,
        first: bool,
    ) {
        self.failures = 0;
        self.successes = self.successes.saturating_add(1);
        let configured = config.nodes[id].role;
        if configured.is_some_and(|c| c != p.role) && !self.warned_role {
            self.warned_role = true;
            tracing::warn!(cluster = %state.name, node = id, "configured as {} but the server reports {}", role_name(configured), role_name(Some(p.role)));
        }
        // With failover off the configuration decides; otherwise the servers do.
        let role = match config.failover.mode {
            FailoverMode::Off => configured.unwrap_or(p.role),
            _ => p.role,
        };
        let successes = self.successes;
        let probed_at = p.at;
        state.update(|nodes| {
            let n = &mut nodes[id];
            n.prev_lsn = n.lsn;
            n.prev_probed_at = n.probed_at;
            n.lsn = p.lsn;
            n.probed_at = Some(probed_at);
            n.receive_lsn = p.receive_lsn;
            n.timeline = p.timeline;
            n.lag_seconds = if p.role == Role::Replica {
                p.lag_seconds
            } else {
                None
            };
            if n.role != Some(role) {
                let evidence = format!("pg_is_in_recovery() = {}", p.role == Role::Replica);
                state.record(
                    EventKind::RoleChanged,
                    &n.name,
                    role_name(n.role),
                    role_name(Some(role)),
                    &evidence,
                );
                n.role = Some(role);
            }
            // A MySQL node set read_only by the fence is not a replica until it replicates.
            let replicating = p.lag_seconds.is_none_or(|l| l < f64::MAX);
            if n.fenced && p.role == Role::Replica && replicating {
                state.record(
                    EventKind::Unfenced,
                    &n.name,
                    "fenced",
                    "replica",
                    "rejoined as a replica (pg_is_in_recovery() = true)",
                );
                n.fenced = false;
            }
            let readmit = first || n.health == Health::Unknown || successes >= config.readmit_after;
            if n.health != Health::Up && readmit {
                let evidence = format!("answered {successes} probe(s) in a row");
                state.record(EventKind::NodeUp, &n.name, n.health.name(), "up", &evidence);
                n.health = Health::Up;
            }
        });
    }

    fn record_failure(
        &mut self,
        config: &ClusterConfig,
        state: &ClusterState,
        id: usize,
        e: &ProbeError,
        first: bool,
    ) {
        self.successes = 0;
        self.failures = self.failures.saturating_add(1);
        state.count_error(id);
        let failures = self.failures;
        state.update(|nodes| {
            let n = &mut nodes[id];
            if n.health != Health::Down && (first || failures >= config.eject_after) {
                let evidence = format!("{failures} failed probe(s): {e}");
                state.record(
                    EventKind::NodeDown,
                    &n.name,
                    n.health.name(),
                    "down",
                    &evidence,
                );
                n.health = Health::Down;
            }
        });
    }
}
