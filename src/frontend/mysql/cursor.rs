//! Server-side cursors (COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY, then COM_STMT_FETCH):
//! the cursor lives on the server connection that ran the execute, so that connection stays
//! with the session until the cursor is exhausted, reset or closed; fetches go there with the
//! statement id rewritten.

use super::session::Session;
use super::{err_payload, CONNECTION_LOST};
use switchyard_mysql::{self as my, Command, StatusFlags};

/// COM_STMT_EXECUTE flag asking for a read-only cursor.
pub(super) const CURSOR_TYPE_READ_ONLY: u8 = 1;

/// An open cursor: where it lives.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cursor {
    /// Node of the server connection holding it.
    pub node: usize,
    /// The statement id on that server connection.
    pub server_id: u32,
    /// The server statement was prepared for this cursor alone (closed with it).
    pub owned: bool,
}

impl Session {
    /// After an execute of client statement `id` on `node` (server statement `server_id`,
    /// `owned` when private to it): records the cursor the server opened, or forgets an
    /// earlier one the execute implicitly closed.
    pub(super) async fn note_cursor(&mut self, id: u32, node: usize, server_id: u32, owned: bool) {
        self.cursors.remove(&id);
        let open = self.links[node].as_ref().is_some_and(|l| {
            l.conn
                .status
                .contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS)
        });
        if open {
            let cursor = Cursor {
                node,
                server_id,
                owned,
            };
            self.cursors.insert(id, cursor);
        } else if owned {
            self.drop_private(node, server_id).await;
        }
    }

    /// Closes a server statement prepared for one cursor (COM_STMT_CLOSE has no answer); a
    /// failure drops the connection.
    async fn drop_private(&mut self, node: usize, server_id: u32) {
        let mut cmd = vec![Command::COM_STMT_CLOSE as u8];
        cmd.extend_from_slice(&server_id.to_le_bytes());
        if let Some(l) = self.links[node].as_mut() {
            if l.conn.send_raw(&my::encode_packet(0, &cmd)).await.is_err() {
                self.links[node] = None;
            }
        }
    }

    /// The node of client statement `id`'s open cursor, where its next execute must go (the
    /// server closes the old cursor then, so it must be the same server connection).
    pub(super) fn cursor_node(&self, id: u32) -> Option<usize> {
        self.cursors.get(&id).map(|c| c.node)
    }

    /// COM_STMT_FETCH: rows of an open cursor, from the connection holding it.
    pub(super) async fn stmt_fetch(&mut self, p: my::Packet) -> std::io::Result<()> {
        let seq = p.next_seq();
        let id = my::statement_id(&p.payload).ok();
        let Some((id, cursor)) = id.and_then(|id| self.cursors.get(&id).map(|c| (id, *c))) else {
            let shown = id.map_or_else(|| "?".to_string(), |i| i.to_string());
            let msg = format!("The statement ({shown}) has no open cursor.");
            return self.reply(seq, &err_payload(1421, "HY000", &msg)).await;
        };
        if self.links[cursor.node].is_none() {
            self.cursors.remove(&id);
            let msg = "Lost connection to server holding the cursor";
            return self
                .reply(seq, &err_payload(CONNECTION_LOST, "HY000", msg))
                .await;
        }
        let mut payload = p.payload.to_vec();
        if my::rewrite_statement_id(&mut payload, cursor.server_id).is_err() {
            let msg = "Incorrect arguments to mysqld_stmt_fetch";
            return self.reply(seq, &err_payload(1210, "HY000", msg)).await;
        }
        let ok = self
            .relay_as(cursor.node, my::encode_packet(0, &payload), false, true)
            .await?;
        let still_open = ok == Some(true)
            && self.links[cursor.node].as_ref().is_some_and(|l| {
                let s = l.conn.status;
                s.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS)
                    && !s.contains(StatusFlags::SERVER_STATUS_LAST_ROW_SENT)
            });
        if !still_open {
            self.cursors.remove(&id);
            if cursor.owned {
                self.drop_private(cursor.node, cursor.server_id).await;
            }
            self.maybe_release(cursor.node);
        }
        Ok(())
    }

    /// Closes client statement `id`'s open cursor on its server with a COM_STMT_RESET there,
    /// whose answer goes to the client when `relay_answer` (else it is read and dropped).
    /// Ok(false) when there was no cursor, or the connection was lost on the way.
    pub(super) async fn close_cursor(
        &mut self,
        id: u32,
        relay_answer: bool,
    ) -> std::io::Result<bool> {
        let Some(cursor) = self.cursors.remove(&id) else {
            return Ok(false);
        };
        let mut cmd = vec![Command::COM_STMT_RESET as u8];
        cmd.extend_from_slice(&cursor.server_id.to_le_bytes());
        let done = match relay_answer {
            true => self
                .relay(cursor.node, my::encode_packet(0, &cmd), false)
                .await?
                .is_some(),
            false => {
                let (timeout, max) = (
                    self.ctx.general.connect_timeout,
                    self.ctx.general.max_message_bytes,
                );
                match self.links[cursor.node].as_mut() {
                    Some(l) => {
                        let ok = l.conn.run(&cmd, timeout, max).await.is_ok();
                        if !ok {
                            self.links[cursor.node] = None;
                        }
                        ok
                    }
                    None => false,
                }
            }
        };
        if cursor.owned {
            self.drop_private(cursor.node, cursor.server_id).await;
        }
        self.maybe_release(cursor.node);
        Ok(done)
    }

    /// Forgets every open cursor; their connections get reset before anyone else uses them.
    pub(super) fn close_cursors(&mut self) {
        for (_, c) in self.cursors.drain() {
            if let Some(l) = self.links[c.node].as_mut() {
                l.dirty = true;
            }
        }
    }
}
