//! Relaying server responses to the client: filtering the proxy's own traffic, tracking
//! transaction status and session state, and recovering when a server is lost.

use super::link::Pending;
use super::session::Session;
use super::vars::Action;
use crate::backend::set_param;
use switchyard_postgres as pg;

/// FATAL codes that speak for the whole node, not one connection: crash shutdown, and the
/// server refusing work while starting up or shutting down.
const NODE_GOING_DOWN: &[&str] = &["57P02", "57P03"];

/// Parameters whose value legitimately differs between nodes; the client keeps its first view.
const NODE_LOCAL_PARAMS: &[&str] = &["in_hot_standby"];

impl Session {
    /// Forwards complete server messages from node `node` to the client. Runs of messages that
    /// need no filtering are forwarded as one slice of the read buffer, without copying.
    pub(super) fn process_server(&mut self, node: usize) -> Result<(), String> {
        let mut finished: Vec<(Pending, u8)> = Vec::new();
        let mut node_failure = None;
        {
            let Session {
                links,
                cout,
                client_params,
                max_message,
                open_batch,
                active,
                ..
            } = &mut *self;
            let Some(link) = links[node].as_mut() else {
                return Ok(());
            };
            let mut run = 0usize;
            loop {
                let (tag, len) = match pg::peek_header(&link.conn.inbuf[run..], *max_message) {
                    Ok(Some(h)) => h,
                    Ok(None) => break,
                    Err(e) => return Err(format!("bad message from server: {e}")),
                };
                if link.conn.inbuf.len() - run < len {
                    break;
                }
                let internal = link.outstanding.front().is_some_and(|p| p.internal);
                let mut replacement = None;
                let mut forward = !internal;
                let body = &link.conn.inbuf[run + 5..run + len];
                match tag {
                    b'1' | b'3' => {
                        if link.completions.front_injected() {
                            forward = false;
                        }
                        link.completions.take_completion();
                    }
                    b'2' => {
                        link.completions.take_completion();
                    }
                    b'E' => {
                        // The proxy's own replay query has no completions; the client's that follow must stay.
                        if !internal {
                            link.completions.skip_to_sync(&mut link.conn.statements);
                        }
                        if let Some(p) = link.outstanding.front_mut() {
                            p.error = true;
                        }
                        // A server's FATAL ends that server connection, not the client's session:
                        // pass it on as an ERROR so the client keeps using the proxy.
                        if !internal {
                            if let Ok(mut f) = pg::parse_error_fields(body) {
                                if f.severity == "FATAL" || f.severity == "PANIC" {
                                    if NODE_GOING_DOWN.contains(&f.code.as_str()) {
                                        node_failure = Some(format!("{} {}", f.code, f.message));
                                    }
                                    f.severity = "ERROR".into();
                                    replacement = Some(pg::error_response_fields(&f));
                                    forward = false;
                                    if let Some(p) = link.outstanding.front_mut() {
                                        p.forwarded = true;
                                    }
                                }
                            }
                        }
                        if internal {
                            let f = pg::parse_error_fields(body).unwrap_or_default();
                            tracing::warn!(node, code = %f.code, "replaying session state failed: {}", f.message);
                        }
                    }
                    b'S' => {
                        forward = false;
                        if let Ok(p) = pg::parse_parameter_status(body) {
                            set_param(&mut link.conn.params, p.name, p.value);
                            let known = client_params.iter().find(|(n, _)| n == p.name);
                            if !NODE_LOCAL_PARAMS.contains(&p.name)
                                && known.is_none_or(|(_, v)| v != p.value)
                            {
                                set_param(client_params, p.name, p.value);
                                forward = true;
                            }
                        }
                    }
                    b'D' if internal => {
                        if let Some(p) = link.outstanding.front_mut().filter(|p| p.capture_lsn) {
                            p.captured = pg::data_row_first(body)
                                .ok()
                                .flatten()
                                .and_then(|v| std::str::from_utf8(v).ok())
                                .and_then(crate::monitor::parse_lsn);
                        }
                    }
                    // A backend told to quit because another one crashed says so in a
                    // NoticeResponse (WARNING 57P02) before the connection closes.
                    b'N' => {
                        if let Ok(f) = pg::parse_error_fields(body) {
                            if NODE_GOING_DOWN.contains(&f.code.as_str()) {
                                node_failure = Some(format!("{} {}", f.code, f.message));
                            }
                        }
                    }
                    b'C' if !internal && pg::command_tag(body).is_ok_and(|t| t == "ROLLBACK") => {
                        if let Some(p) = link.outstanding.front_mut() {
                            p.rolled_back = true;
                        }
                    }
                    b'Z' => {
                        let status = pg::ready_status(body).map_err(|e| e.to_string())?;
                        if !internal {
                            link.completions.end_sync();
                        }
                        link.status = status;
                        if let Some(p) = link.outstanding.pop_front() {
                            if p.internal {
                                forward = false;
                            }
                            finished.push((p, status));
                        }
                    }
                    _ => {}
                }
                if forward {
                    if let Some(p) = link.outstanding.front_mut() {
                        p.forwarded = true;
                    }
                    run += len;
                } else {
                    if run > 0 {
                        cout.push(link.conn.inbuf.split_to(run).freeze());
                        run = 0;
                    }
                    let _ = link.conn.inbuf.split_to(len);
                    if let Some(m) = replacement {
                        cout.push(m);
                    }
                }
            }
            if run > 0 {
                cout.push(link.conn.inbuf.split_to(run).freeze());
            }
            if link.outstanding.is_empty() && *open_batch != Some(node) {
                *active = None;
            }
        }
        if let Some(why) = node_failure {
            // Passive check: the server says the whole node is going away.
            self.ctx
                .state
                .report_failure(node, &format!("server said {why}"));
        }
        // One clock read for every timed round trip this read completed (only with metrics on).
        let now = finished
            .iter()
            .any(|(p, _)| p.sent.is_some())
            .then(std::time::Instant::now);
        for (p, status) in finished {
            self.finish_pending(node, p, status, now);
        }
        self.maybe_release(node);
        Ok(())
    }

    /// Applies what a completed message means for the session: transaction status and
    /// session-state changes.
    fn finish_pending(
        &mut self,
        node: usize,
        p: Pending,
        status: u8,
        now: Option<std::time::Instant>,
    ) {
        if !p.tally.is_empty() {
            self.ctx.metrics.record(node, p.role, &p.tally, p.sent, now);
        }
        if p.internal {
            if let Some(lsn) = p.captured {
                self.ryw_lsn = Some(self.ryw_lsn.map_or(lsn, |l| l.max(lsn)));
            }
            return;
        }
        if p.wrote
            && !p.error
            && status == b'I'
            && self.ctx.config.read_your_writes == crate::config::ReadYourWrites::Window
        {
            self.ryw_until =
                Some(tokio::time::Instant::now() + self.ctx.config.read_your_writes_window);
        }
        self.touch_activity();
        let was_in_txn = self.tx_status != b'I';
        self.tx_status = status;
        self.txn_node = (status != b'I').then_some(node);
        let mut applied: Vec<Action> = Vec::new();
        if status == b'I' {
            if was_in_txn && !p.rolled_back && !p.error {
                applied.append(&mut self.txn_actions);
            }
            self.txn_actions.clear();
            if !p.error && !p.rolled_back {
                applied.extend(p.actions);
            }
        } else if !p.error {
            self.txn_actions.extend(p.actions);
        }
        if applied.contains(&Action::Unlisten) && self.pinned == Some("listen") {
            tracing::info!(session = self.id, "UNLISTEN *: no longer pinned");
            self.pinned = None;
            if let Some(l) = self.pinned_node.take().and_then(|n| self.links[n].as_mut()) {
                l.dirty = false;
            }
        }
        if !applied.is_empty() {
            for a in &applied {
                self.vars.apply(a);
            }
            // The statements ran on this node, so it already has the new state.
            self.note_applied(node, &applied);
        }
    }

    /// A server connection failed: tell the client about the work it loses (or retry a read
    /// elsewhere when nothing of it was relayed yet) and keep the session going.
    pub(super) async fn server_lost(&mut self, node: usize, why: &str) {
        let Some(link) = self.links[node].take() else {
            return;
        };
        let snap = self.ctx.state.load();
        let name = snap.node(node).map_or("?", |n| n.name.as_str()).to_string();
        tracing::warn!(session = self.id, node = %name, "server connection lost: {why}");
        // One connection ending (pg_terminate_backend, a server-side timeout) says little about
        // the node: the monitor and failed connection attempts decide whether it is down.
        self.ctx.pools.forget_node(node);
        if self.pinned_node == Some(node) {
            // The pinned state (temporary tables, LISTEN, locks) died with the connection.
            self.pinned_node = None;
            self.pinned = None;
        }
        if self.active == Some(node) {
            self.active = None;
        }
        if self.txn_node == Some(node) {
            self.txn_node = None;
            self.tx_status = b'I';
            self.txn_actions.clear();
        }
        let cut_batch = self.open_batch == Some(node);
        if cut_batch {
            self.open_batch = None;
            self.open_actions.clear();
            self.open_tally = crate::observe::Tally::default();
            self.discard_until_sync = true;
        }
        let mut lost: Vec<Pending> = link
            .outstanding
            .into_iter()
            .filter(|p| !p.internal)
            .collect();
        if lost.len() == 1 && !lost[0].forwarded && !cut_batch {
            if let Some(batch) = lost[0].retry.take() {
                tracing::info!(session = self.id, node = %name, "retrying the read on another node");
                self.held = Some(batch);
                return;
            }
        }
        let msg = format!(
            "server connection to node {name} was lost ({why}); the statement did not complete, the session is still usable"
        );
        let lost_kind = crate::observe::ErrorKind::ConnectionLost;
        for p in &lost {
            // A statement the server already answered with an error needs no second one.
            if !p.error {
                self.queue_client(pg::error_response("ERROR", "08006", &msg));
                self.ctx.metrics.error(lost_kind);
            }
            self.queue_client(pg::ready_for_query(b'I'));
        }
        if cut_batch {
            self.queue_client(pg::error_response("ERROR", "08006", &msg));
            self.ctx.metrics.error(lost_kind);
        }
    }
}
