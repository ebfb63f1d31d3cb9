//! MySQL SET: session variables to replay, user variables that pin, global settings that
//! only the primary should get, autocommit, and SET STATEMENT ... FOR.

use super::super::lexer::TokenKind;
use super::super::{Effect, Intent, Reason};
use super::scan::scan;
use super::shape::{Kind, Shape, Stmt};

/// Where one assignment of a SET list lands.
enum Target {
    /// `@name`: user variable.
    User,
    /// `GLOBAL x`, `PERSIST x`, `@@global.x`: server state, not replayed.
    Global,
    /// Session variable, lowercased.
    Session(String),
}

impl Stmt<'_, '_> {
    /// Everything after the SET keyword, starting at `i`.
    pub(super) fn set(&self, i: usize, hi: usize, depth: usize) -> Shape {
        let scope = |k: usize| {
            if self.any_word(k, &["global", "persist", "persist_only"]) {
                Some(true)
            } else if self.any_word(k, &["session", "local"]) {
                Some(false)
            } else {
                None
            }
        };
        if self.word(i, "statement") {
            return self.set_statement(i + 1, hi, depth);
        }
        if self.word(i, "transaction") {
            return Shape::set(Effect::SetLocal);
        }
        if self.word(i + 1, "transaction") {
            return match scope(i) {
                Some(true) => Shape::write(Reason::Ddl, Kind::Control),
                Some(false) => Shape::set(set_named(&self.characteristics(i + 2, hi))),
                None => Shape::unknown(),
            };
        }
        if self.word(i, "names") {
            return Shape::set(set_named("names"));
        }
        if (self.word(i, "character") && self.word(i + 1, "set")) || self.word(i, "charset") {
            return Shape::set(set_named("character set"));
        }
        if self.word(i, "password") || (self.word(i, "default") && self.word(i + 1, "role")) {
            return Shape::write(Reason::Ddl, Kind::Control);
        }
        if self.word(i, "role") {
            return Shape::set(set_named("role"));
        }
        self.assignments(i, hi)
    }

    /// `target = value [, target = value ...]`.
    fn assignments(&self, lo: usize, hi: usize) -> Shape {
        let mut names: Vec<String> = Vec::new();
        let (mut user, mut global) = (false, false);
        let mut autocommit = None;
        let mut found_reason = None;
        let mut found_pin = None;
        let mut i = lo;
        while i < hi {
            let Some((target, op)) = self.target(i, hi) else {
                return Shape::unknown();
            };
            let value = op + 1;
            let mut end = value;
            while end < hi && !self.punct(end, b',') {
                end = if self.punct(end, b'(') {
                    self.close_of(end, hi) + 1
                } else {
                    end + 1
                };
            }
            let found = scan(self.toks.get(value..end).unwrap_or(&[]), self.opts, true);
            found_reason = found_reason.or(found.reason);
            found_pin = found_pin.or(found.pin);
            match target {
                Target::User => user = true,
                Target::Global => global = true,
                Target::Session(name) => {
                    if name == "autocommit" {
                        autocommit = Some(self.switch(value, end));
                    }
                    names.push(name);
                }
            }
            i = end + 1;
        }
        let mut shape = if user {
            Shape::pin("user variables", Reason::Pinned, Kind::Control)
        } else if global && !names.is_empty() {
            // Replaying the text would repeat the global part on every node.
            Shape::pin("set global and session", Reason::Pinned, Kind::Control)
        } else if global {
            Shape::write(Reason::Ddl, Kind::Control)
        } else if let Some(on) = autocommit {
            match (on, names.len()) {
                (Some(on), 1) => {
                    let mut shape = Shape::new(
                        Intent::Read,
                        Effect::Autocommit { on },
                        Reason::Transaction,
                        Kind::Control,
                    );
                    // Turning it off starts what acts as a read-write transaction.
                    if !on {
                        shape.intent = Intent::Write;
                    }
                    shape
                }
                _ => Shape::pin("autocommit", Reason::Pinned, Kind::Control),
            }
        } else if names.is_empty() {
            return Shape::unknown();
        } else {
            Shape::set(set_named(&names.join(",")))
        };
        if let (Effect::Set { .. } | Effect::None, Some(why)) = (&shape.effect, found_pin) {
            shape.effect = Effect::Pin(why);
            shape.intent = Intent::Write;
            shape.reason = Reason::Pinned;
        }
        if let Some(reason) = found_reason {
            if shape.intent == Intent::Read {
                shape.intent = Intent::Write;
                shape.reason = reason;
            }
        }
        shape
    }

    /// Parses the target at `i`; returns it and the index of its `=` or `:=`.
    fn target(&self, i: usize, hi: usize) -> Option<(Target, usize)> {
        let tok = self.toks.get(i).filter(|_| i < hi)?;
        let (target, after) = if tok.kind == TokenKind::Variable {
            match tok.text.strip_prefix("@@") {
                None => (Target::User, i + 1),
                Some(scope) if self.punct(i + 1, b'.') => {
                    let (name, after) = self.dotted_name(i + 2, hi)?;
                    let global = ["global", "persist", "persist_only"]
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(scope));
                    let session = ["session", "local"]
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(scope));
                    if global {
                        (Target::Global, after)
                    } else if session {
                        (Target::Session(name), after)
                    } else {
                        // `@@keycache.key_buffer_size`: a structured variable.
                        (
                            Target::Session(format!("{}.{name}", scope.to_ascii_lowercase())),
                            after,
                        )
                    }
                }
                Some(name) => (Target::Session(name.to_ascii_lowercase()), i + 1),
            }
        } else if self.any_word(i, &["global", "persist", "persist_only"]) {
            (Target::Global, self.dotted_name(i + 1, hi)?.1)
        } else if self.any_word(i, &["session", "local"]) {
            let (name, after) = self.dotted_name(i + 1, hi)?;
            (Target::Session(name), after)
        } else {
            let (name, after) = self.dotted_name(i, hi)?;
            (Target::Session(name), after)
        };
        let assigns = after < hi && (self.punct_op(after, "=") || self.punct_op(after, ":="));
        assigns.then_some((target, after))
    }

    /// Reads `ident(.ident)*` at `i`; returns the lowercased name and the index after it.
    fn dotted_name(&self, mut i: usize, hi: usize) -> Option<(String, usize)> {
        let mut name = self.toks.get(i).filter(|_| i < hi)?.ident_name()?;
        i += 1;
        while i + 1 < hi && self.punct(i, b'.') {
            let part = self.toks.get(i + 1)?.ident_name()?;
            name.push('.');
            name.push_str(&part);
            i += 2;
        }
        Some((name, i))
    }

    /// The value of an on/off variable in `lo..hi`, if it is a literal the server accepts.
    fn switch(&self, lo: usize, hi: usize) -> Option<bool> {
        if hi != lo + 1 {
            return None;
        }
        let tok = self.toks.get(lo)?;
        let text = match tok.kind {
            TokenKind::String => tok.text.trim_matches(|c| c == '\'' || c == '"'),
            TokenKind::Word | TokenKind::Number => tok.text,
            _ => return None,
        };
        let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(text));
        if is(&["1", "on", "true", "default"]) {
            Some(true)
        } else if is(&["0", "off", "false"]) {
            Some(false)
        } else {
            None
        }
    }

    /// `SET SESSION TRANSACTION` modes as the session variables they set, joined by `,`.
    fn characteristics(&self, lo: usize, hi: usize) -> String {
        let mut names = Vec::new();
        for i in lo..hi {
            let name = if self.word(i, "isolation") {
                "transaction_isolation"
            } else if self.word(i, "read") && self.any_word(i + 1, &["only", "write"]) {
                "transaction_read_only"
            } else {
                continue;
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names.join(",")
    }

    /// `SET STATEMENT var = value, ... FOR stmt` runs `stmt` with the settings for its duration.
    fn set_statement(&self, lo: usize, hi: usize, depth: usize) -> Shape {
        let mut i = lo;
        while i < hi && !self.word(i, "for") {
            i = if self.punct(i, b'(') {
                self.close_of(i, hi) + 1
            } else {
                i + 1
            };
        }
        if i >= hi {
            return Shape::unknown();
        }
        let inner = self.shape(i + 1, hi, depth + 1);
        // The values run too: a query's scan covers them, other statements need their pins.
        let found = scan(self.toks.get(lo..i).unwrap_or(&[]), self.opts, true);
        match (found.pin, found.reason) {
            (Some(why), _) => Shape::pin(why, Reason::Pinned, inner.kind),
            (None, Some(reason)) if inner.intent == Intent::Read && !inner.is_read_query() => {
                Shape::write(reason, inner.kind)
            }
            _ => inner,
        }
    }
}

fn set_named(name: &str) -> Effect {
    Effect::Set {
        name: name.to_string(),
    }
}
