//! Structural rules: what a MySQL statement is, from its leading keywords.

use super::super::lexer::{Token, TokenKind};
use super::super::{ClassifyOptions, Effect, Intent, Reason};
use super::scan::{is_user_variable, scan};

/// Nesting of parenthesised queries, CTE bodies, EXPLAIN/ANALYZE and SET STATEMENT examined
/// before answering Write, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

/// Words that can start the main statement after a WITH list.
const MAIN_STATEMENT: &[&str] = &["select", "values", "table", "update", "delete", "insert"];

/// How much of a statement's text runs as expressions, which decides which scans apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A query: row locks, SELECT INTO and side-effect functions turn a read into a write.
    Query,
    /// A write that may evaluate expressions: only pins are added.
    Other,
    /// Evaluates nothing the scan must see (or scanned its own expressions, like SET).
    Control,
    /// EXPLAIN without ANALYZE: plans, runs nothing.
    PlanOnly,
}

/// Structural classification of a statement, before the token scan.
#[derive(Debug, Clone)]
pub(super) struct Shape {
    pub(super) intent: Intent,
    pub(super) effect: Effect,
    pub(super) reason: Reason,
    pub(super) kind: Kind,
    explained: bool,
}

impl Shape {
    pub(super) fn new(intent: Intent, effect: Effect, reason: Reason, kind: Kind) -> Self {
        Shape {
            intent,
            effect,
            reason,
            kind,
            explained: false,
        }
    }
    pub(super) fn read(reason: Reason, kind: Kind) -> Self {
        Shape::new(Intent::Read, Effect::None, reason, kind)
    }
    pub(super) fn write(reason: Reason, kind: Kind) -> Self {
        Shape::new(Intent::Write, Effect::None, reason, kind)
    }
    pub(super) fn unknown() -> Self {
        Shape::write(Reason::Unknown, Kind::Other)
    }
    pub(super) fn pin(why: &'static str, reason: Reason, kind: Kind) -> Self {
        Shape::new(Intent::Write, Effect::Pin(why), reason, kind)
    }
    fn tx(effect: Effect) -> Self {
        Shape::new(Intent::Read, effect, Reason::Transaction, Kind::Control)
    }
    pub(super) fn set(effect: Effect) -> Self {
        Shape::new(Intent::Read, effect, Reason::Set, Kind::Control)
    }
    pub(super) fn is_read_query(&self) -> bool {
        self.intent == Intent::Read && self.kind == Kind::Query
    }
}

/// Classifies one statement's tokens (executable-comment markers already removed).
pub(super) fn classify_statement(
    toks: &[Token<'_>],
    opts: &ClassifyOptions,
) -> (Intent, Effect, Reason) {
    let stmt = Stmt::new(toks, opts);
    let mut shape = stmt.shape(0, toks.len(), 0);
    if matches!(shape.kind, Kind::Query | Kind::Other) {
        let found = scan(toks, opts, shape.kind == Kind::Query);
        if shape.is_read_query() {
            if let Some(reason) = found.reason {
                shape.intent = Intent::Write;
                shape.reason = reason;
            }
        }
        if shape.effect == Effect::None {
            if let Some(why) = found.pin {
                shape.effect = Effect::Pin(why);
                shape.intent = Intent::Write;
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

/// The tokens of one statement plus, for each '(', the index of its matching ')'.
pub(super) struct Stmt<'t, 'a> {
    pub(super) toks: &'t [Token<'a>],
    pub(super) opts: &'t ClassifyOptions,
    close: Vec<usize>,
}

impl<'t, 'a> Stmt<'t, 'a> {
    fn new(toks: &'t [Token<'a>], opts: &'t ClassifyOptions) -> Self {
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
        Stmt { toks, opts, close }
    }

    pub(super) fn word(&self, i: usize, kw: &str) -> bool {
        self.toks.get(i).is_some_and(|t| t.is_word(kw))
    }

    pub(super) fn any_word(&self, i: usize, kws: &[&str]) -> bool {
        self.toks.get(i).is_some_and(|t| t.is_any_word(kws))
    }

    pub(super) fn punct(&self, i: usize, c: u8) -> bool {
        self.toks.get(i).is_some_and(|t| t.is_punct(c))
    }

    /// Index of the ')' matching the '(' at `open`, never beyond `hi`.
    pub(super) fn close_of(&self, open: usize, hi: usize) -> usize {
        self.close.get(open).copied().unwrap_or(hi).min(hi)
    }

    /// Classifies the statement in tokens `lo..hi` by its leading keywords.
    pub(super) fn shape(&self, lo: usize, hi: usize, depth: usize) -> Shape {
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
            "with" => self.with(lo, hi, depth),
            "show" => self.show(lo, hi),
            "explain" | "describe" | "desc" => self.explain(lo, hi, depth),
            "analyze" => self.analyze(lo, hi, depth),
            "help" => Shape::read(Reason::Show, Kind::Control),
            // MariaDB's anonymous block runs its statements now.
            "begin" if next("not") => Shape::write(Reason::Write, Kind::Other),
            "begin" => tx_begin(false),
            "start" if next("transaction") => self.start_transaction(lo + 2, hi),
            "commit" => Shape::tx(Effect::Commit),
            "rollback" => {
                let i = if next("work") { lo + 2 } else { lo + 1 };
                // ROLLBACK TO [SAVEPOINT] keeps the transaction open.
                Shape::tx(if self.word(i, "to") {
                    Effect::None
                } else {
                    Effect::Rollback
                })
            }
            "savepoint" => Shape::tx(Effect::None),
            "release" if next("savepoint") => Shape::tx(Effect::None),
            "xa" if next("recover") => Shape::write(Reason::TwoPhase, Kind::Control),
            "xa" => Shape::pin("xa transaction", Reason::TwoPhase, Kind::Control),
            "set" => self.set(lo + 1, hi, depth),
            "use" => Shape::set(Effect::Set {
                name: "use".to_string(),
            }),
            "lock" if self.any_word(lo + 1, &["table", "tables"]) => {
                Shape::pin("table lock", Reason::Pinned, Kind::Control)
            }
            "lock" if next("instance") => Shape::pin("backup lock", Reason::Pinned, Kind::Control),
            // Releasing a lock needs no pin: a session holding one is pinned already.
            "unlock" => Shape::write(Reason::Session, Kind::Control),
            "flush" => {
                let locks = (lo..hi).any(|i| {
                    (self.word(i, "read") && self.word(i + 1, "lock"))
                        || (self.word(i, "for") && self.word(i + 1, "export"))
                });
                if locks {
                    Shape::pin("table lock", Reason::Pinned, Kind::Control)
                } else {
                    Shape::write(Reason::Ddl, Kind::Control)
                }
            }
            "backup" => Shape::pin("backup lock", Reason::Pinned, Kind::Control),
            "handler" => Shape::pin("handler", Reason::Pinned, Kind::Control),
            "prepare" | "deallocate" => Shape::pin("sql prepare", Reason::Pinned, Kind::Control),
            // Also MariaDB's EXECUTE IMMEDIATE, whose text may create any session state.
            "execute" => Shape::pin("sql prepare", Reason::Pinned, Kind::Other),
            "create" => self.create(lo, hi),
            "drop" if next("prepare") => Shape::pin("sql prepare", Reason::Pinned, Kind::Control),
            "load"
                if (next("data") || next("xml"))
                    && (self.word(lo + 2, "local")
                        || (self.word(lo + 2, "low_priority")
                            || self.word(lo + 2, "concurrent"))
                            && self.word(lo + 3, "local")) =>
            {
                Shape::write(Reason::LocalInfile, Kind::Other)
            }
            "insert" | "replace" | "update" | "delete" | "load" | "call" | "do" | "truncate" => {
                Shape::write(Reason::Write, Kind::Other)
            }
            "alter" | "drop" | "rename" | "grant" | "revoke" | "optimize" | "repair" | "check"
            | "checksum" | "install" | "uninstall" | "purge" | "reset" | "change" | "start"
            | "stop" | "shutdown" | "restart" | "cache" | "binlog" | "clone" | "import" => {
                Shape::write(Reason::Ddl, Kind::Control)
            }
            // Per-connection or per-server: only the primary's answer is deterministic.
            "kill" | "get" | "signal" | "resignal" => Shape::write(Reason::Session, Kind::Control),
            _ => Shape::unknown(),
        }
    }

    /// `WITH [RECURSIVE] name [(cols)] AS (body), ... main`; MySQL bodies are queries, but a
    /// body or main statement that locks or calls a side-effect function still writes.
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
                    if self.word(i - 1, "as") {
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
                body_write = Some(write_reason(&inner));
            }
            i = close + 1;
            if self.punct(i, b',') {
                i += 1;
                continue;
            }
            let main = self.shape(i, hi, depth + 1);
            return match body_write {
                Some(reason) => Shape::write(reason, Kind::Query),
                None if main.is_read_query() => Shape::read(Reason::ReadOnlyWith, Kind::Query),
                None if main.intent == Intent::Write && self.any_word(i, MAIN_STATEMENT) => {
                    Shape::write(main.reason, Kind::Query)
                }
                None => Shape::write(Reason::Unknown, Kind::Query),
            };
        }
    }

    /// SHOW reads, except what describes this connection's last statement or this server's
    /// replication position: those need the primary's answer.
    fn show(&self, lo: usize, hi: usize) -> Shape {
        let per_node = [
            "warnings", "errors", "profile", "profiles", "master", "binlog", "binary", "slave",
            "replica", "replicas",
        ];
        let end = hi.min(lo + 6);
        if (lo + 1..end).any(|i| self.any_word(i, &per_node)) {
            Shape::write(Reason::Session, Kind::Control)
        } else {
            Shape::read(Reason::Show, Kind::Control)
        }
    }

    /// `EXPLAIN|DESCRIBE [EXTENDED|PARTITIONS|ANALYZE|FORMAT=x] [INTO @v] stmt`, or of a table:
    /// only ANALYZE runs the statement.
    fn explain(&self, lo: usize, hi: usize, depth: usize) -> Shape {
        let mut i = lo + 1;
        let mut analyze = false;
        loop {
            if self.any_word(i, &["extended", "partitions"]) {
                i += 1;
            } else if self.word(i, "analyze") {
                analyze = true;
                i += 1;
            } else if self.word(i, "format") && self.punct_op(i + 1, "=") {
                i += 3;
            } else {
                break;
            }
        }
        if self.word(i, "for") && self.word(i + 1, "connection") {
            return Shape::write(Reason::Session, Kind::Control);
        }
        if self.word(i, "into") {
            if self.toks.get(i + 1).is_some_and(is_user_variable) {
                return Shape::pin("user variables", Reason::Pinned, Kind::Control);
            }
            return Shape::unknown();
        }
        if !analyze {
            return Shape::read(Reason::Explain, Kind::PlanOnly);
        }
        self.runs(i, hi, depth)
    }

    /// MariaDB `ANALYZE [FORMAT=JSON] stmt` runs `stmt`; ANALYZE TABLE is maintenance.
    fn analyze(&self, lo: usize, hi: usize, depth: usize) -> Shape {
        let mut i = lo + 1;
        if self.word(i, "format") && self.punct_op(i + 1, "=") {
            i += 3;
        }
        if self.any_word(i, &["table", "no_write_to_binlog", "local"]) {
            return Shape::write(Reason::Ddl, Kind::Control);
        }
        self.runs(i, hi, depth)
    }

    /// The statement at `i`, run by EXPLAIN ANALYZE or ANALYZE.
    fn runs(&self, i: usize, hi: usize, depth: usize) -> Shape {
        let inner = self.shape(i, hi, depth + 1);
        let mut shape = if inner.is_read_query() || inner.intent == Intent::Write {
            inner
        } else {
            Shape::unknown()
        };
        shape.explained = true;
        shape
    }

    /// True if token `i` is the operator `op`.
    pub(super) fn punct_op(&self, i: usize, op: &str) -> bool {
        self.toks
            .get(i)
            .is_some_and(|t| t.kind == TokenKind::Operator && t.text == op)
    }

    /// `START TRANSACTION [READ ONLY | READ WRITE | WITH CONSISTENT SNAPSHOT], ...`.
    fn start_transaction(&self, lo: usize, hi: usize) -> Shape {
        let (mut ro, mut rw) = (false, false);
        for i in lo..hi {
            ro |= self.word(i, "read") && self.word(i + 1, "only");
            rw |= self.word(i, "read") && self.word(i + 1, "write");
        }
        tx_begin(ro && !rw)
    }

    /// CREATE TEMPORARY pins the session; CREATE TABLE ... SELECT runs its query now, while a
    /// routine, trigger, event or view body only runs later.
    fn create(&self, lo: usize, hi: usize) -> Shape {
        let objects = [
            "table",
            "procedure",
            "function",
            "trigger",
            "event",
            "view",
            "index",
            "sequence",
            "database",
            "schema",
            "user",
            "role",
            "server",
            "tablespace",
            "package",
        ];
        let mut temp = false;
        let mut i = lo + 1;
        while i < hi && !self.any_word(i, &objects) {
            temp |= self.word(i, "temporary");
            i += 1;
        }
        let table = self.word(i, "table");
        let kind = if table { Kind::Other } else { Kind::Control };
        match (temp, table) {
            (true, true) => Shape::pin("temporary table", Reason::Pinned, kind),
            (true, false) => Shape::pin("temporary object", Reason::Pinned, kind),
            (false, _) => Shape::write(Reason::Ddl, kind),
        }
    }
}

fn tx_begin(read_only: bool) -> Shape {
    let mut shape = Shape::tx(Effect::Begin { read_only });
    if !read_only {
        shape.intent = Intent::Write;
    }
    shape
}

/// Reason to report when a nested statement forces a write: its own, unless it was a
/// non-query read (such as SHOW) in a place only queries belong.
pub(super) fn write_reason(inner: &Shape) -> Reason {
    match inner.intent {
        Intent::Write => inner.reason,
        Intent::Read => Reason::Unknown,
    }
}
