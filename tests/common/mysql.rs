//! A switchyard serving a MySQL cluster in front of the test bed's MariaDB, and the mariadb
//! CLI as a client.

use std::net::SocketAddr;
use std::sync::Arc;
use switchyard::frontend::mysql::MyContext;
use switchyard_testbed::MariaCluster;

/// A switchyard serving one MySQL cluster on a runtime thread of its own.
pub struct MyProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// The cluster's shared state.
    pub ctx: Arc<MyContext>,
}

/// Config text for `maria` (primary weight 1, replicas `weights`), plus `extra` cluster keys.
pub fn mysql_config_for(maria: &MariaCluster, weights: &[u32], extra: &str) -> String {
    let mut text = format!(
        "[general]\nstartup_timeout = \"2s\"\n\n[[clusters]]\nname = \"mtest\"\nprotocol = \"mysql\"\nlisten = \"127.0.0.1:0\"\nhealth_check_interval = \"200ms\"\nhealth_check_timeout = \"3s\"\n{extra}\n[[clusters.users]]\nname = \"app\"\npassword = \"app\"\n"
    );
    for (i, n) in maria.nodes().iter().enumerate() {
        let w = if i == 0 {
            1
        } else {
            weights.get(i - 1).copied().unwrap_or(1)
        };
        text += &format!(
            "\n[[clusters.nodes]]\nname = \"{}\"\naddr = \"127.0.0.1:{}\"\nweight = {w}\n",
            n.name, n.port
        );
    }
    text
}

/// Starts a proxy for a config with one MySQL cluster.
pub fn start_mysql_proxy(config: &str) -> MyProxy {
    let (addr, ctx) = super::start_server(config, |r| r.mysql[0].clone());
    MyProxy { addr, ctx }
}

/// Runs `sql` with the mariadb CLI through the proxy as `user`/`password` (batch mode, no
/// column names); Ok(stdout) or Err(stderr).
pub fn mariadb(p: &MyProxy, user: &str, password: &str, sql: &str) -> Result<String, String> {
    mariadb_with(
        p,
        "127.0.0.1",
        &[&format!("-u{user}"), &format!("-p{password}")],
        sql,
    )
}

/// `mariadb` against the proxy as `host` (a name, for TLS checks) with `args` (login and
/// options) before the batch-mode flags.
pub fn mariadb_with(p: &MyProxy, host: &str, args: &[&str], sql: &str) -> Result<String, String> {
    let out = std::process::Command::new("mariadb")
        .args(["--no-defaults", "--protocol=TCP", "-h", host])
        .arg(format!("-P{}", p.addr.port()))
        .args(args)
        .args(["-N", "-B", "app", "-e", sql])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run mariadb");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
