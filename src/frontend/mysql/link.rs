//! A session's connection to one node and its pool slot.

use crate::backend::mysql::MyConn;
use crate::pool::Lease;

/// A server connection the session holds.
pub(super) struct MyLink {
    /// The connection.
    pub conn: Box<MyConn>,
    /// Its pool slot.
    pub lease: Lease<MyConn>,
    /// State here cannot be rebuilt elsewhere (temporary tables, locks, user variables):
    /// reset with COM_RESET_CONNECTION before anyone else gets it.
    pub dirty: bool,
    /// Changes when the node is declared down: a command waiting on it then fails.
    pub node_down: tokio::sync::watch::Receiver<u64>,
    /// The node's role when the session last routed to it (metrics label).
    pub role: Option<crate::cluster::Role>,
}
