//! Replication state and failover controls: GTID positions, promotion, re-pointing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{
    gtid_reached, parse_vertical, quote_literal, MariaCluster, MARIA_REPLICATION_PASSWORD,
    MARIA_REPLICATION_USER,
};
use crate::error::TestbedError;

impl MariaCluster {
    /// `@@global.read_only` of node `i`: true on a replica.
    pub fn is_read_only(&self, i: usize) -> Result<bool, TestbedError> {
        match self.mysql(i, "SELECT @@global.read_only")?.as_str() {
            "1" => Ok(true),
            "0" => Ok(false),
            out => Err(self.state(i, format!("@@read_only is {out:?}"))),
        }
    }

    /// The first running node with `read_only=0`: the primary, even after a promotion
    /// (with two primaries, the lower index wins).
    pub fn current_primary(&self) -> Result<usize, TestbedError> {
        self.roles()?.0.ok_or_else(no_primary)
    }

    /// The first running primary, if any, and the running read-only nodes (paused nodes
    /// skipped).
    fn roles(&self) -> Result<(Option<usize>, Vec<usize>), TestbedError> {
        let mut primary = None;
        let mut replicas = Vec::new();
        for i in 0..self.nodes.len() {
            if !self.is_running(i)? {
                continue;
            }
            if self.is_read_only(i)? {
                replicas.push(i);
            } else if primary.is_none() {
                primary = Some(i);
            }
        }
        Ok((primary, replicas))
    }

    /// `SHOW SLAVE STATUS` of node `i` as field -> value (Slave_IO_Running, Using_Gtid,
    /// Master_Port, Last_IO_Error, ...); empty when it is not a replica.
    pub fn slave_status(&self, i: usize) -> Result<HashMap<String, String>, TestbedError> {
        let out = self.mysql_with(i, None, &["-E"], "SHOW SLAVE STATUS")?;
        Ok(parse_vertical(&out))
    }

    /// `@@global.gtid_binlog_pos` of node `i` (what it has written to its binary log).
    pub fn gtid_binlog_pos(&self, i: usize) -> Result<String, TestbedError> {
        self.mysql(i, "SELECT @@global.gtid_binlog_pos")
    }

    /// `@@global.gtid_slave_pos` of node `i` (what it has applied as a replica).
    pub fn gtid_slave_pos(&self, i: usize) -> Result<String, TestbedError> {
        self.mysql(i, "SELECT @@global.gtid_slave_pos")
    }

    /// Waits until replica `i`'s IO and SQL threads both run (`Yes`), e.g. after a restart
    /// of it or of its primary, or after [`MariaCluster::repoint`]. The error carries the
    /// last `Last_IO_Error` / `Last_SQL_Error`.
    pub fn wait_replicating(&self, i: usize, timeout: Duration) -> Result<(), TestbedError> {
        let name = &self.node(i)?.name;
        let mut last = String::new();
        let result = self.poll_until(&format!("{name} to replicate"), timeout, i, || {
            let s = self.slave_status(i)?;
            let yes = |k: &str| s.get(k).is_some_and(|v| v == "Yes");
            last = format!(
                "IO {:?}, SQL {:?}, Last_IO_Error {:?}, Last_SQL_Error {:?}",
                s.get("Slave_IO_Running"),
                s.get("Slave_SQL_Running"),
                s.get("Last_IO_Error"),
                s.get("Last_SQL_Error"),
            );
            Ok(yes("Slave_IO_Running") && yes("Slave_SQL_Running"))
        });
        result.map_err(|e| match e {
            TestbedError::Timeout { what, secs, log } => TestbedError::Timeout {
                what: format!("{what}: {last}"),
                secs,
                log,
            },
            e => e,
        })
    }

    /// Waits until every running, unpaused read-only node has applied the primary's
    /// `@@gtid_binlog_pos` (compared per replication domain with its `@@gtid_slave_pos`).
    /// Roles are asked, not assumed, so this still works after a promotion.
    pub fn wait_replicas_caught_up(&self, timeout: Duration) -> Result<(), TestbedError> {
        let deadline = Instant::now() + timeout;
        let (primary, replicas) = self.roles()?;
        let primary = primary.ok_or_else(no_primary)?;
        let target = self.gtid_binlog_pos(primary)?;
        for i in replicas {
            let left = deadline.saturating_duration_since(Instant::now());
            let what = format!("{} to apply up to GTID {target}", self.nodes[i].name);
            self.poll_until(&what, left, i, || {
                Ok(gtid_reached(&self.gtid_slave_pos(i)?, &target))
            })?;
        }
        Ok(())
    }

    /// `SHOW STATUS LIKE 'Rpl_semi_sync_%'` of node `i` as name -> value
    /// (`Rpl_semi_sync_master_clients`, `..._status`, `..._yes_tx`, `..._no_tx`, ...).
    pub fn semi_sync_status(&self, i: usize) -> Result<HashMap<String, String>, TestbedError> {
        let out = self.mysql(i, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_%'")?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once('\t')?;
                Some((k.trim().to_owned(), v.trim().to_owned()))
            })
            .collect())
    }

    /// Waits until node `primary` runs semi-sync as a master (`Rpl_semi_sync_master_status`
    /// ON) with at least `clients` semi-sync replicas connected
    /// (`Rpl_semi_sync_master_clients`), e.g. after the replicas' IO threads restarted.
    pub fn wait_semi_sync(
        &self,
        primary: usize,
        clients: usize,
        timeout: Duration,
    ) -> Result<(), TestbedError> {
        let name = &self.node(primary)?.name;
        let what = format!("{name} to count {clients} semi-sync replica(s)");
        let mut last = HashMap::new();
        let result = self.poll_until(&what, timeout, primary, || {
            last = self.semi_sync_status(primary)?;
            let connected = last
                .get("Rpl_semi_sync_master_clients")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            let on = last
                .get("Rpl_semi_sync_master_status")
                .is_some_and(|v| v == "ON");
            Ok(on && connected >= clients)
        });
        result.map_err(|e| match e {
            TestbedError::Timeout { what, secs, log } => TestbedError::Timeout {
                what: format!("{what}: {last:?}"),
                secs,
                log,
            },
            e => e,
        })
    }

    /// Makes replica `i` a primary: `STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0`
    /// (and, with [`crate::MariaOptions::semi_sync`], the semi-sync master side on).
    /// A later [`MariaCluster::start_node`] of `i` keeps it writable.
    pub fn promote(&self, i: usize) -> Result<(), TestbedError> {
        let semi_sync = if self.opts.semi_sync {
            "SET GLOBAL rpl_semi_sync_master_enabled = ON; "
        } else {
            ""
        };
        self.mysql(
            i,
            &format!("STOP SLAVE; RESET SLAVE ALL; {semi_sync}SET GLOBAL read_only = 0; SELECT @@global.read_only"),
        )
        .and_then(|out| match out.as_str() {
            "0" => Ok(()),
            _ => Err(self.state(i, format!("read_only is {out:?} after promotion"))),
        })?;
        self.set_read_only_role(i, false)
    }

    /// Makes node `i` replicate from node `primary`: `SET GLOBAL read_only=1`, then
    /// `CHANGE MASTER TO ... MASTER_PORT=<primary's>, MASTER_USE_GTID=slave_pos` and
    /// `START SLAVE`. A node that is currently a primary (say the old one, restarted)
    /// first gets `SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos`, so it resumes after
    /// its own last transaction; with semi-sync its master side is switched off. Returns
    /// without waiting: see [`MariaCluster::wait_replicating`].
    pub fn repoint(&self, i: usize, primary: usize) -> Result<(), TestbedError> {
        if i == primary {
            return Err(self.state(i, "cannot replicate from itself".into()));
        }
        let was_primary = !self.procs[i]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .read_only;
        let mut sql = String::from("SET GLOBAL read_only = 1;\nSTOP SLAVE;\n");
        if was_primary {
            sql.push_str("SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos;\n");
        }
        if self.opts.semi_sync {
            // A replica's own commits must never wait for acknowledgements.
            sql.push_str("SET GLOBAL rpl_semi_sync_master_enabled = OFF;\n");
        }
        sql.push_str(&self.change_master_sql(primary)?);
        sql.push_str("START SLAVE;\n");
        self.mysql(i, &sql)?;
        self.set_read_only_role(i, true)
    }

    /// The first attach of a fresh replica (already started with `--read-only`).
    pub(super) fn attach(&self, i: usize, primary: usize) -> Result<(), TestbedError> {
        let sql = format!("{}START SLAVE;\n", self.change_master_sql(primary)?);
        self.mysql_with(i, None, &["-N", "-B"], &sql)?;
        Ok(())
    }

    /// `CHANGE MASTER TO` node `primary` over loopback, as the replication user, by GTID;
    /// a lost primary is retried every second (the default is 60 s).
    fn change_master_sql(&self, primary: usize) -> Result<String, TestbedError> {
        let port = self.node(primary)?.port;
        Ok(format!(
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {port}, \
             MASTER_USER = {user}, MASTER_PASSWORD = {password}, \
             MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1;\n",
            user = quote_literal(MARIA_REPLICATION_USER),
            password = quote_literal(MARIA_REPLICATION_PASSWORD),
        ))
    }

    fn set_read_only_role(&self, i: usize, read_only: bool) -> Result<(), TestbedError> {
        let (_, mut p) = self.proc(i)?;
        p.read_only = read_only;
        Ok(())
    }

    fn state(&self, i: usize, what: String) -> TestbedError {
        TestbedError::State {
            node: self
                .node(i)
                .map_or_else(|_| format!("node {i}"), |n| n.name.clone()),
            what,
        }
    }
}

/// The error when every running node is read-only.
fn no_primary() -> TestbedError {
    TestbedError::State {
        node: "cluster".into(),
        what: "no running node is writable (read_only=0)".into(),
    }
}
