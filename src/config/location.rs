//! Where the config file is: `-c PATH`, else `$COSFTPD_CONFIG` (when set and not empty), else the installed
//! location [`SYSTEM_PATH`] when it exists, else [`LOCAL_PATH`] relative to the working directory (a source
//! checkout, and the original COS FTP Server's layout).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable naming the config file when `-c` is not given.
pub const ENV_VAR: &str = "COSFTPD_CONFIG";
/// Where the Debian package installs the config (docs/OPERATIONS.md).
pub const SYSTEM_PATH: &str = "/etc/cosftpd/vsftpd.conf";
/// The original's location, relative to the working directory.
pub const LOCAL_PATH: &str = "conf/vsftpd.conf";

/// The config file to read, given the command line's `-c` (if any).
pub fn resolve(command_line: Option<PathBuf>) -> PathBuf {
    choose(
        command_line,
        std::env::var_os(ENV_VAR),
        Path::new(SYSTEM_PATH).exists(),
    )
}

fn choose(
    command_line: Option<PathBuf>,
    env: Option<OsString>,
    system_config_exists: bool,
) -> PathBuf {
    command_line
        // An empty variable (`COSFTPD_CONFIG= cosftpd …`) counts as unset, as shells and systemd's Environment=
        // make it easy to write one.
        .or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| {
            PathBuf::from(if system_config_exists {
                SYSTEM_PATH
            } else {
                LOCAL_PATH
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_then_environment_then_installed_then_working_directory() {
        let c = || Some(PathBuf::from("c.conf"));
        let env = || Some(OsString::from("/env.conf"));
        assert_eq!(choose(c(), env(), true), Path::new("c.conf"));
        assert_eq!(choose(None, env(), true), Path::new("/env.conf"));
        assert_eq!(choose(None, None, true), Path::new(SYSTEM_PATH));
        assert_eq!(choose(None, None, false), Path::new(LOCAL_PATH));
        assert_eq!(
            choose(None, Some(OsString::new()), false),
            Path::new(LOCAL_PATH)
        );
    }
}
