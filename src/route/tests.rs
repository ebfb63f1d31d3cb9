use super::lexer::{Dialect, Lexer, TokenKind};
use super::*;
use TokenKind::{
    BlockComment, LineComment, Number, Operator, Other, Param, Punct, QuotedIdent, Word,
};

fn c(sql: &str) -> Classification {
    classify(sql, &ClassifyOptions::default())
}

#[track_caller]
fn reads(reason: Reason, sqls: &[&str]) {
    for sql in sqls {
        let got = c(sql);
        assert_eq!((got.intent, got.reason), (Intent::Read, reason), "{sql}");
    }
}

#[track_caller]
fn writes(reason: Reason, sqls: &[&str]) {
    for sql in sqls {
        let got = c(sql);
        assert_eq!((got.intent, got.reason), (Intent::Write, reason), "{sql}");
    }
}

#[track_caller]
fn effects(cases: &[(&str, Effect)]) {
    for (sql, effect) in cases {
        let got: Vec<_> = c(sql).effects().cloned().collect();
        assert_eq!(got, vec![effect.clone()], "{sql}");
    }
}

#[track_caller]
fn pins(why: Option<&str>, sqls: &[&str]) {
    for sql in sqls {
        assert_eq!(c(sql).pins(), why, "{sql}");
    }
}

fn set(name: &str) -> Effect {
    Effect::Set { name: name.into() }
}

fn reset(name: &str) -> Effect {
    Effect::Reset { name: name.into() }
}

fn begin(read_only: bool) -> Effect {
    Effect::Begin { read_only }
}

fn lex(sql: &str) -> Vec<(TokenKind, &str)> {
    Lexer::new(sql, Dialect::Postgres)
        .map(|t| (t.kind, t.text))
        .collect()
}

// ---- lexer ----

#[test]
fn lexer_basic_tokens() {
    let want = [
        (Word, "SELECT"),
        (Word, "a"),
        (Punct, "."),
        (Word, "b"),
        (Punct, ","),
        (Param, "$1"),
        (Punct, ":"),
        (Punct, ":"),
        (Word, "int"),
        (Word, "WHERE"),
        (Word, "x"),
        (Operator, "<>"),
        (Number, "1.5e3"),
        (Punct, ";"),
    ];
    assert_eq!(lex("SELECT a.b, $1::int WHERE x<>1.5e3;"), want);
}

#[test]
fn lexer_string_flavours() {
    let s = TokenKind::String;
    assert_eq!(lex("'it''s'"), [(s, "'it''s'")]);
    assert_eq!(lex(r"E'a\'b'"), [(s, r"E'a\'b'")]);
    assert_eq!(lex(r"e'a\\' x"), [(s, r"e'a\\'"), (Word, "x")]);
    assert_eq!(
        lex("B'101' X'ff' N'n'"),
        [(s, "B'101'"), (s, "X'ff'"), (s, "N'n'")]
    );
    assert_eq!(lex("U&'d\\0061t'"), [(s, "U&'d\\0061t'")]);
    assert_eq!(lex("U&\"d\"\"x\""), [(QuotedIdent, "U&\"d\"\"x\"")]);
    assert_eq!(lex("\"a\"\"b\""), [(QuotedIdent, "\"a\"\"b\"")]);
    assert_eq!(lex("somee'x'"), [(Word, "somee"), (s, "'x'")]);
}

#[test]
fn lexer_standard_string_backslash_is_plain() {
    assert_eq!(lex(r"'a\' x"), [(TokenKind::String, r"'a\'"), (Word, "x")]);
}

#[test]
fn lexer_dollar_quotes_and_params() {
    let s = TokenKind::String;
    assert_eq!(lex("$$a;b$$ x"), [(s, "$$a;b$$"), (Word, "x")]);
    assert_eq!(lex("$fn$ $$ $x$ $fn$"), [(s, "$fn$ $$ $x$ $fn$")]);
    assert_eq!(lex("$1$2"), [(Param, "$1"), (Param, "$2")]);
    assert_eq!(lex("a$$b"), [(Word, "a$$b")]);
    assert_eq!(lex("$x"), [(Other, "$"), (Word, "x")]);
}

#[test]
fn lexer_comments() {
    let want = [
        (BlockComment, "/* a /* b */ c */"),
        (Word, "x"),
        (LineComment, "-- y"),
        (Word, "z"),
    ];
    assert_eq!(lex("/* a /* b */ c */ x -- y\nz"), want);
    assert_eq!(lex("a--b"), [(Word, "a"), (LineComment, "--b")]);
    let want = [
        (Number, "1"),
        (Operator, "+"),
        (BlockComment, "/*c*/"),
        (Number, "2"),
    ];
    assert_eq!(lex("1+/*c*/2"), want);
}

#[test]
fn lexer_unterminated_runs_to_end() {
    for sql in [
        "'abc",
        "E'abc\\",
        "\"abc",
        "$$abc",
        "$t$abc$t",
        "/* a /* */",
        "U&'x",
        "-- x",
    ] {
        let toks: Vec<_> = Lexer::new(sql, Dialect::Postgres).collect();
        assert_eq!(toks.len(), 1, "{sql}");
        assert_eq!(toks.first().map(|t| t.end()), Some(sql.len()), "{sql}");
    }
}

#[test]
fn lexer_non_ascii_identifiers() {
    let want = [(Word, "SELECT"), (Word, "café"), (Punct, ","), (Word, "ü")];
    assert_eq!(lex("SELECT café, ü"), want);
}

#[test]
fn lexer_number_does_not_swallow_keyword() {
    assert_eq!(lex("1for"), [(Number, "1"), (Word, "for")]);
}

// ---- basic reads and writes ----

#[test]
fn empty_and_whitespace() {
    reads(Reason::Empty, &["", "   \n\t ", ";;", "-- only a comment"]);
    assert!(c("/* x */ ; ").statements.is_empty());
}

#[test]
fn simple_reads() {
    reads(
        Reason::Select,
        &[
            "SELECT 1",
            "select * from t where a = $1",
            "(SELECT 1) UNION (SELECT 2)",
            "((select 1))",
        ],
    );
    reads(Reason::Show, &["SHOW search_path"]);
    reads(Reason::Values, &["VALUES (1), (2)"]);
    reads(Reason::Table, &["TABLE t"]);
}

#[test]
fn simple_writes() {
    writes(
        Reason::Write,
        &[
            "INSERT INTO t VALUES (1)",
            "update t set a = 1",
            "DELETE FROM t",
            "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE",
            "TRUNCATE t",
            "CALL p()",
            "DO $$ BEGIN END $$",
            "LOCK TABLE t",
            "NOTIFY ch",
        ],
    );
}

#[test]
fn ddl_is_write() {
    writes(
        Reason::Ddl,
        &[
            "CREATE TABLE t (a int)",
            "ALTER TABLE t ADD b int",
            "DROP TABLE t",
            "GRANT SELECT ON t TO u",
            "REVOKE ALL ON t FROM u",
            "VACUUM t",
            "ANALYZE t",
            "CLUSTER t",
            "REINDEX TABLE t",
            "COMMENT ON TABLE t IS 'x'",
            "REFRESH MATERIALIZED VIEW v",
            "SECURITY LABEL ON TABLE t IS 'x'",
            "IMPORT FOREIGN SCHEMA s FROM SERVER f INTO l",
        ],
    );
}

#[test]
fn unknown_is_write() {
    writes(
        Reason::Unknown,
        &["FOO BAR", "42", "START", "(SHOW x)", "()", "\"select\" 1"],
    );
}

// ---- comments, literals, quoted identifiers ----

#[test]
fn comments_hide_keywords() {
    reads(
        Reason::Select,
        &[
            "SELECT 1 -- FOR UPDATE",
            "SELECT /* INSERT */ 1",
            "/* DELETE FROM t; */ SELECT 1",
            "SELECT 1 /* outer /* FOR UPDATE */ still; INSERT */",
            "SELECT 1 -- ; DELETE FROM t",
        ],
    );
    writes(Reason::ForUpdate, &["SELECT 1 /* a */ FOR /* b */ UPDATE"]);
}

#[test]
fn strings_hide_keywords_and_semicolons() {
    reads(
        Reason::Select,
        &[
            "SELECT 'a; DELETE FROM t; FOR UPDATE'",
            "SELECT 'it''s; insert into t'",
            "SELECT nextval FROM t WHERE x = 'nextval('",
        ],
    );
    assert_eq!(c("SELECT 'a; b'; ").statements.len(), 1);
}

#[test]
fn e_strings_with_escaped_quotes() {
    reads(Reason::Select, &[r"SELECT E'a\'; DELETE FROM t; \''"]);
    let got = c(r"SELECT E'\\'; DELETE FROM t");
    assert_eq!((got.intent, got.statements.len()), (Intent::Write, 2));
}

#[test]
fn dollar_quotes_hide_keywords() {
    reads(
        Reason::Select,
        &[
            "SELECT $$ ; DELETE FROM t; FOR UPDATE $$",
            "SELECT $body$ it's $$ ; insert $body$, 1",
        ],
    );
    let got = c("SELECT $a$ x $a$; INSERT INTO t VALUES ($$;$$)");
    assert_eq!(
        (got.intent, got.reason, got.statements.len()),
        (Intent::Write, Reason::Write, 2)
    );
}

#[test]
fn quoted_identifiers_are_not_keywords() {
    reads(
        Reason::Select,
        &[
            r#"SELECT "for", "update" FROM "insert""#,
            r#"SELECT * FROM t "for" WHERE "share" = 1"#,
            r#"SELECT 1 AS "into""#,
            r#"SELECT "nextval" FROM t"#,
        ],
    );
}

#[test]
fn parameters_are_not_dollar_quotes() {
    reads(Reason::Select, &["SELECT $1, $2 FROM t WHERE a = $1"]);
    let got = c("SELECT $1; DELETE FROM t WHERE id = $2");
    assert_eq!((got.intent, got.statements.len()), (Intent::Write, 2));
}

#[test]
fn unterminated_literal_at_end() {
    reads(
        Reason::Select,
        &[
            "SELECT 'abc",
            "SELECT $$ ; DELETE",
            "SELECT 1 /* ; DELETE FROM t",
            "SELECT \"abc",
        ],
    );
    writes(Reason::Write, &["DELETE FROM t WHERE a = 'x"]);
}

// ---- CTEs ----

#[test]
fn read_only_with() {
    reads(
        Reason::ReadOnlyWith,
        &[
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "WITH x(a) AS (SELECT 1), y AS MATERIALIZED (VALUES (2)) SELECT 1",
            "WITH x AS NOT MATERIALIZED (SELECT 1) (SELECT * FROM x)",
            "WITH update AS (SELECT 1) SELECT * FROM update",
        ],
    );
}

#[test]
fn with_recursive() {
    reads(
        Reason::ReadOnlyWith,
        &[
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) TABLE r",
            "WITH RECURSIVE t(id) AS (SELECT 1) SEARCH DEPTH FIRST BY id SET ord SELECT * FROM t",
        ],
    );
}

#[test]
fn data_modifying_cte() {
    writes(
        Reason::ModifyingCte,
        &[
            "WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x",
            "WITH a AS (SELECT 1), d AS (DELETE FROM t RETURNING id) TABLE d",
            "with u as (update t set a = 1 returning a) select 1",
            "WITH m AS (MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE) SELECT 1",
            "WITH x AS (WITH y AS (DELETE FROM t RETURNING 1) SELECT 1) SELECT 1",
        ],
    );
    writes(
        Reason::Write,
        &["WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"],
    );
    writes(
        Reason::Unknown,
        &["WITH x AS (SELECT 1)", "WITH x AS (SHOW y) SELECT 1"],
    );
}

// ---- SELECT INTO ----

#[test]
fn select_into() {
    writes(
        Reason::SelectInto,
        &[
            "SELECT * INTO newt FROM t",
            "WITH x AS (SELECT 1) SELECT * INTO newt FROM x",
            "SELECT * INTO TEMP newt FROM t",
        ],
    );
    pins(
        None,
        &["SELECT * INTO newt FROM t", "INSERT INTO temp VALUES (1)"],
    );
}

#[test]
fn select_into_temp_pins() {
    let why = Some("temporary table");
    pins(
        why,
        &[
            "SELECT * INTO TEMP newt FROM t",
            "select 1 into temporary table x",
            "SELECT 1 INTO LOCAL TEMP x",
            "SELECT 1 INTO pg_temp.x",
        ],
    );
}

// ---- row locks ----

#[test]
fn lock_clauses() {
    writes(
        Reason::ForUpdate,
        &[
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t FOR NO KEY UPDATE",
            "SELECT * FROM t FOR SHARE",
            "SELECT * FROM t FOR KEY SHARE",
            "select * from t for update skip locked",
            "select * from t for no key update of t nowait",
            "SELECT 1 FROM t WHERE id = 1for update",
        ],
    );
}

#[test]
fn lock_clause_in_subquery() {
    writes(
        Reason::ForUpdate,
        &[
            "SELECT * FROM (SELECT * FROM t FOR UPDATE) s",
            "WITH x AS (SELECT * FROM t FOR KEY SHARE) SELECT * FROM x",
            "(SELECT 1 FROM t for share)",
        ],
    );
}

#[test]
fn for_without_lock_stays_read() {
    reads(
        Reason::Select,
        &[
            "SELECT substring('abc' FROM 1 FOR 2)",
            "SELECT 'FOR UPDATE'",
            "SELECT * FROM t FOR READ ONLY",
        ],
    );
}

// ---- side-effect functions ----

#[test]
fn side_effect_functions() {
    writes(
        Reason::SideEffectFunction,
        &[
            "SELECT nextval('s')",
            "SELECT pg_catalog.setval('s', 1)",
            "SELECT NEXTVAL ('s')",
            "SELECT currval('s')",
            "SELECT \"nextval\"('s')",
            "VALUES (nextval('s'))",
            "SELECT * FROM t WHERE id IN (SELECT lastval())",
            "SELECT pg_notify('c', 'x')",
            "SELECT pg_current_wal_lsn()",
        ],
    );
}

#[test]
fn column_named_like_function_stays_read() {
    reads(
        Reason::Select,
        &["SELECT nextval FROM t", "SELECT t.nextval, setval FROM t"],
    );
}

#[test]
fn advisory_locks() {
    writes(
        Reason::SideEffectFunction,
        &[
            "SELECT pg_advisory_lock(1)",
            "SELECT pg_advisory_xact_lock(1)",
        ],
    );
    let session = Some("session advisory lock");
    pins(
        session,
        &[
            "SELECT pg_advisory_lock(1)",
            "SELECT pg_try_advisory_lock_shared(1, 2)",
        ],
    );
    pins(
        None,
        &[
            "SELECT pg_advisory_xact_lock(1)",
            "SELECT pg_advisory_unlock(1)",
        ],
    );
}

#[test]
fn set_config_pins() {
    writes(
        Reason::SideEffectFunction,
        &["SELECT set_config('a.b', 'c', false)"],
    );
    pins(
        Some("set_config"),
        &["SELECT set_config('a.b', 'c', false)"],
    );
}

#[test]
fn pins_inside_writes() {
    let session = Some("session advisory lock");
    pins(
        session,
        &[
            "INSERT INTO t SELECT pg_advisory_lock(1)",
            "DECLARE c CURSOR FOR SELECT pg_advisory_lock(1)",
            "CREATE TABLE x AS SELECT pg_advisory_lock(1)",
        ],
    );
}

#[test]
fn function_definitions_are_not_calls() {
    pins(
        None,
        &[
            "DROP FUNCTION set_config(text, text, bool)",
            "CREATE FUNCTION public.pg_advisory_lock(int) RETURNS int AS 'x' LANGUAGE sql",
            "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT pg_advisory_lock(1); END",
        ],
    );
}

#[test]
fn configured_side_effect_function() {
    let opts = ClassifyOptions {
        side_effect_functions: vec!["audit_touch".into(), "app.bump".into()],
    };
    let got = classify("SELECT audit_touch(1)", &opts);
    assert_eq!(
        (got.intent, got.reason),
        (Intent::Write, Reason::SideEffectFunction)
    );
    assert_eq!(classify("SELECT app.BUMP(1)", &opts).intent, Intent::Write);
    assert_eq!(
        classify("SELECT audit_touch FROM t", &opts).intent,
        Intent::Read
    );
    reads(Reason::Select, &["SELECT audit_touch(1)"]);
}

// ---- transactions ----

#[test]
fn begin_variants() {
    writes(Reason::Transaction, &["BEGIN", "BEGIN READ WRITE"]);
    reads(Reason::Transaction, &["BEGIN READ ONLY"]);
    effects(&[
        ("BEGIN", begin(false)),
        ("begin work", begin(false)),
        ("BEGIN TRANSACTION", begin(false)),
        ("BEGIN READ ONLY", begin(true)),
        ("BEGIN READ WRITE", begin(false)),
        (
            "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            begin(true),
        ),
        (
            "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            begin(false),
        ),
        ("BEGIN ISOLATION LEVEL READ COMMITTED", begin(false)),
    ]);
}

#[test]
fn begin_serializable_read_only_needs_primary() {
    let sql = "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY";
    writes(Reason::Transaction, &[sql]);
    effects(&[(sql, begin(false))]);
}

#[test]
fn commit_and_rollback() {
    reads(Reason::Transaction, &["COMMIT", "ROLLBACK"]);
    effects(&[
        ("COMMIT", Effect::Commit),
        ("end", Effect::Commit),
        ("COMMIT AND CHAIN", Effect::Commit),
        ("ROLLBACK", Effect::Rollback),
        ("abort work", Effect::Rollback),
    ]);
}

#[test]
fn savepoints() {
    let cases = [
        "ROLLBACK TO SAVEPOINT a",
        "ROLLBACK TO a",
        "rollback work to savepoint a",
        "SAVEPOINT a",
        "RELEASE SAVEPOINT a",
        "RELEASE a",
    ];
    for sql in cases {
        reads(Reason::Transaction, &[sql]);
        effects(&[(sql, Effect::None)]);
    }
}

#[test]
fn two_phase_commit() {
    for sql in [
        "PREPARE TRANSACTION 'x'",
        "COMMIT PREPARED 'x'",
        "ROLLBACK PREPARED 'x'",
    ] {
        writes(Reason::TwoPhase, &[sql]);
        effects(&[(sql, Effect::None)]);
    }
}

// ---- session state ----

#[test]
fn set_session_settings() {
    reads(Reason::Set, &["SET search_path TO a, b"]);
    effects(&[
        ("SET search_path TO a, b", set("search_path")),
        (
            "SET SESSION statement_timeout = 5",
            set("statement_timeout"),
        ),
        ("set work_mem='64MB'", set("work_mem")),
        ("SET x =-1", set("x")),
        ("SET \"Search_Path\" TO x", set("search_path")),
        ("SET myapp.user_id = 5", set("myapp.user_id")),
        ("SET TIME ZONE 'UTC'", set("timezone")),
        ("SET NAMES 'UTF8'", set("client_encoding")),
        ("SET SCHEMA 'app'", set("search_path")),
        ("SET ROLE admin", set("role")),
        (
            "SET SESSION AUTHORIZATION bob",
            set("session_authorization"),
        ),
        ("SET datestyle FROM CURRENT", set("datestyle")),
    ]);
}

#[test]
fn set_local_variants() {
    let cases = [
        "SET LOCAL work_mem = '1MB'",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET CONSTRAINTS ALL DEFERRED",
        "SET LOCAL ROLE x",
    ];
    for sql in cases {
        reads(Reason::Set, &[sql]);
        effects(&[(sql, Effect::SetLocal)]);
    }
}

#[test]
fn set_session_characteristics() {
    let sql = "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY";
    effects(&[(sql, set("default_transaction_read_only"))]);
    let sql = "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE";
    pins(Some("session characteristics"), &[sql]);
}

#[test]
fn malformed_set_is_unknown() {
    writes(Reason::Unknown, &["SET", "SET x", "RESET"]);
}

#[test]
fn reset_and_discard() {
    reads(Reason::Set, &["RESET search_path", "DISCARD ALL"]);
    effects(&[
        ("RESET search_path", reset("search_path")),
        ("RESET TIME ZONE", reset("timezone")),
        (
            "RESET SESSION AUTHORIZATION",
            reset("session_authorization"),
        ),
        ("reset all", Effect::ResetAll),
        ("DISCARD ALL", Effect::Discard),
        ("DISCARD TEMP", Effect::Discard),
    ]);
}

#[test]
fn listen_pins_unlisten_does_not() {
    writes(Reason::Pinned, &["LISTEN ch"]);
    writes(Reason::Session, &["UNLISTEN *"]);
    pins(Some("listen"), &["LISTEN ch"]);
    pins(None, &["UNLISTEN ch"]);
}

#[test]
fn temp_tables_pin() {
    let cases = [
        "CREATE TEMP TABLE x (a int)",
        "CREATE TEMPORARY TABLE x AS SELECT 1",
        "create local temp table x (a int)",
        "CREATE GLOBAL TEMPORARY TABLE x (a int)",
        "CREATE TABLE pg_temp.x (a int)",
    ];
    for sql in cases {
        writes(Reason::Pinned, &[sql]);
        pins(Some("temporary table"), &[sql]);
    }
    pins(
        Some("temporary object"),
        &["CREATE TEMP VIEW v AS SELECT 1"],
    );
    pins(None, &["CREATE UNLOGGED TABLE x (a int)"]);
}

#[test]
fn sql_prepare_pins() {
    writes(Reason::Pinned, &["PREPARE q AS SELECT 1"]);
    writes(Reason::Session, &["EXECUTE q", "DEALLOCATE q"]);
    pins(Some("sql prepare"), &["PREPARE q (int) AS SELECT $1"]);
}

#[test]
fn cursors() {
    writes(Reason::Pinned, &["DECLARE c CURSOR WITH HOLD FOR SELECT 1"]);
    writes(
        Reason::Cursor,
        &[
            "DECLARE c CURSOR FOR SELECT 1",
            "FETCH 10 FROM c",
            "MOVE NEXT IN c",
            "CLOSE c",
        ],
    );
    pins(
        Some("cursor with hold"),
        &["DECLARE c NO SCROLL CURSOR WITH HOLD FOR SELECT 1"],
    );
    pins(
        None,
        &[
            "DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1",
            "DECLARE c CURSOR FOR WITH hold AS (SELECT 1) SELECT 1",
        ],
    );
}

// ---- EXPLAIN and COPY ----

#[test]
fn explain_without_analyze_reads() {
    reads(
        Reason::Explain,
        &[
            "EXPLAIN SELECT 1",
            "EXPLAIN DELETE FROM t",
            "EXPLAIN VERBOSE SELECT nextval('s')",
            "EXPLAIN (ANALYZE false) DELETE FROM t",
            "EXPLAIN (ANALYZE off, BUFFERS) DELETE FROM t",
            "EXPLAIN (FORMAT JSON, COSTS OFF) UPDATE t SET a = 1",
        ],
    );
}

#[test]
fn explain_analyze() {
    writes(
        Reason::ExplainAnalyzeWrite,
        &[
            "EXPLAIN ANALYZE DELETE FROM t",
            "EXPLAIN ANALYSE VERBOSE INSERT INTO t VALUES (1)",
            "EXPLAIN (ANALYZE) UPDATE t SET a = 1",
            "EXPLAIN (ANALYZE true, BUFFERS) DELETE FROM t",
            "EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE",
            "EXPLAIN ANALYZE SELECT nextval('s')",
            "EXPLAIN ANALYZE SHOW x",
        ],
    );
    reads(
        Reason::Explain,
        &[
            "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM t",
            "EXPLAIN ANALYZE WITH x AS (SELECT 1) SELECT * FROM x",
        ],
    );
    pins(
        Some("session advisory lock"),
        &["EXPLAIN ANALYZE SELECT pg_advisory_lock(1)"],
    );
}

#[test]
fn copy_directions() {
    reads(
        Reason::CopyTo,
        &[
            "COPY t TO STDOUT",
            "COPY t (a, b) TO STDOUT WITH (FORMAT csv)",
            "COPY (SELECT * FROM t WHERE a > 1) TO STDOUT",
        ],
    );
    writes(
        Reason::Write,
        &[
            "COPY t FROM STDIN",
            "COPY t TO '/tmp/x'",
            "COPY t TO PROGRAM 'gzip > /tmp/x'",
            "COPY (DELETE FROM t RETURNING *) TO STDOUT",
        ],
    );
    writes(
        Reason::SideEffectFunction,
        &["COPY (SELECT nextval('s')) TO STDOUT"],
    );
    writes(Reason::Unknown, &["COPY t"]);
}

// ---- multi-statement texts ----

#[test]
fn multi_statement_read_and_write() {
    let got = c("SELECT 1; INSERT INTO t VALUES (1); SELECT 2");
    assert_eq!((got.intent, got.reason), (Intent::Write, Reason::Write));
    let intents: Vec<_> = got.statements.iter().map(|s| s.intent).collect();
    assert_eq!(intents, [Intent::Read, Intent::Write, Intent::Read]);
    let got = c("SELECT 1; SHOW x;");
    assert_eq!(
        (got.intent, got.reason, got.statements.len()),
        (Intent::Read, Reason::Select, 2)
    );
}

#[test]
fn statement_spans_are_trimmed() {
    let sql = "  SELECT 1 ; /* c */ SET a = 1 -- tail\n;; ";
    let got = c(sql);
    let texts: Vec<_> = got
        .statements
        .iter()
        .map(|s| sql.get(s.span.clone()))
        .collect();
    assert_eq!(texts, [Some("SELECT 1"), Some("SET a = 1")]);
    let effects: Vec<_> = got.effects().cloned().collect();
    assert_eq!(effects, [Effect::None, set("a")]);
}

#[test]
fn transaction_in_one_text() {
    let got = c("BEGIN; UPDATE t SET a = 1; COMMIT;");
    let effects: Vec<_> = got.effects().cloned().collect();
    assert_eq!(effects, [begin(false), Effect::None, Effect::Commit]);
    assert_eq!(got.reason, Reason::Transaction);
}

#[test]
fn semicolons_in_parentheses_do_not_split() {
    let got =
        c("CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b)");
    assert_eq!(got.statements.len(), 1);
}

#[test]
fn begin_atomic_body_is_one_statement() {
    let sql = "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; \
               SELECT CASE WHEN true THEN 1 END; END; SELECT 2";
    let got = c(sql);
    assert_eq!(got.statements.len(), 2);
    assert!(!got.effects().any(|e| *e == Effect::Commit));
    assert_eq!(
        got.statements.get(1).map(|s| s.reason),
        Some(Reason::Select)
    );
}

#[test]
fn pins_reports_first_pin() {
    pins(
        Some("listen"),
        &["SELECT 1; LISTEN a; CREATE TEMP TABLE x (a int)"],
    );
}

// ---- hints ----

#[test]
fn hints() {
    let cases = [
        ("/* switchyard:primary */ SELECT 1", RouteHint::Primary),
        ("/*switchyard:replica*/SELECT 1", RouteHint::Replica),
        ("/*  SwitchYard : Replica  */ SELECT 1", RouteHint::Replica),
        ("-- switchyard:replica\nSELECT 1", RouteHint::Replica),
        (
            "/* app=x */ /* switchyard:replica */ SELECT 1",
            RouteHint::Replica,
        ),
        (
            "/* switchyard:replica */ /* switchyard:primary */ SELECT 1",
            RouteHint::Primary,
        ),
        ("/* switchyard:replica */", RouteHint::Replica),
    ];
    for (sql, hint) in cases {
        assert_eq!(c(sql).hint, Some(hint), "{sql}");
    }
}

#[test]
fn hints_only_before_first_token() {
    let cases = [
        "SELECT /* switchyard:replica */ 1",
        "SELECT 1; /* switchyard:primary */ SELECT 2",
        "SELECT 'switchyard:primary'",
        "/* switchyard:replicas */ SELECT 1",
        "/* switchyard */ SELECT 1",
    ];
    for sql in cases {
        assert_eq!(c(sql).hint, None, "{sql}");
    }
}

#[test]
fn hint_does_not_change_intent() {
    let got = c("/* switchyard:replica */ DELETE FROM t");
    assert_eq!(
        (got.intent, got.hint),
        (Intent::Write, Some(RouteHint::Replica))
    );
}

#[test]
fn reason_names() {
    assert_eq!(Reason::ForUpdate.as_str(), "for-update");
    assert_eq!(
        Reason::SideEffectFunction.to_string(),
        "side-effect-function"
    );
    assert_eq!(Reason::Select.as_str(), "select");
}

#[test]
fn deep_nesting_is_write_not_overflow() {
    let sql = format!("{}SELECT 1{}", "(".repeat(10_000), ")".repeat(10_000));
    writes(Reason::Unknown, &[&sql]);
    let sql = format!("{}SELECT 1{}", "(".repeat(5), ")".repeat(5));
    reads(Reason::Select, &[&sql]);
}
