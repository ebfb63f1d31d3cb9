//! The console's tables: a snapshot of every cluster loaded into a fresh in-memory SQLite
//! database per statement, so SHOW and any SELECT (WHERE, ORDER BY, GROUP BY, LIMIT, joins)
//! read one consistent moment.

use super::AdminContext;
use crate::cluster::Role;
use rusqlite::{params, Connection};

/// Each table with its columns, in the order SHOW prints them.
pub const TABLES: &[(&str, &str)] = &[
    (
        "clusters",
        "name TEXT, protocol TEXT, listen TEXT, primary_node TEXT, nodes INTEGER, \
         serving_replicas INTEGER, split_brain INTEGER, failover_mode TEXT, pool_mode TEXT, \
         read_your_writes TEXT",
    ),
    (
        "nodes",
        "cluster TEXT, id INTEGER, name TEXT, addr TEXT, role TEXT, state TEXT, \
         serving INTEGER, not_serving TEXT, weight INTEGER, effective_weight REAL, \
         lag_bytes INTEGER, lag_seconds REAL, fenced INTEGER, drained INTEGER, \
         connections INTEGER, in_use INTEGER, idle INTEGER, errors INTEGER",
    ),
    (
        "pools",
        "cluster TEXT, node TEXT, user TEXT, database TEXT, size INTEGER, in_use INTEGER, \
         idle INTEGER",
    ),
    (
        "clients",
        "cluster TEXT, id INTEGER, user TEXT, database TEXT, addr TEXT, \
         connected_seconds REAL",
    ),
    (
        "stats",
        "cluster TEXT, node TEXT, role TEXT, queries INTEGER, reads INTEGER, writes INTEGER, \
         transactions INTEGER, other INTEGER, mean_latency_ms REAL",
    ),
    ("errors", "cluster TEXT, kind TEXT, count INTEGER"),
    (
        "servers",
        "cluster TEXT, node TEXT, user TEXT, database TEXT, state TEXT, \
         connected_seconds REAL, idle_seconds REAL",
    ),
    (
        "queries",
        "cluster TEXT, digest TEXT, calls INTEGER, primary_calls INTEGER, \
         replica_calls INTEGER, total_ms REAL, mean_ms REAL",
    ),
    ("config", "cluster TEXT, key TEXT, value TEXT"),
    ("version", "name TEXT, version TEXT, uptime_seconds REAL"),
];

/// A database holding the current snapshot.
pub fn snapshot(ctx: &AdminContext) -> rusqlite::Result<Connection> {
    let db = Connection::open_in_memory()?;
    for (name, columns) in TABLES {
        db.execute_batch(&format!("CREATE TABLE {name} ({columns});"))?;
    }
    for c in &ctx.clusters() {
        let cfg = c.config();
        let snap = c.state().load_full();
        let pools = c.pools();
        let primary = snap.primary().map(|p| p.name.clone());
        let serving = snap.nodes.iter().filter(|n| n.serves_reads()).count();
        db.execute(
            "INSERT INTO clusters VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                cfg.name,
                c.protocol(),
                cfg.listen,
                primary,
                snap.nodes.len() as i64,
                serving as i64,
                snap.split_brain,
                format!("{:?}", cfg.failover.mode).to_lowercase(),
                format!("{:?}", cfg.pool_mode).to_lowercase(),
                format!("{:?}", cfg.read_your_writes).to_lowercase(),
            ],
        )?;
        for n in &snap.nodes {
            let (idle, used) = pools
                .iter()
                .filter(|p| p.key.node == n.id)
                .fold((0, 0), |(i, u), p| (i + p.idle, u + p.in_use));
            let role = match n.role {
                Some(Role::Primary) => "primary",
                Some(Role::Replica) => "replica",
                None => "unknown",
            };
            db.execute(
                "INSERT INTO nodes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
                 ?13, ?14, ?15, ?16, ?17, ?18)",
                params![
                    cfg.name,
                    n.id as i64,
                    n.name,
                    n.addr,
                    role,
                    n.health.name(),
                    n.serves_reads(),
                    n.not_serving_reason(),
                    i64::from(n.weight),
                    f64::from(n.effective_weight) / 100.0,
                    n.lag_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
                    n.lag_seconds,
                    n.fenced,
                    n.drained,
                    (idle + used) as i64,
                    used as i64,
                    idle as i64,
                    i64::try_from(c.state().errors(n.id)).unwrap_or(i64::MAX),
                ],
            )?;
        }
        for p in &pools {
            let name = snap.node(p.key.node).map_or("?", |n| n.name.as_str());
            db.execute(
                "INSERT INTO pools VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    cfg.name,
                    name,
                    p.key.user,
                    p.key.database,
                    cfg.pool_size as i64,
                    p.in_use as i64,
                    p.idle as i64
                ],
            )?;
        }
        for row in c.metrics().stats() {
            let by = |k: &str| {
                row.kinds
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map_or(0, |(_, v)| i64::try_from(*v).unwrap_or(i64::MAX))
            };
            let total: i64 = row
                .kinds
                .iter()
                .map(|(_, v)| i64::try_from(*v).unwrap_or(i64::MAX))
                .sum();
            db.execute(
                "INSERT INTO stats VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    cfg.name,
                    row.node,
                    row.role,
                    total,
                    by("read"),
                    by("write"),
                    by("transaction"),
                    by("other"),
                    row.mean_latency_ms
                ],
            )?;
        }
        for server in c.servers() {
            let name = snap.node(server.key.node).map_or("?", |n| n.name.as_str());
            let (user, database) = (&server.key.user, &server.key.database);
            let (state, connected, idle) = match server.ages {
                Some((opened, since)) => (
                    "idle",
                    Some(opened.elapsed().as_secs_f64()),
                    Some(since.elapsed().as_secs_f64()),
                ),
                None => ("in use", None, None),
            };
            db.execute(
                "INSERT INTO servers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![cfg.name, name, user, database, state, connected, idle],
            )?;
        }
        for q in c.metrics().digests.rows() {
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            db.execute(
                "INSERT INTO queries VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    cfg.name,
                    q.digest,
                    n(q.calls),
                    n(q.primary),
                    n(q.replica),
                    q.total_ms,
                    q.mean_ms
                ],
            )?;
        }
        for (kind, count) in c.metrics().error_totals() {
            db.execute(
                "INSERT INTO errors VALUES (?1, ?2, ?3)",
                params![cfg.name, kind, i64::try_from(count).unwrap_or(i64::MAX)],
            )?;
        }
        for client in c.clients().list() {
            let age = client.since.elapsed().map_or(0.0, |d| d.as_secs_f64());
            db.execute(
                "INSERT INTO clients VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    cfg.name,
                    i64::try_from(client.id).unwrap_or(i64::MAX),
                    client.user,
                    client.database,
                    client.addr.map(|a| a.to_string()),
                    age
                ],
            )?;
        }
        for (key, value) in config_rows(cfg) {
            db.execute(
                "INSERT INTO config VALUES (?1, ?2, ?3)",
                params![cfg.name, key, value],
            )?;
        }
    }
    db.execute(
        "INSERT INTO version VALUES ('switchyard', ?1, ?2)",
        params![
            env!("CARGO_PKG_VERSION"),
            ctx.started.elapsed().as_secs_f64()
        ],
    )?;
    Ok(db)
}

/// The settings an operator asks about, as text (passwords never appear).
fn config_rows(c: &crate::config::ClusterConfig) -> Vec<(&'static str, String)> {
    let d = |v: std::time::Duration| humantime_serde::re::humantime::format_duration(v).to_string();
    let opt = |v: Option<String>| v.unwrap_or_else(|| "off".into());
    vec![
        ("listen", c.listen.clone()),
        ("protocol", format!("{:?}", c.protocol).to_lowercase()),
        ("pool_mode", format!("{:?}", c.pool_mode).to_lowercase()),
        ("pool_size", c.pool_size.to_string()),
        ("pool_min_size", c.pool_min_size.to_string()),
        ("pool_timeout", d(c.pool_timeout)),
        ("health_check_interval", d(c.health_check_interval)),
        ("health_check_timeout", d(c.health_check_timeout)),
        ("eject_after", c.eject_after.to_string()),
        ("readmit_after", c.readmit_after.to_string()),
        ("max_lag_bytes", opt(c.max_lag_bytes.map(|b| b.to_string()))),
        ("max_lag", opt(c.max_lag.map(d))),
        (
            "read_your_writes",
            format!("{:?}", c.read_your_writes).to_lowercase(),
        ),
        (
            "failover.mode",
            format!("{:?}", c.failover.mode).to_lowercase(),
        ),
        ("failover.after", d(c.failover.after)),
        ("failover.timeout", d(c.failover.timeout)),
        (
            "users",
            c.users
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("tls", if c.tls.is_some() { "on" } else { "off" }.into()),
    ]
}
