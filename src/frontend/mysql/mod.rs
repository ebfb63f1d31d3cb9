//! The MySQL/MariaDB front end: listener, handshake and authentication, and the command loop
//! that routes each command to the primary or a replica and relays the response.

mod context;
mod cursor;
pub(crate) mod handshake;
mod link;
mod listener;
mod relay;
mod reset;
mod route;
mod ryw;
mod session;
mod stmt;
mod vars;

pub use context::MyContext;
pub use listener::serve;

use switchyard_mysql as my;

/// Error code for "no node can take this" (as ProxySQL's 9001): codes 2000-2999 are the client
/// library's own, and clients reject them from a server as a malformed packet.
pub(crate) const NO_NODE: u16 = 9001;
/// ER_CONNECTION_KILLED: the server connection running the command was lost; retry is safe
/// for the session (the statement's outcome on the server is unknown).
pub(crate) const CONNECTION_LOST: u16 = 1927;

/// An ERR packet payload (the caller frames it with the right sequence id).
pub(crate) fn err_payload(code: u16, sql_state: &str, message: &str) -> bytes::Bytes {
    let mut state = [b'H', b'Y', b'0', b'0', b'0'];
    if sql_state.len() == 5 {
        state.copy_from_slice(sql_state.as_bytes());
    }
    my::ErrPacket::new(code, state, message.as_bytes().to_vec()).encode()
}

/// An OK packet payload with `status`.
pub(crate) fn ok_payload(status: my::StatusFlags) -> bytes::Bytes {
    my::OkPacket {
        status,
        ..Default::default()
    }
    .encode(crate::backend::mysql::proxy_capabilities())
}
