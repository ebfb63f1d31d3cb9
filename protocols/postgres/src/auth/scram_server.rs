//! Server side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL speaks it.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{ct_eq, AuthError};

#[cfg(test)]
mod tests;

/// The SASL mechanism name this module implements.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// PostgreSQL's default iteration count for new verifiers.
pub const DEFAULT_ITERATIONS: u32 = 4096;
const SALT_LEN: usize = 16;
/// PostgreSQL uses 18 random bytes for its half of the nonce.
const SERVER_NONCE_LEN: usize = 18;

/// HMAC-SHA-256 keyed by a 32-byte key. HMAC zero-pads short keys to the block size
/// anyway, so padding here gives the same result through the infallible constructor.
fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as Mac>::new(&block.into());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SASLprep the password when it is valid UTF-8 and allowed by SASLprep, else use the raw
/// bytes: the same rule as PostgreSQL and postgres-protocol, so verifiers interoperate.
fn normalize(password: &str) -> Vec<u8> {
    match stringprep::saslprep(password) {
        Ok(p) => p.into_owned().into_bytes(),
        Err(_) => password.as_bytes().to_vec(),
    }
}

/// What the server stores for a SCRAM-SHA-256 user (PostgreSQL's rolpassword content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// Salt the password was hashed with.
    pub salt: Vec<u8>,
    /// SHA-256(ClientKey): checks the client's proof.
    pub stored_key: [u8; 32],
    /// HMAC(SaltedPassword, "Server Key"): signs the server-final-message.
    pub server_key: [u8; 32],
}

impl ScramVerifier {
    /// Derives a verifier with PBKDF2-HMAC-SHA-256 (an iteration count of 0 is raised to 1).
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> Self {
        let iterations = iterations.max(1);
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(&normalize(password), salt, iterations, &mut salted);
        let client_key = hmac_sha256(&salted, &[b"Client Key"]);
        ScramVerifier {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, &[b"Server Key"]),
        }
    }

    /// Random 16-byte salt, 4096 iterations (PostgreSQL's defaults).
    pub fn generate(password: &str) -> Self {
        let mut salt = [0u8; SALT_LEN];
        rand::thread_rng().fill_bytes(&mut salt);
        Self::from_password(password, &salt, DEFAULT_ITERATIONS)
    }

    /// A verifier no password matches, for unknown users: running the exchange against it
    /// looks the same to the client as a wrong password, so user names cannot be probed.
    pub fn mock() -> Self {
        let mut rng = rand::thread_rng();
        let mut v = ScramVerifier {
            iterations: DEFAULT_ITERATIONS,
            salt: vec![0u8; SALT_LEN],
            stored_key: [0u8; 32],
            server_key: [0u8; 32],
        };
        rng.fill_bytes(&mut v.salt);
        rng.fill_bytes(&mut v.stored_key);
        rng.fill_bytes(&mut v.server_key);
        v
    }

    /// Parses PostgreSQL's rolpassword form
    /// `SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>`.
    pub fn parse(s: &str) -> Result<Self, AuthError> {
        let bad = AuthError::InvalidVerifier;
        let rest = s
            .strip_prefix("SCRAM-SHA-256$")
            .ok_or(bad("missing SCRAM-SHA-256$ prefix"))?;
        let (iter_salt, keys) = rest.split_once('$').ok_or(bad("missing '$' before keys"))?;
        let (iter, salt) = iter_salt
            .split_once(':')
            .ok_or(bad("missing ':' after iterations"))?;
        let (stored, server) = keys
            .split_once(':')
            .ok_or(bad("missing ':' between keys"))?;
        let iterations: u32 = iter
            .parse()
            .map_err(|_| bad("iteration count is not a number"))?;
        if iterations == 0 {
            return Err(bad("iteration count is zero"));
        }
        let salt = STANDARD
            .decode(salt)
            .map_err(|_| bad("salt is not base64"))?;
        if salt.is_empty() {
            return Err(bad("salt is empty"));
        }
        let key = |k: &str, what| -> Result<[u8; 32], AuthError> {
            let v = STANDARD.decode(k).map_err(|_| bad(what))?;
            v.try_into().map_err(|_| bad(what))
        };
        Ok(ScramVerifier {
            iterations,
            salt,
            stored_key: key(stored, "StoredKey is not 32 bytes of base64")?,
            server_key: key(server, "ServerKey is not 32 bytes of base64")?,
        })
    }
}

impl fmt::Display for ScramVerifier {
    /// Writes the rolpassword form that [`ScramVerifier::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key)
        )
    }
}

enum State {
    AwaitingFirst,
    AwaitingFinal {
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

/// Server side of SCRAM-SHA-256 (RFC 5802/7677, no channel binding: gs2 header "n,," or
/// "y,," accepted, "p=" rejected).
pub struct ScramServer {
    verifier: ScramVerifier,
    state: State,
}

impl fmt::Debug for ScramServer {
    /// Omits the keys so logs never carry password-equivalent material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServer").finish_non_exhaustive()
    }
}

/// Splits "<k>=<value>" and checks the attribute name.
fn attr<'a>(part: Option<&'a str>, name: char, why: &'static str) -> Result<&'a str, AuthError> {
    let part = part.ok_or(AuthError::Malformed(why))?;
    let mut chars = part.chars();
    match (chars.next(), chars.next()) {
        (Some(n), Some('=')) if n == name => Ok(chars.as_str()),
        _ => Err(AuthError::Malformed(why)),
    }
}

fn valid_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

impl ScramServer {
    /// Starts an exchange for a user whose stored verifier is `verifier`.
    pub fn new(verifier: ScramVerifier) -> Self {
        ScramServer {
            verifier,
            state: State::AwaitingFirst,
        }
    }

    /// True once client_final has succeeded or failed; no further messages are accepted.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// takes the SASLInitialResponse data (client-first-message); returns server-first-message
    /// to send in AuthenticationSASLContinue
    pub fn client_first(&mut self, data: &[u8]) -> Result<Vec<u8>, AuthError> {
        if !matches!(self.state, State::AwaitingFirst) {
            self.state = State::Done;
            return Err(AuthError::OutOfSequence("second client-first-message"));
        }
        self.state = State::Done;
        let msg = std::str::from_utf8(data)
            .map_err(|_| AuthError::Malformed("client-first-message is not UTF-8"))?;
        let (gs2_header, bare) = split_gs2_header(msg)?;
        let mut parts = bare.split(',');
        let first = parts.next().unwrap_or_default();
        if first.starts_with("m=") {
            return Err(AuthError::Malformed(
                "mandatory extensions are not supported",
            ));
        }
        // The user name is ignored as in PostgreSQL: the startup packet's user is what counts.
        attr(Some(first), 'n', "client-first-message lacks n=")?;
        let client_nonce = attr(parts.next(), 'r', "client-first-message lacks r=")?;
        if !valid_nonce(client_nonce) {
            return Err(AuthError::Malformed("client nonce is not printable"));
        }
        let mut random = [0u8; SERVER_NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut random);
        let nonce = format!("{client_nonce}{}", STANDARD.encode(random));
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&self.verifier.salt),
            self.verifier.iterations
        );
        let out = server_first.clone().into_bytes();
        self.state = State::AwaitingFinal {
            gs2_header: gs2_header.to_owned(),
            client_first_bare: bare.to_owned(),
            server_first,
            nonce,
        };
        Ok(out)
    }

    /// takes the SASLResponse data (client-final-message); verifies proof in constant time;
    /// returns server-final-message ("v=...") for AuthenticationSASLFinal, or Err(InvalidPassword)
    pub fn client_final(&mut self, data: &[u8]) -> Result<Vec<u8>, AuthError> {
        let State::AwaitingFinal {
            gs2_header,
            client_first_bare,
            server_first,
            nonce,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(AuthError::OutOfSequence(
                "client-final-message before client-first",
            ));
        };
        let msg = std::str::from_utf8(data)
            .map_err(|_| AuthError::Malformed("client-final-message is not UTF-8"))?;
        let (without_proof, proof_b64) = msg
            .rsplit_once(",p=")
            .ok_or(AuthError::Malformed("client-final-message lacks p="))?;
        if proof_b64.contains(',') {
            return Err(AuthError::Malformed("proof is not the last attribute"));
        }
        let mut parts = without_proof.split(',');
        let cbind = attr(parts.next(), 'c', "client-final-message lacks c=")?;
        let cbind = STANDARD
            .decode(cbind)
            .map_err(|_| AuthError::Malformed("channel binding is not base64"))?;
        if cbind != gs2_header.as_bytes() {
            return Err(AuthError::Malformed(
                "channel binding does not match gs2 header",
            ));
        }
        let final_nonce = attr(parts.next(), 'r', "client-final-message lacks r=")?;
        if final_nonce != nonce {
            return Err(AuthError::Malformed("nonce does not match"));
        }
        let proof: [u8; 32] = STANDARD
            .decode(proof_b64)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(AuthError::Malformed("proof is not 32 bytes of base64"))?;
        let auth_message = [
            client_first_bare.as_bytes(),
            b",",
            server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let client_signature = hmac_sha256(&self.verifier.stored_key, &auth_message);
        let mut client_key = proof;
        for (k, s) in client_key.iter_mut().zip(client_signature) {
            *k ^= s;
        }
        if !ct_eq(&sha256(&client_key), &self.verifier.stored_key) {
            return Err(AuthError::InvalidPassword);
        }
        let server_signature = hmac_sha256(&self.verifier.server_key, &auth_message);
        Ok(format!("v={}", STANDARD.encode(server_signature)).into_bytes())
    }
}

/// Splits "<flag>,<authzid>," off the client-first-message.
fn split_gs2_header(msg: &str) -> Result<(&str, &str), AuthError> {
    match msg.as_bytes().first() {
        Some(b'n' | b'y') => {}
        Some(b'p') => return Err(AuthError::ChannelBinding),
        _ => return Err(AuthError::Malformed("invalid channel binding flag")),
    }
    if msg.as_bytes().get(1) != Some(&b',') {
        return Err(AuthError::Malformed("invalid channel binding flag"));
    }
    let after_flag = msg.get(2..).unwrap_or_default();
    let (authzid, bare) = after_flag
        .split_once(',')
        .ok_or(AuthError::Malformed("gs2 header is not terminated"))?;
    if !authzid.is_empty() {
        return Err(AuthError::Malformed(
            "authorization identity is not supported",
        ));
    }
    let header_len = 3 + authzid.len();
    let header = msg.get(..header_len).unwrap_or_default();
    Ok((header, bare))
}
