use bytes::BytesMut;

use super::*;
use crate::frame::decode_frame;
use crate::frontend::query_text;

fn declared_len(msg: &[u8]) -> usize {
    let mut len = [0u8; 4];
    len.copy_from_slice(&msg[1..5]);
    usize::try_from(i32::from_be_bytes(len)).expect("positive")
}

#[test]
fn fixed_messages() {
    assert_eq!(&sync()[..], b"S\0\0\0\x04");
    assert_eq!(&flush()[..], b"H\0\0\0\x04");
    assert_eq!(&terminate()[..], b"X\0\0\0\x04");
    assert_eq!(&ssl_refused()[..], b"N");
    assert_eq!(&auth_ok()[..], b"R\0\0\0\x08\0\0\0\0");
    assert_eq!(
        &cancel_request(1, 2)[..],
        b"\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x01\0\0\0\x02"
    );
}

#[test]
fn length_field_matches_every_tagged_encoder() {
    let fields = ErrorFields {
        detail: Some("d".into()),
        ..ErrorFields::default()
    };
    for msg in [
        error_response("ERROR", "42000", "m"),
        error_response_fields(&fields),
        notice_response("NOTICE", "00000", "m"),
        auth_ok(),
        auth_cleartext(),
        auth_md5([9; 4]),
        auth_sasl(&["SCRAM-SHA-256"]),
        auth_sasl_continue(b"abc"),
        auth_sasl_final(b"v=x"),
        parameter_status("a", "b"),
        backend_key_data(1, 2),
        ready_for_query(b'I'),
        negotiate_protocol_version(0, &["_pq_.x"]),
        password_message(b"pw"),
        sasl_initial_response("SCRAM-SHA-256", b"x"),
        sasl_response(b"x"),
        query("select 1"),
        parse("", "select 1", &[]),
        close(b'S', "s"),
        describe(b'P', ""),
        execute("", 0),
        sync(),
        flush(),
        terminate(),
    ] {
        assert_eq!(declared_len(&msg), msg.len() - 1, "{msg:?}");
    }
}

#[test]
fn negotiate_protocol_version_layout() {
    let m = negotiate_protocol_version(2, &["_pq_.a", "_pq_.b"]);
    assert_eq!(&m[..1], b"v");
    assert_eq!(&m[5..], b"\0\0\0\x02\0\0\0\x02_pq_.a\0_pq_.b\0");
}

#[test]
fn embedded_nul_truncates_instead_of_corrupting() {
    let m = query("select 1\0; drop table t");
    let mut buf = BytesMut::from(&m[..]);
    let f = decode_frame(&mut buf, 1024)
        .expect("valid")
        .expect("complete");
    assert_eq!(query_text(f.body_slice()), Ok("select 1"));
}

#[test]
fn startup_message_layout() {
    let m = startup_message(&[("user", "u")]);
    assert_eq!(&m[..], b"\0\0\0\x10\0\x03\0\0user\0u\0\0");
}

#[test]
fn rows_are_framed_as_postgres_sends_them() {
    let desc = row_description(&["name", "lag"]);
    assert_eq!(desc[0], b'T');
    assert_eq!(declared_len(&desc), desc.len() - 1);
    assert_eq!(&desc[5..7], &2i16.to_be_bytes());
    assert_eq!(&desc[7..12], b"name\0");
    let row = data_row(&[Some("pg1"), None]);
    assert_eq!(declared_len(&row), row.len() - 1);
    assert_eq!(&row[5..], b"\x00\x02\x00\x00\x00\x03pg1\xff\xff\xff\xff");
    assert_eq!(&empty_query_response()[..], b"I\0\0\0\x04");
}
