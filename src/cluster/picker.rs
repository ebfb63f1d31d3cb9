//! Smooth weighted round robin over the replicas fit for reads.

use super::{ClusterSnapshot, NodeState};

/// Per-session smooth weighted round robin (nginx's algorithm): exact weight shares over any
/// window of sum(weights) picks, and no lock shared between sessions.
#[derive(Debug, Default)]
pub struct ReplicaPicker {
    generation: Option<u64>,
    current: Vec<i64>,
}

impl ReplicaPicker {
    /// The replica `pick` would choose, without advancing the rotation: for work that does not
    /// count as a read, such as preparing a statement.
    pub fn peek(&mut self, snap: &ClusterSnapshot, min_lsn: Option<u64>) -> Option<usize> {
        let saved = (self.generation, self.current.clone());
        let choice = self.pick(snap, min_lsn);
        (self.generation, self.current) = saved;
        choice
    }

    /// Picks a replica that serves reads (and has replayed `min_lsn`, when given), by weight;
    /// None when there is none.
    pub fn pick(&mut self, snap: &ClusterSnapshot, min_lsn: Option<u64>) -> Option<usize> {
        if self.generation != Some(snap.routing_generation)
            || self.current.len() != snap.nodes.len()
        {
            self.generation = Some(snap.routing_generation);
            self.current = vec![0; snap.nodes.len()];
        }
        let fit = |n: &NodeState| n.serves_reads() && min_lsn.is_none_or(|l| n.lsn >= l);
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for n in snap.nodes.iter().filter(|n| fit(n)) {
            let w = i64::from(n.effective_weight);
            total += w;
            self.current[n.id] += w;
            if best.is_none_or(|b| self.current[n.id] > self.current[b]) {
                best = Some(n.id);
            }
        }
        let b = best?;
        self.current[b] -= total;
        Some(b)
    }

    /// True when some replica serves reads, whatever it has replayed.
    pub fn any_serving(snap: &ClusterSnapshot) -> bool {
        snap.nodes.iter().any(NodeState::serves_reads)
    }
}
