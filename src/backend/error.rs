//! Errors opening or using a server connection.

use switchyard_postgres::ErrorFields;

/// Why a server connection failed; every variant names the node.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// TCP connect or I/O failed.
    #[error("node {node} ({addr}): {source}")]
    Io {
        /// Node name.
        node: String,
        /// Node address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Connect plus authentication took too long.
    #[error("node {node} ({addr}): connect timed out after {after:?}")]
    Timeout {
        /// Node name.
        node: String,
        /// Node address.
        addr: String,
        /// The configured timeout.
        after: std::time::Duration,
    },
    /// The server refused the login or failed during startup.
    #[error("node {node}: server error {}: {}", fields.code, fields.message)]
    Server {
        /// Node name.
        node: String,
        /// The server's error.
        fields: ErrorFields,
    },
    /// Authentication towards the server failed on our side.
    #[error("node {node}: authentication: {source}")]
    Auth {
        /// Node name.
        node: String,
        /// The authentication error.
        source: switchyard_postgres::AuthError,
    },
    /// TLS towards the server failed: refused, handshake or certificate verification.
    #[error("node {node}: {source}")]
    Tls {
        /// Node name.
        node: String,
        /// The TLS error (names the server and what failed).
        source: crate::tls::TlsError,
    },
    /// A MySQL server refused the login or a command.
    #[error("node {node}: server error {code} ({sql_state}): {message}")]
    MySql {
        /// Node name.
        node: String,
        /// MySQL error code, e.g. 1045.
        code: u16,
        /// SQLSTATE.
        sql_state: String,
        /// The server's message.
        message: String,
    },
    /// The server sent something that is not valid protocol.
    #[error("node {node}: protocol error: {reason}")]
    Protocol {
        /// Node name.
        node: String,
        /// What was wrong.
        reason: String,
    },
}

impl BackendError {
    /// SQLSTATE to give the client: the server's own when it sent one, else a connection-class code.
    pub fn sqlstate(&self) -> &str {
        match self {
            BackendError::Server { fields, .. } => &fields.code,
            BackendError::MySql { sql_state, .. } => sql_state,
            _ => "08001",
        }
    }

    /// True when the node itself looks unreachable (as opposed to refusing this login).
    pub fn node_unreachable(&self) -> bool {
        match self {
            BackendError::Io { .. }
            | BackendError::Timeout { .. }
            | BackendError::Protocol { .. }
            // A node whose TLS fails (refused, bad certificate) is unusable, though others may work.
            | BackendError::Tls { .. } => true,
            // Startup refusals such as "the database system is starting up" (57P03) count too.
            BackendError::Server { fields, .. } => {
                fields.code.starts_with("57P") || fields.code.starts_with("08")
            }
            BackendError::Auth { .. } => false,
            // Too many connections, server shutting down, or lost: the node, not the login.
            BackendError::MySql { code, .. } => matches!(code, 1040 | 1053 | 1077 | 2013),
        }
    }
}
