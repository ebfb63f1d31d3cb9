//! Real PostgreSQL and MariaDB topologies on loopback for switchyard's integration tests,
//! demo and benchmarks: one primary and N replicas (PostgreSQL streaming, MariaDB GTID) in
//! a temp dir, on free ports.
//!
//! ```no_run
//! let pg = switchyard_testbed::shared_pg();
//! assert_eq!(pg.psql(1, "SELECT pg_is_in_recovery()").unwrap(), "t");
//! ```

#![warn(missing_docs)]

mod cluster;
mod error;
mod maria;
mod node;
mod os;
pub mod tls;
mod watchdog;

use std::sync::OnceLock;

pub use cluster::{PgCluster, PgOptions};
pub use error::TestbedError;
pub use maria::{MariaCluster, MariaNode, MariaOptions};
pub use node::PgNode;
pub use tls::TestPki;

/// The replication role the replicas connect as (REPLICATION LOGIN, SCRAM, over TCP).
pub const REPLICATION_ROLE: &str = "replicator";
/// The replication role's password (also in every replica's `primary_conninfo`).
pub const REPLICATION_PASSWORD: &str = "replicator";
/// The superuser role for the proxy's failover controller (SUPERUSER LOGIN, SCRAM).
pub const ADMIN_ROLE: &str = "switchyard_admin";
/// The failover controller role's password.
pub const ADMIN_PASSWORD: &str = "switchyard_admin";
/// MariaDB's replication user (`'repl'@'%'`, REPLICATION SLAVE), as in every replica's
/// `CHANGE MASTER TO`.
pub const MARIA_REPLICATION_USER: &str = "repl";
/// MariaDB's replication user's password.
pub const MARIA_REPLICATION_PASSWORD: &str = "repl";

/// One topology (default options) shared by every test in a test binary, started on first
/// use. Its Drop never runs; the cluster's watchdog removes it once the process has exited.
///
/// # Panics
/// If the cluster cannot be started (the message carries the cause and the server log).
pub fn shared_pg() -> &'static PgCluster {
    static SHARED: OnceLock<PgCluster> = OnceLock::new();
    SHARED.get_or_init(|| match PgCluster::start(PgOptions::default()) {
        Ok(cluster) => cluster,
        Err(e) => panic!("switchyard-testbed: cannot start the shared PostgreSQL cluster: {e}"),
    })
}

/// One MariaDB topology (default options) shared by every test in a test binary, started
/// on first use. Its Drop never runs; the cluster's watchdog removes it once the process
/// has exited.
///
/// # Panics
/// If the cluster cannot be started (the message carries the cause and the server log).
pub fn shared_maria() -> &'static MariaCluster {
    static SHARED: OnceLock<MariaCluster> = OnceLock::new();
    SHARED.get_or_init(|| match MariaCluster::start(MariaOptions::default()) {
        Ok(cluster) => cluster,
        Err(e) => panic!("switchyard-testbed: cannot start the shared MariaDB cluster: {e}"),
    })
}
