use bytes::{Bytes, BytesMut};

use super::*;
use crate::auth::{md5_verify, ScramServer, ScramVerifier};
use crate::frame::decode_frame;
use crate::frontend::{parse_sasl_initial, password_text};

fn body(msg: &Bytes) -> Bytes {
    let mut buf = BytesMut::from(&msg[..]);
    let f = decode_frame(&mut buf, 1 << 16)
        .expect("valid")
        .expect("complete");
    assert_eq!(f.tag, b'p');
    f.body()
}

fn sasl_offer() -> Authentication {
    Authentication::Sasl {
        mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()],
    }
}

/// Drives ClientAuth against our ScramServer the way a backend would.
fn scram_login(client_pw: &str, server_pw: &str) -> Result<(), AuthError> {
    let mut client = ClientAuth::new("app", Some(client_pw));
    let mut server = ScramServer::new(ScramVerifier::generate(server_pw));
    let initial = client.respond(&sasl_offer())?.expect("initial response");
    let initial = body(&initial);
    let initial = parse_sasl_initial(&initial).expect("valid");
    assert_eq!(initial.mechanism, "SCRAM-SHA-256");
    assert!(initial.data.starts_with(b"n,,"), "no channel binding");
    let first = server.client_first(initial.data)?;
    let response = client
        .respond(&Authentication::SaslContinue { data: first.into() })?
        .expect("client final");
    let fin = server.client_final(&body(&response))?;
    let after = client.respond(&Authentication::SaslFinal { data: fin.into() })?;
    assert_eq!(after, None);
    assert_eq!(client.respond(&Authentication::Ok)?, None);
    Ok(())
}

#[test]
fn scram_against_our_server() {
    scram_login("pw", "pw").expect("logs in");
    let r = scram_login("bad", "pw");
    assert!(matches!(r, Err(AuthError::InvalidPassword)), "{r:?}");
}

#[test]
fn trust_needs_nothing() {
    let mut c = ClientAuth::new("app", None);
    assert_eq!(c.respond(&Authentication::Ok).expect("ok"), None);
}

#[test]
fn cleartext_and_md5() {
    let mut c = ClientAuth::new("app", Some("pw"));
    let m = c
        .respond(&Authentication::CleartextPassword)
        .expect("ok")
        .expect("message");
    assert_eq!(password_text(&body(&m)), Ok(&b"pw"[..]));
    let salt = [5, 6, 7, 8];
    let m = c
        .respond(&Authentication::Md5Password { salt })
        .expect("ok")
        .expect("message");
    let b = body(&m);
    let response = password_text(&b).expect("valid");
    assert!(md5_verify("app", "pw", salt, response));
}

#[test]
fn missing_password() {
    for auth in [
        Authentication::CleartextPassword,
        Authentication::Md5Password { salt: [0; 4] },
        sasl_offer(),
    ] {
        let mut c = ClientAuth::new("app", None);
        assert!(matches!(c.respond(&auth), Err(AuthError::NoPassword)));
    }
}

#[test]
fn unsupported_methods_and_mechanisms() {
    let mut c = ClientAuth::new("app", Some("pw"));
    let r = c.respond(&Authentication::Unsupported(7));
    assert!(
        matches!(&r, Err(AuthError::Unsupported(m)) if m.contains("GSSAPI")),
        "{r:?}"
    );
    let mut c = ClientAuth::new("app", Some("pw"));
    let r = c.respond(&Authentication::Sasl {
        mechanisms: vec!["SCRAM-SHA-256-PLUS".into()],
    });
    assert!(matches!(r, Err(AuthError::Mechanism(_))), "{r:?}");
}

#[test]
fn server_must_prove_itself() {
    // AuthenticationOk without SASLFinal.
    let mut c = ClientAuth::new("app", Some("pw"));
    c.respond(&sasl_offer()).expect("initial");
    assert!(matches!(
        c.respond(&Authentication::Ok),
        Err(AuthError::ServerSignature)
    ));

    // A forged server signature.
    let mut c = ClientAuth::new("app", Some("pw"));
    let mut server = ScramServer::new(ScramVerifier::generate("pw"));
    let initial = body(&c.respond(&sasl_offer()).expect("ok").expect("msg"));
    let first = server
        .client_first(parse_sasl_initial(&initial).expect("valid").data)
        .expect("first");
    let response = c
        .respond(&Authentication::SaslContinue { data: first.into() })
        .expect("ok")
        .expect("msg");
    server.client_final(&body(&response)).expect("proof ok");
    let forged = format!("v={}", "A".repeat(44));
    let r = c.respond(&Authentication::SaslFinal {
        data: forged.into(),
    });
    assert!(matches!(r, Err(AuthError::ServerSignature)), "{r:?}");
    // After a failure nothing else is accepted.
    assert!(c.respond(&Authentication::Ok).is_err());
}

#[test]
fn out_of_sequence_sasl_messages() {
    let mut c = ClientAuth::new("app", Some("pw"));
    let r = c.respond(&Authentication::SaslContinue {
        data: Bytes::from_static(b"r=x,s=eA==,i=1"),
    });
    assert!(matches!(r, Err(AuthError::OutOfSequence(_))));
    let mut c = ClientAuth::new("app", Some("pw"));
    c.respond(&sasl_offer()).expect("initial");
    let r = c.respond(&Authentication::SaslFinal {
        data: Bytes::from_static(b"v=x"),
    });
    assert!(matches!(r, Err(AuthError::OutOfSequence(_))));
    let mut c = ClientAuth::new("app", Some("pw"));
    c.respond(&sasl_offer()).expect("initial");
    let r = c.respond(&Authentication::SaslContinue {
        data: Bytes::from_static(b"r=wrongnonce,s=eA==,i=1"),
    });
    assert!(matches!(r, Err(AuthError::Scram(_))), "{r:?}");
}

#[test]
fn debug_hides_password() {
    let c = ClientAuth::new("app", Some("topsecret"));
    assert!(!format!("{c:?}").contains("topsecret"));
}
