//! switchyard: a database-aware load-balancing proxy for PostgreSQL (MySQL and TCP to come).
//!
//! Data flows listener -> session -> router -> pool -> backend; monitors publish cluster
//! snapshots that sessions read lock-free.

pub mod admin;
pub mod backend;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod frontend;
pub mod live;
pub mod monitor;
pub mod net;
pub mod observe;
pub mod pool;
pub mod route;
pub mod server;
pub mod tls;
