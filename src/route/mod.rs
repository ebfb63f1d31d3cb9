//! Statement routing: classify SQL text into a routing intent.
//!
//! The result types live here, next to the API they describe; `classify` re-exports them so
//! both `route::Effect` and `route::classify::Effect` name the same type.
pub mod classify;
pub mod classify_mysql;
pub mod digest;
pub mod lexer;

pub use classify::classify;
pub use classify_mysql::classify_mysql;

use std::fmt;
use std::ops::Range;

/// Options that change classification; built once from config.
#[derive(Debug, Clone, Default)]
pub struct ClassifyOptions {
    /// Extra functions (lowercase, unqualified names) that have side effects and force the primary.
    pub side_effect_functions: Vec<String>,
}

impl ClassifyOptions {
    /// True if calling `name` (unqualified, any case) must go to the primary: a built-in
    /// side-effect function or one from the config (whose schema, if given, is ignored).
    pub fn is_side_effect(&self, name: &str) -> bool {
        SIDE_EFFECT_FUNCTIONS
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name))
            || self.side_effect_functions.iter().any(|f| {
                let unqualified = f.rsplit('.').next().unwrap_or(f);
                unqualified.eq_ignore_ascii_case(name)
            })
    }
}

/// Where a statement may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intent {
    /// A pure read: any node may serve it.
    Read,
    /// A write, or anything not recognised as a pure read: the primary.
    Write,
}

/// Routing hint given in a leading comment such as `/* switchyard:replica */`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteHint {
    /// `switchyard:primary`.
    Primary,
    /// `switchyard:replica`.
    Replica,
}

impl RouteHint {
    /// Finds `switchyard:primary` or `switchyard:replica` (any case, spaces around ':' allowed)
    /// anywhere in a comment's text; `Primary` wins if both appear.
    pub fn from_comment(comment: &str) -> Option<RouteHint> {
        const KEY: &str = "switchyard";
        let lower = comment.to_ascii_lowercase();
        let mut rest = lower.as_str();
        let mut found = None;
        while let Some(at) = rest.find(KEY) {
            let after = rest.get(at + KEY.len()..).unwrap_or("");
            if let Some(value) = after.trim_start().strip_prefix(':') {
                let value = value.trim_start();
                for (word, hint) in [
                    ("primary", RouteHint::Primary),
                    ("replica", RouteHint::Replica),
                ] {
                    let whole = value.strip_prefix(word).is_some_and(|tail| {
                        !tail
                            .bytes()
                            .next()
                            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                    });
                    if whole {
                        found = RouteHint::merge(found, Some(hint));
                    }
                }
            }
            rest = after;
        }
        found
    }

    /// Combines two hints; `Primary` wins because a wrong "primary" only costs load.
    pub fn merge(a: Option<RouteHint>, b: Option<RouteHint>) -> Option<RouteHint> {
        match (a, b) {
            (Some(RouteHint::Primary), _) | (_, Some(RouteHint::Primary)) => {
                Some(RouteHint::Primary)
            }
            _ => a.or(b),
        }
    }
}

/// What a statement does to session state, for the session layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing the session layer must track.
    None,
    /// Opens a transaction; `read_only` only when it may run on a replica.
    Begin {
        /// True for READ ONLY transactions that are not SERIALIZABLE (a standby refuses those).
        read_only: bool,
    },
    /// COMMIT, END, COMMIT AND CHAIN.
    Commit,
    /// ROLLBACK or ABORT of the whole transaction.
    Rollback,
    /// Session-level setting to record and replay.
    Set {
        /// Setting name, lowercased and unquoted (`search_path`, `timezone`, `role`, `app.user`).
        /// MySQL adds `names`, `character set`, `use` (USE db), and joins the names of a SET
        /// that assigns several with `,` (`sql_mode,time_zone`): replay the statement's text.
        name: String,
    },
    /// MySQL `SET autocommit = 0|1`. Off: from the next statement on the session is always in
    /// a transaction that only COMMIT, ROLLBACK or autocommit=1 ends (route it to one node, the
    /// primary); on: commits any open transaction. Replay it like a [`Effect::Set`].
    Autocommit {
        /// The new value of autocommit.
        on: bool,
    },
    /// Transaction-scoped setting (SET LOCAL, SET TRANSACTION, SET CONSTRAINTS): nothing to replay.
    SetLocal,
    /// RESET of one setting.
    Reset {
        /// Setting name, as in [`Effect::Set`].
        name: String,
    },
    /// RESET ALL.
    ResetAll,
    /// DISCARD ALL, PLANS, SEQUENCES or TEMP.
    Discard,
    /// Session state that cannot be replayed: the client must stay on the primary.
    Pin(&'static str),
}

/// Why a statement got its intent; shown by EXPLAIN ROUTE and in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Empty text or only comments.
    Empty,
    /// Plain SELECT.
    Select,
    /// SHOW.
    Show,
    /// VALUES.
    Values,
    /// TABLE name.
    Table,
    /// EXPLAIN without ANALYZE, or EXPLAIN ANALYZE of a read.
    Explain,
    /// WITH whose bodies and main statement all read.
    ReadOnlyWith,
    /// COPY ... TO STDOUT of a table or a read query.
    CopyTo,
    /// SET, RESET, DISCARD.
    Set,
    /// Transaction control: BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE.
    Transaction,
    /// Two-phase commit: PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED.
    TwoPhase,
    /// Data modification (INSERT, UPDATE, DELETE, MERGE, COPY FROM, TRUNCATE, CALL, ...).
    Write,
    /// Schema or maintenance command (CREATE, ALTER, DROP, GRANT, VACUUM, ...).
    Ddl,
    /// Cursor command (DECLARE, FETCH, MOVE, CLOSE).
    Cursor,
    /// Session command that must reach the primary (EXECUTE, DEALLOCATE, UNLISTEN).
    Session,
    /// Not recognised.
    Unknown,
    /// Row-locking clause (FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE).
    ForUpdate,
    /// SELECT ... INTO creates a table.
    SelectInto,
    /// WITH containing INSERT, UPDATE, DELETE or MERGE.
    ModifyingCte,
    /// Calls a function with side effects.
    SideEffectFunction,
    /// EXPLAIN ANALYZE runs the write it explains.
    ExplainAnalyzeWrite,
    /// Creates session state that pins the client (see [`Effect::Pin`]).
    Pinned,
    /// MySQL LOAD DATA / LOAD XML LOCAL INFILE: the client sends a file of its own.
    LocalInfile,
}

impl Reason {
    /// Every reason in declaration order, so that `ALL[r as usize] == r` (metrics keep one
    /// handle per reason, indexed this way).
    pub const ALL: [Reason; 23] = [
        Reason::Empty,
        Reason::Select,
        Reason::Show,
        Reason::Values,
        Reason::Table,
        Reason::Explain,
        Reason::ReadOnlyWith,
        Reason::CopyTo,
        Reason::Set,
        Reason::Transaction,
        Reason::TwoPhase,
        Reason::Write,
        Reason::Ddl,
        Reason::Cursor,
        Reason::Session,
        Reason::Unknown,
        Reason::ForUpdate,
        Reason::SelectInto,
        Reason::ModifyingCte,
        Reason::SideEffectFunction,
        Reason::ExplainAnalyzeWrite,
        Reason::Pinned,
        Reason::LocalInfile,
    ];

    /// Stable kebab-case name for logs, metrics and the admin console.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Empty => "empty",
            Reason::Select => "select",
            Reason::Show => "show",
            Reason::Values => "values",
            Reason::Table => "table",
            Reason::Explain => "explain",
            Reason::ReadOnlyWith => "read-only-with",
            Reason::CopyTo => "copy-to",
            Reason::Set => "set",
            Reason::Transaction => "transaction",
            Reason::TwoPhase => "two-phase",
            Reason::Write => "write",
            Reason::Ddl => "ddl",
            Reason::Cursor => "cursor",
            Reason::Session => "session",
            Reason::LocalInfile => "local-infile",
            Reason::Unknown => "unknown",
            Reason::ForUpdate => "for-update",
            Reason::SelectInto => "select-into",
            Reason::ModifyingCte => "modifying-cte",
            Reason::SideEffectFunction => "side-effect-function",
            Reason::ExplainAnalyzeWrite => "explain-analyze-write",
            Reason::Pinned => "pinned",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One top-level statement of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Where this statement may run.
    pub intent: Intent,
    /// What it does to session state.
    pub effect: Effect,
    /// Why it got its intent.
    pub reason: Reason,
    /// Byte range of this statement inside the classified text, trimmed, without the ';'.
    pub span: Range<usize>,
}

/// Result of classifying a whole text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// Write if any statement is Write; Read if all are (an empty text is Read).
    pub intent: Intent,
    /// Reason of the first statement that made it Write, else of the first statement.
    pub reason: Reason,
    /// Hint from the comments before the first token; `Primary` wins if both appear.
    pub hint: Option<RouteHint>,
    /// Non-empty top-level statements, in order.
    pub statements: Vec<Statement>,
}

impl Classification {
    /// Effects of all statements, in order.
    pub fn effects(&self) -> impl Iterator<Item = &Effect> + '_ {
        self.statements.iter().map(|s| &s.effect)
    }

    /// Reason of the first statement that pins the session, if any.
    pub fn pins(&self) -> Option<&'static str> {
        self.effects().find_map(|e| match e {
            Effect::Pin(why) => Some(*why),
            _ => None,
        })
    }
}

/// Built-in functions that write, lock, or depend on session state a replica does not share.
pub const SIDE_EFFECT_FUNCTIONS: &[&str] = &[
    "nextval",
    "setval",
    // currval/lastval read, but fail on a replica that never ran nextval in this session.
    "currval",
    "lastval",
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "pg_advisory_unlock",
    "pg_advisory_unlock_shared",
    "pg_advisory_unlock_all",
    "pg_advisory_xact_lock",
    "pg_advisory_xact_lock_shared",
    "pg_try_advisory_xact_lock",
    "pg_try_advisory_xact_lock_shared",
    "set_config",
    "pg_notify",
    "txid_current",
    "pg_current_xact_id",
    "pg_switch_wal",
    "pg_create_restore_point",
    "lo_create",
    "lo_import",
    "lo_unlink",
    "lo_open",
    "lo_write",
    "lo_put",
    "lo_from_bytea",
    "dblink_exec",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_promote",
    // Beyond the design's list: these also write, or fail on a standby.
    "lo_export",
    "lo_truncate",
    "lo_truncate64",
    "pg_logical_emit_message",
    "pg_current_wal_lsn",
    "pg_current_wal_insert_lsn",
    "pg_current_wal_flush_lsn",
];

/// Session-level advisory locks outlive the statement, so the backend holding them must stay.
pub const SESSION_LOCK_FUNCTIONS: &[&str] = &[
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
];

/// Pin reason for a built-in function whose effect outlives the statement, if it has one.
pub fn function_pin(name: &str) -> Option<&'static str> {
    if SESSION_LOCK_FUNCTIONS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name))
    {
        Some("session advisory lock")
    } else if name.eq_ignore_ascii_case("set_config") {
        Some("set_config")
    } else {
        None
    }
}

#[cfg(test)]
mod proptest;
#[cfg(test)]
mod proptest_mysql;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_mysql;
