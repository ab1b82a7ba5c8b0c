//! Wires config → stores → one `BucketFs` per account → mounts + FTP listener; signals: SIGHUP reloads the config,
//! SIGTERM/SIGINT stop (running transfers may finish for `shutdown_grace`; a second signal aborts them).

use std::path::PathBuf;
use std::sync::Arc;

use tracing::info;

use crate::bucketfs::{BucketFs, MemoryBudget, WriterLeases};
use crate::cluster::Cluster;
use crate::config::{Account, Config};
use crate::logging::LogHandle;
use crate::storage::{self, StorageOptions, StoreHealth};

mod mounts;
mod reload;
mod running;
mod service_manager;
mod signals;
pub mod telemetry;
mod uploads;

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

/// What SIGHUP needs: where the config is read again, and the logging it changes (none in tests that log
/// through their own subscriber).
#[derive(Clone)]
pub struct ReloadSource {
    pub config_path: PathBuf,
    pub logs: Option<LogHandle>,
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
    #[error("{0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("signal handling: {0}")]
    Signal(std::io::Error),
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
}

/// One account, ready to serve. Cheap to clone (the FTP session holds one per login).
#[derive(Clone)]
pub struct AccountFs {
    pub account: Arc<Account>,
    pub fs: BucketFs,
    /// Whether the account's store answers (`GET /healthz`).
    pub health: StoreHealth,
}

/// Builds every account's filesystem; all stores are checked concurrently and every failure is reported. In a
/// cluster, each account's writers take the cluster's leases.
pub async fn open_accounts(
    config: &Config,
    options: &RunOptions,
    cluster: Option<&Arc<Cluster>>,
) -> Result<Vec<AccountFs>, DaemonError> {
    let budget = MemoryBudget::new(config.optional.memory_budget);
    let accounts: Vec<&Account> = config.accounts.iter().collect();
    open(&accounts, config, options, &budget, cluster).await
}

/// Opens `accounts` (of `config`) over one memory budget; in a cluster, their writers take the cluster's leases.
async fn open(
    accounts: &[&Account],
    config: &Config,
    options: &RunOptions,
    budget: &MemoryBudget,
    cluster: Option<&Arc<Cluster>>,
) -> Result<Vec<AccountFs>, DaemonError> {
    let opened = futures::future::join_all(
        accounts
            .iter()
            .map(|account| storage::open_account(account, &options.storage, options.no_check)),
    )
    .await;
    let mut ready = Vec::new();
    let mut failures = Vec::new();
    for (account, store) in accounts.iter().zip(opened) {
        match store {
            Ok(opened) => {
                let leases = cluster
                    .map(|c| Arc::new(c.writer_leases(&account.user)) as Arc<dyn WriterLeases>);
                ready.push(AccountFs {
                    account: Arc::new((*account).clone()),
                    fs: BucketFs::for_account(
                        opened.store,
                        account,
                        config,
                        budget.clone(),
                        leases,
                    ),
                    health: opened.health,
                })
            }
            Err(e) => failures.push(crate::logging::ErrorChain(&e).to_string()),
        }
    }
    if !failures.is_empty() {
        return Err(DaemonError::Storage(failures.join("; ")));
    }
    Ok(ready)
}

/// Creates missing home directories when `create_home_dir` allows it. Only a directory that is not there is
/// created: one that cannot be looked at (a stale mount) is for the mount code to judge.
pub fn prepare_home_dirs(config: &Config) -> Result<(), DaemonError> {
    let accounts: Vec<&Account> = config.accounts.iter().collect();
    create_home_dirs(&accounts, config.optional.create_home_dir)
}

fn create_home_dirs(accounts: &[&Account], create: bool) -> Result<(), DaemonError> {
    for account in accounts {
        let missing = matches!(
            std::fs::symlink_metadata(&account.home_dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound
        );
        if create && missing {
            std::fs::create_dir_all(&account.home_dir).map_err(|source| DaemonError::HomeDir {
                path: account.home_dir.display().to_string(),
                source,
            })?;
            info!(home_dir = %account.home_dir.display(), "home directory created");
        }
    }
    Ok(())
}

/// Runs until SIGINT or SIGTERM; SIGHUP reloads the config from `reload.config_path`.
pub async fn run(
    config: Config,
    options: RunOptions,
    reload: ReloadSource,
) -> Result<(), DaemonError> {
    running::run(config, options, reload).await
}
