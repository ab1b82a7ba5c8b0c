//! Mounting and unmounting: a clear error when FUSE is unavailable, a stale mount left by a crashed daemon is
//! cleared first (only cosftpd's own: another program's mount is never touched), a non-empty directory is not
//! mounted over unless asked for, and the mount goes away when its handle does.
//!
//! Local users: the kernel checks every access against the owner and mode the mount shows
//! (`default_permissions`), so `mount_uid`/`mount_gid` and `file_mode`/`dir_mode` are what a local user other
//! than root may do; the account's policy (the core) still refuses what the account may not do, root included.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use fuser::{BackgroundSession, MountOption, SessionACL};
use tracing::{info, warn};

use super::attr::AttrMaker;
use super::filesystem::FuseFs;
use super::mountinfo::{self, MountEntry};
use super::ops::Shared;
use super::readahead::ReadAhead;
use crate::bucketfs::BucketFs;
use crate::config::{Account, Config, StorageConfig};

const FUSE_DEVICE: &str = "/dev/fuse";
/// The FUSE subtype of every cosftpd mount: the kernel lists it as type `fuse.cosftpd`, which is how a stale
/// mount is known to be ours (and so safe to clear).
const FS_SUBTYPE: &str = "cosftpd";
pub(crate) const FS_TYPE: &str = "fuse.cosftpd";
/// Threads reading requests from the kernel. They only parse a request and hand it to the runtime, so a few
/// are plenty; more than one keeps a large write's copy from delaying the next request.
const DEFAULT_THREADS: usize = 2;

/// How one bucket is shown through its mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Let other local users use the mount (FUSE `allow_other`), as owner, group and mode allow; otherwise only
    /// the daemon's own user.
    pub allow_other: bool,
    /// Owner shown for every file and directory; the kernel checks local users' access against it.
    pub uid: u32,
    pub gid: u32,
    /// Permission bits shown for files and directories, and enforced by the kernel for local users other than
    /// root (bits the account's policy rules out are not shown: no `w` on a read-only account).
    pub file_mode: u16,
    pub dir_mode: u16,
    /// Mount over a directory that has files in it (they are hidden while mounted); otherwise refused.
    pub nonempty: bool,
    /// Mount read-only. An account without W is always mounted read-only, whatever this says.
    pub read_only: bool,
    /// The mount's source as `mount` and `df` show it, e.g. `cosftpd:bucket-1250000000`.
    pub fs_name: String,
    /// Threads reading requests from the kernel (the work itself runs on the tokio runtime).
    pub threads: usize,
}

impl MountOptions {
    /// Defaults: only the daemon's own user, owned by it, 0644/0755, read-write (unless the account is R-only),
    /// an empty mount point.
    pub fn new(fs_name: impl Into<String>) -> Self {
        Self {
            allow_other: false,
            uid: current_uid(),
            gid: current_gid(),
            file_mode: 0o644,
            dir_mode: 0o755,
            nonempty: false,
            read_only: false,
            fs_name: fs_name.into(),
            threads: DEFAULT_THREADS,
        }
    }

    /// The options of one configured account (`allow_other`, `mount_uid`/`mount_gid`, `file_mode`/`dir_mode`,
    /// `mount_nonempty`).
    pub fn from_config(config: &Config, account: &Account) -> Self {
        let optional = &config.optional;
        Self {
            allow_other: optional.allow_other,
            uid: optional.mount_uid.unwrap_or_else(current_uid),
            gid: optional.mount_gid.unwrap_or_else(current_gid),
            file_mode: optional.file_mode,
            dir_mode: optional.dir_mode,
            nonempty: optional.mount_nonempty,
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
    #[error("{path} is already mounted by cosftpd ({from}): is another cosftpd serving it?")]
    AlreadyMounted { path: PathBuf, from: String },
    #[error(
        "{path} has a {fs_type} filesystem ({from}) mounted on it; cosftpd neither mounts over nor unmounts \
         another program's mount: unmount it, or choose another home_dir"
    )]
    ForeignMount {
        path: PathBuf,
        fs_type: String,
        /// The mount's source, as `mount` shows it.
        from: String,
    },
    #[error(
        "{path} is a stale {fs_type} mount ({from}) of another program (transport endpoint is not \
         connected); cosftpd clears only its own stale mounts ({FS_TYPE}): unmount it with `fusermount3 -u` or \
         `umount -l`"
    )]
    ForeignStaleMount {
        path: PathBuf,
        fs_type: String,
        from: String,
    },
    #[error("{path}: a stale cosftpd mount (transport endpoint is not connected) could not be cleared: {source}")]
    StaleMount { path: PathBuf, source: io::Error },
    #[error(
        "{path} is not empty: mounting the bucket there would hide its files; empty the directory, or set \
         mount_nonempty = true in [OPTIONAL] to mount over them"
    )]
    NotEmpty { path: PathBuf },
    #[error("mounting {path} failed: {source}")]
    Mount { path: PathBuf, source: io::Error },
    #[error("unmounting {path} failed ({source}); it was detached lazily and goes away when no longer in use")]
    Unmount { path: PathBuf, source: io::Error },
}

impl MountError {
    /// This host cannot mount FUSE at all (no device, no permission): nothing about the mount point is wrong.
    pub fn is_fuse_unavailable(&self) -> bool {
        matches!(
            self,
            MountError::NoFuseDevice | MountError::NotPermitted { .. }
        )
    }
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
    let mountpoint = usable_mount_point(mountpoint, options.nonempty)?;
    let read_only = options.read_only || fs.policy().is_read_only();
    let attrs = AttrMaker::new(
        options.uid,
        options.gid,
        options.file_mode,
        options.dir_mode,
        fs.policy(),
        fs.settings().metadata_ttl,
    );
    let filesystem = FuseFs::new(Shared::new(fs, attrs), runtime, ReadAhead::new(&mountpoint));
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
        // As a kernel option (fuser's `Subtype` reaches only fusermount): the mount is listed as `fuse.cosftpd`
        // whichever way it is made, which is how a later start knows a stale mount is its own.
        MountOption::CUSTOM(format!("subtype={FS_SUBTYPE}")),
        // The kernel checks each local user's access against the owner and mode in the attributes.
        MountOption::DefaultPermissions,
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

/// A daemon that died without unmounting (killed, crashed) leaves a mount whose every request fails with ENOTCONN
/// ("Transport endpoint is not connected"). If it is cosftpd's own (type `fuse.cosftpd`), it is detached so the
/// new mount can take its place; another program's is left alone and refused. A live mount is left for
/// `usable_mount_point` to refuse.
fn clear_stale_mount(path: &Path) -> Result<(), MountError> {
    let point = mount_point_of(path)?;
    let entry = match mountinfo::mounted_at(&point) {
        Ok(entry) => entry,
        // Nothing can be known to be ours: a stale mount stays, and the checks that follow say so.
        Err(e) => {
            warn!(error = %e, "cannot read /proc/self/mountinfo: stale mounts are not cleared");
            return Ok(());
        }
    };
    let Some(MountEntry {
        fs_type, source, ..
    }) = entry
    else {
        return Ok(());
    };
    if !fs_type.starts_with("fuse") || !is_disconnected(&point) {
        return Ok(());
    }
    if fs_type != FS_TYPE {
        return Err(MountError::ForeignStaleMount {
            path: point,
            fs_type,
            from: source,
        });
    }
    warn!(
        mountpoint = %point.display(),
        %source,
        "clearing a stale cosftpd mount (left by a cosftpd that was killed or crashed)"
    );
    detach(&point).map_err(|source| MountError::StaleMount {
        path: point.clone(),
        source,
    })
}

/// Where `path` leads: canonical when it can be resolved; a stale mount cannot be, but its parent can.
fn mount_point_of(path: &Path) -> Result<PathBuf, MountError> {
    let unresolved = |e: io::Error| MountError::BadMountPoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    match path.canonicalize() {
        Ok(point) => Ok(point),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            match (path.parent(), path.file_name()) {
                (Some(parent), Some(name)) => {
                    Ok(parent.canonicalize().map_err(unresolved)?.join(name))
                }
                _ => Err(unresolved(e)),
            }
        }
        // Missing or not a directory: `usable_mount_point` says so.
        Err(_) => Ok(path.to_path_buf()),
    }
}

/// Whether the FUSE mount at `path` has lost its daemon. `statfs` always goes to the daemon, where `stat` may be
/// answered from the kernel's attribute cache for a while after the daemon died.
fn is_disconnected(path: &Path) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c_path` is NUL-terminated and `buf` is large enough for the struct statfs(2) fills.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), buf.as_mut_ptr()) };
    rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOTCONN)
}

/// The mount point, canonical, after checking it is a directory that nothing is mounted on yet and that has no
/// files to hide (unless `nonempty`).
fn usable_mount_point(path: &Path, nonempty: bool) -> Result<PathBuf, MountError> {
    let bad = |reason: String| MountError::BadMountPoint {
        path: path.to_path_buf(),
        reason,
    };
    let canonical = path.canonicalize().map_err(|e| bad(e.to_string()))?;
    let meta = std::fs::metadata(&canonical).map_err(|e| bad(e.to_string()))?;
    if !meta.is_dir() {
        return Err(bad("not a directory".to_string()));
    }
    match mountinfo::mounted_at(&canonical) {
        Ok(Some(MountEntry {
            fs_type, source, ..
        })) if fs_type == FS_TYPE => {
            return Err(MountError::AlreadyMounted {
                path: canonical,
                from: source,
            })
        }
        Ok(Some(MountEntry {
            fs_type, source, ..
        })) => {
            return Err(MountError::ForeignMount {
                path: canonical,
                fs_type,
                from: source,
            })
        }
        Ok(None) => {}
        // Without /proc the kernel's own check remains (mounting over a mount point is allowed, but the
        // emptiness check below still protects the files).
        Err(e) => warn!(error = %e, "cannot read /proc/self/mountinfo"),
    }
    let mut entries = std::fs::read_dir(&canonical).map_err(|e| bad(e.to_string()))?;
    if !nonempty && entries.next().is_some() {
        return Err(MountError::NotEmpty { path: canonical });
    }
    Ok(canonical)
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
    fn a_directory_with_files_is_refused_unless_nonempty() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(usable_mount_point(dir.path(), false).is_ok());
        std::fs::write(dir.path().join("kept.txt"), b"x").expect("write");
        let refused = usable_mount_point(dir.path(), false).unwrap_err();
        assert!(matches!(refused, MountError::NotEmpty { .. }), "{refused}");
        assert!(refused.to_string().contains("mount_nonempty"), "{refused}");
        assert!(usable_mount_point(dir.path(), true).is_ok());
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
        assert!(config
            .mount_options
            .contains(&MountOption::DefaultPermissions));
        assert!(config
            .mount_options
            .contains(&MountOption::CUSTOM("subtype=cosftpd".to_string())));
    }
}
