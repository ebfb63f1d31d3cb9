use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

use super::*;

fn exchange(verifier: ScramVerifier, password: &str, cb: ChannelBinding) -> Result<(), AuthError> {
    let mut client = ScramSha256::new(password.as_bytes(), cb);
    let mut server = ScramServer::new(verifier);
    let server_first = server.client_first(client.message())?;
    client
        .update(&server_first)
        .map_err(|e| AuthError::Scram(e.to_string()))?;
    let server_final = server.client_final(client.message())?;
    assert!(server.is_done());
    // The client only succeeds if our server signature verifies.
    client
        .finish(&server_final)
        .map_err(|_| AuthError::ServerSignature)
}

/// Runs the client up to its final message so tests can tamper with it.
fn client_final_for(server: &mut ScramServer, password: &str) -> String {
    let mut client = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
    let server_first = server.client_first(client.message()).expect("first");
    client.update(&server_first).expect("update");
    String::from_utf8(client.message().to_vec()).expect("utf8")
}

#[test]
fn right_password_succeeds_and_client_verifies_server() {
    let v = ScramVerifier::generate("s3cret");
    exchange(v, "s3cret", ChannelBinding::unsupported()).expect("authenticates");
}

#[test]
fn gs2_y_flag_is_accepted() {
    let v = ScramVerifier::generate("pw");
    exchange(v, "pw", ChannelBinding::unrequested()).expect("authenticates");
}

#[test]
fn wrong_password_is_rejected() {
    let v = ScramVerifier::generate("right");
    let r = exchange(v, "wrong", ChannelBinding::unsupported());
    assert!(matches!(r, Err(AuthError::InvalidPassword)), "{r:?}");
}

#[test]
fn mock_verifier_rejects_everything() {
    let r = exchange(ScramVerifier::mock(), "", ChannelBinding::unsupported());
    assert!(matches!(r, Err(AuthError::InvalidPassword)), "{r:?}");
}

#[test]
fn parses_postgres_protocol_verifier_and_authenticates() {
    let stored = postgres_protocol::password::scram_sha_256(b"hunter2");
    let v = ScramVerifier::parse(&stored).expect("parses");
    assert_eq!(v.iterations, 4096);
    assert_eq!(v.to_string(), stored, "Display writes the same form back");
    assert_eq!(
        ScramVerifier::from_password("hunter2", &v.salt, v.iterations),
        v,
        "our PBKDF2 matches postgres-protocol's"
    );
    exchange(v.clone(), "hunter2", ChannelBinding::unsupported()).expect("authenticates");
    let r = exchange(v, "hunter3", ChannelBinding::unsupported());
    assert!(matches!(r, Err(AuthError::InvalidPassword)));
}

#[test]
fn saslprep_matches_postgres_protocol() {
    // U+00AD (soft hyphen) is mapped to nothing by SASLprep.
    let stored = postgres_protocol::password::scram_sha_256("pa\u{ad}ss".as_bytes());
    let v = ScramVerifier::parse(&stored).expect("parses");
    assert_eq!(
        ScramVerifier::from_password("pass", &v.salt, v.iterations),
        v
    );
    exchange(v, "pass", ChannelBinding::unsupported()).expect("authenticates");
    // A prohibited character (U+0007) makes SASLprep fail: raw bytes are used on both sides.
    let stored = postgres_protocol::password::scram_sha_256("a\u{7}b".as_bytes());
    let v = ScramVerifier::parse(&stored).expect("parses");
    exchange(v, "a\u{7}b", ChannelBinding::unsupported()).expect("authenticates");
}

#[test]
fn verifier_parse_rejects_bad_forms() {
    let good = ScramVerifier::generate("x").to_string();
    assert!(ScramVerifier::parse(&good).is_ok());
    let key = STANDARD.encode([0u8; 32]);
    let short = STANDARD.encode([0u8; 31]);
    for bad in [
        String::new(),
        "md5abcdef".to_owned(),
        format!("SCRAM-SHA-256$4096:c2FsdA=={key}:{key}"),
        format!("SCRAM-SHA-256$4096c2FsdA==${key}:{key}"),
        format!("SCRAM-SHA-256$4096:c2FsdA==${key}{key}"),
        format!("SCRAM-SHA-256$0:c2FsdA==${key}:{key}"),
        format!("SCRAM-SHA-256$-1:c2FsdA==${key}:{key}"),
        format!("SCRAM-SHA-256$4096:$${key}:{key}"),
        format!("SCRAM-SHA-256$4096:!!!${key}:{key}"),
        format!("SCRAM-SHA-256$4096:c2FsdA==${short}:{key}"),
        format!("SCRAM-SHA-256$4096:c2FsdA==${key}:{short}"),
    ] {
        assert!(
            matches!(
                ScramVerifier::parse(&bad),
                Err(AuthError::InvalidVerifier(_))
            ),
            "{bad}"
        );
    }
}

type Expect = fn(&AuthError) -> bool;

#[test]
fn client_first_rejections() {
    let cases: [(&[u8], Expect); 8] = [
        (b"p=tls-server-end-point,,n=,r=abc", |e| {
            matches!(e, AuthError::ChannelBinding)
        }),
        (b"n,a=bob,n=,r=abc", |e| {
            matches!(e, AuthError::Malformed(_))
        }),
        (b"n,,m=ext,n=,r=abc", |e| {
            matches!(e, AuthError::Malformed(_))
        }),
        (b"n,,n=,x=abc", |e| matches!(e, AuthError::Malformed(_))),
        (b"n,,n=,r=", |e| matches!(e, AuthError::Malformed(_))),
        (b"x,,n=,r=abc", |e| matches!(e, AuthError::Malformed(_))),
        (b"n", |e| matches!(e, AuthError::Malformed(_))),
        (b"n,,n=,r=a\xff", |e| matches!(e, AuthError::Malformed(_))),
    ];
    for (msg, ok) in cases {
        let mut s = ScramServer::new(ScramVerifier::mock());
        let e = s.client_first(msg).expect_err("rejected");
        assert!(ok(&e), "{:?}: {e:?}", String::from_utf8_lossy(msg));
        assert!(s.is_done());
    }
}

#[test]
fn client_first_with_extensions_and_user_is_accepted() {
    let mut s = ScramServer::new(ScramVerifier::mock());
    let first = s.client_first(b"n,,n=alice,r=abc,x=ext").expect("accepted");
    let first = String::from_utf8(first).expect("utf8");
    assert!(first.starts_with("r=abc"), "{first}");
    assert!(first.ends_with(",i=4096"), "{first}");
}

#[test]
fn tampered_client_final_is_rejected() {
    let v = ScramVerifier::generate("pw");
    let tamper: [fn(&str) -> String; 6] = [
        |m| m.replacen("c=biws", "c=eSws", 1),
        |m| m.replacen(",r=", ",r=x", 1),
        |m| {
            m.rsplit_once(",p=")
                .map(|(a, _)| a.to_owned())
                .unwrap_or_default()
        },
        |m| format!("{m},x=1"),
        |m| format!("{}AAAA", m),
        |m| m.replacen("c=biws", "c=!!", 1),
    ];
    for t in tamper {
        let mut s = ScramServer::new(v.clone());
        let msg = t(&client_final_for(&mut s, "pw"));
        let r = s.client_final(msg.as_bytes());
        assert!(matches!(r, Err(AuthError::Malformed(_))), "{msg}: {r:?}");
    }
    // A well-formed but altered proof fails as a wrong password would.
    let mut s = ScramServer::new(v);
    let msg = client_final_for(&mut s, "pw");
    let (head, proof) = msg.rsplit_once(",p=").expect("proof");
    let mut raw = STANDARD.decode(proof).expect("b64");
    raw[0] ^= 1;
    let msg = format!("{head},p={}", STANDARD.encode(raw));
    assert!(matches!(
        s.client_final(msg.as_bytes()),
        Err(AuthError::InvalidPassword)
    ));
}

#[test]
fn out_of_sequence_messages() {
    let mut s = ScramServer::new(ScramVerifier::mock());
    assert!(matches!(
        s.client_final(b"c=biws,r=x,p=y"),
        Err(AuthError::OutOfSequence(_))
    ));
    let mut s = ScramServer::new(ScramVerifier::mock());
    s.client_first(b"n,,n=,r=abc").expect("first");
    assert!(matches!(
        s.client_first(b"n,,n=,r=abc"),
        Err(AuthError::OutOfSequence(_))
    ));
    // A failed exchange cannot be retried on the same state machine.
    assert!(s.client_final(b"c=biws,r=x,p=y").is_err());
}

#[test]
fn zero_iterations_are_raised_to_one() {
    let v = ScramVerifier::from_password("pw", b"salt", 0);
    assert_eq!(v.iterations, 1);
    assert_eq!(v, ScramVerifier::from_password("pw", b"salt", 1));
}
