//! Statement classification: split text into top-level statements and decide where each may run.
//!
//! Unknown means primary: a wrong "read" loses consistency, a wrong "write" only costs load,
//! so every rule here errs towards [`Intent::Write`].

use super::lexer::{Dialect, Lexer, Splitter, Token, TokenKind};
pub use super::{Classification, ClassifyOptions, Effect, Intent, Reason, RouteHint, Statement};

/// Nesting of parenthesised queries and CTE bodies examined before answering Write, so
/// hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

/// Words that can start the main statement after a WITH list.
const MAIN_STATEMENT: &[&str] = &[
    "select", "values", "table", "insert", "update", "delete", "merge",
];

/// Classifies PostgreSQL statement text. Pure: same text and options, same answer. Never panics, linear time.
pub fn classify(sql: &str, opts: &ClassifyOptions) -> Classification {
    let mut hint = None;
    let mut started = false;
    let mut statements = Vec::with_capacity(1);
    // Sized for a typical statement at once: growing 4 -> 8 -> 16 -> 32 cost three
    // allocations per statement on the hot path.
    let mut current: Vec<Token<'_>> = Vec::with_capacity(32);
    let mut splitter = Splitter::default();
    for tok in Lexer::new(sql, Dialect::Postgres) {
        if tok.is_comment() {
            if !started {
                hint = RouteHint::merge(hint, RouteHint::from_comment(tok.text));
            }
            continue;
        }
        started = true;
        if splitter.ends_statement(&tok, &current) {
            push_statement(&mut statements, &current, opts);
            current.clear();
            splitter = Splitter::default();
        } else {
            current.push(tok);
        }
    }
    push_statement(&mut statements, &current, opts);

    let first_write = statements.iter().find(|s| s.intent == Intent::Write);
    let intent = if first_write.is_some() {
        Intent::Write
    } else {
        Intent::Read
    };
    let reason = first_write
        .or(statements.first())
        .map_or(Reason::Empty, |s| s.reason);
    Classification {
        intent,
        reason,
        hint,
        statements,
    }
}

fn push_statement(out: &mut Vec<Statement>, toks: &[Token<'_>], opts: &ClassifyOptions) {
    let (Some(first), Some(last)) = (toks.first(), toks.last()) else {
        return;
    };
    let (intent, effect, reason) = classify_statement(toks, opts);
    out.push(Statement {
        intent,
        effect,
        reason,
        span: first.start..last.end(),
    });
}

/// How much of a statement's text runs as expressions, which decides which scans apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A query: row locks, SELECT INTO and side-effect functions turn a read into a write.
    Query,
    /// A write that may evaluate expressions: only pins from functions are added.
    Other,
    /// Evaluates no expressions (SET, SHOW, transaction control, most DDL).
    Control,
    /// EXPLAIN without ANALYZE: plans, runs nothing.
    PlanOnly,
}

/// Structural classification of a statement, before the token scans.
#[derive(Debug, Clone)]
struct Shape {
    intent: Intent,
    effect: Effect,
    reason: Reason,
    kind: Kind,
    explained: bool,
}

impl Shape {
    fn new(intent: Intent, effect: Effect, reason: Reason, kind: Kind) -> Self {
        Shape {
            intent,
            effect,
            reason,
            kind,
            explained: false,
        }
    }
    fn read(reason: Reason, kind: Kind) -> Self {
        Shape::new(Intent::Read, Effect::None, reason, kind)
    }
    fn write(reason: Reason, kind: Kind) -> Self {
        Shape::new(Intent::Write, Effect::None, reason, kind)
    }
    fn unknown() -> Self {
        Shape::write(Reason::Unknown, Kind::Other)
    }
    fn pin(why: &'static str, kind: Kind) -> Self {
        Shape::new(Intent::Write, Effect::Pin(why), Reason::Pinned, kind)
    }
    fn tx(effect: Effect) -> Self {
        Shape::new(Intent::Read, effect, Reason::Transaction, Kind::Control)
    }
    fn set(effect: Effect) -> Self {
        Shape::new(Intent::Read, effect, Reason::Set, Kind::Control)
    }
    fn is_read_query(&self) -> bool {
        self.intent == Intent::Read && self.kind == Kind::Query
    }
}

fn classify_statement(toks: &[Token<'_>], opts: &ClassifyOptions) -> (Intent, Effect, Reason) {
    let stmt = Stmt::new(toks);
    let mut shape = stmt.shape(0, toks.len(), 0);
    if matches!(shape.kind, Kind::Query | Kind::Other) {
        let found = scan(toks, opts, shape.kind == Kind::Query);
        if shape.effect == Effect::None {
            if let Some(why) = found.pin {
                shape.effect = Effect::Pin(why);
            }
        }
        if shape.is_read_query() {
            if let Some(reason) = found.reason {
                shape.intent = Intent::Write;
                shape.reason = reason;
            }
        }
    }
    if shape.explained {
        shape.reason = match shape.intent {
            Intent::Read => Reason::Explain,
            Intent::Write => Reason::ExplainAnalyzeWrite,
        };
    }
    (shape.intent, shape.effect, shape.reason)
}

/// What the token scan found that overrides the structure.
#[derive(Default)]
struct Found {
    reason: Option<Reason>,
    pin: Option<&'static str>,
}

/// One pass over all tokens: literals, comments and quoted identifiers are already single
/// tokens, so keywords inside them are never seen.
fn scan(toks: &[Token<'_>], opts: &ClassifyOptions, query: bool) -> Found {
    let mut found = Found::default();
    let word = |i: usize, kws: &[&str]| toks.get(i).is_some_and(|t| t.is_any_word(kws));
    for (i, tok) in toks.iter().enumerate() {
        if query && tok.is_word("for") {
            let locks = word(i + 1, &["update", "share"])
                || (word(i + 1, &["no"]) && word(i + 2, &["key"]) && word(i + 3, &["update"]))
                || (word(i + 1, &["key"]) && word(i + 2, &["share"]));
            if locks {
                found.reason.get_or_insert(Reason::ForUpdate);
            }
        } else if query && tok.is_word("into") && !(i > 0 && word(i - 1, &["insert", "merge"])) {
            found.reason.get_or_insert(Reason::SelectInto);
            let temp = word(i + 1, &["temp", "temporary"])
                || (word(i + 1, &["local", "global"]) && word(i + 2, &["temp", "temporary"]))
                || (word(i + 1, &["pg_temp"]) && toks.get(i + 2).is_some_and(|t| t.is_punct(b'.')));
            if temp {
                found.pin.get_or_insert("temporary table");
            }
        } else if tok.is_punct(b'(') && i > 0 {
            if let Some(name) = callee(toks, i) {
                if opts.is_side_effect(name) {
                    found.reason.get_or_insert(Reason::SideEffectFunction);
                }
                if let Some(why) = super::function_pin(name) {
                    found.pin.get_or_insert(why);
                }
            }
        }
    }
    found
}

/// Name of the function called by the '(' at `open`, skipping definitions such as
/// `DROP FUNCTION set_config(...)` that name a function without calling it.
fn callee<'a>(toks: &[Token<'a>], open: usize) -> Option<&'a str> {
    let name = toks.get(open.checked_sub(1)?)?;
    if !name.is_ident() {
        return None;
    }
    let mut head = open - 1;
    if head >= 2 && toks.get(head - 1).is_some_and(|t| t.is_punct(b'.')) {
        head -= 2;
    }
    let defines = head >= 1
        && toks
            .get(head - 1)
            .is_some_and(|t| t.is_any_word(&["function", "procedure", "routine", "aggregate"]));
    if defines {
        return None;
    }
    let text = name.text;
    let text = text.strip_prefix("U&").unwrap_or(text);
    Some(text.trim_matches('"'))
}

/// The tokens of one statement plus, for each '(', the index of its matching ')'.
struct Stmt<'t, 'a> {
    toks: &'t [Token<'a>],
    close: Vec<usize>,
}

impl<'t, 'a> Stmt<'t, 'a> {
    fn new(toks: &'t [Token<'a>]) -> Self {
        let mut close = vec![toks.len(); toks.len()];
        let mut open = Vec::new();
        for (i, tok) in toks.iter().enumerate() {
            if tok.is_punct(b'(') {
                open.push(i);
            } else if tok.is_punct(b')') {
                if let Some(o) = open.pop() {
                    if let Some(slot) = close.get_mut(o) {
                        *slot = i;
                    }
                }
            }
        }
        Stmt { toks, close }
    }

    fn word(&self, i: usize, kw: &str) -> bool {
        self.toks.get(i).is_some_and(|t| t.is_word(kw))
    }

    fn any_word(&self, i: usize, kws: &[&str]) -> bool {
        self.toks.get(i).is_some_and(|t| t.is_any_word(kws))
    }

    fn punct(&self, i: usize, c: u8) -> bool {
        self.toks.get(i).is_some_and(|t| t.is_punct(c))
    }

    /// Index of the ')' matching the '(' at `open`, never beyond `hi`.
    fn close_of(&self, open: usize, hi: usize) -> usize {
        self.close.get(open).copied().unwrap_or(hi).min(hi)
    }

    /// Classifies the statement in tokens `lo..hi` by its leading keywords.
    fn shape(&self, lo: usize, hi: usize, depth: usize) -> Shape {
        let Some(first) = self.toks.get(lo).filter(|_| lo < hi && depth <= MAX_DEPTH) else {
            return Shape::unknown();
        };
        if first.is_punct(b'(') {
            let inner = self.shape(lo + 1, self.close_of(lo, hi), depth + 1);
            return if inner.is_read_query() {
                inner
            } else {
                Shape::write(write_reason(&inner), Kind::Query)
            };
        }
        if first.kind != TokenKind::Word {
            return Shape::unknown();
        }
        let next = |kw: &str| self.word(lo + 1, kw);
        match first.text.to_ascii_lowercase().as_str() {
            "select" => Shape::read(Reason::Select, Kind::Query),
            "values" => Shape::read(Reason::Values, Kind::Query),
            "table" => Shape::read(Reason::Table, Kind::Query),
            "show" => Shape::read(Reason::Show, Kind::Control),
            "with" => self.with(lo, hi, depth),
            "explain" => self.explain(lo, hi, depth),
            "copy" => self.copy(lo, hi, depth),
            "begin" => self.begin(lo, hi),
            "start" if next("transaction") => self.begin(lo, hi),
            "commit" | "rollback" if next("prepared") => {
                Shape::write(Reason::TwoPhase, Kind::Control)
            }
            "prepare" if next("transaction") => Shape::write(Reason::TwoPhase, Kind::Control),
            "commit" | "end" => Shape::tx(Effect::Commit),
            "rollback" | "abort" => {
                let mut i = lo + 1;
                if self.any_word(i, &["work", "transaction"]) {
                    i += 1;
                }
                // ROLLBACK TO SAVEPOINT keeps the transaction open.
                Shape::tx(if self.word(i, "to") {
                    Effect::None
                } else {
                    Effect::Rollback
                })
            }
            "savepoint" | "release" => Shape::tx(Effect::None),
            "set" => self.set(lo + 1, hi),
            "reset" => self.reset(lo + 1, hi),
            "discard" => Shape::set(Effect::Discard),
            "prepare" => Shape::pin("sql prepare", Kind::Control),
            "listen" => Shape::pin("listen", Kind::Control),
            "unlisten" | "deallocate" => Shape::write(Reason::Session, Kind::Control),
            "execute" => Shape::write(Reason::Session, Kind::Other),
            "declare" => self.declare(lo, hi),
            "fetch" | "move" | "close" => Shape::write(Reason::Cursor, Kind::Control),
            "create" => self.create(lo, hi),
            "insert" | "update" | "delete" | "merge" | "call" | "do" | "notify" | "truncate"
            | "lock" | "checkpoint" | "load" => Shape::write(Reason::Write, Kind::Other),
            "alter" | "drop" | "grant" | "revoke" | "comment" | "security" | "import"
            | "reassign" | "reindex" | "cluster" | "vacuum" | "analyze" | "analyse" | "refresh" => {
                Shape::write(Reason::Ddl, Kind::Control)
            }
            _ => Shape::unknown(),
        }
    }

    /// `WITH [RECURSIVE] name [(cols)] AS [[NOT] MATERIALIZED] (body) [SEARCH|CYCLE ...], ... main`.
    fn with(&self, lo: usize, hi: usize, depth: usize) -> Shape {
        let mut i = lo + 1;
        if self.word(i, "recursive") {
            i += 1;
        }
        let mut body_write: Option<Reason> = None;
        loop {
            let mut body = None;
            while i < hi {
                if self.punct(i, b'(') {
                    let close = self.close_of(i, hi);
                    if self.any_word(i - 1, &["as", "materialized"]) {
                        body = Some((i + 1, close));
                        break;
                    }
                    // A column list: `name (a, b) AS (...)`.
                    i = close + 1;
                } else {
                    i += 1;
                }
            }
            let Some((start, close)) = body else {
                return Shape::unknown();
            };
            let inner = self.shape(start, close, depth + 1);
            if !inner.is_read_query() && body_write.is_none() {
                let modifying = self.any_word(start, &["insert", "update", "delete", "merge"]);
                body_write = Some(if modifying {
                    Reason::ModifyingCte
                } else {
                    write_reason(&inner)
                });
            }
            i = close + 1;
            // Skip SEARCH/CYCLE clauses up to the next CTE or the main statement.
            let mut more = false;
            while i < hi {
                if self.punct(i, b',') {
                    more = true;
                    i += 1;
                    break;
                }
                if self.punct(i, b'(') || self.any_word(i, MAIN_STATEMENT) {
                    break;
                }
                i += 1;
            }
            if more {
                continue;
            }
            let main = self.shape(i, hi, depth + 1);
            let main_ok = main.is_read_query() || main.intent == Intent::Write;
            return match (body_write, main_ok) {
                (Some(reason), _) => Shape::write(reason, Kind::Query),
                (None, false) => Shape::write(Reason::Unknown, Kind::Query),
                (None, true) if main.intent == Intent::Write => {
                    Shape::write(main.reason, Kind::Query)
                }
                (None, true) => Shape::read(Reason::ReadOnlyWith, Kind::Query),
            };
        }
    }

    /// `EXPLAIN [ANALYZE] [VERBOSE] stmt` or `EXPLAIN (option [value], ...) stmt`.
    fn explain(&self, lo: usize, hi: usize, depth: usize) -> Shape {
        let mut i = lo + 1;
        let mut analyze = false;
        if self.punct(i, b'(') {
            let close = self.close_of(i, hi);
            let mut opt = i + 1;
            while opt < close {
                let mut end = opt;
                while end < close && !self.punct(end, b',') {
                    end += 1;
                }
                if self.any_word(opt, &["analyze", "analyse"]) {
                    let off = end > opt + 1 && self.toks.get(opt + 1).is_some_and(is_false);
                    analyze |= !off;
                }
                opt = end + 1;
            }
            i = close + 1;
        } else {
            while self.any_word(i, &["analyze", "analyse", "verbose"]) {
                analyze |= !self.word(i, "verbose");
                i += 1;
            }
        }
        if !analyze {
            return Shape::read(Reason::Explain, Kind::PlanOnly);
        }
        let inner = self.shape(i, hi, depth + 1);
        let mut shape = if inner.is_read_query() || inner.intent == Intent::Write {
            inner
        } else {
            Shape::unknown()
        };
        shape.explained = true;
        shape
    }

    /// `COPY {table [(cols)] | (query)} {FROM | TO} ...`: only TO STDOUT is a read; TO a file
    /// or PROGRAM acts on the server host.
    fn copy(&self, lo: usize, hi: usize, depth: usize) -> Shape {
        let mut query = None;
        let mut i = lo + 1;
        while i < hi {
            if self.punct(i, b'(') {
                let close = self.close_of(i, hi);
                if i == lo + 1 {
                    query = Some((i + 1, close));
                }
                i = close + 1;
            } else if self.word(i, "from") {
                return Shape::write(Reason::Write, Kind::Other);
            } else if self.word(i, "to") {
                if !self.word(i + 1, "stdout") {
                    return Shape::write(Reason::Write, Kind::Other);
                }
                let Some((start, close)) = query else {
                    return Shape::read(Reason::CopyTo, Kind::Query);
                };
                let inner = self.shape(start, close, depth + 1);
                return if inner.is_read_query() {
                    Shape::read(Reason::CopyTo, Kind::Query)
                } else {
                    Shape::write(write_reason(&inner), Kind::Query)
                };
            } else {
                i += 1;
            }
        }
        Shape::unknown()
    }

    fn begin(&self, lo: usize, hi: usize) -> Shape {
        let (mut ro, mut rw, mut serializable) = (false, false, false);
        for i in lo..hi {
            ro |= self.word(i, "read") && self.word(i + 1, "only");
            rw |= self.word(i, "read") && self.word(i + 1, "write");
            serializable |= self.word(i, "serializable");
        }
        // A hot standby refuses SERIALIZABLE, so such a transaction needs the primary.
        let read_only = ro && !rw && !serializable;
        let mut shape = Shape::tx(Effect::Begin { read_only });
        if !read_only {
            shape.intent = Intent::Write;
        }
        shape
    }

    /// Everything after the SET keyword, starting at `i`.
    fn set(&self, i: usize, hi: usize) -> Shape {
        if self.any_word(i, &["local", "transaction", "constraints"]) {
            return Shape::set(Effect::SetLocal);
        }
        let mut i = i;
        if self.word(i, "session") {
            if self.word(i + 1, "characteristics") {
                return self.characteristics(i + 2, hi);
            }
            if self.word(i + 1, "authorization") {
                return Shape::set(set_named("session_authorization"));
            }
            i += 1;
        }
        let special = if self.word(i, "time") && self.word(i + 1, "zone") {
            Some("timezone")
        } else if self.word(i, "xml") && self.word(i + 1, "option") {
            Some("xmloption")
        } else if self.word(i, "names") {
            Some("client_encoding")
        } else if self.word(i, "schema") {
            Some("search_path")
        } else if self.word(i, "role") {
            Some("role")
        } else {
            None
        };
        if let Some(name) = special {
            return Shape::set(set_named(name));
        }
        let Some((name, after)) = self.dotted_name(i, hi) else {
            return Shape::unknown();
        };
        let assigns = self.any_word(after, &["to", "from"])
            || self
                .toks
                .get(after)
                .is_some_and(|t| t.kind == TokenKind::Operator && t.text.starts_with('='));
        if assigns {
            Shape::set(Effect::Set { name })
        } else {
            Shape::unknown()
        }
    }

    /// `SET SESSION CHARACTERISTICS AS TRANSACTION modes` sets the `default_transaction_*`
    /// settings; one mode maps to one setting, several cannot be named by one `Set`.
    fn characteristics(&self, lo: usize, hi: usize) -> Shape {
        let mut names = Vec::new();
        for i in lo..hi {
            let name = if self.word(i, "isolation") {
                "default_transaction_isolation"
            } else if self.word(i, "read") && self.any_word(i + 1, &["only", "write"]) {
                "default_transaction_read_only"
            } else if self.word(i, "deferrable") {
                "default_transaction_deferrable"
            } else {
                continue;
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
        match names.as_slice() {
            [name] => Shape::set(set_named(name)),
            _ => Shape::pin("session characteristics", Kind::Control),
        }
    }

    /// Everything after the RESET keyword, starting at `i`.
    fn reset(&self, i: usize, hi: usize) -> Shape {
        let name = if self.word(i, "all") {
            return Shape::set(Effect::ResetAll);
        } else if self.word(i, "transaction") {
            return Shape::set(Effect::SetLocal);
        } else if self.word(i, "session") && self.word(i + 1, "authorization") {
            "session_authorization".to_string()
        } else if self.word(i, "time") && self.word(i + 1, "zone") {
            "timezone".to_string()
        } else {
            match self.dotted_name(i, hi) {
                Some((name, after)) if after >= hi => name,
                _ => return Shape::unknown(),
            }
        };
        Shape::set(Effect::Reset { name })
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

    /// `DECLARE name ... CURSOR [WITH HOLD] FOR query`: a held cursor outlives its transaction.
    fn declare(&self, lo: usize, hi: usize) -> Shape {
        let mut i = lo + 1;
        while i < hi && !self.word(i, "for") {
            if self.word(i, "with") && self.word(i + 1, "hold") {
                return Shape::pin("cursor with hold", Kind::Other);
            }
            i += 1;
        }
        Shape::write(Reason::Cursor, Kind::Other)
    }

    /// CREATE of a temporary object (TEMP keyword or the `pg_temp` schema) pins the session.
    fn create(&self, lo: usize, hi: usize) -> Shape {
        let mut i = lo + 1;
        let mut temp = false;
        let modifiers = [
            "or",
            "replace",
            "global",
            "local",
            "temp",
            "temporary",
            "unlogged",
        ];
        while self.any_word(i, &modifiers) {
            temp |= self.any_word(i, &["temp", "temporary"]);
            i += 1;
        }
        let table = self.word(i, "table");
        // Only CREATE TABLE AS and CREATE MATERIALIZED VIEW run a query now; a function
        // body or a view merely mentions the calls it will make later.
        let kind = if table || self.word(i, "materialized") {
            Kind::Other
        } else {
            Kind::Control
        };
        temp |= (lo..hi).any(|k| self.word(k, "pg_temp") && self.punct(k + 1, b'.'));
        match (temp, table) {
            (true, true) => Shape::pin("temporary table", kind),
            (true, false) => Shape::pin("temporary object", kind),
            (false, _) => Shape::write(Reason::Ddl, kind),
        }
    }
}

fn set_named(name: &str) -> Effect {
    Effect::Set {
        name: name.to_string(),
    }
}

/// Reason to report when a nested statement forces a write: its own, unless it was a
/// non-query read (such as SHOW) in a place only queries belong.
fn write_reason(inner: &Shape) -> Reason {
    match inner.intent {
        Intent::Write => inner.reason,
        Intent::Read => Reason::Unknown,
    }
}

/// EXPLAIN option values that turn an option off (PostgreSQL's `defGetBoolean`).
fn is_false(tok: &Token<'_>) -> bool {
    let text = match tok.kind {
        TokenKind::String => tok.text.trim_matches('\''),
        _ => tok.text,
    };
    ["false", "off", "0"]
        .iter()
        .any(|v| v.eq_ignore_ascii_case(text))
}
