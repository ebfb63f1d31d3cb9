//! Configuration: the TOML model, its validation and loading from a file.

mod error;
mod health;
mod model;
mod validate;

#[cfg(test)]
mod tests;

pub use error::ConfigError;
pub use health::{FailoverConfig, FailoverMode, ReadYourWrites};
pub use model::MetricsConfig;
pub use model::{
    AdminConfig, AdminRole, AdminUser, AuthMethod, ClusterConfig, Config, General, NodeConfig,
    PoolMode, Protocol, ReplicaFallback, Role, UserConfig,
};

use std::path::Path;

impl Config {
    /// Reads, parses and validates a config file; errors name the file, the key and the reason.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates config text; `file` is only used in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, e))?;
        config.validate(file)
    }
}
