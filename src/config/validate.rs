//! Semantic checks that run before anything starts.

use super::{Config, ConfigError};
use std::collections::HashSet;
use std::net::SocketAddr;

impl Config {
    /// Checks values the type system cannot; `file` names the file in errors.
    pub fn validate(mut self, file: &str) -> Result<Config, ConfigError> {
        let bad = |key: String, reason: String| ConfigError::Invalid {
            file: file.to_string(),
            key,
            reason,
        };
        if self.general.worker_threads.is_some_and(|n| n > 1024) {
            return Err(bad(
                "general.worker_threads".into(),
                "must be at most 1024".into(),
            ));
        }
        if self.general.max_client_connections == 0 {
            return Err(bad(
                "general.max_client_connections".into(),
                "must be at least 1".into(),
            ));
        }
        if self.general.max_message_bytes < 1024 {
            return Err(bad(
                "general.max_message_bytes".into(),
                "must be at least 1024".into(),
            ));
        }
        if let Some(a) = &self.admin {
            for (key, addr) in [
                ("admin.listen_postgres", &a.listen_postgres),
                ("admin.listen_mysql", &a.listen_mysql),
            ] {
                if let Some(Err(e)) = addr.as_ref().map(|a| a.parse::<SocketAddr>()) {
                    return Err(bad(
                        key.into(),
                        format!("{addr:?} is not an ip:port address: {e}"),
                    ));
                }
            }
            if a.listen_postgres.is_none() && a.listen_mysql.is_none() {
                return Err(bad(
                    "admin".into(),
                    "set listen_postgres, listen_mysql or both".into(),
                ));
            }
            if a.users.is_empty() {
                return Err(bad(
                    "admin.users".into(),
                    "at least one user is required".into(),
                ));
            }
            let mut seen = HashSet::new();
            for (i, u) in a.users.iter().enumerate() {
                if u.name.is_empty() || !seen.insert(u.name.as_str()) {
                    return Err(bad(
                        format!("admin.users[{i}].name"),
                        "must be non-empty and unique".into(),
                    ));
                }
            }
        }
        if self.clusters.is_empty() {
            return Err(bad(
                "clusters".into(),
                "at least one cluster is required".into(),
            ));
        }
        let mut names = HashSet::new();
        let mut listens = HashSet::new();
        for (ci, c) in self.clusters.iter_mut().enumerate() {
            let k = |rest: &str| format!("clusters[{ci}].{rest}");
            if c.name.trim().is_empty() {
                return Err(bad(k("name"), "must not be empty".into()));
            }
            if !names.insert(c.name.clone()) {
                return Err(bad(
                    k("name"),
                    format!("duplicate cluster name {:?}", c.name),
                ));
            }
            if let Err(e) = c.listen.parse::<SocketAddr>() {
                return Err(bad(
                    k("listen"),
                    format!("{:?} is not an ip:port address: {e}", c.listen),
                ));
            }
            // Port 0 asks the system for a free port, a different one for each listener.
            let any_port = c.listen.parse::<SocketAddr>().is_ok_and(|a| a.port() == 0);
            if !any_port && !listens.insert(c.listen.clone()) {
                return Err(bad(
                    k("listen"),
                    format!("{} is used by another cluster", c.listen),
                ));
            }
            if c.users.is_empty() {
                return Err(bad(k("users"), "at least one user is required".into()));
            }
            let mut users = HashSet::new();
            for (ui, u) in c.users.iter().enumerate() {
                if u.name.is_empty() {
                    return Err(bad(
                        k(&format!("users[{ui}].name")),
                        "must not be empty".into(),
                    ));
                }
                if !users.insert(u.name.clone()) {
                    return Err(bad(
                        k(&format!("users[{ui}].name")),
                        format!("duplicate user {:?}", u.name),
                    ));
                }
            }
            if let Some(m) = &c.monitor_user {
                if !users.contains(m) {
                    return Err(bad(
                        k("monitor_user"),
                        format!("{m:?} is not one of the cluster's users"),
                    ));
                }
            }
            if c.nodes.is_empty() {
                return Err(bad(k("nodes"), "at least one node is required".into()));
            }
            let mut node_names = HashSet::new();
            let mut primaries = 0;
            for (ni, n) in c.nodes.iter_mut().enumerate() {
                let nk = |f: &str| k(&format!("nodes[{ni}].{f}"));
                validate_host_port(&n.addr).map_err(|r| bad(nk("addr"), r))?;
                let name = n.name.clone().unwrap_or_else(|| n.addr.clone());
                if name.is_empty() {
                    return Err(bad(nk("name"), "must not be empty".into()));
                }
                if !node_names.insert(name.clone()) {
                    return Err(bad(nk("name"), format!("duplicate node name {name:?}")));
                }
                n.name = Some(name);
                if n.weight > 1_000_000 {
                    return Err(bad(nk("weight"), "must be at most 1000000".into()));
                }
                if n.role == Some(super::Role::Primary) {
                    primaries += 1;
                }
            }
            if primaries > 1 {
                return Err(bad(
                    k("nodes"),
                    "more than one node has role = \"primary\"".into(),
                ));
            }
            if c.health_check_interval.is_zero() {
                return Err(bad(
                    k("health_check_interval"),
                    "must be more than 0".into(),
                ));
            }
            if c.health_check_timeout.is_zero() {
                return Err(bad(k("health_check_timeout"), "must be more than 0".into()));
            }
            if c.pool_size == 0 {
                return Err(bad(k("pool_size"), "must be at least 1".into()));
            }
            if c.pool_min_size > c.pool_size {
                return Err(bad(
                    k("pool_min_size"),
                    format!("must not exceed pool_size ({})", c.pool_size),
                ));
            }
            if c.pool_timeout.is_zero() {
                return Err(bad(k("pool_timeout"), "must be more than 0".into()));
            }
            if c.eject_after == 0 {
                return Err(bad(k("eject_after"), "must be at least 1".into()));
            }
            if c.readmit_after == 0 {
                return Err(bad(k("readmit_after"), "must be at least 1".into()));
            }
            if c.max_lag_bytes == Some(0) {
                return Err(bad(k("max_lag_bytes"), "must be more than 0".into()));
            }
            if c.max_lag.is_some_and(|d| d.is_zero()) {
                return Err(bad(k("max_lag"), "must be more than 0".into()));
            }
            if c.read_your_writes_window.is_zero() {
                return Err(bad(
                    k("read_your_writes_window"),
                    "must be more than 0".into(),
                ));
            }
            if c.failover.timeout.is_zero() {
                return Err(bad(k("failover.timeout"), "must be more than 0".into()));
            }
            if c.failover.user.is_some() != c.failover.password.is_some() {
                return Err(bad(
                    k("failover.password"),
                    "failover.user and failover.password go together".into(),
                ));
            }
            if c.protocol == super::Protocol::Mysql
                && c.server_tls.mode != crate::tls::BackendTlsMode::Disable
            {
                return Err(bad(
                    k("server_tls.mode"),
                    "TLS towards MySQL servers is not supported yet: use \"disable\" (client-facing TLS is [clusters.tls])".into(),
                ));
            }
            c.server_tls = c
                .server_tls
                .clone()
                .validate()
                .map_err(|e| bad(k("server_tls"), e.to_string()))?;
            for f in c.side_effect_functions.iter_mut() {
                *f = f.to_ascii_lowercase();
            }
        }
        if let Some(m) = &self.metrics {
            match m.listen.parse::<SocketAddr>() {
                Err(e) => {
                    return Err(bad(
                        "metrics.listen".into(),
                        format!("{:?} is not an ip:port address: {e}", m.listen),
                    ))
                }
                // Port 0 (any free port, as tests use) cannot collide.
                Ok(a) if a.port() != 0 && listens.contains(&m.listen) => {
                    return Err(bad(
                        "metrics.listen".into(),
                        format!("{} is used by a cluster", m.listen),
                    ))
                }
                Ok(_) => {}
            }
        }
        Ok(self)
    }
}

/// Accepts "host:port" and "[v6]:port" with a non-zero port.
fn validate_host_port(addr: &str) -> Result<(), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr:?} is not host:port"))?;
    if host.is_empty() {
        return Err(format!("{addr:?} has no host"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{addr:?} has no valid port")),
        Ok(_) => Ok(()),
    }
}
