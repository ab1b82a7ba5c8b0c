//! The mount's readahead. The kernel reads a file of a FUSE mount in requests of at most its readahead, which is
//! 128 KiB for a new mount whatever the filesystem asks for at INIT (it may only lower it). Each request is a
//! round trip through the daemon, so a sequential read of 1 GiB is 8,192 of them, one or two in flight: the
//! daemon waits for the kernel, the kernel for the daemon, whatever the store could deliver. Raised to 1 MiB
//! (the largest request the mount accepts, see `MAX_WRITE` in `filesystem.rs`), the same read is 1,024 requests,
//! several in flight.
//!
//! The value lives in `/sys/class/bdi/<device>/read_ahead_kb` and only root may write it; a daemon that may not
//! leaves the kernel's value, and a larger value someone set stays. It must be written after the kernel has
//! processed the INIT reply (which would lower it again), so it is done on the first request after INIT, before
//! any file is opened (a file takes the readahead it finds when it is opened).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Once;

use tracing::{debug, info};

use super::mountinfo;

/// The readahead the mount asks for, in KiB: the largest request it accepts.
pub(crate) const READ_AHEAD_KB: u64 = 1024;

/// Raises the readahead of the mount at `mountpoint` once, on the first request after INIT.
#[derive(Debug)]
pub(crate) struct ReadAhead {
    mountpoint: PathBuf,
    once: Once,
}

impl ReadAhead {
    pub(crate) fn new(mountpoint: &Path) -> Self {
        Self {
            mountpoint: mountpoint.to_path_buf(),
            once: Once::new(),
        }
    }

    /// Cheap after the first call. Reads only `/proc` and `/sys`, never the mount itself (the caller may be the
    /// thread that answers the mount's requests).
    pub(crate) fn ensure(&self) {
        self.once
            .call_once(|| match raise(&self.mountpoint, READ_AHEAD_KB) {
                Ok(Some((was, now))) => {
                    info!(mountpoint = %self.mountpoint.display(), was_kb = was, now_kb = now, "readahead raised")
                }
                Ok(None) => {}
                Err(e) => {
                    debug!(mountpoint = %self.mountpoint.display(), error = %e, "readahead left as the kernel set it")
                }
            });
    }
}

/// Sets the readahead of the cosftpd mount at `mountpoint` to `kib` unless it is that large already; the values
/// before and after when it changed.
fn raise(mountpoint: &Path, kib: u64) -> io::Result<Option<(u64, u64)>> {
    let entry = mountinfo::mounted_at(mountpoint)?
        .filter(|e| e.fs_type == super::mount::FS_TYPE)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the mount is not listed"))?;
    let path = Path::new("/sys/class/bdi")
        .join(&entry.device)
        .join("read_ahead_kb");
    let was: u64 = std::fs::read_to_string(&path)?
        .trim()
        .parse()
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
    if was >= kib {
        return Ok(None);
    }
    std::fs::write(&path, kib.to_string())?;
    Ok(Some((was, kib)))
}
