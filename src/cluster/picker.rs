//! Smooth weighted round robin over the usable replicas.

use super::{ClusterSnapshot, Role};

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
    pub fn peek(&mut self, snap: &ClusterSnapshot) -> Option<usize> {
        let saved = (self.generation, self.current.clone());
        let choice = self.pick(snap);
        (self.generation, self.current) = saved;
        choice
    }

    /// Picks a usable replica with weight > 0, or None when there is none.
    pub fn pick(&mut self, snap: &ClusterSnapshot) -> Option<usize> {
        if self.generation != Some(snap.generation) || self.current.len() != snap.nodes.len() {
            self.generation = Some(snap.generation);
            self.current = vec![0; snap.nodes.len()];
        }
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for n in &snap.nodes {
            if n.role != Some(Role::Replica) || !n.usable() || n.weight == 0 {
                continue;
            }
            let w = i64::from(n.weight);
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
}
