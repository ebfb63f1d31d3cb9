//! Everything a session of one cluster shares with the others.

use super::send::LinkError;
use super::CancelRegistry;
use crate::backend::{connect, BackendError, ConnectSpec, ServerConn};
use crate::cluster::{ClusterState, NodeState};
use crate::config::{ClusterConfig, General, PoolMode};
use crate::pool::{Lease, NodePool, PoolKey, PoolLimits, Pools};
use crate::route::ClassifyOptions;
use crate::tls::{BackendTlsMode, TlsError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use switchyard_postgres::ScramVerifier;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A configured user with its precomputed SCRAM verifier.
pub struct UserEntry {
    /// Plain-text password (also used towards servers).
    pub password: String,
    /// SCRAM verifier for client authentication.
    pub scram: ScramVerifier,
}

/// Shared, read-mostly state of one cluster's front end.
pub struct ClusterContext {
    /// The cluster's config.
    pub config: Arc<ClusterConfig>,
    /// Process-wide settings.
    pub general: Arc<General>,
    /// Published node state.
    pub state: Arc<ClusterState>,
    /// Server connection pools.
    pub pools: Pools,
    /// Classifier options from config.
    pub classify: ClassifyOptions,
    /// Users by name.
    pub users: HashMap<String, UserEntry>,
    /// Verifier used for unknown users so that they fail the same way as wrong passwords.
    pub decoy: ScramVerifier,
    /// Live sessions' cancel keys.
    pub cancels: Arc<CancelRegistry>,
    /// Logged-in clients, for the admin console.
    pub clients: Arc<crate::frontend::clients::ClientRegistry>,
    /// Session ids.
    pub next_session: Arc<AtomicU64>,
    /// Set while reads fall back to the primary, so the log line is written once per episode.
    pub fallback_logged: AtomicBool,
    /// Client-facing TLS (`[clusters.tls]`): SSLRequests are answered 'S' when set, 'N' otherwise.
    pub tls_acceptor: Option<TlsAcceptor>,
    /// Refuse startup packets that arrive without TLS (`[clusters.tls] require`).
    pub tls_require: bool,
    /// TLS towards servers (`[clusters.server_tls]`); None for mode `disable`.
    pub server_tls: Option<TlsConnector>,
    /// The configured backend TLS mode.
    pub server_tls_mode: BackendTlsMode,
    /// Metric handles (no-ops unless `observe` turned them on).
    pub metrics: Arc<crate::observe::ClusterMetrics>,
}

impl ClusterContext {
    /// Builds the context; computes SCRAM verifiers once (PBKDF2 is deliberately slow) and
    /// loads the TLS certificate, key and CA files (errors name the file and the reason).
    pub fn new(
        config: Arc<ClusterConfig>,
        general: Arc<General>,
        state: Arc<ClusterState>,
    ) -> Result<Self, TlsError> {
        let tls_acceptor = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
        let tls_require = config.tls.as_ref().is_some_and(|t| t.require);
        let server_tls = crate::tls::connector(&config.server_tls)?;
        let server_tls_mode = config.server_tls.mode;
        let users = config
            .users
            .iter()
            .map(|u| {
                (
                    u.name.clone(),
                    UserEntry {
                        password: u.password.clone(),
                        scram: ScramVerifier::generate(&u.password),
                    },
                )
            })
            .collect();
        let random: String = {
            use rand::Rng;
            let mut r = rand::thread_rng();
            (0..24)
                .map(|_| r.sample(rand::distributions::Alphanumeric) as char)
                .collect()
        };
        Ok(ClusterContext {
            metrics: Arc::new(crate::observe::ClusterMetrics::new(&config, false)),
            pools: Pools::new(PoolLimits {
                size: config.pool_size,
                min_size: config.pool_min_size,
                timeout: config.pool_timeout,
                idle_timeout: config.pool_idle_timeout,
                lifetime: config.server_lifetime,
            }),
            classify: ClassifyOptions {
                side_effect_functions: config.side_effect_functions.clone(),
            },
            users,
            decoy: ScramVerifier::generate(&random),
            cancels: Default::default(),
            clients: Default::default(),
            next_session: Arc::new(AtomicU64::new(1)),
            fallback_logged: AtomicBool::new(false),
            tls_acceptor,
            tls_require,
            server_tls,
            server_tls_mode,
            config,
            general,
            state,
        })
    }
}

impl ClusterContext {
    /// Takes over what must outlive a reload from the context this one replaces: session
    /// ids, cancel keys and the client registry (sessions of the old context stay reachable).
    pub fn inherit(&mut self, old: &ClusterContext) {
        self.next_session = old.next_session.clone();
        self.cancels = old.cancels.clone();
        self.clients = old.clients.clone();
    }

    /// Records this cluster's metrics in `metrics` (before any session or pool exists).
    pub fn observe(&mut self, metrics: Arc<crate::observe::ClusterMetrics>) {
        self.pools.observe(metrics.pool_metrics());
        self.metrics = metrics;
    }

    /// Opens a new server connection to `node` for (user, database).
    pub async fn open_server(
        &self,
        node: &NodeState,
        user: &str,
        database: &str,
    ) -> Result<ServerConn, BackendError> {
        connect(&ConnectSpec {
            node: node.id,
            name: &node.name,
            addr: &node.addr,
            user,
            password: self.users.get(user).map(|u| u.password.as_str()),
            database,
            timeout: self.general.connect_timeout,
            max_message: self.general.max_message_bytes,
            incarnation: node.incarnation,
            tls: self.server_tls.as_ref(),
            tls_mode: self.server_tls_mode,
        })
        .await
    }

    /// A connection of `pool` (node `node`, current `incarnation`) with its slot: an idle one,
    /// checked with an empty query when it sat unused longer than `server_check_delay` (the
    /// server may have closed it meanwhile), else a new one opened under the same slot.
    pub(super) async fn lease(
        &self,
        pool: &Arc<NodePool>,
        node: usize,
        incarnation: u64,
    ) -> Result<(Lease, Box<ServerConn>), LinkError> {
        let (lease, idle) = pool.checkout(incarnation).await?;
        if let Some(crate::pool::Idle { conn, idle_for }) = idle {
            if idle_for < self.config.server_check_delay {
                return Ok((lease, conn));
            }
            // The slow paths are boxed so that this future, awaited once per transaction,
            // stays small instead of carrying (and copying) a whole connect or check state.
            if let Some(conn) = Box::pin(self.checked(conn)).await {
                return Ok((lease, conn));
            }
        }
        // Cloned only here: opening a connection is the rare case.
        let Some(state) = self.state.load().node(node).cloned() else {
            return Err(LinkError::Backend(BackendError::Protocol {
                node: node.to_string(),
                reason: "no such node".into(),
            }));
        };
        let conn = Box::pin(self.open_server(&state, &pool.key.user, &pool.key.database)).await?;
        Ok((lease, Box::new(conn)))
    }

    async fn checked(&self, mut conn: Box<ServerConn>) -> Option<Box<ServerConn>> {
        let ok = conn
            .run_quietly(
                "",
                self.general.connect_timeout,
                self.general.max_message_bytes,
            )
            .await;
        if !ok {
            tracing::info!(
                node = conn.node,
                "idle server connection failed its check; replacing it"
            );
        }
        ok.then_some(conn)
    }

    /// The pools of (user, database), one per node, for a new session.
    pub fn session_pools(&self, user: &str, database: &str) -> Vec<Arc<NodePool>> {
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

    /// Whether `user` gets transaction pooling (the cluster's mode unless the user overrides it).
    pub fn transaction_pooling(&self, user: &str) -> bool {
        let mode = self
            .config
            .users
            .iter()
            .find(|u| u.name == user)
            .and_then(|u| u.pool_mode)
            .unwrap_or(self.config.pool_mode);
        mode == PoolMode::Transaction
    }
}
