//! Pool errors.

use std::time::Duration;

/// Why a checkout failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every connection of the pool stayed busy for the whole wait.
    #[error("timed out after {waited:?} waiting for a server connection in pool (node {node}, user {user}, database {database}): all {size} connections are busy")]
    Timeout {
        /// Node id.
        node: usize,
        /// User.
        user: String,
        /// Database.
        database: String,
        /// The pool's size.
        size: usize,
        /// How long the client waited.
        waited: Duration,
    },
    /// The pool is shutting down.
    #[error("pool closed")]
    Closed,
}
