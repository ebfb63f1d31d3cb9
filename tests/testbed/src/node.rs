//! One PostgreSQL node: its files and the life of its postmaster process.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::error::{log_tail, TestbedError};
use crate::os::{children_of, is_gone, pid_of, signal_pid, Runner};

/// How often waits re-check; short because every check is a cheap file read or poll.
const POLL: Duration = Duration::from_millis(10);

/// One PostgreSQL server of the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgNode {
    /// "pg0" for the primary, "pg1", "pg2", ... for the replicas (also its `cluster_name`,
    /// so the primary's `pg_stat_replication.application_name` and slot names match it).
    pub name: String,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// The data directory (PGDATA).
    pub data_dir: PathBuf,
    /// The directory holding the node's unix socket (its own, to never collide).
    pub socket_dir: PathBuf,
    /// The server log (the postmaster's stderr).
    pub log_file: PathBuf,
    /// Node-specific settings (port, socket dir, cluster_name), outside the data dir and
    /// included from postgresql.conf by a relative path, so pg_basebackup and pg_rewind,
    /// which copy postgresql.conf, never carry another node's port over.
    pub conf_file: PathBuf,
}

impl PgNode {
    /// The layout of node `name` under the cluster's base directory (port not yet chosen).
    pub(crate) fn layout(base: &Path, name: &str) -> PgNode {
        let dir = base.join(name);
        PgNode {
            name: name.to_owned(),
            port: 0,
            data_dir: dir.join("data"),
            socket_dir: dir.clone(),
            log_file: dir.join("postgres.log"),
            conf_file: dir.join("node.conf"),
        }
    }

    /// Writes the node-specific settings file.
    pub(crate) fn write_conf(&self) -> Result<(), TestbedError> {
        let text = format!(
            "# written by switchyard-testbed for node {name}\n\
             port = {port}\n\
             unix_socket_directories = '{sock}'\n\
             cluster_name = '{name}'\n",
            name = self.name,
            port = self.port,
            sock = self.socket_dir.display(),
        );
        std::fs::write(&self.conf_file, text)
            .map_err(|e| TestbedError::io(format!("write {}", self.conf_file.display()), e))
    }

    /// The tail of the server log, formatted for an error message.
    pub(crate) fn log(&self) -> String {
        log_tail(&self.log_file)
    }
}

/// What a node's postmaster is doing, as far as the test bed has made it do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Running,
    Paused,
    Stopped,
}

/// The postmaster we spawned (we are its parent, so we reap it: this machine's pid 1 may
/// not, and a zombie would make the next postmaster think the old one still runs).
#[derive(Debug)]
pub(crate) struct Proc {
    pub(crate) child: Option<Child>,
    pub(crate) status: Status,
}

/// Why a start failed: a port collision is worth retrying on another port.
#[derive(Debug)]
pub(crate) enum LaunchError {
    PortInUse(TestbedError),
    Failed(TestbedError),
}

impl From<LaunchError> for TestbedError {
    fn from(e: LaunchError) -> Self {
        match e {
            LaunchError::PortInUse(e) | LaunchError::Failed(e) => e,
        }
    }
}

/// Line 8 of postmaster.pid is the postmaster's status; line 1 its pid.
fn pid_file_status(data_dir: &Path) -> Option<(i32, String)> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let pid = lines.first()?.trim().parse().ok()?;
    Some((pid, lines.get(7)?.trim().to_owned()))
}

/// Starts the node's postmaster in its own process group (so a terminal's Ctrl-C reaches
/// only the test process, which then cleans up) and waits until it accepts connections.
pub(crate) fn launch(
    runner: &Runner,
    node: &PgNode,
    timeout: Duration,
) -> Result<Child, LaunchError> {
    let fail = LaunchError::Failed;
    let log_offset = std::fs::metadata(&node.log_file).map_or(0, |m| m.len());
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&node.log_file)
        .map_err(|e| {
            fail(TestbedError::io(
                format!("open {}", node.log_file.display()),
                e,
            ))
        })?;
    runner.give(&node.log_file).map_err(fail)?;
    let log2 = log
        .try_clone()
        .map_err(|e| fail(TestbedError::io("duplicate the log file handle", e)))?;
    let mut cmd = runner.command("postgres");
    cmd.arg("-D")
        .arg(&node.data_dir)
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .current_dir(&node.socket_dir)
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| {
        fail(TestbedError::io(
            format!("{}: start postgres", node.name),
            e,
        ))
    })?;
    let addr = SocketAddr::from(([127, 0, 0, 1], node.port));
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let new_log = std::fs::read(&node.log_file)
                .map(|b| {
                    String::from_utf8_lossy(&b[(log_offset as usize).min(b.len())..]).into_owned()
                })
                .unwrap_or_default();
            let err = TestbedError::Exited {
                node: node.name.clone(),
                status: status.to_string(),
                log: node.log(),
            };
            return Err(if new_log.contains("Address already in use") {
                LaunchError::PortInUse(err)
            } else {
                fail(err)
            });
        }
        let ready = matches!(pid_file_status(&node.data_dir),
            Some((pid, s)) if pid as u32 == child.id() && (s == "ready" || s == "standby"));
        if ready && TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            kill_tree(&mut child);
            return Err(fail(TestbedError::Timeout {
                what: format!("{} to accept connections on {addr}", node.name),
                secs: timeout.as_secs_f64(),
                log: node.log(),
            }));
        }
        std::thread::sleep(POLL);
    }
}

/// SIGKILLs the postmaster and its children, reaps it, and waits until the children are
/// gone too: a surviving child keeps the shared memory attached and the next start fails.
pub(crate) fn kill_tree(child: &mut Child) {
    let pm = pid_of(child.id());
    // Frozen first, so it cannot fork a child we would miss.
    signal_pid(pm, Signal::SIGSTOP);
    let kids = children_of(pm);
    for &kid in &kids {
        signal_pid(kid, Signal::SIGKILL);
    }
    signal_pid(pm, Signal::SIGKILL);
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while kids.iter().any(|&k| !is_gone(k)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Sends `sig` to the postmaster and its children (children first when freezing would
/// otherwise let the postmaster notice, postmaster first when stopping so it forks no more).
pub(crate) fn signal_tree(child: &Child, sig: Signal) {
    let pm = pid_of(child.id());
    if sig == Signal::SIGSTOP {
        signal_pid(pm, sig);
    }
    for kid in children_of(pm) {
        signal_pid(kid, sig);
    }
    if sig != Signal::SIGSTOP {
        signal_pid(pm, sig);
    }
}

/// Asks the postmaster to shut down with `sig` (SIGINT fast, SIGQUIT immediate) and reaps
/// it; falls back to SIGKILL and an error after `timeout`.
pub(crate) fn shutdown(
    node: &PgNode,
    child: &mut Child,
    sig: Signal,
    timeout: Duration,
) -> Result<(), TestbedError> {
    // A paused server would never act on the request.
    signal_tree(child, Signal::SIGCONT);
    signal_pid(pid_of(child.id()), sig);
    wait_exit(node, child, timeout)
}

/// Waits for a postmaster that was asked to shut down; SIGKILLs it after `timeout`.
pub(crate) fn wait_exit(
    node: &PgNode,
    child: &mut Child,
    timeout: Duration,
) -> Result<(), TestbedError> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Ok(()),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                kill_tree(child);
                return Err(TestbedError::Timeout {
                    what: format!("{} to shut down (it was killed instead)", node.name),
                    secs: timeout.as_secs_f64(),
                    log: node.log(),
                });
            }
            Err(e) => {
                return Err(TestbedError::io(
                    format!("{}: wait for postgres", node.name),
                    e,
                ))
            }
        }
    }
}
