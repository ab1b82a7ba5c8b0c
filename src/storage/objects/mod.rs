//! The object operations OpenDAL does not expose, behind one type: HEAD with user metadata, PUT and multipart
//! uploads whose state lives in the store (so an upload can be resumed by any gateway after any restart),
//! conditional completion ("create, never replace"), metadata replaced by a copy onto itself, and the store's own
//! checksums of what it stored.
//!
//! Reads, listings, deletes and plain copies stay on OpenDAL; `bucketfs` writes only through here.
//!
//! Backends: `s3` speaks the S3 API in its two dialects (AWS SigV4 for S3-compatible stores, COS signing and
//! `x-cos-*` headers for Tencent COS), signed with reqsign and sent with reqwest; `fs` emulates uploads in a
//! staging directory beside the root; `memory` keeps uploads in the process and commits into the same OpenDAL
//! memory operator the rest of the core reads from.
//!
//! Every error is an `opendal::Error` with the kind the core maps (`NotFound`, `ConditionNotMatch` for a lost
//! conditional write, `PermissionDenied`, `RateLimited`, …) and `temporary` set where a retry may help, so the
//! core treats these operations exactly like OpenDAL's. The `s3` backend has already retried temporary errors
//! by the time one reaches the caller; the others do not retry.
//!
//! Time to error on `s3`: a connection attempt gives up after 3 s; an attempt that moves no byte for 4 s (15 s
//! for CompleteMultipartUpload and copies, which the server works on before answering) is abandoned; temporary
//! failures are retried after 0.2, 0.4, 0.8, 1.6 s (each plus up to 100 % jitter), and no attempt starts once
//! the store has shown no sign of life for 15 s. So a dead or stalled store surfaces within 15 s (measured: ~5 s
//! refused, ~13 s stalled), while a transfer that keeps moving is never cut. Permanent errors are never retried.
//!
//! Fault injection ([`crate::storage::FaultInjector`]) reaches every backend: the `s3` backend checks each HTTP
//! request it sends, `fs` and `memory` check each operation under the method and query S3 would use for it
//! (`PUT partNumber=3&uploadId=…` for a part), so a test's rules mean the same on all of them.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::SystemTime;

use bytes::Bytes;
use opendal::Operator;

use crate::config::StorageConfig;

use super::{StorageError, StorageOptions, StoreHealth};

mod faults;
mod fs;
mod memory;
pub(crate) mod mtime;
mod s3;

use faults::FaultHook;

/// One account's object store for writes and metadata. Cheap to clone (the state is shared).
#[derive(Clone, Debug)]
pub struct ObjectStore {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    S3(s3::S3Objects),
    Fs(fs::FsObjects),
    Memory(memory::MemoryObjects),
}

/// Builds the object store for one account's storage. `op` is the account's OpenDAL operator: the `memory`
/// backend commits into it (so reads and listings through OpenDAL see what was written here); the others only
/// share its configuration.
pub fn build_object_store(
    config: &StorageConfig,
    options: &StorageOptions,
    op: &Operator,
    health: &StoreHealth,
) -> Result<ObjectStore, StorageError> {
    let faults = FaultHook::new(options);
    let backend = match config {
        StorageConfig::Cos { .. } | StorageConfig::S3 { .. } => {
            Backend::S3(s3::S3Objects::new(config, options, faults, health.clone())?)
        }
        StorageConfig::Fs { root } => Backend::Fs(fs::FsObjects::new(root, faults)?),
        StorageConfig::Memory => Backend::Memory(memory::MemoryObjects::new(op.clone(), faults)),
    };
    Ok(ObjectStore { backend })
}

/// The limits every backend but `s3` has: any part size (a part but the last must not be empty).
const LOCAL_LIMITS: UploadLimits = UploadLimits {
    min_part: 1,
    max_part: 5 * GIB,
    max_parts: 10_000,
};

const GIB: u64 = 1024 * 1024 * 1024;

impl ObjectStore {
    /// Whether the store reports the CRC-64 of each part and object it stores (COS), so that what was streamed
    /// can be compared with what arrived.
    pub fn reports_crc64(&self) -> bool {
        matches!(&self.backend, Backend::S3(s) if s.reports_crc64())
    }

    /// Whether the store checks a `Content-MD5` sent with a body (S3 and COS; the local backends' bytes do not
    /// travel, so they have nothing to check).
    pub fn checks_content_md5(&self) -> bool {
        matches!(&self.backend, Backend::S3(_))
    }

    /// The store's limits on multipart uploads.
    pub fn limits(&self) -> UploadLimits {
        match &self.backend {
            Backend::S3(s) => s.limits(),
            Backend::Fs(_) | Backend::Memory(_) => LOCAL_LIMITS,
        }
    }

    /// The object's size, ETag, time, metadata and store checksums; `None` when there is no object at `key`.
    /// A key ending in `/` is a directory marker (on `fs`: the directory).
    pub async fn head(&self, key: &str) -> opendal::Result<Option<ObjectHead>> {
        match &self.backend {
            Backend::S3(s) => s.head(key).await,
            Backend::Fs(s) => s.head(key).await,
            Backend::Memory(s) => s.head(key).await,
        }
    }

    /// Stores `body` at `key` in one request. With [`Overwrite::Forbid`] the write fails with
    /// `ConditionNotMatch` when an object exists at `key`, and nothing changes.
    pub async fn put(
        &self,
        key: &str,
        body: Bytes,
        meta: &ObjectMeta,
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        self.put_checked(key, body, meta, overwrite, None).await
    }

    /// `put`, with the body's MD5 sent as `Content-MD5`: S3 and COS refuse a body that arrives damaged
    /// (`BadDigest`) and store nothing. The local backends compute nothing more (their bytes do not travel).
    pub async fn put_checked(
        &self,
        key: &str,
        body: Bytes,
        meta: &ObjectMeta,
        overwrite: Overwrite,
        content_md5: Option<[u8; 16]>,
    ) -> opendal::Result<Committed> {
        match &self.backend {
            Backend::S3(s) => s.put(key, body, meta, overwrite, content_md5).await,
            Backend::Fs(s) => s.put(key, body, meta, overwrite).await,
            Backend::Memory(s) => s.put(key, body, meta, overwrite).await,
        }
    }

    /// Starts a multipart upload whose object will carry `meta`. The upload lives in the store until it is
    /// completed or aborted, so any gateway can continue it ([`ObjectStore::list_uploads`],
    /// [`ObjectStore::list_parts`]).
    pub async fn create_upload(&self, key: &str, meta: &ObjectMeta) -> opendal::Result<UploadId> {
        match &self.backend {
            Backend::S3(s) => s.create_upload(key, meta).await,
            Backend::Fs(s) => s.create_upload(key, meta).await,
            Backend::Memory(s) => s.create_upload(key, meta).await,
        }
    }

    /// Stores part `number` (1-based; uploading a number again replaces that part). `NotFound` when the upload
    /// is gone (completed, aborted or never there).
    pub async fn upload_part(
        &self,
        key: &str,
        id: &UploadId,
        number: u32,
        body: Bytes,
    ) -> opendal::Result<UploadedPart> {
        self.upload_part_checked(key, id, number, body, None).await
    }

    /// `upload_part`, with the part's MD5 sent as `Content-MD5`: the store refuses a part that arrives damaged.
    pub async fn upload_part_checked(
        &self,
        key: &str,
        id: &UploadId,
        number: u32,
        body: Bytes,
        content_md5: Option<[u8; 16]>,
    ) -> opendal::Result<UploadedPart> {
        match &self.backend {
            Backend::S3(s) => s.upload_part(key, id, number, body, content_md5).await,
            Backend::Fs(s) => s.upload_part(key, id, number, body).await,
            Backend::Memory(s) => s.upload_part(key, id, number, body).await,
        }
    }

    /// Makes bytes `range` of the object at `source` (same bucket) part `number` of the upload, without them
    /// passing through this process on `s3` (UploadPartCopy). `RangeNotSatisfied` when the range is empty or
    /// beyond the source's end.
    pub async fn copy_part(
        &self,
        key: &str,
        id: &UploadId,
        number: u32,
        source: &str,
        range: Range<u64>,
    ) -> opendal::Result<UploadedPart> {
        match &self.backend {
            Backend::S3(s) => s.copy_part(key, id, number, source, range).await,
            Backend::Fs(s) => s.copy_part(key, id, number, source, range).await,
            Backend::Memory(s) => s.copy_part(key, id, number, source, range).await,
        }
    }

    /// Every part the upload holds, sorted by number (all pages).
    pub async fn list_parts(&self, key: &str, id: &UploadId) -> opendal::Result<Vec<UploadedPart>> {
        match &self.backend {
            Backend::S3(s) => s.list_parts(key, id).await,
            Backend::Fs(s) => s.list_parts(key, id).await,
            Backend::Memory(s) => s.list_parts(key, id).await,
        }
    }

    /// Every pending upload whose key starts with `prefix` (all pages), sorted by key.
    pub async fn list_uploads(&self, prefix: &str) -> opendal::Result<Vec<PendingUpload>> {
        match &self.backend {
            Backend::S3(s) => s.list_uploads(prefix).await,
            Backend::Fs(s) => s.list_uploads(prefix).await,
            Backend::Memory(s) => s.list_uploads(prefix).await,
        }
    }

    /// Commits the upload as the object at `key`, made of `parts` in order (each with the ETag the store gave
    /// it). With [`Overwrite::Forbid`] it fails with `ConditionNotMatch` when an object exists at `key`; the
    /// upload then survives, to be completed differently or aborted.
    pub async fn complete_upload(
        &self,
        key: &str,
        id: &UploadId,
        parts: &[UploadedPart],
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        match &self.backend {
            Backend::S3(s) => s.complete_upload(key, id, parts, overwrite).await,
            Backend::Fs(s) => s.complete_upload(key, id, parts, overwrite).await,
            Backend::Memory(s) => s.complete_upload(key, id, parts, overwrite).await,
        }
    }

    /// Drops the upload and its parts. `NotFound` when it is already gone.
    pub async fn abort_upload(&self, key: &str, id: &UploadId) -> opendal::Result<()> {
        match &self.backend {
            Backend::S3(s) => s.abort_upload(key, id).await,
            Backend::Fs(s) => s.abort_upload(key, id).await,
            Backend::Memory(s) => s.abort_upload(key, id).await,
        }
    }

    /// Replaces the object's content type and user metadata with `meta` (all of it: metadata not in `meta` is
    /// dropped, so merge first), keeping its bytes. `current` is the HEAD the caller merged `meta` from: the
    /// change applies only to that version of the object (`ConditionNotMatch` when its ETag changed meanwhile,
    /// where the store checks copy preconditions), and its size decides between a copy onto itself and a
    /// multipart copy (objects over 5 GiB, the stores' limit for one copy).
    ///
    /// Why `current` (the brief's shape was `(key, meta)`): every caller HEADs first to merge, so passing that
    /// HEAD saves a request per change, and it turns "copy whatever is there now" into "change the version I
    /// read", which is what a metadata merge needs. Returns what the store says of the new version (on `s3` its
    /// ETag and Last-Modified from the copy's answer).
    pub async fn replace_metadata(
        &self,
        key: &str,
        current: &ObjectHead,
        meta: &ObjectMeta,
    ) -> opendal::Result<Committed> {
        match &self.backend {
            Backend::S3(s) => s.replace_metadata(key, current, meta).await,
            Backend::Fs(s) => s.replace_metadata(key, current, meta).await,
            Backend::Memory(s) => s.replace_metadata(key, current, meta).await,
        }
    }

    /// Whether a plain copy (OpenDAL's, or a read and a write where the store has no copy) keeps the object's
    /// content type and user metadata: on S3 and COS (CopyObject copies them); a local directory's and the
    /// memory store's copies carry the bytes only.
    pub fn copy_keeps_metadata(&self) -> bool {
        matches!(&self.backend, Backend::S3(_))
    }

    /// Whether this is Tencent COS (its own client, cosfs, reads whole-second times in `x-cos-meta-mtime`).
    pub fn is_cos(&self) -> bool {
        matches!(&self.backend, Backend::S3(s) if s.is_cos())
    }

    /// Objects larger than `limit` get their metadata replaced by a multipart copy in parts of about `limit`
    /// bytes (`s3` only; default and maximum 5 GiB, the S3 and COS limit of one CopyObject). For stores with a
    /// lower copy limit, and for tests of the multipart path with small objects.
    pub fn with_single_copy_limit(mut self, limit: u64) -> Self {
        if let Backend::S3(s) = &mut self.backend {
            s.set_single_copy_limit(limit);
        }
        self
    }
}

/// What an object carries besides its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    /// User metadata by name, lower-case and without the store's prefix: `mtime`, not `x-amz-meta-mtime` or
    /// `x-cos-meta-mtime`. Values are ASCII (the stores send them as HTTP header values).
    pub user: BTreeMap<String, String>,
}

/// The checksums a store reports for an object it stored, where it reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreChecksums {
    /// COS `x-cos-hash-crc64ecma`: CRC-64/XZ of the whole object.
    pub crc64ecma: Option<u64>,
    /// S3 `x-amz-checksum-crc32` (base64 of the big-endian CRC32), when the store returns one.
    pub crc32: Option<String>,
    /// The MD5 of the stored bytes, when the ETag is one: a single PUT or part not encrypted with KMS or a
    /// customer key (those ETags are 32 hex digits too, but not an MD5).
    pub md5: Option<[u8; 16]>,
}

/// A HEAD of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    /// Without quotes.
    pub etag: Option<String>,
    pub last_modified: Option<SystemTime>,
    pub meta: ObjectMeta,
    pub checksums: StoreChecksums,
}

/// Whether a write may replace an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    Allow,
    /// Create only: the write fails with `ConditionNotMatch` if the key exists when it completes (S3
    /// `If-None-Match: *`, COS `x-cos-forbid-overwrite: true`; best effort where the store has neither).
    Forbid,
}

/// A multipart upload's id, as the store gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(pub String);

/// One part stored in a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    /// 1-based.
    pub number: u32,
    /// Without quotes.
    pub etag: String,
    pub size: u64,
    /// What the store says it received (UploadPart's answer only; empty for parts listed or copied).
    pub checksums: StoreChecksums,
}

/// A multipart upload the store holds, not yet completed or aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    pub key: String,
    pub id: UploadId,
    pub initiated: Option<SystemTime>,
}

/// What the store says of an object it has just committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    pub etag: Option<String>,
    pub last_modified: Option<SystemTime>,
    pub checksums: StoreChecksums,
}

/// The store's limits on multipart uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Smallest part but the last (S3: 5 MiB, COS: 1 MiB, fs/memory: 1 byte).
    pub min_part: u64,
    /// Largest part (5 GiB).
    pub max_part: u64,
    /// Most parts in one upload (10,000).
    pub max_parts: u32,
}
