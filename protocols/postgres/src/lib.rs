//! Sans-I/O PostgreSQL v3 wire protocol: framing, typed views of the messages the proxy
//! inspects, encoders for the messages it writes, and SCRAM/md5 authentication.
//!
//! Nothing here performs I/O. Decoders take a `BytesMut` the caller filled, return
//! `Ok(None)` until a whole message is present, bound every length by a caller-supplied
//! maximum, and keep the raw bytes so relayed messages are forwarded without re-encoding.

#![warn(missing_docs)]

pub mod auth;
pub mod backend;
pub mod build;
pub mod error;
pub mod frame;
pub mod frontend;
mod reader;
pub mod startup;

pub use auth::*;
pub use backend::*;
pub use build::*;
pub use error::*;
pub use frame::*;
pub use frontend::*;
pub use startup::*;
