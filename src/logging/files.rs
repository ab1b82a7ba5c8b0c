//! The files logging writes, each behind a writer that SIGHUP can point at a freshly opened file: the daily log in
//! `log_dir` and the transfer log `xferlog_file`. Until a file is open (or when none is configured) writes go
//! nowhere.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use tracing_appender::rolling::{RollingFileAppender, Rotation};

use super::LogError;

/// The daily file's name: `cosftpd.log.<date>` in `log_dir`, as before the rolling builder.
const LOG_FILE_PREFIX: &str = "cosftpd.log";

/// A writer whose target can be replaced while writers are in use (the non-blocking worker thread holds a clone).
pub(super) struct Swappable<W> {
    target: Arc<Mutex<Option<W>>>,
}

impl<W> Clone for Swappable<W> {
    fn clone(&self) -> Self {
        Self {
            target: Arc::clone(&self.target),
        }
    }
}

impl<W> Default for Swappable<W> {
    fn default() -> Self {
        Self {
            target: Arc::new(Mutex::new(None)),
        }
    }
}

impl<W> Swappable<W> {
    fn lock(&self) -> MutexGuard<'_, Option<W>> {
        // A writer that panicked mid-write leaves a file that is still a file: keep using it.
        self.target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// From now on, writes go to `target` (or nowhere); the previous target is closed.
    pub(super) fn replace(&self, target: Option<W>) {
        *self.lock() = target;
    }
}

impl<W: Write> Write for Swappable<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.lock().as_mut() {
            Some(target) => target.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.lock().as_mut() {
            Some(target) => target.write_all(buf),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.lock().as_mut() {
            Some(target) => target.flush(),
            None => Ok(()),
        }
    }
}

/// Opens today's log file in `dir` (creating the directory), keeping the newest `keep` daily files when set.
/// Errors instead of panicking when the file cannot be opened (`tracing_appender::rolling::daily` panics).
pub(super) fn open_daily(dir: &Path, keep: Option<usize>) -> Result<RollingFileAppender, LogError> {
    let fail = |source| LogError::Dir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(LOG_FILE_PREFIX)
        .max_log_files(keep.unwrap_or(0))
        .build(dir)
        .map_err(|e| fail(io::Error::other(e)))
}

/// Opens the transfer log for appending (creating its directory and the file).
pub(super) fn open_append(path: &Path) -> Result<File, LogError> {
    let fail = |source| LogError::File {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_follow_the_swapped_target() {
        let first = Arc::new(Mutex::new(Vec::new()));
        let swappable: Swappable<SharedVec> = Swappable::default();
        let mut writer = swappable.clone();
        writer.write_all(b"lost\n").unwrap();
        swappable.replace(Some(SharedVec(Arc::clone(&first))));
        writer.write_all(b"kept\n").unwrap();
        swappable.replace(None);
        writer.write_all(b"lost too\n").unwrap();
        assert_eq!(&*first.lock().unwrap(), b"kept\n");
    }

    struct SharedVec(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedVec {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_unwritable_log_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        // Today's file name taken by a directory: the appender cannot open it.
        let today = chrono::Utc::now().format("%Y-%m-%d");
        std::fs::create_dir(dir.path().join(format!("{LOG_FILE_PREFIX}.{today}"))).unwrap();
        assert!(open_daily(dir.path(), None).is_err());
        assert!(open_daily(&dir.path().join("fresh"), Some(3)).is_ok());
    }
}
