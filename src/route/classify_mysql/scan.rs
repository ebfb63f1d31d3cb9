//! One pass over a statement's tokens for what overrides its structure: row locks, SELECT INTO,
//! user-variable assignments and side-effect functions.

use super::super::lexer::{Token, TokenKind};
use super::super::{ClassifyOptions, Reason};
use super::MYSQL_SIDE_EFFECT_FUNCTIONS;

/// System variables that describe the previous statement on this connection.
const STATE_VARIABLES: &[&str] = &[
    "identity",
    "last_insert_id",
    "insert_id",
    "warning_count",
    "error_count",
];

/// What the token scan found that overrides the structure.
#[derive(Default)]
pub(super) struct Found {
    pub(super) reason: Option<Reason>,
    pub(super) pin: Option<&'static str>,
}

/// Scans `toks`; `query` enables the rules that only make sense in a query (locks, INTO).
pub(super) fn scan(toks: &[Token<'_>], opts: &ClassifyOptions, query: bool) -> Found {
    let mut found = Found::default();
    let word = |i: usize, kws: &[&str]| toks.get(i).is_some_and(|t| t.is_any_word(kws));
    for (i, tok) in toks.iter().enumerate() {
        let locks = (tok.is_word("for") && word(i + 1, &["update", "share"]))
            || (tok.is_word("lock")
                && word(i + 1, &["in"])
                && word(i + 2, &["share"])
                && word(i + 3, &["mode"]));
        if query && locks {
            found.reason.get_or_insert(Reason::ForUpdate);
        } else if query && tok.is_word("into") && !(i > 0 && word(i - 1, &["insert", "replace"])) {
            // INTO @var, OUTFILE or DUMPFILE: writes session state or a file on the server.
            found.reason.get_or_insert(Reason::SelectInto);
            if toks.get(i + 1).is_some_and(is_user_variable) {
                found.pin.get_or_insert("user variables");
            }
        } else if tok.kind == TokenKind::Operator && tok.text == ":=" {
            // `col := 1` in UPDATE ... SET is a plain assignment; only `@x :=` writes a variable.
            if i > 0 && toks.get(i - 1).is_some_and(is_user_variable) {
                found.reason.get_or_insert(Reason::Pinned);
                found.pin.get_or_insert("user variables");
            }
        } else if tok.is_any_word(&["next", "previous"])
            && word(i + 1, &["value"])
            && word(i + 2, &["for"])
        {
            found.reason.get_or_insert(Reason::SideEffectFunction);
        } else if tok.is_word("sql_calc_found_rows") {
            // The FOUND_ROWS() that follows runs on the primary, so this must run there too.
            found.reason.get_or_insert(Reason::SideEffectFunction);
        } else if tok.kind == TokenKind::Variable && is_state_variable(toks, i) {
            found.reason.get_or_insert(Reason::SideEffectFunction);
        } else if tok.is_punct(b'(') && i > 0 {
            if let Some(name) = callee(toks, i) {
                let listed = MYSQL_SIDE_EFFECT_FUNCTIONS
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(name))
                    || opts.side_effect_functions.iter().any(|f| {
                        let unqualified = f.rsplit('.').next().unwrap_or(f);
                        unqualified.eq_ignore_ascii_case(name)
                    });
                if listed {
                    found.reason.get_or_insert(Reason::SideEffectFunction);
                }
                if name.eq_ignore_ascii_case("get_lock") {
                    found.pin.get_or_insert("named lock");
                }
            }
        }
    }
    found
}

/// `@name` (not `@@name`).
pub(super) fn is_user_variable(tok: &Token<'_>) -> bool {
    tok.kind == TokenKind::Variable && !tok.text.starts_with("@@")
}

/// `@@identity`, `@@session.last_insert_id` and the like at `i`.
fn is_state_variable(toks: &[Token<'_>], i: usize) -> bool {
    let Some(name) = toks.get(i).and_then(|t| t.text.strip_prefix("@@")) else {
        return false;
    };
    let scoped = ["session", "local"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(name))
        && toks.get(i + 1).is_some_and(|t| t.is_punct(b'.'));
    let name = if scoped {
        toks.get(i + 2).map_or("", |t| t.text)
    } else {
        name
    };
    STATE_VARIABLES.iter().any(|v| v.eq_ignore_ascii_case(name))
}

/// Name of the function called by the '(' at `open`, skipping definitions such as
/// `CREATE FUNCTION get_lock(...)` that name a function without calling it.
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
            .is_some_and(|t| t.is_any_word(&["function", "procedure"]));
    if defines {
        return None;
    }
    Some(name.text.trim_matches('`'))
}
