//! MySQL/MariaDB token rules: backticks, backslash escapes, `#` and `-- ` comments, flat block
//! comments, executable comments, `?`, `@variables` and `:=`.

use super::{is_ident_cont, is_ident_start, Lexer, TokenKind};

impl Lexer<'_> {
    /// Lexes the token starting with byte `c` at `start`; returns its kind and end.
    pub(super) fn mysql_token(&mut self, start: usize, c: u8) -> (TokenKind, usize) {
        let next = self.at(start + 1);
        match c {
            b'#' => (TokenKind::LineComment, self.line_end(start + 1)),
            b'-' if next == Some(b'-') && self.dash_comment(start) => {
                (TokenKind::LineComment, self.line_end(start + 2))
            }
            b'/' if next == Some(b'*') => self.mysql_block(start),
            b'*' if self.in_exec && next == Some(b'/') => {
                self.in_exec = false;
                (TokenKind::ExecCommentClose, start + 2)
            }
            b'\'' | b'"' => (
                TokenKind::String,
                self.quoted(start, c, self.backslash_escapes),
            ),
            b'`' => (TokenKind::QuotedIdent, self.quoted(start, b'`', false)),
            b'?' => (TokenKind::Param, start + 1),
            b'@' => self.variable(start),
            b':' if next == Some(b'=') => (TokenKind::Operator, start + 2),
            b'0' if matches!(next, Some(b'x' | b'X' | b'b' | b'B')) => {
                let hex = matches!(next, Some(b'x' | b'X'));
                let mut i = start + 2;
                while self.at(i).is_some_and(|b| {
                    if hex {
                        b.is_ascii_hexdigit()
                    } else {
                        b == b'0' || b == b'1'
                    }
                }) {
                    i += 1;
                }
                // `0x` alone is `0` followed by the word `x`.
                let end = if i > start + 2 { i } else { start + 1 };
                (TokenKind::Number, end)
            }
            b'0'..=b'9' => (TokenKind::Number, self.number(start)),
            b'.' if next.is_some_and(|n| n.is_ascii_digit()) => {
                (TokenKind::Number, self.number(start))
            }
            b'(' | b')' | b',' | b';' | b'.' | b'[' | b']' | b':' => (TokenKind::Punct, start + 1),
            c if is_mysql_op_char(c) => (TokenKind::Operator, self.mysql_operator(start)),
            c if is_ident_start(c) => self.mysql_word(start),
            _ => (TokenKind::Other, start + 1),
        }
    }

    /// MySQL starts a `--` comment only when a space or control character (or the end) follows,
    /// so `--1` is minus minus one.
    fn dash_comment(&self, start: usize) -> bool {
        self.at(start + 2)
            .is_none_or(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    }

    fn line_end(&self, from: usize) -> usize {
        let mut i = from;
        while let Some(b) = self.at(i) {
            if b == b'\n' || b == b'\r' {
                return i;
            }
            i += 1;
        }
        self.len()
    }

    /// `/*!`, `/*!NNNNN` and `/*M!` open an executable comment whose content is lexed as SQL;
    /// any other `/*` (including one inside an executable comment) runs to the first `*/`.
    fn mysql_block(&mut self, start: usize) -> (TokenKind, usize) {
        let bang = match (self.at(start + 2), self.at(start + 3)) {
            (Some(b'!'), _) => Some(start + 3),
            (Some(b'M'), Some(b'!')) => Some(start + 4),
            _ => None,
        };
        if let Some(mut i) = bang.filter(|_| !self.in_exec) {
            while self.at(i).is_some_and(|b| b.is_ascii_digit()) {
                i += 1;
            }
            self.in_exec = true;
            return (TokenKind::ExecCommentOpen, i);
        }
        let end = self
            .src
            .get(start + 2..)
            .and_then(|rest| rest.find("*/"))
            .map_or(self.len(), |off| start + 2 + off + 2);
        (TokenKind::BlockComment, end)
    }

    /// `@name`, `@'name'`, `` @`name` ``, `@"name"` or `@@name`; a lone `@` (as in
    /// `'user'@'host'`) is an operator.
    fn variable(&self, start: usize) -> (TokenKind, usize) {
        if self.at(start + 1) == Some(b'@') {
            let mut i = start + 2;
            while self.at(i).is_some_and(is_ident_cont) {
                i += 1;
            }
            return if i > start + 2 {
                (TokenKind::Variable, i)
            } else {
                (TokenKind::Operator, start + 2)
            };
        }
        match self.at(start + 1) {
            Some(q @ (b'\'' | b'"')) => (
                TokenKind::Variable,
                self.quoted(start + 1, q, self.backslash_escapes),
            ),
            Some(b'`') => (TokenKind::Variable, self.quoted(start + 1, b'`', false)),
            Some(b) if is_ident_cont(b) || b == b'.' => {
                let mut i = start + 1;
                while self.at(i).is_some_and(|b| is_ident_cont(b) || b == b'.') {
                    i += 1;
                }
                (TokenKind::Variable, i)
            }
            _ => (TokenKind::Operator, start + 1),
        }
    }

    fn mysql_operator(&self, start: usize) -> usize {
        let mut i = start + 1;
        while let Some(b) = self.at(i) {
            let next = self.at(i + 1);
            let stop = !is_mysql_op_char(b)
                || (b == b'-' && next == Some(b'-') && self.dash_comment(i))
                || (b == b'/' && next == Some(b'*'))
                || (self.in_exec && b == b'*' && next == Some(b'/'));
            if stop {
                break;
            }
            i += 1;
        }
        i
    }

    /// A word, or a literal with a prefix: `x'..'` and `b'..'` (no escapes inside),
    /// `N'..'` and charset introducers such as `_utf8mb4'..'` (ordinary strings).
    fn mysql_word(&self, start: usize) -> (TokenKind, usize) {
        let mut i = start + 1;
        while self.at(i).is_some_and(is_ident_cont) {
            i += 1;
        }
        let word = self.src.get(start..i).unwrap_or("");
        match self.at(i) {
            Some(b'\'') if word.eq_ignore_ascii_case("x") || word.eq_ignore_ascii_case("b") => {
                (TokenKind::String, self.quoted(i, b'\'', false))
            }
            Some(q @ (b'\'' | b'"'))
                if (q == b'\'' && word.eq_ignore_ascii_case("n")) || word.starts_with('_') =>
            {
                (TokenKind::String, self.quoted(i, q, self.backslash_escapes))
            }
            _ => (TokenKind::Word, i),
        }
    }
}

/// Operator characters; `` ` ``, `?`, `@` and `#` start other tokens in MySQL.
fn is_mysql_op_char(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-' | b'*' | b'/' | b'<' | b'>' | b'=' | b'~' | b'!' | b'%' | b'^' | b'&' | b'|'
    )
}
