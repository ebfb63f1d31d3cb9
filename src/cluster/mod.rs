//! Cluster state: nodes, their roles and health, published as immutable snapshots.

mod picker;
mod state;

#[cfg(test)]
mod tests;

pub use picker::ReplicaPicker;
pub use state::{ClusterSnapshot, ClusterState, Health, NodeState};

pub use crate::config::Role;
