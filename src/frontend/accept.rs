//! The accept loop both protocol front ends share: a permit per client (refused past the
//! limit with the protocol's own error), backoff on accept errors, a task per client.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// How long a refused client gets to read its error.
const FAREWELL: Duration = Duration::from_secs(1);

/// Accepts clients until `shutdown` flips. Past `max_clients` a client gets the bytes
/// `refusal(max_clients)` builds and is closed; the others are served by `serve`'s future,
/// each in its own task.
pub async fn accept_loop<S, F>(
    listener: TcpListener,
    max_clients: usize,
    shutdown: watch::Receiver<bool>,
    refusal: fn(usize) -> bytes::Bytes,
    serve: S,
) where
    S: Fn(TcpStream, SocketAddr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    accept_loop_with(listener, max_clients, shutdown, refusal, || {}, serve).await
}

/// `accept_loop`, calling `refused` for each client turned away past `max_clients`.
pub async fn accept_loop_with<S, F>(
    listener: TcpListener,
    max_clients: usize,
    mut shutdown: watch::Receiver<bool>,
    refusal: fn(usize) -> bytes::Bytes,
    refused: impl Fn(),
    serve: S,
) where
    S: Fn(TcpStream, SocketAddr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
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
                // Usually EMFILE: wait for connections to close instead of spinning.
                tracing::warn!("accept failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused();
            let reply = refusal(max_clients);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(FAREWELL, stream.write_all(&reply)).await;
            });
            continue;
        };
        let client = serve(stream, peer);
        tokio::spawn(async move {
            client.await;
            drop(permit);
        });
    }
}
