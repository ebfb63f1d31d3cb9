use bytes::{BufMut, BytesMut};

use super::*;
use crate::build;

const MAX: usize = 1 << 20;

#[test]
fn decodes_a_whole_frame_and_keeps_raw_bytes() {
    let msg = build::query("select 1");
    let mut buf = BytesMut::from(&msg[..]);
    let frame = decode_frame(&mut buf, MAX)
        .expect("valid")
        .expect("complete");
    assert_eq!(frame.tag, b'Q');
    assert_eq!(frame.raw, msg);
    assert_eq!(frame.len(), msg.len());
    assert!(!frame.is_empty());
    assert_eq!(&frame.body()[..], b"select 1\0");
    assert_eq!(frame.body_slice(), b"select 1\0");
    assert!(buf.is_empty());
}

#[test]
fn partial_reads_return_none_until_complete() {
    let mut stream = BytesMut::new();
    stream.extend_from_slice(&build::query("select 1"));
    stream.extend_from_slice(&build::sync());
    let all = stream.freeze();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for byte in all.iter() {
        buf.put_u8(*byte);
        while let Some(f) = decode_frame(&mut buf, MAX).expect("valid") {
            frames.push(f);
        }
    }
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].tag, b'Q');
    assert_eq!(frames[1].tag, b'S');
    assert_eq!(frames[1].raw, build::sync());
    assert!(buf.is_empty());
}

#[test]
fn header_only_and_empty_input_are_incomplete() {
    let mut empty = BytesMut::new();
    assert_eq!(decode_frame(&mut empty, MAX), Ok(None));
    let mut header = BytesMut::from(&[b'Q', 0, 0, 0, 10][..]);
    assert_eq!(decode_frame(&mut header, MAX), Ok(None));
    assert_eq!(header.len(), 5, "nothing consumed on short input");
}

#[test]
fn zero_length_body_is_valid() {
    let mut buf = BytesMut::from(&[b'S', 0, 0, 0, 4][..]);
    let frame = decode_frame(&mut buf, 5).expect("valid").expect("complete");
    assert!(frame.body().is_empty());
}

#[test]
fn too_large_is_rejected_from_the_header_alone() {
    let buf = [b'Q', 0, 0, 0x10, 0];
    assert_eq!(
        peek_header(&buf, 100),
        Err(ProtocolError::TooLarge {
            len: 0x1001,
            max: 100
        })
    );
    let mut b = BytesMut::from(&buf[..]);
    assert!(matches!(
        decode_frame(&mut b, 100),
        Err(ProtocolError::TooLarge { .. })
    ));
    // The limit counts the tag byte: a 4-byte length needs max_len >= 5.
    assert!(peek_header(&[b'S', 0, 0, 0, 4], 4).is_err());
    assert_eq!(peek_header(&[b'S', 0, 0, 0, 4], 5), Ok(Some((b'S', 5))));
}

#[test]
fn bad_lengths_are_rejected() {
    assert_eq!(
        peek_header(&[b'Q', 0, 0, 0, 3], MAX),
        Err(ProtocolError::BadLength(3))
    );
    assert_eq!(
        peek_header(&[b'Q', 0xff, 0xff, 0xff, 0xff], MAX),
        Err(ProtocolError::BadLength(-1))
    );
    assert_eq!(
        peek_header(&[b'Q', 0x80, 0, 0, 0], usize::MAX),
        Err(ProtocolError::BadLength(i64::from(i32::MIN)))
    );
}

#[test]
fn peek_header_short_input() {
    assert_eq!(peek_header(&[b'Q', 0, 0, 0], MAX), Ok(None));
    assert_eq!(peek_header(&[], MAX), Ok(None));
}

#[test]
fn hand_built_short_frame_does_not_panic() {
    let f = Frame {
        tag: b'Q',
        raw: bytes::Bytes::from_static(b"Q"),
    };
    assert!(f.body().is_empty());
    assert!(f.body_slice().is_empty());
}
