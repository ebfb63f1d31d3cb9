//! Observability: Prometheus metrics and the HTTP endpoints `/metrics`, `/health`, `/ready`.
//!
//! Metrics go through the `metrics` facade into one Prometheus recorder per process, installed
//! the first time a server whose config has `[metrics]` starts (later starts in the same
//! process, such as integration tests, reuse it). Without `[metrics]` nothing is recorded: the
//! handles are no-ops and no clock is read for metrics. Every metric carries a `cluster`
//! label; docs/metrics.md lists them.
//!
//! The per-statement path only increments handles built once per label combination and kept
//! in the cluster's [`ClusterMetrics`]; gauges that derive from published snapshots, pools and
//! event counters are refreshed when `/metrics` is scraped.

mod cluster;
pub mod digest;
mod http;
mod labels;
mod names;

#[cfg(test)]
mod tests;

pub use cluster::{readiness, ClientGuard, ClusterMetrics, StatsRow, Tally};
pub use http::{serve, Endpoint, ObservedCluster, Reply, PROMETHEUS_TEXT};
pub use labels::{role_index, ErrorKind, ReasonLabel, StatementKind, ROLES};
pub use names::{MetricType, ALL as METRICS, QUERY_BUCKETS, WAIT_BUCKETS};

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on the first call. None when another recorder
/// was installed in this process first (then switchyard's metrics go to that one).
pub fn recorder() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| match install() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!("cannot install the Prometheus recorder: {e}");
                None
            }
        })
        .clone()
}

fn install() -> Result<PrometheusHandle, BuildError> {
    let mut builder = PrometheusBuilder::new().set_buckets(QUERY_BUCKETS)?;
    for (name, ty, _) in names::ALL {
        if *ty == MetricType::Histogram {
            let buckets = if *name == names::POOL_WAIT {
                WAIT_BUCKETS
            } else {
                QUERY_BUCKETS
            };
            builder = builder.set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)?;
        }
    }
    let handle = builder.install_recorder()?;
    for (name, ty, help) in names::ALL {
        match ty {
            MetricType::Counter => metrics::describe_counter!(*name, *help),
            MetricType::Gauge => metrics::describe_gauge!(*name, *help),
            MetricType::Histogram => metrics::describe_histogram!(*name, *help),
        }
    }
    Ok(handle)
}
