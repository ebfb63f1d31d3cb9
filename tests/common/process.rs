//! A switchyard run as its own OS process (the real binary, `switchyard run --config FILE`), for
//! tests that look at it from outside: resident memory, signals, exit codes.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The listen line `config_for` writes; `spawn_proxy_process` replaces it with a free port.
pub const LISTEN_PLACEHOLDER: &str = "listen = \"127.0.0.1:0\"";

/// Bound for the binary to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Tries with a fresh port, in case another process took the chosen one before switchyard did.
const START_TRIES: usize = 3;
/// Bound for the child to exit after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// A running switchyard process; Drop kills it and waits for it.
pub struct ProxyProcess {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// The child's process id.
    pub pid: u32,
    child: Child,
    _dir: tempfile::TempDir,
}

impl ProxyProcess {
    /// Resident set size now (VmRSS), in KiB.
    ///
    /// # Panics
    /// If the process is gone or /proc cannot be read.
    pub fn rss_kib(&self) -> u64 {
        status_kib(self.pid, "VmRSS:")
    }

    /// Peak resident set size since the process started (VmHWM), in KiB: catches peaks
    /// between `rss_kib` samples. The kernel updates it lazily, so it can read a little
    /// below a VmRSS taken at about the same time.
    pub fn peak_rss_kib(&self) -> u64 {
        status_kib(self.pid, "VmHWM:")
    }

    /// The last `lines` lines of the process's stdout and stderr (its tracing log).
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self._dir.path().join("switchyard.log"), lines)
    }

    /// True while the child has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let end = Instant::now() + KILL_TIMEOUT;
        while Instant::now() < end {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        eprintln!(
            "switchyard pid {} did not exit within {KILL_TIMEOUT:?} of SIGKILL",
            self.pid
        );
    }
}

/// Writes `config_toml` to a temp file with its `listen = "127.0.0.1:0"` line (exactly one,
/// as `config_for` produces) replaced by a free port, runs the switchyard binary on it, and
/// returns once the port accepts connections.
///
/// # Panics
/// If the config has no single placeholder line, or the binary exits or does not listen
/// within 30 s (the message carries its log).
pub fn spawn_proxy_process(config_toml: &str) -> ProxyProcess {
    assert_eq!(
        config_toml.matches(LISTEN_PLACEHOLDER).count(),
        1,
        "the config must contain the line `{LISTEN_PLACEHOLDER}` exactly once:\n{config_toml}"
    );
    let mut last_error = String::new();
    for _ in 0..START_TRIES {
        match try_spawn(config_toml) {
            Ok(p) => return p,
            Err(e) => last_error = e,
        }
    }
    panic!("switchyard did not start in {START_TRIES} tries; last: {last_error}");
}

fn try_spawn(config_toml: &str) -> Result<ProxyProcess, String> {
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let text = config_toml.replacen(LISTEN_PLACEHOLDER, &format!("listen = \"{addr}\""), 1);
    let dir = tempfile::Builder::new()
        .prefix("switchyard-proc-")
        .tempdir()
        .expect("temp dir for the proxy's config");
    let config = dir.path().join("switchyard.toml");
    std::fs::write(&config, text).expect("write the proxy's config");
    let log_path = dir.path().join("switchyard.log");
    let log = std::fs::File::create(&log_path).expect("create the proxy's log");
    let log2 = log.try_clone().expect("clone the log handle");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.arg("run")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // RUST_LOG (inherited) sets the log level, default info.
    let child = cmd.spawn().expect("spawn the switchyard binary");
    let pid = child.id();
    let mut p = ProxyProcess {
        addr,
        pid,
        child,
        _dir: dir,
    };
    let end = Instant::now() + START_TIMEOUT;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(p);
        }
        if let Ok(Some(status)) = p.child.try_wait() {
            return Err(format!(
                "switchyard exited with {status} before listening on {addr}; log:\n{}",
                log_tail(&log_path, 40)
            ));
        }
        if Instant::now() >= end {
            // Drop kills the child.
            return Err(format!(
                "switchyard did not listen on {addr} within {START_TIMEOUT:?}; log:\n{}",
                log_tail(&log_path, 40)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port no one listens on right now (the kernel picks it; a race with another process is
/// covered by `spawn_proxy_process`'s retries).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} line in /proc/{pid}/status:\n{status}"))
}

fn log_tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
