//! Node monitors: one task per node probes reachability and role and publishes changes.

mod probe;

pub use probe::{ProbeError, ProbeResult, Prober};

use crate::cluster::{ClusterState, Health};
use crate::config::ClusterConfig;
use std::sync::Arc;
use tokio::sync::watch;

/// Runs one monitor per node until `shutdown` flips; the first round is awaited by `first_round`.
pub struct Monitors;

impl Monitors {
    /// Probes every node once (concurrently) and publishes the result, so routing can start
    /// with known roles; then spawns the periodic monitors.
    pub async fn start(
        config: Arc<ClusterConfig>,
        state: Arc<ClusterState>,
        shutdown: watch::Receiver<bool>,
    ) {
        let mut first = Vec::new();
        for id in 0..config.nodes.len() {
            let (config, state) = (config.clone(), state.clone());
            first.push(tokio::spawn(async move {
                let mut prober = Prober::default();
                let r = prober.probe(&config, id).await;
                let mut track = Tracker::default();
                track.record(&config, &state, id, r, true);
                (track, prober)
            }));
        }
        let mut trackers = Vec::new();
        for h in first {
            trackers.push(h.await.unwrap_or_default());
        }
        for (id, (track, prober)) in trackers.into_iter().enumerate() {
            let (config, state, mut shutdown) = (config.clone(), state.clone(), shutdown.clone());
            tokio::spawn(async move {
                let (mut track, mut prober) = (track, prober);
                let mut tick = tokio::time::interval(config.health_check_interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = shutdown.changed() => return,
                    }
                    let r = prober.probe(&config, id).await;
                    track.record(&config, &state, id, r, false);
                }
            });
        }
    }
}

/// Consecutive probe outcomes of one node, for ejection and readmission thresholds.
#[derive(Default)]
struct Tracker {
    failures: u32,
    successes: u32,
}

impl Tracker {
    fn record(
        &mut self,
        config: &ClusterConfig,
        state: &ClusterState,
        id: usize,
        r: Result<ProbeResult, ProbeError>,
        first: bool,
    ) {
        let configured_role = config.nodes[id].role;
        let name = config.nodes[id].name.clone().unwrap_or_default();
        match r {
            Ok(p) => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                state.update(|nodes| {
                    let n = &mut nodes[id];
                    let role = configured_role.unwrap_or(p.role);
                    if configured_role.is_some_and(|c| c != p.role) {
                        tracing::warn!(cluster = %state.name, node = %name, "configured as {configured_role:?} but the server reports {:?}", p.role);
                    }
                    if n.role != Some(role) {
                        tracing::info!(cluster = %state.name, node = %name, "role {:?}", role);
                        n.role = Some(role);
                    }
                    let readmit = first || n.health == Health::Unknown || self.successes >= config.readmit_after;
                    if n.health != Health::Up && readmit {
                        tracing::info!(cluster = %state.name, node = %name, "node up");
                        n.health = Health::Up;
                    }
                });
            }
            Err(e) => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                state.update(|nodes| {
                    let n = &mut nodes[id];
                    if n.health != Health::Down && (first || self.failures >= config.eject_after) {
                        tracing::warn!(cluster = %state.name, node = %name, "node down: {e}");
                        n.health = Health::Down;
                    }
                });
            }
        }
    }
}
