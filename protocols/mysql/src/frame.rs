//! Packet framing: 3-byte little-endian length, 1-byte sequence id, payload; payloads of
//! 0xFFFFFF bytes or more are split into chunks and reassembled here.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ProtocolError;

#[cfg(test)]
mod tests;

/// Size of a chunk header: 3-byte length plus sequence id.
pub const HEADER_LEN: usize = 4;

/// Largest chunk payload; a chunk of exactly this size means another chunk follows.
pub const MAX_CHUNK: usize = 0xFF_FFFF;

/// One complete logical packet, kept whole so it can be relayed without re-encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Sequence id of the first chunk.
    pub seq: u8,
    /// Sequence id of the last chunk (equal to `seq` unless the packet was split); the
    /// next packet in the exchange uses `last_seq + 1`.
    pub last_seq: u8,
    /// The reassembled payload (shares `raw`'s buffer when the packet is a single chunk).
    pub payload: Bytes,
    /// Every chunk's header and payload exactly as they were on the wire.
    pub raw: Bytes,
}

impl Packet {
    /// The first payload byte, which identifies most messages.
    pub fn header_byte(&self) -> Option<u8> {
        self.payload.first().copied()
    }

    /// The sequence id the peer's reply (or our next packet) must carry.
    pub fn next_seq(&self) -> u8 {
        self.last_seq.wrapping_add(1)
    }
}

/// The header of one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Payload length of this chunk (at most `MAX_CHUNK`).
    pub len: usize,
    /// Sequence id of this chunk.
    pub seq: u8,
}

/// Reads the 4-byte chunk header at the front of `buf`, or `None` if fewer than 4 bytes.
pub fn peek_header(buf: &[u8]) -> Option<ChunkHeader> {
    let &[a, b, c, seq] = buf.get(..HEADER_LEN)? else {
        return None;
    };
    let len = usize::from(a) | usize::from(b) << 8 | usize::from(c) << 16;
    Some(ChunkHeader { len, seq })
}

/// Ok(None) while `buf` does not hold a whole logical packet (nothing is consumed); on
/// success splits the packet's chunks off the front of `buf`. Fails as soon as the chunk
/// headers seen so far announce more than `max_payload` bytes, before they arrive.
pub fn decode_packet(
    buf: &mut BytesMut,
    max_payload: usize,
) -> Result<Option<Packet>, ProtocolError> {
    let mut pos = 0usize;
    let mut total = 0usize;
    let mut chunks = 0usize;
    let mut first_seq = None;
    let last_seq = loop {
        let Some(h) = peek_header(buf.get(pos..).unwrap_or_default()) else {
            return Ok(None);
        };
        total = total.saturating_add(h.len);
        if total > max_payload {
            return Err(ProtocolError::TooLarge {
                len: total,
                max: max_payload,
            });
        }
        let end = pos + HEADER_LEN + h.len;
        if buf.len() < end {
            // Lets the caller's next read fill this chunk in one go; bounded by max_payload.
            buf.reserve(end - buf.len());
            return Ok(None);
        }
        first_seq.get_or_insert(h.seq);
        chunks += 1;
        pos = end;
        if h.len < MAX_CHUNK {
            break h.seq;
        }
    };
    let seq = first_seq.unwrap_or(last_seq);
    let raw = buf.split_to(pos).freeze();
    let payload = if chunks == 1 {
        raw.slice(HEADER_LEN..)
    } else {
        // Split packets are rare (>= 16 MiB); copying once keeps `payload` contiguous.
        let mut out = BytesMut::with_capacity(total);
        let mut rest = &raw[..];
        while let Some(h) = peek_header(rest) {
            let body = rest.get(HEADER_LEN..HEADER_LEN + h.len).unwrap_or_default();
            out.put_slice(body);
            rest = rest.get(HEADER_LEN + h.len..).unwrap_or_default();
        }
        out.freeze()
    };
    Ok(Some(Packet {
        seq,
        last_seq,
        payload,
        raw,
    }))
}

/// Encodes `payload` as one logical packet starting at sequence id `seq`, splitting it
/// into 0xFFFFFF-byte chunks (plus an empty final chunk when the length is a multiple).
pub fn encode_packet(seq: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(encoded_len(payload.len()));
    encode_packet_into(&mut out, seq, payload);
    out.freeze()
}

/// Appends the chunks of `payload` to `out`; returns the sequence id the next packet uses.
pub fn encode_packet_into(out: &mut BytesMut, seq: u8, payload: &[u8]) -> u8 {
    let mut seq = seq;
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_CHUNK);
        let (chunk, tail) = rest.split_at(n);
        // n <= 0xFFFFFF, so the low three bytes hold it exactly.
        let le = (n as u32).to_le_bytes();
        out.put_slice(&[le[0], le[1], le[2], seq]);
        out.put_slice(chunk);
        seq = seq.wrapping_add(1);
        rest = tail;
        if n < MAX_CHUNK {
            return seq;
        }
    }
}

/// Wire size of a payload of `len` bytes after splitting into chunks.
pub fn encoded_len(len: usize) -> usize {
    let chunks = len / MAX_CHUNK + 1;
    len + chunks * HEADER_LEN
}
