use super::*;

const NONCE: &[u8; 20] = b"abcdefghijklmnopqrst";

#[test]
fn nonce_is_printable_and_never_nul() {
    for _ in 0..100 {
        let n = generate_nonce();
        assert!(n.iter().all(|b| (0x21..=0x7E).contains(b)));
    }
    assert_ne!(generate_nonce(), generate_nonce());
}

#[test]
fn native_password_matches_the_formula() {
    let s = native_password_scramble(NONCE, b"secret");
    assert_eq!(s.len(), 20);
    assert!(verify_native_password(NONCE, b"secret", &s));
    assert!(!verify_native_password(NONCE, b"Secret", &s));
    assert!(!verify_native_password(
        b"abcdefghijklmnopqrsu",
        b"secret",
        &s
    ));
    assert!(!verify_native_password(NONCE, b"secret", &s[..19]));
    assert!(!verify_native_password(NONCE, b"secret", b""));
}

#[test]
fn empty_password_means_empty_response() {
    assert!(native_password_scramble(NONCE, b"").is_empty());
    assert!(verify_native_password(NONCE, b"", b""));
    assert!(!verify_native_password(NONCE, b"", &[0; 20]));
    assert!(caching_sha2_scramble(NONCE, b"").is_empty());
    assert!(verify_caching_sha2(NONCE, b"", b""));
}

#[test]
fn caching_sha2_round_trips() {
    let s = caching_sha2_scramble(NONCE, b"secret");
    assert_eq!(s.len(), 32);
    assert!(verify_caching_sha2(NONCE, b"secret", &s));
    assert!(!verify_caching_sha2(NONCE, b"secreT", &s));
    assert!(!verify_caching_sha2(
        NONCE,
        b"secret",
        &native_password_scramble(NONCE, b"secret")
    ));
}

/// Decodes a hex string written in a test.
fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn scrambles_match_independent_reference_values() {
    // Computed with Python's hashlib from the formulas in the MySQL documentation.
    assert_eq!(
        native_password_scramble(NONCE, b"secret"),
        hex("8817c50fa779daef010ee7577825b0847df9842e")
    );
    assert_eq!(
        caching_sha2_scramble(NONCE, b"secret"),
        hex("c76e2898612a4cf042c77fa8c4702c4c64c0c2c557c53c4d75595aaa6abae809")
    );
}
