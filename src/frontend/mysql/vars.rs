//! Session settings of a MySQL client (SET, SET NAMES, ...), replayed on each server
//! connection whose settings differ.

use std::hash::{Hash, Hasher};

/// The settings a client made, in order, with a signature to compare connections by.
#[derive(Debug, Default)]
pub(super) struct MyVars {
    sets: Vec<(String, String)>,
    /// Signature of `sets` (0: server defaults).
    pub sig: u64,
}

impl MyVars {
    /// Records `SET name ...` (the statement text replays it), replacing an earlier one.
    pub fn set(&mut self, name: &str, sql: &str) {
        match self.sets.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = sql.to_string(),
            None => self.sets.push((name.to_string(), sql.to_string())),
        }
        self.sig = if self.sets.is_empty() {
            0
        } else {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            self.sets.hash(&mut h);
            h.finish().max(1)
        };
    }

    /// Back to the server defaults (COM_RESET_CONNECTION).
    pub fn clear(&mut self) {
        self.sets.clear();
        self.sig = 0;
    }

    /// What a connection whose settings have signature `conn_sig` needs: whether to reset it
    /// first, and the statements to replay; None when it already matches.
    pub fn sync(&self, conn_sig: u64) -> Option<(bool, Vec<&str>)> {
        (conn_sig != self.sig).then(|| {
            (
                conn_sig != 0,
                self.sets.iter().map(|(_, s)| s.as_str()).collect(),
            )
        })
    }
}
