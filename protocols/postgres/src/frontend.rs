//! Typed, borrowing views over the bodies of client messages the proxy needs to inspect.

use crate::error::ProtocolError;
use crate::reader::Reader;

#[cfg(test)]
mod tests;

/// Query ('Q'): the SQL text.
pub fn query_text(body: &[u8]) -> Result<&str, ProtocolError> {
    let mut r = Reader::new(body, "Query");
    let sql = r.cstr()?;
    r.finish()?;
    Ok(sql)
}

/// Parse ('P'): prepares `query` under `name` (empty = the unnamed statement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse<'a> {
    /// Statement name; empty for the unnamed statement.
    pub name: &'a str,
    /// SQL text.
    pub query: &'a str,
    /// Parameter type OIDs the client pinned (0 = let the server infer).
    pub param_types: Vec<u32>,
}

/// Decodes a Parse ('P') body.
pub fn parse_parse(body: &[u8]) -> Result<Parse<'_>, ProtocolError> {
    let mut r = Reader::new(body, "Parse");
    let name = r.cstr()?;
    let query = r.cstr()?;
    let count = r.i16()?;
    let count = usize::try_from(count)
        .map_err(|_| ProtocolError::malformed("Parse", "negative parameter count"))?;
    // The count is bounded by i16 and each entry is read against the body, so no huge
    // allocation can be forced by a lying count.
    let mut param_types = Vec::with_capacity(count.min(r.remaining().len() / 4));
    for _ in 0..count {
        param_types.push(r.u32()?);
    }
    r.finish()?;
    Ok(Parse {
        name,
        query,
        param_types,
    })
}

/// Bind ('B'): only the names are decoded; parameters and formats stay in the raw frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind<'a> {
    /// Destination portal; empty for the unnamed portal.
    pub portal: &'a str,
    /// Source prepared statement; empty for the unnamed statement.
    pub statement: &'a str,
}

/// Decodes the leading names of a Bind ('B') body.
pub fn parse_bind(body: &[u8]) -> Result<Bind<'_>, ProtocolError> {
    let mut r = Reader::new(body, "Bind");
    let portal = r.cstr()?;
    let statement = r.cstr()?;
    Ok(Bind { portal, statement })
}

/// What a Describe or Close refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// b'S' for a prepared statement, b'P' for a portal.
    pub kind: u8,
    /// Its name; empty for the unnamed one.
    pub name: &'a str,
}

fn parse_target<'a>(body: &'a [u8], what: &'static str) -> Result<Target<'a>, ProtocolError> {
    let mut r = Reader::new(body, what);
    let kind = r.u8()?;
    if kind != b'S' && kind != b'P' {
        return Err(ProtocolError::malformed(
            what,
            "target kind is neither 'S' nor 'P'",
        ));
    }
    let name = r.cstr()?;
    r.finish()?;
    Ok(Target { kind, name })
}

/// Decodes a Describe ('D') body.
pub fn parse_describe(body: &[u8]) -> Result<Target<'_>, ProtocolError> {
    parse_target(body, "Describe")
}

/// Decodes a frontend Close ('C') body.
pub fn parse_close(body: &[u8]) -> Result<Target<'_>, ProtocolError> {
    parse_target(body, "Close")
}

/// Execute ('E'): runs a portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execute<'a> {
    /// Portal name; empty for the unnamed portal.
    pub portal: &'a str,
    /// Row limit; 0 means no limit.
    pub max_rows: i32,
}

/// Decodes an Execute ('E') body.
pub fn parse_execute(body: &[u8]) -> Result<Execute<'_>, ProtocolError> {
    let mut r = Reader::new(body, "Execute");
    let portal = r.cstr()?;
    let max_rows = r.i32()?;
    r.finish()?;
    Ok(Execute { portal, max_rows })
}

/// PasswordMessage ('p'): the password or md5 response, without the trailing NUL.
pub fn password_text(body: &[u8]) -> Result<&[u8], ProtocolError> {
    let mut r = Reader::new(body, "PasswordMessage");
    let password = r.cbytes()?;
    r.finish()?;
    Ok(password)
}

/// SASLInitialResponse ('p'): the chosen mechanism and the client-first-message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslInitial<'a> {
    /// Mechanism name, e.g. "SCRAM-SHA-256".
    pub mechanism: &'a str,
    /// Initial client response; empty when the client sent length -1.
    pub data: &'a [u8],
}

/// Decodes a SASLInitialResponse ('p') body.
pub fn parse_sasl_initial(body: &[u8]) -> Result<SaslInitial<'_>, ProtocolError> {
    const WHAT: &str = "SASLInitialResponse";
    let mut r = Reader::new(body, WHAT);
    let mechanism = r.cstr()?;
    let len = r.i32()?;
    let data = match len {
        -1 => &[][..],
        n => {
            let n = usize::try_from(n)
                .map_err(|_| ProtocolError::malformed(WHAT, "negative data length"))?;
            r.take(n)?
        }
    };
    r.finish()?;
    Ok(SaslInitial { mechanism, data })
}

/// SASLResponse ('p'): the body is the mechanism's data as is; named for symmetry.
pub fn sasl_response_data(body: &[u8]) -> &[u8] {
    body
}
