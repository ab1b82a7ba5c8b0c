//! "One writer per file" across several nodes: the hook the writer table calls. The table decides among this
//! process's writers; a [`WriterLeases`] (the cluster's, on Redis: `cluster::leases`) decides among the nodes.
//! Without one (`Settings::writer_leases = None`), this process alone decides, as a single node always did.
//!
//! A writer takes its name's lease when it registers (refused, `Busy`, while another node holds it), renews it in
//! the background while it lives, and gives it back when it leaves the table. A node that dies keeps nothing: its
//! leases expire.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::error::{FsError, FsErrorKind, FsResult};
use super::path::Key;

/// What the cluster says to a writer of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAnswer {
    /// The name is this writer's until released (or until it stops renewing).
    Granted(LeaseToken),
    /// Another node writes it; the text says which, for the message.
    HeldElsewhere(String),
}

/// Names one writer's lease, so that only it renews or releases it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseToken(pub String);

/// Leases on names, shared by the nodes of a cluster.
pub trait WriterLeases: Send + Sync + fmt::Debug {
    /// Takes `key` for a new writer of this node. When the shared store cannot be asked, an implementation grants
    /// the lease (and says so in the log): the writer table still holds within this node.
    fn acquire<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, LeaseAnswer>;
    /// Keeps the lease alive (also takes it again if it lapsed meanwhile, e.g. while the store was away).
    fn renew<'a>(&'a self, key: &'a Key, token: &'a LeaseToken) -> BoxFuture<'a, ()>;
    /// Gives the lease back, if `token` still holds it.
    fn release<'a>(&'a self, key: &'a Key, token: &'a LeaseToken) -> BoxFuture<'a, ()>;
    /// How often a held lease must be renewed.
    fn renew_every(&self) -> Duration;
}

/// The lease of one writer: renewed in the background until released. Dropped without `release`, it is released
/// in the background.
pub(crate) struct HeldLease {
    leases: Arc<dyn WriterLeases>,
    key: Key,
    token: LeaseToken,
    renewal: JoinHandle<()>,
    released: bool,
}

impl HeldLease {
    /// Takes the lease of `key`, or answers `Busy` while another node writes it.
    pub(crate) async fn acquire(leases: &Arc<dyn WriterLeases>, key: &Key) -> FsResult<HeldLease> {
        match leases.acquire(key).await {
            LeaseAnswer::Granted(token) => {
                let renewal = tokio::spawn(renew(Arc::clone(leases), key.clone(), token.clone()));
                Ok(HeldLease {
                    leases: Arc::clone(leases),
                    key: key.clone(),
                    token,
                    renewal,
                    released: false,
                })
            }
            LeaseAnswer::HeldElsewhere(holder) => Err(FsError::new(
                FsErrorKind::Busy,
                format!(
                    "{}: the file is already being written (through node {holder})",
                    key.display()
                ),
            )),
        }
    }

    /// Gives the lease back now.
    pub(crate) async fn release(mut self) {
        self.released = true;
        self.renewal.abort();
        self.leases.release(&self.key, &self.token).await;
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.renewal.abort();
        if self.released {
            return;
        }
        let (leases, key, token) = (
            Arc::clone(&self.leases),
            self.key.clone(),
            self.token.clone(),
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { leases.release(&key, &token).await });
            }
            // No runtime (the process is ending): the lease expires by itself.
            Err(_) => debug!(path = %key.display(), "writer lease left to expire"),
        }
    }
}

async fn renew(leases: Arc<dyn WriterLeases>, key: Key, token: LeaseToken) {
    let mut ticks = tokio::time::interval(leases.renew_every());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        leases.renew(&key, &token).await;
    }
}

/// Where a writer keeps its lease (none without a cluster).
#[derive(Default)]
pub(crate) struct LeaseSlot(Arc<Mutex<Option<HeldLease>>>);

impl LeaseSlot {
    /// The file was renamed while being written: its lease moves to the new name (taken in the background; the
    /// old name's is given back once the new one is held). When another node holds the new name, the old lease is
    /// kept and the clash logged: both writers go on, the last commit wins.
    pub(crate) fn follow(&self, to: &Key) {
        let Some(leases) = self.lock().as_ref().map(|held| Arc::clone(&held.leases)) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (slot, to) = (Arc::clone(&self.0), to.clone());
        runtime.spawn(async move {
            match HeldLease::acquire(&leases, &to).await {
                Ok(lease) => {
                    let old = slot.lock().unwrap_or_else(|e| e.into_inner()).replace(lease);
                    drop(old);
                }
                Err(e) => warn!(error = %e, "a file being written was renamed onto a name another node is writing"),
            }
        });
    }

    pub(crate) fn put(&self, lease: HeldLease) {
        *self.lock() = Some(lease);
    }

    /// Gives the lease back and waits until the cluster has it.
    pub(crate) async fn release(&self) {
        let lease = self.lock().take();
        if let Some(lease) = lease {
            lease.release().await;
        }
    }

    /// Gives the lease back without waiting (from synchronous code).
    pub(crate) fn release_in_background(&self) {
        drop(self.lock().take());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<HeldLease>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for LeaseSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.lock().as_ref() {
            Some(lease) => write!(f, "LeaseSlot({})", lease.token.0),
            None => f.write_str("LeaseSlot(none)"),
        }
    }
}
