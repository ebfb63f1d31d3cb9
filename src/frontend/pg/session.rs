//! One client session: the event loop that relays between the client and its servers.

use super::batch::{global_name, Batch, PreparedDef};
use super::cancel::CancelSlot;
use super::link::{Link, OutQueue};
use super::vars::SessionVars;
use super::{ClusterContext, FrontendError};
use crate::cluster::ReplicaPicker;
use crate::net::{NetRead, NetWrite};
use crate::observe::{ReasonLabel, StatementKind, Tally};
use crate::pool::NodePool;
use crate::route::{classify, Intent};
use bytes::BytesMut;
use std::collections::HashMap;
use std::sync::Arc;
use switchyard_postgres::{self as pg, Frame};
use tokio::io::AsyncReadExt;

/// Stop reading from one side while this much is queued for the other (backpressure).
pub(super) const HIGH_WATER: usize = 1 << 20;
/// An extended-protocol batch larger than this is sent before its Sync, to bound memory.
const BATCH_CAP: usize = 1 << 20;

/// A logged-in client and the servers it has reached.
pub struct Session {
    pub(super) ctx: Arc<ClusterContext>,
    pub(super) id: u64,
    client_r: NetRead,
    client_w: NetWrite,
    cin: BytesMut,
    pub(super) cout: OutQueue,
    /// One optional link per node id.
    pub(super) links: Vec<Option<Link>>,
    /// The node whose responses are being relayed; only one at a time keeps responses in order.
    pub(super) active: Option<usize>,
    /// Node of an extended-protocol batch sent up to a Flush but not yet to its Sync.
    pub(super) open_batch: Option<usize>,
    /// Actions of an open batch, applied at its Sync.
    pub(super) open_actions: Vec<super::vars::Action>,
    building: Batch,
    /// A complete batch waiting for the active node to finish (it goes elsewhere).
    pub(super) held: Option<Batch>,
    /// After an error the proxy raised mid-batch, the client's messages are dropped until Sync.
    pub(super) discard_until_sync: bool,
    /// Transaction status as last reported to the client.
    pub(super) tx_status: u8,
    /// Node holding the open transaction.
    pub(super) txn_node: Option<usize>,
    /// Why the session is pinned to the primary, if it is.
    pub(super) pinned: Option<&'static str>,
    /// The connection the session is pinned to.
    pub(super) pinned_node: Option<usize>,
    pub(super) vars: SessionVars,
    /// SET actions made inside the open transaction, applied at COMMIT.
    pub(super) txn_actions: Vec<super::vars::Action>,
    pub(super) prepared: HashMap<String, PreparedDef>,
    /// Pools of this session's (user, database), one per node.
    pub(super) pools: Vec<Arc<NodePool>>,
    /// Whether server connections go back to the pool after each transaction.
    pub(super) transaction_pooling: bool,
    pub(super) picker: ReplicaPicker,
    /// ParameterStatus values the client has been told.
    pub(super) client_params: Vec<(String, String)>,
    pub(super) cancel_slot: CancelSlot,
    /// (node, server key) the cancel slot points at.
    pub(super) cancel_for: Option<(usize, (i32, i32))>,
    pub(super) max_message: usize,
    /// Last time the client sent something or a response completed, for the idle timeouts.
    pub(super) last_activity: tokio::time::Instant,
    /// When the work now in flight was sent, for the query timeout.
    pub(super) active_since: Option<tokio::time::Instant>,
    /// The query timeout already sent a cancel for the work in flight.
    pub(super) timeout_cancelled: bool,
    /// Read-your-writes (lsn mode): the WAL position of the session's last committed write;
    /// its reads go only to replicas that replayed it.
    pub(super) ryw_lsn: Option<u64>,
    /// Read-your-writes (window mode): reads go to the primary until then.
    pub(super) ryw_until: Option<tokio::time::Instant>,
    /// Queues of the last released link, reused by the next one.
    pub(super) spare_queues: Option<super::link::LinkQueues>,
    /// Kind of the statement last bound (what an Execute runs), for the metrics.
    bound_kind: StatementKind,
    /// Digest key of the statement last bound.
    bound_digest: u64,
    /// Statements of a batch sent up to a Flush, counted with the rest of it at its Sync.
    pub(super) open_tally: Tally,
}

/// How the event loop ended.
pub(super) enum Exit {
    /// Client sent Terminate or closed its socket.
    Client,
}

enum Event {
    Timer,
    ClientRead(std::io::Result<usize>),
    ServerRead(usize, std::io::Result<usize>),
    ClientWrote(std::io::Result<()>),
    ServerWrote(usize, std::io::Result<()>),
    /// The node of the work in flight was declared down.
    NodeDown(usize),
}

/// Parts of a session known once the client has logged in.
pub struct SessionParts {
    /// Shared cluster state.
    pub ctx: Arc<ClusterContext>,
    /// Session id.
    pub id: u64,
    /// Client socket halves.
    pub client: (NetRead, NetWrite),
    /// Bytes the client sent past its startup messages.
    pub leftover: BytesMut,
    /// Session defaults from the startup packet.
    pub vars: SessionVars,
    /// Cancel slot of the proxy key given to the client.
    pub cancel_slot: CancelSlot,
    /// Pools of (user, database), one per node.
    pub pools: Vec<Arc<NodePool>>,
    /// Transaction pooling (else session pooling).
    pub transaction_pooling: bool,
}

impl Session {
    /// Creates a session with no server links yet.
    pub fn new(p: SessionParts) -> Self {
        let nodes = p.ctx.config.nodes.len();
        let max_message = p.ctx.general.max_message_bytes;
        Session {
            ctx: p.ctx,
            id: p.id,
            client_r: p.client.0,
            client_w: p.client.1,
            cin: p.leftover,
            cout: OutQueue::default(),
            links: (0..nodes).map(|_| None).collect(),
            active: None,
            open_batch: None,
            open_actions: Vec::new(),
            building: Batch::default(),
            held: None,
            discard_until_sync: false,
            tx_status: b'I',
            txn_node: None,
            pinned: None,
            pinned_node: None,
            vars: p.vars,
            txn_actions: Vec::new(),
            prepared: HashMap::new(),
            pools: p.pools,
            transaction_pooling: p.transaction_pooling,
            picker: ReplicaPicker::seeded(p.id),
            client_params: Vec::new(),
            cancel_slot: p.cancel_slot,
            cancel_for: None,
            last_activity: tokio::time::Instant::now(),
            active_since: None,
            timeout_cancelled: false,
            ryw_lsn: None,
            ryw_until: None,
            spare_queues: None,
            bound_kind: StatementKind::Other,
            bound_digest: 0,
            open_tally: Tally::default(),
            max_message,
        }
    }

    /// Queues a message for the client.
    pub(super) fn queue_client(&mut self, b: bytes::Bytes) {
        self.cout.push(b);
    }

    /// Writes everything queued for the client.
    pub(super) async fn flush_client(&mut self) -> std::io::Result<()> {
        while !self.cout.is_empty() {
            self.cout.write_to(&mut self.client_w).await?;
        }
        Ok(())
    }

    fn link_backlog(&self) -> usize {
        self.active
            .and_then(|a| self.links[a].as_ref())
            .map_or(0, |l| l.out.bytes)
    }

    /// Relays until the client leaves. Errors end only this session.
    pub async fn run(&mut self) -> Result<Exit, FrontendError> {
        loop {
            if self.active.is_none() {
                if let Some(b) = self.held.take() {
                    self.dispatch(b).await?;
                    continue;
                }
            }
            if self.held.is_none() && !self.cin.is_empty() {
                if let Some(exit) = self.process_client().await? {
                    self.flush_client().await?;
                    return Ok(exit);
                }
                if self.active.is_none() && self.held.is_some() {
                    continue;
                }
            }
            let read_client = self.held.is_none() && self.link_backlog() < HIGH_WATER;
            let read_server = self.cout.bytes < HIGH_WATER;
            let timer = self.next_timer();
            let deadline = timer.map(|(at, _)| at);
            let event = {
                let Session {
                    client_r,
                    client_w,
                    cin,
                    cout,
                    links,
                    active,
                    pinned_node,
                    ..
                } = self;
                // With nothing in flight, a pinned connection is still read: it may carry
                // notifications for a client that LISTENs.
                let polled = active.or(*pinned_node);
                let link = polled.and_then(|a| links[a].as_mut().map(|l| (a, l)));
                let (node, server) = match link {
                    Some((a, l)) => (a, Some(l)),
                    None => (usize::MAX, None),
                };
                let incarnation = server.as_ref().map(|l| l.conn.incarnation);
                let (mut sr, mut sw, mut down) = match server {
                    Some(l) => (
                        Some((&mut l.conn.reader, &mut l.conn.inbuf)),
                        Some((&mut l.conn.writer, &mut l.out)),
                        Some(&mut l.node_down),
                    ),
                    None => (None, None, None),
                };
                let has_server_out = sw.as_ref().is_some_and(|(_, o)| !o.is_empty());
                // Biased: a fixed order costs no random draw per event, and it is the right one
                // anyway: timeouts first, then writes (they free buffers), then reads. No branch
                // starves another: each one's work is bounded by the high-water marks.
                tokio::select! {
                    biased;
                    _ = async { match deadline { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } }, if deadline.is_some() => Event::Timer,
                    r = async { match sw.as_mut() { Some((w, o)) => o.write_to(w).await, None => std::future::pending().await } }, if has_server_out => Event::ServerWrote(node, r),
                    r = cout.write_to(client_w), if !cout.is_empty() => Event::ClientWrote(r),
                    r = async { match sr.as_mut() { Some((r, b)) => r.read_buf(*b).await, None => std::future::pending().await } }, if read_server && node != usize::MAX => Event::ServerRead(node, r),
                    r = client_r.read_buf(cin), if read_client => Event::ClientRead(r),
                    _ = async { match down.as_mut() { Some(d) => { let _ = d.wait_for(|i| incarnation.is_some_and(|c| *i > c)).await; } None => std::future::pending().await } }, if active.is_some() => Event::NodeDown(node),
                }
            };
            match event {
                Event::ClientRead(Ok(0)) | Event::ClientRead(Err(_)) => return Ok(Exit::Client),
                Event::ClientRead(Ok(_)) => self.touch_activity(),
                Event::Timer => {
                    if let Some((_, kind)) = timer {
                        if let Some(exit) = self.on_timer(kind).await {
                            return exit;
                        }
                    }
                }
                Event::ClientWrote(r) => r?,
                Event::ServerRead(n, Ok(0)) => {
                    self.server_lost(n, "server closed the connection").await
                }
                Event::ServerRead(n, Err(e)) => self.server_lost(n, &e.to_string()).await,
                Event::ServerRead(n, Ok(_)) => {
                    if let Err(why) = self.process_server(n) {
                        self.server_lost(n, &why).await;
                    }
                }
                Event::ServerWrote(n, Err(e)) => self.server_lost(n, &e.to_string()).await,
                Event::ServerWrote(_, Ok(())) => {}
                Event::NodeDown(n) => {
                    self.server_lost(
                        n,
                        "the node was declared down while this work was in flight",
                    )
                    .await
                }
            }
        }
    }

    /// Handles every complete client message in the buffer, until one has to wait.
    /// Returns Some when the client asked to leave.
    async fn process_client(&mut self) -> Result<Option<Exit>, FrontendError> {
        while self.held.is_none() {
            let Some(frame) = pg::decode_frame(&mut self.cin, self.max_message)? else {
                return Ok(None);
            };
            match frame.tag {
                b'X' => return Ok(Some(Exit::Client)),
                b'Q' => {
                    if self.discard_until_sync {
                        continue;
                    }
                    let mut b = Batch::default();
                    let body = frame.body();
                    let sql = pg::query_text(&body)?;
                    let class = classify(sql, &self.ctx.classify);
                    if let Some(reply) = self.deallocate_locally(sql, &class) {
                        b.local_reply = Some(reply);
                        b.has_sync = true;
                        self.submit(b).await?;
                        continue;
                    }
                    b.absorb(&class, sql);
                    b.tally = Tally::of(&class);
                    b.tally.digest = self.ctx.metrics.digests.key(sql, false);
                    if class.statements.is_empty() {
                        b.intent = None;
                    }
                    b.push(frame);
                    self.submit(b).await?;
                }
                b'P' | b'B' | b'D' | b'E' | b'C' | b'H' | b'S' => {
                    if self.discard_until_sync {
                        if frame.tag == b'S' {
                            self.discard_until_sync = false;
                            let status = self.tx_status;
                            self.queue_client(pg::ready_for_query(status));
                        }
                        continue;
                    }
                    self.absorb_extended(&frame)?;
                    if frame.tag == b'E' {
                        let kind = self.bound_kind;
                        self.building.tally.add(kind);
                        if self.building.tally.digest == 0 {
                            self.building.tally.digest = self.bound_digest;
                        }
                    }
                    let tag = frame.tag;
                    self.building.push(frame);
                    if tag == b'S' || tag == b'H' || self.building.bytes > BATCH_CAP {
                        let b = std::mem::take(&mut self.building);
                        self.submit(b).await?;
                    }
                }
                b'F' => {
                    let mut b = Batch::default();
                    b.absorb_intent(Intent::Write, None, ReasonLabel::FunctionCall);
                    b.tally.add(StatementKind::Write);
                    b.push(frame);
                    self.submit(b).await?;
                }
                b'd' | b'c' | b'f' => {
                    // COPY data follows the CopyInResponse of the active server.
                    if let Some(l) = self.active.and_then(|a| self.links[a].as_mut()) {
                        l.out.push(frame.raw);
                    }
                }
                other => {
                    return Err(FrontendError::Protocol(format!(
                        "unexpected message type '{}'",
                        char::from(other).escape_default()
                    )))
                }
            }
        }
        Ok(None)
    }

    /// Records what an extended-protocol message means for routing and prepared statements.
    fn absorb_extended(&mut self, frame: &Frame) -> Result<(), FrontendError> {
        let body = frame.body();
        match frame.tag {
            b'P' => {
                let p = pg::parse_parse(&body)?;
                let class = classify(p.query, &self.ctx.classify);
                self.building.absorb(&class, p.query);
                let global = global_name(p.query, &p.param_types);
                let parse = pg::parse(&global, p.query, &p.param_types);
                self.prepared.insert(
                    p.name.to_string(),
                    PreparedDef {
                        global: global.into(),
                        parse,
                        intent: class.intent,
                        hint: class.hint,
                        reason: class.reason.into(),
                        kind: class.statements.first().map_or(StatementKind::Other, |s| {
                            StatementKind::of(s.intent, s.reason)
                        }),
                        ends_txn: class.effects().any(|e| *e == crate::route::Effect::Commit),
                        digest: self.ctx.metrics.digests.key(p.query, false),
                    },
                );
            }
            b'B' => {
                let b = pg::parse_bind(&body)?;
                if let Some(def) = self.prepared.get(b.statement) {
                    self.building
                        .absorb_intent(def.intent, def.hint, def.reason);
                    self.building.ends_txn |= def.ends_txn;
                    self.bound_kind = def.kind;
                    self.bound_digest = def.digest;
                } else {
                    // Unknown statement: the server will report it; keep it on the primary.
                    self.building
                        .absorb_intent(Intent::Write, None, ReasonLabel::UnknownStatement);
                    self.bound_kind = StatementKind::Other;
                    self.bound_digest = 0;
                }
            }
            b'D' => {
                let d = pg::parse_describe(&body)?;
                if d.kind == b'S' {
                    if let Some(def) = self.prepared.get(d.name) {
                        self.building
                            .absorb_intent(def.intent, def.hint, def.reason);
                    }
                }
            }
            b'C' => {
                let c = pg::parse_close(&body)?;
                if c.kind == b'S' {
                    // Kept with the batch: a Bind before this Close may still need to re-prepare it.
                    if let Some(def) = self.prepared.remove(c.name) {
                        self.building.closed.push((c.name.to_string(), def));
                    }
                }
            }
            b'E' => {
                pg::parse_execute(&body)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Which timeout fired.
#[derive(Debug, Clone, Copy)]
pub(super) enum TimerKind {
    /// query_timeout: the work in flight ran too long.
    Query,
    /// idle_transaction_timeout.
    IdleInTransaction,
    /// client_idle_timeout.
    ClientIdle,
}

impl Session {
    /// The earliest configured timeout that applies to the session's current state.
    fn next_timer(&self) -> Option<(tokio::time::Instant, TimerKind)> {
        let cfg = &self.ctx.config;
        if self.active.is_some() {
            let (since, t) = (self.active_since?, cfg.query_timeout?);
            return (!self.timeout_cancelled).then_some((since + t, TimerKind::Query));
        }
        if self.held.is_some() {
            return None;
        }
        if self.tx_status != b'I' {
            let t = cfg.idle_transaction_timeout?;
            return Some((self.last_activity + t, TimerKind::IdleInTransaction));
        }
        let t = cfg.client_idle_timeout?;
        Some((self.last_activity + t, TimerKind::ClientIdle))
    }

    /// Notes client activity for the idle timeouts; the clock is read only when one is set.
    pub(super) fn touch_activity(&mut self) {
        let cfg = &self.ctx.config;
        if cfg.idle_transaction_timeout.is_some() || cfg.client_idle_timeout.is_some() {
            self.last_activity = tokio::time::Instant::now();
        }
    }

    /// Acts on a fired timeout; Some ends the session.
    async fn on_timer(&mut self, kind: TimerKind) -> Option<Result<Exit, FrontendError>> {
        match kind {
            TimerKind::Query => {
                self.timeout_cancelled = true;
                self.ctx.metrics.error(crate::observe::ErrorKind::Timeout);
                let target = self
                    .cancel_slot
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                if let Some(target) = target {
                    tracing::info!(session = self.id, "query timeout: cancelling on the server");
                    let ctx = self.ctx.clone();
                    tokio::spawn(async move {
                        super::cancel::send_cancel(target, ctx.general.connect_timeout).await
                    });
                }
                None
            }
            TimerKind::IdleInTransaction => Some(Err(FrontendError::Refused {
                code: "25P03",
                message: "terminating connection due to idle-in-transaction timeout".into(),
            })),
            TimerKind::ClientIdle => Some(Err(FrontendError::Refused {
                code: "57P05",
                message: "terminating connection due to idle-session timeout".into(),
            })),
        }
    }
}

impl Session {
    /// `DEALLOCATE name|ALL` of statements prepared through the protocol: their server copies
    /// are shared under global names and stay, so the proxy forgets the client's name and
    /// answers itself. Sessions that used SQL-level PREPARE (pinned) go to their server.
    fn deallocate_locally(
        &mut self,
        sql: &str,
        class: &crate::route::Classification,
    ) -> Option<Vec<bytes::Bytes>> {
        // Inside a Flush-ed batch the reply could not wait for the batch's Sync: leave it to the server.
        if self.pinned.is_some() || self.open_batch.is_some() || class.statements.len() != 1 {
            return None;
        }
        let text = sql.get(class.statements[0].span.clone())?;
        let mut words = text.split_whitespace();
        if !words.next()?.eq_ignore_ascii_case("DEALLOCATE") {
            return None;
        }
        let mut name = words.next()?;
        if name.eq_ignore_ascii_case("PREPARE") {
            name = words.next()?;
        }
        if words.next().is_some() {
            return None;
        }
        if name.eq_ignore_ascii_case("ALL") {
            self.prepared.clear();
            return Some(vec![pg::command_complete("DEALLOCATE ALL")]);
        }
        let name = name.trim_matches('"');
        if self.prepared.remove(name).is_some() {
            Some(vec![pg::command_complete("DEALLOCATE")])
        } else {
            let msg = format!("prepared statement \"{name}\" does not exist");
            Some(vec![pg::error_response("ERROR", "26000", &msg)])
        }
    }
}
