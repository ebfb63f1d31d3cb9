//! The accept loop and a session's life: startup, first server connection, relay, teardown.

use super::cancel::send_cancel;
use super::send::LinkError;
use super::session::{Session, SessionParts};
use super::startup::{startup, Startup};
use super::vars::SessionVars;
use super::{ClusterContext, FrontendError};
use crate::backend::ServerConn;
use crate::cluster::NodeState;
use crate::frontend::clients::ClientInfo;
use crate::observe::ErrorKind;
use crate::pool::{Lease, NodePool};
use crate::tls::MaybeTls;
use bytes::BytesMut;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use switchyard_postgres as pg;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument;

/// Accepts clients on `listener` until `shutdown` flips, each in its own task.
/// `live` holds the cluster's context as it is now: a reload swaps it, and each client gets the
/// one current when it connects.
pub async fn serve(
    live: Arc<arc_swap::ArcSwap<ClusterContext>>,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) {
    let ctx = live.load_full();
    let max_clients = ctx.general.max_client_connections;
    // Sent in plain text even to a client that starts with an SSLRequest: libpq reads an
    // ErrorResponse in place of the 'S'/'N' answer and shows it.
    let refusal = |max: usize| {
        pg::error_response(
            "FATAL",
            "53300",
            &format!("too many client connections (at most {max})"),
        )
    };
    let metrics = ctx.metrics.clone();
    crate::frontend::accept::accept_loop_with(
        listener,
        max_clients,
        shutdown,
        refusal,
        || metrics.error(ErrorKind::TooManyClients),
        |stream, peer| {
            let ctx = live.load_full();
            let id = ctx.next_session.fetch_add(1, Ordering::Relaxed);
            let span = tracing::info_span!("client", id, %peer, cluster = %ctx.config.name);
            client_task(ctx, stream, id).instrument(span)
        },
    )
    .await
}

/// Runs one client connection to its end; every error is reported to that client only.
async fn client_task(ctx: Arc<ClusterContext>, tcp: TcpStream, id: u64) {
    let _connected = ctx.metrics.client_connected();
    let mut buf = BytesMut::with_capacity(4096);
    let (stream, login) = startup(tcp, &mut buf, &ctx).await;
    let Some(mut stream) = stream else {
        // The TLS handshake failed: usually the client rejected our certificate.
        if let Err(e) = login {
            tracing::info!("tls handshake with the client failed: {e}");
        }
        return;
    };
    let (user, database, params) = match login {
        Ok(Startup::Cancel(key)) => {
            // Honoured with or without TLS, even when TLS is required: libpq's PQcancel (psql's
            // Ctrl-C) sends cancels over a fresh plain connection, and the 64-bit key is the
            // credential (PostgreSQL does not apply hostssl rules to cancels either).
            if let Some(target) = ctx.cancels.target(key) {
                send_cancel(target, ctx.general.connect_timeout).await;
            }
            return;
        }
        Ok(Startup::Login {
            user,
            database,
            params,
        }) => (user, database, params),
        Err(FrontendError::Io(e)) => {
            // Port probes and health checks connect and leave: not worth more than debug.
            tracing::debug!("client left during startup: {e}");
            return;
        }
        Err(e) => {
            tracing::info!("startup failed: {e}");
            count_session_error(&ctx, &e);
            farewell(&mut stream, e.sqlstate(), &e.to_string()).await;
            return;
        }
    };
    tracing::debug!(%user, %database, "logged in");
    let vars = SessionVars::from_startup(&params);
    let (key, cancel_slot) = ctx.cancels.register();
    let pools = ctx.session_pools(&user, &database);
    let first = match first_connection(&ctx, &pools, &vars).await {
        Ok(c) => c,
        Err((code, msg)) => {
            if let Some(kind) = ErrorKind::of_sqlstate(&code) {
                ctx.metrics.error(kind);
            }
            farewell(&mut stream, &code, &msg).await;
            ctx.cancels.unregister(key);
            return;
        }
    };
    let mut hello = BytesMut::new();
    for (k, v) in first.0.params.iter().filter(|(k, _)| k != "in_hot_standby") {
        hello.extend_from_slice(&pg::parameter_status(k, v));
    }
    hello.extend_from_slice(&pg::backend_key_data(key.0, key.1));
    hello.extend_from_slice(&pg::ready_for_query(b'I'));
    let sent = async {
        stream.write_all(&hello).await?;
        stream.flush().await
    };
    if !matches!(
        tokio::time::timeout(ctx.general.startup_timeout, sent).await,
        Ok(Ok(()))
    ) {
        ctx.cancels.unregister(key);
        return;
    }
    let client_params = first.0.params.clone();
    let registered = ctx.clients.register(ClientInfo {
        id,
        user: user.clone(),
        database: database.clone(),
        addr: stream.tcp().peer_addr().ok(),
        since: std::time::SystemTime::now(),
    });
    let transaction_pooling = ctx.transaction_pooling(&user);
    let mut session = Session::new(SessionParts {
        ctx: ctx.clone(),
        id,
        client: crate::net::split(stream),
        leftover: buf,
        vars,
        cancel_slot,
        pools,
        transaction_pooling,
    });
    session.adopt_first(first, client_params);
    let mut killed = registered.killed.clone();
    let outcome = tokio::select! {
        r = session.run() => Some(r),
        Ok(_) = killed.wait_for(|k| *k) => None,
    };
    match outcome {
        None => {
            // Work in flight is abandoned: its server connections are closed, not pooled.
            tracing::info!("killed from the admin console");
            let msg =
                "terminating connection due to administrator command (switchyard admin console)";
            session.queue_client(pg::error_response("FATAL", "57P01", msg));
            let _ = tokio::time::timeout(Duration::from_secs(1), session.flush_client()).await;
        }
        Some(Ok(_)) => tracing::debug!("client left"),
        Some(Err(e)) => {
            tracing::info!("session ended: {e}");
            count_session_error(&ctx, &e);
            session.queue_client(pg::error_response("FATAL", e.sqlstate(), &e.to_string()));
            let _ = tokio::time::timeout(Duration::from_secs(1), session.flush_client()).await;
        }
    }
    ctx.cancels.unregister(key);
    session.release_links();
}

/// Counts an error that ends a client's startup or session (a client's own I/O failure is
/// not one of the proxy's errors).
fn count_session_error(ctx: &ClusterContext, e: &FrontendError) {
    let kind = match e {
        FrontendError::Io(_) => None,
        FrontendError::StartupTimeout => Some(ErrorKind::Timeout),
        FrontendError::AuthFailed(_) => Some(ErrorKind::AuthFailed),
        FrontendError::Protocol(_) => Some(ErrorKind::Protocol),
        FrontendError::Refused { code, .. } => ErrorKind::of_sqlstate(code),
    };
    if let Some(kind) = kind {
        ctx.metrics.error(kind);
    }
}

/// How long a refused client gets to take its last error message.
const FAREWELL: Duration = Duration::from_secs(1);

/// Sends a FATAL error and closes (with TLS close_notify when encrypted), bounded by `FAREWELL`.
async fn farewell(stream: &mut MaybeTls, code: &str, msg: &str) {
    let reply = pg::error_response("FATAL", code, msg);
    let work = async {
        stream.write_all(&reply).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(FAREWELL, work).await;
}

/// Gets the session's first server connection (the primary, else any reachable node) so the
/// client gets real ParameterStatus values, with the startup settings applied.
async fn first_connection(
    ctx: &ClusterContext,
    pools: &[Arc<NodePool>],
    vars: &SessionVars,
) -> Result<(Box<ServerConn>, Lease), (String, String)> {
    let snap = ctx.state.load_full();
    let primary = snap.primary().map(|p| p.id);
    let mut order: Vec<&NodeState> = snap.primary().into_iter().collect();
    order.extend(
        snap.nodes
            .iter()
            .filter(|n| n.usable() && Some(n.id) != primary),
    );
    let mut last = format!("no node of cluster {} is up", ctx.config.name);
    for n in order {
        match ctx.lease(&pools[n.id], n.id, n.incarnation).await {
            Err(LinkError::Pool(e)) => return Err(("53300".to_string(), e.to_string())),
            Ok((lease, mut c)) => {
                if let Some(sql) = vars.sync_server(&mut c) {
                    let (timeout, max) =
                        (ctx.general.connect_timeout, ctx.general.max_message_bytes);
                    if !c.run_quietly(&sql, timeout, max).await {
                        let msg =
                            format!("node {}: the startup parameters were not accepted", n.name);
                        return Err(("22023".to_string(), msg));
                    }
                }
                return Ok((c, lease));
            }
            Err(LinkError::Backend(e)) => {
                // A login the server refuses is the same on every node: report it as the server said.
                if !e.node_unreachable() {
                    return Err((e.sqlstate().to_string(), e.to_string()));
                }
                ctx.state.report_failure(n.id, &e.to_string());
                last = format!("could not connect to node {}: {e}", n.name);
            }
        }
    }
    Err(("08001".to_string(), last))
}

impl Session {
    /// Takes the first connection into the session; under transaction pooling it goes straight
    /// back to the pool.
    fn adopt_first(
        &mut self,
        (conn, lease): (Box<ServerConn>, Lease),
        client_params: Vec<(String, String)>,
    ) {
        let node = conn.node;
        let node_down = self.ctx.state.watch_node(node);
        let queues = super::link::LinkQueues::default();
        let mut link = super::link::Link::new(conn, lease, node_down, queues);
        link.role = self.ctx.state.load().node(node).and_then(|n| n.role);
        self.links[node] = Some(link);
        self.client_params = client_params;
        self.maybe_release(node);
    }

    /// Returns idle server connections to their pools; connections holding state that cannot
    /// be tracked (pinned sessions) are reset with DISCARD ALL first; others are closed.
    fn release_links(&mut self) {
        let snap = self.ctx.state.load_full();
        for slot in self.links.iter_mut() {
            let Some(link) = slot.take() else { continue };
            let up = snap.node(link.conn.node).is_some_and(|n| n.usable());
            if !link.idle() || !link.conn.inbuf.is_empty() || !up {
                continue;
            }
            let (lease, mut conn) = (link.lease, link.conn);
            if !link.dirty {
                lease.release(conn);
                continue;
            }
            let ctx = self.ctx.clone();
            tokio::spawn(async move {
                let (timeout, max) = (ctx.general.connect_timeout, ctx.general.max_message_bytes);
                if conn.run_quietly("DISCARD ALL", timeout, max).await {
                    conn.statements.clear();
                    conn.state_sig = 0;
                    lease.release(conn);
                }
            });
        }
    }
}
