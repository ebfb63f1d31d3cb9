use bytes::BytesMut;

use super::*;

#[test]
fn integers_use_the_shortest_form_and_round_trip() {
    let cases: [(u64, &[u8]); 7] = [
        (0, &[0x00]),
        (250, &[0xFA]),
        (251, &[0xFC, 0xFB, 0x00]),
        (0xFFFF, &[0xFC, 0xFF, 0xFF]),
        (0x1_0000, &[0xFD, 0x00, 0x00, 0x01]),
        (0xFF_FFFF, &[0xFD, 0xFF, 0xFF, 0xFF]),
        (0x100_0000, &[0xFE, 0, 0, 0, 1, 0, 0, 0, 0]),
    ];
    for (v, wire) in cases {
        let mut out = BytesMut::new();
        put_lenenc_int(&mut out, v);
        assert_eq!(&out[..], wire, "{v}");
        assert_eq!(lenenc_int_len(v), wire.len());
        assert_eq!(read_lenenc_int(&out), Ok((v, &[][..])));
    }
}

#[test]
fn null_and_err_prefixes_and_short_input_are_errors() {
    assert!(read_lenenc_int(&[]).is_err());
    assert!(read_lenenc_int(&[0xFB]).is_err());
    assert!(read_lenenc_int(&[0xFF]).is_err());
    assert!(read_lenenc_int(&[0xFC, 1]).is_err());
    assert!(read_lenenc_int(&[0xFE, 1, 2, 3, 4, 5, 6, 7]).is_err());
}

#[test]
fn strings_are_bounded_by_the_input() {
    let mut out = BytesMut::new();
    put_lenenc_str(&mut out, b"abc");
    out.extend_from_slice(b"rest");
    assert_eq!(read_lenenc_str(&out), Ok((&b"abc"[..], &b"rest"[..])));
    assert!(read_lenenc_str(&[0x05, b'a']).is_err());
    // A huge declared length must fail, not allocate or overflow.
    assert!(read_lenenc_str(&[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
}
