//! Authentication: the proxy as a server (SCRAM-SHA-256, md5) towards clients and as a
//! client (trust, cleartext, md5, SCRAM-SHA-256) towards backends.

mod client;
mod md5;
mod scram_server;

pub use self::md5::*;
pub use client::*;
pub use scram_server::*;

/// Why an authentication exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The client's proof or password did not match.
    #[error("password authentication failed")]
    InvalidPassword,
    /// A SASL message did not follow RFC 5802's grammar.
    #[error("malformed SASL message: {0}")]
    Malformed(&'static str),
    /// The peer chose or offered no mechanism this side implements.
    #[error("unsupported SASL mechanism {0}")]
    Mechanism(String),
    /// The server asked for a method (GSSAPI, SSPI, ...) the proxy cannot perform.
    #[error("server requested an authentication method that is not supported: {0}")]
    Unsupported(String),
    /// The server wants a password and the pool has none for this user.
    #[error("server requested a password but none is configured")]
    NoPassword,
    /// The server could not prove it knows the password, so it may be an impostor.
    #[error("server SCRAM signature did not verify")]
    ServerSignature,
    /// The client asked for SCRAM channel binding ("p="), which needs TLS the proxy lacks.
    #[error("SCRAM channel binding is not supported")]
    ChannelBinding,
    /// A message arrived in a state where it is not allowed.
    #[error("unexpected authentication message: {0}")]
    OutOfSequence(&'static str),
    /// The stored SCRAM verifier is not in PostgreSQL's rolpassword format.
    #[error("invalid SCRAM verifier: {0}")]
    InvalidVerifier(&'static str),
    /// The SCRAM exchange with the server failed (message from postgres-protocol).
    #[error("SCRAM exchange with the server failed: {0}")]
    Scram(String),
}

/// Compares secrets without an early exit so timing does not reveal the matching prefix.
/// Lengths are public (fixed-size digests), so a length mismatch returns at once.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
