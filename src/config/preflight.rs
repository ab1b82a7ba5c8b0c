//! Checks that need the machine rather than the file: `masquerade_address` resolves, `log_dir` and `xferlog_file`
//! can be written.
//!
//! `check-config` runs them, and so do `serve` and `mount` before they start anything, so that a config that
//! passes `check-config` does not fail later on the same things (an unresolvable masquerade name used to stop
//! `serve` only after the mounts were up; an unusable log directory stopped it with a panic). They have no side
//! effects: a missing `log_dir` is not created here, only checked to be creatable.

use std::ffi::CString;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::parse::{problem, ConfigError, ConfigErrors, NETWORK, OPTIONAL};
use super::Config;

/// Every problem found, with the config's warnings, or `Ok` when there is none.
pub(super) fn check(config: &Config) -> Result<(), ConfigErrors> {
    let mut errors: Vec<ConfigError> = Vec::new();
    if let Some(name) = &config.network.masquerade_address {
        if let Err(why) = resolve(name) {
            errors.push(problem(
                NETWORK,
                "masquerade_address",
                format!("{name} does not resolve: {why}"),
            ));
        }
    }
    if let Some(dir) = &config.optional.log_dir {
        if let Err(why) = check_log_dir(dir) {
            errors.push(problem(
                OPTIONAL,
                "log_dir",
                format!("{} {why}", dir.display()),
            ));
        }
    }
    if let Some(file) = &config.optional.xferlog_file {
        if let Err(why) = check_log_file(file) {
            errors.push(problem(
                OPTIONAL,
                "xferlog_file",
                format!("{} {why}", file.display()),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors {
            errors,
            warnings: config.warnings.clone(),
        })
    }
}

/// An IP address, or a name that resolves to at least one (the FTP server resolves it again when it starts).
fn resolve(name: &str) -> Result<(), String> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let mut addresses = (name, 0).to_socket_addrs().map_err(|e| e.to_string())?;
    match addresses.next() {
        Some(_) => Ok(()),
        None => Err("no address found".into()),
    }
}

/// The directory exists and can be written, or it can be created (logging creates it at start).
fn check_log_dir(dir: &Path) -> Result<(), String> {
    // Relative to the directory cosftpd runs in, as logging takes it.
    let dir = std::path::absolute(dir).map_err(|e| format!("cannot be checked: {e}"))?;
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => writable(&dir).map_err(|e| format!("cannot be written: {e}")),
        Ok(_) => Err("exists but is not a directory".into()),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            creatable(&dir)
        }
        Err(e) => Err(format!("cannot be checked: {e}")),
    }
}

/// A file that can be appended to, or created in a directory that exists or can be created (logging creates it).
fn check_log_file(file: &Path) -> Result<(), String> {
    let file = std::path::absolute(file).map_err(|e| format!("cannot be checked: {e}"))?;
    match std::fs::metadata(&file) {
        Ok(meta) if meta.is_dir() => Err("is a directory".into()),
        Ok(_) => std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .map(drop)
            .map_err(|e| format!("cannot be written: {e}")),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            match file.parent() {
                Some(dir) => check_log_dir(dir).map_err(|why| {
                    format!("cannot be created: its directory {} {why}", dir.display())
                }),
                None => Err("has no directory".into()),
            }
        }
        Err(e) => Err(format!("cannot be checked: {e}")),
    }
}

/// Its closest existing ancestor is a directory that can be written.
fn creatable(dir: &Path) -> Result<(), String> {
    for ancestor in dir.ancestors().skip(1) {
        match std::fs::metadata(ancestor) {
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                continue
            }
            Err(e) => return Err(format!("cannot be created: {}: {e}", ancestor.display())),
            Ok(meta) if !meta.is_dir() => {
                return Err(format!(
                    "cannot be created: {} is not a directory",
                    ancestor.display()
                ))
            }
            Ok(_) => {
                return writable(ancestor)
                    .map_err(|e| format!("cannot be created in {}: {e}", ancestor.display()))
            }
        }
    }
    // Not reached: the root directory exists.
    Err("cannot be created: no existing parent directory".into())
}

/// Whether this process may create files in `dir`, as the kernel judges it (permissions, read-only mounts), without
/// creating anything.
fn writable(dir: &Path) -> io::Result<()> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "the path contains a NUL byte"))?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call; access() only reads it.
    let result = unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_that_resolve() {
        assert_eq!(resolve("203.0.113.7"), Ok(()));
        assert_eq!(resolve("2001:db8::1"), Ok(()));
        assert_eq!(resolve("localhost"), Ok(()));
        // `.invalid` never resolves (RFC 6761).
        assert!(resolve("ftp.cosftpd.invalid").is_err());
    }

    #[test]
    fn log_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();

        assert_eq!(check_log_dir(tmp.path()), Ok(()));
        // Missing, but creatable: fine, and not created by the check.
        let missing = tmp.path().join("new/logs");
        assert_eq!(check_log_dir(&missing), Ok(()));
        assert!(!missing.exists());

        assert_eq!(
            check_log_dir(&file),
            Err("exists but is not a directory".to_string())
        );
        assert_eq!(
            check_log_dir(&file.join("logs")),
            Err(format!(
                "cannot be created: {} is not a directory",
                file.display()
            ))
        );
    }

    #[test]
    fn transfer_log_files() {
        let tmp = tempfile::tempdir().unwrap();
        let existing = tmp.path().join("xferlog");
        std::fs::write(&existing, b"line\n").unwrap();
        assert_eq!(check_log_file(&existing), Ok(()));
        assert_eq!(
            std::fs::read(&existing).unwrap(),
            b"line\n",
            "changed by the check"
        );
        let missing = tmp.path().join("new/xferlog");
        assert_eq!(check_log_file(&missing), Ok(()));
        assert!(!missing.exists() && !missing.parent().unwrap().exists());
        assert_eq!(check_log_file(tmp.path()), Err("is a directory".into()));
        assert_eq!(
            check_log_file(&existing.join("xferlog")),
            Err(format!(
                "cannot be created: its directory {} exists but is not a directory",
                existing.display()
            ))
        );
    }

    #[test]
    fn a_directory_without_write_permission_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: geteuid cannot fail and touches no memory.
        if unsafe { libc::geteuid() } == 0 {
            eprintln!("skipping: root may write anywhere");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let locked = tmp.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        assert!(check_log_dir(&locked)
            .unwrap_err()
            .starts_with("cannot be written: "));
        assert!(check_log_dir(&locked.join("logs"))
            .unwrap_err()
            .starts_with("cannot be created in "));
    }
}
