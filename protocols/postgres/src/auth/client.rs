//! The proxy authenticating itself to a backend server during startup.

use std::fmt;

use bytes::Bytes;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

use super::scram_server::SCRAM_SHA_256;
use super::AuthError;
use crate::backend::Authentication;
use crate::build;

#[cfg(test)]
mod tests;

enum State {
    Idle,
    /// SASLInitialResponse sent; waiting for SASLContinue.
    ScramStarted(Box<ScramSha256>),
    /// SASLResponse sent; waiting for SASLFinal.
    ScramProved(Box<ScramSha256>),
    /// SASLFinal verified; only AuthenticationOk may follow.
    ScramVerified,
    Failed,
}

/// Client side: answers a server's Authentication requests during a backend connection's startup.
pub struct ClientAuth {
    user: String,
    password: Option<String>,
    state: State,
}

impl fmt::Debug for ClientAuth {
    /// Omits the password so connection state can be logged safely.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field("user", &self.user)
            .field("has_password", &self.password.is_some())
            .finish_non_exhaustive()
    }
}

fn method_name(code: i32) -> String {
    let name = match code {
        2 => "KerberosV5",
        6 => "SCMCredential",
        7 => "GSSAPI",
        8 => "GSSContinue",
        9 => "SSPI",
        _ => "unknown",
    };
    format!("{name} ({code})")
}

impl ClientAuth {
    /// Prepares to log in as `user`; `password` is None when the pool relies on trust/peer.
    pub fn new(user: &str, password: Option<&str>) -> Self {
        ClientAuth {
            user: user.to_owned(),
            password: password.map(str::to_owned),
            state: State::Idle,
        }
    }

    fn password(&self) -> Result<&str, AuthError> {
        self.password.as_deref().ok_or(AuthError::NoPassword)
    }

    /// Ok(Some(msg)) = a message to send to the server; Ok(None) = nothing to send
    /// (AuthenticationOk, or SaslFinal verified). Handles trust (Ok), cleartext, md5,
    /// SCRAM-SHA-256 (SASL, SASLContinue, SASLFinal with server signature check).
    /// SCRAM-SHA-256-PLUS is not offered (no TLS yet).
    pub fn respond(&mut self, auth: &Authentication) -> Result<Option<Bytes>, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let (next, out) = self.step(state, auth)?;
        self.state = next;
        Ok(out)
    }

    fn step(
        &self,
        state: State,
        auth: &Authentication,
    ) -> Result<(State, Option<Bytes>), AuthError> {
        match (state, auth) {
            // A server that started SCRAM must prove itself before AuthenticationOk, or it
            // could be an impostor that never knew the password.
            (State::ScramStarted(_) | State::ScramProved(_), Authentication::Ok) => {
                Err(AuthError::ServerSignature)
            }
            (State::Failed, _) => Err(AuthError::OutOfSequence("exchange already failed")),
            (_, Authentication::Ok) => Ok((State::Idle, None)),
            (State::Idle, Authentication::CleartextPassword) => {
                let msg = build::password_message(self.password()?.as_bytes());
                Ok((State::Idle, Some(msg)))
            }
            (State::Idle, Authentication::Md5Password { salt }) => {
                let hash = postgres_protocol::authentication::md5_hash(
                    self.user.as_bytes(),
                    self.password()?.as_bytes(),
                    *salt,
                );
                Ok((State::Idle, Some(build::password_message(hash.as_bytes()))))
            }
            (State::Idle, Authentication::Sasl { mechanisms }) => {
                if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                    return Err(AuthError::Mechanism(mechanisms.join(", ")));
                }
                // "n,,": the proxy cannot bind to a TLS channel, and saying so lets a server
                // that also offers -PLUS accept the plain mechanism without suspecting a downgrade.
                let scram =
                    ScramSha256::new(self.password()?.as_bytes(), ChannelBinding::unsupported());
                let msg = build::sasl_initial_response(SCRAM_SHA_256, scram.message());
                Ok((State::ScramStarted(Box::new(scram)), Some(msg)))
            }
            (State::ScramStarted(mut scram), Authentication::SaslContinue { data }) => {
                scram
                    .update(data)
                    .map_err(|e| AuthError::Scram(e.to_string()))?;
                let msg = build::sasl_response(scram.message());
                Ok((State::ScramProved(scram), Some(msg)))
            }
            (State::ScramProved(mut scram), Authentication::SaslFinal { data }) => {
                scram.finish(data).map_err(|_| AuthError::ServerSignature)?;
                Ok((State::ScramVerified, None))
            }
            (_, Authentication::Unsupported(code)) => {
                Err(AuthError::Unsupported(method_name(*code)))
            }
            (_, Authentication::SaslContinue { .. }) => Err(AuthError::OutOfSequence(
                "SASLContinue without a SASL exchange in progress",
            )),
            (_, Authentication::SaslFinal { .. }) => Err(AuthError::OutOfSequence(
                "SASLFinal before the client proof was sent",
            )),
            (_, _) => Err(AuthError::OutOfSequence(
                "new authentication request during a SASL exchange",
            )),
        }
    }
}
