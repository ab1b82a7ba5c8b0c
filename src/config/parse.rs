//! INI text → `Config`. (Being written: see issue 3.)

use super::Config;
use std::path::Path;

/// One problem in the file, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[{section}] {key}: {message}")]
pub struct ConfigError {
    pub section: String,
    pub key: String,
    pub message: String,
}

/// Every problem found in the file, reported together.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

pub(super) fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let _ = path;
    unimplemented_yet()
}

pub(super) fn parse_str(text: &str) -> Result<Config, ConfigErrors> {
    let _ = text;
    unimplemented_yet()
}

fn unimplemented_yet() -> Result<Config, ConfigErrors> {
    Err(ConfigErrors {
        errors: vec![ConfigError {
            section: String::new(),
            key: String::new(),
            message: "config parsing is not written yet".into(),
        }],
    })
}
