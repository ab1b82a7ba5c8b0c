//! The `memory` backend: objects go into the account's OpenDAL memory operator (so reads and listings through
//! OpenDAL see them); metadata and multipart uploads live in this process.
//!
//! The memory service stores a content type but no user metadata, so that is kept here, beside the MD5 of
//! the bytes it belongs to: a HEAD reads the object and hashes it (memory objects are small test data), and
//! shows the kept metadata only if the bytes are still those. ETags are MD5s, as single PUTs' are on S3.
//! Writes are serialised by one lock, which makes "create, never replace" atomic among this store's writers.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use md5::{Digest, Md5};
use opendal::{Error, ErrorKind, Operator};

use super::faults::FaultHook;
use super::{
    Committed, ObjectHead, ObjectMeta, Overwrite, PendingUpload, UploadId, UploadedPart,
    LOCAL_LIMITS,
};

#[derive(Clone, Debug)]
pub(super) struct MemoryObjects {
    op: Operator,
    state: Arc<Mutex<State>>,
    /// Held from the check to the commit of every write.
    writes: Arc<tokio::sync::Mutex<()>>,
    faults: FaultHook,
}

#[derive(Debug, Default)]
struct State {
    objects: HashMap<String, Stored>,
    uploads: HashMap<String, Upload>,
}

#[derive(Debug, Clone)]
struct Stored {
    etag: String,
    meta: ObjectMeta,
    last_modified: SystemTime,
}

#[derive(Debug)]
struct Upload {
    key: String,
    meta: ObjectMeta,
    initiated: SystemTime,
    parts: BTreeMap<u32, (String, Bytes)>,
}

impl MemoryObjects {
    pub(super) fn new(op: Operator, faults: FaultHook) -> Self {
        MemoryObjects {
            op,
            state: Arc::default(),
            writes: Arc::default(),
            faults,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent when a holder panicked: every change is a single insert or remove.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) async fn head(&self, key: &str) -> opendal::Result<Option<ObjectHead>> {
        self.faults.check("HEAD", "")?;
        let stat = match self.op.stat(key).await {
            Ok(stat) => stat,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let etag = if key.ends_with('/') {
            md5_hex(b"")
        } else {
            match self.op.read(key).await {
                Ok(buffer) => md5_hex(&buffer.to_bytes()),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            }
        };
        let stored = self
            .state()
            .objects
            .get(key)
            .filter(|s| s.etag == etag)
            .cloned();
        let (meta, last_modified) = match stored {
            Some(s) => (s.meta, Some(s.last_modified)),
            None => (
                ObjectMeta {
                    content_type: stat.content_type().map(str::to_string),
                    user: BTreeMap::new(),
                },
                stat.last_modified().map(SystemTime::from),
            ),
        };
        Ok(Some(ObjectHead {
            size: stat.content_length(),
            etag: Some(etag),
            last_modified,
            meta,
            checksums: Default::default(),
        }))
    }

    pub(super) async fn put(
        &self,
        key: &str,
        body: Bytes,
        meta: &ObjectMeta,
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        self.faults.check("PUT", "")?;
        let _writing = self.writes.lock().await;
        self.commit("PutObject", key, body, meta, overwrite).await
    }

    /// Writes the object and records its metadata; the caller holds `writes`.
    async fn commit(
        &self,
        op: &'static str,
        key: &str,
        body: Bytes,
        meta: &ObjectMeta,
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        if key.ends_with('/') {
            if !body.is_empty() {
                return Err(refused(
                    op,
                    ErrorKind::IsADirectory,
                    "a directory marker has no content",
                ));
            }
            if overwrite == Overwrite::Forbid && self.op.exists(key).await? {
                return Err(exists(op));
            }
            self.op.create_dir(key).await?;
        } else {
            let mut write = self
                .op
                .write_with(key, body.clone())
                .if_not_exists(overwrite == Overwrite::Forbid);
            if let Some(content_type) = &meta.content_type {
                write = write.content_type(content_type);
            }
            match write.await {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConditionNotMatch => return Err(exists(op)),
                Err(e) => return Err(e),
            }
        }
        let stored = Stored {
            etag: md5_hex(&body),
            meta: meta.clone(),
            last_modified: SystemTime::now(),
        };
        let committed = Committed {
            etag: Some(stored.etag.clone()),
            last_modified: Some(stored.last_modified),
            checksums: Default::default(),
        };
        self.state().objects.insert(key.to_string(), stored);
        Ok(committed)
    }

    pub(super) async fn create_upload(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> opendal::Result<UploadId> {
        self.faults.check("POST", "uploads")?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.state().uploads.insert(
            id.clone(),
            Upload {
                key: key.to_string(),
                meta: meta.clone(),
                initiated: SystemTime::now(),
                parts: BTreeMap::new(),
            },
        );
        Ok(UploadId(id))
    }

    pub(super) async fn upload_part(
        &self,
        key: &str,
        id: &UploadId,
        number: u32,
        body: Bytes,
    ) -> opendal::Result<UploadedPart> {
        self.faults.check("PUT", &part_query(id, number))?;
        self.store_part("UploadPart", key, id, number, body)
    }

    fn store_part(
        &self,
        op: &'static str,
        key: &str,
        id: &UploadId,
        number: u32,
        body: Bytes,
    ) -> opendal::Result<UploadedPart> {
        if !(1..=LOCAL_LIMITS.max_parts).contains(&number) {
            return Err(refused(
                op,
                ErrorKind::Unexpected,
                format!("part number {number} is not in 1..=10000"),
            ));
        }
        let etag = md5_hex(&body);
        let size = body.len() as u64;
        let mut state = self.state();
        let upload = upload_of(&mut state, op, key, id)?;
        upload.parts.insert(number, (etag.clone(), body));
        Ok(UploadedPart {
            number,
            etag,
            size,
            checksums: Default::default(),
        })
    }

    pub(super) async fn copy_part(
        &self,
        key: &str,
        id: &UploadId,
        number: u32,
        source: &str,
        range: Range<u64>,
    ) -> opendal::Result<UploadedPart> {
        const OP: &str = "UploadPartCopy";
        self.faults.check("PUT", &part_query(id, number))?;
        upload_of(&mut self.state(), OP, key, id)?;
        let size = self.op.stat(source).await?.content_length();
        if range.is_empty() || range.end > size {
            return Err(refused(
                OP,
                ErrorKind::RangeNotSatisfied,
                format!("range {range:?} of an object of {size} bytes"),
            ));
        }
        let bytes = self.op.read_with(source).range(range).await?.to_bytes();
        self.store_part(OP, key, id, number, bytes)
    }

    pub(super) async fn list_parts(
        &self,
        key: &str,
        id: &UploadId,
    ) -> opendal::Result<Vec<UploadedPart>> {
        self.faults.check("GET", &format!("uploadId={}", id.0))?;
        let mut state = self.state();
        let upload = upload_of(&mut state, "ListParts", key, id)?;
        Ok(upload
            .parts
            .iter()
            .map(|(number, (etag, body))| UploadedPart {
                number: *number,
                etag: etag.clone(),
                size: body.len() as u64,
                checksums: Default::default(),
            })
            .collect())
    }

    pub(super) async fn list_uploads(&self, prefix: &str) -> opendal::Result<Vec<PendingUpload>> {
        self.faults
            .check("GET", &format!("uploads&prefix={prefix}"))?;
        let mut uploads: Vec<PendingUpload> = self
            .state()
            .uploads
            .iter()
            .filter(|(_, u)| u.key.starts_with(prefix))
            .map(|(id, u)| PendingUpload {
                key: u.key.clone(),
                id: UploadId(id.clone()),
                initiated: Some(u.initiated),
            })
            .collect();
        uploads.sort_by(|a, b| a.key.cmp(&b.key).then(a.initiated.cmp(&b.initiated)));
        Ok(uploads)
    }

    pub(super) async fn complete_upload(
        &self,
        key: &str,
        id: &UploadId,
        parts: &[UploadedPart],
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        const OP: &str = "CompleteMultipartUpload";
        self.faults.check("POST", &format!("uploadId={}", id.0))?;
        let _writing = self.writes.lock().await;
        let (body, meta) = {
            let mut state = self.state();
            let upload = upload_of(&mut state, OP, key, id)?;
            (assemble(OP, upload, parts)?, upload.meta.clone())
        };
        let committed = self.commit(OP, key, body, &meta, overwrite).await?;
        self.state().uploads.remove(&id.0);
        Ok(committed)
    }

    pub(super) async fn abort_upload(&self, key: &str, id: &UploadId) -> opendal::Result<()> {
        self.faults.check("DELETE", &format!("uploadId={}", id.0))?;
        let mut state = self.state();
        upload_of(&mut state, "AbortMultipartUpload", key, id)?;
        state.uploads.remove(&id.0);
        Ok(())
    }

    pub(super) async fn replace_metadata(
        &self,
        key: &str,
        current: &ObjectHead,
        meta: &ObjectMeta,
    ) -> opendal::Result<Committed> {
        const OP: &str = "CopyObject";
        self.faults.check("PUT", "")?;
        let _writing = self.writes.lock().await;
        let body = if key.ends_with('/') {
            if !self.op.exists(key).await? {
                return Err(refused(
                    OP,
                    ErrorKind::NotFound,
                    format!("no object {key:?}"),
                ));
            }
            Bytes::new()
        } else {
            self.op.read(key).await?.to_bytes()
        };
        if current.etag.as_ref().is_some_and(|e| *e != md5_hex(&body)) {
            return Err(refused(
                OP,
                ErrorKind::ConditionNotMatch,
                "the object changed meanwhile",
            ));
        }
        self.commit(OP, key, body, meta, Overwrite::Allow).await
    }
}

fn upload_of<'a>(
    state: &'a mut State,
    op: &'static str,
    key: &str,
    id: &UploadId,
) -> opendal::Result<&'a mut Upload> {
    state
        .uploads
        .get_mut(&id.0)
        .filter(|u| u.key == key)
        .ok_or_else(|| {
            refused(
                op,
                ErrorKind::NotFound,
                "NoSuchUpload: the upload does not exist",
            )
        })
}

/// The object `parts` make, checked as S3 checks them: ascending numbers, known parts, matching ETags, no empty
/// part but the last.
fn assemble(op: &'static str, upload: &Upload, parts: &[UploadedPart]) -> opendal::Result<Bytes> {
    if parts.is_empty() {
        return Err(refused(op, ErrorKind::Unexpected, "no parts"));
    }
    if parts.windows(2).any(|w| w[0].number >= w[1].number) {
        return Err(refused(
            op,
            ErrorKind::Unexpected,
            "InvalidPartOrder: part numbers must ascend",
        ));
    }
    let mut body = BytesMut::new();
    for (i, part) in parts.iter().enumerate() {
        let Some((etag, bytes)) = upload.parts.get(&part.number) else {
            return Err(refused(
                op,
                ErrorKind::Unexpected,
                format!("InvalidPart: part {} was never uploaded", part.number),
            ));
        };
        if *etag != part.etag {
            return Err(refused(
                op,
                ErrorKind::Unexpected,
                format!(
                    "InvalidPart: part {} has ETag {etag}, not {}",
                    part.number, part.etag
                ),
            ));
        }
        if i + 1 < parts.len() && (bytes.len() as u64) < LOCAL_LIMITS.min_part {
            return Err(refused(
                op,
                ErrorKind::Unexpected,
                format!("EntityTooSmall: part {} is empty", part.number),
            ));
        }
        body.extend_from_slice(bytes);
    }
    Ok(body.freeze())
}

fn part_query(id: &UploadId, number: u32) -> String {
    format!("partNumber={number}&uploadId={}", id.0)
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

fn refused(op: &'static str, kind: ErrorKind, what: impl Into<String>) -> Error {
    Error::new(kind, format!("{op}: {}", what.into()))
        .with_operation(op)
        .set_permanent()
}

fn exists(op: &'static str) -> Error {
    refused(
        op,
        ErrorKind::ConditionNotMatch,
        "an object exists at the key",
    )
}
