//! PostgreSQL's md5 password method.

use ::md5::{Digest, Md5};

use super::ct_eq;

#[cfg(test)]
mod tests;

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// The stored form PostgreSQL keeps in rolpassword: "md5" + hex(md5(password + user)).
pub fn md5_stored_hash(user: &str, password: &str) -> String {
    let mut h = Md5::new();
    h.update(password.as_bytes());
    h.update(user.as_bytes());
    format!("md5{}", hex(&h.finalize()))
}

fn salted_response(stored_hex: &[u8], salt: [u8; 4]) -> String {
    let mut h = Md5::new();
    h.update(stored_hex);
    h.update(salt);
    format!("md5{}", hex(&h.finalize()))
}

/// md5 password check: expects response == "md5" + hex(md5(hex(md5(password + user)) + salt));
/// constant-time compare.
pub fn md5_verify(user: &str, password: &str, salt: [u8; 4], response: &[u8]) -> bool {
    let stored = md5_stored_hash(user, password);
    md5_verify_stored(&stored, salt, response)
}

/// Like [`md5_verify`] but from the stored `md5<32 hex>` hash, so the proxy's user list
/// need not hold cleartext passwords. A malformed stored hash never verifies.
pub fn md5_verify_stored(stored: &str, salt: [u8; 4], response: &[u8]) -> bool {
    let Some(digest) = stored.strip_prefix("md5") else {
        return false;
    };
    if digest.len() != 32 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let expected = salted_response(digest.to_ascii_lowercase().as_bytes(), salt);
    ct_eq(expected.as_bytes(), response)
}
