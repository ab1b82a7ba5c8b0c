//! Wires config → stores → one `BucketFs` per account → mounts + FTP listener; signals and shutdown.

use std::sync::Arc;

use tracing::{info, warn};

use crate::bucketfs::{BucketFs, MemoryBudget};
use crate::config::{Account, Config};
use crate::storage::{self, StorageOptions};

mod service_manager;

/// What the process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Mounts (where enabled) and the FTP server.
    Serve,
    /// Mounts only, for scripting against them.
    MountOnly,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub mode: Mode,
    /// Skip the start-up bucket check (a config naming a real region, used offline).
    pub no_check: bool,
    pub storage: StorageOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Storage(String),
    #[error("home_dir {path}: {source}")]
    HomeDir {
        path: String,
        source: std::io::Error,
    },
    #[error("mount: {0}")]
    Mount(String),
    #[error("FTP listener: {0}")]
    Ftp(String),
    #[error("signal handling: {0}")]
    Signal(std::io::Error),
}

/// One account, ready to serve. Cheap to clone (the FTP session holds one per login).
#[derive(Clone)]
pub struct AccountFs {
    pub account: Arc<Account>,
    pub fs: BucketFs,
}

/// Builds every account's filesystem; all stores are checked concurrently and every failure is reported.
pub async fn open_accounts(
    config: &Config,
    options: &RunOptions,
) -> Result<Vec<AccountFs>, DaemonError> {
    let budget = MemoryBudget::new(config.optional.memory_budget);
    let opened = futures::future::join_all(
        config
            .accounts
            .iter()
            .map(|account| storage::open_account(account, &options.storage, options.no_check)),
    )
    .await;
    let mut accounts = Vec::new();
    let mut failures = Vec::new();
    for (account, store) in config.accounts.iter().zip(opened) {
        match store {
            Ok(store) => accounts.push(AccountFs {
                account: Arc::new(account.clone()),
                fs: BucketFs::for_account(store, account, config, budget.clone()),
            }),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if !failures.is_empty() {
        return Err(DaemonError::Storage(failures.join("\n")));
    }
    Ok(accounts)
}

/// Creates missing home directories when `create_home_dir` allows it. Only a directory that is not there is
/// created: one that cannot be looked at (a stale mount) is for the mount code to judge.
pub fn prepare_home_dirs(config: &Config) -> Result<(), DaemonError> {
    for account in &config.accounts {
        let missing = matches!(
            std::fs::symlink_metadata(&account.home_dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound
        );
        if config.optional.create_home_dir && missing {
            std::fs::create_dir_all(&account.home_dir).map_err(|source| DaemonError::HomeDir {
                path: account.home_dir.display().to_string(),
                source,
            })?;
            info!(home_dir = %account.home_dir.display(), "home directory created");
        }
    }
    Ok(())
}

/// Runs until SIGINT or SIGTERM (SIGHUP is logged and otherwise ignored).
pub async fn run(config: Config, options: RunOptions) -> Result<(), DaemonError> {
    // Caught from the start: a SIGTERM while the mounts come up stops the daemon cleanly once they are up, rather
    // than killing it halfway (and one right after the readiness notification is never missed).
    let mut signals = Signals::install()?;
    let config = Arc::new(config);
    prepare_home_dirs(&config)?;
    let accounts = open_accounts(&config, &options).await?;
    for a in &accounts {
        info!(
            user = %a.account.user,
            storage = %a.account.storage.describe(),
            home_dir = %a.account.home_dir.display(),
            authority = a.account.authority.letters(),
            delete_enable = a.account.delete_enable,
            "account ready"
        );
    }

    let mut sweeps = uploads::start_sweeps(&accounts);
    let mounts = mounts::mount_all(&config, &accounts, options.mode)?;
    let ftp = match options.mode {
        Mode::Serve => Some(ftp_listener::start(Arc::clone(&config), &accounts).await?),
        Mode::MountOnly => None,
    };

    let status = match options.mode {
        Mode::Serve => format!("serving {} account(s)", accounts.len()),
        Mode::MountOnly => format!("mounted {} account(s)", accounts.len()),
    };
    info!("ready: {status}");
    service_manager::ready(&status);

    loop {
        match signals.next().await {
            SignalEvent::Stop => break,
            SignalEvent::Reload => warn!("SIGHUP received; reloading is not supported yet"),
        }
    }
    info!("shutting down");
    service_manager::stopping();
    sweeps.abort_all();
    if let Some(ftp) = ftp {
        ftp.shutdown().await;
    }
    // Unmounting waits for the kernel to finish with each mount, and in-flight requests need the runtime: block
    // a dedicated thread, not a runtime worker.
    if let Err(e) = tokio::task::spawn_blocking(move || drop(mounts)).await {
        warn!(error = %e, "unmounting failed");
    }
    Ok(())
}

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignalEvent {
    /// SIGTERM, SIGINT: unmount and exit.
    Stop,
    /// SIGHUP: reread the config (not supported yet; until it is, the signal must not kill the daemon, as its
    /// default action would, leaving every mount dead).
    Reload,
}

/// The signals the daemon answers, caught from `install` on.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self, DaemonError> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(DaemonError::Signal)?,
            int: signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?,
            hup: signal(SignalKind::hangup()).map_err(DaemonError::Signal)?,
        })
    }

    /// Waits for the next signal (one that arrived since `install` is returned at once).
    async fn next(&mut self) -> SignalEvent {
        tokio::select! {
            _ = self.term.recv() => {
                info!("SIGTERM received");
                SignalEvent::Stop
            }
            _ = self.int.recv() => {
                info!("SIGINT received");
                SignalEvent::Stop
            }
            _ = self.hup.recv() => SignalEvent::Reload,
        }
    }
}

mod uploads {
    //! The sweep of pending multipart uploads: at start (what a crash or a kill left behind) and then periodically,
    //! aborting uploads kept for resume past `upload_resume_ttl`. With resume off it does not run: uploads are
    //! aborted when they fail, and a pending upload in the bucket may be another tool's.
    use super::*;
    use crate::bucketfs::sweep_interval;
    use tokio::task::JoinSet;

    pub fn start_sweeps(accounts: &[AccountFs]) -> JoinSet<()> {
        let mut sweeps = JoinSet::new();
        // Accounts on one bucket share its pending uploads: one sweep per distinct store is enough, but a sweep
        // per account is harmless (aborts are idempotent) and each account indexes what its FTP users may resume.
        for a in accounts {
            let fs = a.fs.clone();
            if !fs.resume_enabled() {
                continue;
            }
            let every = sweep_interval(fs.settings().upload_resume_ttl);
            let user = a.account.user.clone();
            sweeps.spawn(async move {
                loop {
                    if let Err(e) = fs.sweep_uploads().await {
                        warn!(user = %user, error = %e, "sweeping pending uploads failed; retried later");
                    }
                    tokio::time::sleep(every).await;
                }
            });
        }
        sweeps
    }
}

mod mounts {
    //! FUSE mounts of every account with `mount_enable`, all over the very `BucketFs` the FTP server uses.
    use super::*;
    use crate::fuse::{self, MountHandle, MountOptions};

    /// Mounted buckets; dropping them unmounts.
    pub struct Mounts(Vec<MountHandle>);

    impl Drop for Mounts {
        fn drop(&mut self) {
            for handle in self.0.drain(..) {
                if let Err(e) = handle.unmount() {
                    warn!("{e}");
                }
            }
        }
    }

    /// `serve` keeps serving FTP when this host cannot mount FUSE at all (and says why); `mount` has nothing else
    /// to do, so it fails. A home_dir that cannot take the mount (another program's mount on it, files it would
    /// hide, …) stops both: it is a mistake to fix, not a missing feature of the host.
    pub fn mount_all(
        config: &Config,
        accounts: &[AccountFs],
        mode: Mode,
    ) -> Result<Mounts, DaemonError> {
        let mut mounts = Mounts(Vec::new());
        if !config.optional.mount_enable {
            info!("mount_enable = false: no FUSE mounts");
            return match mode {
                Mode::MountOnly => Err(DaemonError::Mount(
                    "mount_enable = false: nothing to mount".into(),
                )),
                Mode::Serve => Ok(mounts),
            };
        }
        let runtime = tokio::runtime::Handle::current();
        for a in accounts {
            let options = MountOptions::from_config(config, &a.account);
            match fuse::mount(a.fs.clone(), &a.account.home_dir, options, runtime.clone()) {
                Ok(handle) => mounts.0.push(handle),
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
}

mod ftp_listener {
    //! The FTP listener over the same `BucketFs` instances the mounts serve.
    use super::*;
    use crate::ftp::server::{FtpServer, ServerContext};

    pub async fn start(
        config: Arc<Config>,
        accounts: &[AccountFs],
    ) -> Result<FtpServer, DaemonError> {
        let context = ServerContext::new(config, accounts)
            .await
            .map_err(|e| DaemonError::Ftp(e.to_string()))?;
        FtpServer::start(Arc::new(context))
            .await
            .map_err(|e| DaemonError::Ftp(e.to_string()))
    }
}
