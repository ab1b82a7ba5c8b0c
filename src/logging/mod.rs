//! Logging: `log_level` from the config (RUST_LOG overrides), stderr (the journal under systemd) and a daily file in
//! `log_dir`, as text or JSON, one line per event; and the transfer log, on by default at INFO in the same outputs
//! and, with `xferlog_file`, in a file of its own (`xferlog`).
//!
//! SIGHUP (`LogHandle::reload`) applies a new `log_level`, reopens the log file (a new `log_dir` or `log_keep_days`
//! included) and the transfer log file (a new path or format included); `log_format` needs a restart.

mod chain;
mod files;
mod oneline;
mod xferlog;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::RollingFileAppender;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{filter, fmt, reload, EnvFilter, Layer, Registry};

use crate::config::{Config, LogFormat, XferlogFormat};

pub use chain::ErrorChain;
pub use xferlog::TARGET as XFERLOG_TARGET;

use files::Swappable;
use oneline::OneLine;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log_dir {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("xferlog_file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

/// What the config says about logging.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    pub level: tracing::Level,
    pub format: LogFormat,
    pub dir: Option<PathBuf>,
    pub keep_days: Option<usize>,
    pub xferlog_file: Option<PathBuf>,
    pub xferlog_format: XferlogFormat,
}

impl LogSettings {
    pub fn from_config(config: &Config) -> Self {
        let o = &config.optional;
        Self {
            level: o.log_level,
            format: o.log_format,
            dir: o.log_dir.clone(),
            keep_days: o.log_keep_days,
            xferlog_file: o.xferlog_file.clone(),
            xferlog_format: o.xferlog_format,
        }
    }
}

/// Keeps the file writers flushing; drop it last. `handle` reloads.
pub struct Logging {
    _guards: Vec<WorkerGuard>,
    handle: LogHandle,
}

impl Logging {
    pub fn handle(&self) -> LogHandle {
        self.handle.clone()
    }
}

/// Changes the running logging on SIGHUP. Cheap to clone.
#[derive(Clone)]
pub struct LogHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    filter: reload::Handle<EnvFilter, Registry>,
    log_file: Swappable<RollingFileAppender>,
    xferlog_file: Swappable<std::fs::File>,
    xferlog_format: Arc<Mutex<XferlogFormat>>,
}

/// The filter of the log outputs: `log_level` for cosftpd, warnings of dependencies, and the transfer log at INFO
/// whatever `log_level` says (it is the record of what users did). RUST_LOG replaces all of it.
fn filter(level: tracing::Level) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("warn,cosftpd={level},{}=info", xferlog::TARGET))
    })
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The log output in the configured format. One layer writes each event to stderr and to the log file: two fmt
/// layers would each add a span's recorded fields (the session's `user`) to the one copy the span keeps, and both
/// outputs would show them twice (`user="u" user="u"`).
fn output<W>(format: LogFormat, writer: W, ansi: bool) -> BoxedLayer
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => fmt::layer()
            .with_writer(OneLine(writer))
            .with_ansi(ansi)
            .with_target(false)
            .boxed(),
        // JSON escapes line breaks itself: one object per line. The event's fields at the top level, the span's
        // (peer, user, op) under "span".
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
    }
}

/// Installs the global subscriber and opens the files the settings name.
pub fn init(settings: &LogSettings) -> Result<Logging, LogError> {
    use std::io::IsTerminal;
    let mut guards = Vec::new();
    let (filter, filter_handle) = reload::Layer::new(filter(settings.level));

    let log_file = Swappable::default();
    if let Some(dir) = &settings.dir {
        log_file.replace(Some(files::open_daily(dir, settings.keep_days)?));
    }
    let (log_writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .finish(log_file.clone());
    guards.push(guard);

    let xferlog_file = Swappable::default();
    if let Some(path) = &settings.xferlog_file {
        xferlog_file.replace(Some(files::open_append(path)?));
    }
    let (xferlog_writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .finish(xferlog_file.clone());
    guards.push(guard);
    let xferlog_format = Arc::new(Mutex::new(settings.xferlog_format));

    // Colours only for a terminal, and not when the same bytes go to a file as well.
    let ansi = std::io::stderr().is_terminal() && settings.dir.is_none();
    let outputs =
        output(settings.format, std::io::stderr.and(log_writer), ansi).with_filter(filter);
    let transfers = xferlog::XferlogLayer::new(xferlog_writer, Arc::clone(&xferlog_format))
        .with_filter(filter::Targets::new().with_target(xferlog::TARGET, tracing::Level::INFO));
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(outputs)
        .with(transfers)
        .try_init();
    Ok(Logging {
        _guards: guards,
        handle: LogHandle {
            inner: Arc::new(HandleInner {
                filter: filter_handle,
                log_file,
                xferlog_file,
                xferlog_format,
            }),
        },
    })
}

impl LogHandle {
    /// Applies `new`: the level, the log file (reopened, also where it is the same: logrotate may have moved it),
    /// the transfer log file and format. Nothing changes when a file cannot be opened. `format` is not changed
    /// (a restart: the daemon's reload plan keeps it).
    pub fn reload(&self, new: &LogSettings) -> Result<(), LogError> {
        let log_file = match &new.dir {
            Some(dir) => Some(files::open_daily(dir, new.keep_days)?),
            None => None,
        };
        let xferlog_file = match &new.xferlog_file {
            Some(path) => Some(files::open_append(path)?),
            None => None,
        };
        let inner = &self.inner;
        inner.log_file.replace(log_file);
        inner.xferlog_file.replace(xferlog_file);
        *inner
            .xferlog_format
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = new.xferlog_format;
        if let Err(e) = inner.filter.reload(filter(new.level)) {
            tracing::warn!(error = %e, "log_level not changed");
        }
        Ok(())
    }
}
