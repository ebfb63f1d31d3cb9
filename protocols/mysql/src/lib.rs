//! Sans-I/O MySQL client/server protocol: packet framing, typed views of the messages the
//! proxy inspects, encoders for the messages it writes, and the password auth plugins.
//!
//! Nothing here performs I/O. `decode_packet` takes a `BytesMut` the caller filled,
//! returns `Ok(None)` until a whole logical packet is present, bounds the payload by a
//! caller-supplied maximum, and keeps the raw wire bytes so relayed packets are forwarded
//! without re-encoding. Message parsers work on a complete payload and never panic.

#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod error;
pub mod frame;
pub mod lenenc;
mod reader;
pub mod server;

pub use auth::*;
pub use client::*;
pub use error::*;
pub use frame::*;
pub use lenenc::*;
pub use server::*;

/// Protocol constants shared with the rest of the Rust MySQL ecosystem.
pub use mysql_common::constants::{CapabilityFlags, Command, StatusFlags};
