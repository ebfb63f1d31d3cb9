//! The one error type of the test bed.

use std::path::Path;

/// Everything that can go wrong while running a test topology; messages name the step and,
/// where a server was involved, end with the tail of its log.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// The step that failed.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An external program (initdb, pg_basebackup, psql, ...) exited unsuccessfully.
    #[error("{what} failed ({status}): {stderr}{log}")]
    Command {
        /// The step that failed.
        what: String,
        /// How the program ended.
        status: String,
        /// Its trimmed standard error.
        stderr: String,
        /// The server log tail, if a server was involved (may be empty).
        log: String,
    },
    /// A bounded wait ran out.
    #[error("timed out after {secs:.1}s waiting for {what}{log}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The bound that expired.
        secs: f64,
        /// The server log tail, if a server was involved (may be empty).
        log: String,
    },
    /// A postmaster died while starting.
    #[error("{node}: postmaster exited during startup ({status}){log}")]
    Exited {
        /// The node's name.
        node: String,
        /// How the postmaster ended.
        status: String,
        /// The server log tail.
        log: String,
    },
    /// Running as root, but there is no OS user to run PostgreSQL as (it refuses root).
    #[error("running as root and there is no OS user {0:?} to run PostgreSQL as")]
    NoUser(String),
    /// A node index past the end of the topology.
    #[error("node index {index} out of range (the cluster has {len} nodes)")]
    NoNode {
        /// The index asked for.
        index: usize,
        /// How many nodes there are.
        len: usize,
    },
    /// The node is not in a state that allows the operation.
    #[error("{node}: {what}")]
    State {
        /// The node's name.
        node: String,
        /// What is wrong.
        what: String,
    },
    /// Sending a signal failed.
    #[error("{what}: {source}")]
    Signal {
        /// The step that failed.
        what: String,
        /// The errno.
        #[source]
        source: nix::errno::Errno,
    },
}

impl TestbedError {
    /// Wraps an io::Error with the step that failed.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        TestbedError::Io {
            what: what.into(),
            source,
        }
    }
}

/// The last lines of a server log, formatted to be appended to an error message
/// ("" when the log is missing or empty), because a bare "it failed" is useless in CI.
pub(crate) fn log_tail(path: &Path) -> String {
    const MAX_BYTES: usize = 4096;
    const MAX_LINES: usize = 20;
    let Ok(bytes) = std::fs::read(path) else {
        return String::new();
    };
    let start = bytes.len().saturating_sub(MAX_BYTES);
    let text = String::from_utf8_lossy(&bytes[start..]);
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(MAX_LINES)..];
    if tail.is_empty() {
        return String::new();
    }
    format!("\n--- tail of {} ---\n{}", path.display(), tail.join("\n"))
}
