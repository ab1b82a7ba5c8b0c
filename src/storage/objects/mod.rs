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
//! core treats these operations exactly like OpenDAL's.

use std::collections::BTreeMap;
use std::time::SystemTime;

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
