//! One MariaDB node: its files and the life of its mariadbd process.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{log_tail, TestbedError};
use crate::node::{kill_tree, LaunchError, Status};

/// How often a start re-checks the log and the port.
const POLL: Duration = Duration::from_millis(10);

/// One MariaDB server of the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MariaNode {
    /// "maria0" for the primary, "maria1", "maria2", ... for the replicas.
    pub name: String,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// `server_id` (index + 1).
    pub server_id: u32,
    /// The node's own directory (socket, pid file and log live here).
    pub dir: PathBuf,
    /// The data directory (`--datadir`).
    pub data_dir: PathBuf,
    /// The directory holding the node's unix socket (its own, to never collide).
    pub socket_dir: PathBuf,
    /// The unix socket (`--socket`).
    pub socket: PathBuf,
    /// The pid file (`--pid-file`).
    pub pid_file: PathBuf,
    /// The server log (mariadbd's stderr).
    pub log_file: PathBuf,
    /// `--tmpdir`: its own, because mariadbd deletes every `#sql*` file in its tmpdir at
    /// start-up, another server's live temporary tables included.
    pub tmp_dir: PathBuf,
}

impl MariaNode {
    /// The layout of node `i` under the cluster's base directory (port not yet chosen).
    pub(crate) fn layout(base: &Path, i: usize) -> MariaNode {
        let name = format!("maria{i}");
        let dir = base.join(&name);
        MariaNode {
            name,
            port: 0,
            server_id: u32::try_from(i + 1).unwrap_or(u32::MAX),
            data_dir: dir.join("data"),
            socket_dir: dir.clone(),
            socket: dir.join("mariadbd.sock"),
            pid_file: dir.join("mariadbd.pid"),
            log_file: dir.join("mariadbd.log"),
            tmp_dir: dir.join("tmp"),
            dir,
        }
    }

    /// The tail of the server log, formatted for an error message.
    pub(crate) fn log(&self) -> String {
        log_tail(&self.log_file)
    }
}

/// The mariadbd we spawned (we are its parent, so we reap it) and the role it runs as.
#[derive(Debug)]
pub(crate) struct MariaProc {
    pub(crate) child: Option<Child>,
    pub(crate) status: Status,
    /// Started with `--read-only` (a replica); follows promote and repoint.
    pub(crate) read_only: bool,
}

impl MariaProc {
    /// Notices a mariadbd that exited on its own (crash, SHUTDOWN) and reaps it.
    pub(crate) fn refresh(&mut self) {
        if let Some(child) = &mut self.child {
            if matches!(child.try_wait(), Ok(Some(_))) {
                self.child = None;
                self.status = Status::Stopped;
            }
        }
    }
}

/// SWITCHYARD_MARIADBD wins, then Debian's /usr/sbin/mariadbd, then `mariadbd` on PATH.
pub(crate) fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SWITCHYARD_MARIADBD") {
        return PathBuf::from(p);
    }
    let debian = PathBuf::from("/usr/sbin/mariadbd");
    if debian.exists() {
        return debian;
    }
    PathBuf::from("mariadbd")
}

/// True when we are root: mariadbd then needs `--user=root`.
pub(crate) fn as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Settings for speed and for a proxy in front: no fsync, small InnoDB, no name lookups,
/// health checks never blocking 127.0.0.1, stored functions allowed with binary logging.
/// Also given to `mariadb-install-db`, so the log file starts at its final size.
pub(crate) const SPEED_ARGS: &[&str] = &[
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=16M",
    "--innodb-log-buffer-size=4M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--innodb-flush-method=nosync",
    "--skip-name-resolve",
];

/// Semi-synchronous replication on every node: the replica side on (harmless on a primary,
/// and a restarted replica comes back as a semi-sync client), the master side's settings
/// ready, and the master side itself switched on at run time on the primary only, because
/// with it on and no semi-sync replica connected each commit waits the whole timeout.
/// AFTER_SYNC: a commit becomes visible (and is acknowledged) only once a replica has it.
pub(crate) const SEMI_SYNC_ARGS: &[&str] = &[
    "--rpl-semi-sync-slave-enabled=ON",
    "--rpl-semi-sync-master-timeout=10000",
    "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
];

/// Starts node's mariadbd in its own process group and waits until it says it is ready
/// and its port accepts connections.
pub(crate) fn launch(
    node: &MariaNode,
    read_only: bool,
    semi_sync: bool,
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
    let log2 = log
        .try_clone()
        .map_err(|e| fail(TestbedError::io("duplicate the log file handle", e)))?;
    let mut cmd = Command::new(server_bin());
    // --no-defaults must come first: /etc/mysql/ would otherwise add the system's settings.
    cmd.arg("--no-defaults");
    if as_root() {
        cmd.arg("--user=root");
    }
    cmd.arg(format!("--datadir={}", node.data_dir.display()))
        .arg(format!("--port={}", node.port))
        .arg(format!("--socket={}", node.socket.display()))
        .arg(format!("--pid-file={}", node.pid_file.display()))
        .arg(format!("--tmpdir={}", node.tmp_dir.display()))
        .arg(format!("--server-id={}", node.server_id))
        .arg(format!("--read-only={}", u8::from(read_only)))
        .arg(format!("--report-port={}", node.port))
        .args([
            "--bind-address=127.0.0.1",
            "--report-host=127.0.0.1",
            "--log-bin=binlog",
            "--relay-log=relay-bin",
            "--log-slave-updates=1",
            "--binlog-format=ROW",
            "--sync-binlog=0",
            "--log-bin-trust-function-creators=1",
            "--max-connect-errors=1000000000",
            "--max-connections=300",
            "--slave-net-timeout=10",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
        ])
        .args(SPEED_ARGS)
        .args(if semi_sync { SEMI_SYNC_ARGS } else { &[] })
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .current_dir(&node.dir)
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| {
        fail(TestbedError::io(
            format!("{}: start {}", node.name, server_bin().display()),
            e,
        ))
    })?;
    let addr = SocketAddr::from(([127, 0, 0, 1], node.port));
    let deadline = Instant::now() + timeout;
    let new_log = || {
        std::fs::read(&node.log_file)
            .map(|b| String::from_utf8_lossy(&b[(log_offset as usize).min(b.len())..]).into_owned())
            .unwrap_or_default()
    };
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = new_log();
            let err = TestbedError::Exited {
                node: node.name.clone(),
                status: status.to_string(),
                log: node.log(),
            };
            return Err(
                if text.contains("Address already in use") || text.contains("Bind on TCP/IP port") {
                    LaunchError::PortInUse(err)
                } else {
                    fail(err)
                },
            );
        }
        if new_log().contains("ready for connections")
            && TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        {
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

/// Waits for a mariadbd that was asked to shut down; SIGKILLs it after `timeout`.
pub(crate) fn wait_exit(
    node: &MariaNode,
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
                    format!("{}: wait for mariadbd", node.name),
                    e,
                ))
            }
        }
    }
}
