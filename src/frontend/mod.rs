//! Client-facing protocol front ends.

mod accept;
pub mod mysql;
pub mod pg;
