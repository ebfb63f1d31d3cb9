//! The clusters as they are now, and reloading them. Each cluster's context (config, state,
//! pools, monitors) sits behind an `ArcSwap`: the accept loop gives each new client the current
//! one, the admin console and /metrics read it, and a reload (RELOAD in the console, SIGHUP)
//! builds a new context for every cluster whose settings changed and swaps it in. Sessions of
//! the old context go on undisturbed; its monitors keep its state live until its last client
//! has left, then stop.

use crate::admin::ClusterHandle;
use crate::cluster::ClusterState;
use crate::config::{ClusterConfig, Config, General, Protocol};
use crate::frontend::mysql::MyContext;
use crate::frontend::pg::ClusterContext;
use crate::monitor::Monitors;
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// One cluster's current context.
pub enum LiveCluster {
    /// A PostgreSQL cluster.
    Postgres(Arc<ArcSwap<ClusterContext>>),
    /// A MySQL cluster.
    Mysql(Arc<ArcSwap<MyContext>>),
}

impl LiveCluster {
    /// The context now.
    pub fn handle(&self) -> ClusterHandle {
        match self {
            LiveCluster::Postgres(c) => ClusterHandle::Postgres(c.load_full()),
            LiveCluster::Mysql(c) => ClusterHandle::Mysql(c.load_full()),
        }
    }

    fn store(&self, h: ClusterHandle) {
        match (self, h) {
            (LiveCluster::Postgres(c), ClusterHandle::Postgres(n)) => c.store(n),
            (LiveCluster::Mysql(c), ClusterHandle::Mysql(n)) => c.store(n),
            // The protocol of a cluster never changes by reload (checked before).
            _ => {}
        }
    }
}

/// Builds a cluster's context (loads its TLS files), taking over session ids, cancel keys and
/// the client registry from `old` when it replaces one.
pub fn build(
    c: &ClusterConfig,
    general: &Arc<General>,
    metrics_on: bool,
    old: Option<&ClusterHandle>,
) -> Result<ClusterHandle, crate::server::ServerError> {
    let tls_error = |source| crate::server::ServerError::Tls {
        cluster: c.name.clone(),
        source,
    };
    let cfg = Arc::new(c.clone());
    let state = Arc::new(ClusterState::new(&cfg));
    let metrics = metrics_on.then(|| Arc::new(crate::observe::ClusterMetrics::new(c, true)));
    Ok(match c.protocol {
        Protocol::Postgres => {
            let mut ctx = ClusterContext::new(cfg, general.clone(), state).map_err(tls_error)?;
            if let Some(m) = metrics {
                ctx.observe(m);
            }
            if let Some(ClusterHandle::Postgres(o)) = old {
                ctx.inherit(o);
            }
            ctx.metrics.digests.set_enabled(general.query_digests);
            ClusterHandle::Postgres(Arc::new(ctx))
        }
        Protocol::Mysql => {
            let mut ctx = MyContext::new(cfg, general.clone(), state).map_err(tls_error)?;
            if let Some(m) = metrics {
                ctx.observe(m);
            }
            if let Some(ClusterHandle::Mysql(o)) = old {
                ctx.inherit(o);
            }
            ctx.metrics.digests.set_enabled(general.query_digests);
            ClusterHandle::Mysql(Arc::new(ctx))
        }
    })
}

/// Starts a context's monitors (first probes included) and pool upkeep; they stop at
/// shutdown, or once the returned signal retired the context and its last client left.
pub async fn start(h: &ClusterHandle, global: &watch::Receiver<bool>) -> Arc<Notify> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let retire = Arc::new(Notify::new());
    let (mut global, retired, clients) = (global.clone(), retire.clone(), h.clients().clone());
    let name = h.config().name.clone();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = global.wait_for(|s| *s).await;
        };
        let drained = async {
            retired.notified().await;
            // Old sessions keep live health until the last of them is gone.
            while !clients.list().is_empty() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            tracing::info!(cluster = %name, "the context replaced by a reload has no client left: its monitors stop");
        };
        tokio::select! {
            _ = shutdown => {}
            _ = drained => {}
        }
        let _ = stop_tx.send(true);
    });
    Monitors::start(h.config().clone(), h.state().clone(), stop_rx.clone()).await;
    if let ClusterHandle::Postgres(ctx) = h {
        tokio::spawn(crate::frontend::pg::maintain_pools(ctx.clone(), stop_rx));
    }
    retire
}

/// Every cluster as it is now, and what a reload needs.
pub struct Live {
    /// The clusters, in config order.
    pub clusters: Vec<LiveCluster>,
    /// Per cluster: retires its current context.
    retire: Mutex<Vec<Arc<Notify>>>,
    /// The config in force.
    config: Mutex<Config>,
    /// Where the config was read from (None: nothing to re-read).
    path: Option<PathBuf>,
    general: Arc<General>,
    metrics_on: bool,
    global: watch::Receiver<bool>,
    endpoint: Option<Arc<crate::observe::Endpoint>>,
    reloading: tokio::sync::Mutex<()>,
}

/// What `Live::new` takes.
pub struct LiveParts {
    /// The config in force.
    pub config: Config,
    /// Where it was read from.
    pub path: Option<PathBuf>,
    /// Its [general] settings, shared by every context.
    pub general: Arc<General>,
    /// Metrics are recorded.
    pub metrics_on: bool,
    /// Process shutdown.
    pub global: watch::Receiver<bool>,
    /// The metrics endpoint, told about swapped contexts.
    pub endpoint: Option<Arc<crate::observe::Endpoint>>,
    /// The started contexts, in config order, with their retire signals.
    pub contexts: Vec<(ClusterHandle, Arc<Notify>)>,
}

impl Live {
    /// Wraps the started contexts.
    pub fn new(p: LiveParts) -> Self {
        let (clusters, retire) = p
            .contexts
            .into_iter()
            .map(|(h, r)| {
                let live = match h {
                    ClusterHandle::Postgres(c) => LiveCluster::Postgres(Arc::new(ArcSwap::new(c))),
                    ClusterHandle::Mysql(c) => LiveCluster::Mysql(Arc::new(ArcSwap::new(c))),
                };
                (live, r)
            })
            .unzip();
        Live {
            clusters,
            retire: Mutex::new(retire),
            config: Mutex::new(p.config),
            path: p.path,
            general: p.general,
            metrics_on: p.metrics_on,
            global: p.global,
            endpoint: p.endpoint,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// Every cluster's context now, in config order.
    pub fn handles(&self) -> Vec<ClusterHandle> {
        self.clusters.iter().map(LiveCluster::handle).collect()
    }

    /// Re-reads the config file and applies it: Err (file, key and reason) leaves everything
    /// as it was; Ok says what changed and what needs a restart.
    pub async fn reload(&self) -> Result<String, String> {
        let _one = self.reloading.lock().await;
        let path = self.path.as_ref().ok_or_else(|| {
            "switchyard was not started from a config file: nothing to re-read".to_string()
        })?;
        let new = Config::load(path).map_err(|e| e.to_string())?;
        let old = self
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut notes = restart_notes(&old, &new);
        let mut swaps = Vec::new();
        for (i, oc) in old.clusters.iter().enumerate() {
            let Some(nc) = new.clusters.iter().find(|n| n.name == oc.name) else {
                continue;
            };
            if oc.listen != nc.listen || oc.protocol != nc.protocol {
                notes.push(format!(
                    "cluster {}: listen or protocol changed: applies at the next restart (nothing of it changed now)",
                    oc.name
                ));
                continue;
            }
            if format!("{oc:?}") == format!("{nc:?}") {
                continue;
            }
            let current = self.clusters[i].handle();
            // Every new context is built (TLS files read) before any is swapped in.
            let built = build(nc, &self.general, self.metrics_on, Some(&current))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            swaps.push((i, built, describe(oc, nc)));
        }
        let mut applied = old.clone();
        for (i, built, what) in swaps {
            let retire = start(&built, &self.global).await;
            self.clusters[i].store(built);
            let previous = {
                let mut r = self.retire.lock().unwrap_or_else(|p| p.into_inner());
                std::mem::replace(&mut r[i], retire)
            };
            previous.notify_one();
            if let Some(nc) = new.clusters.iter().find(|n| n.name == old.clusters[i].name) {
                applied.clusters[i] = nc.clone();
            }
            tracing::info!(cluster = %applied.clusters[i].name, "reloaded: {what}");
            notes.insert(0, format!("cluster {}: {what}", applied.clusters[i].name));
        }
        if let Some(e) = &self.endpoint {
            e.replace_clusters(self.handles().iter().map(crate::server::observed).collect());
        }
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = applied;
        if notes.is_empty() {
            notes.push("no change".into());
        }
        Ok(notes.join("; "))
    }
}

/// What changed outside the clusters, or in the set of clusters: only a restart applies it.
fn restart_notes(old: &Config, new: &Config) -> Vec<String> {
    let mut notes = Vec::new();
    for (what, a, b) in [
        (
            "[general]",
            format!("{:?}", old.general),
            format!("{:?}", new.general),
        ),
        (
            "[admin]",
            format!("{:?}", old.admin),
            format!("{:?}", new.admin),
        ),
        (
            "[metrics]",
            format!("{:?}", old.metrics),
            format!("{:?}", new.metrics),
        ),
    ] {
        if a != b {
            notes.push(format!("{what} changed: applies at the next restart"));
        }
    }
    for c in &new.clusters {
        if !old.clusters.iter().any(|o| o.name == c.name) {
            notes.push(format!(
                "cluster {} is new: it is served after a restart",
                c.name
            ));
        }
    }
    for c in &old.clusters {
        if !new.clusters.iter().any(|n| n.name == c.name) {
            notes.push(format!(
                "cluster {} is no longer in the file: still served until a restart",
                c.name
            ));
        }
    }
    notes
}

/// A short account of what differs between two versions of a cluster.
fn describe(old: &ClusterConfig, new: &ClusterConfig) -> String {
    let name = |n: &crate::config::NodeConfig| n.name.clone().unwrap_or_else(|| n.addr.clone());
    let mut parts = Vec::new();
    for n in &new.nodes {
        match old.nodes.iter().find(|o| name(o) == name(n)) {
            None => parts.push(format!("node {} added", name(n))),
            Some(o) if o.weight != n.weight => parts.push(format!(
                "node {} weight {} -> {}",
                name(n),
                o.weight,
                n.weight
            )),
            Some(o) if o.addr != n.addr => {
                parts.push(format!("node {} moved to {}", name(n), n.addr))
            }
            Some(_) => {}
        }
    }
    for o in &old.nodes {
        if !new.nodes.iter().any(|n| name(n) == name(o)) {
            parts.push(format!("node {} removed", name(o)));
        }
    }
    for u in &new.users {
        if !old.users.iter().any(|o| o.name == u.name) {
            parts.push(format!("user {} added", u.name));
        }
    }
    for o in &old.users {
        if !new.users.iter().any(|u| u.name == o.name) {
            parts.push(format!("user {} removed", o.name));
        }
    }
    if parts.is_empty() {
        parts.push("settings changed".into());
    }
    format!(
        "{}; new clients use it, connected ones keep theirs",
        parts.join(", ")
    )
}
