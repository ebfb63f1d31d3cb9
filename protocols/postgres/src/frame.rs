//! Framing of regular (tagged) messages, identical in both directions.

use bytes::{Bytes, BytesMut};

use crate::error::ProtocolError;

#[cfg(test)]
mod tests;

/// Size of the tag byte plus the length field.
pub const HEADER_LEN: usize = 5;

/// One complete tagged message, kept whole so it can be relayed without re-encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message type byte.
    pub tag: u8,
    /// The whole message: tag byte, 4-byte length and body.
    pub raw: Bytes,
}

impl Frame {
    /// The body after the 5-byte header (cheap: shares `raw`'s buffer).
    pub fn body(&self) -> Bytes {
        self.raw.slice(HEADER_LEN.min(self.raw.len())..)
    }

    /// The body as a borrowed slice, for the typed views without touching the refcount.
    pub fn body_slice(&self) -> &[u8] {
        self.raw.get(HEADER_LEN..).unwrap_or_default()
    }

    /// Total length of the message including tag and length field.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// True only for a hand-built frame with no bytes; decoded frames are never empty.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

/// Looks at the 5-byte header only: Ok(Some((tag, total_len_including_tag))) or Ok(None)
/// if fewer than 5 bytes; validates 4 <= length and total <= max_len.
pub fn peek_header(buf: &[u8], max_len: usize) -> Result<Option<(u8, usize)>, ProtocolError> {
    let Some(&[tag, a, b, c, d]) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([a, b, c, d]);
    if len < 4 {
        return Err(ProtocolError::BadLength(i64::from(len)));
    }
    // len >= 4 so the conversion cannot fail; the tag byte is not counted by the wire length.
    let total = usize::try_from(len)
        .map_err(|_| ProtocolError::BadLength(i64::from(len)))?
        .saturating_add(1);
    if total > max_len {
        return Err(ProtocolError::TooLarge {
            len: total,
            max: max_len,
        });
    }
    Ok(Some((tag, total)))
}

/// Ok(None) when `buf` does not yet hold a whole message; on success splits the message
/// off the front of buf (zero-copy: split_to().freeze()).
pub fn decode_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Frame>, ProtocolError> {
    let Some((tag, total)) = peek_header(buf, max_len)? else {
        return Ok(None);
    };
    if buf.len() < total {
        // Reserving here lets the caller's next read fill the whole message in one go.
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let raw = buf.split_to(total).freeze();
    Ok(Some(Frame { tag, raw }))
}
