//! Errors that end a client session, each mapped to the SQLSTATE the client is sent.

/// Why a client session ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    /// The client's socket failed.
    #[error("client i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The client broke the protocol (malformed or oversized message, wrong message for the state).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// Startup or authentication did not finish in time.
    #[error("startup timed out")]
    StartupTimeout,
    /// Wrong user or password.
    #[error("password authentication failed for user \"{0}\"")]
    AuthFailed(String),
    /// The startup packet was acceptable protocol but asked for something we refuse.
    #[error("{message}")]
    Refused {
        /// SQLSTATE.
        code: &'static str,
        /// Message for the client.
        message: String,
    },
}

impl FrontendError {
    /// SQLSTATE sent to the client in the final ErrorResponse.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            FrontendError::Io(_) => "08006",
            FrontendError::Protocol(_) => "08P01",
            FrontendError::StartupTimeout => "08006",
            FrontendError::AuthFailed(_) => "28P01",
            FrontendError::Refused { code, .. } => code,
        }
    }
}

impl From<switchyard_postgres::ProtocolError> for FrontendError {
    fn from(e: switchyard_postgres::ProtocolError) -> Self {
        FrontendError::Protocol(e.to_string())
    }
}
