//! The accept loop and a MySQL session's life: handshake, database check, commands, teardown.

use super::handshake::{handshake, HandshakeError};
use super::session::Session;
use super::{err_payload, ok_payload, MyContext};
use crate::cluster::ReplicaPicker;
use bytes::BytesMut;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use switchyard_mysql::{self as my, StatusFlags};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument;

/// Accepts MySQL clients on `listener` until `shutdown` flips, each in its own task.
pub async fn serve(ctx: Arc<MyContext>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    let max_clients = ctx.general.max_client_connections;
    // MySQL clients read an ERR in place of the greeting (error 1040, as a server does).
    let refusal = |max: usize| {
        let msg = format!("Too many connections (at most {max})");
        my::encode_packet(0, &err_payload(1040, "08004", &msg))
    };
    crate::frontend::accept::accept_loop(
        listener,
        max_clients,
        shutdown,
        refusal,
        |stream, peer| {
            let ctx = ctx.clone();
            let id = ctx.next_session.fetch_add(1, Ordering::Relaxed);
            let span = tracing::info_span!("client", id, %peer, cluster = %ctx.config.name);
            client_task(ctx, stream, id).instrument(span)
        },
    )
    .await
}

async fn client_task(ctx: Arc<MyContext>, tcp: TcpStream, id: u64) {
    let mut buf = BytesMut::with_capacity(4096);
    let (stream, login) = match tokio::time::timeout(
        ctx.general.startup_timeout,
        handshake(tcp, &mut buf, &ctx, id),
    )
    .await
    {
        Ok((Some(stream), Ok(l))) => (stream, l),
        Ok((_, Err(HandshakeError::Refused { message, .. }))) => {
            tracing::info!("login refused: {message}");
            return;
        }
        Ok((_, Err(e))) => {
            tracing::info!("handshake failed: {e}");
            return;
        }
        Ok((None, Ok(_))) => return,
        Err(_) => {
            tracing::info!("handshake timed out");
            return;
        }
    };
    let mut tcp = stream;
    // The database (and the credentials towards the servers) are checked on a server before
    // the client hears OK, so a wrong one is the server's own error at login.
    let pools = ctx.session_pools(&login.user, &login.database);
    if let Err((code, state, msg)) = ctx.check_login(&pools).await {
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
    if let Err(e) = session.run().await {
        tracing::debug!("client connection ended: {e}");
    }
    session.release_all();
}
