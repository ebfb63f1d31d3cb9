//! Building a fresh topology: initdb, roles, slots, base backups, first starts.

use std::collections::HashSet;
use std::sync::Mutex;

use super::{PgCluster, STEP_TIMEOUT};
use crate::error::TestbedError;
use crate::node::{launch, LaunchError, PgNode, Proc, Status};
use crate::os::{free_port, run, Runner};
use crate::{ADMIN_PASSWORD, ADMIN_ROLE, REPLICATION_PASSWORD, REPLICATION_ROLE};

/// Port collisions with other processes are retried this often.
const PORT_ATTEMPTS: usize = 5;

/// Settings common to every node; node.conf (port, socket dir) is included last.
const SERVER_CONF: &str = "
# switchyard-testbed
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
wal_log_hints = on
fsync = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 300
password_encryption = 'scram-sha-256'
# a restarted primary is found again within 0.2 s instead of 5 s
wal_retrieve_retry_interval = '200ms'
include_if_exists = '../node.conf'
";

impl PgCluster {
    pub(super) fn start_primary(&mut self, name: &str) -> Result<(), TestbedError> {
        let node = self.make_node_dir(name)?;
        let mut initdb = self.runner.command("initdb");
        initdb
            .arg("-D")
            .arg(&node.data_dir)
            .args(["--no-sync", "-U", "postgres", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"]);
        run(&mut initdb, "initdb", None, STEP_TIMEOUT)?;
        let conf = node.data_dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)
            .map_err(|e| TestbedError::io(format!("read {}", conf.display()), e))?;
        text.push_str(SERVER_CONF);
        std::fs::write(&conf, text)
            .map_err(|e| TestbedError::io(format!("write {}", conf.display()), e))?;
        self.launch_new(node)?;
        let o = &self.opts;
        let setup = format!(
            "SET password_encryption = 'scram-sha-256';\n\
             CREATE ROLE {user} LOGIN PASSWORD {password};\n\
             CREATE DATABASE {db} OWNER {user};\n\
             CREATE ROLE {repl} REPLICATION LOGIN PASSWORD {repl_password};\n\
             CREATE ROLE {admin} SUPERUSER LOGIN PASSWORD {admin_password};\n",
            user = quote_ident(&o.user),
            password = quote_literal(&o.password),
            db = quote_ident(&o.database),
            repl = quote_ident(REPLICATION_ROLE),
            repl_password = quote_literal(REPLICATION_PASSWORD),
            admin = quote_ident(ADMIN_ROLE),
            admin_password = quote_literal(ADMIN_PASSWORD),
        );
        self.psql_db(0, "postgres", &setup)?;
        // Fixtures made through psql (as postgres) stay usable by the application role.
        let grants = format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT ALL ON TABLES TO {user};\n\
             ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT ALL ON SEQUENCES TO {user};\n",
            user = quote_ident(&o.user),
        );
        self.psql_db(0, &o.database, &grants)?;
        Ok(())
    }

    pub(super) fn start_replicas(&mut self, names: &[String]) -> Result<(), TestbedError> {
        let primary = self.primary().clone();
        let mut replicas = Vec::new();
        for name in names {
            replicas.push(self.make_node_dir(name)?);
        }
        // Slots made up front with their WAL reserved: with `pg_basebackup -C` each slot
        // only appears after its backup started, and a parallel backup's checkpoint can
        // remove the WAL the first one still needs ("requested WAL segment ... removed").
        let slots: String = replicas
            .iter()
            .map(|r| {
                format!(
                    "SELECT pg_create_physical_replication_slot({}, true);\n",
                    quote_literal(&r.name)
                )
            })
            .collect();
        self.psql_db(0, "postgres", &slots)?;
        // Base backups in parallel: they are mostly waiting on the primary's checkpoint.
        let runner = &self.runner;
        let primary = &primary;
        std::thread::scope(|s| {
            let jobs: Vec<_> = replicas
                .iter()
                .map(|r| s.spawn(move || base_backup(runner, primary, r)))
                .collect();
            jobs.into_iter()
                .map(|j| j.join().unwrap_or_else(|_| Err(panicked("pg_basebackup"))))
                .collect::<Result<Vec<()>, _>>()
        })?;
        for r in replicas {
            self.launch_new(r)?;
        }
        Ok(())
    }

    /// Creates the node's directory, owned by the PostgreSQL OS user.
    fn make_node_dir(&self, name: &str) -> Result<PgNode, TestbedError> {
        let node = PgNode::layout(&self.base, name);
        std::fs::create_dir(&node.socket_dir)
            .map_err(|e| TestbedError::io(format!("create {}", node.socket_dir.display()), e))?;
        self.runner.give(&node.socket_dir)?;
        Ok(node)
    }

    /// Picks a free port and starts a brand-new node, on another port if another process
    /// grabbed it first; then records the node.
    fn launch_new(&mut self, mut node: PgNode) -> Result<(), TestbedError> {
        let mut taken: HashSet<u16> = self.nodes.iter().map(|n| n.port).collect();
        let mut attempt = 0;
        let child = loop {
            attempt += 1;
            node.port = free_port(&taken)?;
            node.write_conf()?;
            self.runner.give(&node.conf_file)?;
            match launch(&self.runner, &node, STEP_TIMEOUT) {
                Ok(child) => break child,
                Err(LaunchError::PortInUse(_)) if attempt < PORT_ATTEMPTS => {
                    taken.insert(node.port);
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.nodes.push(node);
        self.procs.push(Mutex::new(Proc {
            child: Some(child),
            status: Status::Running,
        }));
        Ok(())
    }
}

fn panicked(what: &str) -> TestbedError {
    TestbedError::io(what, std::io::Error::other("worker thread panicked"))
}

/// Clones the primary into `replica`'s data dir over TCP as the replication role, using the
/// slot named after the replica and writing standby.signal, primary_slot_name and a
/// primary_conninfo that carries the password and the replica's name as application_name.
fn base_backup(runner: &Runner, primary: &PgNode, replica: &PgNode) -> Result<(), TestbedError> {
    let mut cmd = runner.command("pg_basebackup");
    cmd.args(["-h", "127.0.0.1", "-p", &primary.port.to_string()])
        .args(["-U", REPLICATION_ROLE, "-D"])
        .arg(&replica.data_dir)
        .args(["-R", "-S", &replica.name, "-X", "stream", "-c", "fast"])
        .args(["--no-sync", "-w"])
        // -R writes every connection setting in use, these two included.
        .env("PGPASSWORD", REPLICATION_PASSWORD)
        .env("PGAPPNAME", &replica.name);
    run(
        &mut cmd,
        &format!("pg_basebackup for {}", replica.name),
        None,
        STEP_TIMEOUT,
    )
    .map_err(|e| match e {
        TestbedError::Command {
            what,
            status,
            stderr,
            ..
        } => TestbedError::Command {
            what,
            status,
            stderr,
            log: primary.log(),
        },
        e => e,
    })?;
    Ok(())
}

/// `"name"` with embedded quotes doubled.
pub(super) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled (standard_conforming_strings is on).
pub(super) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::{quote_ident, quote_literal};

    #[test]
    fn sql_quoting_doubles_embedded_quotes() {
        assert_eq!(quote_ident("app"), "\"app\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
