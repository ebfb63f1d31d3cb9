//! Pool upkeep: closes idle connections that aged out and keeps each pool at its minimum size.

use super::ClusterContext;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often pools are checked.
const EVERY: Duration = Duration::from_secs(1);

/// Runs until `shutdown` flips.
pub async fn maintain_pools(ctx: Arc<ClusterContext>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let snap = ctx.state.load_full();
        for pool in ctx.pools.all() {
            let Some(node) = snap.node(pool.key.node) else {
                continue;
            };
            let need = pool.trim(node.incarnation);
            if need == 0 || !node.usable() {
                continue;
            }
            for _ in 0..need {
                let Some(lease) = pool.try_lease() else { break };
                match ctx
                    .open_server(node, &pool.key.user, &pool.key.database)
                    .await
                {
                    Ok(conn) => lease.release(Box::new(conn)),
                    Err(e) => {
                        tracing::warn!(node = %node.name, "cannot fill the pool to its minimum: {e}");
                        break;
                    }
                }
            }
        }
    }
}
