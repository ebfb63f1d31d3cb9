//! Command line: `switchyard run|check --config FILE`, with exit codes 0 ok, 1 runtime error,
//! 2 bad config or usage.

use crate::config::Config;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// switchyard: a database-aware load-balancing proxy.
///
/// Applications connect to switchyard as if it were PostgreSQL; it sends writes to the
/// primary and spreads reads across replicas.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the clusters in the config file until SIGINT or SIGTERM.
    Run {
        /// Path of the TOML config file (see docs/config.md).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Validate a config file and report the first problem as file, key and reason.
    Check {
        /// Path of the TOML config file (see docs/config.md).
        #[arg(short, long)]
        config: PathBuf,
    },
}

/// Entry point used by the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match Config::load(&config) {
            Ok(c) => {
                // Certificates and keys are only read when serving; check them here too.
                for (i, cl) in c.clusters.iter().enumerate() {
                    let acceptor = cl.tls.as_ref().map(crate::tls::acceptor).transpose();
                    if let Err(e) = acceptor {
                        eprintln!("{}: clusters[{i}].tls: {e}", config.display());
                        return ExitCode::from(2);
                    }
                    if let Err(e) = crate::tls::connector(&cl.server_tls) {
                        eprintln!("{}: clusters[{i}].server_tls: {e}", config.display());
                        return ExitCode::from(2);
                    }
                }
                println!(
                    "{}: ok ({} cluster{})",
                    config.display(),
                    c.clusters.len(),
                    if c.clusters.len() == 1 { "" } else { "s" }
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run { config } => {
            crate::server::init_tracing();
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            // worker_threads = 0 runs everything on one thread (like PgBouncer): on small
            // machines shared with the database it costs less CPU per transaction.
            let mut builder = match cfg.general.worker_threads {
                Some(0) => tokio::runtime::Builder::new_current_thread(),
                _ => tokio::runtime::Builder::new_multi_thread(),
            };
            if let Some(n) = cfg.general.worker_threads.filter(|n| *n > 0) {
                builder.worker_threads(n);
            }
            let rt = match builder.enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            match rt.block_on(crate::server::run(cfg, Some(config.clone()))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
