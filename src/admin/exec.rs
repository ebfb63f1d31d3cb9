//! Parsing and running one console statement: SHOW, SELECT over the snapshot tables,
//! EXPLAIN ROUTE, and the commands that change the running clusters (admin role only).

use super::{tables, AdminContext, ClusterHandle};
use crate::cluster::ReplicaPicker;
use crate::config::AdminRole;
use crate::route::{ClassifyOptions, Effect, Intent, RouteHint};

/// A statement's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A result set; every value as text (None for NULL).
    Rows {
        /// Column names.
        columns: Vec<String>,
        /// Rows, each as long as `columns`.
        rows: Vec<Vec<Option<String>>>,
    },
    /// A command that returns no rows, with its tag ("SET", "DRAIN", ...).
    Done(String),
}

/// Why a statement failed; the message is shown to the operator as it is.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Not a statement the console knows.
    #[error("{0}")]
    Syntax(String),
    /// The user's role may not run it.
    #[error("permission denied: {0} needs the admin role")]
    Denied(String),
    /// No such node (or several with that name).
    #[error("{0}")]
    Node(String),
    /// SQLite refused the query.
    #[error("{0}")]
    Sql(#[from] rusqlite::Error),
    /// A command that was tried and failed (nothing changed unless it says so).
    #[error("{0}")]
    Failed(String),
}

impl AdminError {
    /// SQLSTATE for the PostgreSQL wire.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            AdminError::Syntax(_) | AdminError::Sql(_) => "42601",
            AdminError::Denied(_) => "42501",
            AdminError::Node(_) => "42704",
            AdminError::Failed(_) => "55000",
        }
    }

    /// Error code for the MySQL wire.
    pub fn mysql_code(&self) -> u16 {
        match self {
            AdminError::Syntax(_) | AdminError::Sql(_) => 1064,
            AdminError::Denied(_) => 1227,
            AdminError::Node(_) => 1146,
            AdminError::Failed(_) => 1105,
        }
    }
}

const HELP: &str = "commands: SHOW CLUSTERS | NODES | POOLS | CLIENTS | SERVERS | STATS | ERRORS | QUERIES | CONFIG | VERSION | TABLES; \
    SELECT ... FROM clusters | nodes | pools | clients | servers | stats | errors | queries | config | version; EXPLAIN ROUTE <statement>; \
    SET NODE <node> WEIGHT <n>; DRAIN NODE <node>; UNDRAIN NODE <node>; PAUSE [cluster]; \
    RESUME [cluster]; PROMOTE NODE <node>; KILL CLIENT <id>; RELOAD \
    (a node is its name, or cluster/name)";

/// Runs one statement as a user with `role`.
pub async fn execute(ctx: &AdminContext, role: AdminRole, text: &str) -> Result<Reply, AdminError> {
    let text = text.trim().trim_end_matches(';').trim();
    let words: Vec<&str> = text.split_whitespace().collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    let kw = |i: usize| lower.get(i).map_or("", String::as_str);
    match (kw(0), kw(1)) {
        ("", _) => Err(AdminError::Syntax(format!("empty statement; {HELP}"))),
        ("show", "tables") => Ok(Reply::Rows {
            columns: vec!["table".into(), "columns".into()],
            rows: tables::TABLES
                .iter()
                .map(|(n, c)| vec![Some(n.to_string()), Some(c.to_string())])
                .collect(),
        }),
        ("show", table) if words.len() == 2 => {
            let order = match table {
                "clusters" => "name",
                "nodes" => "cluster, id",
                "pools" => "cluster, node, user, database",
                "clients" => "cluster, id",
                "stats" => "cluster, node, role",
                "errors" => "cluster, kind",
                "servers" => "cluster, node, user, database, state",
                "queries" => "calls DESC, cluster, digest",
                "config" => "cluster, rowid",
                "version" => "name",
                other => {
                    return Err(AdminError::Syntax(format!(
                        "unknown table {other:?}; {HELP}"
                    )))
                }
            };
            select(ctx, &format!("SELECT * FROM {table} ORDER BY {order}"))
        }
        ("select", _) | ("with", _) | ("values", _) => {
            if let Some(row) = session_variable(text) {
                return Ok(row);
            }
            select(ctx, text)
        }
        ("explain", "route") => {
            let rest = text
                .get(text.to_ascii_lowercase().find("route").unwrap_or(0) + 5..)
                .unwrap_or("")
                .trim();
            explain_route(ctx, rest)
        }
        ("set", "node") if kw(3) == "weight" && words.len() == 5 => {
            need_admin(role, "SET NODE")?;
            let weight: u32 = words[4]
                .parse()
                .ok()
                .filter(|w| *w <= 1_000_000)
                .ok_or_else(|| {
                    AdminError::Syntax(format!("{:?} is not a weight (0..1000000)", words[4]))
                })?;
            let (c, id) = find_node(ctx, words[2])?;
            c.state().update(|nodes| {
                nodes[id].weight = weight;
                nodes[id].effective_weight = weight.saturating_mul(100);
            });
            tracing::info!(cluster = %c.config().name, node = %words[2], weight, "weight set from the admin console");
            Ok(Reply::Done("SET".into()))
        }
        ("drain", "node") | ("undrain", "node") if words.len() == 3 => {
            let drain = kw(0) == "drain";
            need_admin(role, if drain { "DRAIN" } else { "UNDRAIN" })?;
            let (c, id) = find_node(ctx, words[2])?;
            c.state().update(|nodes| nodes[id].drained = drain);
            tracing::info!(cluster = %c.config().name, node = %words[2], drain, "drain set from the admin console");
            Ok(Reply::Done(kw(0).to_ascii_uppercase()))
        }
        ("pause", _) | ("resume", _) if words.len() <= 2 => {
            let pause = kw(0) == "pause";
            need_admin(role, if pause { "PAUSE" } else { "RESUME" })?;
            let chosen = clusters_named(ctx, words.get(1).copied())?;
            for c in &chosen {
                c.state().set_paused(pause);
                tracing::info!(cluster = %c.config().name, pause, "paused from the admin console");
            }
            Ok(Reply::Done(kw(0).to_ascii_uppercase()))
        }
        ("kill", "client") if words.len() == 3 => {
            need_admin(role, "KILL CLIENT")?;
            let (cluster, id) = match words[2].split_once('/') {
                Some((c, id)) => (Some(c), id),
                None => (None, words[2]),
            };
            let id: u64 = id
                .parse()
                .map_err(|_| AdminError::Syntax(format!("{:?} is not a client id", words[2])))?;
            let mut with_id: Vec<ClusterHandle> = clusters_named(ctx, cluster)?
                .into_iter()
                .filter(|c| c.clients().list().iter().any(|cl| cl.id == id))
                .collect();
            match with_id.len() {
                0 => Err(AdminError::Node(format!(
                    "no client {} (SHOW CLIENTS lists them)",
                    words[2]
                ))),
                1 => {
                    let c = with_id.remove(0);
                    c.clients().kill(id);
                    tracing::info!(cluster = %c.config().name, client = id, "client killed from the admin console");
                    Ok(Reply::Done("KILL".into()))
                }
                _ => Err(AdminError::Node(format!(
                    "client {id} exists in several clusters: write cluster/{id}"
                ))),
            }
        }
        ("reload", _) if words.len() == 1 => {
            need_admin(role, "RELOAD")?;
            let summary = ctx.live.reload().await.map_err(|why| {
                AdminError::Failed(format!("config not reloaded, the running one stays: {why}"))
            })?;
            Ok(Reply::Rows {
                columns: vec!["result".into()],
                rows: vec![vec![Some(summary)]],
            })
        }
        ("promote", "node") if words.len() == 3 => {
            need_admin(role, "PROMOTE")?;
            let (c, id) = find_node(ctx, words[2])?;
            let held = c.clone();
            let in_use = move |node: usize| held.in_use(node);
            let summary = crate::monitor::switchover::switchover(c.config(), c.state(), id, in_use)
                .await
                .map_err(|e| AdminError::Failed(e.to_string()))?;
            tracing::info!(cluster = %c.config().name, "switchover: {summary}");
            Ok(Reply::Rows {
                columns: vec!["result".into()],
                rows: vec![vec![Some(summary)]],
            })
        }
        _ => Err(AdminError::Syntax(format!(
            "unknown statement {:?}; {HELP}",
            words.iter().take(3).copied().collect::<Vec<_>>().join(" ")
        ))),
    }
}

/// The clusters a command names (all of them when none is named).
fn clusters_named(
    ctx: &AdminContext,
    name: Option<&str>,
) -> Result<Vec<ClusterHandle>, AdminError> {
    match name {
        None => Ok(ctx.clusters()),
        Some(n) => {
            let n = n.trim_matches(|c| c == '\'' || c == '"');
            let found: Vec<_> = ctx
                .clusters()
                .into_iter()
                .filter(|c| c.config().name == n)
                .collect();
            if found.is_empty() {
                Err(AdminError::Node(format!(
                    "no cluster {n:?} (SHOW CLUSTERS lists them)"
                )))
            } else {
                Ok(found)
            }
        }
    }
}

fn need_admin(role: AdminRole, what: &str) -> Result<(), AdminError> {
    match role {
        AdminRole::Admin => Ok(()),
        AdminRole::Monitor => Err(AdminError::Denied(what.into())),
    }
}

/// A read-only SELECT over a fresh snapshot.
fn select(ctx: &AdminContext, sql: &str) -> Result<Reply, AdminError> {
    let db = tables::snapshot(ctx)?;
    let mut stmt = db.prepare(sql)?;
    if !stmt.readonly() {
        return Err(AdminError::Syntax(
            "the console's tables are read-only snapshots; use the commands to change things"
                .into(),
        ));
    }
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let n = columns.len();
    let mut rows = Vec::new();
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            use rusqlite::types::ValueRef;
            row.push(match r.get_ref(i)? {
                ValueRef::Null => None,
                ValueRef::Integer(v) => Some(v.to_string()),
                ValueRef::Real(v) => Some(v.to_string()),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Some(String::from_utf8_lossy(t).into_owned())
                }
            });
        }
        rows.push(row);
    }
    Ok(Reply::Rows { columns, rows })
}

/// `SELECT @@version_comment LIMIT 1` and friends, which MySQL clients send at login.
fn session_variable(text: &str) -> Option<Reply> {
    let lower = text.to_ascii_lowercase();
    let rest = lower.strip_prefix("select")?.trim_start();
    let name = rest.strip_prefix("@@")?;
    let name: String = name
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .collect();
    let value = match name.trim_start_matches("session.") {
        "version_comment" => Some("switchyard admin console".to_string()),
        "version" => Some(format!("{}-switchyard", env!("CARGO_PKG_VERSION"))),
        "max_allowed_packet" => Some("16777216".into()),
        _ => None,
    };
    Some(Reply::Rows {
        columns: vec![format!("@@{name}")],
        rows: vec![vec![value]],
    })
}

/// Finds a node by name (or "cluster/name") across the clusters.
fn find_node(ctx: &AdminContext, spec: &str) -> Result<(ClusterHandle, usize), AdminError> {
    let spec = spec.trim_matches(|c| c == '\'' || c == '"');
    let (cluster, name) = match spec.split_once('/') {
        Some((c, n)) => (Some(c), n),
        None => (None, spec),
    };
    let mut found = Vec::new();
    for c in ctx.clusters() {
        if cluster.is_some_and(|want| want != c.config().name) {
            continue;
        }
        let snap = c.state().load_full();
        for n in snap.nodes.iter().filter(|n| n.name == name) {
            found.push((c.clone(), n.id));
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(AdminError::Node(format!(
            "no node {spec:?} (SHOW NODES lists them)"
        ))),
        _ => Err(AdminError::Node(format!(
            "{spec:?} names nodes in several clusters: write cluster/name"
        ))),
    }
}

/// EXPLAIN ROUTE: per cluster, where the statement would go now and why.
fn explain_route(ctx: &AdminContext, statement: &str) -> Result<Reply, AdminError> {
    if statement.is_empty() {
        return Err(AdminError::Syntax("EXPLAIN ROUTE needs a statement".into()));
    }
    let columns = ["cluster", "intent", "reason", "target", "node", "why"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut rows = Vec::new();
    for c in &ctx.clusters() {
        let cfg = c.config();
        let opts = ClassifyOptions {
            side_effect_functions: cfg.side_effect_functions.clone(),
        };
        let class = match c {
            ClusterHandle::Postgres(_) => crate::route::classify(statement, &opts),
            ClusterHandle::Mysql(_) => crate::route::classify_mysql(statement, &opts),
        };
        let begins_write = class
            .effects()
            .any(|e| matches!(e, Effect::Begin { read_only: false }));
        let pin = class.pins();
        let (primary, why) = if let Some(p) = pin {
            (
                true,
                format!("creates session state ({p}): the session stays on its primary connection"),
            )
        } else if class.hint == Some(RouteHint::Primary) {
            (true, "hint: primary".to_string())
        } else if begins_write {
            (true, "opens a read-write transaction".to_string())
        } else if class.intent == Intent::Write && class.hint != Some(RouteHint::Replica) {
            (true, format!("a write ({})", class.reason.as_str()))
        } else {
            (
                false,
                format!("a read ({}): replicas by weight", class.reason.as_str()),
            )
        };
        let snap = c.state().load_full();
        let node = if primary {
            snap.primary().map(|n| n.name.clone())
        } else {
            ReplicaPicker::seeded(0)
                .pick(&snap, None)
                .and_then(|id| snap.node(id))
                .or_else(|| snap.primary())
                .map(|n| n.name.clone())
        };
        let why = match (&node, primary) {
            (None, true) => format!("{why}; no primary now: writes wait for a failover"),
            (None, false) => format!("{why}; no node can serve it now"),
            (Some(n), false) if snap.primary().is_some_and(|p| &p.name == n) => {
                format!("{why}; no replica serves reads now, so the primary")
            }
            _ => why,
        };
        let intent = match class.intent {
            Intent::Read => "read",
            Intent::Write => "write",
        };
        rows.push(vec![
            Some(cfg.name.clone()),
            Some(intent.to_string()),
            Some(class.reason.as_str().to_string()),
            Some(if primary { "primary" } else { "replica" }.to_string()),
            node,
            Some(why),
        ]);
    }
    Ok(Reply::Rows { columns, rows })
}
