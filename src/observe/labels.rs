//! Label values of the metrics: statement kinds, routing reasons, roles and error kinds, each
//! a small index into a cluster's table of handles so that the hot path never builds a label.

use crate::cluster::Role;
use crate::route::{Intent, Reason};

/// What a statement does, for `switchyard_queries_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// A pure read (SELECT, SHOW, VALUES, read-only WITH, EXPLAIN, COPY TO...).
    Read = 0,
    /// A write: data modification, DDL, locking reads, side-effect functions.
    Write = 1,
    /// Transaction control: BEGIN, COMMIT, ROLLBACK, SAVEPOINT, two-phase commit.
    Transaction = 2,
    /// Session commands (SET, RESET, DISCARD, USE, cursors, EXECUTE, LISTEN...), empty
    /// statements and text the classifier does not recognise.
    Other = 3,
}

impl StatementKind {
    /// Every kind, in index order.
    pub const ALL: [StatementKind; 4] = [
        StatementKind::Read,
        StatementKind::Write,
        StatementKind::Transaction,
        StatementKind::Other,
    ];

    /// The kind of a classified statement.
    pub fn of(intent: Intent, reason: Reason) -> StatementKind {
        match reason {
            Reason::Transaction | Reason::TwoPhase => StatementKind::Transaction,
            Reason::Set
            | Reason::Session
            | Reason::Cursor
            | Reason::Pinned
            | Reason::Empty
            | Reason::Unknown => StatementKind::Other,
            _ if intent == Intent::Read => StatementKind::Read,
            _ => StatementKind::Write,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StatementKind::Read => "read",
            StatementKind::Write => "write",
            StatementKind::Transaction => "transaction",
            StatementKind::Other => "other",
        }
    }
}

/// Why a batch went where it went, for `switchyard_route_decisions_total{reason}`: the
/// classifier's [`Reason`], or one of the front ends' own reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReasonLabel {
    /// The deciding statement's classification.
    Classified(Reason),
    /// PostgreSQL FunctionCall message (fast-path function call): always the primary.
    FunctionCall,
    /// PostgreSQL Bind of a statement the proxy does not know: the primary.
    UnknownStatement,
    /// Nothing in the batch said (an Execute of a portal bound by an earlier batch).
    #[default]
    None,
}

/// Labels after the classifier's reasons.
const EXTRA_REASONS: usize = 3;

impl ReasonLabel {
    /// Size of a table indexed by [`ReasonLabel::index`].
    pub const COUNT: usize = Reason::ALL.len() + EXTRA_REASONS;

    /// Index into a table of `COUNT` handles.
    pub fn index(self) -> usize {
        let n = Reason::ALL.len();
        match self {
            ReasonLabel::Classified(r) if (r as usize) < n => r as usize,
            ReasonLabel::Classified(_) | ReasonLabel::None => n + 2,
            ReasonLabel::FunctionCall => n,
            ReasonLabel::UnknownStatement => n + 1,
        }
    }

    /// The label value of index `i` (see [`ReasonLabel::index`]).
    pub fn name_of(i: usize) -> &'static str {
        let n = Reason::ALL.len();
        match Reason::ALL.get(i) {
            Some(r) => r.as_str(),
            None if i == n => "function-call",
            None if i == n + 1 => "unknown-statement",
            None => "none",
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        Self::name_of(self.index())
    }
}

impl From<Reason> for ReasonLabel {
    fn from(r: Reason) -> Self {
        ReasonLabel::Classified(r)
    }
}

/// Role label values, indexed by [`role_index`].
pub const ROLES: [&str; 3] = ["primary", "replica", "unknown"];

/// Index of a node's role in [`ROLES`].
pub fn role_index(role: Option<Role>) -> usize {
    match role {
        Some(Role::Primary) => 0,
        Some(Role::Replica) => 1,
        None => 2,
    }
}

/// Errors the front ends send to clients, for `switchyard_errors_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No node could take the work: no primary (after the failover wait), no replica with
    /// `replica_fallback = "error"`, or no node could be connected to (PostgreSQL 08000,
    /// 08001, 08004; MySQL 9001).
    NoNode = 0,
    /// The server connection running the work was lost (PostgreSQL 08006, MySQL 1927).
    ConnectionLost = 1,
    /// A checkout waited `pool_timeout` for a busy pool (PostgreSQL 53300, MySQL 1040);
    /// counted by the pool itself, once per timed-out checkout.
    PoolTimeout = 2,
    /// A client's login was refused: wrong user or password, TLS required (PostgreSQL
    /// 28P01/28000, MySQL 1045/3159).
    AuthFailed = 3,
    /// A client broke the wire protocol (malformed, oversized or unexpected message).
    Protocol = 4,
    /// A client was refused past `max_client_connections`.
    TooManyClients = 5,
    /// A timeout ended work or a client: startup/handshake, `query_timeout`,
    /// `idle_transaction_timeout`, `client_idle_timeout`.
    Timeout = 6,
}

impl ErrorKind {
    /// Every kind, in index order.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::NoNode,
        ErrorKind::ConnectionLost,
        ErrorKind::PoolTimeout,
        ErrorKind::AuthFailed,
        ErrorKind::Protocol,
        ErrorKind::TooManyClients,
        ErrorKind::Timeout,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NoNode => "no_node",
            ErrorKind::ConnectionLost => "connection_lost",
            ErrorKind::PoolTimeout => "pool_timeout",
            ErrorKind::AuthFailed => "auth_failed",
            ErrorKind::Protocol => "protocol",
            ErrorKind::TooManyClients => "too_many_clients",
            ErrorKind::Timeout => "timeout",
        }
    }

    /// The kind of a PostgreSQL error the proxy raises itself, by SQLSTATE; None for codes
    /// outside the set (a server's own errors are not counted) and for 53300, which the pool
    /// counts when its checkout times out.
    pub fn of_sqlstate(code: &str) -> Option<ErrorKind> {
        match code {
            "08000" | "08001" | "08004" => Some(ErrorKind::NoNode),
            "08006" => Some(ErrorKind::ConnectionLost),
            "08P01" => Some(ErrorKind::Protocol),
            "57014" | "25P03" | "57P05" => Some(ErrorKind::Timeout),
            c if c.starts_with("28") => Some(ErrorKind::AuthFailed),
            _ => None,
        }
    }

    /// The kind of a MySQL error the proxy sends, by error code; None for codes outside the
    /// set. 1040 is left to the pool (which counts its own timeouts) because servers use it too.
    pub fn of_mysql_code(code: u16) -> Option<ErrorKind> {
        match code {
            9001 => Some(ErrorKind::NoNode),
            1927 => Some(ErrorKind::ConnectionLost),
            1045 | 3159 => Some(ErrorKind::AuthFailed),
            1043 | 1153 => Some(ErrorKind::Protocol),
            _ => None,
        }
    }
}
