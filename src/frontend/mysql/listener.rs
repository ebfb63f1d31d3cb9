//! The accept loop and a MySQL session's life: handshake, database check, commands, teardown.

use super::handshake::{handshake, HandshakeError};
use super::session::Session;
use super::{err_payload, ok_payload, MyContext};
use crate::cluster::ReplicaPicker;
use crate::observe::ErrorKind;
use bytes::BytesMut;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use switchyard_mysql::{self as my, StatusFlags};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument;

/// Accepts MySQL clients on `listener` until `shutdown` flips, each in its own task.
/// `live` holds the cluster's context as it is now: a reload swaps it, and each client gets the
/// one current when it connects.
pub async fn serve(
    live: Arc<arc_swap::ArcSwap<MyContext>>,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) {
    let ctx = live.load_full();
    let max_clients = ctx.general.max_client_connections;
    // MySQL clients read an ERR in place of the greeting (error 1040, as a server does).
    let refusal = |max: usize| {
        let msg = format!("Too many connections (at most {max})");
        my::encode_packet(0, &err_payload(1040, "08004", &msg))
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

async fn client_task(ctx: Arc<MyContext>, tcp: TcpStream, id: u64) {
    let _connected = ctx.metrics.client_connected();
    let mut buf = BytesMut::with_capacity(4096);
    let (stream, login) = match tokio::time::timeout(
        ctx.general.startup_timeout,
        handshake(tcp, &mut buf, &ctx.login_policy(), id),
    )
    .await
    {
        Ok((Some(stream), Ok(l))) => (stream, l),
        Ok((_, Err(HandshakeError::Refused { message, code, .. }))) => {
            tracing::info!("login refused: {message}");
            let kind = ErrorKind::of_mysql_code(code).unwrap_or(ErrorKind::Protocol);
            ctx.metrics.error(kind);
            return;
        }
        Ok((_, Err(e))) => {
            tracing::info!("handshake failed: {e}");
            if matches!(e, HandshakeError::Protocol(_)) {
                ctx.metrics.error(ErrorKind::Protocol);
            }
            return;
        }
        Ok((None, Ok(_))) => return,
        Err(_) => {
            tracing::info!("handshake timed out");
            ctx.metrics.error(ErrorKind::Timeout);
            return;
        }
    };
    let mut tcp = stream;
    // The database (and the credentials towards the servers) are checked on a server before
    // the client hears OK, so a wrong one is the server's own error at login.
    let pools = ctx.session_pools(&login.user, &login.database);
    if let Err((code, state, msg)) = ctx.check_login(&pools).await {
        if let Some(kind) = ErrorKind::of_mysql_code(code) {
            ctx.metrics.error(kind);
        }
        let err = my::encode_packet(login.next_seq, &err_payload(code, &state, &msg));
        let _ = tcp.write_all(&err).await;
        return;
    }
    let ok = my::encode_packet(
        login.next_seq,
        &ok_payload(StatusFlags::SERVER_STATUS_AUTOCOMMIT),
    );
    if tcp.write_all(&ok).await.is_err() {
        return;
    }
    let registered = ctx.clients.register(crate::frontend::clients::ClientInfo {
        id,
        user: login.user.clone(),
        database: login.database.clone(),
        addr: tcp.tcp().peer_addr().ok(),
        since: std::time::SystemTime::now(),
    });
    let (client_r, client_w) = crate::net::split(tcp);
    let nodes = ctx.config.nodes.len();
    let transaction_pooling = ctx.transaction_pooling(&login.user);
    let mut session = Session {
        ctx: ctx.clone(),
        id,
        user: login.user,
        database: login.database,
        client_r,
        client_w,
        cin: buf,
        pools,
        links: (0..nodes).map(|_| None).collect(),
        txn_node: None,
        autocommit: true,
        pinned: None,
        vars: Default::default(),
        picker: ReplicaPicker::seeded(id),
        transaction_pooling,
        prepared: Default::default(),
        next_statement: 1,
        cursors: Default::default(),
        nonce: login.nonce,
        infile_allowed: false,
        ryw_gtid: None,
        ryw_confirmed: vec![None; nodes],
        ryw_until: None,
    };
    let mut killed = registered.killed.clone();
    let outcome = tokio::select! {
        r = session.run() => Some(r),
        Ok(_) = killed.wait_for(|k| *k) => None,
    };
    match outcome {
        Some(Ok(())) => {}
        Some(Err(e)) => tracing::debug!("client connection ended: {e}"),
        None => {
            // Work in flight is abandoned: its server connections are closed, not pooled.
            tracing::info!("killed from the admin console");
            session.links.iter_mut().for_each(|l| *l = None);
            session.txn_node = None;
            let msg = "Connection was killed (switchyard admin console)";
            let err = my::encode_packet(0, &err_payload(1927, "70100", msg));
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                session.client_w_write(&err),
            )
            .await;
        }
    }
    session.release_all();
}
