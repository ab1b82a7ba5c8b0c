//! The running daemon: its accounts, mounts, FTP server, store probes, metrics endpoint and cluster state; what
//! SIGHUP and SIGTERM do to them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::mounts::Mounts;
use super::signals::{SignalEvent, Signals};
use super::telemetry::{self, Scrape};
use super::{
    create_home_dirs, open, service_manager, AccountFs, DaemonError, Mode, ReloadSource, RunOptions,
};
use crate::bucketfs::{MemoryBudget, Policy};
use crate::cluster::Cluster;
use crate::config::{Account, Config};
use crate::ftp::server::{FtpServer, ServerContext};
use crate::logging::{ErrorChain, LogSettings};
use crate::storage::{StoreHealth, StoreStatus};

/// A task that ends when its owner drops it (store probes, the metrics endpoint).
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Running {
    config: Arc<Config>,
    options: RunOptions,
    reload: ReloadSource,
    budget: MemoryBudget,
    /// The state shared with the other nodes (`[CLUSTER]`), made once at start.
    cluster: Option<Arc<Cluster>>,
    accounts: Vec<AccountFs>,
    /// One health probe per account, by user.
    probes: HashMap<String, Task>,
    /// The sweep of pending uploads of each account with resume on, by user.
    sweeps: HashMap<String, Task>,
    /// The accounts' health, as the metrics endpoint reads it.
    stores: Arc<Mutex<Vec<StoreHealth>>>,
    mounts: Mounts,
    ftp: Option<FtpServer>,
    _telemetry: Option<Task>,
}

pub(super) async fn run(
    config: Config,
    options: RunOptions,
    reload: ReloadSource,
) -> Result<(), DaemonError> {
    // Caught from the start: a SIGTERM while the mounts come up stops the daemon cleanly once they are up, rather
    // than killing it halfway (and one right after the readiness notification is never missed).
    let mut signals = Signals::install()?;
    let budget = MemoryBudget::new(config.optional.memory_budget);
    let stores = Arc::new(Mutex::new(Vec::new()));
    // The metrics endpoint first: a port in use stops the start before anything is mounted.
    let telemetry = match config.network.metrics_address {
        Some(addr) => {
            let prometheus = telemetry::install_recorder()?;
            let scrape = Scrape {
                prometheus,
                stores: Arc::clone(&stores),
                budget: budget.clone(),
            };
            Some(Task(telemetry::serve(addr, scrape).await?))
        }
        None => None,
    };
    let all: Vec<&Account> = config.accounts.iter().collect();
    create_home_dirs(&all, config.optional.create_home_dir)?;
    let cluster = match &config.cluster {
        Some(settings) => Some(Cluster::start(settings).await?),
        None => None,
    };
    let accounts = open(&all, &config, &options, &budget, cluster.as_ref()).await?;
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
    let mounts = Mounts::mount_all(&config, &accounts, options.mode)?;
    let config = Arc::new(config);
    let ftp = match options.mode {
        Mode::Serve => {
            let context = ServerContext::new(Arc::clone(&config), &accounts, cluster.as_ref())
                .await
                .map_err(|e| DaemonError::Ftp(e.to_string()))?;
            let server = FtpServer::start(Arc::new(context))
                .await
                .map_err(|e| DaemonError::Ftp(e.to_string()))?;
            Some(server)
        }
        Mode::MountOnly => None,
    };
    let mut running = Running {
        config,
        options,
        reload,
        budget,
        cluster,
        accounts: Vec::new(),
        probes: HashMap::new(),
        sweeps: HashMap::new(),
        stores,
        mounts,
        ftp,
        _telemetry: telemetry,
    };
    running.serve_accounts(accounts);

    let status = running.status();
    info!("ready: {status}");
    service_manager::ready(&status);

    loop {
        match signals.next().await {
            SignalEvent::Stop => break,
            SignalEvent::Reload => running.reload().await,
        }
    }
    running.stop(&mut signals).await;
    Ok(())
}

impl Running {
    fn status(&self) -> String {
        match self.options.mode {
            Mode::Serve => format!("serving {} account(s)", self.accounts.len()),
            Mode::MountOnly => format!("mounted {} account(s)", self.accounts.len()),
        }
    }

    /// Makes `accounts` the ones served: probes and upload sweeps for the new ones, none for the ones gone, and
    /// the health the metrics endpoint reports.
    fn serve_accounts(&mut self, accounts: Vec<AccountFs>) {
        self.probes
            .retain(|user, _| accounts.iter().any(|a| &a.account.user == user));
        self.sweeps
            .retain(|user, _| accounts.iter().any(|a| &a.account.user == user));
        for a in &accounts {
            if !self.sweeps.contains_key(&a.account.user) {
                if let Some(sweep) = super::uploads::start_sweep(a) {
                    self.sweeps.insert(a.account.user.clone(), Task(sweep));
                }
            }
        }
        for a in &accounts {
            if self.probes.contains_key(&a.account.user) {
                continue;
            }
            // Started with --no-check: the first probe at once, not after a period.
            if a.health.status().0 == StoreStatus::Unknown {
                a.health.probe_soon();
            }
            let probe = tokio::spawn(a.health.clone().watch());
            self.probes.insert(a.account.user.clone(), Task(probe));
        }
        *self
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            accounts.iter().map(|a| a.health.clone()).collect();
        self.accounts = accounts;
    }

    /// SIGHUP: applies the config file as it is now, or, if anything in it is wrong, nothing.
    async fn reload(&mut self) {
        service_manager::reloading();
        let applied = match self.try_reload().await {
            Ok(summary) => {
                info!("config reloaded: {summary}");
                true
            }
            Err(errors) => {
                for e in &errors {
                    error!("reload refused: {e}");
                }
                warn!("the config was not reloaded: the previous one stays in force");
                false
            }
        };
        telemetry::reload_done(applied);
        service_manager::ready(&self.status());
    }

    async fn try_reload(&mut self) -> Result<String, Vec<String>> {
        let path = &self.reload.config_path;
        let new = Config::load(path)
            .and_then(|c| c.preflight().map(|()| c))
            .map_err(|errors| {
                let mut all: Vec<String> = errors
                    .errors
                    .iter()
                    .map(|e| format!("{}: {e}", path.display()))
                    .collect();
                all.extend(
                    errors
                        .warnings
                        .iter()
                        .map(|w| format!("{}: warning: {w}", path.display())),
                );
                all
            })?;
        for w in &new.warnings {
            warn!("{}: {w}", path.display());
        }
        let plan = super::reload::plan(&self.config, new);
        let config = Arc::new(plan.config);

        // Everything that can fail, before anything changes: the new accounts' home directories and stores (each
        // checked, unless --no-check), the FTP context (TLS files, masquerade_address), the log files.
        let added: Vec<&Account> = config
            .accounts
            .iter()
            .filter(|a| plan.added.contains(&a.user))
            .collect();
        create_home_dirs(&added, config.optional.create_home_dir)
            .map_err(|e| vec![ErrorChain(&e).to_string()])?;
        let opened = open(
            &added,
            &config,
            &self.options,
            &self.budget,
            self.cluster.as_ref(),
        )
        .await
        .map_err(|e| vec![ErrorChain(&e).to_string()])?;
        let mut accounts = Vec::new();
        for account in &config.accounts {
            let served = match self
                .accounts
                .iter()
                .find(|a| a.account.user == account.user)
            {
                // The same filesystem (store, cache, writers, mount) under the new authority.
                Some(running) => AccountFs {
                    account: Arc::new(account.clone()),
                    fs: running
                        .fs
                        .with_policy(Policy::new(account.authority, account.delete_enable)),
                    health: running.health.clone(),
                },
                None => match opened.iter().find(|a| a.account.user == account.user) {
                    Some(new) => new.clone(),
                    None => return Err(vec![format!("user {}: not opened", account.user)]),
                },
            };
            accounts.push(served);
        }
        let context = match &self.ftp {
            Some(ftp) => Some(
                ftp.context()
                    .reloaded(Arc::clone(&config), &accounts)
                    .await
                    .map_err(|e| vec![ErrorChain(&e).to_string()])?,
            ),
            None => None,
        };
        if let Some(logs) = &self.reload.logs {
            logs.reload(&LogSettings::from_config(&config))
                .map_err(|e| vec![ErrorChain(&e).to_string()])?;
        }

        // Apply.
        if let (Some(ftp), Some(context)) = (&self.ftp, context) {
            ftp.reload(context);
        }
        self.mounts.mount_added(&config, &opened);
        self.serve_accounts(accounts);
        self.config = config;

        let mut kept = plan.kept;
        if self.config.optional.mount_enable && !plan.removed.is_empty() {
            kept.push(format!(
                "the mounts of removed users ({})",
                plan.removed.join(", ")
            ));
        }
        if !kept.is_empty() {
            warn!(
                "changes that need a restart, not applied (the running value stays): {}",
                kept.join("; ")
            );
        }
        let list = |users: &[String]| {
            if users.is_empty() {
                "none".to_string()
            } else {
                users.join(", ")
            }
        };
        Ok(format!(
            "{} account(s); added: {}; removed: {}; changed: {}",
            self.accounts.len(),
            list(&plan.added),
            list(&plan.removed),
            list(&plan.changed)
        ))
    }

    /// SIGTERM: FTP first (no new connections, running transfers finish within `shutdown_grace` unless a second
    /// signal comes, the rest are aborted), then the mounts, as before the grace existed.
    async fn stop(mut self, signals: &mut Signals) {
        info!("shutting down");
        service_manager::stopping();
        self.sweeps.clear();
        if let Some(ftp) = self.ftp.take() {
            ftp.shutdown_gracefully(self.config.optional.shutdown_grace, signals.next_stop())
                .await;
        }
        if let Some(cluster) = &self.cluster {
            cluster.leave().await;
        }
        self.probes.clear();
        // Unmounting waits for the kernel to finish with each mount, and in-flight requests need the runtime:
        // block a dedicated thread, not a runtime worker.
        let mounts = std::mem::take(&mut self.mounts);
        if let Err(e) = tokio::task::spawn_blocking(move || drop(mounts)).await {
            warn!(error = %e, "unmounting failed");
        }
    }
}
