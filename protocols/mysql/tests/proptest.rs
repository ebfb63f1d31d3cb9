//! Property tests: decoders never panic on arbitrary input, framing round-trips for random
//! sizes and sequence ids whether bytes arrive at once or in pieces, and lenenc round-trips.

use bytes::BytesMut;
use my::CapabilityFlags;
use proptest::prelude::*;
use switchyard_mysql as my;

/// Arbitrary bytes, plus streams of plausible packets so the message paths are exercised.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let packet = (any::<u8>(), prop::collection::vec(any::<u8>(), 0..64))
        .prop_map(|(seq, body)| my::encode_packet(seq, &body).to_vec());
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        prop::collection::vec(packet, 0..6).prop_map(|ps| ps.concat()),
    ]
}

proptest! {
    #[test]
    fn decoders_never_panic(data in stream(), caps in any::<u32>(), max in 0usize..512) {
        let caps = CapabilityFlags::from_bits_retain(caps);
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(p)) = my::decode_packet(&mut buf, max) {
            prop_assert!(p.payload.len() <= max);
        }
        let _ = my::peek_header(&data);
        let _ = my::HandshakeV10::parse(&data);
        let _ = my::HandshakeResponse41::parse(&data);
        let _ = my::SslRequest::parse(&data);
        let _ = my::is_ssl_request(&data);
        let _ = my::AuthSwitchRequest::parse(&data);
        let _ = my::AuthMoreData::parse(&data);
        let _ = my::OkPacket::parse(&data, caps);
        let _ = my::ErrPacket::parse(&data);
        let _ = my::EofPacket::parse(&data);
        let _ = my::is_eof_packet(&data, caps);
        let _ = my::StmtPrepareOk::parse(&data);
        let _ = my::command_of(&data);
        let _ = my::statement_id(&data);
        let mut copy = data.clone();
        let _ = my::rewrite_statement_id(&mut copy, 7);
        let _ = my::read_lenenc_int(&data);
        let _ = my::read_lenenc_str(&data);
        let _ = my::verify_native_password(&data, b"pw", &data);
        let _ = my::verify_caching_sha2(&data, &data, &data);
    }

    #[test]
    fn framing_round_trips_in_pieces(
        packets in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..300)), 1..5),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut wire = Vec::new();
        for (seq, body) in &packets {
            wire.extend_from_slice(&my::encode_packet(*seq, body));
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        points.extend([0, wire.len()]);
        points.sort_unstable();
        points.dedup();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for w in points.windows(2) {
            buf.extend_from_slice(&wire[w[0]..w[1]]);
            while let Some(p) = my::decode_packet(&mut buf, 300).expect("valid") {
                got.push(p);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got.len(), packets.len());
        for (p, (seq, body)) in got.iter().zip(&packets) {
            prop_assert_eq!(p.seq, *seq);
            prop_assert_eq!(p.last_seq, *seq);
            prop_assert_eq!(&p.payload[..], &body[..]);
            prop_assert_eq!(&p.raw[..], &my::encode_packet(*seq, body)[..]);
        }
    }

    #[test]
    fn lenenc_ints_round_trip(v in any::<u64>(), tail in prop::collection::vec(any::<u8>(), 0..4)) {
        let mut out = BytesMut::new();
        my::put_lenenc_int(&mut out, v);
        prop_assert_eq!(out.len(), my::lenenc_int_len(v));
        out.extend_from_slice(&tail);
        prop_assert_eq!(my::read_lenenc_int(&out), Ok((v, &tail[..])));
    }

    #[test]
    fn lenenc_strings_round_trip(s in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut out = BytesMut::new();
        my::put_lenenc_str(&mut out, &s);
        prop_assert_eq!(my::read_lenenc_str(&out), Ok((&s[..], &[][..])));
    }

    #[test]
    fn ok_and_err_round_trip(
        affected in any::<u64>(), id in any::<u64>(), status in any::<u16>(), warnings in any::<u16>(),
        info in prop::collection::vec(any::<u8>(), 0..40), track in any::<bool>(),
        code in any::<u16>(), state in any::<[u8; 5]>(),
    ) {
        let mut caps = CapabilityFlags::CLIENT_PROTOCOL_41;
        if track {
            caps |= CapabilityFlags::CLIENT_SESSION_TRACK;
        }
        // Without session tracking the state-changed bit has no block to carry.
        let status = my::StatusFlags::from_bits_retain(status) - my::StatusFlags::SERVER_SESSION_STATE_CHANGED;
        let ok = my::OkPacket { header: 0, affected_rows: affected, last_insert_id: id, status, warnings, info, session_state_changes: None };
        prop_assert_eq!(my::OkPacket::parse(&ok.encode(caps), caps), Ok(ok));
        let err = my::ErrPacket::new(code, state, b"boom".to_vec());
        prop_assert_eq!(my::ErrPacket::parse(&err.encode()), Ok(err));
    }

    #[test]
    fn handshake_round_trips(
        version in prop::collection::vec(1u8..=255, 0..40), conn in any::<u32>(),
        nonce in prop::collection::vec(1u8..=255, 20), caps in any::<u32>(),
        charset in any::<u8>(), status in any::<u16>(), reserved in any::<[u8; 10]>(),
        plugin in prop::collection::vec(1u8..=255, 0..30),
    ) {
        let caps = CapabilityFlags::from_bits_retain(caps) | CapabilityFlags::CLIENT_SECURE_CONNECTION;
        let h = my::HandshakeV10 {
            server_version: version, connection_id: conn, auth_plugin_data: nonce, capabilities: caps,
            charset, status: my::StatusFlags::from_bits_retain(status), reserved,
            auth_plugin_name: caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH).then_some(plugin),
        };
        prop_assert_eq!(my::HandshakeV10::parse(&h.encode()), Ok(h));
    }
}
