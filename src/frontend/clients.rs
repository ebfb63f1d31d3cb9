//! The clients a listener serves, for the admin console (SHOW CLIENTS, KILL CLIENT): one
//! entry per logged-in session, added at login and removed when its guard drops.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::watch;

/// What the console shows of a client.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// Session id (unique per cluster).
    pub id: u64,
    /// User it logged in as.
    pub user: String,
    /// Database it uses.
    pub database: String,
    /// Its address.
    pub addr: Option<SocketAddr>,
    /// When it logged in.
    pub since: SystemTime,
}

struct Entry {
    info: ClientInfo,
    kill: watch::Sender<bool>,
}

/// Live clients of one cluster. Locked only at login, logout and by the console.
#[derive(Default)]
pub struct ClientRegistry {
    clients: Mutex<HashMap<u64, Entry>>,
}

/// Removes its client from the registry when dropped.
pub struct ClientGuard {
    registry: Arc<ClientRegistry>,
    id: u64,
    /// Flips to true when the console kills the client.
    pub killed: watch::Receiver<bool>,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl ClientRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a client that just logged in.
    pub fn register(self: &Arc<Self>, info: ClientInfo) -> ClientGuard {
        let (kill, killed) = watch::channel(false);
        let id = info.id;
        self.lock().insert(id, Entry { info, kill });
        ClientGuard {
            registry: self.clone(),
            id,
            killed,
        }
    }

    /// Every client now, by id.
    pub fn list(&self) -> Vec<ClientInfo> {
        let mut all: Vec<ClientInfo> = self.lock().values().map(|e| e.info.clone()).collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// Asks client `id` to go; false when there is no such client.
    pub fn kill(&self, id: u64) -> bool {
        match self.lock().get(&id) {
            Some(e) => {
                e.kill.send_replace(true);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_come_and_go_and_can_be_killed() {
        let r = Arc::new(ClientRegistry::default());
        let info = |id| ClientInfo {
            id,
            user: "app".into(),
            database: "app".into(),
            addr: None,
            since: SystemTime::now(),
        };
        let a = r.register(info(1));
        let b = r.register(info(2));
        assert_eq!(r.list().iter().map(|c| c.id).collect::<Vec<_>>(), [1, 2]);
        assert!(r.kill(2));
        assert!(*b.killed.borrow());
        assert!(!*a.killed.borrow());
        assert!(!r.kill(3));
        drop(b);
        assert_eq!(r.list().len(), 1);
        drop(a);
        assert!(r.list().is_empty());
    }
}
