//! The HTTP endpoint of `[metrics]`: `GET /metrics` (Prometheus text format), `GET /health`
//! (liveness: the process runs) and `GET /ready` (every cluster can serve). Anything else is
//! 404. Requests are bounded (head size, header read time, connection lifetime, connections
//! at once) and the listener closes when the server shuts down.

use super::cluster::{readiness, ClusterMetrics};
use crate::cluster::ClusterState;
use crate::pool::PoolStats;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Most HTTP connections served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 64;
/// A connection is closed after this long, whatever it is doing.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// A connection past its lifetime (or open at shutdown) gets this long to finish its request.
const CLOSING_GRACE: Duration = Duration::from_secs(5);
/// A request's head must arrive within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head accepted (hyper's minimum buffer size); bodies are never read.
const MAX_HEAD_BYTES: usize = 8192;
/// How often histogram samples are folded in when nobody scrapes (bounds their memory).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A cluster as the endpoint sees it.
pub struct ObservedCluster {
    /// Its metric handles.
    pub metrics: Arc<ClusterMetrics>,
    /// Its published state.
    pub state: Arc<ClusterState>,
    /// Its pools' counts per node, read at scrape time.
    pub pools: Box<dyn Fn() -> Vec<PoolStats> + Send + Sync>,
}

/// What the endpoint serves.
pub struct Endpoint {
    recorder: Option<PrometheusHandle>,
    /// Swapped when a reload replaces cluster contexts.
    clusters: arc_swap::ArcSwap<Vec<ObservedCluster>>,
    started: AtomicBool,
}

/// An answer: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Content-Type header.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

impl Reply {
    fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

impl Endpoint {
    /// An endpoint over `clusters`, rendering `recorder` (None: /metrics answers 500).
    pub fn new(recorder: Option<PrometheusHandle>, clusters: Vec<ObservedCluster>) -> Self {
        Endpoint {
            recorder,
            clusters: arc_swap::ArcSwap::from_pointee(clusters),
            started: AtomicBool::new(false),
        }
    }

    /// The clusters to observe from now on (after a reload).
    pub fn replace_clusters(&self, clusters: Vec<ObservedCluster>) {
        self.clusters.store(Arc::new(clusters));
    }

    /// Every listener is bound and the first probes ran: /ready may answer 200 from now on.
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    /// The answer to `method path`.
    pub fn answer(&self, method: &Method, path: &str) -> Reply {
        if method != Method::GET && method != Method::HEAD {
            return Reply::text(404, "not found\n");
        }
        match path {
            "/metrics" => self.metrics(),
            "/health" => Reply::text(200, "ok\n"),
            "/ready" => self.ready(),
            _ => Reply::text(404, "not found\n"),
        }
    }

    fn ready(&self) -> Reply {
        if !self.started.load(Ordering::Acquire) {
            return Reply::text(503, "not ready: starting\n");
        }
        let not_ready: Vec<String> = self
            .clusters
            .load()
            .iter()
            .filter_map(|c| {
                let snap = c.state.load();
                readiness(&snap)
                    .err()
                    .map(|why| format!("cluster {} ({why})", c.state.name))
            })
            .collect();
        if not_ready.is_empty() {
            Reply::text(200, "ready\n")
        } else {
            Reply::text(503, format!("not ready: {}\n", not_ready.join("; ")))
        }
    }

    fn metrics(&self) -> Reply {
        let Some(recorder) = &self.recorder else {
            return Reply::text(
                500,
                "metrics unavailable: another metrics recorder is installed in this process\n",
            );
        };
        for c in self.clusters.load().iter() {
            let pools = (c.pools)();
            // Readiness is reported by /ready; here only the gauge is refreshed.
            let _ = c.metrics.refresh(&c.state, &pools);
        }
        Reply {
            status: 200,
            content_type: PROMETHEUS_TEXT,
            body: recorder.render(),
        }
    }

    fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let reply = self.answer(req.method(), req.uri().path());
        let mut res = Response::new(Full::new(Bytes::from(reply.body)));
        *res.status_mut() =
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        res.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(reply.content_type),
        );
        res
    }

    /// Runs the recorder's upkeep (folds histogram samples in).
    fn upkeep(&self) {
        if let Some(r) = &self.recorder {
            r.run_upkeep();
        }
    }
}

/// Serves HTTP on `listener` until `shutdown` flips; then the listener is closed and open
/// connections end.
pub async fn serve(
    listener: TcpListener,
    endpoint: Arc<Endpoint>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut upkeep = tokio::time::interval(UPKEEP_EVERY);
    upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = upkeep.tick() => {
                endpoint.upkeep();
                continue;
            }
            _ = shutdown.changed() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(5);
                stream
            }
            Err(e) => {
                tracing::warn!("metrics endpoint: accept failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Over the limit: closing at once is the cheapest answer.
            continue;
        };
        let endpoint = endpoint.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let reply = endpoint.respond(&req);
                async move { Ok::<_, Infallible>(reply) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => Some(r),
                _ = tokio::time::sleep(CONNECTION_LIFETIME) => None,
                _ = shutdown.changed() => None,
            };
            let result = match ended {
                Some(r) => r,
                None => {
                    // Lets a request in flight finish (an idle connection closes at once).
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(CLOSING_GRACE, conn)
                        .await
                        .unwrap_or(Ok(()))
                }
            };
            if let Err(e) = result {
                tracing::debug!("metrics endpoint: connection ended: {e}");
            }
            drop(permit);
        });
    }
}
