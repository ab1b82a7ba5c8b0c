//! Mounting and unmounting: a clear error when FUSE is unavailable, a stale mount left by a crashed daemon is
//! cleared first, and the mount goes away when its handle does.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use fuser::{BackgroundSession, MountOption, SessionACL};
use tracing::{info, warn};

use super::attr::AttrMaker;
use super::filesystem::FuseFs;
use super::ops::Shared;
use crate::bucketfs::BucketFs;
use crate::config::{Account, Config, StorageConfig};

const FUSE_DEVICE: &str = "/dev/fuse";
/// Threads reading requests from the kernel. They only parse a request and hand it to the runtime, so a few
/// are plenty; more than one keeps a large write's copy from delaying the next request.
const DEFAULT_THREADS: usize = 2;

/// How one bucket is shown through its mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Let every local user use the mount (FUSE `allow_other`), with the account's rights; otherwise only the
    /// daemon's own user.
    pub allow_other: bool,
    /// Owner shown for every file and directory.
    pub uid: u32,
    pub gid: u32,
    /// Permission bits shown for files and directories (the account's policy decides what is allowed).
    pub file_mode: u16,
    pub dir_mode: u16,
    /// Mount read-only. An account without W is always mounted read-only, whatever this says.
    pub read_only: bool,
    /// The mount's source as `mount` and `df` show it, e.g. `cosftpd:bucket-1250000000`.
    pub fs_name: String,
    /// Threads reading requests from the kernel (the work itself runs on the tokio runtime).
    pub threads: usize,
}

impl MountOptions {
    /// Defaults: only the daemon's own user, owned by it, 0644/0755, read-write (unless the account is R-only).
    pub fn new(fs_name: impl Into<String>) -> Self {
        Self {
            allow_other: false,
            uid: current_uid(),
            gid: current_gid(),
            file_mode: 0o644,
            dir_mode: 0o755,
            read_only: false,
            fs_name: fs_name.into(),
            threads: DEFAULT_THREADS,
        }
    }

    /// The options of one configured account (`allow_other`, `mount_uid`/`mount_gid`, `file_mode`/`dir_mode`).
    pub fn from_config(config: &Config, account: &Account) -> Self {
        let optional = &config.optional;
        Self {
            allow_other: optional.allow_other,
            uid: optional.mount_uid.unwrap_or_else(current_uid),
            gid: optional.mount_gid.unwrap_or_else(current_gid),
            file_mode: optional.file_mode,
            dir_mode: optional.dir_mode,
            // The core's policy makes an account without W read-only at mount time; nothing to add here.
            read_only: false,
            fs_name: fs_name_of(&account.storage),
            threads: DEFAULT_THREADS,
        }
    }
}

/// `cosftpd:<bucket>` (or the directory, or `memory`).
fn fs_name_of(storage: &StorageConfig) -> String {
    let what = match storage {
        StorageConfig::Cos { bucket, .. } | StorageConfig::S3 { bucket, .. } => bucket.clone(),
        StorageConfig::Fs { root } => root.display().to_string(),
        StorageConfig::Memory => "memory".to_string(),
    };
    format!("cosftpd:{what}")
}

fn current_uid() -> u32 {
    // SAFETY: getuid cannot fail and touches no memory of ours.
    unsafe { libc::getuid() }
}

fn current_gid() -> u32 {
    // SAFETY: getgid cannot fail and touches no memory of ours.
    unsafe { libc::getgid() }
}

/// Why a bucket could not be mounted (or unmounted).
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(
        "{FUSE_DEVICE} is missing: FUSE is not available on this host \
         (load the fuse module, or give the container the device)"
    )]
    NoFuseDevice,
    #[error(
        "mounting {path} is not permitted ({source}); run as root or with CAP_SYS_ADMIN, or install fusermount3 \
         (and set user_allow_other in /etc/fuse.conf for allow_other)"
    )]
    NotPermitted { path: PathBuf, source: io::Error },
    #[error("mount point {path}: {reason}")]
    BadMountPoint { path: PathBuf, reason: String },
    #[error("{path} is already a mount point (is another cosftpd serving it?)")]
    AlreadyMounted { path: PathBuf },
    #[error("{path}: a stale FUSE mount (transport endpoint not connected) could not be cleared: {source}")]
    StaleMount { path: PathBuf, source: io::Error },
    #[error("mounting {path} failed: {source}")]
    Mount { path: PathBuf, source: io::Error },
    #[error("unmounting {path} failed ({source}); it was detached lazily and goes away when no longer in use")]
    Unmount { path: PathBuf, source: io::Error },
}

/// A mounted bucket. Dropping it (or `unmount`) unmounts; a busy mount is detached lazily, so no stale mount
/// is ever left behind by this process.
#[derive(Debug)]
pub struct MountHandle {
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
}

impl MountHandle {
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Unmounts and waits for the session to end (files still open for writing are committed first). Blocks:
    /// from async code, call it in `spawn_blocking`. The runtime given to `mount` must still be running.
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.unmount_now()
    }

    fn unmount_now(&mut self) -> Result<(), MountError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        match session.umount_and_join() {
            Ok(()) => {
                info!(mountpoint = %self.mountpoint.display(), "unmounted");
                Ok(())
            }
            Err(source) => {
                if let Err(e) = detach(&self.mountpoint) {
                    warn!(mountpoint = %self.mountpoint.display(), error = %e, "lazy unmount failed");
                }
                Err(MountError::Unmount {
                    path: self.mountpoint.clone(),
                    source,
                })
            }
        }
    }
}

impl Drop for MountHandle {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_now() {
            warn!("{e}");
        }
    }
}

/// Mounts `fs` at `mountpoint`; requests run as tasks on `runtime`, which must be a multi-thread runtime that
/// outlives the mount. Blocks briefly (the mount and the kernel handshake). See the module documentation for
/// what the mount supports.
pub fn mount(
    fs: BucketFs,
    mountpoint: &Path,
    options: MountOptions,
    runtime: tokio::runtime::Handle,
) -> Result<MountHandle, MountError> {
    if !Path::new(FUSE_DEVICE).exists() {
        return Err(MountError::NoFuseDevice);
    }
    clear_stale_mount(mountpoint)?;
    let mountpoint = usable_mount_point(mountpoint)?;
    let read_only = options.read_only || fs.policy().is_read_only();
    let attrs = AttrMaker {
        uid: options.uid,
        gid: options.gid,
        file_mode: options.file_mode,
        dir_mode: options.dir_mode,
        ttl: fs.settings().metadata_ttl,
    };
    let filesystem = FuseFs::new(Shared::new(fs, attrs), runtime);
    let config = session_config(&options, read_only);
    let session = fuser::Session::new(filesystem, &mountpoint, &config)
        .and_then(fuser::Session::spawn)
        .map_err(|e| classify(&mountpoint, e))?;
    info!(mountpoint = %mountpoint.display(), fs_name = %options.fs_name, read_only, "mounted");
    Ok(MountHandle {
        session: Some(session),
        mountpoint,
    })
}

fn session_config(options: &MountOptions, read_only: bool) -> fuser::Config {
    // A mount source with spaces or commas would garble /proc/mounts and option strings.
    let fs_name: String = options
        .fs_name
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == ',' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::FSName(fs_name),
        MountOption::Subtype("cosftpd".to_string()),
        MountOption::NoDev,
        MountOption::NoSuid,
        if read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    config.acl = if options.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(options.threads.max(1));
    // Each thread gets its own /dev/fuse descriptor, so they do not contend on one.
    config.clone_fd = options.threads > 1;
    config
}

/// A daemon that died without unmounting leaves a mount whose every access fails with ENOTCONN ("Transport
/// endpoint is not connected"); it is detached so the new mount can take its place.
fn clear_stale_mount(path: &Path) -> Result<(), MountError> {
    match std::fs::metadata(path) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            warn!(mountpoint = %path.display(), "clearing a stale FUSE mount");
            detach(path).map_err(|source| MountError::StaleMount {
                path: path.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// The mount point, canonical, after checking it is a directory that nothing is mounted on yet.
fn usable_mount_point(path: &Path) -> Result<PathBuf, MountError> {
    let bad = |reason: String| MountError::BadMountPoint {
        path: path.to_path_buf(),
        reason,
    };
    let canonical = path.canonicalize().map_err(|e| bad(e.to_string()))?;
    let meta = std::fs::metadata(&canonical).map_err(|e| bad(e.to_string()))?;
    if !meta.is_dir() {
        return Err(bad("not a directory".to_string()));
    }
    if is_mount_point(&canonical) {
        return Err(MountError::AlreadyMounted { path: canonical });
    }
    Ok(canonical)
}

/// Whether /proc/self/mountinfo lists `path` as a mount point (field 5, with `\040`-style escapes).
fn is_mount_point(path: &Path) -> bool {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.as_os_str().as_bytes();
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|point| unescape_mount_path(point) == wanted)
}

fn unescape_mount_path(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .and_then(|digits| {
                std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| u8::from_str_radix(d, 8).ok())
            });
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// `umount2(MNT_DETACH)`: gone from the namespace now, released when no longer in use.
fn detach(path: &Path) -> io::Result<()> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::umount2(c_path.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sorts fuser's mount error into what an operator can act on.
fn classify(path: &Path, source: io::Error) -> MountError {
    let path = path.to_path_buf();
    let denied = source.kind() == io::ErrorKind::PermissionDenied
        || matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES));
    if denied {
        return MountError::NotPermitted { path, source };
    }
    if matches!(source.raw_os_error(), Some(libc::ENODEV | libc::ENXIO)) {
        return MountError::NoFuseDevice;
    }
    MountError::Mount { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mount_path("/tmp/a\\040b"), b"/tmp/a b");
        assert_eq!(unescape_mount_path("/x\\134y"), b"/x\\y");
        assert_eq!(unescape_mount_path("/plain"), b"/plain");
        assert_eq!(unescape_mount_path("/odd\\"), b"/odd\\");
    }

    #[test]
    fn the_root_is_a_mount_point_and_a_fresh_directory_is_not() {
        assert!(is_mount_point(Path::new("/")));
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!is_mount_point(dir.path()));
    }

    #[test]
    fn fs_names_and_config() {
        assert_eq!(fs_name_of(&StorageConfig::Memory), "cosftpd:memory");
        let mut options = MountOptions::new("cosftpd:a b,c");
        options.allow_other = true;
        let config = session_config(&options, true);
        assert!(config.mount_options.contains(&MountOption::RO));
        assert!(config
            .mount_options
            .contains(&MountOption::FSName("cosftpd:a_b_c".to_string())));
        assert_eq!(config.acl, SessionACL::All);
    }
}
