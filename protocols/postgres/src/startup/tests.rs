use bytes::{BufMut, BytesMut};

use super::*;
use crate::build;

const MAX: usize = 10_000;

fn decode(bytes: &[u8]) -> Result<Option<StartupPacket>, ProtocolError> {
    decode_startup(&mut BytesMut::from(bytes), MAX)
}

fn packet(code: i32, body: &[u8]) -> Vec<u8> {
    let len = i32::try_from(body.len() + 8).expect("small");
    let mut v = len.to_be_bytes().to_vec();
    v.extend_from_slice(&code.to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn ssl_request() {
    let mut b = BytesMut::new();
    postgres_protocol::message::frontend::ssl_request(&mut b);
    assert_eq!(decode(&b), Ok(Some(StartupPacket::SslRequest)));
}

#[test]
fn gssenc_request() {
    let p = packet(GSSENC_REQUEST_CODE, b"");
    assert_eq!(decode(&p), Ok(Some(StartupPacket::GssEncRequest)));
}

#[test]
fn encryption_request_with_body_is_malformed() {
    let p = packet(SSL_REQUEST_CODE, b"x");
    assert!(matches!(decode(&p), Err(ProtocolError::Malformed { .. })));
}

#[test]
fn cancel_round_trip() {
    let p = build::cancel_request(42, -7);
    assert_eq!(p.len(), 16);
    assert_eq!(
        decode(&p),
        Ok(Some(StartupPacket::Cancel {
            pid: 42,
            secret: -7
        }))
    );
}

#[test]
fn cancel_with_wrong_length_is_malformed() {
    let p = packet(CANCEL_REQUEST_CODE, &[0; 4]);
    assert!(matches!(decode(&p), Err(ProtocolError::Malformed { .. })));
    let p = packet(CANCEL_REQUEST_CODE, &[0; 12]);
    assert!(matches!(decode(&p), Err(ProtocolError::Malformed { .. })));
}

#[test]
fn startup_round_trip_and_matches_postgres_protocol() {
    let params = [
        ("user", "alice"),
        ("database", "shop"),
        ("application_name", "ü"),
    ];
    let ours = build::startup_message(&params);
    let mut theirs = BytesMut::new();
    postgres_protocol::message::frontend::startup_message(params.iter().copied(), &mut theirs)
        .expect("encodes");
    assert_eq!(&ours[..], &theirs[..]);
    let p = decode(&ours).expect("valid").expect("complete");
    assert_eq!(
        p,
        StartupPacket::Startup {
            major: 3,
            minor: 0,
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    );
    assert_eq!(p.param("user"), Some("alice"));
    assert_eq!(p.param("nope"), None);
}

#[test]
fn startup_without_params_and_newer_minor() {
    let p = packet(PROTOCOL_3_0 + 2, b"\0");
    assert_eq!(
        decode(&p),
        Ok(Some(StartupPacket::Startup {
            major: 3,
            minor: 2,
            params: vec![]
        }))
    );
}

#[test]
fn last_duplicate_param_wins() {
    let p = packet(PROTOCOL_3_0, b"user\0a\0user\0b\0\0");
    let p = decode(&p).expect("valid").expect("complete");
    assert_eq!(p.param("user"), Some("b"));
}

#[test]
fn unsupported_versions() {
    assert_eq!(
        decode(&packet(2 << 16, b"\0")),
        Err(ProtocolError::UnsupportedVersion { major: 2, minor: 0 })
    );
    assert_eq!(
        decode(&packet((1234 << 16) | 1, b"")),
        Err(ProtocolError::UnsupportedVersion {
            major: 1234,
            minor: 1
        })
    );
}

#[test]
fn malformed_params() {
    for body in [
        &b""[..],            // no terminator at all
        b"user\0alice\0",    // pairs but no final NUL
        b"user\0alice",      // value not terminated
        b"user\0",           // name without value
        b"user\0alice\0\0x", // trailing bytes
        b"us\xffer\0a\0\0",  // invalid UTF-8
    ] {
        let p = packet(PROTOCOL_3_0, body);
        assert!(
            matches!(decode(&p), Err(ProtocolError::Malformed { .. })),
            "{body:?}"
        );
    }
}

#[test]
fn lengths_are_checked_before_waiting_for_the_body() {
    assert_eq!(decode(&[0, 0, 0, 7]), Err(ProtocolError::BadLength(7)));
    assert_eq!(
        decode(&[0xff, 0xff, 0xff, 0xf0]),
        Err(ProtocolError::BadLength(-16))
    );
    assert_eq!(
        decode(&[0, 1, 0, 0]),
        Err(ProtocolError::TooLarge {
            len: 65536,
            max: MAX
        })
    );
}

#[test]
fn partial_reads() {
    let whole = build::startup_message(&[("user", "bob")]);
    let mut buf = BytesMut::new();
    let mut got = None;
    for (i, byte) in whole.iter().enumerate() {
        buf.put_u8(*byte);
        got = decode_startup(&mut buf, MAX).expect("valid");
        if i + 1 < whole.len() {
            assert_eq!(got, None);
        }
    }
    assert!(got.is_some());
    assert!(buf.is_empty());
}

#[test]
fn leaves_following_bytes_in_the_buffer() {
    let mut buf = BytesMut::from(&build::cancel_request(1, 2)[..]);
    buf.extend_from_slice(b"Q");
    assert!(decode_startup(&mut buf, MAX).expect("valid").is_some());
    assert_eq!(&buf[..], b"Q");
}
