//! Process plumbing: which OS user runs the PostgreSQL binaries, where they live, running
//! them with a timeout, free ports, and signalling process trees through /proc.

use std::collections::HashSet;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::TestbedError;

/// Environment variables that would silently redirect libpq tools away from our nodes.
const LIBPQ_ENV: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGSSLMODE",
    "PGTARGETSESSIONATTRS",
    "PGDATA",
];

/// Runs the PostgreSQL binaries, as the `postgres` OS user when we are root (initdb and
/// postgres refuse to run as root), else as ourselves.
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    ids: Option<(u32, u32)>,
    home: Option<PathBuf>,
    bin_dir: PathBuf,
}

impl Runner {
    /// Finds the binaries and the OS user to run them as.
    pub(crate) fn detect() -> Result<Runner, TestbedError> {
        let (ids, home) = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or_else(|| TestbedError::NoUser("postgres".into()))?;
            (Some((user.uid.as_raw(), user.gid.as_raw())), Some(user.dir))
        } else {
            (None, None)
        };
        Ok(Runner {
            ids,
            home,
            bin_dir: bin_dir(),
        })
    }

    /// The directory holding initdb, postgres, psql and friends.
    pub(crate) fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// A command for one of the PostgreSQL binaries, set up to run as the right user with
    /// no inherited libpq settings and no stdin.
    pub(crate) fn command(&self, bin: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(bin));
        for var in LIBPQ_ENV {
            cmd.env_remove(var);
        }
        if let Some((uid, gid)) = self.ids {
            cmd.uid(uid).gid(gid).env("USER", "postgres");
            cmd.env("LOGNAME", "postgres");
        }
        if let Some(home) = &self.home {
            cmd.env("HOME", home);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Hands a path we created to the OS user that runs PostgreSQL.
    pub(crate) fn give(&self, path: &Path) -> Result<(), TestbedError> {
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| TestbedError::io(format!("chown {}", path.display()), e))?;
        }
        Ok(())
    }
}

/// SWITCHYARD_PG_BIN wins, then PostgreSQL 15 as Debian installs it, then the newest
/// other Debian version, then whatever is on PATH.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SWITCHYARD_PG_BIN") {
        return PathBuf::from(dir);
    }
    let debian15 = PathBuf::from("/usr/lib/postgresql/15/bin");
    if debian15.join("postgres").exists() {
        return debian15;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| PathBuf::from(""))
}

/// Runs a command to completion with `input` on its stdin, killing it after `timeout`;
/// returns its output if it exited 0, else an error naming `what` with its stderr.
pub(crate) fn run(
    cmd: &mut Command,
    what: &str,
    input: Option<&str>,
    timeout: Duration,
) -> Result<String, TestbedError> {
    let output = run_output(cmd, what, input, timeout)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(TestbedError::Command {
            what: what.into(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            log: String::new(),
        })
    }
}

/// Like [`run`] but returns the raw output whatever the exit status.
pub(crate) fn run_output(
    cmd: &mut Command,
    what: &str,
    input: Option<&str>,
    timeout: Duration,
) -> Result<Output, TestbedError> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(|e| {
        TestbedError::io(format!("{what}: cannot start {:?}", cmd.get_program()), e)
    })?;
    let pid = child.id();
    let stdin = child.stdin.take();
    let input = input.map(str::to_owned);
    // The writer is separate from the waiter so a chatty program cannot deadlock us.
    let writer = std::thread::spawn(move || {
        if let (Some(mut stdin), Some(input)) = (stdin, input) {
            let _ = stdin.write_all(input.as_bytes());
        }
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let result = match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => {
            signal_pid(pid_of(pid), Signal::SIGKILL);
            let _ = rx.recv();
            let _ = writer.join();
            return Err(TestbedError::Timeout {
                what: what.into(),
                secs: timeout.as_secs_f64(),
                log: String::new(),
            });
        }
    };
    let _ = writer.join();
    result.map_err(|e| TestbedError::io(what, e))
}

/// Converts a std child id into a nix Pid.
pub(crate) fn pid_of(id: u32) -> Pid {
    Pid::from_raw(i32::try_from(id).unwrap_or(i32::MAX))
}

/// Sends a signal, ignoring a process that is already gone (that is what we wanted anyway).
pub(crate) fn signal_pid(pid: Pid, sig: Signal) {
    let _ = kill(pid, sig);
}

/// A loopback port nobody listens on right now and that is not in `taken`.
pub(crate) fn free_port(taken: &HashSet<u16>) -> Result<u16, TestbedError> {
    for _ in 0..100 {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| TestbedError::io("bind 127.0.0.1:0 to find a free port", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| TestbedError::io("read the port of a bound socket", e))?
            .port();
        if !taken.contains(&port) {
            return Ok(port);
        }
    }
    Err(TestbedError::io(
        "find a free loopback port",
        std::io::Error::other("the kernel kept handing out ports already taken"),
    ))
}

/// Parent pid and state letter of a process, from /proc/PID/stat.
fn stat(pid: i32) -> Option<(i32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: the fields we want follow the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

/// True when the process no longer runs; a zombie counts as gone because it holds no
/// sockets or shared memory, and this machine's pid 1 may never reap it.
pub(crate) fn is_gone(pid: Pid) -> bool {
    !matches!(stat(pid.as_raw()), Some((_, s)) if s != 'Z' && s != 'X')
}

/// Direct children of `parent` (PostgreSQL backends put themselves in their own process
/// groups, so signalling the postmaster's group would miss them).
pub(crate) fn children_of(parent: Pid) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| matches!(stat(pid), Some((ppid, _)) if ppid == parent.as_raw()))
        .map(Pid::from_raw)
        .collect()
}
