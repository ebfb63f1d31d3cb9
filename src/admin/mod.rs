//! The admin console: SQL over the PostgreSQL wire (psql) and the MySQL wire (the mariadb
//! client) on listeners of its own. SHOW commands and SELECTs read a snapshot of the clusters
//! loaded into an in-memory SQLite database; a few commands change the running clusters.

mod exec;
mod my_wire;
mod pg_wire;
mod tables;

pub use exec::{execute, AdminError, Reply};
pub use my_wire::serve_mysql;
pub use pg_wire::serve_postgres;

use crate::cluster::ClusterState;
use crate::config::{AdminConfig, AdminRole, ClusterConfig};
use crate::frontend::mysql::MyContext;
use crate::frontend::pg::ClusterContext;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Most admin sessions at once per listener.
const MAX_ADMIN_CLIENTS: usize = 64;

/// One cluster as the console sees it, whatever its protocol.
#[derive(Clone)]
pub enum ClusterHandle {
    /// A PostgreSQL cluster.
    Postgres(Arc<ClusterContext>),
    /// A MySQL/MariaDB cluster.
    Mysql(Arc<MyContext>),
}

impl ClusterHandle {
    /// The cluster's config.
    pub fn config(&self) -> &Arc<ClusterConfig> {
        match self {
            ClusterHandle::Postgres(c) => &c.config,
            ClusterHandle::Mysql(c) => &c.config,
        }
    }

    /// The cluster's published state.
    pub fn state(&self) -> &Arc<ClusterState> {
        match self {
            ClusterHandle::Postgres(c) => &c.state,
            ClusterHandle::Mysql(c) => &c.state,
        }
    }

    /// "postgres" or "mysql".
    pub fn protocol(&self) -> &'static str {
        match self {
            ClusterHandle::Postgres(_) => "postgres",
            ClusterHandle::Mysql(_) => "mysql",
        }
    }

    /// The cluster's metric handles and console totals.
    pub fn metrics(&self) -> &Arc<crate::observe::ClusterMetrics> {
        match self {
            ClusterHandle::Postgres(c) => &c.metrics,
            ClusterHandle::Mysql(c) => &c.metrics,
        }
    }

    /// The cluster's logged-in clients.
    pub fn clients(&self) -> &Arc<crate::frontend::clients::ClientRegistry> {
        match self {
            ClusterHandle::Postgres(c) => &c.clients,
            ClusterHandle::Mysql(c) => &c.clients,
        }
    }

    /// Every server connection of the cluster's pools.
    pub fn servers(&self) -> Vec<ServerRow> {
        fn rows<C: crate::pool::Pooled>(
            pools: Vec<Arc<crate::pool::NodePool<C>>>,
        ) -> Vec<ServerRow> {
            let mut out = Vec::new();
            for p in pools {
                let (_, used) = p.counts();
                let row = |ages| ServerRow {
                    key: p.key.clone(),
                    ages,
                };
                out.extend(p.idle_ages().into_iter().map(|a| row(Some(a))));
                out.extend((0..used).map(|_| row(None)));
            }
            out
        }
        match self {
            ClusterHandle::Postgres(c) => rows(c.pools.all()),
            ClusterHandle::Mysql(c) => rows(c.pools.all()),
        }
    }

    /// Every pool with its idle and in-use connection counts.
    pub fn pools(&self) -> Vec<PoolRow> {
        fn rows<C: crate::pool::Pooled>(pools: Vec<Arc<crate::pool::NodePool<C>>>) -> Vec<PoolRow> {
            pools
                .iter()
                .map(|p| {
                    let (idle, in_use) = p.counts();
                    PoolRow {
                        key: p.key.clone(),
                        idle,
                        in_use,
                    }
                })
                .collect()
        }
        match self {
            ClusterHandle::Postgres(c) => rows(c.pools.all()),
            ClusterHandle::Mysql(c) => rows(c.pools.all()),
        }
    }

    /// The pools' counts per node (`nodes` of them), for the metrics endpoint.
    pub fn pool_stats(&self, nodes: usize) -> Vec<crate::pool::PoolStats> {
        match self {
            ClusterHandle::Postgres(c) => c.pools.stats(nodes),
            ClusterHandle::Mysql(c) => c.pools.stats(nodes),
        }
    }

    /// Server connections of `node`'s pools that sessions hold now.
    pub fn in_use(&self, node: usize) -> usize {
        self.pools()
            .iter()
            .filter(|p| p.key.node == node)
            .map(|p| p.in_use)
            .sum()
    }
}

/// A pool as SHOW POOLS lists it.
pub struct PoolRow {
    /// Node, user and database it serves.
    pub key: crate::pool::PoolKey,
    /// Idle connections.
    pub idle: usize,
    /// Connections sessions hold.
    pub in_use: usize,
}

/// A server connection as SHOW SERVERS lists it.
pub struct ServerRow {
    /// Its pool.
    pub key: crate::pool::PoolKey,
    /// (opened, idle since) for an idle connection; None while a session holds it.
    pub ages: Option<(Instant, Instant)>,
}

/// What the console serves.
pub struct AdminContext {
    /// The clusters as they are now (a reload swaps their contexts).
    pub live: Arc<crate::live::Live>,
    /// Console users: password and role by name.
    pub users: HashMap<String, (String, AdminRole)>,
    /// Passwords by name, for the MySQL handshake.
    pub passwords: HashMap<String, String>,
    /// When the process started serving.
    pub started: std::time::Instant,
}

impl AdminContext {
    /// Builds the console over `clusters` for the users of `config`.
    pub fn new(config: &AdminConfig, live: Arc<crate::live::Live>) -> Self {
        AdminContext {
            live,
            users: config
                .users
                .iter()
                .map(|u| (u.name.clone(), (u.password.clone(), u.role)))
                .collect(),
            passwords: config
                .users
                .iter()
                .map(|u| (u.name.clone(), u.password.clone()))
                .collect(),
            started: std::time::Instant::now(),
        }
    }

    /// Every cluster's current context, in config order.
    pub fn clusters(&self) -> Vec<ClusterHandle> {
        self.live.handles()
    }

    /// The role of a user who logged in (monitor when unknown, which cannot happen after a
    /// successful login).
    pub fn role(&self, user: &str) -> AdminRole {
        self.users.get(user).map_or(AdminRole::Monitor, |u| u.1)
    }
}
