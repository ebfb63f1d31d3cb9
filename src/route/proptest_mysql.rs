use super::lexer::{Dialect, Lexer};
use super::{classify_mysql, ClassifyOptions};
use ::proptest::prelude::*;

/// Fragments that exercise every MySQL lexer state, so random texts hit the tricky paths.
fn sql_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("SELECT ".to_string()),
        Just("WITH x AS (".to_string()),
        Just("INSERT ".to_string()),
        Just("FOR UPDATE ".to_string()),
        Just("INTO @v ".to_string()),
        Just("GET_LOCK(".to_string()),
        Just("EXPLAIN ANALYZE ".to_string()),
        Just("START TRANSACTION READ ONLY ".to_string()),
        Just("SET ".to_string()),
        Just("SET STATEMENT a=1 FOR ".to_string()),
        Just("CREATE PROCEDURE p() BEGIN ".to_string()),
        Just("@x := ".to_string()),
        Just("@@session.".to_string()),
        Just("'".to_string()),
        Just("\\".to_string()),
        Just("\"".to_string()),
        Just("`".to_string()),
        Just("/*!".to_string()),
        Just("/*!50100 ".to_string()),
        Just("/*M!".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("-- ".to_string()),
        Just("--".to_string()),
        Just("#".to_string()),
        Just("\n".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(";".to_string()),
        Just("x'".to_string()),
        Just("_utf8mb4'".to_string()),
        Just("0x".to_string()),
        "[a-z ]{0,6}",
        any::<String>(),
    ]
}

fn sql_text() -> impl Strategy<Value = String> {
    prop::collection::vec(sql_fragment(), 0..24).prop_map(|v| v.concat())
}

fn check_spans(sql: &str) -> Result<(), TestCaseError> {
    let got = classify_mysql(sql, &ClassifyOptions::default());
    for s in &got.statements {
        prop_assert!(s.span.start < s.span.end && s.span.end <= sql.len());
        prop_assert!(sql.is_char_boundary(s.span.start) && sql.is_char_boundary(s.span.end));
    }
    for lexer in [
        Lexer::new(sql, Dialect::MySql),
        Lexer::new(sql, Dialect::MySql).without_backslash_escapes(),
    ] {
        // Tokens plus the whitespace between them cover the input exactly.
        let mut last = 0;
        for tok in lexer {
            let gap = sql.get(last..tok.start).unwrap_or("x");
            prop_assert!(gap.bytes().all(|b| b.is_ascii_whitespace() || b == b'\x0b'));
            prop_assert!(tok.end() > tok.start && tok.end() <= sql.len());
            prop_assert_eq!(sql.get(tok.start..tok.end()), Some(tok.text));
            last = tok.end();
        }
        let tail = sql.get(last..).unwrap_or("x");
        prop_assert!(tail
            .bytes()
            .all(|b| b.is_ascii_whitespace() || b == b'\x0b'));
    }
    Ok(())
}

proptest! {
    #[test]
    fn mysql_arbitrary_strings_never_panic(sql in any::<String>()) {
        check_spans(&sql)?;
    }

    #[test]
    fn mysql_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_spans(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn mysql_sql_like_texts_never_panic(sql in sql_text()) {
        check_spans(&sql)?;
    }

    #[test]
    fn mysql_classification_is_deterministic(sql in sql_text()) {
        let opts = ClassifyOptions::default();
        prop_assert_eq!(classify_mysql(&sql, &opts), classify_mysql(&sql, &opts));
    }

    #[test]
    fn mysql_leading_comment_keeps_intent(sql in sql_text(), body in "[^*/!]{0,20}") {
        let opts = ClassifyOptions::default();
        let plain = classify_mysql(&sql, &opts);
        let commented = classify_mysql(&format!("/*{body}*/ {sql}"), &opts);
        prop_assert_eq!(plain.intent, commented.intent);
        prop_assert_eq!(plain.statements.len(), commented.statements.len());
    }
}
