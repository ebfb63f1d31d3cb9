use bytes::{Bytes, BytesMut};
use postgres_protocol::message::backend::Message;

use super::*;
use crate::build;
use crate::frame::{decode_frame, Frame};

fn frame(msg: &[u8]) -> Frame {
    let mut buf = BytesMut::from(msg);
    let f = decode_frame(&mut buf, 1 << 20)
        .expect("valid")
        .expect("complete");
    assert!(buf.is_empty());
    f
}

/// Cross-checks our encoders with postgres-protocol's backend parser.
fn pp_parse(msg: &Bytes) -> Message {
    let mut buf = BytesMut::from(&msg[..]);
    let m = Message::parse(&mut buf).expect("valid").expect("complete");
    assert!(buf.is_empty());
    m
}

fn is_malformed<T: std::fmt::Debug>(r: Result<T, ProtocolError>) -> bool {
    matches!(r, Err(ProtocolError::Malformed { .. }))
}

#[test]
fn ready_for_query_round_trip() {
    for status in [b'I', b'T', b'E'] {
        let m = build::ready_for_query(status);
        let Message::ReadyForQuery(body) = pp_parse(&m) else {
            panic!("not ReadyForQuery");
        };
        assert_eq!(body.status(), status);
        let f = frame(&m);
        assert_eq!(f.tag, b'Z');
        assert_eq!(ready_status(f.body_slice()), Ok(status));
    }
    assert!(is_malformed(ready_status(b"X")));
    assert!(is_malformed(ready_status(b"")));
    assert!(is_malformed(ready_status(b"II")));
}

#[test]
fn parameter_status_round_trip() {
    let m = build::parameter_status("TimeZone", "UTC");
    let Message::ParameterStatus(body) = pp_parse(&m) else {
        panic!("not ParameterStatus");
    };
    assert_eq!(body.name().expect("name"), "TimeZone");
    assert_eq!(body.value().expect("value"), "UTC");
    let f = frame(&m);
    assert_eq!(
        parse_parameter_status(f.body_slice()),
        Ok(ParameterStatus {
            name: "TimeZone",
            value: "UTC"
        })
    );
    assert!(is_malformed(parse_parameter_status(b"a\0b")));
    assert!(is_malformed(parse_parameter_status(b"a\0b\0c")));
}

#[test]
fn backend_key_round_trip() {
    let m = build::backend_key_data(1234, -99);
    let Message::BackendKeyData(body) = pp_parse(&m) else {
        panic!("not BackendKeyData");
    };
    assert_eq!((body.process_id(), body.secret_key()), (1234, -99));
    assert_eq!(parse_backend_key(frame(&m).body_slice()), Ok((1234, -99)));
    assert!(is_malformed(parse_backend_key(&[0; 7])));
    assert!(is_malformed(parse_backend_key(&[0; 12])));
}

#[test]
fn command_tag_view() {
    assert_eq!(command_tag(b"INSERT 0 1\0"), Ok("INSERT 0 1"));
    assert!(is_malformed(command_tag(b"INSERT 0 1")));
    assert!(is_malformed(command_tag(b"A\0B\0")));
}

#[test]
fn error_response_round_trip() {
    let m = build::error_response("FATAL", "28P01", "password authentication failed");
    assert!(matches!(pp_parse(&m), Message::ErrorResponse(_)));
    let f = frame(&m);
    assert_eq!(f.tag, b'E');
    let e = parse_error_fields(f.body_slice()).expect("valid");
    assert_eq!(e.severity, "FATAL");
    assert_eq!(e.code, "28P01");
    assert_eq!(e.message, "password authentication failed");
    assert_eq!((e.detail, e.hint), (None, None));
    assert_eq!(
        &f.body_slice()[..16],
        b"SFATAL\0VFATAL\0C2",
        "S then V then C"
    );
}

#[test]
fn error_response_fields_round_trip() {
    let fields = ErrorFields {
        severity: "ERROR".into(),
        code: "57P01".into(),
        message: "terminating".into(),
        detail: Some("node went away".into()),
        hint: Some("retry".into()),
    };
    let f = frame(&build::error_response_fields(&fields));
    assert_eq!(parse_error_fields(f.body_slice()), Ok(fields));
}

#[test]
fn notice_round_trip() {
    let m = build::notice_response("WARNING", "01000", "careful");
    assert!(matches!(pp_parse(&m), Message::NoticeResponse(_)));
    let f = frame(&m);
    assert_eq!(f.tag, b'N');
    let e = parse_error_fields(f.body_slice()).expect("valid");
    assert_eq!(
        (e.severity.as_str(), e.message.as_str()),
        ("WARNING", "careful")
    );
}

#[test]
fn error_fields_prefer_nonlocalized_severity_and_skip_unknown() {
    let e = parse_error_fields(b"VERROR\0SFEHLER\0Xwhatever\0M\xffmsg\0\0").expect("valid");
    assert_eq!(e.severity, "ERROR");
    assert_eq!(e.message, "\u{fffd}msg");
    let e = parse_error_fields(b"SFEHLER\0\0").expect("valid");
    assert_eq!(e.severity, "FEHLER");
    assert!(is_malformed(parse_error_fields(b"SERROR\0")));
    assert!(is_malformed(parse_error_fields(b"SERROR")));
    assert!(is_malformed(parse_error_fields(b"\0\0")));
}

fn auth_of(m: &Bytes) -> Authentication {
    let f = frame(m);
    assert_eq!(f.tag, b'R');
    parse_authentication(f.body_slice()).expect("valid")
}

#[test]
fn authentication_round_trips() {
    assert!(matches!(
        pp_parse(&build::auth_ok()),
        Message::AuthenticationOk
    ));
    assert_eq!(auth_of(&build::auth_ok()), Authentication::Ok);
    assert!(matches!(
        pp_parse(&build::auth_cleartext()),
        Message::AuthenticationCleartextPassword
    ));
    assert_eq!(
        auth_of(&build::auth_cleartext()),
        Authentication::CleartextPassword
    );
    let Message::AuthenticationMd5Password(body) = pp_parse(&build::auth_md5([1, 2, 3, 4])) else {
        panic!("not md5");
    };
    assert_eq!(body.salt(), [1, 2, 3, 4]);
    assert_eq!(
        auth_of(&build::auth_md5([1, 2, 3, 4])),
        Authentication::Md5Password { salt: [1, 2, 3, 4] }
    );
    let sasl = build::auth_sasl(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
    assert!(matches!(pp_parse(&sasl), Message::AuthenticationSasl(_)));
    assert_eq!(
        auth_of(&sasl),
        Authentication::Sasl {
            mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]
        }
    );
    let cont = build::auth_sasl_continue(b"r=abc,s=c2FsdA==,i=4096");
    let Message::AuthenticationSaslContinue(body) = pp_parse(&cont) else {
        panic!("not SASLContinue");
    };
    assert_eq!(body.data(), b"r=abc,s=c2FsdA==,i=4096");
    assert_eq!(
        auth_of(&cont),
        Authentication::SaslContinue {
            data: Bytes::from_static(b"r=abc,s=c2FsdA==,i=4096")
        }
    );
    let fin = build::auth_sasl_final(b"v=xyz");
    assert!(matches!(
        pp_parse(&fin),
        Message::AuthenticationSaslFinal(_)
    ));
    assert_eq!(
        auth_of(&fin),
        Authentication::SaslFinal {
            data: Bytes::from_static(b"v=xyz")
        }
    );
}

#[test]
fn authentication_unsupported_and_malformed() {
    assert_eq!(
        parse_authentication(&7i32.to_be_bytes()),
        Ok(Authentication::Unsupported(7))
    );
    assert_eq!(
        parse_authentication(b"\0\0\0\x08gss-data"),
        Ok(Authentication::Unsupported(8))
    );
    assert!(is_malformed(parse_authentication(b"\0\0\0")));
    assert!(is_malformed(parse_authentication(b"\0\0\0\0extra")));
    assert!(is_malformed(parse_authentication(b"\0\0\0\x05\x01\x02")));
    assert!(is_malformed(parse_authentication(
        b"\0\0\0\x0aSCRAM-SHA-256\0"
    )));
    assert!(is_malformed(parse_authentication(b"\0\0\0\x0aSCRAM")));
}

#[test]
fn data_row_first_column() {
    let mut body = vec![0, 2, 0, 0, 0, 3];
    body.extend_from_slice(b"0/1");
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    assert_eq!(data_row_first(&body).expect("row"), Some(&b"0/1"[..]));
    assert_eq!(
        data_row_first(&[0, 1, 0xff, 0xff, 0xff, 0xff]).expect("null"),
        None
    );
    assert_eq!(data_row_first(&[0, 0]).expect("empty"), None);
    assert!(data_row_first(&[0, 1, 0, 0, 0, 9, b'x']).is_err());
    assert!(data_row_first(&[0]).is_err());
}
