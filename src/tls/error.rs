//! Errors of TLS setup and of the backend SSLRequest handshake.

use std::io;
use std::path::PathBuf;

use super::config::BackendTlsMode;

/// Everything that can go wrong building TLS configs or negotiating TLS with a backend.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate chain file could not be read or holds no usable certificate.
    #[error("tls cert {}: {reason}", path.display())]
    Cert {
        /// The file as configured.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The private key file could not be read, holds no key, or the key does not fit the certificate.
    #[error("tls key {}: {reason}", path.display())]
    Key {
        /// The file as configured.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA bundle could not be read or holds no usable certificate.
    #[error("tls ca {}: {reason}", path.display())]
    Ca {
        /// The file as configured.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The settings contradict each other.
    #[error("tls config: {0}")]
    Config(String),
    /// rustls rejected a configuration.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The backend answered 'N' to the SSLRequest while the mode demands TLS.
    #[error("server {server} refused TLS but backend tls mode is {mode}")]
    Refused {
        /// The backend's host name or address.
        server: String,
        /// The configured mode.
        mode: BackendTlsMode,
    },
    /// The backend answered the SSLRequest with something other than 'S' or 'N'.
    #[error("server {server} answered the SSLRequest with byte {byte:#04x}, expected 'S' or 'N'")]
    UnexpectedAnswer {
        /// The backend's host name or address.
        server: String,
        /// The byte it sent.
        byte: u8,
    },
    /// The backend's host is neither a DNS name nor an IP address, so it cannot be verified.
    #[error("server {server}: not a valid tls server name: {reason}")]
    ServerName {
        /// The name as given.
        server: String,
        /// Why rustls refused it.
        reason: String,
    },
    /// The TLS handshake with the backend failed (including certificate verification).
    #[error("server {server}: tls handshake: {source}")]
    Handshake {
        /// The backend's host name or address.
        server: String,
        /// The underlying error (a rustls error wrapped in io::Error when TLS itself failed).
        #[source]
        source: io::Error,
    },
    /// Writing the SSLRequest or reading its answer failed.
    #[error("server {server}: {source}")]
    Io {
        /// The backend's host name or address.
        server: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl TlsError {
    /// Whether the error comes from the configuration (fix the file, no point retrying) rather
    /// than from one connection to a server.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            TlsError::Cert { .. }
                | TlsError::Key { .. }
                | TlsError::Ca { .. }
                | TlsError::Config(_)
                | TlsError::Rustls(_)
                | TlsError::ServerName { .. }
        )
    }
}
