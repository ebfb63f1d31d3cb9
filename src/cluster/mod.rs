//! Cluster state: nodes, their roles and health, published as immutable snapshots.

pub mod events;
mod fence;
mod lag;
mod picker;
mod state;

#[cfg(test)]
mod tests;

pub use picker::ReplicaPicker;
pub use state::{ClusterSnapshot, ClusterState, Health, NodeState};

pub use crate::config::Role;
