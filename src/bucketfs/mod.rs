//! The filesystem core: names ↔ keys, directories, listing, streaming reads and writes, and the policy.
//! It knows nothing of FUSE or FTP: it speaks paths, byte streams and `FsError`.

mod attributes;
mod budget;
mod cache;
pub mod digest;
mod error;
mod leases;
mod list;
pub mod metrics;
mod namespace;
pub mod object_meta;
mod path;
mod policy;
mod read;
mod recent;
mod types;
mod write;

use std::sync::Arc;
use std::time::Duration;

use opendal::Operator;

use crate::config::{Account, Config};
use crate::storage::objects::ObjectStore;
use crate::storage::AccountStore;

pub use attributes::XattrWrite;
pub use budget::{MemoryBudget, Reservation};
pub use error::{FsError, FsErrorKind, FsResult};
pub use leases::{LeaseAnswer, LeaseToken, WriterLeases};
pub use list::{Listing, ReadDir};
pub use namespace::Access;
pub use object_meta::{AttrChange, FileAttrs};
pub use path::{Key, MAX_KEY_BYTES};
pub use policy::{Permissions, Policy};
pub use read::{ByteStream, ReadHandle};
pub use types::{DirEntry, FileKind, Metadata};
pub use write::{sweep_interval, SweepReport, WriteHandle, WriteIntent};

use cache::MetaCache;

/// NAME_MAX of Linux filesystems.
const LOCAL_NAME_MAX: usize = 255;

/// Tuning of one filesystem; from the config, or chosen by tests.
#[derive(Debug, Clone)]
pub struct Settings {
    pub part_size: u64,
    /// Parts in flight per upload (`upload_thread_num`).
    pub upload_concurrency: usize,
    pub single_file_max_size: u64,
    pub max_list_file: usize,
    pub max_rename_objects: usize,
    pub metadata_ttl: Duration,
    /// Bytes the metadata cache may take (`metadata_cache_size`).
    pub metadata_cache_bytes: u64,
    /// Permission bits of files that carry none of their own (the mount's `file_mode`).
    pub file_mode: u16,
    /// "One writer per file" across the nodes of a cluster (`[CLUSTER]`); `None`: this process alone decides.
    pub writer_leases: Option<Arc<dyn WriterLeases>>,
    /// How long an interrupted FTP upload is kept for resume (`upload_resume_ttl`; zero: aborted at once).
    pub upload_resume_ttl: Duration,
    /// Digests computed while uploading and kept as metadata (`upload_digests`).
    pub upload_digests: digest::AlgorithmSet,
    /// The most bytes read from the store to compute a digest a client asks for (`hash_max_size`).
    pub hash_max_size: u64,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            part_size: config.part_size(),
            upload_concurrency: config.optional.upload_thread_num.max(1),
            single_file_max_size: config.file.single_file_max_size,
            max_list_file: config.optional.max_list_file,
            max_rename_objects: config.optional.max_rename_objects,
            metadata_ttl: config.optional.metadata_ttl,
            metadata_cache_bytes: config.optional.metadata_cache_size,
            file_mode: config.optional.file_mode,
            writer_leases: None,
            upload_resume_ttl: config.optional.upload_resume_ttl,
            upload_digests: config.optional.upload_digests,
            hash_max_size: config.optional.hash_max_size,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            part_size: 8 * 1024 * 1024,
            upload_concurrency: 4,
            single_file_max_size: 200 * 1024 * 1024 * 1024,
            max_list_file: 10_000,
            max_rename_objects: 10_000,
            metadata_ttl: Duration::from_secs(1),
            metadata_cache_bytes: 16 * 1024 * 1024,
            file_mode: 0o644,
            writer_leases: None,
            upload_resume_ttl: Duration::ZERO,
            upload_digests: digest::AlgorithmSet::of(&[
                digest::Algorithm::Sha256,
                digest::Algorithm::Crc32,
            ]),
            hash_max_size: 1024 * 1024 * 1024,
        }
    }
}

/// One account's bucket as a filesystem. Cheap to clone; FUSE and FTP share one instance (one cache, one writer
/// table). The policy belongs to the handle: `with_policy` gives new FTP logins an account's changed authority
/// (SIGHUP) over the same cache and writers, while the mount and the sessions already open keep theirs.
#[derive(Clone)]
pub struct BucketFs {
    inner: Arc<Inner>,
    policy: Policy,
}

struct Inner {
    op: Operator,
    objects: ObjectStore,
    settings: Settings,
    budget: MemoryBudget,
    cache: MetaCache,
    /// Files being written now, with their size so far: `stat` shows them, a second writer is refused.
    writers: write::WriterTable,
    /// Uploads kept for resume that this process knows of (for listings).
    pending: write::PendingIndex,
    /// The headers of the objects this gateway just wrote (see `recent`).
    recent: recent::RecentWrites,
    /// Longest name (one path segment) the store can hold, where it is shorter than a key may be.
    max_name_bytes: Option<usize>,
}

impl BucketFs {
    pub fn new(
        store: AccountStore,
        policy: Policy,
        mut settings: Settings,
        budget: MemoryBudget,
    ) -> Self {
        let AccountStore { op, objects } = store;
        // S3 needs parts of 5 MiB (COS: 1 MiB): a smaller part size is raised to the store's minimum.
        let limits = objects.limits();
        settings.part_size = settings
            .part_size
            .clamp(limits.min_part.max(1), limits.max_part);
        let cache = MetaCache::new(settings.metadata_ttl, settings.metadata_cache_bytes);
        let writers = write::WriterTable::new(settings.writer_leases.clone());
        // A local directory holds names of at most NAME_MAX bytes; object stores only limit whole keys.
        let max_name_bytes = is_local_directory(&op).then_some(LOCAL_NAME_MAX);
        Self {
            policy,
            inner: Arc::new(Inner {
                op,
                objects,
                settings,
                budget,
                cache,
                writers,
                pending: write::PendingIndex::default(),
                recent: recent::RecentWrites::default(),
                max_name_bytes,
            }),
        }
    }

    /// The filesystem of one configured account.
    /// `writer_leases`: the cluster's, when there is one.
    pub fn for_account(
        store: AccountStore,
        account: &Account,
        config: &Config,
        budget: MemoryBudget,
        writer_leases: Option<Arc<dyn WriterLeases>>,
    ) -> Self {
        Self::new(
            store,
            Policy::new(account.authority, account.delete_enable),
            Settings {
                writer_leases,
                ..Settings::from_config(config)
            },
            budget,
        )
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The same filesystem (cache, writers, store) under another policy.
    pub fn with_policy(&self, policy: Policy) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            policy,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn budget(&self) -> &MemoryBudget {
        &self.inner.budget
    }

    pub(crate) fn op(&self) -> &Operator {
        &self.inner.op
    }

    /// Whether the account's store is a local directory (the `fs` backend) rather than an object store.
    pub(crate) fn is_local_directory(&self) -> bool {
        is_local_directory(self.op())
    }

    pub(crate) fn objects(&self) -> &ObjectStore {
        &self.inner.objects
    }

    pub(crate) fn writers(&self) -> &write::WriterTable {
        &self.inner.writers
    }

    pub(crate) fn recent_writes(&self) -> &recent::RecentWrites {
        &self.inner.recent
    }

    pub(crate) fn pending(&self) -> &write::PendingIndex {
        &self.inner.pending
    }

    pub(crate) fn cache(&self) -> &MetaCache {
        &self.inner.cache
    }
}

fn is_local_directory(op: &Operator) -> bool {
    op.info().scheme() == "fs"
}

#[cfg(test)]
mod tests;
