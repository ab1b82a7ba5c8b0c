//! Names: stat, mkdir, rmdir, delete, rename. Directories are `dir/` markers or implicit common prefixes.

use futures::{StreamExt, TryStreamExt};
use tracing::{info, instrument, warn};

use std::sync::Arc;

use super::attributes::{DirState, Probe};
use super::error::{FsError, FsErrorKind, FsResult};
use super::object_meta::FileAttrs;
use super::path::Key;
use super::types::{FileKind, Metadata};
use super::{cache::Cached, BucketFs};
use crate::storage::objects::ObjectMeta;

/// What `access(2)` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

/// Copies in flight during a directory rename.
const RENAME_CONCURRENCY: usize = 8;

impl BucketFs {
    /// Metadata of a name with its stored attributes (mode, owner, times): a HEAD unless the cache knows them;
    /// directories are markers or implicit prefixes, files win over directories of the same name.
    #[instrument(level = "debug", skip(self), fields(path = %key.display()))]
    pub async fn stat(&self, key: &Key) -> FsResult<Metadata> {
        self.check_name(key)?;
        self.stat_with_attrs(key).await
    }

    pub(crate) async fn stat_key(&self, key: &Key) -> FsResult<Metadata> {
        match self.local_stat(key) {
            Some(answer) => answer,
            None => self.stat_from_store(key).await,
        }
    }

    /// `stat_key`'s answer when it needs no request: the root, a file being written, a cached answer.
    fn local_stat(&self, key: &Key) -> Option<FsResult<Metadata>> {
        if key.is_root() {
            // No object keeps the root's attributes: it shows the times this account moved, if any.
            let root = Metadata::directory().with_attrs(Arc::new(FileAttrs::default()));
            return Some(Ok(self.cache().with_local_times(key, root)));
        }
        if let Some(entry) = self.writers().get(key) {
            let now = std::time::SystemTime::now();
            let meta = Metadata::file(entry.size(), Some(now)).with_attrs(Arc::new(entry.attrs()));
            return Some(Ok(meta));
        }
        match self.cache().get(key) {
            Cached::Present(meta) => Some(Ok(self.cache().with_local_times(key, meta))),
            Cached::Absent => Some(Err(FsError::not_found(&key.display()))),
            Cached::Unknown => None,
        }
    }

    /// Whether `stat_key` answers without asking the store.
    pub(crate) fn stat_is_known(&self, key: &Key) -> bool {
        self.local_stat(key).is_some()
    }

    /// An entry of `key`'s directory was added, removed or renamed now: the directory's times move.
    pub(crate) fn entry_changed(&self, key: &Key) {
        if let Some(parent) = key.parent() {
            self.cache()
                .dir_changed(&parent, std::time::SystemTime::now());
        }
    }

    /// Asks the store (not the cache) and records the answer as an observation, so that a change this account
    /// made meanwhile is not overwritten by an older answer.
    pub(crate) async fn stat_from_store(&self, key: &Key) -> FsResult<Metadata> {
        let seen = self.cache().observe();
        let found = self.stat_store(key).await?;
        self.cache().put_observed(key, found.clone(), seen);
        found
            .map(|meta| self.cache().with_local_times(key, meta))
            .ok_or_else(|| FsError::not_found(&key.display()))
    }

    /// Asks the store: a HEAD of the object and a one-key listing of the prefix, concurrently (and a HEAD of
    /// the directory's marker, when there is one, for its attributes).
    pub(crate) async fn stat_store(&self, key: &Key) -> FsResult<Option<Metadata>> {
        Ok(match self.probe(key).await? {
            Probe::Object(head) => Some(Metadata::from_head(&head, false)),
            Probe::Marker(head) => Some(Metadata::from_head(&head, true)),
            // No object carries attributes: none are stored, and that is known.
            Probe::Implicit => {
                Some(Metadata::directory().with_attrs(Arc::new(FileAttrs::default())))
            }
            Probe::Absent => None,
        })
    }

    /// Whether a marker, or only other keys, or nothing exists under `key/`.
    pub(crate) async fn dir_state(&self, key: &Key) -> FsResult<DirState> {
        let prefix = key.dir_prefix();
        let listed = async {
            let mut lister = self.op().lister_with(&prefix).limit(1).await?;
            lister.try_next().await
        }
        .await;
        match listed {
            Ok(Some(entry)) if entry.path() == prefix => Ok(DirState::Marker),
            Ok(Some(_)) => Ok(DirState::Implicit),
            Ok(None) => Ok(DirState::Absent),
            Err(e) if is_absent(&e) => Ok(DirState::Absent),
            Err(e) => Err(FsError::store(&format!("list {}", key.display()), e)),
        }
    }

    /// The directory `path` must exist (for mkdir, create, rename targets).
    pub(crate) async fn require_dir(&self, key: &Key) -> FsResult<()> {
        match self.stat_key(key).await {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(FsError::new(
                FsErrorKind::NotADirectory,
                format!("{}: not a directory", key.display()),
            )),
            Err(e) => Err(e),
        }
    }

    /// Checks that `key` is a directory one may enter (FTP CWD): every account may, whatever its authority.
    #[instrument(level = "debug", skip(self), fields(path = %key.display()))]
    pub async fn enter(&self, key: &Key) -> FsResult<()> {
        self.check_name(key)?;
        self.require_dir(key).await
    }

    /// Metadata of a file; a directory is an error (FTP SIZE and MDTM describe files only).
    #[instrument(level = "debug", skip(self), fields(path = %key.display()))]
    pub async fn stat_file(&self, key: &Key) -> FsResult<Metadata> {
        let meta = self.stat(key).await?;
        if meta.is_dir() {
            return Err(FsError::new(
                FsErrorKind::IsADirectory,
                format!("{}: not a plain file", key.display()),
            ));
        }
        Ok(meta)
    }

    /// `access(2)`: whether the entry exists and this account may do what `wanted` asks (the policy table, and
    /// execute only for directories or when the default file mode has an execute bit).
    #[instrument(level = "debug", skip(self), fields(path = %key.display()))]
    pub async fn access(&self, key: &Key, wanted: Access) -> FsResult<()> {
        let meta = self.stat(key).await?;
        let path = key.display();
        if wanted.read {
            self.policy().check_read("read", &path)?;
        }
        if wanted.write {
            self.policy().check_write("write", &path)?;
        }
        let mode = meta
            .attrs
            .as_ref()
            .and_then(|a| a.mode)
            .unwrap_or(u32::from(self.settings().file_mode));
        if wanted.execute && !meta.is_dir() && mode & 0o111 == 0 {
            return Err(FsError::new(
                FsErrorKind::PermissionDenied,
                format!("{path}: not executable"),
            ));
        }
        Ok(())
    }

    /// Whether `key` exists, with its metadata.
    pub async fn lookup(&self, key: &Key) -> FsResult<Option<Metadata>> {
        self.check_name(key)?;
        self.lookup_key(key).await
    }

    pub(crate) async fn lookup_key(&self, key: &Key) -> FsResult<Option<Metadata>> {
        match self.stat_key(key).await {
            Ok(meta) => Ok(Some(meta)),
            Err(e) if e.kind() == FsErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a directory marker `path/`.
    pub async fn mkdir(&self, key: &Key) -> FsResult<Metadata> {
        self.mkdir_with(key, &FileAttrs::default()).await
    }

    /// Creates a directory marker `path/` carrying `attrs` (the mount's `mkdir`: mode, owner, times).
    #[instrument(level = "info", skip(self, attrs), fields(path = %key.display()))]
    pub async fn mkdir_with(&self, key: &Key, attrs: &FileAttrs) -> FsResult<Metadata> {
        self.check_name(key)?;
        self.policy().check_write("mkdir", &key.display())?;
        if key.is_root() || self.lookup_key(key).await?.is_some() {
            return Err(FsError::new(
                FsErrorKind::AlreadyExists,
                format!("{}: already exists", key.display()),
            ));
        }
        if let Some(parent) = key.parent() {
            self.require_dir(&parent).await?;
        }
        let meta = if *attrs == FileAttrs::default() {
            self.op()
                .create_dir(&key.dir_prefix())
                .await
                .map_err(|e| FsError::store(&format!("mkdir {}", key.display()), e))?;
            Metadata::directory()
        } else {
            self.put_marker(key, attrs).await?
        };
        self.cache().put(key, Some(meta.clone()));
        self.entry_changed(key);
        info!(path = %key.display(), "directory created");
        Ok(meta)
    }

    /// Removes an empty directory (its marker).
    #[instrument(level = "info", skip(self), fields(path = %key.display()))]
    pub async fn rmdir(&self, key: &Key) -> FsResult<()> {
        self.check_name(key)?;
        if key.is_root() {
            return Err(FsError::new(
                FsErrorKind::RootDirectory,
                "the root directory cannot be removed",
            ));
        }
        self.policy().check_destroy("rmdir", &key.display())?;
        let meta = self.stat_key(key).await?;
        if !meta.is_dir() {
            return Err(FsError::new(
                FsErrorKind::NotADirectory,
                format!("{}: not a directory", key.display()),
            ));
        }
        if !self.dir_is_empty(key).await? {
            return Err(FsError::new(
                FsErrorKind::NotEmpty,
                format!("{}: directory not empty", key.display()),
            ));
        }
        self.op()
            .delete(&key.dir_prefix())
            .await
            .map_err(|e| FsError::store(&format!("rmdir {}", key.display()), e))?;
        self.cache().put(key, None);
        self.cache().forget_local_times(key);
        self.entry_changed(key);
        info!(path = %key.display(), "directory removed");
        Ok(())
    }

    /// True when nothing but the marker lies under `key/`.
    async fn dir_is_empty(&self, key: &Key) -> FsResult<bool> {
        let prefix = key.dir_prefix();
        let listed = async {
            let mut lister = self.op().lister_with(&prefix).limit(2).await?;
            while let Some(entry) = lister.try_next().await? {
                if entry.path() != prefix {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        .await;
        listed.or_else(|e| {
            if is_absent(&e) {
                Ok(true)
            } else {
                Err(FsError::store(&format!("list {}", key.display()), e))
            }
        })
    }

    /// Deletes a file.
    #[instrument(level = "info", skip(self), fields(path = %key.display()))]
    pub async fn remove_file(&self, key: &Key) -> FsResult<()> {
        self.check_name(key)?;
        self.policy().check_destroy("delete", &key.display())?;
        self.recent_writes().forget(key);
        if self.writers().unlink(key).await {
            // Open for writing: the name goes away now and what is being written goes nowhere (unlink of an open
            // file); a version of it already in the store goes too.
            if let Some(meta) = self.stat_store(key).await? {
                if !meta.is_dir() {
                    self.op()
                        .delete(key.as_str())
                        .await
                        .map_err(|e| FsError::store(&format!("delete {}", key.display()), e))?;
                }
            }
            self.cache().put(key, None);
            self.cache().forget_local_times(key);
            self.entry_changed(key);
            info!(path = %key.display(), "file deleted while open for writing");
            return Ok(());
        }
        let meta = match self.stat_key(key).await {
            Ok(meta) => meta,
            // A name that is only an upload kept for resume: deleting it discards the upload.
            Err(e) if e.kind() == FsErrorKind::NotFound && self.discard_pending(key).await? => {
                info!(path = %key.display(), "interrupted upload discarded");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            return Err(FsError::new(
                FsErrorKind::IsADirectory,
                format!("{}: is a directory", key.display()),
            ));
        }
        if self.pending().remove(key) {
            self.discard_pending(key).await?;
        }
        self.op()
            .delete(key.as_str())
            .await
            .map_err(|e| FsError::store(&format!("delete {}", key.display()), e))?;
        self.cache().put(key, None);
        self.cache().forget_local_times(key);
        self.entry_changed(key);
        info!(path = %key.display(), "file deleted");
        Ok(())
    }

    /// Renames a file (server-side copy, then delete) or a directory (every key under it, up to
    /// `max_rename_objects`). A failure never leaves a half-renamed tree silently: copies are rolled back,
    /// and originals that could not be deleted are reported.
    #[instrument(level = "info", skip(self), fields(from = %from.display(), to = %to.display()))]
    pub async fn rename(&self, from: &Key, to: &Key) -> FsResult<()> {
        self.check_name(from)?;
        self.check_name(to)?;
        self.policy().check_write("rename", &from.display())?;
        if from.is_root() || to.is_root() {
            return Err(FsError::new(
                FsErrorKind::RootDirectory,
                "the root directory cannot be renamed",
            ));
        }
        if from == to {
            self.stat_key(from).await?;
            return Ok(());
        }
        self.recent_writes().forget(from);
        self.recent_writes().forget(to);
        if to.starts_with(from) {
            return Err(FsError::new(
                FsErrorKind::InvalidName,
                format!(
                    "cannot move {} into itself ({})",
                    from.display(),
                    to.display()
                ),
            ));
        }
        // Held to the end: writers under `from` commit after they were moved to `to`, not behind our back.
        let _renaming = self.writers().begin_rename(from).await;
        self.writers().settle(to).await;
        // A file being written at the target would lose its name; refuse rather than guess.
        if self.writers().any_under(to) {
            return Err(FsError::busy(&to.display()));
        }
        let source = self.stat_key(from).await?;
        if let Some(parent) = to.parent() {
            self.require_dir(&parent).await?;
        }
        if let Some(target) = self.lookup_key(to).await? {
            self.policy().check_destroy("rename onto", &to.display())?;
            match (source.kind, target.kind) {
                (FileKind::File | FileKind::Symlink | FileKind::Special, FileKind::Directory) => {
                    return Err(FsError::new(
                        FsErrorKind::IsADirectory,
                        format!("{}: is a directory", to.display()),
                    ))
                }
                (FileKind::Directory, FileKind::File | FileKind::Symlink | FileKind::Special) => {
                    return Err(FsError::new(
                        FsErrorKind::NotADirectory,
                        format!("{}: not a directory", to.display()),
                    ))
                }
                (FileKind::Directory, FileKind::Directory) if !self.dir_is_empty(to).await? => {
                    return Err(FsError::new(
                        FsErrorKind::NotEmpty,
                        format!("{}: directory not empty", to.display()),
                    ))
                }
                _ => {}
            }
        }
        let result = match source.kind {
            // A file being written that is not in the store yet only changes its name.
            FileKind::File | FileKind::Symlink | FileKind::Special
                if self.writing_size(from).is_some() =>
            {
                match self.stat_store(from).await? {
                    Some(_) => self.rename_file(from, to).await,
                    None => Ok(()),
                }
            }
            FileKind::File | FileKind::Symlink | FileKind::Special => {
                self.rename_file(from, to).await
            }
            FileKind::Directory => self.rename_dir(from, to).await,
        };
        if result.is_ok() {
            // Files being written under the old name commit under the new one.
            self.writers().rename(from, to);
        }
        self.cache().forget_tree(from);
        self.cache().forget_tree(to);
        if result.is_ok() {
            // The entry keeps its times (a rename copies the metadata), but its change time moves, and so do the
            // times of both directories.
            self.cache().move_local_times(from, to);
            self.cache().node_changed(to, std::time::SystemTime::now());
            self.entry_changed(from);
            self.entry_changed(to);
        }
        result
    }

    async fn rename_file(&self, from: &Key, to: &Key) -> FsResult<()> {
        let context = || format!("rename {} to {}", from.display(), to.display());
        self.copy_object(from.as_str(), to.as_str())
            .await
            .map_err(|e| FsError::store(&context(), e))?;
        if let Err(e) = self.op().delete(from.as_str()).await {
            return Err(FsError::new(
                FsErrorKind::Store,
                format!(
                    "{}: copied, but the original could not be deleted, so both exist: {e}",
                    context()
                ),
            ));
        }
        info!(from = %from.display(), to = %to.display(), "file renamed");
        Ok(())
    }

    async fn rename_dir(&self, from: &Key, to: &Key) -> FsResult<()> {
        let context = || format!("rename {} to {}", from.display(), to.display());
        let from_prefix = from.dir_prefix();
        let to_prefix = to.dir_prefix();
        let limit = self.settings().max_rename_objects;

        let mut keys = Vec::new();
        let mut lister = self
            .op()
            .lister_with(&from_prefix)
            .recursive(true)
            .await
            .map_err(|e| FsError::store(&context(), e))?;
        while let Some(entry) = lister
            .try_next()
            .await
            .map_err(|e| FsError::store(&context(), e))?
        {
            if keys.len() == limit {
                return Err(FsError::new(
                    FsErrorKind::TooManyObjects,
                    format!(
                        "{}: more than {limit} objects (max_rename_objects); nothing was moved",
                        context()
                    ),
                ));
            }
            keys.push(entry.path().to_string());
        }
        // An implicit directory has no marker; give the new name one so it survives as a directory.
        if !keys.contains(&from_prefix) {
            keys.push(from_prefix.clone());
        }

        // Each copy owns its key: a future borrowing from `keys` through the closure is not provably `Send`
        // (a higher-ranked lifetime), and the adapters run this as a spawned task.
        let copies = futures::stream::iter(keys.iter().cloned().map(|source| {
            let target = format!("{to_prefix}{}", &source[from_prefix.len()..]);
            async move {
                let result = if source.ends_with('/') {
                    self.copy_marker(&source, &target).await
                } else {
                    self.copy_object(&source, &target).await
                };
                (target, result)
            }
        }))
        .buffer_unordered(RENAME_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;

        let failed = copies
            .iter()
            .find_map(|(_, r)| r.as_ref().err())
            .map(|e| e.to_string());
        if let Some(first_error) = failed {
            let made: Vec<String> = copies
                .into_iter()
                .filter(|(_, r)| r.is_ok())
                .map(|(t, _)| t)
                .collect();
            let rollback = self.op().delete_iter(made.clone()).await;
            let fate = match rollback {
                Ok(()) => "the copies were removed; nothing was moved".to_string(),
                Err(e) => format!(
                    "{} copies under {} could not be removed ({e})",
                    made.len(),
                    to.display()
                ),
            };
            return Err(FsError::new(
                FsErrorKind::Store,
                format!("{}: {first_error}; {fate}", context()),
            ));
        }

        let moved = keys.len();
        if let Err(e) = self.op().delete_iter(keys).await {
            warn!(from = %from.display(), to = %to.display(), error = %e, "originals not deleted after rename");
            return Err(FsError::new(
                FsErrorKind::Store,
                format!("{}: all {moved} objects were copied, but originals could not be deleted, so both exist: {e}", context()),
            ));
        }
        info!(from = %from.display(), to = %to.display(), objects = moved, "directory renamed");
        Ok(())
    }

    /// Server-side copy where the store has one (S3 and COS: CopyObject, or multipart copy above 5 GiB);
    /// otherwise the bytes are streamed through this process.
    /// Copies an object with its content type and user metadata (its attributes).
    pub(crate) async fn copy_object(&self, from: &str, to: &str) -> opendal::Result<()> {
        if self.objects().copy_keeps_metadata() {
            return self.copy_bytes(from, to).await;
        }
        let Some(source) = self.objects().head(from).await? else {
            return Err(opendal::Error::new(
                opendal::ErrorKind::NotFound,
                format!("{from}: gone before it could be copied"),
            ));
        };
        self.copy_bytes(from, to).await?;
        if source.meta == ObjectMeta::default() {
            return Ok(());
        }
        let Some(copied) = self.objects().head(to).await? else {
            return Err(opendal::Error::new(
                opendal::ErrorKind::NotFound,
                format!("{to}: gone right after it was copied"),
            ));
        };
        self.objects()
            .replace_metadata(to, &copied, &source.meta)
            .await
            .map(|_| ())
    }

    async fn copy_bytes(&self, from: &str, to: &str) -> opendal::Result<()> {
        if self.op().info().capability().copy {
            return self.op().copy(from, to).await.map(|_| ());
        }
        let mut writer = self
            .op()
            .writer_with(to)
            .chunk(self.settings().part_size as usize)
            .await?;
        let mut source = self.op().reader(from).await?.into_stream(..).await?;
        let copied = async {
            while let Some(bytes) = source.try_next().await? {
                writer.write(bytes).await?;
            }
            writer.close().await.map(|_| ())
        }
        .await;
        if copied.is_err() {
            let _ = writer.abort().await;
        }
        copied
    }

    /// Refuses names this store cannot hold before any request is made (a local directory's 255-byte names).
    pub(crate) fn check_name(&self, key: &Key) -> FsResult<()> {
        match self.inner.max_name_bytes {
            Some(max) => key.check_name_lengths(max),
            None => Ok(()),
        }
    }

    /// Size so far of a file this process is writing now.
    pub(crate) fn writing_size(&self, key: &Key) -> Option<u64> {
        self.writers().get(key).map(|entry| entry.size())
    }
}

/// Not found, or (on a local directory) a path through a file: the name does not exist.
pub(crate) fn is_absent(e: &opendal::Error) -> bool {
    matches!(
        e.kind(),
        opendal::ErrorKind::NotFound | opendal::ErrorKind::NotADirectory
    )
}
