//! The metrics endpoint against real servers: /metrics parses as Prometheus text format and
//! counts exactly the statements a test sent (tokio-postgres through a PostgreSQL cluster,
//! mysql_async through a MySQL one), every metric it shows is documented, /health answers,
//! /ready follows the nodes' reachability, and the endpoint closes when the server stops.
//! Each test names its cluster uniquely: the tests of this binary share one recorder.

mod common;

use common::mysql::mysql_config_for;
use common::*;
use prometheus_parse::{Scrape, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;
use switchyard_testbed::{shared_maria, shared_pg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// `config` (one cluster named `old`) renamed `new`, with a metrics endpoint on a free port.
fn with_metrics(config: &str, old: &str, new: &str) -> String {
    let renamed = config.replacen(
        &format!("name = \"{old}\""),
        &format!("name = \"{new}\""),
        1,
    );
    format!("[metrics]\nlisten = \"127.0.0.1:0\"\n\n{renamed}")
}

/// Starts a server for `config`; returns its first listener and its metrics endpoint.
fn start(config: &str) -> (SocketAddr, SocketAddr) {
    let (addr, metrics) = start_server(config, |r| r.metrics_addr);
    (addr, metrics.expect("metrics endpoint bound"))
}

/// One HTTP/1.1 request; (status, body). Bounded by 5 s.
async fn http(addr: SocketAddr, request: &str) -> std::io::Result<(u16, String)> {
    let work = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((status, body.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    http(addr, &req).await.expect("http request")
}

/// Polls `f` every 100 ms for up to `limit`; true once it holds.
async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A scrape, checked strictly against the text exposition format, then parsed.
struct Page {
    text: String,
    scrape: Scrape,
}

impl Page {
    async fn get(addr: SocketAddr) -> Page {
        let (status, text) = get(addr, "/metrics").await;
        assert_eq!(status, 200, "{text}");
        if let Err(e) = check_exposition(&text) {
            panic!("not Prometheus text format: {e}\n{text}");
        }
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
        Page { text, scrape }
    }

    /// Sum of the counter, gauge or untyped samples named `name` whose labels include `want`.
    fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && want.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    }

    /// Names of the metric families on the page (from their TYPE lines).
    fn families(&self) -> Vec<String> {
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => v.parse::<f64>().map_err(|e| format!("value {v:?}: {e}")),
    }
}

/// Parses `{a="x",b="y"}` (escapes \\ \" \n) at the start of `s`; (labels, rest).
/// Label pairs of a sample, in order.
type Labels = Vec<(String, String)>;

/// A histogram series' buckets (le, cumulative count) in order, and its _count.
type Series = (Vec<(f64, f64)>, Option<f64>);

fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("labels must start with {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !valid_name(name) || name.contains(':') {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value must be quoted")?
            .char_indices();
        let body = &rest[eq + 2..];
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        labels.push((name.to_string(), value));
        rest = &body[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// A strict check of the text exposition format (version 0.0.4): HELP/TYPE lines, one TYPE
/// per family before its samples, valid names, labels and values, and histograms whose
/// buckets are cumulative up to le="+Inf" equal to their _count.
fn check_exposition(text: &str) -> Result<(), String> {
    let mut types: HashMap<String, String> = HashMap::new();
    // Histogram series (family, labels without le) -> (buckets in order, count).
    let mut buckets: BTreeMap<(String, String), Series> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", i + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), Some(_)) if valid_name(name) => {}
                (Some("TYPE"), Some(name), Some(t)) if valid_name(name) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                        return Err(at(format!("unknown type {t}")));
                    }
                    if types.insert(name.to_string(), t.to_string()).is_some() {
                        return Err(at("second TYPE line for a family".into()));
                    }
                }
                (Some("HELP" | "TYPE"), _, _) => return Err(at("malformed HELP/TYPE".into())),
                _ => {}
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let mut fields = rest.split_whitespace();
        let value = parse_value(fields.next().ok_or_else(|| at("no value".into()))?).map_err(at)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .map_err(|e| at(format!("timestamp: {e}")))?;
        }
        if fields.next().is_some() || !rest.starts_with(' ') {
            return Err(at("trailing text".into()));
        }
        let histogram = |suffix: &str| {
            name.strip_suffix(suffix)
                .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
        };
        let (family, part) = if let Some(f) = histogram("_bucket") {
            (f, "bucket")
        } else if let Some(f) = histogram("_count") {
            (f, "count")
        } else if let Some(f) = histogram("_sum") {
            (f, "sum")
        } else {
            (name, "")
        };
        let Some(kind) = types.get(family) else {
            return Err(at(format!("sample before the TYPE of {family}")));
        };
        if kind == "counter" && (value < 0.0 || value.is_nan()) {
            return Err(at("negative counter".into()));
        }
        if kind == "histogram" {
            let key: Vec<String> = labels
                .iter()
                .filter(|(k, _)| k != "le")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let series = buckets
                .entry((family.to_string(), key.join(",")))
                .or_default();
            match part {
                "bucket" => {
                    let le = labels
                        .iter()
                        .find(|(k, _)| k == "le")
                        .ok_or_else(|| at("bucket without le".into()))?;
                    series.0.push((parse_value(&le.1).map_err(at)?, value));
                }
                "count" => series.1 = Some(value),
                "sum" => {}
                _ => return Err(at("histogram sample that is no bucket, sum or count".into())),
            }
        }
    }
    for ((family, labels), (b, count)) in &buckets {
        let what = format!("histogram {family}{{{labels}}}");
        if b.windows(2).any(|w| w[0].0 >= w[1].0 || w[0].1 > w[1].1) {
            return Err(format!("{what}: buckets not increasing and cumulative"));
        }
        match (b.last(), count) {
            (Some((le, n)), Some(c)) if le.is_infinite() && n == c => {}
            _ => return Err(format!("{what}: no le=\"+Inf\" bucket equal to _count")),
        }
    }
    Ok(())
}

/// Every family on the page is documented in docs/metrics.md (as `name`), and carries a
/// `cluster` label on every sample.
fn assert_documented(page: &Page) {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md"))
        .expect("docs/metrics.md");
    let families = page.families();
    assert!(!families.is_empty());
    for f in &families {
        assert!(
            doc.contains(&format!("`{f}`")),
            "{f} is on /metrics but not in docs/metrics.md"
        );
    }
    for s in &page.scrape.samples {
        assert!(
            s.labels.get("cluster").is_some(),
            "{} has no cluster label",
            s.metric
        );
    }
}

/// Statements by kind (and reads on replicas) that one cluster's page counts.
fn kinds(page: &Page, cluster: &str) -> [f64; 5] {
    let q = |kind: &str| {
        page.sum(
            "switchyard_queries_total",
            &[("cluster", cluster), ("kind", kind)],
        )
    };
    let replica_reads = page.sum(
        "switchyard_queries_total",
        &[("cluster", cluster), ("kind", "read"), ("role", "replica")],
    );
    [
        q("read"),
        q("write"),
        q("transaction"),
        q("other"),
        replica_reads,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_queries_are_counted_exactly() {
    const CLUSTER: &str = "metrics_pg";
    let config = with_metrics(&config_for(shared_pg(), &[1, 1], ""), "test", CLUSTER);
    let (addr, http) = start(&config);
    assert_eq!(get(http, "/health").await, (200, "ok\n".to_string()));
    assert!(
        eventually(Duration::from_secs(10), || async {
            get(http, "/ready").await.0 == 200
        })
        .await,
        "ready: {:?}",
        get(http, "/ready").await
    );

    let c = connect(addr).await;
    c.batch_execute("CREATE TABLE IF NOT EXISTS metrics_pg_t (a int)")
        .await
        .expect("ddl");
    const READS: i32 = 20;
    const WRITES: i32 = 7;
    for i in 0..READS {
        let row = c.query_one("SELECT $1::int4", &[&i]).await.expect("read");
        assert_eq!(row.get::<_, i32>(0), i);
    }
    for i in 0..WRITES {
        c.execute("INSERT INTO metrics_pg_t VALUES ($1)", &[&i])
            .await
            .expect("write");
    }
    // Simple protocol: two reads in one round trip, a setting, a transaction with a write.
    c.simple_query("SELECT 1; SELECT 2")
        .await
        .expect("two reads");
    c.simple_query("SET application_name = 'metrics'")
        .await
        .expect("set");
    c.batch_execute("BEGIN").await.expect("begin");
    c.execute("INSERT INTO metrics_pg_t VALUES ($1)", &[&100i32])
        .await
        .expect("write in a transaction");
    c.batch_execute("COMMIT").await.expect("commit");

    let page = Page::get(http).await;
    let [read, write, txn, other, replica_reads] = kinds(&page, CLUSTER);
    let reads = f64::from(READS + 2);
    assert_eq!(read, reads, "reads");
    assert_eq!(replica_reads, reads, "every read ran on a replica");
    assert_eq!(write, f64::from(WRITES + 2), "INSERTs and the CREATE TABLE");
    assert_eq!(txn, 2.0, "BEGIN and COMMIT");
    assert_eq!(other, 1.0, "SET");
    let decisions = |reason: &str| {
        page.sum(
            "switchyard_route_decisions_total",
            &[("cluster", CLUSTER), ("reason", reason)],
        )
    };
    assert_eq!(decisions("select"), f64::from(READS + 1));
    assert_eq!(decisions("write"), f64::from(WRITES + 1));
    assert_eq!(decisions("ddl"), 1.0);
    assert_eq!(decisions("transaction"), 2.0);
    assert_eq!(decisions("set"), 1.0);
    let round_trips = f64::from(READS + WRITES + 6);
    assert_eq!(
        page.sum("switchyard_route_decisions_total", &[("cluster", CLUSTER)]),
        round_trips
    );
    assert_eq!(
        page.sum(
            "switchyard_query_duration_seconds_count",
            &[("cluster", CLUSTER)]
        ),
        round_trips,
        "one latency observation per round trip"
    );
    assert_eq!(
        page.sum(
            "switchyard_clients_connected",
            &[("cluster", CLUSTER), ("protocol", "postgres")]
        ),
        1.0
    );
    assert_eq!(
        page.sum("switchyard_errors_total", &[("cluster", CLUSTER)]),
        0.0
    );
    assert_eq!(
        page.sum("switchyard_cluster_ready", &[("cluster", CLUSTER)]),
        1.0
    );
    assert_eq!(
        page.sum(
            "switchyard_node_state",
            &[("cluster", CLUSTER), ("state", "up")]
        ),
        3.0
    );
    assert_eq!(
        page.sum(
            "switchyard_node_role",
            &[("cluster", CLUSTER), ("role", "replica")]
        ),
        2.0
    );
    assert_eq!(
        page.sum("switchyard_node_serving", &[("cluster", CLUSTER)]),
        3.0
    );
    assert!(
        page.sum(
            "switchyard_pool_connections",
            &[("cluster", CLUSTER), ("state", "idle")]
        ) >= 1.0,
        "transaction pooling returned the connections"
    );
    assert_documented(&page);
    let replica = shared_pg().nodes()[1].name.as_str();
    let lag = format!("switchyard_replica_lag_bytes{{cluster=\"{CLUSTER}\",node=\"{replica}\"}}");
    assert!(
        lag_shown(http, &lag).await,
        "replica lag shown once both nodes were probed"
    );

    drop(c);
    assert!(
        eventually(Duration::from_secs(5), || async {
            Page::get(http)
                .await
                .sum("switchyard_clients_connected", &[("cluster", CLUSTER)])
                == 0.0
        })
        .await,
        "the client's close is seen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_queries_are_counted_exactly() {
    use mysql_async::prelude::*;
    const CLUSTER: &str = "metrics_my";
    let config = with_metrics(
        &mysql_config_for(shared_maria(), &[1, 1], ""),
        "mtest",
        CLUSTER,
    );
    let (addr, http) = start(&config);
    let url = format!(
        "mysql://app:app@127.0.0.1:{}/app?prefer_socket=false",
        addr.port()
    );
    let mut c = mysql_async::Conn::from_url(url.as_str())
        .await
        .expect("connect through the proxy");
    c.query_drop("CREATE TABLE IF NOT EXISTS metrics_my_t (a INT)")
        .await
        .expect("ddl");
    // What the driver sent on its own while connecting is counted before the baseline.
    let before = kinds(&Page::get(http).await, CLUSTER);
    const READS: i64 = 15;
    const WRITES: i64 = 6;
    for i in 0..READS {
        let v: Option<i64> = c
            .query_first(format!("SELECT {i} + 1"))
            .await
            .expect("text read");
        assert_eq!(v, Some(i + 1));
    }
    for i in 0..WRITES {
        c.exec_drop("INSERT INTO metrics_my_t VALUES (?)", (i,))
            .await
            .expect("prepared write");
    }
    let page = Page::get(http).await;
    let after = kinds(&page, CLUSTER);
    let delta: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(
        delta,
        vec![READS as f64, WRITES as f64, 0.0, 0.0, READS as f64],
        "read, write, transaction, other, reads on replicas"
    );
    assert_eq!(
        page.sum(
            "switchyard_clients_connected",
            &[("cluster", CLUSTER), ("protocol", "mysql")]
        ),
        1.0
    );
    assert_eq!(
        page.sum(
            "switchyard_route_decisions_total",
            &[("cluster", CLUSTER), ("reason", "ddl")]
        ),
        1.0
    );
    assert_eq!(
        page.sum("switchyard_errors_total", &[("cluster", CLUSTER)]),
        0.0
    );
    assert_documented(&page);
    let lag = format!("switchyard_replica_lag_transactions{{cluster=\"{CLUSTER}\"");
    assert!(
        lag_shown(http, &lag).await,
        "replica lag shown once both nodes were probed"
    );
    c.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_waits_and_timeouts_are_measured() {
    const CLUSTER: &str = "metrics_pool";
    let config = with_metrics(
        &config_for(
            shared_pg(),
            &[1, 1],
            "pool_size = 1\npool_timeout = \"1s\"\n",
        ),
        "test",
        CLUSTER,
    );
    let (addr, http) = start(&config);
    let primary = shared_pg().nodes()[0].name.clone();
    let on_primary = |state: &'static str| {
        let primary = primary.clone();
        move |page: &Page| page.sum(state, &[("cluster", CLUSTER), ("node", primary.as_str())])
    };
    // Both log in first (a login borrows a connection of the primary's pool too).
    let a = connect(addr).await;
    let b = connect(addr).await;
    a.batch_execute("CREATE TABLE IF NOT EXISTS metrics_pool_t (a int)")
        .await
        .expect("ddl");
    a.batch_execute("BEGIN; INSERT INTO metrics_pool_t VALUES (1)")
        .await
        .expect("A holds the primary's only connection");
    let page = Page::get(http).await;
    assert_eq!(
        page.sum(
            "switchyard_pool_connections",
            &[
                ("cluster", CLUSTER),
                ("node", primary.as_str()),
                ("state", "in_use")
            ]
        ),
        1.0
    );
    let waiting = tokio::spawn(async move {
        b.batch_execute("INSERT INTO metrics_pool_t VALUES (2)")
            .await
            .map_err(|e| e.code().map(|c| c.code().to_string()))
    });
    let waiting_now = on_primary("switchyard_pool_waiting_clients");
    assert!(
        eventually(Duration::from_millis(900), || async {
            waiting_now(&Page::get(http).await) == 1.0
        })
        .await,
        "B's checkout is seen waiting"
    );
    let outcome = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("B's wait is bounded")
        .expect("task");
    assert_eq!(outcome, Err(Some("53300".to_string())), "pool timeout");
    a.batch_execute("COMMIT").await.expect("commit");
    let page = Page::get(http).await;
    assert_eq!(waiting_now(&page), 0.0);
    assert_eq!(
        page.sum(
            "switchyard_errors_total",
            &[("cluster", CLUSTER), ("kind", "pool_timeout")]
        ),
        1.0
    );
    let waits = on_primary("switchyard_pool_wait_seconds_count");
    let waited = on_primary("switchyard_pool_wait_seconds_sum");
    assert_eq!(waits(&page), 1.0, "one checkout waited");
    assert!(
        (1.0..3.0).contains(&waited(&page)),
        "it waited pool_timeout: {}",
        waited(&page)
    );
    assert_documented(&page);
}

/// Whether a scrape shows a line starting with `prefix` within 5 s (lag is known once the
/// primary and the replica were both probed, a few probe intervals after start).
async fn lag_shown(http: SocketAddr, prefix: &str) -> bool {
    eventually(Duration::from_secs(5), || async {
        Page::get(http)
            .await
            .text
            .lines()
            .any(|l| l.starts_with(prefix))
    })
    .await
}

/// A TCP relay to `target` on `port` that can be taken down (listener closed, relayed
/// connections cut) and brought back.
async fn relay(port: u16, target: SocketAddr, mut up: watch::Receiver<bool>) {
    loop {
        while !*up.borrow_and_update() {
            if up.changed().await.is_err() {
                return;
            }
        }
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("relay binds its port again");
        let mut relays = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                r = listener.accept() => {
                    if let Ok((mut client, _)) = r {
                        relays.spawn(async move {
                            if let Ok(mut server) = TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        });
                    }
                }
                r = up.changed() => {
                    if r.is_err() || !*up.borrow() {
                        break;
                    }
                }
            }
        }
        // Dropping the set aborts the relayed connections.
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_whether_a_node_is_usable() {
    const CLUSTER: &str = "metrics_ready";
    let primary = shared_pg().nodes()[0].port;
    let port = free_port();
    let (up_tx, up_rx) = watch::channel(true);
    tokio::spawn(relay(
        port,
        SocketAddr::from(([127, 0, 0, 1], primary)),
        up_rx,
    ));
    let config = format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n\n[[clusters]]\nname = \"{CLUSTER}\"\nlisten = \"127.0.0.1:0\"\nhealth_check_interval = \"100ms\"\nhealth_check_timeout = \"1s\"\n\n[[clusters.users]]\nname = \"app\"\npassword = \"app\"\n\n[[clusters.nodes]]\nname = \"only\"\naddr = \"127.0.0.1:{port}\"\nrole = \"primary\"\n"
    );
    let (_, http) = start(&config);
    let ready = || async { get(http, "/ready").await };
    assert!(
        eventually(Duration::from_secs(10), || async { ready().await.0 == 200 }).await,
        "ready through the relay: {:?}",
        ready().await
    );
    // The only node becomes unreachable: not ready, and the body names the cluster.
    up_tx.send_replace(false);
    assert!(
        eventually(Duration::from_secs(10), || async { ready().await.0 == 503 }).await,
        "not ready once the node is down"
    );
    let (_, body) = ready().await;
    assert!(body.contains(&format!("cluster {CLUSTER}")), "{body}");
    assert_eq!(get(http, "/health").await.0, 200, "alive all the same");
    let page = Page::get(http).await;
    assert_eq!(
        page.sum("switchyard_cluster_ready", &[("cluster", CLUSTER)]),
        0.0
    );
    assert_eq!(
        page.sum(
            "switchyard_node_state",
            &[("cluster", CLUSTER), ("state", "down")]
        ),
        1.0
    );
    assert!(
        page.sum(
            "switchyard_state_changes_total",
            &[("cluster", CLUSTER), ("event", "node_down")]
        ) >= 1.0
    );
    // Back: ready again once the monitor readmits it.
    up_tx.send_replace(true);
    assert!(
        eventually(Duration::from_secs(10), || async { ready().await.0 == 200 }).await,
        "ready again: {:?}",
        ready().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_cluster_is_named_and_the_endpoint_stops_with_the_server() {
    let dead = free_port();
    let ok = with_metrics(
        &config_for(shared_pg(), &[1, 1], ""),
        "test",
        "metrics_alive",
    );
    let config = format!(
        "{ok}\n[[clusters]]\nname = \"metrics_dead\"\nlisten = \"127.0.0.1:0\"\nhealth_check_interval = \"200ms\"\n\n[[clusters.users]]\nname = \"app\"\npassword = \"app\"\n\n[[clusters.nodes]]\naddr = \"127.0.0.1:{dead}\"\nrole = \"primary\"\n"
    );
    let cfg = switchyard::config::Config::parse(&config, "t.toml").expect("valid");
    let running = switchyard::server::start(cfg).await.expect("starts");
    let http = running.metrics_addr.expect("metrics endpoint");
    let (status, body) = get(http, "/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("cluster metrics_dead") && !body.contains("metrics_alive"),
        "{body}"
    );
    assert_eq!(get(http, "/nope").await.0, 404);
    let post =
        "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(http_status(http, post).await, Some(404));
    // An oversized request head is refused, not buffered.
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert!(
        matches!(http_status(http, &huge).await, None | Some(431)),
        "oversized head"
    );

    // A client of the dead cluster is told no node is up; counted as no_node.
    let dead_addr = running.addrs[1];
    let refused =
        tokio_postgres::connect(&conn_str(dead_addr, "app", "app"), tokio_postgres::NoTls).await;
    assert!(refused.is_err(), "no node to log in on");
    let page = Page::get(http).await;
    assert_eq!(
        page.sum(
            "switchyard_errors_total",
            &[("cluster", "metrics_dead"), ("kind", "no_node")]
        ),
        1.0
    );
    assert_eq!(
        page.sum("switchyard_cluster_ready", &[("cluster", "metrics_alive")]),
        1.0
    );
    assert_documented(&page);

    running.stop();
    let closed = eventually(Duration::from_secs(5), || async {
        TcpStream::connect(http).await.is_err()
    })
    .await;
    assert!(closed, "the endpoint closes with the server");
}

/// The status of one raw request, or None when the server closed without answering.
async fn http_status(addr: SocketAddr, request: &str) -> Option<u16> {
    http(addr, request)
        .await
        .ok()
        .map(|(s, _)| s)
        .filter(|s| *s != 0)
}
