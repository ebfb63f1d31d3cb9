//! The PostgreSQL front end: listener, startup and authentication, and the session loop.

mod batch;
mod cancel;
mod context;
mod error;
mod link;
mod listener;
mod maintain;
mod relay;
mod route;
mod send;
mod session;
mod startup;
mod vars;

pub use cancel::{CancelRegistry, CancelTarget};
pub use context::ClusterContext;
pub use error::FrontendError;
pub use listener::serve;
pub use maintain::maintain_pools;
