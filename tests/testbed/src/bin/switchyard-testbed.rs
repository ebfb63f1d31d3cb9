//! `switchyard-testbed pg [--replicas N] [--env-file PATH]`: runs a PostgreSQL primary with
//! streaming replicas until SIGINT or SIGTERM, for the demo and benchmark scripts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use switchyard_testbed::{PgCluster, PgOptions};
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: switchyard-testbed pg [--replicas N] [--env-file PATH]

Starts a PostgreSQL primary and N streaming replicas (default 2) on free loopback ports
in a temp dir, writes their ports to PATH as shell-sourceable lines (PG_PRIMARY_PORT,
PG_REPLICA<k>_PORT, PG_USER, PG_PASSWORD, PG_DATABASE, PG_SOCKET_DIR_<i>, ...), then
runs until SIGINT or SIGTERM, when it stops every server and removes the temp dir and
the env file.";

/// Parsed command line.
struct Args {
    replicas: usize,
    env_file: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    match args.next().as_deref() {
        Some("pg") => {}
        Some("-h" | "--help") => return Err(String::new()),
        Some(other) => return Err(format!("unknown command {other:?}")),
        None => return Err("missing command".into()),
    }
    let mut parsed = Args {
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
    let opts = PgOptions {
        replicas: args.replicas,
        ..PgOptions::default()
    };
    let pg = PgCluster::start(opts).map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    if let Some(path) = &args.env_file {
        write_env(path, &env_text(&pg)).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    println!(
        "switchyard-testbed: PostgreSQL primary + {} replicas up in {secs:.2}s (dir {})",
        pg.replicas().len(),
        pg.base_dir().display()
    );
    for (i, n) in pg.nodes().iter().enumerate() {
        let role = if i == 0 { "primary" } else { "replica" };
        println!(
            "  {} {role:<7} 127.0.0.1:{}  {}",
            n.name,
            n.port,
            pg.app_url(i)
        );
    }
    if let Some(path) = &args.env_file {
        println!("  env file: {}", path.display());
    }
    println!("stop with SIGINT or SIGTERM");
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    println!("switchyard-testbed: stopping");
    drop(pg);
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
    use super::{parse_args, sh_quote};

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
        assert_eq!(parse(&["--help"]), Err(String::new()));
    }

    #[test]
    fn env_values_survive_sh() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
    }
}
