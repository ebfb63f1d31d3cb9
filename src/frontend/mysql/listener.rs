//! The accept loop and a MySQL session's life: handshake, database check, commands, teardown.

use super::handshake::{handshake, HandshakeError};
use super::session::Session;
use super::{err_payload, ok_payload, MyContext};
use crate::cluster::ReplicaPicker;
use crate::net::{NetRead, NetWrite};
use bytes::BytesMut;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use switchyard_mysql::{self as my, StatusFlags};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

/// Accepts MySQL clients on `listener` until `shutdown` flips, each in its own task.
pub async fn serve(
    ctx: Arc<MyContext>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let max_clients = ctx.general.max_client_connections;
    let permits = Arc::new(Semaphore::new(max_clients));
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        let (mut stream, peer) = match accepted {
            Ok(x) => {
                backoff = Duration::from_millis(5);
                x
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // MySQL clients read an ERR in place of the greeting (error 1040, as a server does).
            let msg = format!("Too many connections (at most {max_clients})");
            tokio::spawn(async move {
                let err = my::encode_packet(0, &err_payload(1040, "08004", &msg));
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&err)).await;
            });
            continue;
        };
        let ctx = ctx.clone();
        let id = ctx.next_session.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("client", id, %peer, cluster = %ctx.config.name);
        tokio::spawn(
            async move {
                client_task(ctx, stream, id).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
}

async fn client_task(ctx: Arc<MyContext>, mut tcp: TcpStream, id: u64) {
    let mut buf = BytesMut::with_capacity(4096);
    let login = match tokio::time::timeout(
        ctx.general.startup_timeout,
        handshake(&mut tcp, &mut buf, &ctx, id),
    )
    .await
    {
        Ok(Ok(l)) => l,
        Ok(Err(HandshakeError::Refused { message, .. })) => {
            tracing::info!("login refused: {message}");
            return;
        }
        Ok(Err(e)) => {
            tracing::info!("handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::info!("handshake timed out");
            return;
        }
    };
    // The database (and the credentials towards the servers) are checked on the primary
    // before the client hears OK, so a wrong one is the server's own error at login.
    let pools = ctx.session_pools(&login.user, &login.database);
    let snap = ctx.state.load_full();
    let Some(primary) = snap.primary() else {
        let msg = format!("no primary is available in cluster {}", ctx.config.name);
        let err = my::encode_packet(login.next_seq, &err_payload(2003, "08S01", &msg));
        let _ = tcp.write_all(&err).await;
        return;
    };
    match ctx
        .lease(&pools[primary.id], primary.id, primary.incarnation)
        .await
    {
        Ok((lease, conn)) => lease.release(conn),
        Err(e) => {
            let (code, state, msg) = match &e {
                super::context::LeaseError::Backend(crate::backend::BackendError::MySql {
                    code,
                    sql_state,
                    message,
                    ..
                }) => (*code, sql_state.clone(), message.clone()),
                other => (2003, "08S01".to_string(), other.to_string()),
            };
            let err = my::encode_packet(login.next_seq, &err_payload(code, &state, &msg));
            let _ = tcp.write_all(&err).await;
            return;
        }
    }
    let ok = my::encode_packet(
        login.next_seq,
        &ok_payload(StatusFlags::SERVER_STATUS_AUTOCOMMIT),
    );
    if tcp.write_all(&ok).await.is_err() {
        return;
    }
    let (r, w) = tcp.into_split();
    let nodes = ctx.config.nodes.len();
    let transaction_pooling = ctx.transaction_pooling(&login.user);
    let mut session = Session {
        ctx: ctx.clone(),
        id,
        user: login.user,
        database: login.database,
        client_r: NetRead::Plain(r),
        client_w: NetWrite::Plain(w),
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
        ryw_gtid: None,
        ryw_confirmed: vec![None; nodes],
        ryw_until: None,
    };
    if let Err(e) = session.run().await {
        tracing::debug!("client connection ended: {e}");
    }
    session.release_all();
}
