//! Errors raised while decoding protocol packets.

/// Why a byte sequence is not a valid MySQL protocol packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The logical payload is larger than the caller's limit; the peer must be dropped
    /// because the stream cannot be resynchronised without reading the rest.
    #[error("packet payload of at least {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Payload bytes announced so far by the chunk headers.
        len: usize,
        /// The caller-supplied limit.
        max: usize,
    },
    /// The payload does not follow the message's layout.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// Which message or field was being decoded.
        what: &'static str,
        /// What was wrong with it.
        why: &'static str,
    },
}

impl ProtocolError {
    /// Shorthand used by the typed views.
    pub(crate) fn malformed(what: &'static str, why: &'static str) -> Self {
        ProtocolError::Malformed { what, why }
    }
}
