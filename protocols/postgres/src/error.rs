//! Errors raised while decoding protocol messages.

/// Why a byte sequence is not a valid PostgreSQL protocol message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The declared length is larger than the caller's limit; the peer must be dropped
    /// because the rest of the stream cannot be resynchronised without reading it.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Declared total length of the message.
        len: usize,
        /// The caller-supplied limit.
        max: usize,
    },
    /// The length field is smaller than the fixed part of the message.
    #[error("invalid message length {0}")]
    BadLength(i64),
    /// The body does not follow the message's layout.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// Which message or field was being decoded.
        what: &'static str,
        /// What was wrong with it.
        why: &'static str,
    },
    /// A startup packet asked for a protocol major version other than 3.
    #[error("unsupported protocol version {major}.{minor}")]
    UnsupportedVersion {
        /// Requested major version (upper 16 bits of the code).
        major: u16,
        /// Requested minor version (lower 16 bits of the code).
        minor: u16,
    },
}

impl ProtocolError {
    /// Shorthand used by the typed views.
    pub(crate) fn malformed(what: &'static str, why: &'static str) -> Self {
        ProtocolError::Malformed { what, why }
    }
}
