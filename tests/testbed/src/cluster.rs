//! A primary and its streaming replicas, started from scratch in a temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::Signal;
use tempfile::TempDir;

use crate::error::TestbedError;
use crate::node::{self, kill_tree, launch, shutdown, PgNode, Proc, Status};
use crate::os::{run, Runner};
use crate::watchdog::Watchdog;
use crate::{ADMIN_PASSWORD, ADMIN_ROLE};

/// Bound for one server start, one tool run, one shutdown.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound for the replicas of a fresh cluster to start streaming.
const STREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Number of streaming replicas (default 2).
    pub replicas: usize,
    /// Application role, LOGIN with a SCRAM password (default "app").
    pub user: String,
    /// Its password (default "app").
    pub password: String,
    /// Application database, owned by `user` (default "app").
    pub database: String,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            replicas: 2,
            user: "app".into(),
            password: "app".into(),
            database: "app".into(),
        }
    }
}

/// A running PostgreSQL topology: node 0 is the primary, the rest stream from it.
/// Dropping it shuts every node down (immediate) and removes its directory.
#[derive(Debug)]
pub struct PgCluster {
    opts: PgOptions,
    runner: Runner,
    nodes: Vec<PgNode>,
    procs: Vec<Mutex<Proc>>,
    base: PathBuf,
    dir: Option<TempDir>,
    watchdog: Option<Watchdog>,
}

impl PgCluster {
    /// Builds and starts the topology; returns once every node accepts connections and
    /// every replica streams from the primary. Blocking; needs no async runtime.
    pub fn start(opts: PgOptions) -> Result<PgCluster, TestbedError> {
        let runner = Runner::detect()?;
        let dir = tempfile::Builder::new()
            .prefix("switchyard-pg-")
            .tempdir()
            .map_err(|e| TestbedError::io("create the cluster's temp dir", e))?;
        let base = dir.path().to_path_buf();
        runner.give(&base)?;
        let names: Vec<String> = (0..=opts.replicas).map(|i| format!("pg{i}")).collect();
        let pid_files: Vec<PathBuf> = names
            .iter()
            .map(|n| PgNode::layout(&base, n).data_dir.join("postmaster.pid"))
            .collect();
        // Armed before any server starts, so even a crash half-way through is cleaned up.
        let watchdog = Watchdog::spawn(&base, "QUIT", &pid_files)?;
        let mut cluster = PgCluster {
            opts,
            runner,
            nodes: Vec::new(),
            procs: Vec::new(),
            base,
            dir: Some(dir),
            watchdog: Some(watchdog),
        };
        // On any error below, dropping `cluster` stops what started and removes the dir.
        cluster.start_primary(&names[0])?;
        cluster.start_replicas(&names[1..])?;
        cluster.wait_streaming_count(cluster.replicas().len(), STREAM_TIMEOUT)?;
        Ok(cluster)
    }

    /// Every node: index 0 is the primary, then the replicas.
    pub fn nodes(&self) -> &[PgNode] {
        &self.nodes
    }

    /// The node started as primary (index 0); after a promotion see
    /// [`PgCluster::current_primary`].
    pub fn primary(&self) -> &PgNode {
        &self.nodes[0]
    }

    /// The nodes started as replicas (indexes 1..).
    pub fn replicas(&self) -> &[PgNode] {
        &self.nodes[1..]
    }

    /// Node `i`, or an error naming the bad index.
    pub fn node(&self, i: usize) -> Result<&PgNode, TestbedError> {
        self.nodes.get(i).ok_or(TestbedError::NoNode {
            index: i,
            len: self.nodes.len(),
        })
    }

    /// The options the cluster was started with.
    pub fn options(&self) -> &PgOptions {
        &self.opts
    }

    /// The temp dir holding every node's directory.
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    /// The directory of the PostgreSQL binaries in use.
    pub fn bin_dir(&self) -> &Path {
        self.runner.bin_dir()
    }

    /// A command for a PostgreSQL binary (pg_ctl, pg_rewind, pgbench, ...) that runs as the
    /// OS user owning the data dirs, with libpq's PG* environment variables cleared.
    pub fn pg_command(&self, bin: &str) -> Command {
        self.runner.command(bin)
    }

    /// The last lines of node `i`'s server log.
    pub fn log_tail(&self, i: usize) -> Result<String, TestbedError> {
        Ok(self.node(i)?.log())
    }

    fn proc(&self, i: usize) -> Result<(&PgNode, MutexGuard<'_, Proc>), TestbedError> {
        let node = self.node(i)?;
        let proc = self.procs[i].lock().unwrap_or_else(|p| p.into_inner());
        Ok((node, proc))
    }

    /// True while node `i`'s postmaster runs and is not paused.
    pub fn is_running(&self, i: usize) -> Result<bool, TestbedError> {
        let (_, mut p) = self.proc(i)?;
        refresh(&mut p);
        Ok(p.status == Status::Running)
    }

    /// Fast shutdown of node `i` (SIGINT to the postmaster), waiting until it has exited.
    pub fn stop(&self, i: usize) -> Result<(), TestbedError> {
        let (node, mut p) = self.proc(i)?;
        p.status = Status::Stopped;
        match p.child.take() {
            Some(mut child) => shutdown(node, &mut child, Signal::SIGINT, STEP_TIMEOUT),
            None => Ok(()),
        }
    }

    /// SIGKILLs node `i`'s postmaster and children; its port is closed on return.
    pub fn kill(&self, i: usize) -> Result<(), TestbedError> {
        let (_, mut p) = self.proc(i)?;
        p.status = Status::Stopped;
        if let Some(mut child) = p.child.take() {
            kill_tree(&mut child);
        }
        Ok(())
    }

    /// Freezes node `i` (SIGSTOP to the postmaster and children): connections hang.
    pub fn pause(&self, i: usize) -> Result<(), TestbedError> {
        let (node, mut p) = self.proc(i)?;
        refresh(&mut p);
        match (&p.child, p.status) {
            (Some(child), Status::Running | Status::Paused) => {
                node::signal_tree(child, Signal::SIGSTOP);
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
                node::signal_tree(child, Signal::SIGCONT);
                p.status = Status::Running;
                Ok(())
            }
            _ => Err(not_running(node)),
        }
    }

    /// Starts a stopped or killed node `i` again (same data dir and port) and waits until it
    /// accepts connections; a running node is left alone. A replica's streaming resumes by
    /// itself shortly after: use [`PgCluster::wait_streaming`] to wait for it.
    pub fn start_node(&self, i: usize) -> Result<(), TestbedError> {
        let (node, mut p) = self.proc(i)?;
        refresh(&mut p);
        if p.child.is_some() {
            return Ok(());
        }
        let child = launch(&self.runner, node, STEP_TIMEOUT)?;
        p.child = Some(child);
        p.status = Status::Running;
        Ok(())
    }

    /// `host=127.0.0.1 port=N user=.. password=.. dbname=..`: the application role over TCP
    /// (SCRAM), in tokio-postgres / libpq key=value form.
    ///
    /// # Panics
    /// If `i` is not a node index.
    pub fn app_url(&self, i: usize) -> String {
        let o = &self.opts;
        format!(
            "host=127.0.0.1 port={} user={} password={} dbname={}",
            self.nodes[i].port,
            quote_conn(&o.user),
            quote_conn(&o.password),
            quote_conn(&o.database)
        )
    }

    /// `host=127.0.0.1 port=N user=switchyard_admin password=.. dbname=..`: the failover
    /// controller's superuser role ([`crate::ADMIN_ROLE`]) over TCP (SCRAM).
    ///
    /// # Panics
    /// If `i` is not a node index.
    pub fn admin_tcp_url(&self, i: usize) -> String {
        format!(
            "host=127.0.0.1 port={} user={} password={} dbname={}",
            self.nodes[i].port,
            quote_conn(ADMIN_ROLE),
            quote_conn(ADMIN_PASSWORD),
            quote_conn(&self.opts.database)
        )
    }

    /// The `postgres` superuser over node `i`'s unix socket (trust), database as in the
    /// options, in tokio-postgres / libpq key=value form.
    ///
    /// # Panics
    /// If `i` is not a node index.
    pub fn admin_url(&self, i: usize) -> String {
        let n = &self.nodes[i];
        format!(
            "host={} port={} user=postgres dbname={}",
            quote_conn(&n.socket_dir.to_string_lossy()),
            n.port,
            quote_conn(&self.opts.database)
        )
    }

    /// Runs SQL (one or more statements, each sent on its own) as superuser on node `i` with
    /// `psql -XAtq -v ON_ERROR_STOP=1`; returns trimmed stdout.
    pub fn psql(&self, i: usize, sql: &str) -> Result<String, TestbedError> {
        self.psql_db(i, &self.opts.database, sql)
    }

    fn psql_db(&self, i: usize, db: &str, sql: &str) -> Result<String, TestbedError> {
        let node = self.node(i)?;
        let mut cmd = self.runner.command("psql");
        cmd.args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&node.socket_dir)
            .args([
                "-p",
                &node.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-f",
                "-",
            ])
            .env("PGCONNECT_TIMEOUT", "10");
        let what = format!("psql on {}", node.name);
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
}

mod control;
mod setup;
mod wait;

impl Drop for PgCluster {
    fn drop(&mut self) {
        let mut children = Vec::new();
        for (node, proc) in self.nodes.iter().zip(&self.procs) {
            let mut p = proc.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(child) = p.child.take() {
                // Immediate shutdown for all at once; SIGQUIT (not SIGKILL) lets each
                // postmaster remove its SysV shared memory segment.
                node::signal_tree(&child, Signal::SIGCONT);
                nix::sys::signal::kill(crate::os::pid_of(child.id()), Signal::SIGQUIT).ok();
                children.push((node, child));
            }
        }
        for (node, mut child) in children {
            let _ = node::wait_exit(node, &mut child, Duration::from_secs(10));
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
        if let Some(w) = self.watchdog.take() {
            w.disarm();
        }
    }
}

/// Notices a postmaster that exited on its own (crash, pg_ctl stop) and reaps it.
fn refresh(p: &mut Proc) {
    if let Some(child) = &mut p.child {
        if matches!(child.try_wait(), Ok(Some(_))) {
            p.child = None;
            p.status = Status::Stopped;
        }
    }
}

fn not_running(node: &PgNode) -> TestbedError {
    TestbedError::State {
        node: node.name.clone(),
        what: "not running".into(),
    }
}

/// A libpq key=value value, quoted only when it has to be.
fn quote_conn(s: &str) -> String {
    if !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::quote_conn;

    #[test]
    fn conn_values_are_quoted_only_when_needed() {
        assert_eq!(quote_conn("app"), "app");
        assert_eq!(quote_conn(""), "''");
        assert_eq!(quote_conn("a b"), "'a b'");
        assert_eq!(quote_conn(r"it's\"), r"'it\'s\\'");
    }
}
