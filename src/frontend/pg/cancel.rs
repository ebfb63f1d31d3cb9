//! Cancel keys: clients get keys of the proxy's own; a CancelRequest reaches the server
//! connection currently running that client's query.

use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where a cancel for one client should go right now.
#[derive(Debug, Clone)]
pub struct CancelTarget {
    /// Server address.
    pub addr: String,
    /// The server connection's BackendKeyData.
    pub key: (i32, i32),
}

/// A session's slot, updated when it sends work to a server.
pub type CancelSlot = Arc<Mutex<Option<CancelTarget>>>;

/// Proxy-issued keys of live sessions. Locked only at session start and end and per cancel.
#[derive(Default)]
pub struct CancelRegistry {
    slots: Mutex<HashMap<(i32, i32), CancelSlot>>,
}

impl CancelRegistry {
    /// Issues a fresh key and its slot.
    pub fn register(&self) -> ((i32, i32), CancelSlot) {
        let mut rng = rand::thread_rng();
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let key = (rng.gen_range(1..i32::MAX), rng.gen::<i32>());
            if let std::collections::hash_map::Entry::Vacant(v) = slots.entry(key) {
                let slot = CancelSlot::default();
                v.insert(slot.clone());
                return (key, slot);
            }
        }
    }

    /// Forgets a key when its session ends.
    pub fn unregister(&self, key: (i32, i32)) {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    }

    /// The current target for a key, if the key is live and its session is running something.
    pub fn target(&self, key: (i32, i32)) -> Option<CancelTarget> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)?
            .clone();
        let t = slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        t
    }
}

/// Sends a CancelRequest for `target` over a fresh connection; errors are only logged.
pub async fn send_cancel(target: CancelTarget, timeout: std::time::Duration) {
    use tokio::io::AsyncWriteExt;
    let work = async {
        let mut s = tokio::net::TcpStream::connect(&target.addr).await?;
        s.write_all(&switchyard_postgres::cancel_request(
            target.key.0,
            target.key.1,
        ))
        .await?;
        s.shutdown().await
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(())) => tracing::debug!(addr = %target.addr, "cancel forwarded"),
        Ok(Err(e)) => tracing::warn!(addr = %target.addr, "cancel failed: {e}"),
        Err(_) => tracing::warn!(addr = %target.addr, "cancel timed out"),
    }
}
