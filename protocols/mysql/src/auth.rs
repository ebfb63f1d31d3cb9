//! The password auth plugins the proxy terminates: mysql_native_password and the fast path
//! of caching_sha2_password, on both the client and the server side.

use mysql_common::scramble::{scramble_native, scramble_sha256};
use rand::Rng;
use subtle::ConstantTimeEq;

#[cfg(test)]
mod tests;

/// Plugin name of the SHA-1 challenge-response scheme.
pub const MYSQL_NATIVE_PASSWORD: &str = "mysql_native_password";
/// Plugin name of MySQL 8's default SHA-256 scheme.
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";
/// Length of the nonce servers send in the greeting.
pub const NONCE_LEN: usize = 20;

/// A fresh nonce of printable, non-NUL ASCII: the greeting NUL-terminates it, and some
/// clients treat it as a C string.
pub fn generate_nonce() -> [u8; NONCE_LEN] {
    let mut rng = rand::thread_rng();
    let mut nonce = [0u8; NONCE_LEN];
    for b in &mut nonce {
        *b = rng.gen_range(0x21..=0x7E);
    }
    nonce
}

/// The client's mysql_native_password response; empty for an empty password, which the
/// protocol sends as a zero-length auth response.
pub fn native_password_scramble(nonce: &[u8], password: &[u8]) -> Vec<u8> {
    scramble_native(nonce, password)
        .map(|s| s.to_vec())
        .unwrap_or_default()
}

/// Server side of mysql_native_password given the stored plain-text password.
pub fn verify_native_password(nonce: &[u8], password: &[u8], response: &[u8]) -> bool {
    ct_eq(&native_password_scramble(nonce, password), response)
}

/// The client's caching_sha2_password fast-path response; empty for an empty password.
pub fn caching_sha2_scramble(nonce: &[u8], password: &[u8]) -> Vec<u8> {
    scramble_sha256(nonce, password)
        .map(|s| s.to_vec())
        .unwrap_or_default()
}

/// Server side of caching_sha2_password's fast path given the stored plain-text password.
pub fn verify_caching_sha2(nonce: &[u8], password: &[u8], response: &[u8]) -> bool {
    ct_eq(&caching_sha2_scramble(nonce, password), response)
}

/// Compares without an early exit so response timing does not leak matching prefixes;
/// the lengths are public (fixed by the plugin), so a length mismatch may return early.
fn ct_eq(expected: &[u8], got: &[u8]) -> bool {
    expected.len() == got.len() && bool::from(expected.ct_eq(got))
}
