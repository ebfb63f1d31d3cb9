use super::*;
use crate::auth::MYSQL_NATIVE_PASSWORD;

/// Decodes a hex string written in a test.
fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

// A HandshakeResponse41 payload accepted by MariaDB 10.11 (length-encoded auth response).
const RESPONSE: &str = "0d822a01000000012d0000000000000000000000000000000000000000000000737900149a60308f6a22fef34332451cf0221b73ffafee7874657374006d7973716c5f6e61746976655f70617373776f726400";

#[test]
fn parses_a_real_handshake_response_and_rebuilds_it_exactly() {
    let payload = hex(RESPONSE);
    let r = HandshakeResponse41::parse(&payload).expect("valid");
    assert!(r
        .capabilities
        .contains(CapabilityFlags::CLIENT_CONNECT_WITH_DB));
    assert!(r
        .capabilities
        .contains(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA));
    assert_eq!(r.max_packet_size, 16 << 20);
    assert_eq!(r.charset, 45);
    assert_eq!(r.username, b"sy");
    assert_eq!(r.auth_response.len(), 20);
    assert_eq!(r.database.as_deref(), Some(&b"test"[..]));
    assert_eq!(
        r.auth_plugin_name.as_deref(),
        Some(MYSQL_NATIVE_PASSWORD.as_bytes())
    );
    assert_eq!(r.connect_attrs, None);
    assert!(!is_ssl_request(&payload));
    assert_eq!(r.encode().expect("encodable")[..], payload[..]);
    // Without the lenenc flag the same bytes read as the 1-byte length form.
    let mut one_byte = payload.clone();
    one_byte[2] &= !0x20;
    let r1 = HandshakeResponse41::parse(&one_byte).expect("valid");
    assert!(!r1
        .capabilities
        .contains(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA));
    assert_eq!(r1.auth_response, r.auth_response);
    assert_eq!(r1.encode().expect("encodable")[..], one_byte[..]);
}

fn full_caps() -> CapabilityFlags {
    CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB
        | CapabilityFlags::CLIENT_CONNECT_ATTRS
}

#[test]
fn lenenc_auth_response_with_attrs_round_trips() {
    let r = HandshakeResponse41 {
        capabilities: full_caps(),
        max_packet_size: 1 << 24,
        charset: 255,
        username: b"app".to_vec(),
        auth_response: vec![7; 300],
        database: Some(b"shop".to_vec()),
        auth_plugin_name: Some(b"caching_sha2_password".to_vec()),
        connect_attrs: Some(b"\x04_pid\x0412345".to_vec()),
    };
    let payload = r.encode().expect("encodable");
    assert_eq!(HandshakeResponse41::parse(&payload), Ok(r));
}

#[test]
fn minimal_response_round_trips() {
    let r = HandshakeResponse41 {
        capabilities: CapabilityFlags::CLIENT_PROTOCOL_41,
        username: b"u".to_vec(),
        auth_response: b"pw".to_vec(),
        ..HandshakeResponse41::default()
    };
    assert_eq!(
        HandshakeResponse41::parse(&r.encode().expect("encodable")),
        Ok(r)
    );
}

#[test]
fn long_auth_response_needs_the_lenenc_form() {
    let r = HandshakeResponse41 {
        capabilities: CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION,
        auth_response: vec![1; 256],
        ..HandshakeResponse41::default()
    };
    assert!(r.encode().is_err());
}

#[test]
fn truncated_or_lying_responses_are_errors() {
    let payload = hex(RESPONSE);
    // Cut before the plugin name: every shorter prefix loses a mandatory field.
    let plugin_at = payload.len() - MYSQL_NATIVE_PASSWORD.len() - 1;
    for n in 0..plugin_at {
        assert!(HandshakeResponse41::parse(&payload[..n]).is_err(), "{n}");
    }
    // An auth length running past the end.
    let mut lying = payload[..36].to_vec();
    lying.push(200);
    assert!(HandshakeResponse41::parse(&lying).is_err());
    // Attributes whose declared length is larger than what is left.
    let mut attrs = HandshakeResponse41 {
        capabilities: full_caps(),
        username: b"u".to_vec(),
        database: Some(Vec::new()),
        auth_plugin_name: Some(Vec::new()),
        ..HandshakeResponse41::default()
    }
    .encode()
    .expect("encodable")
    .to_vec();
    attrs.pop();
    attrs.extend_from_slice(&[0xFC, 0xFF, 0xFF, 1]);
    assert!(HandshakeResponse41::parse(&attrs).is_err());
}

#[test]
fn ssl_request_is_detected_by_size_and_flag() {
    let req = SslRequest {
        capabilities: CapabilityFlags::CLIENT_PROTOCOL_41,
        max_packet_size: 1 << 24,
        charset: 45,
    };
    let payload = req.encode();
    assert_eq!(payload.len(), SSL_REQUEST_LEN);
    assert!(is_ssl_request(&payload));
    let back = SslRequest::parse(&payload).expect("valid");
    assert!(back.capabilities.contains(CapabilityFlags::CLIENT_SSL));
    assert_eq!(back.charset, 45);
    // Same header without CLIENT_SSL, or a full response with CLIENT_SSL, is not one.
    let mut no_ssl = payload.to_vec();
    no_ssl[1] &= !0x08;
    assert!(!is_ssl_request(&no_ssl));
    assert!(SslRequest::parse(&no_ssl).is_err());
    let full = HandshakeResponse41 {
        capabilities: CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_SSL,
        ..HandshakeResponse41::default()
    };
    assert!(!is_ssl_request(&full.encode().expect("encodable")));
    assert!(!is_ssl_request(&[]));
}

#[test]
fn command_bytes_match_the_protocol() {
    let expected = [
        (Command::COM_QUIT, 0x01),
        (Command::COM_INIT_DB, 0x02),
        (Command::COM_QUERY, 0x03),
        (Command::COM_FIELD_LIST, 0x04),
        (Command::COM_PING, 0x0E),
        (Command::COM_CHANGE_USER, 0x11),
        (Command::COM_STMT_PREPARE, 0x16),
        (Command::COM_STMT_EXECUTE, 0x17),
        (Command::COM_STMT_SEND_LONG_DATA, 0x18),
        (Command::COM_STMT_CLOSE, 0x19),
        (Command::COM_STMT_RESET, 0x1A),
        (Command::COM_SET_OPTION, 0x1B),
        (Command::COM_STMT_FETCH, 0x1C),
        (Command::COM_RESET_CONNECTION, 0x1F),
    ];
    for (cmd, byte) in expected {
        assert_eq!(cmd as u8, byte);
        assert_eq!(command_of(&[byte]), Some(cmd));
    }
    for b in 0..=0x1Fu8 {
        assert_eq!(command_of(&[b]).map(|c| c as u8), Some(b));
    }
    assert_eq!(command_of(&[0x20]), None);
    assert_eq!(command_of(&[]), None);
    assert_eq!(
        &command_payload(Command::COM_QUERY, b"select 1")[..],
        b"\x03select 1"
    );
}

#[test]
fn statement_ids_are_read_and_rewritten_in_place() {
    for cmd in [
        Command::COM_STMT_EXECUTE,
        Command::COM_STMT_SEND_LONG_DATA,
        Command::COM_STMT_CLOSE,
        Command::COM_STMT_RESET,
        Command::COM_STMT_FETCH,
    ] {
        let mut payload = command_payload(cmd, &[1, 0, 0, 0, 0xAA, 0xBB]).to_vec();
        assert_eq!(statement_id(&payload), Ok(1));
        assert_eq!(rewrite_statement_id(&mut payload, 0x0A0B_0C0D), Ok(1));
        assert_eq!(&payload[1..], &[0x0D, 0x0C, 0x0B, 0x0A, 0xAA, 0xBB]);
        assert_eq!(statement_id(&payload), Ok(0x0A0B_0C0D));
    }
    let mut query = command_payload(Command::COM_QUERY, b"select 1").to_vec();
    assert!(rewrite_statement_id(&mut query, 5).is_err());
    assert_eq!(&query[..], b"\x03select 1");
    assert!(statement_id(&[0x17, 1, 0, 0]).is_err());
    assert!(statement_id(&[]).is_err());
}

#[test]
fn statement_id_rewrite_works_on_raw_wire_bytes() {
    let payload = command_payload(Command::COM_STMT_CLOSE, &[9, 0, 0, 0]);
    let mut raw = crate::frame::encode_packet(0, &payload).to_vec();
    assert_eq!(
        rewrite_statement_id(&mut raw[crate::frame::HEADER_LEN..], 10),
        Ok(9)
    );
    assert_eq!(&raw[..], &[5, 0, 0, 0, 0x19, 10, 0, 0, 0]);
}

#[test]
fn change_user_parses_what_mysql_common_sends() {
    use mysql_common::packets::{AuthPlugin, ComChangeUser, ComChangeUserMoreData};
    use mysql_common::proto::MySerialize;
    let packet = ComChangeUser::new()
        .with_user(Some(&b"bob"[..]))
        .with_auth_plugin_data(Some(&[7u8; 20][..]))
        .with_database(Some(&b"app"[..]))
        .with_more_data(Some(
            ComChangeUserMoreData::new(45).with_auth_plugin(Some(AuthPlugin::MysqlNativePassword)),
        ));
    let mut bytes = Vec::new();
    packet.serialize(&mut bytes);
    let cu = ChangeUser::parse(&bytes).expect("parse");
    assert_eq!(cu.username, b"bob");
    assert_eq!(cu.auth_response, [7u8; 20]);
    assert_eq!(cu.database, b"app");
    assert_eq!(cu.charset, Some(45));
    assert_eq!(
        cu.auth_plugin_name.as_deref(),
        Some(&b"mysql_native_password"[..])
    );
    // Old clients stop after the user and response; truncated responses are malformed.
    let short = ChangeUser::parse(b"\x11bob\x00\x00").expect("short form");
    assert!(short.database.is_empty() && short.charset.is_none());
    assert!(ChangeUser::parse(b"\x11bob\x00\x14abc").is_err());
    assert!(ChangeUser::parse(b"\x03select").is_err());
}
