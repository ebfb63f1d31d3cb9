//! A batch: the client messages routed together (a simple Query, or extended-protocol messages
//! up to Sync or Flush), with what routing needs to know about them.

use super::vars::Action;
use crate::observe::{ReasonLabel, StatementKind, Tally};
use crate::route::{Classification, Effect, Intent, RouteHint};
use bytes::Bytes;
use switchyard_postgres::Frame;

/// Messages that must reach one server together, and their routing facts.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The client's messages, raw.
    pub frames: Vec<Frame>,
    /// Total size of `frames`.
    pub bytes: usize,
    /// Read if every statement reads, Write if any writes; None when no SQL is involved.
    pub intent: Option<Intent>,
    /// First routing hint seen.
    pub hint: Option<RouteHint>,
    /// Why the batch goes where it goes (the deciding statement's reason).
    pub reason: ReasonLabel,
    /// Statements the batch executes, by kind (for the metrics).
    pub tally: Tally,
    /// Session changes made by the batch, applied when it succeeds.
    pub actions: Vec<Action>,
    /// Set when a statement creates state that cannot be replayed elsewhere.
    pub pin: Option<&'static str>,
    /// True when the batch ends with a message answered by ReadyForQuery (Sync, Query, FunctionCall).
    pub has_sync: bool,
    /// Statements the batch closes, kept until it is sent.
    pub closed: Vec<(String, PreparedDef)>,
    /// Answered by the proxy itself (no server involved), in order with the other replies.
    pub local_reply: Option<Vec<Bytes>>,
    /// A statement opens a transaction block (BEGIN, START TRANSACTION).
    pub opens_txn: bool,
    /// A statement ends a transaction block with COMMIT or END.
    pub ends_txn: bool,
}

impl Batch {
    /// Adds a message.
    pub fn push(&mut self, frame: Frame) {
        self.bytes += frame.raw.len();
        if matches!(frame.tag, b'S' | b'Q' | b'F') {
            self.has_sync = true;
        }
        self.frames.push(frame);
    }

    /// Folds a statement's routing facts into the batch.
    pub fn absorb_intent(&mut self, intent: Intent, hint: Option<RouteHint>, reason: ReasonLabel) {
        if self.hint.is_none() {
            self.hint = hint;
        }
        match (self.intent, intent) {
            (Some(Intent::Write), _) => {}
            (_, Intent::Write) => {
                self.intent = Some(Intent::Write);
                self.reason = reason;
            }
            (None, Intent::Read) => {
                self.intent = Some(Intent::Read);
                self.reason = reason;
            }
            (Some(Intent::Read), Intent::Read) => {}
        }
    }

    /// Folds a whole classification (routing and session effects) into the batch.
    pub fn absorb(&mut self, class: &Classification, sql: &str) {
        self.absorb_intent(class.intent, class.hint, class.reason.into());
        for st in &class.statements {
            let text = || sql.get(st.span.clone()).unwrap_or_default().to_string();
            match &st.effect {
                Effect::Set { name } => self.actions.push(Action::Set {
                    name: name.clone(),
                    sql: text(),
                }),
                Effect::Reset { name } => self.actions.push(Action::Reset(name.clone())),
                Effect::ResetAll => self.actions.push(Action::ResetAll),
                Effect::Discard => self.actions.push(Action::Discard),
                Effect::Begin { .. } => self.opens_txn = true,
                Effect::Commit => self.ends_txn = true,
                Effect::Pin("set_config")
                    if sql
                        .get(st.span.clone())
                        .and_then(simple_set_config)
                        .is_some() =>
                {
                    // A plain `SELECT set_config('name', 'value', false)` is a SET in disguise:
                    // record it for replay instead of pinning the session.
                    if let Some((name, value, false)) =
                        sql.get(st.span.clone()).and_then(simple_set_config)
                    {
                        let sql = format!("SET {name} TO '{}'", value.replace('\'', "''"));
                        self.actions.push(Action::Set { name, sql });
                    }
                }
                Effect::Pin(why) if self.pin.is_none() => self.pin = Some(why),
                _ if sql.get(st.span.clone()).is_some_and(is_unlisten_all) => {
                    self.actions.push(Action::Unlisten)
                }
                _ => {}
            }
        }
    }
}

/// A statement the client prepared (extended protocol). On servers it lives under a global
/// name derived from its text and parameter types, so every client and every transaction that
/// prepares the same statement shares one server-side copy per server connection.
#[derive(Debug, Clone)]
pub struct PreparedDef {
    /// The global name.
    pub global: std::sync::Arc<str>,
    /// A Parse message creating it under the global name.
    pub parse: Bytes,
    /// Routing intent of the statement.
    pub intent: Intent,
    /// Routing hint of the statement.
    pub hint: Option<RouteHint>,
    /// Reason behind the intent.
    pub reason: ReasonLabel,
    /// What the statement does, for the metrics.
    pub kind: StatementKind,
    /// Digest key of its text (SHOW QUERIES).
    pub digest: u64,
    /// The statement is COMMIT or END.
    pub ends_txn: bool,
}

/// The server-side name of a statement: a 128-bit digest of its text and parameter types,
/// so equal statements share a name and different ones never collide in practice.
pub fn global_name(sql: &str, param_types: &[u32]) -> String {
    use std::hash::{Hash, Hasher};
    let digest = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        sql.hash(&mut h);
        param_types.hash(&mut h);
        h.finish()
    };
    format!("sy_{:016x}{:016x}", digest(1), digest(2))
}

/// `UNLISTEN *`, in any case and spacing; checked cheaply since it runs for every statement.
fn is_unlisten_all(text: &str) -> bool {
    let Some(head) = text.get(..8) else {
        return false;
    };
    head.eq_ignore_ascii_case("UNLISTEN") && text[8..].trim() == "*"
}

/// Parses `SELECT set_config('name', 'value', true|false)` with plain string literals and a
/// plain parameter name; anything else (expressions, more columns, FROM) is None.
fn simple_set_config(text: &str) -> Option<(String, String, bool)> {
    let rest = strip_prefix_ci(text.trim(), "select")?.trim_start();
    let rest = strip_prefix_ci(rest, "set_config")?.trim_start();
    let rest = rest.strip_prefix('(')?;
    let (name, rest) = string_literal(rest.trim_start())?;
    let rest = rest.trim_start().strip_prefix(',')?;
    let (value, rest) = string_literal(rest.trim_start())?;
    let rest = rest.trim_start().strip_prefix(',')?.trim_start();
    let (local, rest) = if let Some(r) = strip_prefix_ci(rest, "false") {
        (false, r)
    } else {
        (true, strip_prefix_ci(rest, "true")?)
    };
    if rest
        .trim_start()
        .strip_prefix(')')?
        .trim()
        .trim_end_matches(';')
        .trim()
        .is_empty()
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        Some((name.to_ascii_lowercase(), value, local))
    } else {
        None
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// A '...' literal with '' escapes at the start of `s`: (content, rest).
fn string_literal(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('\'')?.char_indices().peekable();
    let body = &s[1..];
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                chars.next();
                out.push('\'');
            } else {
                return Some((out, &body[i + 1..]));
            }
        } else {
            out.push(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::simple_set_config;

    #[test]
    fn set_config_calls_that_are_plain_sets() {
        assert_eq!(
            simple_set_config("SELECT set_config('search_path', 'a, b', false)"),
            Some(("search_path".into(), "a, b".into(), false))
        );
        assert_eq!(
            simple_set_config("select  SET_CONFIG( 'app.x' , 'it''s' , TRUE ) ;"),
            Some(("app.x".into(), "it's".into(), true))
        );
        for not in [
            "SELECT set_config('a', current_user, false)",
            "SELECT set_config('a', 'b', false), 1",
            "SELECT set_config('a', 'b', false) FROM t",
            "SELECT set_config('a b', 'c', false)",
            "SELECT set_config('a', 'b')",
        ] {
            assert_eq!(simple_set_config(not), None, "{not}");
        }
    }
}
