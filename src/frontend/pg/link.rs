//! A session's connection to one server, with the bookkeeping needed to relay over it.

use super::batch::Batch;
use super::vars::Action;
use crate::backend::ServerConn;
use crate::net::NetWrite;
use crate::pool::Lease;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use tokio::io::AsyncWriteExt;

/// Most buffers handed to one vectored write (Linux's IOV_MAX is 1024; a few dozen is plenty).
const MAX_SLICES: usize = 32;

/// Outgoing messages, written with vectored writes so relayed Bytes are never copied.
#[derive(Default)]
pub struct OutQueue {
    q: VecDeque<Bytes>,
    /// Bytes queued.
    pub bytes: usize,
    /// Written since the last flush: TLS may hold them in its buffer until flushed.
    unflushed: bool,
}

impl OutQueue {
    /// Queues a message.
    pub fn push(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.bytes += b.len();
            self.q.push_back(b);
        }
    }

    /// True when nothing is queued and everything written was flushed.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty() && !self.unflushed
    }

    /// Writes as much as one vectored write takes, then flushes once the queue is empty (TLS
    /// keeps accepted bytes in its own buffer until flushed). Cancel-safe: a call cancelled in
    /// the write wrote nothing; one cancelled in the flush leaves `unflushed` set for the next.
    pub async fn write_to(&mut self, w: &mut NetWrite) -> std::io::Result<()> {
        if self.q.is_empty() {
            w.flush().await?;
            self.unflushed = false;
            return Ok(());
        }
        let n = if self.q.len() == 1 {
            // One buffer (the common case): send(2) rather than writev(2), which costs the
            // kernel an iovec import and a trip through the VFS layer.
            w.write(&self.q[0]).await?
        } else {
            // On the stack: this runs twice per statement, an allocation each time shows.
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (slot, b) in slices.iter_mut().zip(self.q.iter()) {
                *slot = IoSlice::new(b);
                count += 1;
            }
            w.write_vectored(&slices[..count]).await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        self.advance(n);
        self.unflushed = true;
        if self.q.is_empty() {
            w.flush().await?;
            self.unflushed = false;
        }
        Ok(())
    }

    fn advance(&mut self, mut n: usize) {
        self.bytes -= n;
        while n > 0 {
            let Some(front) = self.q.front_mut() else {
                return;
            };
            if front.len() <= n {
                n -= front.len();
                self.q.pop_front();
            } else {
                let _ = front.split_to(n);
                n = 0;
            }
        }
    }
}

/// A message the session sent that is answered by ReadyForQuery.
#[derive(Debug, Default)]
pub struct Pending {
    /// Sent by the proxy itself (state replay): its responses are not the client's.
    pub internal: bool,
    /// Session changes to apply if it succeeds.
    pub actions: Vec<Action>,
    /// An ErrorResponse was seen for it.
    pub error: bool,
    /// Some response for it already reached the client.
    pub forwarded: bool,
    /// A ROLLBACK completed within it.
    pub rolled_back: bool,
    /// The batch, kept while it could still be retried elsewhere (a read outside a transaction).
    pub retry: Option<Batch>,
    /// The proxy's `SELECT pg_current_wal_lsn()` after a write (read-your-writes).
    pub capture_lsn: bool,
    /// The LSN that query returned.
    pub captured: Option<u64>,
    /// The client's batch committed a write (read-your-writes, window mode).
    pub wrote: bool,
    /// The client's statements it carries, counted when it completes.
    pub tally: crate::observe::Tally,
    /// Role of the node it was sent to, for the metrics.
    pub role: Option<crate::cluster::Role>,
    /// When it was sent, when metrics are on and it carries statements.
    pub sent: Option<std::time::Instant>,
}

/// Parse, Bind and Close are answered by one completion message each, in order; the proxy's own
/// (injected) ones must not reach the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// ParseComplete expected.
    Parse {
        /// Sent by the proxy.
        injected: bool,
        /// Global statement name this Parse creates on the server (None for the placeholder
        /// Parse sent when the server already has the statement).
        global: Option<std::sync::Arc<str>>,
    },
    /// BindComplete expected.
    Bind,
    /// CloseComplete expected.
    Close {
        /// Sent by the proxy.
        injected: bool,
    },
    /// A Sync (or Query): an error skips completions up to here, ReadyForQuery consumes it.
    Sync,
}

/// Expected completions, oldest first, with Sync markers between Syncs' worth.
#[derive(Debug, Default)]
pub struct Completions(pub VecDeque<Completion>);

impl Completions {
    /// Queues an expected completion or a Sync marker.
    pub fn push(&mut self, c: Completion) {
        self.0.push_back(c);
    }

    /// Takes the completion a '1', '2' or '3' message answers (never crossing a Sync).
    pub fn take_completion(&mut self) -> Option<Completion> {
        match self.0.front() {
            Some(Completion::Sync) | None => None,
            Some(_) => self.0.pop_front(),
        }
    }

    /// True when the front entry is a Completion the proxy injected (its answer is swallowed).
    pub fn front_injected(&self) -> bool {
        matches!(
            self.0.front(),
            Some(Completion::Parse { injected: true, .. } | Completion::Close { injected: true })
        )
    }

    /// After an ErrorResponse the server skips to the next Sync: drop what it will not answer.
    /// The Parses among them (the failed message and the skipped ones) created nothing, so
    /// their statements are removed from the server's list.
    pub fn skip_to_sync(&mut self, statements: &mut HashMap<String, u64>) {
        while let Some(c) = self.0.front() {
            if *c == Completion::Sync {
                return;
            }
            if let Some(Completion::Parse {
                global: Some(g), ..
            }) = self.0.pop_front()
            {
                statements.remove(&*g);
            }
        }
    }

    /// ReadyForQuery ends one Sync's worth of completions.
    pub fn end_sync(&mut self) {
        while let Some(c) = self.0.pop_front() {
            if c == Completion::Sync {
                return;
            }
        }
    }
}

/// A link's queues, kept by the session between checkouts so that a transaction does not
/// allocate them anew (under transaction pooling a link lives for one transaction).
#[derive(Default)]
pub struct LinkQueues {
    out: OutQueue,
    outstanding: VecDeque<Pending>,
    completions: Completions,
}

/// A session's connection to one node.
pub struct Link {
    /// The server connection.
    pub conn: Box<ServerConn>,
    /// Messages waiting to be written to the server.
    pub out: OutQueue,
    /// Messages answered by ReadyForQuery, oldest first.
    pub outstanding: VecDeque<Pending>,
    /// Expected ParseComplete/BindComplete/CloseComplete, oldest first.
    pub completions: Completions,
    /// The pool slot the connection occupies.
    pub lease: Lease,
    /// Transaction status from the last ReadyForQuery.
    pub status: u8,
    /// Session state here can't be rebuilt (temporary tables, locks...): reset before pooling.
    pub dirty: bool,
    /// Changes when the node goes down: work in flight here is then lost.
    pub node_down: tokio::sync::watch::Receiver<u64>,
    /// The node's role when the session last routed to it (metrics label).
    pub role: Option<crate::cluster::Role>,
}

impl Link {
    /// Wraps a fresh or pooled (clean) server connection.
    pub fn new(
        conn: Box<ServerConn>,
        lease: Lease,
        node_down: tokio::sync::watch::Receiver<u64>,
        queues: LinkQueues,
    ) -> Self {
        Link {
            conn,
            out: queues.out,
            outstanding: queues.outstanding,
            completions: queues.completions,
            lease,
            status: b'I',
            dirty: false,
            node_down,
            role: None,
        }
    }

    /// Gives the connection back to its pool and the (emptied) queues back to the caller.
    pub fn release(mut self) -> LinkQueues {
        self.lease.release(self.conn);
        self.out.q.clear();
        self.out.bytes = 0;
        self.out.unflushed = false;
        self.outstanding.clear();
        self.completions.0.clear();
        LinkQueues {
            out: self.out,
            outstanding: self.outstanding,
            completions: self.completions,
        }
    }

    /// True when the server has nothing in flight and no transaction open.
    pub fn idle(&self) -> bool {
        self.outstanding.is_empty() && self.out.is_empty() && self.status == b'I'
    }
}
