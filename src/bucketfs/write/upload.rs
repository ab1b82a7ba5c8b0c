//! A multipart upload in progress: parts are sent in the background, up to `upload_concurrency` at a time, each
//! holding its memory until the store has it; completion waits for them all.

use std::ops::Range;

use bytes::Bytes;
use tokio::task::JoinSet;
use tracing::{debug, warn, Instrument};

use super::super::budget::Reservation;
use super::super::digest;
use crate::storage::objects::{
    Committed, ObjectMeta, ObjectStore, Overwrite, UploadId, UploadedPart,
};

/// The store's multipart limit.
const MAX_PARTS: u32 = 10_000;

pub(super) struct MultipartUpload {
    objects: ObjectStore,
    key: String,
    id: UploadId,
    next_part: u32,
    done: Vec<UploadedPart>,
    in_flight: JoinSet<opendal::Result<UploadedPart>>,
    concurrency: usize,
}

impl MultipartUpload {
    /// Starts an upload of `key` with the metadata the object will have.
    pub(super) async fn create(
        objects: &ObjectStore,
        key: &str,
        meta: &ObjectMeta,
        concurrency: usize,
    ) -> opendal::Result<Self> {
        let id = objects.create_upload(key, meta).await?;
        debug!(key, upload_id = %id.0, "multipart upload created");
        Ok(Self {
            objects: objects.clone(),
            key: key.to_string(),
            id,
            next_part: 1,
            done: Vec::new(),
            in_flight: JoinSet::new(),
            concurrency: concurrency.max(1),
        })
    }

    /// Continues an upload kept for resume: `parts` are what the store holds (numbered 1, 2, … without a gap).
    pub(super) fn resume(
        objects: &ObjectStore,
        key: &str,
        id: UploadId,
        parts: Vec<UploadedPart>,
        concurrency: usize,
    ) -> Self {
        debug!(key, upload_id = %id.0, parts = parts.len(), "multipart upload resumed");
        Self {
            objects: objects.clone(),
            key: key.to_string(),
            id,
            next_part: u32::try_from(parts.len() + 1).unwrap_or(u32::MAX),
            done: parts,
            in_flight: JoinSet::new(),
            concurrency: concurrency.max(1),
        }
    }

    /// Keeps the upload in the store for a later resume: the parts in flight are let finish. Returns the durable
    /// size (the bytes in parts 1, 2, … without a gap); a part that failed ends the durable prefix there.
    pub(super) async fn suspend(mut self) -> u64 {
        while let Some(joined) = self.in_flight.join_next().await {
            if let Ok(Ok(part)) = joined {
                self.done.push(part);
            }
        }
        self.done.sort_by_key(|p| p.number);
        let durable = self
            .done
            .iter()
            .enumerate()
            .take_while(|(i, p)| p.number as usize == i + 1)
            .map(|(_, p)| p.size)
            .sum();
        debug!(key = %self.key, upload_id = %self.id.0, durable, "multipart upload kept for resume");
        durable
    }

    /// Copies `range` of the object at `source` into the next part, server-side.
    pub(super) async fn copy_part(
        &mut self,
        source: &str,
        range: Range<u64>,
    ) -> opendal::Result<()> {
        let number = self.take_number()?;
        let part = self
            .objects
            .copy_part(&self.key, &self.id, number, source, range)
            .await?;
        self.done.push(part);
        Ok(())
    }

    /// Sends `body` as the next part in the background; waits first when `concurrency` parts are in flight.
    /// `memory` is released when the store has the part.
    pub(super) async fn send_part(
        &mut self,
        body: Bytes,
        memory: Option<Reservation>,
    ) -> opendal::Result<()> {
        while self.in_flight.len() >= self.concurrency {
            self.finish_one().await?;
        }
        let number = self.take_number()?;
        let (objects, key, id) = (self.objects.clone(), self.key.clone(), self.id.clone());
        let span = tracing::debug_span!("part", number, bytes = body.len());
        self.in_flight.spawn(
            async move {
                let check = PartCheck::compute(&objects, body.clone()).await;
                let result = objects
                    .upload_part_checked(&key, &id, number, body, check.content_md5)
                    .await;
                drop(memory);
                check.verify(number, result?)
            }
            .instrument(span),
        );
        Ok(())
    }

    /// Sends the last part (if any bytes are left) and completes the upload: only now does the object exist.
    /// On any failure the upload is aborted: a refused or failed completion leaves nothing in the store (an
    /// upload the store did complete despite an error answer is gone already, and the abort finds nothing).
    pub(super) async fn complete(
        mut self,
        last: Option<Bytes>,
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        match self.finish_and_complete(last, overwrite).await {
            Ok(committed) => Ok(committed),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn finish_and_complete(
        &mut self,
        last: Option<Bytes>,
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        if let Some(body) = last.filter(|b| !b.is_empty()) {
            self.send_part(body, None).await?;
        }
        while !self.in_flight.is_empty() {
            self.finish_one().await?;
        }
        self.done.sort_by_key(|p| p.number);
        self.objects
            .complete_upload(&self.key, &self.id, &self.done, overwrite)
            .await
    }

    /// Abandons the upload: parts in flight are cancelled and the store drops what it has. An abort the store
    /// refuses now (it is down, or the failure that ended the upload is still going on) is retried in the
    /// background, so that the parts do not stay in the bucket (billed) with nothing to clean them.
    pub(super) async fn abort(mut self) {
        self.in_flight.shutdown().await;
        if let Err(e) = abort_once(&self.objects, &self.key, &self.id).await {
            warn!(key = %self.key, upload_id = %self.id.0, error = %e, "aborting the upload failed; retried in the background");
            let (objects, key, id) = (self.objects.clone(), self.key.clone(), self.id.clone());
            tokio::spawn(
                async move {
                    for delay in ABORT_RETRY_DELAYS {
                        tokio::time::sleep(delay).await;
                        match abort_once(&objects, &key, &id).await {
                            Ok(()) => return,
                            Err(e) => debug!(error = %e, "aborting the upload failed again"),
                        }
                    }
                    warn!("gave up aborting the upload: the bucket keeps its parts until the sweep of pending uploads (upload_resume_ttl) or a lifecycle rule removes them");
                }
                .instrument(tracing::info_span!("abort_retry", key = %self.key, upload_id = %self.id.0)),
            );
        }
    }

    async fn finish_one(&mut self) -> opendal::Result<()> {
        match self.in_flight.join_next().await {
            Some(Ok(part)) => {
                self.done.push(part?);
                Ok(())
            }
            Some(Err(join)) => Err(opendal::Error::new(
                opendal::ErrorKind::Unexpected,
                format!("a part upload stopped: {join}"),
            )),
            None => Ok(()),
        }
    }

    fn take_number(&mut self) -> opendal::Result<u32> {
        if self.next_part > MAX_PARTS {
            return Err(opendal::Error::new(
                opendal::ErrorKind::Unexpected,
                "more than 10,000 parts: the part size is too small for this file",
            ));
        }
        let number = self.next_part;
        self.next_part += 1;
        Ok(number)
    }
}

/// How a part is kept from arriving damaged. COS answers with the CRC-64 of the part it stored, which costs
/// nothing to compare; other S3 stores are sent the part's MD5 (`Content-MD5`, which every S3 implementation
/// checks) and refuse a damaged part themselves. The local backends' bytes do not travel.
struct PartCheck {
    crc64: Option<u64>,
    content_md5: Option<[u8; 16]>,
}

impl PartCheck {
    async fn compute(objects: &ObjectStore, body: Bytes) -> Self {
        let crc = objects.reports_crc64();
        let md5 = !crc && objects.checks_content_md5();
        if !crc && !md5 {
            return PartCheck {
                crc64: None,
                content_md5: None,
            };
        }
        // Hashing a part takes milliseconds of CPU: off the runtime's threads.
        let hashed = tokio::task::spawn_blocking(move || {
            if crc {
                (Some(digest::crc64(&body)), None)
            } else {
                (None, Some(digest::md5(&body)))
            }
        })
        .await;
        let (crc64, content_md5) = hashed.unwrap_or((None, None));
        PartCheck { crc64, content_md5 }
    }

    /// A store that ignores `Content-MD5` still names the MD5 of what it got in the part's ETag.
    fn verify(&self, number: u32, part: UploadedPart) -> opendal::Result<UploadedPart> {
        let damaged = |theirs: String, ours: String| {
            Err(opendal::Error::new(
                opendal::ErrorKind::Unexpected,
                format!(
                    "part {number} was damaged on the way to the store (the store has {theirs}, the bytes sent \
                     had {ours})"
                ),
            ))
        };
        match (self.crc64, part.checksums.crc64ecma) {
            (Some(ours), Some(theirs)) if ours != theirs => {
                return damaged(format!("CRC-64 {theirs}"), format!("{ours}"))
            }
            _ => {}
        }
        match (self.content_md5, part.checksums.md5) {
            (Some(ours), Some(theirs)) if ours != theirs => {
                damaged(format!("MD5 {}", hex::encode(theirs)), hex::encode(ours))
            }
            _ => Ok(part),
        }
    }
}

/// When an abort the store refused is tried again: soon (a blip), then for about an hour (an outage).
const ABORT_RETRY_DELAYS: [std::time::Duration; 7] = {
    use std::time::Duration;
    [
        Duration::from_secs(1),
        Duration::from_secs(5),
        Duration::from_secs(30),
        Duration::from_secs(120),
        Duration::from_secs(600),
        Duration::from_secs(1200),
        Duration::from_secs(1800),
    ]
};

/// One abort; an upload already gone counts as aborted.
async fn abort_once(objects: &ObjectStore, key: &str, id: &UploadId) -> opendal::Result<()> {
    match objects.abort_upload(key, id).await {
        Ok(()) => {
            debug!(%key, upload_id = %id.0, "multipart upload aborted");
            Ok(())
        }
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
