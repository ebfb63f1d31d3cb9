//! A detached shell loop that cleans up after a test process that died without running
//! Drop (a `static` cluster never drops, and a killed test never gets the chance).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{killpg, Signal};

use crate::error::TestbedError;
use crate::os::{pid_of, signal_pid};

/// Arguments: parent pid, base dir, signal name, then every server's pid file (first line:
/// the pid). Servers get the signal first (QUIT for postmasters: an immediate shutdown that
/// removes their SysV shared memory) and SIGKILL after 5 s.
const SCRIPT: &str = r#"
parent=$1; base=$2; sig=$3; shift 3
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
alive() { read -r _ _ st _ < "/proc/$1/stat" 2>/dev/null && [ "$st" != Z ]; }
pms=
for f in "$@"; do
  [ -r "$f" ] || continue
  read -r pm < "$f" || continue
  case $pm in ''|*[!0-9]*) continue ;; esac
  alive "$pm" || continue
  kill -CONT "$pm" 2>/dev/null
  for s in /proc/[0-9]*/stat; do
    read -r cpid _ _ ppid _ < "$s" 2>/dev/null || continue
    [ "$ppid" = "$pm" ] && kill -CONT "$cpid" 2>/dev/null
  done
  kill -"$sig" "$pm" 2>/dev/null && pms="$pms $pm"
done
i=0
while [ "$i" -lt 50 ]; do
  left=
  for pm in $pms; do alive "$pm" && left="$left $pm"; done
  [ -z "$left" ] && break
  sleep 0.1
  i=$((i + 1))
done
for pm in $pms; do alive "$pm" && kill -KILL "$pm" 2>/dev/null; done
rm -rf "$base"
"#;

/// The running watchdog of one cluster.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
}

impl Watchdog {
    /// Starts a watchdog for this process, in its own process group so a terminal's
    /// Ctrl-C aimed at the test does not take the watchdog down with it. Once this process
    /// is gone it sends `signal` ("QUIT", "KILL", ...) to the pid in each of `pid_files`.
    pub(crate) fn spawn(
        base: &Path,
        signal: &str,
        pid_files: &[PathBuf],
    ) -> Result<Watchdog, TestbedError> {
        let child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("switchyard-testbed-watchdog")
            .arg(std::process::id().to_string())
            .arg(base)
            .arg(signal)
            .args(pid_files)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| TestbedError::io("start the cleanup watchdog (sh)", e))?;
        Ok(Watchdog { child })
    }

    /// Stops the watchdog (and its `sleep`) once the cluster cleaned up after itself.
    pub(crate) fn disarm(mut self) {
        let pid = pid_of(self.child.id());
        if killpg(pid, Signal::SIGKILL).is_err() {
            signal_pid(pid, Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
