//! TLS settings as they appear in the cluster config file.

use std::fmt;
use std::path::PathBuf;

use super::error::TlsError;

/// Client-facing TLS of a listener.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// PEM certificate chain, leaf first (required, no default); read when the listener starts.
    pub cert: PathBuf,
    /// PEM private key of the leaf, PKCS#8, PKCS#1 or SEC1 (required, no default).
    pub key: PathBuf,
    /// Refuse clients that do not ask for TLS (default `false`).
    #[serde(default)]
    pub require: bool,
}

/// TLS towards backend servers.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTlsConfig {
    /// How hard to insist on TLS and what to verify (default `disable`).
    #[serde(default)]
    pub mode: BackendTlsMode,
    /// PEM bundle of trusted roots (default none); required by, and only used by, `verify-full`.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

impl BackendTlsConfig {
    /// Rejects a CA without `verify-full` (it would silently not be checked) and `verify-full` without a CA.
    pub fn validate(self) -> Result<Self, TlsError> {
        match (self.mode, &self.ca) {
            (BackendTlsMode::VerifyFull, None) => Err(TlsError::Config(
                "backend tls mode verify-full needs `ca`".into(),
            )),
            (mode, Some(ca)) if mode != BackendTlsMode::VerifyFull => {
                Err(TlsError::Config(format!(
                    "backend tls `ca` ({}) is only used by mode verify-full, but mode is {mode}",
                    ca.display()
                )))
            }
            _ => Ok(self),
        }
    }
}

/// How a backend connection uses TLS, named after libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendTlsMode {
    /// Plain TCP; no SSLRequest is sent.
    #[default]
    Disable,
    /// Use TLS if the server agrees, no certificate verification.
    Prefer,
    /// TLS required, no certificate verification.
    Require,
    /// TLS required, certificate chain and host name verified against `ca`.
    VerifyFull,
}

impl BackendTlsMode {
    /// Whether a server answering 'N' to the SSLRequest must be refused.
    pub fn requires_tls(self) -> bool {
        matches!(self, BackendTlsMode::Require | BackendTlsMode::VerifyFull)
    }

    /// The name used in the config file, so messages match what the operator wrote.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendTlsMode::Disable => "disable",
            BackendTlsMode::Prefer => "prefer",
            BackendTlsMode::Require => "require",
            BackendTlsMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for BackendTlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
