//! A MariaDB primary and its GTID replicas, started from scratch in a temp dir: one
//! `mariadb-install-db` and one `mariadbd` per node (run as root with `--user=root` when we
//! are root), each on its own free loopback port and unix socket.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tempfile::TempDir;

use crate::error::TestbedError;
use crate::node::{kill_tree, signal_tree, Status};
use crate::os::run;
use crate::watchdog::Watchdog;
use crate::{ADMIN_PASSWORD, ADMIN_ROLE, MARIA_REPLICATION_PASSWORD, MARIA_REPLICATION_USER};

mod control;
mod node;
mod setup;

pub use node::MariaNode;
use node::{launch, wait_exit, MariaProc};

/// Bound for one server start, one tool run, one shutdown.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound for the replicas of a fresh cluster to replicate.
const REPLICATE_TIMEOUT: Duration = Duration::from_secs(30);
/// Between polls; a `mariadb` CLI round trip costs a few ms.
const POLL: Duration = Duration::from_millis(20);

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MariaOptions {
    /// Number of GTID replicas (default 2).
    pub replicas: usize,
    /// Application user `'user'@'%'`, mysql_native_password (default "app").
    pub user: String,
    /// Its password (default "app").
    pub password: String,
    /// Application database; the user has ALL on it (default "app").
    pub database: String,
    /// Semi-synchronous replication (default false): every node runs with
    /// `rpl_semi_sync_slave_enabled`, `rpl_semi_sync_master_timeout` = 10 s and
    /// `rpl_semi_sync_master_wait_point = AFTER_SYNC`, and the primary with
    /// `rpl_semi_sync_master_enabled`, so a commit is acknowledged to its client only once a
    /// replica has it in its relay log. [`MariaCluster::start`] returns once every replica is
    /// connected as a semi-sync client; [`MariaCluster::promote`] enables the master side on
    /// the node it promotes (a promotion done by anyone else must do it too, or later
    /// writes are asynchronous).
    pub semi_sync: bool,
}

impl Default for MariaOptions {
    fn default() -> Self {
        MariaOptions {
            replicas: 2,
            user: "app".into(),
            password: "app".into(),
            database: "app".into(),
            semi_sync: false,
        }
    }
}

/// A running MariaDB topology: node 0 is the primary, the rest replicate from it with
/// `MASTER_USE_GTID=slave_pos` and run with `read_only=1`. Dropping it SIGKILLs every node
/// and removes its directory.
#[derive(Debug)]
pub struct MariaCluster {
    opts: MariaOptions,
    nodes: Vec<MariaNode>,
    procs: Vec<Mutex<MariaProc>>,
    base: PathBuf,
    dir: Option<TempDir>,
    watchdog: Option<Watchdog>,
}

impl MariaCluster {
    /// Builds and starts the topology; returns once every replica's IO and SQL threads run
    /// and a row written on the primary is visible on every replica. Blocking; needs no
    /// async runtime.
    pub fn start(opts: MariaOptions) -> Result<MariaCluster, TestbedError> {
        let dir = tempfile::Builder::new()
            .prefix("switchyard-maria-")
            .tempdir()
            .map_err(|e| TestbedError::io("create the cluster's temp dir", e))?;
        let base = dir.path().to_path_buf();
        let layouts: Vec<MariaNode> = (0..=opts.replicas)
            .map(|i| MariaNode::layout(&base, i))
            .collect();
        let pid_files: Vec<PathBuf> = layouts.iter().map(|n| n.pid_file.clone()).collect();
        // Armed before any server starts, so even a crash half-way through is cleaned up.
        // mariadbd keeps no shared memory: SIGKILL leaves nothing behind but the dir.
        let watchdog = Watchdog::spawn(&base, "KILL", &pid_files)?;
        let mut cluster = MariaCluster {
            opts,
            nodes: Vec::new(),
            procs: Vec::new(),
            base,
            dir: Some(dir),
            watchdog: Some(watchdog),
        };
        // On any error below, dropping `cluster` stops what started and removes the dir.
        cluster.build(layouts)?;
        Ok(cluster)
    }

    /// Every node: index 0 is the primary, then the replicas.
    pub fn nodes(&self) -> &[MariaNode] {
        &self.nodes
    }

    /// The node started as primary (index 0); after a promotion see
    /// [`MariaCluster::current_primary`].
    pub fn primary(&self) -> &MariaNode {
        &self.nodes[0]
    }

    /// The nodes started as replicas (indexes 1..).
    pub fn replicas(&self) -> &[MariaNode] {
        &self.nodes[1..]
    }

    /// Node `i`, or an error naming the bad index.
    pub fn node(&self, i: usize) -> Result<&MariaNode, TestbedError> {
        self.nodes.get(i).ok_or(TestbedError::NoNode {
            index: i,
            len: self.nodes.len(),
        })
    }

    /// The options the cluster was started with.
    pub fn options(&self) -> &MariaOptions {
        &self.opts
    }

    /// The temp dir holding every node's directory.
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    /// The last lines of node `i`'s server log (mariadbd's stderr).
    pub fn log_tail(&self, i: usize) -> Result<String, TestbedError> {
        Ok(self.node(i)?.log())
    }

    fn proc(&self, i: usize) -> Result<(&MariaNode, MutexGuard<'_, MariaProc>), TestbedError> {
        let node = self.node(i)?;
        let proc = self.procs[i].lock().unwrap_or_else(|p| p.into_inner());
        Ok((node, proc))
    }

    /// True while node `i`'s mariadbd runs and is not paused.
    pub fn is_running(&self, i: usize) -> Result<bool, TestbedError> {
        let (_, mut p) = self.proc(i)?;
        p.refresh();
        Ok(p.status == Status::Running)
    }

    /// Clean shutdown of node `i` (SIGTERM), waiting until it has exited.
    pub fn stop(&self, i: usize) -> Result<(), TestbedError> {
        let (node, mut p) = self.proc(i)?;
        p.status = Status::Stopped;
        match p.child.take() {
            Some(mut child) => {
                signal_tree(&child, Signal::SIGCONT);
                crate::os::signal_pid(crate::os::pid_of(child.id()), Signal::SIGTERM);
                wait_exit(node, &mut child, STEP_TIMEOUT)
            }
            None => Ok(()),
        }
    }

    /// SIGKILLs node `i`'s mariadbd; its port is closed on return.
    pub fn kill(&self, i: usize) -> Result<(), TestbedError> {
        let (_, mut p) = self.proc(i)?;
        p.status = Status::Stopped;
        if let Some(mut child) = p.child.take() {
            kill_tree(&mut child);
        }
        Ok(())
    }

    /// Freezes node `i` (SIGSTOP): connections are accepted by the kernel but never get the
    /// server's greeting.
    pub fn pause(&self, i: usize) -> Result<(), TestbedError> {
        let (node, mut p) = self.proc(i)?;
        p.refresh();
        match (&p.child, p.status) {
            (Some(child), Status::Running | Status::Paused) => {
                signal_tree(child, Signal::SIGSTOP);
                p.status = Status::Paused;
                Ok(())
            }
            _ => Err(not_running(node)),
        }
    }

    /// Thaws a paused node `i` (SIGCONT); a running node is left alone.
    pub fn resume(&self, i: usize) -> Result<(), TestbedError> {
        let (node, mut p) = self.proc(i)?;
        match (&p.child, p.status) {
            (Some(child), Status::Running | Status::Paused) => {
                signal_tree(child, Signal::SIGCONT);
                p.status = Status::Running;
                Ok(())
            }
            _ => Err(not_running(node)),
        }
    }

    /// Starts a stopped or killed node `i` again (same data dir and port, `read_only` as
    /// its current role) and waits until it accepts connections; a running node is left
    /// alone. A replica's threads restart by themselves: use
    /// [`MariaCluster::wait_replicating`] to wait for them.
    pub fn start_node(&self, i: usize) -> Result<(), TestbedError> {
        let (node, mut p) = self.proc(i)?;
        p.refresh();
        if p.child.is_some() {
            return Ok(());
        }
        let child = launch(node, p.read_only, self.opts.semi_sync, STEP_TIMEOUT)?;
        p.child = Some(child);
        p.status = Status::Running;
        Ok(())
    }

    /// `mysql://app:app@127.0.0.1:PORT/app`: the application user over TCP.
    ///
    /// # Panics
    /// If `i` is not a node index.
    pub fn app_url(&self, i: usize) -> String {
        let o = &self.opts;
        mysql_url(&o.user, &o.password, self.nodes[i].port, &o.database)
    }

    /// `mysql://switchyard_admin:..@127.0.0.1:PORT/app`: the failover controller's user
    /// ([`crate::ADMIN_ROLE`], ALL PRIVILEGES WITH GRANT OPTION) over TCP.
    ///
    /// # Panics
    /// If `i` is not a node index.
    pub fn admin_url(&self, i: usize) -> String {
        mysql_url(
            ADMIN_ROLE,
            ADMIN_PASSWORD,
            self.nodes[i].port,
            &self.opts.database,
        )
    }

    /// A `mariadb` CLI command with no option files read (`--no-defaults`), no stdin.
    pub fn client_command(&self) -> Command {
        let mut cmd = Command::new(client_bin());
        cmd.arg("--no-defaults");
        for var in [
            "MYSQL_HOST",
            "MYSQL_TCP_PORT",
            "MYSQL_UNIX_PORT",
            "MYSQL_PWD",
        ] {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs SQL (one or more `;`-separated statements) as root over node `i`'s unix socket
    /// in the application database with `mariadb -N -B`; returns trimmed stdout.
    pub fn mysql(&self, i: usize, sql: &str) -> Result<String, TestbedError> {
        self.mysql_with(i, Some(&self.opts.database), &["-N", "-B"], sql)
    }

    /// Runs SQL as the application user over TCP on node `i` (`mariadb -N -B`); for checks
    /// that must not bypass `read_only` as root does.
    pub fn mysql_app(&self, i: usize, sql: &str) -> Result<String, TestbedError> {
        let node = self.node(i)?;
        let o = &self.opts;
        let mut cmd = self.client_command();
        cmd.args(["-N", "-B", "--connect-timeout=10", "-h", "127.0.0.1"])
            .arg(format!("--port={}", node.port))
            .arg(format!("--user={}", o.user))
            .arg(format!("--password={}", o.password))
            .arg(format!("--database={}", o.database));
        self.run_client(node, cmd, sql)
    }

    fn mysql_with(
        &self,
        i: usize,
        db: Option<&str>,
        args: &[&str],
        sql: &str,
    ) -> Result<String, TestbedError> {
        let node = self.node(i)?;
        let mut cmd = self.client_command();
        cmd.args(args)
            .args(["--connect-timeout=10", "--user=root", "--protocol=socket"])
            .arg(format!("--socket={}", node.socket.display()));
        if let Some(db) = db {
            cmd.arg(format!("--database={db}"));
        }
        self.run_client(node, cmd, sql)
    }

    fn run_client(
        &self,
        node: &MariaNode,
        mut cmd: Command,
        sql: &str,
    ) -> Result<String, TestbedError> {
        let what = format!("mariadb on {}", node.name);
        match run(&mut cmd, &what, Some(sql), STEP_TIMEOUT) {
            Ok(out) => Ok(out.trim().to_owned()),
            Err(TestbedError::Command {
                what,
                status,
                stderr,
                ..
            }) => Err(TestbedError::Command {
                what,
                status,
                stderr,
                log: node.log(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Polls `check` until it returns true, failing with `what` after `timeout`.
    fn poll_until(
        &self,
        what: &str,
        timeout: Duration,
        log_of: usize,
        mut check: impl FnMut() -> Result<bool, TestbedError>,
    ) -> Result<(), TestbedError> {
        let deadline = Instant::now() + timeout;
        let mut last_err = None;
        loop {
            match check() {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last_err = Some(e),
            }
            if Instant::now() >= deadline {
                let last = last_err.map_or(String::new(), |e| format!(" (last error: {e})"));
                return Err(TestbedError::Timeout {
                    what: format!("{what}{last}"),
                    secs: timeout.as_secs_f64(),
                    log: self.log_tail(log_of).unwrap_or_default(),
                });
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for MariaCluster {
    fn drop(&mut self) {
        // The data is thrown away: SIGKILL is the fastest clean-up and mariadbd keeps no
        // shared memory or other state outside its directory.
        for proc in &self.procs {
            let mut p = proc.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(mut child) = p.child.take() {
                kill_tree(&mut child);
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
        if let Some(w) = self.watchdog.take() {
            w.disarm();
        }
    }
}

fn not_running(node: &MariaNode) -> TestbedError {
    TestbedError::State {
        node: node.name.clone(),
        what: "not running".into(),
    }
}

/// SWITCHYARD_MARIADB_CLIENT wins, then `mariadb` on PATH.
fn client_bin() -> PathBuf {
    std::env::var_os("SWITCHYARD_MARIADB_CLIENT").map_or_else(|| "mariadb".into(), PathBuf::from)
}

/// `mysql://user:password@127.0.0.1:port/db`, user, password and db percent-encoded.
fn mysql_url(user: &str, password: &str, port: u16, db: &str) -> String {
    format!(
        "mysql://{}:{}@127.0.0.1:{port}/{}",
        url_encode(user),
        url_encode(password),
        url_encode(db)
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `'text'` with backslashes and quotes escaped (the default sql_mode).
pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `` `name` `` with embedded backquotes doubled.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// `SHOW SLAVE STATUS\G` (mariadb -E) output as field -> value; empty when not a replica.
fn parse_vertical(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let k = k.trim();
            (!k.starts_with('*')).then(|| (k.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// A GTID position (`0-1-10,1-2-5`) as domain -> sequence number.
fn parse_gtid_pos(pos: &str) -> HashMap<u32, u64> {
    pos.split(',')
        .filter_map(|g| {
            let mut parts = g.trim().split('-');
            let domain = parts.next()?.parse().ok()?;
            let _server = parts.next()?;
            let seq = parts.next()?.parse().ok()?;
            Some((domain, seq))
        })
        .collect()
}

/// True when `replica` has reached `primary` in every replication domain.
fn gtid_reached(replica: &str, primary: &str) -> bool {
    let have = parse_gtid_pos(replica);
    parse_gtid_pos(primary)
        .into_iter()
        .all(|(d, seq)| have.get(&d).is_some_and(|&s| s >= seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_encoded() {
        assert_eq!(
            mysql_url("app", "p@ss:w/rd", 3306, "app"),
            "mysql://app:p%40ss%3Aw%2Frd@127.0.0.1:3306/app"
        );
    }

    #[test]
    fn sql_quoting() {
        assert_eq!(quote_literal(r"it's\"), r"'it\'s\\'");
        assert_eq!(quote_ident("a`b"), "`a``b`");
    }

    #[test]
    fn gtid_positions_compare_per_domain() {
        assert!(gtid_reached("0-1-10", "0-1-10"));
        assert!(gtid_reached("0-2-12,1-1-3", "0-1-10"));
        assert!(!gtid_reached("0-1-9", "0-1-10"));
        assert!(!gtid_reached("", "0-1-1"));
        assert!(gtid_reached("", ""));
        assert!(!gtid_reached("0-1-10", "0-1-10,1-1-1"));
    }

    #[test]
    fn vertical_output() {
        let out = "*************************** 1. row ***************************\n\
                   Slave_IO_State: Waiting for master\n    Master_Host: 127.0.0.1\n\
                   Slave_IO_Running: Yes\n";
        let m = parse_vertical(out);
        assert_eq!(m["Slave_IO_Running"], "Yes");
        assert_eq!(m["Master_Host"], "127.0.0.1");
        assert_eq!(m.len(), 3);
    }
}
