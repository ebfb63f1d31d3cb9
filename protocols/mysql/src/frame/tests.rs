use bytes::{BufMut, BytesMut};

use super::*;

const MAX: usize = 1 << 26;

#[test]
fn decodes_a_single_chunk_and_keeps_raw_bytes() {
    let wire = encode_packet(3, b"\x03select 1");
    assert_eq!(&wire[..4], &[9, 0, 0, 3]);
    let mut buf = BytesMut::from(&wire[..]);
    buf.put_slice(b"next");
    let p = decode_packet(&mut buf, MAX)
        .expect("valid")
        .expect("complete");
    assert_eq!(p.seq, 3);
    assert_eq!(p.last_seq, 3);
    assert_eq!(p.next_seq(), 4);
    assert_eq!(p.header_byte(), Some(0x03));
    assert_eq!(&p.payload[..], b"\x03select 1");
    assert_eq!(p.raw, wire);
    assert_eq!(&buf[..], b"next");
}

#[test]
fn short_input_is_incomplete_and_consumes_nothing() {
    let wire = encode_packet(0, b"hello");
    for n in 0..wire.len() {
        let mut buf = BytesMut::from(&wire[..n]);
        assert_eq!(decode_packet(&mut buf, MAX), Ok(None));
        assert_eq!(buf.len(), n);
    }
    assert_eq!(peek_header(&wire[..3]), None);
    assert_eq!(peek_header(&wire), Some(ChunkHeader { len: 5, seq: 0 }));
}

#[test]
fn empty_payload_is_one_empty_chunk() {
    let wire = encode_packet(7, b"");
    assert_eq!(&wire[..], &[0, 0, 0, 7]);
    let mut buf = BytesMut::from(&wire[..]);
    let p = decode_packet(&mut buf, 0)
        .expect("valid")
        .expect("complete");
    assert!(p.payload.is_empty());
}

#[test]
fn max_payload_is_enforced_from_headers_alone() {
    let mut buf = BytesMut::from(&[0x00, 0x10, 0x00, 0][..]);
    assert_eq!(
        decode_packet(&mut buf, 100),
        Err(ProtocolError::TooLarge {
            len: 0x1000,
            max: 100
        })
    );
    // Exactly at the limit is fine.
    let mut ok = BytesMut::from(&encode_packet(0, &[1; 100])[..]);
    assert!(decode_packet(&mut ok, 100).expect("valid").is_some());
    // A split packet is rejected once its chunks add up past the limit.
    let mut split = BytesMut::from(&[0xFF, 0xFF, 0xFF, 0][..]);
    assert!(matches!(
        decode_packet(&mut split, MAX_CHUNK - 1),
        Err(ProtocolError::TooLarge { .. })
    ));
}

/// Encodes, checks the chunk layout, decodes, checks the payload: with one allocation
/// for the payload, one for the wire bytes and one for the reassembled copy.
fn split_round_trip(len: usize, expect_chunks: &[usize]) {
    let mut payload = vec![0u8; len];
    for (i, b) in payload.iter_mut().enumerate().step_by(4099) {
        *b = (i % 251) as u8;
    }
    let wire = encode_packet(250, &payload);
    assert_eq!(wire.len(), encoded_len(len));
    let mut pos = 0;
    for (i, &n) in expect_chunks.iter().enumerate() {
        let h = peek_header(&wire[pos..]).expect("header");
        assert_eq!(h.len, n, "chunk {i}");
        assert_eq!(h.seq, 250u8.wrapping_add(i as u8));
        pos += HEADER_LEN + n;
    }
    assert_eq!(pos, wire.len());
    let mut buf = BytesMut::from(&wire[..]);
    let p = decode_packet(&mut buf, MAX)
        .expect("valid")
        .expect("complete");
    assert_eq!(p.seq, 250);
    assert_eq!(
        p.last_seq,
        250u8.wrapping_add(expect_chunks.len() as u8 - 1)
    );
    assert_eq!(p.payload.len(), len);
    assert!(p.payload == payload[..]);
    assert_eq!(p.raw, wire);
    assert!(buf.is_empty());
}

#[test]
fn payload_of_exactly_one_max_chunk_ends_with_an_empty_chunk() {
    split_round_trip(MAX_CHUNK, &[MAX_CHUNK, 0]);
}

#[test]
fn payload_of_two_max_chunks_ends_with_an_empty_chunk() {
    split_round_trip(2 * MAX_CHUNK, &[MAX_CHUNK, MAX_CHUNK, 0]);
}

#[test]
fn payload_just_over_a_chunk_splits_in_two() {
    split_round_trip(MAX_CHUNK + 1, &[MAX_CHUNK, 1]);
}

#[test]
fn split_packet_waits_for_its_last_chunk() {
    let wire = encode_packet(0, &vec![9u8; MAX_CHUNK]);
    // Everything but the final empty chunk's header.
    let mut buf = BytesMut::from(&wire[..wire.len() - HEADER_LEN]);
    assert_eq!(decode_packet(&mut buf, MAX), Ok(None));
    buf.put_slice(&wire[wire.len() - HEADER_LEN..]);
    let p = decode_packet(&mut buf, MAX)
        .expect("valid")
        .expect("complete");
    assert_eq!(p.payload.len(), MAX_CHUNK);
    assert_eq!(p.last_seq, 1);
}

#[test]
fn encode_into_returns_the_next_sequence_id() {
    let mut out = BytesMut::new();
    assert_eq!(encode_packet_into(&mut out, 255, b"x"), 0);
    assert_eq!(&out[..], &[1, 0, 0, 255, b'x']);
}
