//! Pins the public API the rest of switchyard is written against: if a signature drifts,
//! this fails to compile rather than the proxy crate.

use bytes::{Bytes, BytesMut};
use switchyard_postgres::*;

type R<T> = Result<T, ProtocolError>;

#[test]
#[allow(clippy::type_complexity)] // the point is to spell the types out
fn signatures() {
    let _: fn(&mut BytesMut, usize) -> R<Option<Frame>> = decode_frame;
    let _: fn(&[u8], usize) -> R<Option<(u8, usize)>> = peek_header;
    let _: fn(&Frame) -> Bytes = Frame::body;
    let _: fn(&Frame) -> usize = Frame::len;
    let _: fn(&mut BytesMut, usize) -> R<Option<StartupPacket>> = decode_startup;

    let _: fn(&[u8]) -> R<&str> = query_text;
    let _: fn(&[u8]) -> R<Parse<'_>> = parse_parse;
    let _: fn(&[u8]) -> R<Bind<'_>> = parse_bind;
    let _: fn(&[u8]) -> R<Target<'_>> = parse_describe;
    let _: fn(&[u8]) -> R<Target<'_>> = parse_close;
    let _: fn(&[u8]) -> R<Execute<'_>> = parse_execute;
    let _: fn(&[u8]) -> R<&[u8]> = password_text;
    let _: fn(&[u8]) -> R<SaslInitial<'_>> = parse_sasl_initial;

    let _: fn(&[u8]) -> R<u8> = ready_status;
    let _: fn(&[u8]) -> R<ParameterStatus<'_>> = parse_parameter_status;
    let _: fn(&[u8]) -> R<(i32, i32)> = parse_backend_key;
    let _: fn(&[u8]) -> R<&str> = command_tag;
    let _: fn(&[u8]) -> R<ErrorFields> = parse_error_fields;
    let _: fn(&[u8]) -> R<Authentication> = parse_authentication;

    let _: fn(&str, &str, &str) -> Bytes = error_response;
    let _: fn(&ErrorFields) -> Bytes = error_response_fields;
    let _: fn(&str, &str, &str) -> Bytes = notice_response;
    let _: fn() -> Bytes = auth_ok;
    let _: fn() -> Bytes = auth_cleartext;
    let _: fn([u8; 4]) -> Bytes = auth_md5;
    let _: fn(&[&str]) -> Bytes = auth_sasl;
    let _: fn(&[u8]) -> Bytes = auth_sasl_continue;
    let _: fn(&[u8]) -> Bytes = auth_sasl_final;
    let _: fn(&str, &str) -> Bytes = parameter_status;
    let _: fn(i32, i32) -> Bytes = backend_key_data;
    let _: fn(u8) -> Bytes = ready_for_query;
    let _: fn(u16, &[&str]) -> Bytes = negotiate_protocol_version;
    let _: fn() -> Bytes = ssl_refused;
    let _: fn(&[(&str, &str)]) -> Bytes = startup_message;
    let _: fn(&[u8]) -> Bytes = password_message;
    let _: fn(&str, &[u8]) -> Bytes = sasl_initial_response;
    let _: fn(&[u8]) -> Bytes = sasl_response;
    let _: fn(&str) -> Bytes = query;
    let _: fn(&str, &str, &[u32]) -> Bytes = parse;
    let _: fn(u8, &str) -> Bytes = close;
    let _: fn() -> Bytes = sync;
    let _: fn() -> Bytes = flush;
    let _: fn() -> Bytes = terminate;
    let _: fn(i32, i32) -> Bytes = cancel_request;

    let _: fn(&str, &[u8], u32) -> ScramVerifier = ScramVerifier::from_password;
    let _: fn(&str) -> ScramVerifier = ScramVerifier::generate;
    let _: fn(&str) -> Result<ScramVerifier, AuthError> = ScramVerifier::parse;
    let _: fn(ScramVerifier) -> ScramServer = ScramServer::new;
    let _: fn(&mut ScramServer, &[u8]) -> Result<Vec<u8>, AuthError> = ScramServer::client_first;
    let _: fn(&mut ScramServer, &[u8]) -> Result<Vec<u8>, AuthError> = ScramServer::client_final;
    let _: fn(&str, &str, [u8; 4], &[u8]) -> bool = md5_verify;
    let _: fn(&str, Option<&str>) -> ClientAuth = ClientAuth::new;
    let _: fn(&mut ClientAuth, &Authentication) -> Result<Option<Bytes>, AuthError> =
        ClientAuth::respond;

    let v = ScramVerifier::mock();
    let _: (u32, &Vec<u8>, [u8; 32], [u8; 32]) =
        (v.iterations, &v.salt, v.stored_key, v.server_key);
    let f = ErrorFields::default();
    let _: (&String, &String, &String, &Option<String>, &Option<String>) =
        (&f.severity, &f.code, &f.message, &f.detail, &f.hint);
    let _ = [
        ProtocolError::TooLarge { len: 1, max: 0 },
        ProtocolError::BadLength(0),
        ProtocolError::Malformed { what: "", why: "" },
        ProtocolError::UnsupportedVersion { major: 2, minor: 0 },
    ];
    let _ = [
        AuthError::InvalidPassword,
        AuthError::Malformed(""),
        AuthError::Mechanism(String::new()),
        AuthError::Unsupported(String::new()),
        AuthError::NoPassword,
        AuthError::ServerSignature,
    ];
    let _ = [
        StartupPacket::SslRequest,
        StartupPacket::GssEncRequest,
        StartupPacket::Cancel { pid: 0, secret: 0 },
        StartupPacket::Startup {
            major: 3,
            minor: 0,
            params: vec![],
        },
    ];
    let _ = [
        Authentication::Ok,
        Authentication::CleartextPassword,
        Authentication::Md5Password { salt: [0; 4] },
        Authentication::Sasl { mechanisms: vec![] },
        Authentication::SaslContinue { data: Bytes::new() },
        Authentication::SaslFinal { data: Bytes::new() },
        Authentication::Unsupported(0),
    ];
}
