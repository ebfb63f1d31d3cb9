//! Session settings recorded from the client's SET statements and replayed on other servers.

/// A change to session state, applied once the statement that made it has succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `SET name ...`: replay `sql` verbatim.
    Set {
        /// Lowercased parameter name.
        name: String,
        /// The statement text.
        sql: String,
    },
    /// `RESET name`.
    Reset(String),
    /// `RESET ALL`: back to the startup parameters.
    ResetAll,
    /// `DISCARD ...`: like RESET ALL, and prepared statements are gone on that server.
    Discard,
    /// `UNLISTEN *`: the session no longer needs its connection for notifications.
    Unlisten,
}

/// The settings a client has made, as statements to replay in order.
#[derive(Debug, Default)]
pub struct SessionVars {
    /// (lowercased name, value, SET statement) from the startup packet.
    startup: Vec<(String, String, String)>,
    sets: Vec<(String, String)>,
    /// Digest of the settings, 0 when there are none: a server connection whose `state_sig`
    /// equals it needs no replay.
    pub sig: u64,
}

impl SessionVars {
    /// Settings from the startup packet; they are the session's defaults (what RESET restores).
    pub fn from_startup(params: &[(String, String)]) -> Self {
        let mut startup = Vec::new();
        for (k, v) in params {
            if k == "options" {
                for (name, value) in parse_options(v) {
                    push_startup(&mut startup, &name, &value);
                }
            } else if is_plain_name(k) {
                push_startup(&mut startup, k, v);
            }
        }
        let mut v = SessionVars {
            sig: 0,
            startup,
            sets: Vec::new(),
        };
        v.sig = v.signature();
        v
    }

    /// True when nothing needs replaying on a fresh server connection.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.startup.is_empty() && self.sets.is_empty()
    }

    /// Applies one successful change.
    pub fn apply(&mut self, action: &Action) {
        match action {
            Action::Set { name, sql } => {
                self.sets.retain(|(n, _)| n != name);
                self.sets.push((name.clone(), sql.clone()));
            }
            Action::Reset(name) => {
                self.sets.retain(|(n, _)| n != name);
                // A startup value is the default RESET returns to: keep replaying it.
            }
            Action::ResetAll | Action::Discard => self.sets.clear(),
            Action::Unlisten => return,
        }
        self.sig = self.signature();
    }

    fn signature(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        if self.startup.is_empty() && self.sets.is_empty() {
            return 0;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for (_, _, stmt) in &self.startup {
            stmt.hash(&mut h);
        }
        for (_, stmt) in &self.sets {
            stmt.hash(&mut h);
        }
        h.finish().max(1)
    }

    /// Brings `conn`'s recorded state to this one: the SQL to run on it (None when nothing
    /// needs sending), with `conn.state_sig` updated as if it had run.
    pub fn sync_server(&self, conn: &mut crate::backend::ServerConn) -> Option<String> {
        if conn.state_sig == self.sig {
            return None;
        }
        let sql = self.replay_sql(conn.state_sig == 0, &conn.params);
        conn.state_sig = self.sig;
        sql
    }

    /// SQL that brings a server connection to this state, or None when it is already there.
    /// A `fresh` connection (no session state yet) skips RESET ALL and the startup settings
    /// whose value the server already reported in `server` (its ParameterStatus values).
    pub fn replay_sql(&self, fresh: bool, server: &[(String, String)]) -> Option<String> {
        let mut sql = String::new();
        if !fresh {
            sql.push_str("RESET ALL;");
        }
        for (name, value, stmt) in &self.startup {
            let same = fresh
                && server
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case(name) && v.eq_ignore_ascii_case(value));
            if !same {
                sql.push_str(stmt);
                sql.push(';');
            }
        }
        for (_, stmt) in &self.sets {
            sql.push_str(stmt);
            sql.push(';');
        }
        (!sql.is_empty()).then_some(sql)
    }
}

fn push_startup(list: &mut Vec<(String, String, String)>, name: &str, value: &str) {
    let lname = name.to_ascii_lowercase();
    list.retain(|(n, _, _)| *n != lname);
    let stmt = format!("SET {name} TO '{}'", value.replace('\'', "''"));
    list.push((lname, value.to_string(), stmt));
}

/// Parameter names we are willing to put unquoted into a SET statement.
fn is_plain_name(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 63
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !k.starts_with(|c: char| c.is_ascii_digit())
}

/// Parses libpq's `options` startup value: `-c name=value` and `--name=value`, with `\ ` escapes.
fn parse_options(options: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next()
        } else if let Some(rest) = w.strip_prefix("--") {
            Some(rest.to_string())
        } else {
            w.strip_prefix("-c").map(str::to_string)
        };
        if let Some((k, v)) = setting.as_deref().and_then(|s| s.split_once('=')) {
            let k = k.replace('-', "_");
            if is_plain_name(&k) {
                out.push((k, v.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_params_and_options_become_sets() {
        let v = SessionVars::from_startup(&[
            ("application_name".into(), "it's".into()),
            (
                "options".into(),
                "-c search_path=a,b --statement-timeout=5s".into(),
            ),
        ]);
        assert_eq!(
            v.replay_sql(true, &[]).as_deref(),
            Some("SET application_name TO 'it''s';SET search_path TO 'a,b';SET statement_timeout TO '5s';")
        );
        assert_ne!(v.sig, 0);
        // Values the server already has are not sent to a fresh connection.
        let server = [("Application_Name".to_string(), "it's".to_string())];
        assert_eq!(
            v.replay_sql(true, &server).as_deref(),
            Some("SET search_path TO 'a,b';SET statement_timeout TO '5s';")
        );
    }

    #[test]
    fn set_reset_and_reset_all() {
        let mut v = SessionVars::default();
        assert!(v.is_empty());
        v.apply(&Action::Set {
            name: "search_path".into(),
            sql: "SET search_path TO x".into(),
        });
        v.apply(&Action::Set {
            name: "search_path".into(),
            sql: "SET search_path TO y".into(),
        });
        assert_eq!(
            v.replay_sql(false, &[]).as_deref(),
            Some("RESET ALL;SET search_path TO y;")
        );
        assert_eq!(SessionVars::default().replay_sql(true, &[]), None);
        v.apply(&Action::Reset("search_path".into()));
        assert!(v.is_empty());
        v.apply(&Action::Set {
            name: "a".into(),
            sql: "SET a=1".into(),
        });
        v.apply(&Action::ResetAll);
        assert!(v.is_empty());
        assert_eq!(v.sig, 0);
    }
}
