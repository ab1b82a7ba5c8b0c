//! Uploads kept for resume: an FTP upload whose connection breaks keeps its multipart upload and the parts already
//! stored, for `upload_resume_ttl`. The state lives in the store (ListMultipartUploads, ListParts), so any gateway,
//! after any restart, can continue it; this process also keeps a small index of the ones it knows (for listings,
//! which must not cost a request per directory).
//!
//! What counts as a resumable upload of a name: a pending multipart upload of exactly that key whose parts are
//! numbered 1, 2, … without a gap, started after the object of that name (if any) was last written — an older one
//! was superseded by a newer upload and is discarded. Its durable size is the sum of its parts: the bytes the
//! client must send again start there.
//!
//! Nothing partial ever becomes an object: a pending upload is invisible to other clients of the bucket and to
//! reads; only this account's FTP sessions see it (SIZE answers the durable size, listings show it as partial).
//! A sweep (at start, then periodically) aborts pending uploads older than the TTL.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tracing::{debug, info, warn};

use super::super::error::{FsError, FsResult};
use super::super::path::Key;
use super::super::BucketFs;
use crate::storage::objects::{PendingUpload, UploadId, UploadedPart};

/// A pending upload that can be continued.
#[derive(Debug, Clone)]
pub(crate) struct Resumable {
    pub id: UploadId,
    pub parts: Vec<UploadedPart>,
    /// Bytes in its parts: where the client resumes.
    pub durable: u64,
    pub initiated: Option<SystemTime>,
}

/// What this process knows of pending uploads, by name (for listings and MLST without a request).
#[derive(Debug, Default)]
pub(crate) struct PendingIndex {
    entries: Mutex<HashMap<Key, (u64, Option<SystemTime>)>>,
}

impl PendingIndex {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, (u64, Option<SystemTime>)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn insert(&self, key: &Key, durable: u64, initiated: Option<SystemTime>) {
        self.lock().insert(key.clone(), (durable, initiated));
    }

    pub(crate) fn remove(&self, key: &Key) -> bool {
        self.lock().remove(key).is_some()
    }

    pub(crate) fn contains(&self, key: &Key) -> bool {
        self.lock().contains_key(key)
    }

    /// The pending uploads directly inside `dir`: (name, durable size, started).
    pub(crate) fn children(&self, dir: &Key) -> Vec<(String, u64, Option<SystemTime>)> {
        self.lock()
            .iter()
            .filter(|(key, _)| key.parent().as_ref() == Some(dir))
            .map(|(key, (durable, at))| (key.name().to_string(), *durable, *at))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Pending uploads kept (still within the TTL).
    pub kept: usize,
    /// Aborted because they were older than the TTL (or resume is off).
    pub expired: usize,
    /// Aborts that failed (retried by the next sweep).
    pub failed: usize,
}

impl BucketFs {
    /// Whether broken FTP uploads are kept for resume (`upload_resume_ttl` > 0).
    pub fn resume_enabled(&self) -> bool {
        !self.settings().upload_resume_ttl.is_zero()
    }

    /// The resumable upload of `key`, if the store holds one (one listing of pending uploads, one of their parts).
    /// A pending upload older than the object of that name, or than the TTL, is discarded on the way.
    pub(crate) async fn find_resumable(&self, key: &Key) -> FsResult<Option<Resumable>> {
        if !self.resume_enabled() || key.is_root() {
            return Ok(None);
        }
        let context = || format!("look for an upload of {} to resume", key.display());
        let mut pending: Vec<PendingUpload> = self
            .objects()
            .list_uploads(key.as_str())
            .await
            .map_err(|e| FsError::store(&context(), e))?
            .into_iter()
            .filter(|u| u.key == key.as_str())
            .collect();
        if pending.is_empty() {
            self.pending().remove(key);
            return Ok(None);
        }
        // Newest first: it is the one a client resumes; older ones for the same name are leftovers.
        pending.sort_by_key(|u| std::cmp::Reverse(u.initiated));
        let object_time = match self.stat_store(key).await? {
            Some(meta) if !meta.is_dir() => meta.mtime,
            _ => None,
        };
        let mut found = None;
        for upload in pending {
            let superseded = matches!((object_time, upload.initiated), (Some(o), Some(i)) if o > i);
            if found.is_some() || superseded || self.expired(upload.initiated) {
                self.abort_pending(&upload).await;
                continue;
            }
            let parts = self
                .objects()
                .list_parts(&upload.key, &upload.id)
                .await
                .map_err(|e| FsError::store(&context(), e))?;
            let contiguous: Vec<UploadedPart> = parts
                .into_iter()
                .enumerate()
                .take_while(|(i, p)| p.number as usize == i + 1)
                .map(|(_, p)| p)
                .collect();
            let durable = contiguous.iter().map(|p| p.size).sum();
            found = Some(Resumable {
                id: upload.id,
                parts: contiguous,
                durable,
                initiated: upload.initiated,
            });
        }
        match &found {
            Some(r) => self.pending().insert(key, r.durable, r.initiated),
            None => {
                self.pending().remove(key);
            }
        }
        Ok(found)
    }

    /// The durable size of a resumable upload of `key` (FTP SIZE and MLST of a name being uploaded in pieces).
    ///
    /// Asks the store only when an upload may be pending: this process knows of one, or there is no object of
    /// that name (a client resuming asks SIZE of a name that is not there yet). An upload another gateway keeps for
    /// a name that also exists as an object is found by REST and APPE, and by SIZE after the next sweep.
    pub async fn resumable_size(&self, key: &Key) -> FsResult<Option<u64>> {
        self.check_name(key)?;
        if !self.resume_enabled() || self.writers().get(key).is_some() {
            return Ok(None);
        }
        let known = self.pending().contains(key);
        if !known && self.lookup_key(key).await?.is_some() {
            return Ok(None);
        }
        Ok(self.find_resumable(key).await?.map(|r| r.durable))
    }

    /// Discards the pending uploads of `key` (a fresh upload from byte 0 replaces them; DELE discards them).
    /// True when there was one.
    pub(crate) async fn discard_pending(&self, key: &Key) -> FsResult<bool> {
        if !self.resume_enabled() {
            return Ok(false);
        }
        let pending = self
            .objects()
            .list_uploads(key.as_str())
            .await
            .map_err(|e| FsError::store(&format!("discard uploads of {}", key.display()), e))?;
        let mut found = false;
        for upload in pending.iter().filter(|u| u.key == key.as_str()) {
            self.abort_pending(upload).await;
            found = true;
        }
        self.pending().remove(key);
        Ok(found)
    }

    /// Aborts pending uploads older than `upload_resume_ttl` (all of them when resume is off) and indexes the
    /// others. Run at start and periodically; also cleans what a crash or a kill left behind.
    pub async fn sweep_uploads(&self) -> FsResult<SweepReport> {
        let pending = self
            .objects()
            .list_uploads("")
            .await
            .map_err(|e| FsError::store("list pending uploads", e))?;
        let mut report = SweepReport::default();
        for upload in pending {
            let Ok(key) = Key::parse(&upload.key) else {
                continue;
            };
            if self.writers().get(&key).is_some() {
                continue; // being written right now
            }
            if self.expired(upload.initiated) {
                // Taken as a writer while aborting: another node of a cluster may still be sending this very
                // upload (one that outlived the TTL); its lease says so, and then it is left alone.
                let Ok(writer) = self.writers().register(&key, 0).await else {
                    debug!(key = %upload.key, "an expired upload is being written elsewhere: left alone");
                    report.kept += 1;
                    continue;
                };
                let aborted = self.objects().abort_upload(&upload.key, &upload.id).await;
                self.writers().unregister(&writer);
                match aborted {
                    Ok(()) => report.expired += 1,
                    Err(e) if e.kind() == opendal::ErrorKind::NotFound => report.expired += 1,
                    Err(e) => {
                        warn!(key = %upload.key, error = %e, "aborting an expired upload failed; the next sweep retries");
                        report.failed += 1;
                    }
                }
                self.pending().remove(&key);
                continue;
            }
            let durable = match self.objects().list_parts(&upload.key, &upload.id).await {
                Ok(parts) => parts
                    .iter()
                    .enumerate()
                    .take_while(|(i, p)| p.number as usize == i + 1)
                    .map(|(_, p)| p.size)
                    .sum(),
                Err(_) => 0,
            };
            self.pending().insert(&key, durable, upload.initiated);
            report.kept += 1;
        }
        if report.expired + report.failed > 0 || report.kept > 0 {
            info!(
                kept = report.kept,
                expired = report.expired,
                failed = report.failed,
                "pending uploads swept"
            );
        }
        Ok(report)
    }

    /// Pending uploads this process knows of now.
    pub fn pending_uploads(&self) -> usize {
        self.pending().len()
    }

    fn expired(&self, initiated: Option<SystemTime>) -> bool {
        let ttl = self.settings().upload_resume_ttl;
        if ttl.is_zero() {
            return true;
        }
        match initiated.map(|at| SystemTime::now().duration_since(at)) {
            Some(Ok(age)) => age > ttl,
            // Started "in the future" (clock skew) or of unknown age: kept.
            Some(Err(_)) | None => false,
        }
    }

    async fn abort_pending(&self, upload: &PendingUpload) {
        match self.objects().abort_upload(&upload.key, &upload.id).await {
            Ok(()) => {
                debug!(key = %upload.key, upload_id = %upload.id.0, "pending upload discarded")
            }
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(key = %upload.key, error = %e, "discarding a pending upload failed; the sweep retries")
            }
        }
    }
}

/// How often the sweep runs: every hour, more often for a short TTL (tests).
pub fn sweep_interval(ttl: Duration) -> Duration {
    (ttl / 2).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}
