//! Read-your-writes for MySQL/MariaDB sessions. Lsn (GTID) mode: after a write commits, the
//! session remembers the transaction's GTID (`@@last_gtid`, read on the same connection), and
//! a later read on a replica first runs `MASTER_GTID_WAIT(gtid, read_your_writes_wait)` there:
//! when the replica has not applied it in time the read goes to the primary. Window mode:
//! reads go to the primary for `read_your_writes_window` after a write.

use super::session::{Session, Target};
use crate::cluster::Role;
use crate::config::ReadYourWrites;
use crate::route::{Classification, Effect, Intent};

impl Session {
    /// Whether a statement with `class` that just ran on `node` committed a write the
    /// session's reads must see.
    pub(super) fn committed_write(&self, node: usize, class: Option<&Classification>) -> bool {
        if self.ctx.config.read_your_writes == ReadYourWrites::Off || self.txn_node.is_some() {
            return false;
        }
        let Some(c) = class else {
            return false;
        };
        let wrote = c.intent == Intent::Write || c.effects().any(|e| *e == Effect::Commit);
        wrote
            && self
                .ctx
                .state
                .load()
                .node(node)
                .is_some_and(|n| n.role == Some(Role::Primary))
    }

    /// Records a committed write: its GTID (lsn mode) or the window's end.
    pub(super) async fn note_write(&mut self, node: usize) {
        match self.ctx.config.read_your_writes {
            ReadYourWrites::Off => {}
            ReadYourWrites::Window => {
                self.ryw_until =
                    Some(tokio::time::Instant::now() + self.ctx.config.read_your_writes_window);
            }
            ReadYourWrites::Lsn => {
                let (timeout, max) = (
                    self.ctx.general.connect_timeout,
                    self.ctx.general.max_message_bytes,
                );
                let Some(link) = self.links[node].as_mut() else {
                    return;
                };
                match link
                    .conn
                    .query_row("SELECT @@last_gtid", timeout, max)
                    .await
                {
                    Ok(Some(row)) => {
                        if let Some(gtid) = row.first().and_then(|(_, v)| v.clone()) {
                            if !gtid.is_empty() {
                                self.ryw_gtid = Some(gtid);
                                self.ryw_confirmed.iter_mut().for_each(|c| *c = None);
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // Without the GTID, reads go to the primary until the next write.
                        tracing::warn!(session = self.id, "reading @@last_gtid failed: {e}");
                        self.links[node] = None;
                        self.ryw_gtid = Some(String::new());
                    }
                }
            }
        }
    }

    /// Where a read goes under read-your-writes before any connection is taken: the primary
    /// during a window.
    pub(super) fn ryw_target(&mut self, target: Target) -> Target {
        if !matches!(target, Target::Replica) {
            return target;
        }
        if let Some(until) = self.ryw_until {
            if tokio::time::Instant::now() < until {
                return Target::Primary;
            }
            self.ryw_until = None;
        }
        if self.ryw_gtid.as_deref() == Some("") {
            return Target::Primary;
        }
        target
    }

    /// Lsn mode, on the replica chosen for a read: true when it has applied the session's last
    /// write (waiting up to `read_your_writes_wait`), false when the read must go elsewhere.
    pub(super) async fn replica_caught_up(&mut self, node: usize) -> bool {
        let Some(gtid) = self.ryw_gtid.clone() else {
            return true;
        };
        if let Some(known) = self.ryw_confirmed.get(node).copied().flatten() {
            return known;
        }
        let wait = self.ctx.config.read_your_writes_wait.as_secs_f64();
        let (timeout, max) = (
            self.ctx.general.connect_timeout + self.ctx.config.read_your_writes_wait,
            self.ctx.general.max_message_bytes,
        );
        let Some(link) = self.links[node].as_mut() else {
            return false;
        };
        let sql = format!(
            "SELECT MASTER_GTID_WAIT('{}', {wait:.3})",
            gtid.replace(['\'', '\\'], "")
        );
        let reached = match link.conn.query_row(&sql, timeout, max).await {
            Ok(Some(row)) => row.first().and_then(|(_, v)| v.as_deref()) == Some("0"),
            _ => false,
        };
        // Remembered either way until the next write: a replica that did not apply it in
        // time is not asked (and waited for) again for every read.
        if let Some(c) = self.ryw_confirmed.get_mut(node) {
            *c = Some(reached);
        }
        reached
    }

    /// After a replica failed the check: another replica not yet known to lag, else the
    /// primary.
    pub(super) fn ryw_next_target(&self) -> Target {
        let snap = self.ctx.state.load();
        let untried = snap.nodes.iter().any(|n| {
            n.serves_reads() && self.ryw_confirmed.get(n.id).copied().flatten() != Some(false)
        });
        if untried {
            Target::Replica
        } else {
            Target::Primary
        }
    }
}
