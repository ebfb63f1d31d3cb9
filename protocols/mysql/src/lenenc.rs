//! Length-encoded integers and strings, the variable-width fields of the MySQL protocol.

use bytes::{BufMut, BytesMut};

use crate::error::ProtocolError;

#[cfg(test)]
mod tests;

const WHAT: &str = "length-encoded field";

/// Reads a length-encoded integer from the front of `buf`: the value and the bytes after it.
/// 0xFB (NULL in rows) and 0xFF (ERR marker) are not integers and are rejected.
pub fn read_lenenc_int(buf: &[u8]) -> Result<(u64, &[u8]), ProtocolError> {
    let short = || ProtocolError::malformed(WHAT, "integer runs past the end of the packet");
    let (&first, rest) = buf.split_first().ok_or_else(short)?;
    let width = match first {
        0..=0xFA => return Ok((u64::from(first), rest)),
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        _ => return Err(ProtocolError::malformed(WHAT, "invalid integer prefix")),
    };
    let bytes = rest.get(..width).ok_or_else(short)?;
    let mut le = [0u8; 8];
    le[..width].copy_from_slice(bytes);
    Ok((
        u64::from_le_bytes(le),
        rest.get(width..).unwrap_or_default(),
    ))
}

/// Reads a length-encoded string from the front of `buf`: its bytes and the bytes after it.
/// The declared length is checked against what is present before anything is sliced.
pub fn read_lenenc_str(buf: &[u8]) -> Result<(&[u8], &[u8]), ProtocolError> {
    let (len, rest) = read_lenenc_int(buf)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n <= rest.len())
        .ok_or_else(|| ProtocolError::malformed(WHAT, "string runs past the end of the packet"))?;
    Ok(rest.split_at(len))
}

/// Number of bytes `put_lenenc_int` writes for `v`.
pub fn lenenc_int_len(v: u64) -> usize {
    match v {
        0..=0xFA => 1,
        0xFB..=0xFFFF => 3,
        0x1_0000..=0xFF_FFFF => 4,
        _ => 9,
    }
}

/// Appends `v` as a length-encoded integer using the shortest form.
pub fn put_lenenc_int(out: &mut BytesMut, v: u64) {
    let le = v.to_le_bytes();
    match lenenc_int_len(v) {
        1 => out.put_u8(le[0]),
        3 => {
            out.put_u8(0xFC);
            out.put_slice(&le[..2]);
        }
        4 => {
            out.put_u8(0xFD);
            out.put_slice(&le[..3]);
        }
        _ => {
            out.put_u8(0xFE);
            out.put_slice(&le);
        }
    }
}

/// Appends `s` as a length-encoded string.
pub fn put_lenenc_str(out: &mut BytesMut, s: &[u8]) {
    put_lenenc_int(out, s.len() as u64);
    out.put_slice(s);
}
