//! psycopg 3 (libpq underneath) through switchyard: tests/python/psycopg_prepared.py runs
//! prepared statements (every prepare threshold), transactions, executemany and
//! prepare=True against the shared proxy. The venv with psycopg is target/pyenv, which
//! scripts/test creates (ensure_python_deps in scripts/lib.sh).

mod common;

use common::shared_proxy;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bound for the whole script (it takes a few seconds).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn venv_python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python")
}

/// Runs `cmd` with stdout and stderr captured, killing it after `timeout`.
/// Returns (exit status or None on timeout, stdout, stderr).
fn run_bounded(
    mut cmd: Command,
    timeout: Duration,
) -> (Option<std::process::ExitStatus>, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the Python interpreter");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout piped")));
    let err = drain(Box::new(child.stderr.take().expect("stderr piped")));
    let end = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("wait for the script") {
            Some(s) => break Some(s),
            None if Instant::now() >= end => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    (status, out, err)
}

#[test]
fn psycopg_prepared_statements_and_transactions() {
    let python = venv_python();
    assert!(
        python.exists(),
        "{} is missing: run scripts/test once (its ensure_python_deps creates the venv \
         and pip-installs psycopg[binary]), or `. scripts/lib.sh && ensure_python_deps`",
        python.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/psycopg_prepared.py");
    let proxy = shared_proxy();
    let conninfo = format!(
        "host=127.0.0.1 port={} user=app password=app dbname=app",
        proxy.addr.port()
    );
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(&conninfo);
    // libpq must take nothing from the environment that conninfo does not say.
    for var in [
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
        "PGSERVICE",
        "PGSSLMODE",
    ] {
        cmd.env_remove(var);
    }
    let started = Instant::now();
    let (status, out, err) = run_bounded(cmd, SCRIPT_TIMEOUT);
    eprintln!(
        "psycopg_prepared.py ({:.1?}): {}",
        started.elapsed(),
        out.trim()
    );
    if !err.trim().is_empty() {
        eprintln!("stderr:\n{}", err.trim_end());
    }
    let status = status.unwrap_or_else(|| {
        panic!("psycopg_prepared.py did not finish within {SCRIPT_TIMEOUT:?}; stderr:\n{err}")
    });
    assert!(
        status.success(),
        "psycopg_prepared.py failed ({status}):\n{}",
        err.trim_end()
    );
    assert!(
        out.trim().starts_with('{') && out.contains("\"ok\": true"),
        "psycopg_prepared.py printed no summary: {out}"
    );
}

#[test]
fn asyncpg_named_statements_through_transaction_pooling() {
    let python = venv_python();
    assert!(
        python.exists(),
        "{} is missing: run scripts/test once (ensure_python_deps installs asyncpg)",
        python.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/asyncpg_prepared.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(shared_proxy().addr.port().to_string());
    let (status, out, err) = run_bounded(cmd, SCRIPT_TIMEOUT);
    eprintln!("asyncpg_prepared.py: {}", out.trim());
    let status =
        status.unwrap_or_else(|| panic!("asyncpg_prepared.py did not finish; stderr:\n{err}"));
    assert!(
        status.success(),
        "asyncpg_prepared.py failed ({status}):\n{}",
        err.trim_end()
    );
    assert!(out.contains("\"ok\": true"), "no summary: {out}");
}
