use super::*;
use crate::frame::{decode_packet, encode_packet};
use bytes::BytesMut;

/// Decodes a hex string written in a test.
fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Splits one captured packet into its payload, checking the header on the way.
fn payload_of(wire: &[u8], seq: u8) -> Bytes {
    let mut buf = BytesMut::from(wire);
    let p = decode_packet(&mut buf, 1 << 20)
        .expect("valid")
        .expect("complete");
    assert!(buf.is_empty());
    assert_eq!(p.seq, seq);
    p.payload
}

// Captured from MariaDB 10.11.19 (Debian 12) on loopback.
const MARIADB_GREETING: &str = "640000000a352e352e352d31302e31312e31392d4d6172696144422d302b6465623132753100040000005d40655e294e2e3a00fef7080200ff81150000000000001d00000076667b592e737d3944294047006d7973716c5f6e61746976655f70617373776f726400";
const MARIADB_OK_LOGIN: &str = "0700000200000002000000";
const MARIADB_OK_INSERT: &str = "2e00000100020102000000265265636f7264733a203220204475706c6963617465733a203020205761726e696e67733a2030";
const MARIADB_ERR_NO_TABLE: &str = "2b000001ff7a042334325330325461626c6520276d7973716c2e6e6f737563682720646f65736e2774206578697374";
const MARIADB_ERR_ACCESS: &str = "46000002ff15042332383030304163636573732064656e69656420666f722075736572202773792740276c6f63616c686f73742720287573696e672070617373776f72643a2059455329";

#[test]
fn parses_a_real_mariadb_greeting_and_rebuilds_it_exactly() {
    let wire = hex(MARIADB_GREETING);
    let payload = payload_of(&wire, 0);
    let h = HandshakeV10::parse(&payload).expect("valid");
    assert_eq!(h.server_version, b"5.5.5-10.11.19-MariaDB-0+deb12u1");
    assert_eq!(h.connection_id, 4);
    assert_eq!(h.auth_plugin_data, b"]@e^)N.:vf{Y.s}9D)@G");
    assert_eq!(h.auth_plugin_data.len(), 20);
    assert!(h.capabilities.contains(CapabilityFlags::CLIENT_PROTOCOL_41));
    assert!(h.capabilities.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH));
    assert!(h
        .capabilities
        .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF));
    assert!(!h.capabilities.contains(CapabilityFlags::CLIENT_SSL));
    assert_eq!(h.charset, 8);
    assert_eq!(h.status, StatusFlags::SERVER_STATUS_AUTOCOMMIT);
    assert_eq!(h.reserved, [0, 0, 0, 0, 0, 0, 0x1d, 0, 0, 0]);
    assert_eq!(
        h.auth_plugin_name.as_deref(),
        Some(&b"mysql_native_password"[..])
    );
    assert_eq!(h.encode(), payload);
    assert_eq!(encode_packet(0, &h.encode())[..], wire[..]);
}

#[test]
fn handshake_round_trips_without_plugin_auth() {
    let h = HandshakeV10 {
        server_version: b"8.0.36".to_vec(),
        connection_id: 0xDEAD_BEEF,
        auth_plugin_data: b"abcdefghijklmnopqrst".to_vec(),
        capabilities: CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION,
        charset: 255,
        status: StatusFlags::empty(),
        reserved: [0; 10],
        auth_plugin_name: None,
    };
    assert_eq!(HandshakeV10::parse(&h.encode()), Ok(h));
}

#[test]
fn handshake_rejects_other_protocols_and_truncation() {
    let payload = payload_of(&hex(MARIADB_GREETING), 0);
    let mut v9 = payload.to_vec();
    v9[0] = 9;
    assert!(HandshakeV10::parse(&v9).is_err());
    for n in 0..40 {
        assert!(HandshakeV10::parse(&payload[..n]).is_err(), "{n}");
    }
}

#[test]
fn parses_real_mariadb_ok_packets() {
    let caps = CapabilityFlags::CLIENT_PROTOCOL_41;
    let login = payload_of(&hex(MARIADB_OK_LOGIN), 2);
    let ok = OkPacket::parse(&login, caps).expect("valid");
    assert_eq!(ok.affected_rows, 0);
    assert_eq!(ok.status, StatusFlags::SERVER_STATUS_AUTOCOMMIT);
    assert!(ok.info.is_empty());
    assert_eq!(ok.encode(caps), login);

    let insert = payload_of(&hex(MARIADB_OK_INSERT), 1);
    let ok = OkPacket::parse(&insert, caps).expect("valid");
    assert_eq!(ok.affected_rows, 2);
    assert_eq!(ok.last_insert_id, 1);
    assert_eq!(ok.warnings, 0);
    assert_eq!(ok.info, b"Records: 2  Duplicates: 0  Warnings: 0");
    assert_eq!(ok.encode(caps), insert);
}

#[test]
fn ok_round_trips_with_session_tracking() {
    let caps = CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_SESSION_TRACK;
    let ok = OkPacket {
        header: OK_HEADER,
        affected_rows: 300,
        last_insert_id: 1 << 40,
        status: StatusFlags::SERVER_STATUS_IN_TRANS | StatusFlags::SERVER_SESSION_STATE_CHANGED,
        warnings: 2,
        info: b"Rows matched: 1".to_vec(),
        session_state_changes: Some(b"\x00\x05\x04abcd".to_vec()),
    };
    assert_eq!(OkPacket::parse(&ok.encode(caps), caps), Ok(ok));
    let bare = OkPacket::default();
    assert_eq!(&bare.encode(caps)[..], &[0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(OkPacket::parse(&bare.encode(caps), caps), Ok(bare));
    assert!(OkPacket::parse(&[0xFF, 0, 0, 0, 0, 0, 0], caps).is_err());
    assert!(OkPacket::parse(&[0x00, 0, 0, 0], caps).is_err());
}

#[test]
fn parses_real_mariadb_err_packets() {
    let e = ErrPacket::parse(&payload_of(&hex(MARIADB_ERR_NO_TABLE), 1)).expect("valid");
    assert_eq!(e.code, 1146);
    assert_eq!(e.sql_state, Some(*b"42S02"));
    assert_eq!(e.message, b"Table 'mysql.nosuch' doesn't exist");
    let wire = hex(MARIADB_ERR_ACCESS);
    let payload = payload_of(&wire, 2);
    let e = ErrPacket::parse(&payload).expect("valid");
    assert_eq!(e.code, 1045);
    assert_eq!(e.sql_state, Some(*b"28000"));
    assert_eq!(e.encode(), payload);
    assert_eq!(
        ErrPacket::new(
            1045,
            *b"28000",
            &b"Access denied for user 'sy'@'localhost' (using password: YES)"[..]
        ),
        e
    );
}

#[test]
fn err_without_sqlstate_round_trips() {
    let e = ErrPacket {
        code: 1040,
        sql_state: None,
        message: b"Too many connections".to_vec(),
    };
    assert_eq!(&e.encode()[..3], &[0xFF, 0x10, 0x04]);
    assert_eq!(ErrPacket::parse(&e.encode()), Ok(e));
    assert!(ErrPacket::parse(&[0xFF, 1]).is_err());
    assert!(ErrPacket::parse(&[0xFF, 1, 0, b'#', b'4']).is_err());
}

#[test]
fn eof_round_trips_and_is_recognised() {
    let eof = EofPacket {
        warnings: 1,
        status: StatusFlags::SERVER_MORE_RESULTS_EXISTS,
    };
    let payload = eof.encode();
    assert_eq!(&payload[..], &[0xFE, 1, 0, 8, 0]);
    assert_eq!(EofPacket::parse(&payload), Ok(eof));
    assert!(EofPacket::parse(&[0xFE, 1, 0, 8]).is_err());
    assert!(EofPacket::parse(&[0xFE, 1, 0, 8, 0, 0]).is_err());
    let classic = CapabilityFlags::CLIENT_PROTOCOL_41;
    let deprecate = classic | CapabilityFlags::CLIENT_DEPRECATE_EOF;
    assert!(is_eof_packet(&payload, classic));
    assert!(is_eof_packet(&payload, deprecate));
    // An OK-as-EOF with an info string is longer than 9 bytes.
    let ok_eof = OkPacket {
        header: EOF_HEADER,
        info: b"long enough info".to_vec(),
        ..OkPacket::default()
    }
    .encode(classic);
    assert!(ok_eof.len() >= 9);
    assert!(is_eof_packet(&ok_eof, deprecate));
    assert!(!is_eof_packet(&ok_eof, classic));
    // The docs' string<EOF> info form is accepted too.
    let eof_info = [0x00, 0, 0, 2, 0, 0, 0, b'h', b'i'];
    assert_eq!(
        OkPacket::parse(&eof_info, classic).expect("valid").info,
        b"hi"
    );
    // A row whose first column has an 8-byte length prefix.
    let row = [0xFE, 0, 0, 0, 1, 0, 0, 0, 0];
    assert!(!is_eof_packet(&row, classic));
    assert!(!is_eof_packet(&[0x00, 0, 0, 2, 0, 0, 0], deprecate));
    assert!(!is_eof_packet(&[], deprecate));
}

#[test]
fn auth_switch_round_trips() {
    let req = AuthSwitchRequest::with_nonce(MYSQL_NATIVE_PASSWORD_BYTES, b"abcdefghijklmnopqrst");
    let payload = req.encode();
    assert_eq!(payload[0], 0xFE);
    assert!(payload.ends_with(b"qrst\0"));
    let back = AuthSwitchRequest::parse(&payload).expect("valid");
    assert_eq!(back.nonce(), b"abcdefghijklmnopqrst");
    assert_eq!(back, req);
    assert!(AuthSwitchRequest::parse(&[0xFE]).is_err());
    assert!(AuthSwitchRequest::parse(&[0xFE, b'x']).is_err());
    assert!(AuthSwitchRequest::parse(&[0x01, 0]).is_err());
}

const MYSQL_NATIVE_PASSWORD_BYTES: &[u8] = crate::auth::MYSQL_NATIVE_PASSWORD.as_bytes();

#[test]
fn auth_more_data_round_trips() {
    let fast = AuthMoreData::fast_auth_success();
    assert_eq!(&fast.encode()[..], &[0x01, 0x03]);
    let back = AuthMoreData::parse(&fast.encode()).expect("valid");
    assert!(back.is_fast_auth_success());
    assert!(!back.is_perform_full_auth());
    let full = AuthMoreData::parse(&[0x01, 0x04]).expect("valid");
    assert!(full.is_perform_full_auth());
    assert_eq!(full, AuthMoreData::perform_full_auth());
    let key = AuthMoreData {
        data: b"-----BEGIN PUBLIC KEY-----".to_vec(),
    };
    assert_eq!(AuthMoreData::parse(&key.encode()), Ok(key));
    assert!(AuthMoreData::parse(&[]).is_err());
    assert!(AuthMoreData::parse(&[0x02]).is_err());
}

#[test]
fn stmt_prepare_ok_round_trips() {
    let ok = StmtPrepareOk {
        statement_id: 0x0102_0304,
        num_columns: 3,
        num_params: 2,
        warnings: 1,
    };
    let payload = ok.encode();
    assert_eq!(&payload[..], &[0, 4, 3, 2, 1, 3, 0, 2, 0, 0, 1, 0]);
    assert_eq!(StmtPrepareOk::parse(&payload), Ok(ok));
    // Without filler and warnings (old servers) and with MySQL's trailing metadata flag.
    assert_eq!(
        StmtPrepareOk::parse(&payload[..9]),
        Ok(StmtPrepareOk { warnings: 0, ..ok })
    );
    let mut with_flag = payload.to_vec();
    with_flag.push(1);
    assert_eq!(StmtPrepareOk::parse(&with_flag), Ok(ok));
    assert!(StmtPrepareOk::parse(&payload[..8]).is_err());
    assert!(StmtPrepareOk::parse(&payload[..10]).is_err());
}
