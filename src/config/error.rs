//! Config errors: every one names the file, the key and the reason.

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// Path of the file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the model.
    #[error("{file}:{line}: {key}: {reason}")]
    Syntax {
        /// Path of the file.
        file: String,
        /// 1-based line of the problem (0 when unknown).
        line: usize,
        /// Dotted key path, or "(document)".
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A value is well-formed but not acceptable.
    #[error("{file}: {key}: {reason}")]
    Invalid {
        /// Path of the file.
        file: String,
        /// Dotted key path such as `clusters[0].nodes[1].weight`.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    /// Turns a toml error into one naming the file, line and key.
    pub(crate) fn from_toml(file: &str, text: &str, e: toml::de::Error) -> Self {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0);
        // toml's message starts with a source excerpt; the last line holds the reason.
        let reason = e.message().trim().to_string();
        let key = key_at_line(text, line).unwrap_or_else(|| "(document)".to_string());
        ConfigError::Syntax {
            file: file.to_string(),
            line,
            key,
            reason,
        }
    }
}

/// Best-effort key name for a line: the `key =` on that line, prefixed by its table header.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    if line == 0 {
        return None;
    }
    let mut table = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            table = t.trim_matches(|c| c == '[' || c == ']').to_string();
        }
        if i + 1 == line {
            let key = t
                .split('=')
                .next()
                .map(str::trim)
                .filter(|k| !k.is_empty() && !k.starts_with('['));
            return Some(match (table.is_empty(), key) {
                (true, Some(k)) => k.to_string(),
                (false, Some(k)) => format!("{table}.{k}"),
                (_, None) => table,
            });
        }
    }
    None
}
