use postgres_protocol::authentication::md5_hash;

use super::*;

#[test]
fn verifies_postgres_protocol_hash() {
    let salt = [0xde, 0xad, 0xbe, 0xef];
    let response = md5_hash(b"alice", b"pw", salt);
    assert!(md5_verify("alice", "pw", salt, response.as_bytes()));
    assert!(!md5_verify("alice", "pw2", salt, response.as_bytes()));
    assert!(!md5_verify("bob", "pw", salt, response.as_bytes()));
    assert!(!md5_verify("alice", "pw", [0; 4], response.as_bytes()));
    assert!(!md5_verify("alice", "pw", salt, b""));
}

#[test]
fn stored_hash_matches_postgres_protocol() {
    let stored = postgres_protocol::password::md5(b"pw", "alice");
    assert_eq!(md5_stored_hash("alice", "pw"), stored);
    let salt = [1, 2, 3, 4];
    let response = md5_hash(b"alice", b"pw", salt);
    assert!(md5_verify_stored(&stored, salt, response.as_bytes()));
    assert!(md5_verify_stored(
        &stored.to_uppercase().replacen("MD5", "md5", 1),
        salt,
        response.as_bytes()
    ));
    assert!(!md5_verify_stored("md5short", salt, response.as_bytes()));
    assert!(!md5_verify_stored(&stored[3..], salt, response.as_bytes()));
    assert!(!md5_verify_stored(
        &format!("md5{}", "z".repeat(32)),
        salt,
        response.as_bytes()
    ));
}
