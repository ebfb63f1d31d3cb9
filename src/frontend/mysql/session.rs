//! One MySQL client session: reads a command, routes it, relays the whole response, and
//! keeps transactions, settings and pins coherent across pooled server connections.

use super::link::MyLink;
pub(super) use super::route::Target;
use super::vars::MyVars;
use super::{err_payload, ok_payload, MyContext, CONNECTION_LOST, NO_NODE};
use crate::backend::mysql::MyConn;
use crate::cluster::ReplicaPicker;
use crate::net::{NetRead, NetWrite};
use crate::observe::{ErrorKind, StatementKind, Tally};
use crate::pool::NodePool;
use crate::route::Effect;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use switchyard_mysql::{self as my, Command, StatusFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A logged-in MySQL client.
pub(super) struct Session {
    pub ctx: Arc<MyContext>,
    pub id: u64,
    pub user: String,
    pub database: String,
    pub client_r: NetRead,
    pub client_w: NetWrite,
    pub cin: BytesMut,
    pub pools: Vec<Arc<NodePool<MyConn>>>,
    pub links: Vec<Option<MyLink>>,
    /// Node holding the open transaction.
    pub txn_node: Option<usize>,
    /// Autocommit as the server last reported it: off means every statement is in a
    /// transaction, so the session stays on the primary.
    pub autocommit: bool,
    /// Why the session is pinned to its primary connection.
    pub pinned: Option<&'static str>,
    pub vars: MyVars,
    pub picker: ReplicaPicker,
    pub transaction_pooling: bool,
    /// Statements the client prepared, by the id the proxy gave it.
    pub prepared: std::collections::HashMap<u32, super::stmt::ClientStatement>,
    /// The next statement id to give the client.
    pub next_statement: u32,
    /// Set while a LOAD DATA LOCAL INFILE the cluster allows runs: the server may ask for the
    /// client's file (any other request for one is a protocol error).
    pub infile_allowed: bool,
    /// The greeting's nonce, which COM_CHANGE_USER answers are made with.
    pub nonce: Vec<u8>,
    /// Open server-side cursors, by the client's statement id: their connections stay held.
    pub cursors: std::collections::HashMap<u32, super::cursor::Cursor>,
    /// Read-your-writes (lsn mode): GTID of the session's last committed write ("" when it
    /// could not be read: reads go to the primary until the next write).
    pub ryw_gtid: Option<String>,
    /// Per node: whether it applied `ryw_gtid` in time (asked once per write and replica).
    pub ryw_confirmed: Vec<Option<bool>>,
    /// Read-your-writes (window mode): reads go to the primary until then.
    pub ryw_until: Option<tokio::time::Instant>,
}

impl Session {
    /// Serves commands until the client quits or its connection fails.
    pub async fn run(&mut self) -> std::io::Result<()> {
        let max = self.ctx.general.max_message_bytes;
        loop {
            let p = loop {
                match my::decode_packet(&mut self.cin, max) {
                    Ok(Some(p)) => break p,
                    Ok(None) => {
                        if self.client_r.read_buf(&mut self.cin).await? == 0 {
                            return Ok(());
                        }
                    }
                    Err(e) => {
                        tracing::warn!(session = self.id, "bad packet from client: {e}");
                        let err = err_payload(1153, "08S01", &format!("bad packet: {e}"));
                        self.reply(1, &err).await?;
                        return Ok(());
                    }
                }
            };
            let reply_seq = p.next_seq();
            match my::command_of(&p.payload) {
                Some(Command::COM_QUIT) => return Ok(()),
                Some(Command::COM_PING) => {
                    let ok = ok_payload(self.status());
                    self.reply(reply_seq, &ok).await?;
                }
                Some(Command::COM_QUERY) => self.query(p).await?,
                Some(Command::COM_STMT_PREPARE) => self.stmt_prepare(p).await?,
                Some(Command::COM_STMT_EXECUTE) => self.stmt_execute(p).await?,
                Some(Command::COM_STMT_SEND_LONG_DATA) => self.stmt_long_data(&p),
                Some(Command::COM_STMT_CLOSE) => self.stmt_close(&p).await,
                Some(Command::COM_STMT_RESET) => self.stmt_reset(p).await?,
                Some(Command::COM_STMT_FETCH) => self.stmt_fetch(p).await?,
                Some(Command::COM_CHANGE_USER) => {
                    if !self.change_user(p).await? {
                        return Ok(());
                    }
                }
                Some(Command::COM_INIT_DB) => {
                    let db = String::from_utf8_lossy(&p.payload[1..]).into_owned();
                    self.use_database(db, reply_seq).await?;
                }
                Some(Command::COM_SET_OPTION) => {
                    // Server connections always allow multi-statements (they are shared); the
                    // client's choice is acknowledged as a server would, with an EOF.
                    let eof = my::EofPacket {
                        warnings: 0,
                        status: self.status(),
                    }
                    .encode();
                    self.reply(reply_seq, &eof).await?;
                }
                Some(Command::COM_FIELD_LIST) => self.field_list(p).await?,
                Some(Command::COM_RESET_CONNECTION) => {
                    self.reset_session();
                    let ok = ok_payload(self.status());
                    self.reply(reply_seq, &ok).await?;
                }
                other => {
                    let name = other.map_or_else(
                        || format!("0x{:02x}", p.payload.first().copied().unwrap_or(0)),
                        |c| format!("{c:?}"),
                    );
                    let msg = format!("switchyard does not support {name} yet");
                    let err = err_payload(1047, "08S01", &msg);
                    self.reply(reply_seq, &err).await?;
                }
            }
        }
    }

    /// Writes bytes already framed to the client.
    pub(super) async fn client_w_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.client_w.write_all(bytes).await?;
        self.client_w.flush().await
    }

    /// Status flags for the proxy's own OK/EOF packets.
    pub(super) fn status(&self) -> StatusFlags {
        let mut s = StatusFlags::empty();
        if self.autocommit {
            s |= StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        }
        if self.txn_node.is_some() {
            s |= StatusFlags::SERVER_STATUS_IN_TRANS;
        }
        s
    }

    /// Sends one packet of the proxy's own to the client; an ERR of the proxy's own kinds is
    /// counted (see `ErrorKind::of_mysql_code`).
    pub(super) async fn reply(&mut self, seq: u8, payload: &[u8]) -> std::io::Result<()> {
        if let [0xff, lo, hi, ..] = payload {
            if let Some(kind) = ErrorKind::of_mysql_code(u16::from_le_bytes([*lo, *hi])) {
                self.ctx.metrics.error(kind);
            }
        }
        self.client_w
            .write_all(&my::encode_packet(seq, payload))
            .await?;
        self.client_w.flush().await
    }

    /// COM_INIT_DB: the session's database, checked on the primary (a missing one is the
    /// server's own error), then the pools of the new database serve it.
    async fn use_database(&mut self, db: String, seq: u8) -> std::io::Result<()> {
        if self.pinned.is_some() || self.txn_node.is_some() {
            // The connection holding the session's state must switch itself.
            let mut payload = vec![Command::COM_INIT_DB as u8];
            payload.extend_from_slice(db.as_bytes());
            let raw = my::encode_packet(0, &payload);
            let node = match self.txn_node.or_else(|| self.primary()) {
                Some(n) => n,
                None => return self.reply(seq, &self.no_primary()).await,
            };
            if self.relay(node, raw, false).await? == Some(true) {
                self.database = db;
            }
            return Ok(());
        }
        let pools = self.ctx.session_pools(&self.user, &db);
        let Some(primary) = self.primary() else {
            return self.reply(seq, &self.no_primary()).await;
        };
        let incarnation = self.incarnation(primary);
        match self.ctx.lease(&pools[primary], primary, incarnation).await {
            Ok((lease, conn)) => lease.release(conn),
            Err(e) => {
                let err = lease_error(&e);
                return self.reply(seq, &err).await;
            }
        }
        self.release_all();
        self.pools = pools;
        self.database = db;
        let ok = ok_payload(self.status());
        self.reply(seq, &ok).await
    }

    fn primary(&self) -> Option<usize> {
        self.ctx.state.load().primary().map(|p| p.id)
    }

    fn incarnation(&self, node: usize) -> u64 {
        self.ctx
            .state
            .load()
            .node(node)
            .map_or(0, |n| n.incarnation)
    }

    pub(super) fn no_primary(&self) -> Bytes {
        let msg = format!(
            "no primary is available in cluster {}",
            self.ctx.config.name
        );
        err_payload(NO_NODE, "08S01", &msg)
    }

    /// COM_FIELD_LIST (deprecated, still sent by the mysql CLI for completion): a read.
    async fn field_list(&mut self, p: my::Packet) -> std::io::Result<()> {
        let seq = p.next_seq();
        let target = match self.txn_node {
            Some(n) => Target::Node(n),
            None if self.pinned.is_some() || !self.autocommit => Target::Primary,
            None => Target::Replica,
        };
        let Some(node) = self.choose_waiting(&target).await else {
            return self.reply(seq, &self.no_primary()).await;
        };
        if let Err(e) = self.ensure_link(node).await {
            return self.reply(seq, &lease_error(&e)).await;
        }
        self.relay_as(node, p.raw.clone(), false, true).await?;
        self.maybe_release(node);
        Ok(())
    }

    /// COM_QUERY: classify, route, relay.
    async fn query(&mut self, p: my::Packet) -> std::io::Result<()> {
        let reply_seq = p.next_seq();
        let text = std::str::from_utf8(&p.payload[1..]).ok();
        let class = text.map(|t| crate::route::classify_mysql(t, &self.ctx.classify));
        let local_infile = class.as_ref().is_some_and(|c| {
            c.statements
                .iter()
                .any(|s| s.reason == crate::route::Reason::LocalInfile)
        });
        if local_infile && !self.ctx.config.local_infile {
            let msg = format!(
                "LOAD DATA LOCAL INFILE is disabled on switchyard cluster {} (set local_infile = true in its config to allow it)",
                self.ctx.config.name
            );
            return self
                .reply(reply_seq, &err_payload(1148, "42000", &msg))
                .await;
        }
        self.infile_allowed = local_infile;
        let done = self.routed_query(&p, text, class).await;
        self.infile_allowed = false;
        done
    }

    /// The routing and relaying part of `query`.
    async fn routed_query(
        &mut self,
        p: &my::Packet,
        text: Option<&str>,
        class: Option<crate::route::Classification>,
    ) -> std::io::Result<()> {
        let reply_seq = p.next_seq();
        if let Some(err) = self.wait_if_paused().await {
            return self.reply(reply_seq, &err).await;
        }
        let mut target = self.target(class.as_ref());
        target = self.ryw_target(target);
        if let Some(why) = class.as_ref().and_then(|c| c.pins()) {
            if self.pinned.is_none() {
                tracing::info!(session = self.id, "pinned to the primary: {why}");
                self.pinned = Some(why);
            }
        }
        let raw = p.raw.clone();
        let tally = class.as_ref().map_or_else(
            || {
                // Not UTF-8: not classified, sent to the primary.
                let mut t = Tally::default();
                t.add(StatementKind::Other);
                t
            },
            Tally::of,
        );
        let mut tally = tally;
        if let Some(t) = text {
            tally.digest = self.ctx.metrics.digests.key(t, true);
        }
        // A read that loses its replica before any reply is tried once more elsewhere.
        for _ in 0..self.links.len() + 2 {
            let node = match self.choose_waiting(&target).await {
                Some(n) => n,
                None => return self.reply(reply_seq, &self.no_primary()).await,
            };
            if let Err(e) = self.ensure_link(node).await {
                if self.try_elsewhere(node, &target, &e) {
                    continue;
                }
                return self.reply(reply_seq, &lease_error(&e)).await;
            }
            if self.pinned.is_some() {
                if let Some(l) = self.links[node].as_mut() {
                    l.dirty = true;
                }
            }
            if matches!(target, Target::Replica)
                && self.is_replica(node)
                && !self.replica_caught_up(node).await
            {
                // The replica has not applied the session's last write in time.
                self.maybe_release(node);
                target = self.ryw_next_target();
                continue;
            }
            let role = self.links[node].as_ref().and_then(|l| l.role);
            let sent = self.ctx.metrics.clock();
            match self
                .relay(node, raw.clone(), matches!(target, Target::Replica))
                .await?
            {
                Some(ok) => {
                    let done = sent.map(|_| std::time::Instant::now());
                    self.ctx.metrics.record(node, role, &tally, sent, done);
                    if ok {
                        if let (Some(c), Some(t)) = (&class, text) {
                            self.apply_effects(node, c, t);
                        }
                        if self.committed_write(node, class.as_ref()) {
                            self.note_write(node).await;
                        }
                    }
                    self.maybe_release(node);
                    return Ok(());
                }
                None => {
                    // Lost before any reply: retry a read elsewhere.
                    target = Target::Replica;
                }
            }
        }
        let err = err_payload(
            CONNECTION_LOST,
            "HY000",
            "Lost connection to server during query",
        );
        self.reply(reply_seq, &err).await
    }

    pub(super) async fn ensure_link(
        &mut self,
        node: usize,
    ) -> Result<(), super::context::LeaseError> {
        let (incarnation, role) = self
            .ctx
            .state
            .load()
            .node(node)
            .map_or((0, None), |n| (n.incarnation, n.role));
        match &mut self.links[node] {
            Some(l) if l.conn.incarnation == incarnation => {
                l.role = role;
                return Ok(());
            }
            Some(_) => self.links[node] = None,
            None => {}
        }
        let pool = self.pools[node].clone();
        let (lease, mut conn) = self.ctx.lease(&pool, node, incarnation).await?;
        if let Some((reset, sets)) = self.vars.sync(conn.state_sig) {
            let (timeout, max) = (
                self.ctx.general.connect_timeout,
                self.ctx.general.max_message_bytes,
            );
            if reset {
                conn.run(&[Command::COM_RESET_CONNECTION as u8], timeout, max)
                    .await?;
                // A reset closes the server's prepared statements too.
                conn.statements.clear();
            }
            for sql in sets {
                let mut cmd = vec![Command::COM_QUERY as u8];
                cmd.extend_from_slice(sql.as_bytes());
                conn.run(&cmd, timeout, max).await?;
            }
            conn.state_sig = self.vars.sig;
        }
        let node_down = self.ctx.state.watch_node(node);
        self.links[node] = Some(MyLink {
            conn,
            lease,
            dirty: false,
            node_down,
            role,
        });
        Ok(())
    }

    /// Records what a successful statement changed in the session.
    fn apply_effects(&mut self, node: usize, c: &crate::route::Classification, text: &str) {
        let mut changed = false;
        for st in &c.statements {
            let Some(sql) = text.get(st.span.clone()) else {
                continue;
            };
            match &st.effect {
                Effect::Set { name } if name == "use" => {
                    // The connection now uses another database than its pool's: it is closed
                    // rather than pooled, and the session's pools follow the new database.
                    let db = sql
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .trim_matches(|c| c == '`' || c == ';')
                        .to_string();
                    if !db.is_empty() {
                        self.links[node] = None;
                        self.pools = self.ctx.session_pools(&self.user, &db);
                        self.database = db;
                    }
                }
                Effect::Set { name } => {
                    self.vars.set(name, sql);
                    changed = true;
                }
                Effect::Autocommit { .. } => {
                    // Replayed like a setting: autocommit = 0 must hold on every connection
                    // the session gets after a COMMIT.
                    self.vars.set("autocommit", sql);
                    changed = true;
                }
                _ => {}
            }
        }
        if changed {
            if let Some(l) = self.links[node].as_mut() {
                l.conn.state_sig = self.vars.sig;
            }
        }
    }

    /// Under transaction pooling, gives an idle, unpinned connection back to its pool.
    pub(super) fn maybe_release(&mut self, node: usize) {
        if !self.transaction_pooling || self.pinned.is_some() || self.txn_node.is_some() {
            return;
        }
        if self.cursors.values().any(|c| c.node == node) {
            // Its open cursor lives on this connection.
            return;
        }
        if let Some(l) = self.links[node].take() {
            if l.dirty || !l.conn.inbuf.is_empty() {
                // Unknown state: not handed to anyone else.
                return;
            }
            l.lease.release(l.conn);
        }
    }

    /// Gives every connection back (clean ones at once, dirty ones after a reset).
    pub fn release_all(&mut self) {
        let in_txn = self.txn_node.take();
        for (i, slot) in self.links.iter_mut().enumerate() {
            let Some(l) = slot.take() else { continue };
            if in_txn == Some(i) || !l.conn.inbuf.is_empty() {
                continue;
            }
            if !l.dirty {
                l.lease.release(l.conn);
                continue;
            }
            let ctx = self.ctx.clone();
            tokio::spawn(async move {
                let MyLink {
                    mut conn, lease, ..
                } = l;
                let (timeout, max) = (ctx.general.connect_timeout, ctx.general.max_message_bytes);
                if conn
                    .run(&[Command::COM_RESET_CONNECTION as u8], timeout, max)
                    .await
                    .is_ok()
                {
                    conn.state_sig = 0;
                    conn.statements.clear();
                    lease.release(conn);
                }
            });
        }
        self.pinned = None;
    }
}

/// The client's ERR for a failed checkout or connect.
pub(super) fn lease_error(e: &super::context::LeaseError) -> Bytes {
    match e {
        super::context::LeaseError::Pool(p) => err_payload(1040, "08004", &p.to_string()),
        super::context::LeaseError::Backend(crate::backend::BackendError::MySql {
            code,
            sql_state,
            message,
            ..
        }) => err_payload(*code, sql_state, message),
        super::context::LeaseError::Backend(b) => err_payload(NO_NODE, "08S01", &b.to_string()),
    }
}
