//! Logging: `log_level` from the config (RUST_LOG overrides), stderr in the foreground, and a daily-rotated file
//! in `log_dir` that is appended to, never truncated at start.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Keeps the file writer flushing; drop it last.
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log_dir {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
}

/// Installs the global subscriber. `level` is the config's; dependencies are kept at warn unless RUST_LOG says
/// otherwise, so a debug log is about cosftpd and not about HTTP internals.
pub fn init(level: tracing::Level, log_dir: Option<&Path>) -> Result<LogGuard, LogError> {
    let filter = || {
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(format!("warn,cosftpd={level}")))
    };
    use std::io::IsTerminal;
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_filter(filter());
    let (file, guard) = match log_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| LogError::Dir {
                path: dir.display().to_string(),
                source,
            })?;
            let appender = tracing_appender::rolling::daily(dir, "cosftpd.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(filter());
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    Ok(LogGuard { _file: guard })
}
