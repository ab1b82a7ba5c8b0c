//! FUSE mounts of every account with `mount_enable`, all over the very `BucketFs` the FTP server uses.

use std::collections::HashSet;
use std::path::PathBuf;

use tracing::{info, warn};

use super::{AccountFs, DaemonError, Mode};
use crate::config::Config;
use crate::fuse::{self, MountHandle, MountOptions};

/// Mounted buckets; dropping them unmounts (blocking: drop them in `spawn_blocking`).
#[derive(Default)]
pub(super) struct Mounts {
    handles: Vec<MountHandle>,
    /// Every home_dir mounted, including those of accounts a reload removed (they stay until exit).
    points: HashSet<PathBuf>,
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for handle in self.handles.drain(..) {
            if let Err(e) = handle.unmount() {
                warn!("{e}");
            }
        }
    }
}

impl Mounts {
    /// `serve` keeps serving FTP when this host cannot mount FUSE at all (and says why); `mount` has nothing else
    /// to do, so it fails. A home_dir that cannot take the mount (another program's mount on it, files it would
    /// hide, …) stops both: it is a mistake to fix, not a missing feature of the host.
    pub(super) fn mount_all(
        config: &Config,
        accounts: &[AccountFs],
        mode: Mode,
    ) -> Result<Mounts, DaemonError> {
        let mut mounts = Mounts::default();
        if !config.optional.mount_enable {
            info!("mount_enable = false: no FUSE mounts");
            return match mode {
                Mode::MountOnly => Err(DaemonError::Mount(
                    "mount_enable = false: nothing to mount".into(),
                )),
                Mode::Serve => Ok(mounts),
            };
        }
        for a in accounts {
            match mounts.mount(config, a) {
                Ok(()) => {}
                Err(e) if mode == Mode::Serve && e.is_fuse_unavailable() => {
                    warn!(user = %a.account.user, home_dir = %a.account.home_dir.display(), "not mounted: {e}; serving FTP only")
                }
                Err(e) => {
                    return Err(DaemonError::Mount(format!(
                        "[{}] {}: {e}",
                        a.account.section, a.account.user
                    )))
                }
            }
        }
        Ok(mounts)
    }

    /// Mounts the accounts a reload added (with `mount_enable`). Their FTP logins work whatever happens here: a
    /// mount that fails is logged, and one whose home_dir is still another account's mount (that account was
    /// removed or moved by the same reload, and stays mounted until a restart) waits for the restart.
    pub(super) fn mount_added(&mut self, config: &Config, added: &[AccountFs]) {
        if !config.optional.mount_enable {
            return;
        }
        for a in added {
            let home = &a.account.home_dir;
            if self.points.contains(home) {
                warn!(user = %a.account.user, home_dir = %home.display(), "not mounted until a restart: the home_dir is still the mount of an account the reload removed");
                continue;
            }
            if let Err(e) = self.mount(config, a) {
                warn!(user = %a.account.user, home_dir = %home.display(), "not mounted: {e}; serving FTP only");
            }
        }
    }

    fn mount(&mut self, config: &Config, a: &AccountFs) -> Result<(), fuse::MountError> {
        let options = MountOptions::from_config(config, &a.account);
        let runtime = tokio::runtime::Handle::current();
        let handle = fuse::mount(a.fs.clone(), &a.account.home_dir, options, runtime)?;
        self.points.insert(a.account.home_dir.clone());
        self.handles.push(handle);
        Ok(())
    }
}
