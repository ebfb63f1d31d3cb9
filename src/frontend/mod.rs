//! Client-facing protocol front ends.

pub(crate) mod accept;
pub mod clients;
pub mod mysql;
pub mod pg;
