use super::lexer::{Dialect, Lexer};
use super::{classify, ClassifyOptions};
use ::proptest::prelude::*;

/// Fragments that exercise every lexer state, so random texts hit the tricky paths.
fn sql_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("SELECT ".to_string()),
        Just("WITH x AS (".to_string()),
        Just("INSERT ".to_string()),
        Just("FOR UPDATE ".to_string()),
        Just("INTO TEMP ".to_string()),
        Just("nextval(".to_string()),
        Just("EXPLAIN (ANALYZE) ".to_string()),
        Just("BEGIN ".to_string()),
        Just("SET ".to_string()),
        Just("COPY ".to_string()),
        Just("'".to_string()),
        Just("E'\\".to_string()),
        Just("\"".to_string()),
        Just("$$".to_string()),
        Just("$a$".to_string()),
        Just("$1".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("--".to_string()),
        Just("\n".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(";".to_string()),
        Just("U&".to_string()),
        "[a-z ]{0,6}",
        any::<String>(),
    ]
}

fn sql_text() -> impl Strategy<Value = String> {
    prop::collection::vec(sql_fragment(), 0..24).prop_map(|v| v.concat())
}

fn check_spans(sql: &str) -> Result<(), TestCaseError> {
    let got = classify(sql, &ClassifyOptions::default());
    for s in &got.statements {
        prop_assert!(s.span.start < s.span.end && s.span.end <= sql.len());
        prop_assert!(sql.is_char_boundary(s.span.start) && sql.is_char_boundary(s.span.end));
    }
    let mut last = 0;
    for tok in Lexer::new(sql, Dialect::Postgres) {
        prop_assert!(tok.start >= last && tok.end() > tok.start && tok.end() <= sql.len());
        last = tok.end();
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(sql in any::<String>()) {
        check_spans(&sql)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_spans(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn sql_like_texts_never_panic(sql in sql_text()) {
        check_spans(&sql)?;
    }

    #[test]
    fn classification_is_deterministic(sql in sql_text()) {
        let opts = ClassifyOptions::default();
        prop_assert_eq!(classify(&sql, &opts), classify(&sql, &opts));
    }

    #[test]
    fn leading_comment_keeps_intent(sql in sql_text(), body in "[^*/]{0,20}") {
        let opts = ClassifyOptions::default();
        let plain = classify(&sql, &opts);
        let commented = classify(&format!("/*{body}*/{sql}"), &opts);
        prop_assert_eq!(plain.intent, commented.intent);
        prop_assert_eq!(plain.statements.len(), commented.statements.len());
    }
}
