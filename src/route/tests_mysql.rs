use super::lexer::{Dialect, Lexer, TokenKind};
use super::*;
use TokenKind::{
    BlockComment, ExecCommentClose, ExecCommentOpen, LineComment, Number, Operator, Param, Punct,
    QuotedIdent, Variable, Word,
};

fn c(sql: &str) -> Classification {
    classify_mysql(sql, &ClassifyOptions::default())
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

fn lex(sql: &str) -> Vec<(TokenKind, &str)> {
    Lexer::new(sql, Dialect::MySql)
        .map(|t| (t.kind, t.text))
        .collect()
}

// ---- lexer ----

#[test]
fn lexer_quotes_and_escapes() {
    let s = TokenKind::String;
    assert_eq!(lex(r"'it\'s' 'a''b'"), [(s, r"'it\'s'"), (s, "'a''b'")]);
    assert_eq!(
        lex(r#""say \"hi\"" "x""y""#),
        [(s, r#""say \"hi\"""#), (s, r#""x""y""#)]
    );
    assert_eq!(
        lex("`a``b` `c`"),
        [(QuotedIdent, "`a``b`"), (QuotedIdent, "`c`")]
    );
    assert_eq!(
        lex(r"x'0A' B'01' N'\'' _utf8mb4'x' 0x1F 0b01"),
        [
            (s, "x'0A'"),
            (s, "B'01'"),
            (s, r"N'\''"),
            (s, "_utf8mb4'x'"),
            (Number, "0x1F"),
            (Number, "0b01")
        ]
    );
    // No E'' or dollar quoting in MySQL.
    assert_eq!(lex("E'a'"), [(Word, "E"), (s, "'a'")]);
    let plain: Vec<_> = Lexer::new(r"'a\' b", Dialect::MySql)
        .without_backslash_escapes()
        .map(|t| (t.kind, t.text))
        .collect();
    assert_eq!(plain, [(s, r"'a\'"), (Word, "b")]);
}

#[test]
fn lexer_comments() {
    assert_eq!(
        lex("a # c\nb -- d\ne /* x /* y */ z"),
        [
            (Word, "a"),
            (LineComment, "# c"),
            (Word, "b"),
            (LineComment, "-- d"),
            (Word, "e"),
            (BlockComment, "/* x /* y */"),
            (Word, "z"),
        ]
    );
    // `--1` is minus minus one; `--` at the end is a comment.
    assert_eq!(lex("e --1"), [(Word, "e"), (Operator, "--"), (Number, "1")]);
    assert_eq!(lex("a --"), [(Word, "a"), (LineComment, "--")]);
    assert_eq!(lex("a --\tb"), [(Word, "a"), (LineComment, "--\tb")]);
}

#[test]
fn lexer_variables_params_and_exec_comments() {
    assert_eq!(
        lex("@x := ? + @@session.sql_mode, @'a b', 'u'@'h'"),
        [
            (Variable, "@x"),
            (Operator, ":="),
            (Param, "?"),
            (Operator, "+"),
            (Variable, "@@session"),
            (Punct, "."),
            (Word, "sql_mode"),
            (Punct, ","),
            (Variable, "@'a b'"),
            (Punct, ","),
            (TokenKind::String, "'u'"),
            (Variable, "@'h'"),
        ]
    );
    assert_eq!(
        lex("/*!50100 SELECT 2*/ /*M! x */ /*! y /* z */ */"),
        [
            (ExecCommentOpen, "/*!50100"),
            (Word, "SELECT"),
            (Number, "2"),
            (ExecCommentClose, "*/"),
            (ExecCommentOpen, "/*M!"),
            (Word, "x"),
            (ExecCommentClose, "*/"),
            (ExecCommentOpen, "/*!"),
            (Word, "y"),
            (BlockComment, "/* z */"),
            (ExecCommentClose, "*/"),
        ]
    );
    // Outside an executable comment `*/` is just operators.
    assert_eq!(
        lex("2*/3"),
        [(Number, "2"), (Operator, "*/"), (Number, "3")]
    );
}

// ---- reads and writes ----

#[test]
fn reads_and_their_negatives() {
    reads(
        Reason::Select,
        &[
            "SELECT 1",
            "select`a`#comment\n*from t",
            "SELECT 'FOR UPDATE', \"INTO @x\", `lock`",
            r"SELECT 'it\'s; DROP TABLE x'",
            "SELECT * FROM t WHERE name = 'O\\'Brien'",
            "SELECT @x, @@sql_mode",
            "SELECT SLEEP(1)",
            "(SELECT 1) UNION (SELECT 2)",
            "SELECT /*+ MAX_EXECUTION_TIME(1) */ * FROM t",
            "SELECT 1 -- FOR UPDATE",
            "SELECT 1 # FOR UPDATE",
            "SELECT * FROM t WHERE a = ?",
        ],
    );
    reads(
        Reason::Show,
        &["SHOW TABLES", "SHOW FULL PROCESSLIST", "HELP 'select'"],
    );
    reads(
        Reason::Explain,
        &[
            "DESCRIBE t",
            "DESC t",
            "EXPLAIN t",
            "EXPLAIN SELECT * FROM t FOR UPDATE",
            "EXPLAIN FORMAT=JSON DELETE FROM t",
            "EXPLAIN ANALYZE SELECT 1",
            "ANALYZE SELECT * FROM t",
            "ANALYZE FORMAT=JSON SELECT 1",
        ],
    );
    reads(
        Reason::ReadOnlyWith,
        &["WITH a AS (SELECT 1), b (x) AS (SELECT 2) SELECT * FROM a, b"],
    );
    reads(Reason::Values, &["VALUES ROW(1, 2)", "VALUES (1), (2)"]);
    reads(Reason::Table, &["TABLE t"]);
    reads(Reason::Empty, &["", " -- only a comment", "#x", ";;"]);
    reads(Reason::Select, &["SELECT 1; SELECT 2"]);
    assert_eq!(c("SELECT 1; SELECT 2").statements.len(), 2);
    assert_eq!(c(r"SELECT 'it\'s; DROP TABLE x'").statements.len(), 1);
}

#[test]
fn local_infile_is_told_apart() {
    writes(
        Reason::LocalInfile,
        &[
            "LOAD DATA LOCAL INFILE '/tmp/x' INTO TABLE t",
            "load data low_priority local infile 'x' into table t",
            "LOAD DATA CONCURRENT LOCAL INFILE 'x' INTO TABLE t",
            "LOAD XML LOCAL INFILE 'x' INTO TABLE t",
            "/* hi */ LOAD DATA LOCAL INFILE 'x' INTO TABLE t",
        ],
    );
}

#[test]
fn writes_by_rule() {
    writes(
        Reason::ForUpdate,
        &[
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t FOR SHARE",
            "SELECT * FROM t LOCK IN SHARE MODE",
            "(SELECT * FROM t FOR UPDATE) UNION SELECT 1",
            "WITH a AS (SELECT * FROM t FOR UPDATE) SELECT * FROM a",
            "select 1 /*! for update */",
        ],
    );
    writes(
        Reason::SelectInto,
        &[
            "SELECT 1 INTO OUTFILE '/tmp/x'",
            "SELECT 1 INTO DUMPFILE '/tmp/x'",
            "SELECT 1 INTO @x",
        ],
    );
    writes(
        Reason::SideEffectFunction,
        &[
            "SELECT LAST_INSERT_ID()",
            "SELECT last_insert_id(5)",
            "SELECT FOUND_ROWS()",
            "SELECT ROW_COUNT()",
            "SELECT RELEASE_LOCK('a')",
            "SELECT RELEASE_ALL_LOCKS()",
            "SELECT IS_FREE_LOCK('a'), IS_USED_LOCK('a')",
            "SELECT NEXTVAL(s)",
            "SELECT NEXT VALUE FOR s",
            "SELECT PREVIOUS VALUE FOR s",
            "SELECT SETVAL(s, 10)",
            "SELECT LASTVAL(s)",
            "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1",
            "SELECT @@identity",
            "SELECT @@session.last_insert_id",
            "SELECT GET_LOCK('a', 1)",
        ],
    );
    writes(
        Reason::Write,
        &[
            "INSERT INTO t VALUES (1)",
            "REPLACE INTO t VALUES (1)",
            "UPDATE t SET a := 1",
            "DELETE FROM t",
            "LOAD DATA INFILE 'x' INTO TABLE t",
            "LOAD XML INFILE 'x' INTO TABLE t",
            "CALL p()",
            "DO 1",
            "BEGIN NOT ATOMIC SELECT 1; SELECT 2; END",
        ],
    );
    writes(
        Reason::Ddl,
        &[
            "ALTER TABLE t ADD c INT",
            "DROP TEMPORARY TABLE t",
            "ANALYZE TABLE t",
            "CREATE TABLE t (a INT)",
            "SET GLOBAL max_connections = 10",
            "SET @@global.max_connections = 10",
            "SET PERSIST x = 1",
            "SET GLOBAL TRANSACTION READ ONLY",
            "FLUSH PRIVILEGES",
            "SET PASSWORD = 'x'",
            "START SLAVE",
        ],
    );
    writes(
        Reason::ExplainAnalyzeWrite,
        &[
            "ANALYZE DELETE FROM t",
            "EXPLAIN ANALYZE UPDATE t SET a = 1",
        ],
    );
    writes(
        Reason::Session,
        &[
            "SHOW WARNINGS",
            "SHOW COUNT(*) ERRORS",
            "SHOW MASTER STATUS",
            "SHOW SLAVE STATUS",
            "EXPLAIN FOR CONNECTION 5",
            "KILL 5",
            "GET DIAGNOSTICS @n = NUMBER",
            "UNLOCK TABLES",
        ],
    );
    writes(
        Reason::Unknown,
        &["FOO", "WITH a AS (SELECT 1) SHOW TABLES", "/*!99999 x"],
    );
    // A write anywhere makes the text a write.
    writes(Reason::Write, &["SELECT 1; DELETE FROM t"]);
    let opts = ClassifyOptions {
        side_effect_functions: vec!["app.audit".into()],
    };
    let got = classify_mysql("SELECT audit(1)", &opts);
    assert_eq!(got.reason, Reason::SideEffectFunction);
    // Defining a function is not calling it.
    writes(
        Reason::Ddl,
        &["CREATE FUNCTION get_lock(a INT) RETURNS INT RETURN 1"],
    );
}

// ---- transactions ----

#[test]
fn transactions() {
    effects(&[
        ("BEGIN", Effect::Begin { read_only: false }),
        ("BEGIN WORK", Effect::Begin { read_only: false }),
        ("START TRANSACTION", Effect::Begin { read_only: false }),
        (
            "START TRANSACTION READ ONLY",
            Effect::Begin { read_only: true },
        ),
        (
            "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
            Effect::Begin { read_only: true },
        ),
        (
            "START TRANSACTION READ WRITE",
            Effect::Begin { read_only: false },
        ),
        ("COMMIT", Effect::Commit),
        ("COMMIT WORK AND NO CHAIN NO RELEASE", Effect::Commit),
        ("ROLLBACK", Effect::Rollback),
        ("ROLLBACK WORK", Effect::Rollback),
        ("ROLLBACK TO SAVEPOINT a", Effect::None),
        ("ROLLBACK WORK TO a", Effect::None),
        ("SAVEPOINT a", Effect::None),
        ("RELEASE SAVEPOINT a", Effect::None),
        ("SET autocommit = 0", Effect::Autocommit { on: false }),
        ("SET @@autocommit=OFF", Effect::Autocommit { on: false }),
        (
            "set session autocommit = 'ON'",
            Effect::Autocommit { on: true },
        ),
        ("SET autocommit = 1", Effect::Autocommit { on: true }),
        (
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            Effect::SetLocal,
        ),
        ("XA START 'x'", Effect::Pin("xa transaction")),
    ]);
    reads(
        Reason::Transaction,
        &["START TRANSACTION READ ONLY", "COMMIT", "SAVEPOINT a"],
    );
    writes(
        Reason::Transaction,
        &["BEGIN", "START TRANSACTION", "SET autocommit = 0"],
    );
    pins(
        Some("autocommit"),
        &["SET autocommit = @x", "SET autocommit = 0, sql_mode = ''"],
    );
}

// ---- session state ----

#[test]
fn set_and_use_are_replayed() {
    effects(&[
        ("SET sql_mode = 'ANSI'", set("sql_mode")),
        ("SET SESSION sql_mode := ''", set("sql_mode")),
        ("SET LOCAL Time_Zone = '+00:00'", set("time_zone")),
        ("SET @@session.time_zone = 'UTC'", set("time_zone")),
        ("SET @@time_zone = 'UTC'", set("time_zone")),
        ("SET `sql_mode` = ''", set("sql_mode")),
        (
            "SET sql_mode = '', time_zone = 'UTC'",
            set("sql_mode,time_zone"),
        ),
        ("SET NAMES utf8mb4 COLLATE utf8mb4_bin", set("names")),
        ("SET CHARACTER SET utf8mb4", set("character set")),
        ("SET CHARSET utf8mb4", set("character set")),
        ("SET ROLE r", set("role")),
        (
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED, READ ONLY",
            set("transaction_isolation,transaction_read_only"),
        ),
        ("USE db", set("use")),
        ("USE `my db`", set("use")),
        ("/*!40101 SET NAMES utf8mb4 */", set("names")),
    ]);
    reads(
        Reason::Set,
        &["SET NAMES utf8mb4", "USE db", "SET sql_mode = ''"],
    );
}

#[test]
fn pins_only_for_state_that_cannot_move() {
    pins(
        Some("user variables"),
        &[
            "SET @x = 1",
            "SET @x := 1, sql_mode = ''",
            "SELECT @x := 1",
            "SELECT 1 INTO @x",
            "SELECT a FROM t INTO @x",
            "DO @x := GET_LOCK('a', 1)",
            "EXPLAIN FORMAT=JSON INTO @x SELECT 1",
        ],
    );
    pins(
        Some("named lock"),
        &["SELECT GET_LOCK('a', 10)", "DO GET_LOCK('a', 10)"],
    );
    pins(
        Some("temporary table"),
        &[
            "CREATE TEMPORARY TABLE t (a INT)",
            "CREATE OR REPLACE TEMPORARY TABLE t AS SELECT 1",
            "CREATE TEMPORARY TABLE IF NOT EXISTS t (a INT)",
        ],
    );
    pins(
        Some("table lock"),
        &["LOCK TABLES t READ", "FLUSH TABLES WITH READ LOCK"],
    );
    pins(Some("handler"), &["HANDLER t OPEN"]);
    pins(
        Some("sql prepare"),
        &[
            "PREPARE s FROM 'SELECT 1'",
            "EXECUTE s USING @a",
            "DEALLOCATE PREPARE s",
            "DROP PREPARE s",
            "EXECUTE IMMEDIATE 'SELECT 1'",
        ],
    );
    pins(Some("xa transaction"), &["XA BEGIN 'x'", "XA COMMIT 'x'"]);
    pins(Some("set global and session"), &["SET GLOBAL a = 1, b = 2"]);
    pins(
        None,
        &[
            "SELECT @x",
            "SELECT @x = 1",
            "UPDATE t SET a := 1",
            "SELECT RELEASE_LOCK('a')",
            "DROP TEMPORARY TABLE t",
            "UNLOCK TABLES",
            "SET sql_mode = ''",
            "CREATE PROCEDURE p() BEGIN CREATE TEMPORARY TABLE t (a INT); END",
            "XA RECOVER",
        ],
    );
}

#[test]
fn set_statement_classifies_the_inner_statement() {
    reads(
        Reason::Select,
        &["SET STATEMENT max_statement_time=1 FOR SELECT 1"],
    );
    writes(
        Reason::ForUpdate,
        &["SET STATEMENT max_statement_time=1 FOR SELECT * FROM t FOR UPDATE"],
    );
    writes(
        Reason::Write,
        &["SET STATEMENT a=1, b=(2) FOR DELETE FROM t"],
    );
    writes(Reason::Unknown, &["SET STATEMENT a=1"]);
    effects(&[("SET STATEMENT a=1 FOR SELECT 1", Effect::None)]);
}

// ---- splitting, hints and ambiguous texts ----

#[test]
fn splitting_and_hints() {
    let got = c("/* switchyard:replica */ SELECT 1; SELECT 'a;b'; SELECT `c;d`");
    assert_eq!(got.hint, Some(RouteHint::Replica));
    assert_eq!(got.statements.len(), 3);
    assert_eq!(
        c("# switchyard:primary\nSELECT 1").hint,
        Some(RouteHint::Primary)
    );
    assert_eq!(c("SELECT 1 /* switchyard:primary */").hint, None);
    // A stored program body is one statement: DELIMITER never reaches the server.
    let body = "CREATE DEFINER=`u`@`%` PROCEDURE p() BEGIN SELECT 1; SELECT 2; END; SELECT 3";
    let got = c(body);
    assert_eq!(got.statements.len(), 1);
    assert_eq!((got.intent, got.reason), (Intent::Write, Reason::Ddl));
    assert_eq!(
        c("CREATE FUNCTION f() RETURNS INT RETURN 1; SELECT 1")
            .statements
            .len(),
        2
    );
    let sql = "SELECT 1 ; SELECT 2";
    let spans: Vec<_> = c(sql).statements.iter().map(|s| s.span.clone()).collect();
    assert_eq!(spans, [0..8, 11..19]);
}

#[test]
fn executable_comments() {
    // Content of /*! ... */ runs everywhere; it is classified as SQL.
    reads(
        Reason::Select,
        &["SELECT /*! STRAIGHT_JOIN */ * FROM t", "/*! SELECT 1 */"],
    );
    writes(Reason::ForUpdate, &["SELECT * FROM t /*! FOR UPDATE */"]);
    pins(Some("named lock"), &["SELECT /*!50000 GET_LOCK('a', 1) */"]);
    reads(
        Reason::Select,
        &["SELECT /*!40001 SQL_NO_CACHE */ * FROM t"],
    );
    // A versioned one may be a plain comment on the server: both readings must read.
    writes(Reason::Write, &["/*!99999 SELECT */ DELETE FROM t"]);
    writes(Reason::Write, &["/*M!100100 SELECT */ DELETE FROM t"]);
    // Comments inside, or unbalanced markers: where it ends depends on the server.
    writes(
        Reason::Unknown,
        &[
            "SELECT 1 /*!50000 /* x */ */",
            "SELECT /*!50000 1; SELECT 2 */",
            "SELECT /*! 1",
        ],
    );
    // mysqldump's headers.
    let dump = "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE */; /*!40014 SET FOREIGN_KEY_CHECKS=0 */;";
    assert_eq!(c(dump).pins(), Some("user variables"));
    assert_eq!(c(dump).statements.len(), 2);
}

#[test]
fn backslash_ambiguity() {
    // Under NO_BACKSLASH_ESCAPES the DELETE would run: not a read.
    writes(Reason::Unknown, &[r"SELECT 'a\'; DELETE FROM t; SELECT '"]);
    reads(Reason::Select, &[r"SELECT 'a\\'", r"SELECT 'a\'b'"]);
}
