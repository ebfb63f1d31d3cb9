//! SQL lexer: splits text into tokens so the classifier never sees the inside of literals or comments.

mod mysql;

/// SQL dialect whose quoting and comment rules the lexer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// PostgreSQL, assuming `standard_conforming_strings = on` (the default since 9.1).
    #[default]
    Postgres,
    /// MySQL and MariaDB with the default sql_mode: backslash escapes on, ANSI_QUOTES off.
    MySql,
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Keyword or unquoted identifier; compare case-insensitively.
    Word,
    /// `"quoted identifier"`, `U&"..."` or MySQL `` `name` ``; never a keyword.
    QuotedIdent,
    /// String literal of any flavour, dollar-quoted bodies included.
    String,
    /// Numeric literal.
    Number,
    /// Positional parameter such as `$1`.
    Param,
    /// Run of operator characters such as `=`, `<>` or `||`.
    Operator,
    /// One of `( ) , ; . [ ] :`.
    Punct,
    /// `-- ...` up to the end of the line (MySQL: also `# ...`).
    LineComment,
    /// `/* ... */`, nested comments included (MySQL: not nested).
    BlockComment,
    /// Any other single character.
    Other,
    /// MySQL `@name`, `@'name'` or `@@name` (user or system variable; `.scope` parts follow as tokens).
    Variable,
    /// MySQL `/*!`, `/*!50100` or MariaDB `/*M!`: the comment's content is SQL that runs.
    ExecCommentOpen,
    /// The `*/` closing an executable comment.
    ExecCommentClose,
}

/// One token and the exact source text it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// What the token is.
    pub kind: TokenKind,
    /// Source text of the token, quotes and delimiters included.
    pub text: &'a str,
    /// Byte offset of the token in the lexed text.
    pub start: usize,
}

impl Token<'_> {
    /// Byte offset just past the token.
    pub fn end(&self) -> usize {
        self.start + self.text.len()
    }

    /// True for line and block comments.
    pub fn is_comment(&self) -> bool {
        matches!(self.kind, TokenKind::LineComment | TokenKind::BlockComment)
    }

    /// True if this is the unquoted word `kw` (ASCII case-insensitive).
    pub fn is_word(&self, kw: &str) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(kw)
    }

    /// True if this is an unquoted word equal to one of `kws`.
    pub fn is_any_word(&self, kws: &[&str]) -> bool {
        kws.iter().any(|kw| self.is_word(kw))
    }

    /// True if this is the punctuation character `c`.
    pub fn is_punct(&self, c: u8) -> bool {
        self.kind == TokenKind::Punct && self.text.as_bytes() == [c]
    }

    /// True for anything that can name an object: a word or a quoted identifier.
    pub fn is_ident(&self) -> bool {
        matches!(self.kind, TokenKind::Word | TokenKind::QuotedIdent)
    }

    /// Name as the server would look it up, lowercased; quotes removed and `""` unescaped.
    ///
    /// Quoted names are lowercased too because every caller compares against
    /// case-insensitive names (GUCs) or wants the conservative match (functions).
    pub fn ident_name(&self) -> Option<String> {
        match self.kind {
            TokenKind::Word => Some(self.text.to_ascii_lowercase()),
            TokenKind::QuotedIdent if self.text.starts_with('`') => {
                let inner = self.text.strip_prefix('`').unwrap_or(self.text);
                let inner = inner.strip_suffix('`').unwrap_or(inner);
                Some(inner.replace("``", "`").to_ascii_lowercase())
            }
            TokenKind::QuotedIdent => {
                let inner = self.text.strip_prefix("U&").unwrap_or(self.text);
                let inner = inner.strip_prefix("u&").unwrap_or(inner);
                let inner = inner.strip_prefix('"').unwrap_or(inner);
                let inner = inner.strip_suffix('"').unwrap_or(inner);
                Some(inner.replace("\"\"", "\"").to_ascii_lowercase())
            }
            _ => None,
        }
    }
}

/// Iterator over the tokens of a text, comments included, whitespace skipped.
///
/// Never panics and always advances: malformed or unterminated input just
/// yields a token running to the end of the text.
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    dialect: Dialect,
    /// MySQL: backslash escapes in string literals (off under sql_mode NO_BACKSLASH_ESCAPES).
    backslash_escapes: bool,
    /// MySQL: inside an executable comment, so `*/` closes it.
    in_exec: bool,
}

impl<'a> Lexer<'a> {
    /// Starts lexing `src` with the rules of `dialect`.
    pub fn new(src: &'a str, dialect: Dialect) -> Self {
        Lexer {
            src,
            pos: 0,
            dialect,
            backslash_escapes: dialect == Dialect::MySql,
            in_exec: false,
        }
    }

    /// Lexes MySQL string literals as sql_mode NO_BACKSLASH_ESCAPES does: a backslash is plain.
    pub fn without_backslash_escapes(mut self) -> Self {
        self.backslash_escapes = false;
        self
    }

    /// Dialect this lexer follows.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.src.as_bytes().get(i).copied()
    }

    fn len(&self) -> usize {
        self.src.len()
    }

    fn line_comment(&self, start: usize) -> usize {
        let mut i = start + 2;
        while let Some(b) = self.at(i) {
            if b == b'\n' || b == b'\r' {
                return i;
            }
            i += 1;
        }
        self.len()
    }

    fn block_comment(&self, start: usize) -> usize {
        let mut depth = 1usize;
        let mut i = start + 2;
        while let Some(b) = self.at(i) {
            let next = self.at(i + 1);
            if b == b'/' && next == Some(b'*') {
                depth += 1;
                i += 2;
            } else if b == b'*' && next == Some(b'/') {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            } else {
                i += 1;
            }
        }
        self.len()
    }

    /// Scans a literal opened by the quote at `open`; a doubled quote is an escaped quote.
    fn quoted(&self, open: usize, quote: u8, backslash_escapes: bool) -> usize {
        let mut i = open + 1;
        // Byte-wise scanning is safe on UTF-8: the bytes we look for are ASCII
        // and never occur inside a multi-byte character.
        while let Some(b) = self.at(i) {
            if backslash_escapes && b == b'\\' {
                i += 2;
            } else if b == quote {
                if self.at(i + 1) == Some(quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            } else {
                i += 1;
            }
        }
        self.len()
    }

    fn dollar(&self, start: usize) -> (TokenKind, usize) {
        match self.at(start + 1) {
            Some(d) if d.is_ascii_digit() => {
                let mut i = start + 1;
                while self.at(i).is_some_and(|b| b.is_ascii_digit()) {
                    i += 1;
                }
                (TokenKind::Param, i)
            }
            Some(b'$') => (TokenKind::String, self.dollar_body(start, start + 1)),
            Some(c) if is_ident_start(c) => {
                let mut i = start + 1;
                while self
                    .at(i)
                    .is_some_and(|b| is_ident_start(b) || b.is_ascii_digit())
                {
                    i += 1;
                }
                if self.at(i) == Some(b'$') {
                    (TokenKind::String, self.dollar_body(start, i))
                } else {
                    (TokenKind::Other, start + 1)
                }
            }
            _ => (TokenKind::Other, start + 1),
        }
    }

    /// Finds the end of a dollar-quoted string whose opening delimiter spans `start..=close`.
    fn dollar_body(&self, start: usize, close: usize) -> usize {
        let body = close + 1;
        let (Some(delim), Some(rest)) = (self.src.get(start..body), self.src.get(body..)) else {
            return self.len();
        };
        match rest.find(delim) {
            Some(off) => body + off + delim.len(),
            None => self.len(),
        }
    }

    fn number(&self, start: usize) -> usize {
        let digits = |mut i: usize| {
            while self.at(i).is_some_and(|b| b.is_ascii_digit() || b == b'_') {
                i += 1;
            }
            i
        };
        let mut i = digits(start);
        if self.at(i) == Some(b'.') && self.at(i + 1) != Some(b'.') {
            i = digits(i + 1);
        }
        // Letters are not swallowed: PostgreSQL before 15 reads `1for update`
        // as `1 for update`, and missing that lock clause would be unsafe.
        if matches!(self.at(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(self.at(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if self.at(j).is_some_and(|b| b.is_ascii_digit()) {
                i = digits(j);
            }
        }
        i
    }

    fn operator(&self, start: usize) -> usize {
        let mut i = start + 1;
        while let Some(b) = self.at(i) {
            let next = self.at(i + 1);
            let comment = (b == b'-' && next == Some(b'-')) || (b == b'/' && next == Some(b'*'));
            if !is_op_char(b) || comment {
                break;
            }
            i += 1;
        }
        i
    }

    fn word(&self, start: usize) -> (TokenKind, usize) {
        let first = self.at(start).map(|b| b.to_ascii_lowercase());
        match (first, self.at(start + 1), self.at(start + 2)) {
            (Some(b'e'), Some(b'\''), _) => {
                (TokenKind::String, self.quoted(start + 1, b'\'', true))
            }
            (Some(b'b' | b'x' | b'n'), Some(b'\''), _) => {
                (TokenKind::String, self.quoted(start + 1, b'\'', false))
            }
            (Some(b'u'), Some(b'&'), Some(b'\'')) => {
                (TokenKind::String, self.quoted(start + 2, b'\'', false))
            }
            (Some(b'u'), Some(b'&'), Some(b'"')) => {
                (TokenKind::QuotedIdent, self.quoted(start + 2, b'"', false))
            }
            _ => {
                let mut i = start + 1;
                while self.at(i).is_some_and(is_ident_cont) {
                    i += 1;
                }
                (TokenKind::Word, i)
            }
        }
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let mut start = self.pos;
        while self.at(start).is_some_and(is_space) {
            start += 1;
        }
        let Some(c) = self.at(start) else {
            self.pos = self.len();
            return None;
        };
        let next = self.at(start + 1);
        let (kind, end) = match c {
            _ if self.dialect == Dialect::MySql => self.mysql_token(start, c),
            b'-' if next == Some(b'-') => (TokenKind::LineComment, self.line_comment(start)),
            b'/' if next == Some(b'*') => (TokenKind::BlockComment, self.block_comment(start)),
            b'\'' => (TokenKind::String, self.quoted(start, b'\'', false)),
            b'"' => (TokenKind::QuotedIdent, self.quoted(start, b'"', false)),
            b'$' => self.dollar(start),
            b'0'..=b'9' => (TokenKind::Number, self.number(start)),
            b'.' if next.is_some_and(|n| n.is_ascii_digit()) => {
                (TokenKind::Number, self.number(start))
            }
            b'(' | b')' | b',' | b';' | b'.' | b'[' | b']' | b':' => (TokenKind::Punct, start + 1),
            c if is_op_char(c) => (TokenKind::Operator, self.operator(start)),
            c if is_ident_start(c) => self.word(start),
            _ => (TokenKind::Other, start + 1),
        };
        // Every branch consumes at least one byte and ends on an ASCII byte or
        // at the end of the text, so `end` is a char boundary past `start`.
        let end = end.max(start + 1).min(self.len());
        self.pos = end;
        let text = self.src.get(start..end).unwrap_or("");
        Some(Token { kind, text, start })
    }
}

/// Decides where a top-level statement ends, mirroring psql's scanner: a ';' ends it unless
/// inside parentheses or inside the `BEGIN ATOMIC ... END` body of CREATE FUNCTION/PROCEDURE.
///
/// Feed it every non-comment token; start a fresh one for each statement.
#[derive(Debug, Clone, Default)]
pub struct Splitter {
    parens: usize,
    begins: usize,
}

impl Splitter {
    /// True if `tok` is the ';' ending the statement whose earlier tokens are `current`.
    pub fn ends_statement(&mut self, tok: &Token<'_>, current: &[Token<'_>]) -> bool {
        if tok.is_punct(b'(') {
            self.parens += 1;
        } else if tok.is_punct(b')') {
            self.parens = self.parens.saturating_sub(1);
        } else if tok.is_punct(b';') {
            return self.parens == 0 && self.begins == 0;
        } else if tok.kind == TokenKind::Word && self.parens == 0 && is_routine_head(current) {
            if tok.is_word("begin") {
                self.begins += 1;
            } else if tok.is_word("case") && self.begins > 0 {
                // CASE also closes with END; psql counts it only inside a body.
                self.begins += 1;
            } else if tok.is_word("end") {
                self.begins = self.begins.saturating_sub(1);
            }
        }
        false
    }
}

/// `CREATE [OR REPLACE] {FUNCTION | PROCEDURE}`: the only statements whose body may hold ';'.
fn is_routine_head(toks: &[Token<'_>]) -> bool {
    let word = |i: usize, kws: &[&str]| toks.get(i).is_some_and(|t| t.is_any_word(kws));
    let routine = ["function", "procedure"];
    word(0, &["create"])
        && (word(1, &routine) || (word(1, &["or"]) && word(2, &["replace"]) && word(3, &routine)))
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// Non-ASCII bytes count as identifier characters, as in PostgreSQL's scanner.
fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

fn is_op_char(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'#'
            | b'%'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
    )
}
