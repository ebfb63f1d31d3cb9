//! Binary-protocol prepared statements on a server connection: preparing one, and rewriting
//! a client's COM_STMT_EXECUTE for the statement id this server gave it.

use super::{read_packet, send, MyConn};
use crate::backend::BackendError;
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::Arc;
use std::time::Duration;
use switchyard_mysql::{self as my, Command};

/// Most statements kept prepared on one server connection; past it one is closed, so
/// sessions with ever-new statement texts cannot grow servers without bound.
pub const MAX_STATEMENTS_PER_SERVER: usize = 1000;

/// A statement the server prepared: its answer and every packet of it (the PREPARE_OK,
/// then parameter and column definitions with their EOFs).
pub struct Prepared {
    /// The server's PREPARE_OK.
    pub ok: my::StmtPrepareOk,
    /// All packets of the answer, as received.
    pub packets: Vec<my::Packet>,
}

impl MyConn {
    /// Prepares `sql` here and records its id. Ok(Err(packet)) when the server refused it with
    /// an ERR (relayed to the client as it is).
    pub async fn prepare(
        &mut self,
        sql: &Arc<str>,
        timeout: Duration,
        max: usize,
    ) -> Result<Result<Prepared, my::Packet>, BackendError> {
        self.prepare_as(sql, timeout, max, true).await
    }

    /// `prepare`, but the statement is not recorded for reuse: the caller owns it and closes
    /// it (a cursor of its own while another one holds the shared statement).
    pub async fn prepare_private(
        &mut self,
        sql: &Arc<str>,
        timeout: Duration,
        max: usize,
    ) -> Result<Result<Prepared, my::Packet>, BackendError> {
        self.prepare_as(sql, timeout, max, false).await
    }

    async fn prepare_as(
        &mut self,
        sql: &Arc<str>,
        timeout: Duration,
        max: usize,
        cache: bool,
    ) -> Result<Result<Prepared, my::Packet>, BackendError> {
        let node = self.node.to_string();
        let io = |source| BackendError::Io {
            node: node.clone(),
            addr: String::new(),
            source,
        };
        let proto = |reason: String| BackendError::Protocol {
            node: node.clone(),
            reason,
        };
        if self.statements.len() >= MAX_STATEMENTS_PER_SERVER {
            if let Some((old, id)) = self.statements.iter().next().map(|(k, v)| (k.clone(), *v)) {
                self.statements.remove(&old);
                let mut close = vec![Command::COM_STMT_CLOSE as u8];
                close.extend_from_slice(&id.to_le_bytes());
                send(&mut self.writer, &my::encode_packet(0, &close))
                    .await
                    .map_err(io)?;
            }
        }
        let work = async {
            let mut cmd = vec![Command::COM_STMT_PREPARE as u8];
            cmd.extend_from_slice(sql.as_bytes());
            send(&mut self.writer, &my::encode_packet(0, &cmd))
                .await
                .map_err(io)?;
            let first = read_packet(&mut self.reader, &mut self.inbuf, max, &node).await?;
            if first.payload.first() == Some(&my::ERR_HEADER) {
                return Ok(Err(first));
            }
            let ok = my::StmtPrepareOk::parse(&first.payload).map_err(|e| proto(e.to_string()))?;
            // Definitions follow, each group closed by an EOF (no CLIENT_DEPRECATE_EOF).
            let groups = [ok.num_params, ok.num_columns];
            let expected: usize = groups
                .iter()
                .filter(|n| **n > 0)
                .map(|n| usize::from(*n) + 1)
                .sum();
            let mut packets = Vec::with_capacity(expected + 1);
            packets.push(first);
            for _ in 0..expected {
                packets.push(read_packet(&mut self.reader, &mut self.inbuf, max, &node).await?);
            }
            Ok(Ok(Prepared { ok, packets }))
        };
        let r = match tokio::time::timeout(timeout, work).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(BackendError::Timeout {
                    node: self.node.to_string(),
                    addr: String::new(),
                    after: timeout,
                })
            }
        };
        if let (Ok(p), true) = (&r, cache) {
            self.statements.insert(sql.clone(), p.ok.statement_id);
        }
        Ok(r)
    }
}

/// A client's COM_STMT_EXECUTE payload for server statement `server_id`, with the parameter
/// types always included (`types`: the ones the client last bound): the server connection may
/// never have seen the execute that first sent them. None when the payload is malformed.
pub fn execute_payload(
    payload: &[u8],
    server_id: u32,
    params: u16,
    types: Option<&[u8]>,
) -> Option<Bytes> {
    // cmd, id (4), flags (1), iteration count (4)
    let head = payload.get(..10)?;
    let mut out = BytesMut::with_capacity(payload.len() + 2 * usize::from(params) + 1);
    out.put_u8(head[0]);
    out.put_u32_le(server_id);
    out.put_slice(&head[5..10]);
    if params == 0 {
        out.put_slice(payload.get(10..)?);
        return Some(out.freeze());
    }
    let bitmap = usize::from(params).div_ceil(8);
    let rest = payload.get(10..)?;
    out.put_slice(rest.get(..bitmap)?);
    let bound = *rest.get(bitmap)?;
    let after = bitmap + 1;
    if bound == 1 {
        out.put_slice(rest.get(bitmap..)?);
    } else {
        out.put_u8(1);
        out.put_slice(types?);
        out.put_slice(rest.get(after..)?);
    }
    Some(out.freeze())
}

/// The parameter types a COM_STMT_EXECUTE binds, when it binds them.
pub fn bound_types(payload: &[u8], params: u16) -> Option<&[u8]> {
    if params == 0 {
        return None;
    }
    let bitmap = usize::from(params).div_ceil(8);
    let rest = payload.get(10..)?;
    if *rest.get(bitmap)? != 1 {
        return None;
    }
    rest.get(bitmap + 1..bitmap + 1 + 2 * usize::from(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execute(id: u32, bound: bool) -> Vec<u8> {
        let mut p = vec![0x17];
        p.extend_from_slice(&id.to_le_bytes());
        p.push(0);
        p.extend_from_slice(&1u32.to_le_bytes());
        p.push(0); // null bitmap for 2 params
        if bound {
            p.push(1);
            p.extend_from_slice(&[8, 0, 253, 0]);
        } else {
            p.push(0);
        }
        p.extend_from_slice(&7i64.to_le_bytes());
        p.extend_from_slice(&[1, b'x']);
        p
    }

    #[test]
    fn execute_gets_the_server_id_and_always_carries_types() {
        let bound = execute(5, true);
        assert_eq!(bound_types(&bound, 2), Some(&[8, 0, 253, 0][..]));
        let out = execute_payload(&bound, 99, 2, None).expect("rewrite");
        assert_eq!(&out[1..5], &99u32.to_le_bytes());
        assert_eq!(&out[5..], &bound[5..]);
        let unbound = execute(5, false);
        assert_eq!(bound_types(&unbound, 2), None);
        let out = execute_payload(&unbound, 99, 2, Some(&[8, 0, 253, 0])).expect("rewrite");
        assert_eq!(
            &out[..],
            &{
                let mut e = execute(99, true);
                e[0] = 0x17;
                e
            }[..]
        );
        assert!(
            execute_payload(&unbound, 99, 2, None).is_none(),
            "types unknown"
        );
        assert!(execute_payload(&bound[..8], 99, 2, None).is_none());
    }
}
