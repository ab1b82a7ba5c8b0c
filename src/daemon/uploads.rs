//! The sweep of pending multipart uploads: at start (what a crash or a kill left behind) and then periodically,
//! aborting uploads kept for resume past `upload_resume_ttl`. With resume off it does not run: uploads are
//! aborted when they fail, and a pending upload in the bucket may be another tool's.

use tokio::task::JoinHandle;
use tracing::warn;

use super::AccountFs;
use crate::bucketfs::sweep_interval;

/// Starts the periodic sweep of one account, unless resume is off for it. Accounts on one bucket share its pending
/// uploads: one sweep per distinct store would be enough, but a sweep per account is harmless (aborts are
/// idempotent) and each account indexes what its FTP users may resume.
pub(super) fn start_sweep(a: &AccountFs) -> Option<JoinHandle<()>> {
    let fs = a.fs.clone();
    if !fs.resume_enabled() {
        return None;
    }
    let every = sweep_interval(fs.settings().upload_resume_ttl);
    let user = a.account.user.clone();
    Some(tokio::spawn(async move {
        loop {
            if let Err(e) = fs.sweep_uploads().await {
                warn!(user = %user, error = %e, "sweeping pending uploads failed; retried later");
            }
            tokio::time::sleep(every).await;
        }
    }))
}
