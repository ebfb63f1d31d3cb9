//! Everything a MySQL session of one cluster shares with the others.

use crate::backend::mysql::{connect, MyConn, MyConnectSpec};
use crate::backend::BackendError;
use crate::cluster::ClusterState;
use crate::config::{ClusterConfig, General, PoolMode};
use crate::pool::{Idle, Lease, NodePool, PoolError, PoolKey, PoolLimits, Pools};
use crate::route::ClassifyOptions;
use crate::tls::TlsError;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Why no server connection could be had.
#[derive(Debug, thiserror::Error)]
pub(super) enum LeaseError {
    /// The pool stayed full for the whole wait.
    #[error("{0}")]
    Pool(#[from] PoolError),
    /// Opening a new connection failed.
    #[error("{0}")]
    Backend(#[from] BackendError),
}

/// Shared, read-mostly state of one MySQL cluster.
pub struct MyContext {
    /// The cluster's config.
    pub config: Arc<ClusterConfig>,
    /// Process-wide settings.
    pub general: Arc<General>,
    /// Published node state.
    pub state: Arc<ClusterState>,
    /// Server connection pools.
    pub pools: Pools<MyConn>,
    /// Passwords by user name.
    pub users: HashMap<String, String>,
    /// Classifier options.
    pub classify: ClassifyOptions,
    /// Session ids.
    pub next_session: Arc<AtomicU64>,
    /// Logged-in clients, for the admin console.
    pub clients: Arc<crate::frontend::clients::ClientRegistry>,
    /// Client-facing TLS (`[clusters.tls]`): the greeting offers CLIENT_SSL when set.
    pub tls_acceptor: Option<TlsAcceptor>,
    /// Refuse logins that arrive without TLS (`[clusters.tls] require`).
    pub tls_require: bool,
    /// Metric handles (no-ops unless `observe` turned them on).
    pub metrics: Arc<crate::observe::ClusterMetrics>,
}

impl MyContext {
    /// Builds the context of a `protocol = "mysql"` cluster; loads the TLS certificate and key
    /// (errors name the file and the reason).
    pub fn new(
        config: Arc<ClusterConfig>,
        general: Arc<General>,
        state: Arc<ClusterState>,
    ) -> Result<Self, TlsError> {
        let tls_acceptor = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
        let tls_require = config.tls.as_ref().is_some_and(|t| t.require);
        Ok(MyContext {
            metrics: Arc::new(crate::observe::ClusterMetrics::new(&config, false)),
            tls_acceptor,
            tls_require,
            pools: Pools::new(PoolLimits {
                size: config.pool_size,
                min_size: config.pool_min_size,
                timeout: config.pool_timeout,
                idle_timeout: config.pool_idle_timeout,
                lifetime: config.server_lifetime,
            }),
            users: config
                .users
                .iter()
                .map(|u| (u.name.clone(), u.password.clone()))
                .collect(),
            classify: ClassifyOptions {
                side_effect_functions: config.side_effect_functions.clone(),
            },
            next_session: Arc::new(AtomicU64::new(1)),
            clients: Default::default(),
            config,
            general,
            state,
        })
    }

    /// Takes over session ids and the client registry from the context this one replaces.
    pub fn inherit(&mut self, old: &MyContext) {
        self.next_session = old.next_session.clone();
        self.clients = old.clients.clone();
    }

    /// Records this cluster's metrics in `metrics` (before any session or pool exists).
    pub fn observe(&mut self, metrics: Arc<crate::observe::ClusterMetrics>) {
        self.pools.observe(metrics.pool_metrics());
        self.metrics = metrics;
    }

    /// The pools of (user, database), one per node.
    pub(super) fn session_pools(&self, user: &str, database: &str) -> Vec<Arc<NodePool<MyConn>>> {
        (0..self.config.nodes.len())
            .map(|node| {
                self.pools.get(PoolKey {
                    node,
                    user: user.to_string(),
                    database: database.to_string(),
                })
            })
            .collect()
    }

    /// Whether `user` gets transaction pooling.
    pub(super) fn transaction_pooling(&self, user: &str) -> bool {
        let mode = self
            .config
            .users
            .iter()
            .find(|u| u.name == user)
            .and_then(|u| u.pool_mode)
            .unwrap_or(self.config.pool_mode);
        mode == PoolMode::Transaction
    }

    /// A connection of `pool` with its slot: an idle one (pinged first when it sat unused
    /// longer than `server_check_delay`), else a new one under the same slot.
    pub(super) async fn lease(
        &self,
        pool: &Arc<NodePool<MyConn>>,
        node: usize,
        incarnation: u64,
    ) -> Result<(Lease<MyConn>, Box<MyConn>), LeaseError> {
        let (lease, idle) = pool.checkout(incarnation).await?;
        if let Some(Idle { mut conn, idle_for }) = idle {
            if idle_for < self.config.server_check_delay {
                return Ok((lease, conn));
            }
            let ping = [switchyard_mysql::Command::COM_PING as u8];
            let (timeout, max) = (self.general.connect_timeout, self.general.max_message_bytes);
            if Box::pin(conn.run(&ping, timeout, max)).await.is_ok() {
                return Ok((lease, conn));
            }
            tracing::info!(node, "idle server connection failed its ping; replacing it");
        }
        let snap = self.state.load_full();
        let n = snap.node(node).ok_or_else(|| BackendError::Protocol {
            node: node.to_string(),
            reason: "no such node".into(),
        })?;
        let password = self.users.get(&pool.key.user).map_or("", String::as_str);
        let spec = MyConnectSpec {
            node,
            name: &n.name,
            addr: &n.addr,
            user: &pool.key.user,
            password,
            database: &pool.key.database,
            timeout: self.general.connect_timeout,
            max_packet: self.general.max_message_bytes,
            incarnation: n.incarnation,
            local_infile: self.config.local_infile,
        };
        let conn = Box::pin(connect(&spec)).await?;
        Ok((lease, Box::new(conn)))
    }

    /// Opens (or takes) a connection of `pools` for a login's (user, database): the primary
    /// first, else any node that is up (a login must work while a failover runs). Err carries
    /// the server's refusal (code, SQLSTATE, message), or 9001 when no node answers.
    pub(super) async fn check_login(
        &self,
        pools: &[Arc<NodePool<MyConn>>],
    ) -> Result<(), (u16, String, String)> {
        let snap = self.state.load_full();
        let primary = snap.primary().map(|p| p.id);
        let order = primary.into_iter().chain(
            snap.nodes
                .iter()
                .filter(|n| n.usable() && Some(n.id) != primary)
                .map(|n| n.id),
        );
        for id in order {
            let Some(pool) = pools.get(id) else { continue };
            let incarnation = snap.nodes[id].incarnation;
            match self.lease(pool, id, incarnation).await {
                Ok((lease, conn)) => {
                    lease.release(conn);
                    return Ok(());
                }
                Err(LeaseError::Backend(BackendError::MySql {
                    code,
                    sql_state,
                    message,
                    ..
                })) if !matches!(code, 1040 | 1053 | 1077) => {
                    // The server refused this login or database: the same on every node.
                    return Err((code, sql_state, message));
                }
                Err(LeaseError::Backend(e)) if e.node_unreachable() => {
                    self.state.report_failure(id, &e.to_string());
                }
                Err(e) => return Err((super::NO_NODE, "08S01".to_string(), e.to_string())),
            }
        }
        let msg = format!("no node of cluster {} can be reached", self.config.name);
        Err((super::NO_NODE, "08S01".to_string(), msg))
    }

    /// The login settings of this cluster's listener.
    pub(super) fn login_policy(&self) -> super::handshake::LoginPolicy<'_> {
        super::handshake::LoginPolicy {
            users: &self.users,
            tls_acceptor: self.tls_acceptor.as_ref(),
            tls_require: self.tls_require,
            local_infile: self.config.local_infile,
        }
    }
}
