//! Node monitors: one task per node probes reachability, role, WAL position and replay delay
//! and publishes changes; in promote mode a failover task per cluster replaces a lost primary.

mod conninfo;
mod failover;
mod failover_mysql;
mod gtid;
mod probe;
pub mod switchover;
mod tracker;

pub use probe::{format_lsn, parse_lsn, ProbeError, ProbeResult, Prober};

use tracker::Tracker;

use crate::cluster::ClusterState;
use crate::config::{ClusterConfig, FailoverMode};
use std::sync::Arc;
use tokio::sync::watch;

/// Shortest time between two probes of one node.
const MIN_PROBE_GAP: std::time::Duration = std::time::Duration::from_millis(2);

/// Runs one monitor per node (and the failover task in promote mode) until `shutdown` flips.
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
                    // A session waiting for a replica to reach its last write asks for a probe
                    // now rather than at the next tick.
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = state.probe_now[id].notified() => {}
                        _ = shutdown.changed() => return,
                    }
                    let r = prober.probe(&config, id).await;
                    track.record(&config, &state, id, r, false);
                    // Bounds the probe rate however often sessions ask.
                    tokio::time::sleep(MIN_PROBE_GAP).await;
                }
            });
        }
        if config.failover.mode == FailoverMode::Promote {
            tokio::spawn(failover::run(
                config.clone(),
                state.clone(),
                shutdown.clone(),
            ));
        }
    }
}
