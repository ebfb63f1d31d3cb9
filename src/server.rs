//! Process assembly: listeners, monitors and signal handling for a loaded config.

use crate::admin::ClusterHandle;
use crate::config::Config;
use crate::frontend::pg::{serve, ClusterContext};
use crate::live::{Live, LiveCluster, LiveParts};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listen address could not be bound.
    #[error("cluster {cluster}: cannot listen on {addr}: {source}")]
    Bind {
        /// Cluster name.
        cluster: String,
        /// Address.
        addr: String,
        /// The bind error.
        source: std::io::Error,
    },
    /// The cluster's TLS certificate, key or CA could not be loaded.
    #[error("cluster {cluster}: {source}")]
    Tls {
        /// Cluster name.
        cluster: String,
        /// What is wrong with the files or settings.
        source: crate::tls::TlsError,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The metrics endpoint (`[metrics] listen`) could not be bound.
    #[error("metrics endpoint: cannot listen on {addr}: {source}")]
    MetricsBind {
        /// Address.
        addr: String,
        /// The bind error.
        source: std::io::Error,
    },
}

/// Logs to stderr, filtered by RUST_LOG (default "info").
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// A running switchyard: the bound listeners and a way to stop it (used by tests too).
pub struct Running {
    shutdown: watch::Sender<bool>,
    /// Addresses actually bound, one per cluster in config order.
    pub addrs: Vec<std::net::SocketAddr>,
    /// Contexts of the PostgreSQL clusters, in config order.
    pub clusters: Vec<Arc<ClusterContext>>,
    /// Contexts of the MySQL clusters, in config order.
    pub mysql: Vec<Arc<crate::frontend::mysql::MyContext>>,
    /// The admin console's PostgreSQL-wire address, when configured.
    pub admin_postgres: Option<std::net::SocketAddr>,
    /// The admin console's MySQL-wire address, when configured.
    pub admin_mysql: Option<std::net::SocketAddr>,
    /// Address of the metrics endpoint (`[metrics]`), when configured.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The clusters as they are now; `live.reload()` re-reads the config file.
    pub live: Arc<Live>,
}

impl Running {
    /// Stops accepting and stops the monitors.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// Binds every listener, runs the first health probes, and starts serving.
pub async fn start(config: Config) -> Result<Running, ServerError> {
    start_from(config, None).await
}

/// `start`, remembering the file the config came from so that RELOAD and SIGHUP re-read it.
pub async fn start_from(
    config: Config,
    path: Option<std::path::PathBuf>,
) -> Result<Running, ServerError> {
    // Every client and server connection is a descriptor: use all the process may have.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!("file descriptor limit {n}"),
        Err(e) => tracing::warn!("cannot raise the file descriptor limit: {e}"),
    }
    let (tx, rx) = watch::channel(false);
    // The recorder comes first: metric handles are built with the contexts and pools.
    let metrics_on = config.metrics.is_some();
    let recorder = metrics_on.then(crate::observe::recorder).flatten();
    let general = Arc::new(config.general.clone());
    // Contexts first: they load the TLS files, and a bad one should fail before anything binds.
    let mut built = Vec::new();
    for c in &config.clusters {
        built.push(crate::live::build(c, &general, metrics_on, None)?);
    }
    let mut addrs = Vec::new();
    let mut listeners = Vec::new();
    for c in &config.clusters {
        let bind_error = |source| ServerError::Bind {
            cluster: c.name.clone(),
            addr: c.listen.clone(),
            source,
        };
        let listener = TcpListener::bind(&c.listen).await.map_err(bind_error)?;
        addrs.push(listener.local_addr().map_err(bind_error)?);
        listeners.push(listener);
    }
    // Served from now on, so that /health answers while the first probes run.
    let metrics = match &config.metrics {
        Some(m) => Some(start_metrics(&m.listen, recorder, &built, &rx).await?),
        None => None,
    };
    let mut contexts = Vec::new();
    for (h, c) in built.into_iter().zip(&config.clusters) {
        tracing::info!(cluster = %c.name, listen = %c.listen, protocol = ?c.protocol, "serving");
        let retire = crate::live::start(&h, &rx).await;
        contexts.push((h, retire));
    }
    let clusters = contexts
        .iter()
        .filter_map(|(h, _)| match h {
            ClusterHandle::Postgres(c) => Some(c.clone()),
            ClusterHandle::Mysql(_) => None,
        })
        .collect();
    let mysql = contexts
        .iter()
        .filter_map(|(h, _)| match h {
            ClusterHandle::Mysql(c) => Some(c.clone()),
            ClusterHandle::Postgres(_) => None,
        })
        .collect();
    let live = Arc::new(Live::new(LiveParts {
        config: config.clone(),
        path,
        general,
        metrics_on,
        global: rx.clone(),
        endpoint: metrics.as_ref().map(|(e, _)| e.clone()),
        contexts,
    }));
    for (lc, listener) in live.clusters.iter().zip(listeners) {
        match lc {
            LiveCluster::Postgres(c) => {
                tokio::spawn(serve(c.clone(), listener, rx.clone()));
            }
            LiveCluster::Mysql(c) => {
                tokio::spawn(crate::frontend::mysql::serve(
                    c.clone(),
                    listener,
                    rx.clone(),
                ));
            }
        }
    }
    let (admin_postgres, admin_mysql) = match &config.admin {
        Some(admin) => start_admin(admin, &live, &rx).await?,
        None => (None, None),
    };
    if let Some((endpoint, _)) = &metrics {
        endpoint.mark_started();
    }
    Ok(Running {
        metrics_addr: metrics.map(|(_, addr)| addr),
        shutdown: tx,
        addrs,
        clusters,
        mysql,
        admin_postgres,
        admin_mysql,
        live,
    })
}

/// Binds the admin console's listeners and serves them; returns the bound addresses.
async fn start_admin(
    admin: &crate::config::AdminConfig,
    live: &Arc<Live>,
    rx: &watch::Receiver<bool>,
) -> Result<(Option<std::net::SocketAddr>, Option<std::net::SocketAddr>), ServerError> {
    use crate::admin::AdminContext;
    let ctx = Arc::new(AdminContext::new(admin, live.clone()));
    let bind = |addr: String| async move {
        let l = TcpListener::bind(&addr)
            .await
            .map_err(|source| ServerError::Bind {
                cluster: "admin".into(),
                addr: addr.clone(),
                source,
            })?;
        let local = l.local_addr().map_err(|source| ServerError::Bind {
            cluster: "admin".into(),
            addr,
            source,
        })?;
        Ok::<_, ServerError>((l, local))
    };
    let mut out = (None, None);
    if let Some(addr) = admin.listen_postgres.clone() {
        let (l, local) = bind(addr).await?;
        tracing::info!(listen = %local, "admin console (postgres wire)");
        tokio::spawn(crate::admin::serve_postgres(ctx.clone(), l, rx.clone()));
        out.0 = Some(local);
    }
    if let Some(addr) = admin.listen_mysql.clone() {
        let (l, local) = bind(addr).await?;
        tracing::info!(listen = %local, "admin console (mysql wire)");
        tokio::spawn(crate::admin::serve_mysql(ctx, l, rx.clone()));
        out.1 = Some(local);
    }
    Ok(out)
}

/// What the metrics endpoint reads of a cluster's context.
pub fn observed(h: &ClusterHandle) -> crate::observe::ObservedCluster {
    let nodes = h.config().nodes.len();
    let handle = h.clone();
    crate::observe::ObservedCluster {
        metrics: h.metrics().clone(),
        state: h.state().clone(),
        pools: Box::new(move || handle.pool_stats(nodes)),
    }
}

/// Binds the metrics endpoint and serves it; returns it (to mark it started) and its address.
async fn start_metrics(
    listen: &str,
    recorder: Option<metrics_exporter_prometheus::PrometheusHandle>,
    built: &[ClusterHandle],
    rx: &watch::Receiver<bool>,
) -> Result<(Arc<crate::observe::Endpoint>, std::net::SocketAddr), ServerError> {
    let bind_error = |source| ServerError::MetricsBind {
        addr: listen.to_string(),
        source,
    };
    let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let clusters = built.iter().map(observed).collect();
    let endpoint = Arc::new(crate::observe::Endpoint::new(recorder, clusters));
    tracing::info!(listen = %addr, "metrics endpoint (/metrics, /health, /ready)");
    tokio::spawn(crate::observe::serve(
        listener,
        endpoint.clone(),
        rx.clone(),
    ));
    Ok((endpoint, addr))
}

/// Serves until SIGINT or SIGTERM; SIGHUP re-reads the config file at `path`.
pub async fn run(config: Config, path: Option<std::path::PathBuf>) -> Result<(), ServerError> {
    use tokio::signal::unix::{signal, SignalKind};
    let grace = config.general.shutdown_grace;
    let mut term = signal(SignalKind::terminate()).map_err(ServerError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServerError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(ServerError::Signals)?;
    let running = start_from(config, path).await?;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break; }
            _ = hup.recv() => match running.live.reload().await {
                Ok(what) => tracing::info!("SIGHUP: config reloaded: {what}"),
                Err(why) => tracing::error!("SIGHUP: config not reloaded, the running one stays: {why}"),
            },
        }
    }
    running.stop();
    // Sessions finish on their own; graceful draining arrives with the traffic-control issue.
    tokio::time::sleep(grace.min(std::time::Duration::from_millis(200))).await;
    Ok(())
}
