//! MySQL/MariaDB statement classification: the same outputs and rules as [`super::classify`],
//! with MySQL's syntax, session state and side-effect functions.
//!
//! Unknown means primary: every rule errs towards [`Intent::Write`]. Two server settings change
//! how text splits into tokens, so the classifier checks the other reading when it matters:
//! sql_mode NO_BACKSLASH_ESCAPES (a `\'` ends the literal) and versioned executable comments
//! (`/*!99999 ... */` is a plain comment on an older server).

mod scan;
mod set;
mod shape;

use super::lexer::{Dialect, Lexer, Token, TokenKind};
use super::{Classification, ClassifyOptions, Effect, Intent, Reason, RouteHint, Statement};

/// Built-in MySQL/MariaDB functions that lock, write, or read state the previous statement left
/// on its own connection (which is on the primary when that statement wrote).
pub const MYSQL_SIDE_EFFECT_FUNCTIONS: &[&str] = &[
    "get_lock",
    "release_lock",
    "release_all_locks",
    // Lock state is per server: only the primary's answer means anything to a locker.
    "is_free_lock",
    "is_used_lock",
    "last_insert_id",
    "found_rows",
    "row_count",
    // MariaDB sequences; lastval reads this session's last nextval.
    "nextval",
    "setval",
    "lastval",
];

/// Classifies MySQL/MariaDB statement text. Pure: same text and options, same answer. Never panics, linear time.
pub fn classify_mysql(sql: &str, opts: &ClassifyOptions) -> Classification {
    let escaped = classify_text(sql, opts, true);
    // With NO_BACKSLASH_ESCAPES, `'a\'; DELETE FROM t; -- '` is two statements; the session
    // may have set it, so a read must also be a read in that reading.
    if escaped.intent == Intent::Read && sql.contains('\\') {
        let plain = classify_text(sql, opts, false);
        if plain.intent == Intent::Write {
            return all_write(escaped, Reason::Unknown);
        }
    }
    escaped
}

fn classify_text(sql: &str, opts: &ClassifyOptions, escapes: bool) -> Classification {
    let mut lexer = Lexer::new(sql, Dialect::MySql);
    if !escapes {
        lexer = lexer.without_backslash_escapes();
    }
    let mut hint = None;
    let mut started = false;
    let mut in_exec = false;
    // A comment inside an executable comment: where the outer one ends depends on the server.
    let mut murky = false;
    let mut statements = Vec::with_capacity(1);
    let mut current: Vec<Token<'_>> = Vec::with_capacity(32);
    let mut splitter = Splitter::default();
    for tok in lexer {
        if tok.is_comment() {
            if !started {
                hint = RouteHint::merge(hint, RouteHint::from_comment(tok.text));
            }
            murky |= in_exec;
            continue;
        }
        started = true;
        match tok.kind {
            TokenKind::ExecCommentOpen => in_exec = true,
            TokenKind::ExecCommentClose => in_exec = false,
            _ => {}
        }
        if splitter.ends_statement(&tok) {
            push_statement(&mut statements, &current, murky || in_exec, opts, escapes);
            murky = false;
            current.clear();
            splitter = Splitter::default();
        } else {
            current.push(tok);
        }
    }
    push_statement(&mut statements, &current, murky, opts, escapes);

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

/// Marks every statement Write, keeping effects: the text is ambiguous as a whole.
fn all_write(mut class: Classification, reason: Reason) -> Classification {
    for s in &mut class.statements {
        s.intent = Intent::Write;
        s.reason = reason;
    }
    class.intent = Intent::Write;
    class.reason = reason;
    class
}

fn push_statement(
    out: &mut Vec<Statement>,
    toks: &[Token<'_>],
    murky: bool,
    opts: &ClassifyOptions,
    escapes: bool,
) {
    let (Some(first), Some(last)) = (toks.first(), toks.last()) else {
        return;
    };
    // Without backslash escapes, a statement ending in an unterminated literal is a syntax
    // error and runs nothing; this keeps `'it\'s'` from looking like a write.
    if !escapes && unterminated(last) {
        return;
    }
    let (intent, effect, reason) = classify_tokens(toks, murky, opts);
    out.push(Statement {
        intent,
        effect,
        reason,
        span: first.start..last.end(),
    });
}

/// True for a quoted literal whose closing quote is missing (read without backslash escapes,
/// where a literal is closed exactly when its quote characters pair up).
fn unterminated(tok: &Token<'_>) -> bool {
    if !matches!(tok.kind, TokenKind::String | TokenKind::QuotedIdent) {
        return false;
    }
    let Some(q) = tok.text.bytes().find(|b| matches!(b, b'\'' | b'"' | b'`')) else {
        return false;
    };
    tok.text.bytes().filter(|&b| b == q).count() % 2 == 1
}

fn is_marker(tok: &Token<'_>) -> bool {
    matches!(
        tok.kind,
        TokenKind::ExecCommentOpen | TokenKind::ExecCommentClose
    )
}

/// Classifies one statement, reading executable comments both ways when the server decides.
fn classify_tokens(
    toks: &[Token<'_>],
    murky: bool,
    opts: &ClassifyOptions,
) -> (Intent, Effect, Reason) {
    if !toks.iter().any(is_marker) {
        return shape::classify_statement(toks, opts);
    }
    let mut depth = 0usize;
    let mut balanced = true;
    let mut conditional = false;
    let mut runs = Vec::with_capacity(toks.len());
    let mut outside = Vec::with_capacity(toks.len());
    for tok in toks {
        match tok.kind {
            TokenKind::ExecCommentOpen => {
                balanced &= depth == 0;
                depth += 1;
                // `/*!` alone runs on every server; a version or `M` makes it conditional.
                conditional |= tok.text.len() > 3;
            }
            TokenKind::ExecCommentClose => {
                balanced &= depth == 1;
                depth = depth.saturating_sub(1);
            }
            _ => {
                runs.push(*tok);
                if depth == 0 {
                    outside.push(*tok);
                }
            }
        }
    }
    if murky || !balanced || depth != 0 {
        return (Intent::Write, Effect::None, Reason::Unknown);
    }
    let ran = shape::classify_statement(&runs, opts);
    if !conditional || outside.is_empty() {
        return ran;
    }
    let skipped = shape::classify_statement(&outside, opts);
    let pin = |e: &Effect| matches!(e, Effect::Pin(_));
    let effect = if !pin(&ran.1) && pin(&skipped.1) {
        skipped.1
    } else {
        ran.1
    };
    match (ran.0, skipped.0) {
        (Intent::Read, Intent::Write) => (Intent::Write, effect, skipped.2),
        _ => (ran.0, effect, ran.2),
    }
}

/// Decides where a top-level statement ends: at a ';' outside parentheses, except that the
/// body of a stored program or anonymous block (`BEGIN ... END`, sent as one statement
/// because DELIMITER is a client-side command) runs to the end of the text.
#[derive(Debug, Clone, Default)]
struct Splitter {
    parens: usize,
    compound: bool,
    /// Non-marker tokens seen so far.
    seen: usize,
    starts_create: bool,
    starts_begin: bool,
    routine: bool,
}

impl Splitter {
    fn ends_statement(&mut self, tok: &Token<'_>) -> bool {
        if is_marker(tok) {
            return false;
        }
        let index = self.seen;
        self.seen += 1;
        if tok.is_punct(b'(') {
            self.parens += 1;
        } else if tok.is_punct(b')') {
            self.parens = self.parens.saturating_sub(1);
        } else if tok.is_punct(b';') {
            return self.parens == 0 && !self.compound;
        } else if tok.kind == TokenKind::Word {
            if index == 0 {
                self.starts_create = tok.is_word("create");
                self.starts_begin = tok.is_word("begin");
            }
            self.routine |= self.starts_create
                && tok.is_any_word(&["procedure", "function", "trigger", "event"]);
            // Splitting a body would be wrong; keeping a following statement in it only
            // makes the whole text a write. `BEGIN NOT` only starts `BEGIN NOT ATOMIC`.
            self.compound |= self.parens == 0
                && ((tok.is_word("begin") && self.routine)
                    || (index == 1 && self.starts_begin && tok.is_word("not")));
        }
        false
    }
}
