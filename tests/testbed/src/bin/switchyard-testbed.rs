//! `switchyard-testbed pg|maria [--replicas N] [--env-file PATH]`: runs a PostgreSQL
//! primary with streaming replicas, or a MariaDB primary with GTID replicas, until SIGINT or
//! SIGTERM, for the demo and benchmark scripts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use switchyard_testbed::{MariaCluster, MariaOptions, PgCluster, PgOptions};
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: switchyard-testbed pg|maria [--replicas N] [--env-file PATH]

pg: starts a PostgreSQL primary and N streaming replicas (default 2) on free loopback
ports in a temp dir, writes their ports to PATH as shell-sourceable lines
(PG_PRIMARY_PORT, PG_REPLICA<k>_PORT, PG_USER, PG_PASSWORD, PG_DATABASE,
PG_SOCKET_DIR_<i>, ...).
maria: the same for a MariaDB primary and N GTID replicas (read_only), with MARIA_*
lines (MARIA_PRIMARY_PORT, MARIA_REPLICA<k>_PORT, MARIA_USER, MARIA_PASSWORD,
MARIA_DATABASE, MARIA_SOCKET_DIR_<i>, MARIA_SOCKET_<i>, ...).
Then runs until SIGINT or SIGTERM, when it stops every server and removes the temp dir
and the env file.";

/// Which topology to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Pg,
    Maria,
}

/// Parsed command line.
struct Args {
    engine: Engine,
    replicas: usize,
    env_file: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let engine = match args.next().as_deref() {
        Some("pg") => Engine::Pg,
        Some("maria" | "mariadb") => Engine::Maria,
        Some("-h" | "--help") => return Err(String::new()),
        Some(other) => return Err(format!("unknown command {other:?}")),
        None => return Err("missing command".into()),
    };
    let mut parsed = Args {
        engine,
        replicas: 2,
        env_file: None,
    };
    while let Some(arg) = args.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| args.next());
        match key.as_str() {
            "--replicas" => {
                let v = value().ok_or("--replicas needs a number")?;
                parsed.replicas = v
                    .parse()
                    .map_err(|_| format!("--replicas: not a number: {v:?}"))?;
            }
            "--env-file" => {
                parsed.env_file = Some(value().ok_or("--env-file needs a path")?.into())
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(parsed)
}

/// Single-quotes a value for `sh`'s `.`/`source`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn env_text(pg: &PgCluster) -> String {
    let o = pg.options();
    let mut lines = vec![
        ("PG_HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PG_PRIMARY_PORT".into(), pg.primary().port.to_string()),
    ];
    for (k, r) in pg.replicas().iter().enumerate() {
        lines.push((format!("PG_REPLICA{}_PORT", k + 1), r.port.to_string()));
    }
    lines.push(("PG_USER".into(), o.user.clone()));
    lines.push(("PG_PASSWORD".into(), o.password.clone()));
    lines.push(("PG_DATABASE".into(), o.database.clone()));
    for (i, n) in pg.nodes().iter().enumerate() {
        lines.push((
            format!("PG_SOCKET_DIR_{i}"),
            n.socket_dir.display().to_string(),
        ));
    }
    lines.push(("PG_BASE_DIR".into(), pg.base_dir().display().to_string()));
    lines.push(("PG_BIN_DIR".into(), pg.bin_dir().display().to_string()));
    lines.push(("PG_TESTBED_PID".into(), std::process::id().to_string()));
    lines
        .into_iter()
        .map(|(k, v)| format!("{k}={}\n", sh_quote(&v)))
        .collect()
}

fn maria_env_text(m: &MariaCluster) -> String {
    let o = m.options();
    let mut lines = vec![
        ("MARIA_HOST".to_owned(), "127.0.0.1".to_owned()),
        ("MARIA_PRIMARY_PORT".into(), m.primary().port.to_string()),
    ];
    for (k, r) in m.replicas().iter().enumerate() {
        lines.push((format!("MARIA_REPLICA{}_PORT", k + 1), r.port.to_string()));
    }
    lines.push(("MARIA_USER".into(), o.user.clone()));
    lines.push(("MARIA_PASSWORD".into(), o.password.clone()));
    lines.push(("MARIA_DATABASE".into(), o.database.clone()));
    lines.push((
        "MARIA_ADMIN_USER".into(),
        switchyard_testbed::ADMIN_ROLE.into(),
    ));
    lines.push((
        "MARIA_ADMIN_PASSWORD".into(),
        switchyard_testbed::ADMIN_PASSWORD.into(),
    ));
    for (i, n) in m.nodes().iter().enumerate() {
        lines.push((
            format!("MARIA_SOCKET_DIR_{i}"),
            n.socket_dir.display().to_string(),
        ));
        lines.push((format!("MARIA_SOCKET_{i}"), n.socket.display().to_string()));
    }
    lines.push(("MARIA_BASE_DIR".into(), m.base_dir().display().to_string()));
    lines.push(("MARIA_TESTBED_PID".into(), std::process::id().to_string()));
    lines
        .into_iter()
        .map(|(k, v)| format!("{k}={}\n", sh_quote(&v)))
        .collect()
}

/// A running topology of either engine, for printing and dropping.
enum Running {
    Pg(PgCluster),
    Maria(MariaCluster),
}

impl Running {
    fn start(args: &Args) -> Result<Running, String> {
        match args.engine {
            Engine::Pg => PgCluster::start(PgOptions {
                replicas: args.replicas,
                ..PgOptions::default()
            })
            .map(Running::Pg),
            Engine::Maria => MariaCluster::start(MariaOptions {
                replicas: args.replicas,
                ..MariaOptions::default()
            })
            .map(Running::Maria),
        }
        .map_err(|e| e.to_string())
    }

    fn env_text(&self) -> String {
        match self {
            Running::Pg(pg) => env_text(pg),
            Running::Maria(m) => maria_env_text(m),
        }
    }

    fn describe(&self, secs: f64) -> String {
        let (engine, base, rows): (&str, &Path, Vec<(String, u16, String)>) = match self {
            Running::Pg(pg) => (
                "PostgreSQL",
                pg.base_dir(),
                pg.nodes()
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.name.clone(), n.port, pg.app_url(i)))
                    .collect(),
            ),
            Running::Maria(m) => (
                "MariaDB",
                m.base_dir(),
                m.nodes()
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.name.clone(), n.port, m.app_url(i)))
                    .collect(),
            ),
        };
        let mut text = format!(
            "switchyard-testbed: {engine} primary + {} replicas up in {secs:.2}s (dir {})\n",
            rows.len().saturating_sub(1),
            base.display()
        );
        for (i, (name, port, url)) in rows.iter().enumerate() {
            let role = if i == 0 { "primary" } else { "replica" };
            text.push_str(&format!("  {name} {role:<7} 127.0.0.1:{port}  {url}\n"));
        }
        text
    }
}

/// Written then renamed, so a script polling for the file never reads half of it.
fn write_env(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

async fn run(args: Args) -> Result<(), String> {
    // Handlers first: a signal during the few seconds of startup is then acted on right
    // after it, instead of killing us before the cluster can clean up.
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
    let started = Instant::now();
    let cluster = Running::start(&args)?;
    let secs = started.elapsed().as_secs_f64();
    if let Some(path) = &args.env_file {
        write_env(path, &cluster.env_text())
            .map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    print!("{}", cluster.describe(secs));
    if let Some(path) = &args.env_file {
        println!("  env file: {}", path.display());
    }
    println!("stop with SIGINT or SIGTERM");
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    println!("switchyard-testbed: stopping");
    drop(cluster);
    if let Some(path) = &args.env_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("switchyard-testbed: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchyard-testbed: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("switchyard-testbed: {msg}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_args, sh_quote, Args, Engine};

    fn parse(args: &[&str]) -> Result<(usize, Option<String>), String> {
        parse_args(args.iter().map(|s| s.to_string()))
            .map(|a| (a.replicas, a.env_file.map(|p| p.display().to_string())))
    }

    #[test]
    fn args() {
        assert_eq!(parse(&["pg"]), Ok((2, None)));
        assert_eq!(
            parse(&["pg", "--replicas", "1", "--env-file=/x"]),
            Ok((1, Some("/x".into())))
        );
        assert!(parse(&["pg", "--replicas", "two"]).is_err());
        assert!(parse(&["mysql"]).is_err());
        assert!(matches!(
            parse_args(["maria", "--env-file", "/y"].iter().map(|s| s.to_string())),
            Ok(Args {
                engine: Engine::Maria,
                replicas: 2,
                ..
            })
        ));
        assert_eq!(parse(&["--help"]), Err(String::new()));
    }

    #[test]
    fn env_values_survive_sh() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
    }
}
