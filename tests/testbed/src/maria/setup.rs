//! Building a fresh topology: install-db, first starts, users, GTID replication.

use std::collections::HashSet;
use std::process::Command;
use std::sync::Mutex;

use super::node::{as_root, launch, MariaProc, SPEED_ARGS};
use super::{quote_ident, quote_literal, MariaCluster, MariaNode, REPLICATE_TIMEOUT, STEP_TIMEOUT};
use crate::error::TestbedError;
use crate::node::{LaunchError, Status};
use crate::os::{free_port, run};
use crate::{ADMIN_PASSWORD, ADMIN_ROLE, MARIA_REPLICATION_PASSWORD, MARIA_REPLICATION_USER};

/// Port collisions with other processes are retried this often.
const PORT_ATTEMPTS: usize = 5;

/// The test bed's own schema: the start-up check writes its row here, not in the app's.
pub(super) const TESTBED_DB: &str = "switchyard_testbed";

impl MariaCluster {
    /// Installs and starts every node, creates the users on the primary, attaches the
    /// replicas and waits until a row written on the primary reached them all.
    pub(super) fn build(&mut self, layouts: Vec<MariaNode>) -> Result<(), TestbedError> {
        // Each install is about 0.5 s of mostly single-threaded bootstrap: run them at once.
        std::thread::scope(|s| {
            let jobs: Vec<_> = layouts
                .iter()
                .map(|n| s.spawn(move || install_db(n)))
                .collect();
            jobs.into_iter()
                .map(|j| {
                    j.join().unwrap_or_else(|_| {
                        Err(TestbedError::io(
                            "mariadb-install-db",
                            std::io::Error::other("worker thread panicked"),
                        ))
                    })
                })
                .collect::<Result<Vec<()>, _>>()
        })?;
        for (i, node) in layouts.into_iter().enumerate() {
            self.launch_new(node, i > 0)?;
        }
        self.mysql_with(0, None, &["-N", "-B"], &self.setup_sql())?;
        for i in 1..self.nodes.len() {
            self.attach(i, 0)?;
        }
        for i in 1..self.nodes.len() {
            self.wait_replicating(i, REPLICATE_TIMEOUT)?;
        }
        let marker = format!("{}.ready", quote_ident(TESTBED_DB));
        self.mysql(
            0,
            &format!("INSERT INTO {marker} (id, at) VALUES (1, NOW(6));"),
        )?;
        for i in 1..self.nodes.len() {
            let what = format!("{} to have the primary's start-up row", self.nodes[i].name);
            let sql = format!("SELECT COUNT(*) FROM {marker} WHERE id = 1");
            self.poll_until(&what, REPLICATE_TIMEOUT, i, || {
                Ok(self.mysql(i, &sql).is_ok_and(|out| out == "1"))
            })?;
        }
        if self.opts.semi_sync {
            self.enable_semi_sync()?;
        }
        Ok(())
    }

    /// Turns the primary's semi-sync master side on (only now: with it on and no replica
    /// connected yet, each set-up commit would wait the whole timeout), restarts every
    /// replica's IO thread so it reconnects as a semi-sync client, and waits until the
    /// primary counts them all and a commit was acknowledged semi-synchronously.
    fn enable_semi_sync(&self) -> Result<(), TestbedError> {
        self.mysql(0, "SET GLOBAL rpl_semi_sync_master_enabled = ON")?;
        for i in 1..self.nodes.len() {
            self.mysql(i, "STOP SLAVE IO_THREAD; START SLAVE IO_THREAD")?;
        }
        self.wait_semi_sync(0, self.nodes.len() - 1, REPLICATE_TIMEOUT)?;
        let marker = format!("{}.ready", quote_ident(TESTBED_DB));
        let before = self.semi_sync_status(0)?;
        self.mysql(
            0,
            &format!("INSERT INTO {marker} (id, at) VALUES (2, NOW(6));"),
        )?;
        let after = self.semi_sync_status(0)?;
        let count = |m: &std::collections::HashMap<String, String>, k: &str| {
            m.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        };
        let key = "Rpl_semi_sync_master_yes_tx";
        if count(&after, key) <= count(&before, key) {
            return Err(TestbedError::State {
                node: self.nodes[0].name.clone(),
                what: format!("a commit was not acknowledged semi-synchronously: {after:?}"),
            });
        }
        Ok(())
    }

    /// Users, databases and the marker table; run on the primary before any replica
    /// attaches, so all of it replicates.
    fn setup_sql(&self) -> String {
        let o = &self.opts;
        let user = format!("{}@'%'", quote_literal(&o.user));
        let repl = format!("{}@'%'", quote_literal(MARIA_REPLICATION_USER));
        let admin = format!("{}@'%'", quote_literal(ADMIN_ROLE));
        format!(
            "CREATE DATABASE {db};\n\
             CREATE USER {user} IDENTIFIED BY {password};\n\
             GRANT ALL ON {db}.* TO {user};\n\
             GRANT SLAVE MONITOR, BINLOG MONITOR, PROCESS ON *.* TO {user};\n\
             CREATE USER {repl} IDENTIFIED BY {repl_password};\n\
             GRANT REPLICATION SLAVE, SLAVE MONITOR, BINLOG MONITOR ON *.* TO {repl};\n\
             CREATE USER {admin} IDENTIFIED BY {admin_password};\n\
             GRANT ALL PRIVILEGES ON *.* TO {admin} WITH GRANT OPTION;\n\
             CREATE DATABASE {testbed};\n\
             CREATE TABLE {testbed}.ready (id INT PRIMARY KEY, at DATETIME(6) NOT NULL);\n",
            db = quote_ident(&o.database),
            password = quote_literal(&o.password),
            repl_password = quote_literal(MARIA_REPLICATION_PASSWORD),
            admin_password = quote_literal(ADMIN_PASSWORD),
            testbed = quote_ident(TESTBED_DB),
        )
    }

    /// Picks a free port and starts a brand-new node, on another port if another process
    /// grabbed it first; then records the node.
    fn launch_new(&mut self, mut node: MariaNode, read_only: bool) -> Result<(), TestbedError> {
        let mut taken: HashSet<u16> = self.nodes.iter().map(|n| n.port).collect();
        let mut attempt = 0;
        let child = loop {
            attempt += 1;
            node.port = free_port(&taken)?;
            match launch(&node, read_only, self.opts.semi_sync, STEP_TIMEOUT) {
                Ok(child) => break child,
                Err(LaunchError::PortInUse(_)) if attempt < PORT_ATTEMPTS => {
                    taken.insert(node.port);
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.nodes.push(node);
        self.procs.push(Mutex::new(MariaProc {
            child: Some(child),
            status: Status::Running,
            read_only,
        }));
        Ok(())
    }
}

/// SWITCHYARD_MARIADB_INSTALL_DB wins, then `mariadb-install-db` on PATH.
fn install_db_bin() -> std::path::PathBuf {
    std::env::var_os("SWITCHYARD_MARIADB_INSTALL_DB")
        .map_or_else(|| "mariadb-install-db".into(), std::path::PathBuf::from)
}

/// Creates the node's directory and an empty data dir: system tables only, no test
/// database, no anonymous users, root@localhost by unix socket (and no password), and no
/// binary log yet, so every node starts with an empty GTID state.
fn install_db(node: &MariaNode) -> Result<(), TestbedError> {
    std::fs::create_dir(&node.dir)
        .map_err(|e| TestbedError::io(format!("create {}", node.dir.display()), e))?;
    std::fs::create_dir(&node.tmp_dir)
        .map_err(|e| TestbedError::io(format!("create {}", node.tmp_dir.display()), e))?;
    let mut cmd = Command::new(install_db_bin());
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", node.data_dir.display()))
        .arg(format!("--tmpdir={}", node.tmp_dir.display()))
        .args(["--skip-test-db", "--auth-root-authentication-method=socket"])
        .args(SPEED_ARGS)
        .current_dir(&node.dir);
    if as_root() {
        cmd.arg("--user=root");
    }
    run(
        &mut cmd,
        &format!("mariadb-install-db for {}", node.name),
        None,
        super::STEP_TIMEOUT,
    )?;
    Ok(())
}
