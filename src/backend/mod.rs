//! Server connections: connect, authenticate, and the raw halves the session relays over.

mod connect;
mod error;
pub mod mysql;

pub use connect::{connect, set_param, ConnectSpec, ServerConn, ServerParams};
pub use error::BackendError;
