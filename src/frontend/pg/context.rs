//! Everything a session of one cluster shares with the others.

use super::CancelRegistry;
use crate::cluster::ClusterState;
use crate::config::{ClusterConfig, General};
use crate::pool::Pool;
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
