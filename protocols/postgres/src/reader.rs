//! Bounds-checked cursor over a message body shared by the typed views.

use crate::error::ProtocolError;

/// Reads fields from a body; every accessor fails with `Malformed` instead of panicking.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// `what` names the message in error reports.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    fn err(&self, why: &'static str) -> ProtocolError {
        ProtocolError::malformed(self.what, why)
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    /// True once every byte has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
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

    /// A NUL-terminated UTF-8 string.
    pub(crate) fn cstr(&mut self) -> Result<&'a str, ProtocolError> {
        let bytes = self.cbytes()?;
        std::str::from_utf8(bytes).map_err(|_| self.err("string is not valid UTF-8"))
    }

    /// Exactly `n` raw bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if n > self.buf.len() {
            return Err(self.err("field runs past the end of the message"));
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

    /// Big-endian i16.
    pub(crate) fn i16(&mut self) -> Result<i16, ProtocolError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    /// Big-endian i32.
    pub(crate) fn i32(&mut self) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// Big-endian u32.
    pub(crate) fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Fails if bytes remain: PostgreSQL rejects trailing garbage, so the proxy does too.
    pub(crate) fn finish(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err("unexpected trailing bytes"))
        }
    }
}
