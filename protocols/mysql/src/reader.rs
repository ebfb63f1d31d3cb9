//! Bounds-checked little-endian cursor over a payload shared by the typed views.

use crate::error::ProtocolError;

/// Reads fields from a payload; every accessor fails with `Malformed` instead of panicking.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// `what` names the message in error reports.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    /// An error naming this reader's message.
    pub(crate) fn err(&self, why: &'static str) -> ProtocolError {
        ProtocolError::malformed(self.what, why)
    }

    /// True once every byte has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next byte without consuming it.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// Consumes and returns everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// A NUL-terminated string's bytes, without the NUL.
    pub(crate) fn cbytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.err("string is not NUL-terminated"))?;
        let (s, rest) = self.buf.split_at(end);
        self.buf = rest.get(1..).unwrap_or_default();
        Ok(s)
    }

    /// A NUL-terminated string, or the rest of the payload when the NUL is missing: some
    /// servers and clients omit the terminator on the last field of a packet.
    pub(crate) fn cbytes_or_rest(&mut self) -> &'a [u8] {
        match self.cbytes() {
            Ok(s) => s,
            Err(_) => self.rest(),
        }
    }

    /// Exactly `n` raw bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if n > self.buf.len() {
            return Err(self.err("field runs past the end of the packet"));
        }
        let (s, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(s)
    }

    /// A fixed-size array of raw bytes.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>()?[0])
    }

    /// Little-endian u16.
    pub(crate) fn u16(&mut self) -> Result<u16, ProtocolError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Little-endian u32.
    pub(crate) fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A length-encoded integer.
    pub(crate) fn lenenc_int(&mut self) -> Result<u64, ProtocolError> {
        let (v, rest) = crate::lenenc::read_lenenc_int(self.buf)
            .map_err(|_| self.err("bad length-encoded integer"))?;
        self.buf = rest;
        Ok(v)
    }

    /// A length-encoded string, bounded by the bytes actually present.
    pub(crate) fn lenenc_bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let (s, rest) = crate::lenenc::read_lenenc_str(self.buf)
            .map_err(|_| self.err("bad length-encoded string"))?;
        self.buf = rest;
        Ok(s)
    }
}
