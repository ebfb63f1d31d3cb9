use super::*;
use crate::cluster::{ClusterState, Health, Role};
use crate::config::Config;
use crate::route::{classify, classify_mysql, ClassifyOptions, Reason};
use hyper::Method;
use std::sync::Arc;

fn config(name: &str) -> Config {
    let text = format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n\n[[clusters]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\n\n[[clusters.users]]\nname = \"app\"\npassword = \"app\"\n\n[[clusters.nodes]]\nname = \"p\"\naddr = \"127.0.0.1:1\"\nrole = \"primary\"\n\n[[clusters.nodes]]\nname = \"r\"\naddr = \"127.0.0.1:2\"\nrole = \"replica\"\n"
    );
    Config::parse(&text, "t.toml").expect("valid")
}

fn kind_pg(sql: &str) -> StatementKind {
    let c = classify(sql, &ClassifyOptions::default());
    let st = &c.statements[0];
    StatementKind::of(st.intent, st.reason)
}

#[test]
fn statement_kinds_follow_the_classifier() {
    for (sql, kind) in [
        ("SELECT 1", StatementKind::Read),
        ("SHOW search_path", StatementKind::Read),
        ("WITH a AS (SELECT 1) SELECT * FROM a", StatementKind::Read),
        ("INSERT INTO t VALUES (1)", StatementKind::Write),
        ("CREATE TABLE t (a int)", StatementKind::Write),
        ("SELECT * FROM t FOR UPDATE", StatementKind::Write),
        ("SELECT nextval('s')", StatementKind::Write),
        ("BEGIN", StatementKind::Transaction),
        ("COMMIT", StatementKind::Transaction),
        ("SAVEPOINT a", StatementKind::Transaction),
        ("SET search_path = a", StatementKind::Other),
        ("DISCARD ALL", StatementKind::Other),
        ("LISTEN x", StatementKind::Other),
    ] {
        assert_eq!(kind_pg(sql), kind, "{sql}");
    }
    let c = classify_mysql(
        "SELECT 1; INSERT INTO t VALUES (1); START TRANSACTION; USE db",
        &ClassifyOptions::default(),
    );
    let t = Tally::of(&c);
    assert_eq!(t.count(StatementKind::Read), 1);
    assert_eq!(t.count(StatementKind::Write), 1);
    assert_eq!(t.count(StatementKind::Transaction), 1);
    assert_eq!(t.count(StatementKind::Other), 1);
    assert_eq!(t.reason, ReasonLabel::Classified(Reason::Write));
}

#[test]
fn reason_labels_index_a_table_without_gaps() {
    for (i, r) in Reason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i, "{r:?} out of order in Reason::ALL");
        assert_eq!(ReasonLabel::from(*r).index(), i);
        assert_eq!(ReasonLabel::name_of(i), r.as_str());
    }
    let mut names: Vec<&str> = (0..ReasonLabel::COUNT).map(ReasonLabel::name_of).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ReasonLabel::COUNT, "reason labels are unique");
    for extra in [
        ReasonLabel::FunctionCall,
        ReasonLabel::UnknownStatement,
        ReasonLabel::None,
    ] {
        assert!(extra.index() < ReasonLabel::COUNT);
    }
    assert_eq!(ReasonLabel::None.as_str(), "none");
    for (i, k) in ErrorKind::ALL.iter().enumerate() {
        assert_eq!(*k as usize, i);
    }
    for (i, k) in StatementKind::ALL.iter().enumerate() {
        assert_eq!(*k as usize, i);
    }
}

#[test]
fn error_codes_map_to_kinds() {
    assert_eq!(ErrorKind::of_sqlstate("08000"), Some(ErrorKind::NoNode));
    assert_eq!(
        ErrorKind::of_sqlstate("08006"),
        Some(ErrorKind::ConnectionLost)
    );
    assert_eq!(ErrorKind::of_sqlstate("28P01"), Some(ErrorKind::AuthFailed));
    assert_eq!(ErrorKind::of_sqlstate("25P03"), Some(ErrorKind::Timeout));
    // The pool counts its own timeouts; a server's own errors are not counted.
    assert_eq!(ErrorKind::of_sqlstate("53300"), None);
    assert_eq!(ErrorKind::of_sqlstate("42P01"), None);
    assert_eq!(ErrorKind::of_mysql_code(9001), Some(ErrorKind::NoNode));
    assert_eq!(ErrorKind::of_mysql_code(1040), None);
}

#[test]
fn every_metric_is_documented() {
    let doc = include_str!("../../docs/metrics.md");
    for (name, _, _) in names::ALL {
        assert!(
            doc.contains(&format!("`{name}`")),
            "{name} missing from docs/metrics.md"
        );
    }
}

#[test]
fn readiness_needs_a_primary_or_a_replica_serving_reads() {
    let cfg = config("ready-unit");
    let state = ClusterState::new(&cfg.clusters[0]);
    // Not probed yet: not ready.
    assert!(readiness(&state.load()).is_err());
    state.update(|n| n[0].health = Health::Up);
    assert!(readiness(&state.load()).is_ok());
    state.update(|n| {
        n[0].health = Health::Down;
        n[1].health = Health::Up;
    });
    assert!(readiness(&state.load()).is_ok(), "a replica serves reads");
    state.update(|n| n[1].health = Health::Down);
    assert_eq!(
        readiness(&state.load()),
        Err("no primary and no replica serving reads")
    );
}

fn endpoint(name: &str, enabled: bool) -> (Endpoint, Arc<ClusterState>, Arc<ClusterMetrics>) {
    // The recorder first: handles built before it would be no-ops.
    let rec = if enabled { recorder() } else { None };
    let cfg = config(name);
    let c = &cfg.clusters[0];
    let state = Arc::new(ClusterState::new(c));
    let metrics = Arc::new(ClusterMetrics::new(c, enabled));
    let ep = Endpoint::new(
        rec,
        vec![ObservedCluster {
            metrics: metrics.clone(),
            state: state.clone(),
            pools: Box::new(|| vec![crate::pool::PoolStats::default(); 2]),
        }],
    );
    (ep, state, metrics)
}

#[test]
fn endpoint_answers_health_ready_and_404() {
    let (ep, state, _) = endpoint("ep-unit", false);
    assert_eq!(ep.answer(&Method::GET, "/health").status, 200);
    assert_eq!(ep.answer(&Method::GET, "/nope").status, 404);
    assert_eq!(ep.answer(&Method::POST, "/health").status, 404);
    assert_eq!(ep.answer(&Method::GET, "/ready").status, 503, "starting");
    ep.mark_started();
    let r = ep.answer(&Method::GET, "/ready");
    assert_eq!(r.status, 503);
    assert!(r.body.contains("cluster ep-unit"), "{}", r.body);
    state.update(|n| n[0].health = Health::Up);
    assert_eq!(ep.answer(&Method::GET, "/ready").status, 200);
    // No recorder given: /metrics says so instead of an empty page.
    assert_eq!(ep.answer(&Method::GET, "/metrics").status, 500);
}

#[test]
fn recorded_statements_render_as_counters_and_a_histogram() {
    let (ep, state, metrics) = endpoint("render-unit", true);
    assert!(metrics.enabled());
    let c = classify("SELECT 1; SELECT 2", &ClassifyOptions::default());
    let t = Tally::of(&c);
    let sent = metrics.clock();
    assert!(sent.is_some(), "the clock is read when metrics are on");
    metrics.record(1, Some(Role::Replica), &t, sent, metrics.clock());
    metrics.error(ErrorKind::NoNode);
    state.update(|n| {
        n[0].health = Health::Up;
        n[1].health = Health::Up;
    });
    let page = ep.answer(&Method::GET, "/metrics");
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, PROMETHEUS_TEXT);
    let body = page.body;
    let line = |prefix: &str| {
        body.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{body}"))
            .to_string()
    };
    assert!(line("switchyard_queries_total{cluster=\"render-unit\"").contains("kind=\"read\""));
    assert!(line("switchyard_queries_total{cluster=\"render-unit\"").ends_with(" 2"));
    assert!(line("switchyard_route_decisions_total{cluster=\"render-unit\"").ends_with(" 1"));
    assert!(
        line("switchyard_errors_total{cluster=\"render-unit\",kind=\"no_node\"}").ends_with(" 1")
    );
    assert!(
        line("switchyard_query_duration_seconds_bucket{cluster=\"render-unit\"").contains("le=\"")
    );
    assert!(body.contains("# TYPE switchyard_query_duration_seconds histogram"));
    assert!(line("switchyard_cluster_ready{cluster=\"render-unit\"}").ends_with(" 1"));
    assert!(
        line("switchyard_node_state{cluster=\"render-unit\",node=\"r\",state=\"up\"}")
            .ends_with(" 1")
    );
    // Disabled handles record nothing and read no clock.
    let off = ClusterMetrics::new(&config("off-unit").clusters[0], false);
    assert!(off.clock().is_none());
    off.record(0, None, &t, None, None);
    assert!(!ep
        .answer(&Method::GET, "/metrics")
        .body
        .contains("off-unit"));
}
