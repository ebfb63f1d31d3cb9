//! Property tests: decoders never panic on arbitrary input, respect their limits, and
//! decode the same way whether the bytes arrive at once or in pieces.

use bytes::BytesMut;
use proptest::prelude::*;
use switchyard_postgres as pg;

/// Arbitrary bytes, biased towards plausible headers so the body paths are exercised too.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let message = (any::<u8>(), 0usize..64).prop_flat_map(|(tag, body_len)| {
        (Just(tag), prop::collection::vec(any::<u8>(), body_len)).prop_map(|(tag, body)| {
            let mut m = vec![tag];
            m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
            m.extend_from_slice(&body);
            m
        })
    });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        prop::collection::vec(message, 0..6).prop_map(|ms| ms.concat()),
    ]
}

/// Cut points for feeding `len` bytes in random chunks.
fn chunks(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| data[w[0]..w[1]].to_vec())
        .collect()
}

type FrameResult = (Vec<pg::Frame>, Option<pg::ProtocolError>);

fn decode_all_frames(pieces: &[Vec<u8>], max_len: usize) -> FrameResult {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match pg::decode_frame(&mut buf, max_len) {
                Ok(Some(f)) => {
                    assert!(f.len() <= max_len, "frame of {} > {max_len}", f.len());
                    assert!(f.len() >= pg::HEADER_LEN);
                    assert_eq!(f.raw[0], f.tag);
                    frames.push(f);
                }
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

fn exercise_views(body: &[u8]) {
    let _ = pg::query_text(body);
    let _ = pg::parse_parse(body);
    let _ = pg::parse_bind(body);
    let _ = pg::parse_describe(body);
    let _ = pg::parse_close(body);
    let _ = pg::parse_execute(body);
    let _ = pg::password_text(body);
    let _ = pg::parse_sasl_initial(body);
    let _ = pg::ready_status(body);
    let _ = pg::parse_parameter_status(body);
    let _ = pg::parse_backend_key(body);
    let _ = pg::command_tag(body);
    let _ = pg::parse_error_fields(body);
    let _ = pg::parse_authentication(body);
}

fn cstring() -> impl Strategy<Value = String> {
    "[^\\x00]{0,40}"
}

proptest! {
    #[test]
    fn frames_same_whole_or_chunked(
        data in stream(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        max_len in 0usize..128,
    ) {
        let whole = decode_all_frames(std::slice::from_ref(&data), max_len);
        let pieces = decode_all_frames(&chunks(&data, &cuts), max_len);
        prop_assert_eq!(whole, pieces);
    }

    #[test]
    fn startup_never_panics_and_is_chunk_independent(
        data in prop::collection::vec(any::<u8>(), 0..128),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        max_len in 0usize..128,
    ) {
        let mut whole = BytesMut::from(&data[..]);
        let expected = pg::decode_startup(&mut whole, max_len);
        let mut buf = BytesMut::new();
        let mut got = Ok(None);
        for piece in chunks(&data, &cuts) {
            buf.extend_from_slice(&piece);
            got = pg::decode_startup(&mut buf, max_len);
            if !matches!(got, Ok(None)) {
                break;
            }
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn startup_with_valid_header_never_panics(
        code in prop_oneof![Just(196_608i32), Just(80_877_102), Just(80_877_103), any::<i32>()],
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut p = ((body.len() + 8) as i32).to_be_bytes().to_vec();
        p.extend_from_slice(&code.to_be_bytes());
        p.extend_from_slice(&body);
        let _ = pg::decode_startup(&mut BytesMut::from(&p[..]), 10_000);
    }

    #[test]
    fn typed_views_never_panic(body in prop::collection::vec(any::<u8>(), 0..128)) {
        exercise_views(&body);
        for prefix in [&[0u8, 0, 0, 10][..], &[0, 0, 0, 5], &[0, 0, 0, 11], b"S", b"P"] {
            let mut b = prefix.to_vec();
            b.extend_from_slice(&body);
            exercise_views(&b);
        }
    }

    #[test]
    fn frame_bodies_through_views(data in stream()) {
        let (frames, _) = decode_all_frames(&[data], 1 << 16);
        for f in frames {
            exercise_views(f.body_slice());
            prop_assert_eq!(&f.body()[..], f.body_slice());
        }
    }

    #[test]
    fn query_round_trip(sql in cstring()) {
        let m = pg::query(&sql);
        let f = pg::decode_frame(&mut BytesMut::from(&m[..]), 1 << 16).ok().flatten();
        let f = f.ok_or_else(|| TestCaseError::fail("no frame"))?;
        prop_assert_eq!(pg::query_text(f.body_slice()).ok(), Some(sql.as_str()));
    }

    #[test]
    fn parse_round_trip(name in cstring(), sql in cstring(), types in prop::collection::vec(any::<u32>(), 0..8)) {
        let m = pg::parse(&name, &sql, &types);
        let f = pg::decode_frame(&mut BytesMut::from(&m[..]), 1 << 16).ok().flatten();
        let f = f.ok_or_else(|| TestCaseError::fail("no frame"))?;
        let p = pg::parse_parse(f.body_slice()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(p.name, name.as_str());
        prop_assert_eq!(p.query, sql.as_str());
        prop_assert_eq!(p.param_types, types);
    }

    #[test]
    fn startup_round_trip(params in prop::collection::vec(("[^\\x00]{1,12}", cstring()), 0..6)) {
        let refs: Vec<(&str, &str)> = params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let m = pg::startup_message(&refs);
        let got = pg::decode_startup(&mut BytesMut::from(&m[..]), 1 << 16);
        prop_assert_eq!(got, Ok(Some(pg::StartupPacket::Startup { major: 3, minor: 0, params })));
    }

    #[test]
    fn error_fields_round_trip(sev in cstring(), code in cstring(), msg in cstring(),
                               detail in proptest::option::of(cstring()), hint in proptest::option::of(cstring())) {
        let fields = pg::ErrorFields { severity: sev, code, message: msg, detail, hint };
        let m = pg::error_response_fields(&fields);
        let f = pg::decode_frame(&mut BytesMut::from(&m[..]), 1 << 16).ok().flatten();
        let f = f.ok_or_else(|| TestCaseError::fail("no frame"))?;
        prop_assert_eq!(pg::parse_error_fields(f.body_slice()).ok(), Some(fields));
    }

    #[test]
    fn scram_server_never_panics(first in prop::collection::vec(any::<u8>(), 0..96),
                                 fin in prop::collection::vec(any::<u8>(), 0..160)) {
        let mut s = pg::ScramServer::new(pg::ScramVerifier::mock());
        let _ = s.client_first(&first);
        let _ = s.client_final(&fin);
        let mut s = pg::ScramServer::new(pg::ScramVerifier::mock());
        if s.client_first(b"n,,n=,r=abc").is_ok() {
            let _ = s.client_final(&fin);
        }
    }

    #[test]
    fn text_parsers_never_panic(s in ".{0,120}", resp in prop::collection::vec(any::<u8>(), 0..40)) {
        let _ = pg::ScramVerifier::parse(&s);
        let _ = pg::ScramVerifier::parse(&format!("SCRAM-SHA-256${s}"));
        prop_assert!(!pg::md5_verify_stored(&s, [0; 4], &resp) || s.starts_with("md5"));
    }
}
