use bytes::{Bytes, BytesMut};
use postgres_protocol::message::frontend as pp;

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

fn pp_bytes(write: impl FnOnce(&mut BytesMut) -> std::io::Result<()>) -> Bytes {
    let mut b = BytesMut::new();
    write(&mut b).expect("postgres-protocol encodes");
    b.freeze()
}

fn is_malformed<T: std::fmt::Debug>(r: Result<T, ProtocolError>) -> bool {
    matches!(r, Err(ProtocolError::Malformed { .. }))
}

#[test]
fn query_round_trip() {
    let msg = build::query("select 'ü'");
    assert_eq!(msg, pp_bytes(|b| pp::query("select 'ü'", b)));
    let f = frame(&msg);
    assert_eq!(f.tag, b'Q');
    assert_eq!(query_text(f.body_slice()), Ok("select 'ü'"));
}

#[test]
fn query_malformed() {
    assert!(is_malformed(query_text(b"select 1")));
    assert!(is_malformed(query_text(b"select 1\0x")));
    assert!(is_malformed(query_text(b"\xff\0")));
    assert!(is_malformed(query_text(b"")));
}

#[test]
fn parse_round_trip() {
    let msg = build::parse("s1", "select $1, $2", &[23, 0]);
    assert_eq!(
        msg,
        pp_bytes(|b| pp::parse("s1", "select $1, $2", [23, 0], b))
    );
    let f = frame(&msg);
    assert_eq!(f.tag, b'P');
    let p = parse_parse(f.body_slice()).expect("valid");
    assert_eq!(
        p,
        Parse {
            name: "s1",
            query: "select $1, $2",
            param_types: vec![23, 0]
        }
    );
}

#[test]
fn parse_malformed() {
    assert!(is_malformed(parse_parse(b"s\0q\0\xff\xff")));
    assert!(is_malformed(parse_parse(b"s\0q\0\x7f\xff\0\0\0\x17")));
    assert!(is_malformed(parse_parse(b"s\0q\0\0\0extra")));
    assert!(is_malformed(parse_parse(b"s\0q\0\0")));
    assert!(is_malformed(parse_parse(b"s\0q")));
}

#[test]
fn bind_names() {
    let msg = pp_bytes(|b| {
        pp::bind(
            "portal",
            "stmt",
            [0i16],
            [1i32],
            |v: i32, buf: &mut BytesMut| {
                buf.extend_from_slice(&v.to_be_bytes());
                Ok(postgres_protocol::IsNull::No)
            },
            [1i16],
            b,
        )
        .map_err(|_| std::io::Error::other("bind"))
    });
    let f = frame(&msg);
    assert_eq!(f.tag, b'B');
    assert_eq!(
        parse_bind(f.body_slice()),
        Ok(Bind {
            portal: "portal",
            statement: "stmt"
        })
    );
    assert!(is_malformed(parse_bind(b"portal\0stmt")));
}

#[test]
fn describe_and_close_round_trip() {
    let d = build::describe(b'S', "s1");
    assert_eq!(d, pp_bytes(|b| pp::describe(b'S', "s1", b)));
    let f = frame(&d);
    assert_eq!(f.tag, b'D');
    assert_eq!(
        parse_describe(f.body_slice()),
        Ok(Target {
            kind: b'S',
            name: "s1"
        })
    );
    let c = build::close(b'P', "");
    assert_eq!(c, pp_bytes(|b| pp::close(b'P', "", b)));
    let f = frame(&c);
    assert_eq!(f.tag, b'C');
    assert_eq!(
        parse_close(f.body_slice()),
        Ok(Target {
            kind: b'P',
            name: ""
        })
    );
}

#[test]
fn target_malformed() {
    assert!(is_malformed(parse_describe(b"Xname\0")));
    assert!(is_malformed(parse_close(b"")));
    assert!(is_malformed(parse_close(b"Sname")));
    assert!(is_malformed(parse_close(b"Sname\0\0")));
}

#[test]
fn execute_round_trip() {
    let e = build::execute("p", 100);
    assert_eq!(e, pp_bytes(|b| pp::execute("p", 100, b)));
    let f = frame(&e);
    assert_eq!(
        parse_execute(f.body_slice()),
        Ok(Execute {
            portal: "p",
            max_rows: 100
        })
    );
    assert!(is_malformed(parse_execute(b"p\0\0\0")));
    assert!(is_malformed(parse_execute(b"p\0\0\0\0\0\0")));
}

#[test]
fn password_round_trip() {
    let m = build::password_message(b"md5abc");
    assert_eq!(m, pp_bytes(|b| pp::password_message(b"md5abc", b)));
    let f = frame(&m);
    assert_eq!(f.tag, b'p');
    assert_eq!(password_text(f.body_slice()), Ok(&b"md5abc"[..]));
    assert!(is_malformed(password_text(b"secret")));
    assert!(is_malformed(password_text(b"secret\0\0")));
}

#[test]
fn sasl_initial_round_trip() {
    let m = build::sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc");
    assert_eq!(
        m,
        pp_bytes(|b| pp::sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc", b))
    );
    let f = frame(&m);
    assert_eq!(
        parse_sasl_initial(f.body_slice()),
        Ok(SaslInitial {
            mechanism: "SCRAM-SHA-256",
            data: b"n,,n=,r=abc"
        })
    );
}

#[test]
fn sasl_initial_without_data() {
    let body = b"SCRAM-SHA-256\0\xff\xff\xff\xff";
    assert_eq!(
        parse_sasl_initial(body),
        Ok(SaslInitial {
            mechanism: "SCRAM-SHA-256",
            data: b""
        })
    );
}

#[test]
fn sasl_initial_malformed() {
    assert!(is_malformed(parse_sasl_initial(b"M\0\xff\xff\xff\xfe")));
    assert!(is_malformed(parse_sasl_initial(b"M\0\0\0\0\x05abc")));
    assert!(is_malformed(parse_sasl_initial(b"M\0\0\0\0\x01ab")));
    assert!(is_malformed(parse_sasl_initial(b"M\0\0\0")));
    assert!(is_malformed(parse_sasl_initial(b"M")));
}

#[test]
fn sasl_response_round_trip() {
    let m = build::sasl_response(b"c=biws,r=x,p=y");
    assert_eq!(m, pp_bytes(|b| pp::sasl_response(b"c=biws,r=x,p=y", b)));
    let f = frame(&m);
    assert_eq!(sasl_response_data(f.body_slice()), b"c=biws,r=x,p=y");
}
