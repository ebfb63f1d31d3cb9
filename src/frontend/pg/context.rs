//! Everything a session of one cluster shares with the others.

use super::CancelRegistry;
use crate::backend::{connect, BackendError, ConnectSpec, ServerConn};
use crate::cluster::{ClusterState, NodeState};
use crate::config::{ClusterConfig, General};
use crate::pool::Pool;
use crate::pool::PoolKey;
use crate::route::ClassifyOptions;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use switchyard_postgres::ScramVerifier;

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
    /// Idle server connections.
    pub pool: Pool,
    /// Classifier options from config.
    pub classify: ClassifyOptions,
    /// Users by name.
    pub users: HashMap<String, UserEntry>,
    /// Verifier used for unknown users so that they fail the same way as wrong passwords.
    pub decoy: ScramVerifier,
    /// Live sessions' cancel keys.
    pub cancels: CancelRegistry,
    /// Session ids.
    pub next_session: AtomicU64,
    /// Set while reads fall back to the primary, so the log line is written once per episode.
    pub fallback_logged: AtomicBool,
}

impl ClusterContext {
    /// Builds the context; computes SCRAM verifiers once (PBKDF2 is deliberately slow).
    pub fn new(
        config: Arc<ClusterConfig>,
        general: Arc<General>,
        state: Arc<ClusterState>,
    ) -> Self {
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
        ClusterContext {
            pool: Pool::new(config.pool_max_idle, config.pool_idle_timeout),
            classify: ClassifyOptions {
                side_effect_functions: config.side_effect_functions.clone(),
            },
            users,
            decoy: ScramVerifier::generate(&random),
            cancels: CancelRegistry::default(),
            next_session: AtomicU64::new(1),
            fallback_logged: AtomicBool::new(false),
            config,
            general,
            state,
        }
    }
}

impl ClusterContext {
    /// A server connection to `node` for (user, database): an idle pooled one opened in the
    /// node's current incarnation, else a new one.
    pub async fn server_conn(
        &self,
        node: &NodeState,
        user: &str,
        database: &str,
    ) -> Result<ServerConn, BackendError> {
        let key = PoolKey {
            node: node.id,
            user: user.to_string(),
            database: database.to_string(),
        };
        if let Some(conn) = self.pool.take(&key, node.incarnation) {
            return Ok(conn);
        }
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
        })
        .await
    }
}
