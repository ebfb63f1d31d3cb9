//! COM_RESET_CONNECTION and COM_CHANGE_USER: the session back to the state of a fresh login
//! (as the user it names, for a change of user), without closing the client's connection.

use super::handshake::{check_proof, Proof};
use super::session::Session;
use super::{err_payload, ok_payload};
use switchyard_mysql as my;
use tokio::io::AsyncReadExt;

impl Session {
    /// What a server does on COM_RESET_CONNECTION: an open transaction is rolled back (its
    /// connection is closed), settings, user variables, temporary tables, locks, prepared
    /// statements and cursors are gone (held connections are reset before anyone else gets
    /// them), autocommit is on again.
    pub(super) fn reset_session(&mut self) {
        for l in self.links.iter_mut().flatten() {
            if self.pinned.is_some() || l.conn.state_sig != 0 {
                l.dirty = true;
            }
        }
        self.close_cursors();
        self.release_all();
        self.vars.clear();
        self.prepared.clear();
        self.autocommit = true;
        self.ryw_gtid = None;
        self.ryw_confirmed.iter_mut().for_each(|c| *c = None);
        self.ryw_until = None;
    }

    /// COM_CHANGE_USER: the password proof is checked against the greeting's nonce (after an
    /// auth switch to mysql_native_password for other plugins), the new user and database are
    /// checked on a server, then the session is reset and continues as that user. A wrong
    /// password keeps the old identity and answers 1045. Ok(false) when the exchange was
    /// malformed and the client is to be dropped.
    pub(super) async fn change_user(&mut self, p: my::Packet) -> std::io::Result<bool> {
        let seq = p.next_seq();
        let cu = match my::ChangeUser::parse(&p.payload) {
            Ok(cu) => cu,
            Err(e) => {
                tracing::warn!(session = self.id, "bad COM_CHANGE_USER: {e}");
                let err = err_payload(1047, "08S01", &format!("bad packet: {e}"));
                self.reply(seq, &err).await?;
                return Ok(false);
            }
        };
        let user = String::from_utf8_lossy(&cu.username).into_owned();
        let password = self.ctx.users.get(&user).map(|p| p.as_bytes().to_vec());
        let plugin = cu
            .auth_plugin_name
            .as_deref()
            .unwrap_or(my::MYSQL_NATIVE_PASSWORD.as_bytes());
        // The answer in the command is made with the greeting's nonce, as servers expect.
        let nonce = self.nonce.clone();
        let mut seq = seq;
        let mut response = cu.auth_response.clone();
        let accepted = match password.as_deref() {
            // Unknown users are refused at once (the session keeps its identity).
            None => false,
            Some(pw) => match check_proof(plugin, &nonce, Some(pw), &response) {
                Proof::Accepted { fast_auth } => {
                    if fast_auth {
                        let more = my::AuthMoreData::fast_auth_success().encode();
                        self.reply(seq, &more).await?;
                        seq = seq.wrapping_add(1);
                    }
                    true
                }
                Proof::Refused => false,
                Proof::Switch => {
                    // Switched to mysql_native_password with the same nonce (MariaDB
                    // Connector/C answers a switch during a change of user with it).
                    let switch = my::AuthSwitchRequest::with_nonce(
                        my::MYSQL_NATIVE_PASSWORD.as_bytes(),
                        &nonce,
                    );
                    self.reply(seq, &switch.encode()).await?;
                    let Some(answer) = self.read_auth_answer().await? else {
                        return Ok(false);
                    };
                    seq = answer.next_seq();
                    response = answer.payload.to_vec();
                    my::verify_native_password(&nonce, pw, &response)
                }
            },
        };
        if !accepted {
            let using = if response.is_empty() { "NO" } else { "YES" };
            let msg = format!("Access denied for user '{user}' (using password: {using})");
            tracing::info!(session = self.id, "change of user refused: {msg}");
            self.reply(seq, &err_payload(1045, "28000", &msg)).await?;
            return Ok(true);
        }
        let database = String::from_utf8_lossy(&cu.database).into_owned();
        let pools = self.ctx.session_pools(&user, &database);
        if let Err((code, state, msg)) = self.ctx.check_login(&pools).await {
            self.reply(seq, &err_payload(code, &state, &msg)).await?;
            return Ok(true);
        }
        self.reset_session();
        tracing::info!(session = self.id, from = %self.user, to = %user, "changed user");
        self.transaction_pooling = self.ctx.transaction_pooling(&user);
        self.pools = pools;
        self.user = user;
        self.database = database;
        self.reply(seq, &ok_payload(self.status())).await?;
        Ok(true)
    }

    /// The client's answer to an auth switch, within the startup timeout; None when it
    /// closed, timed out or sent a malformed packet (logged).
    async fn read_auth_answer(&mut self) -> std::io::Result<Option<my::Packet>> {
        let deadline = tokio::time::Instant::now() + self.ctx.general.startup_timeout;
        loop {
            match my::decode_packet(&mut self.cin, 64 * 1024) {
                Ok(Some(p)) => return Ok(Some(p)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(session = self.id, "bad auth answer: {e}");
                    return Ok(None);
                }
            }
            match tokio::time::timeout_at(deadline, self.client_r.read_buf(&mut self.cin)).await {
                Ok(Ok(0)) => return Ok(None),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    tracing::info!(session = self.id, "change of user timed out");
                    return Ok(None);
                }
            }
        }
    }
}
