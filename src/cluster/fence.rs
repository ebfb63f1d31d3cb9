//! Fencing: of several nodes claiming to be primary, the one on the highest timeline is the
//! current one (every promotion starts a new timeline); the others are former primaries and
//! are never written to again until they rejoin as replicas. Claims that timelines cannot
//! settle (same or unknown timeline) are a split brain, left for the snapshot to refuse writes.

use super::events::EventKind;
use super::state::{ClusterState, NodeState};
use super::Role;

/// Fences every claimant of the primary role whose timeline is below the highest one.
pub fn fence_stale_primaries(nodes: &mut [NodeState], state: &ClusterState) {
    let claimant = |n: &NodeState| n.role == Some(Role::Primary) && n.usable() && !n.fenced;
    if nodes.iter().filter(|n| claimant(n)).count() < 2 {
        return;
    }
    let timelines: Option<Vec<u32>> = nodes
        .iter()
        .filter(|n| claimant(n))
        .map(|n| n.timeline)
        .collect();
    let Some(timelines) = timelines else {
        return;
    };
    let Some(&top) = timelines.iter().max() else {
        return;
    };
    if timelines.iter().filter(|&&t| t == top).count() != 1 {
        return;
    }
    let Some(current) = nodes
        .iter()
        .find(|n| claimant(n) && n.timeline == Some(top))
        .map(|n| n.name.clone())
    else {
        return;
    };
    for n in nodes.iter_mut().filter(|n| claimant(n)) {
        if n.timeline.is_some_and(|t| t < top) {
            let evidence = format!(
                "claims to be primary on timeline {} while {current} is primary on timeline {top}: a former primary, not written to until it rejoins as a replica",
                n.timeline.unwrap_or_default()
            );
            state.record(EventKind::Fenced, &n.name, "primary", "fenced", &evidence);
            n.fenced = true;
        }
    }
}
