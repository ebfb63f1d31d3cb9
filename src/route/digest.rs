//! Statement digests: the text with literals replaced by `?`, comments dropped and spaces
//! collapsed, so that `SELECT * FROM t WHERE id = 7` and `select *  from t where id=8` are
//! counted together (the admin console's SHOW QUERIES). One pass over the bytes, no lexer:
//! it runs for every statement.

/// Longest digest kept; longer texts are cut (the cut is part of the digest).
pub const MAX_DIGEST: usize = 1024;

/// The normalised text of `sql`; `backslash_escapes` for MySQL string literals.
pub fn normalize(sql: &str, backslash_escapes: bool) -> String {
    let mut out = Vec::with_capacity(sql.len().min(MAX_DIGEST));
    walk(sql, backslash_escapes, |bytes| out.extend_from_slice(bytes));
    // Only whole UTF-8 sequences are emitted.
    String::from_utf8(out).unwrap_or_default()
}

/// FNV-1a of the normalised text, computed without building it (0 and 1 never come out).
pub fn hash(sql: &str, backslash_escapes: bool) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    walk(sql, backslash_escapes, |bytes| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    });
    h.max(2)
}

/// Feeds the normalised text of `sql` to `emit`, piece by piece, at most MAX_DIGEST bytes.
fn walk(sql: &str, backslash_escapes: bool, mut emit: impl FnMut(&[u8])) {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut written = 0usize;
    // Last byte emitted (0: none yet), and a space is pending.
    let mut last = 0u8;
    let mut space = false;
    let mut put = |bytes: &[u8], space: &mut bool, last: &mut u8, written: &mut usize| {
        if *space && *last != 0 {
            emit(b" ");
            *written += 1;
        }
        *space = false;
        emit(bytes);
        *written += bytes.len();
        if let Some(l) = bytes.last() {
            *last = *l;
        }
    };
    while i < b.len() && written < MAX_DIGEST {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                space = true;
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                space = true;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(b.len());
                space = true;
            }
            b'\'' | b'"' if c == b'\'' || backslash_escapes => {
                i += 1;
                while i < b.len() {
                    if backslash_escapes && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == c {
                        if b.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                put(b"?", &mut space, &mut last, &mut written);
            }
            b'0'..=b'9' if !is_word(last) || space => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
                put(b"?", &mut space, &mut last, &mut written);
            }
            _ => {
                // Multi-byte characters are copied whole.
                let len = utf8_len(c);
                let end = (i + len).min(b.len());
                if len == 1 {
                    put(
                        &[c.to_ascii_lowercase()],
                        &mut space,
                        &mut last,
                        &mut written,
                    );
                } else if let Some(s) = sql.get(i..end) {
                    put(s.as_bytes(), &mut space, &mut last, &mut written);
                }
                i = end;
            }
        }
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn literals_comments_and_spaces_fold_together() {
        let a = normalize("SELECT * FROM t WHERE id = 7 AND name = 'bob'", false);
        let b = normalize(
            "select *  from t\n where id=8 and name='it''s' -- note",
            false,
        );
        assert_eq!(a, "select * from t where id = ? and name = ?");
        assert_eq!(
            normalize("select * from t where id=8", false),
            "select * from t where id=?"
        );
        assert_ne!(a, b, "spacing around = is kept as written");
        assert_eq!(
            normalize(
                "SELECT /* hint */ abalance FROM pgbench_accounts WHERE aid = 4711;",
                false
            ),
            "select abalance from pgbench_accounts where aid = ?;"
        );
        // Identifiers with digits, placeholders and MySQL escapes.
        assert_eq!(
            normalize("SELECT c1 FROM t2 WHERE x = $1", false),
            "select c1 from t2 where x = $1"
        );
        assert_eq!(
            normalize(r#"SELECT "a\"b", 'x\'y' FROM t"#, true),
            "select ?, ? from t"
        );
        assert_eq!(normalize("SELECT 1.5e3, -2", false), "select ?, -?");
        assert_eq!(
            normalize("SELECT 'é', café FROM t", false),
            "select ?, café from t"
        );
        // Unterminated input and long texts stay bounded.
        assert_eq!(normalize("SELECT 'open", false), "select ?");
        assert!(normalize(&"x ".repeat(5000), false).len() <= super::MAX_DIGEST + 4);
        // The hash is the text's, without building it.
        let (x, y) = ("SELECT 1 FROM t", "select 2  FROM t");
        assert_eq!(super::hash(x, false), super::hash(y, false));
        assert_ne!(super::hash(x, false), super::hash("SELECT 1 FROM u", false));
    }
}
