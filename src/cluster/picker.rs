//! Smooth weighted round robin over the replicas fit for reads.

use super::{ClusterSnapshot, NodeState};

/// Per-session smooth weighted round robin (nginx's algorithm): exact weight shares over any
/// window of sum(weights) picks, and no lock shared between sessions.
#[derive(Debug, Default)]
pub struct ReplicaPicker {
    generation: Option<u64>,
    current: Vec<i64>,
    /// Where in the rotation a new session starts: without it, every short session (one
    /// query per connection) would get the same first replica.
    seed: u64,
}

impl ReplicaPicker {
    /// A picker that starts `seed` steps into the rotation (sessions pass their id, so
    /// consecutive sessions' first reads follow the weights too).
    pub fn seeded(seed: u64) -> Self {
        ReplicaPicker {
            seed,
            ..Default::default()
        }
    }

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
            let first = self.generation.is_none();
            self.generation = Some(snap.routing_generation);
            self.current = vec![0; snap.nodes.len()];
            if first {
                // Raw weights: the sequence of scaled weights is the same, only longer.
                let period: u64 = snap
                    .nodes
                    .iter()
                    .filter(|n| n.serves_reads())
                    .map(|n| u64::from(n.weight))
                    .sum();
                for _ in 0..self.seed % period.max(1) {
                    self.step(snap, None);
                }
            }
        }
        self.step(snap, min_lsn)
    }

    fn step(&mut self, snap: &ClusterSnapshot, min_lsn: Option<u64>) -> Option<usize> {
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
