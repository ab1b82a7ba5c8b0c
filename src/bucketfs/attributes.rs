//! A file's attributes beyond its bytes: mode, owner, times, extended attributes and symbolic links, kept as the
//! object's user metadata (the conventions are in `object_meta.rs`).
//!
//! Reading them needs a HEAD (listings carry no user metadata): [`BucketFs::stat`] makes one when the cache does
//! not know them for the version at hand. Changing them is a copy of the object onto itself with the new
//! metadata (a multipart copy above 5 GiB), conditional on the version that was read, so a change made by
//! another client meanwhile is not overwritten silently (the change is retried on the new version). A file being
//! written takes the change into its commit instead. A directory keeps its attributes on its marker `dir/`; an
//! implicit directory gets a marker. The root has no object and so no attributes of its own.

use std::time::SystemTime;

use bytes::Bytes;
use tracing::{debug, info, instrument};

use super::error::{FsError, FsErrorKind, FsResult};
use super::object_meta::{
    check_size, check_xattr_name, AttrChange, FileAttrs, TimeFormat, S_IFBLK, S_IFCHR, S_IFIFO,
    S_IFLNK, S_IFSOCK,
};
use super::path::Key;
use super::types::{FileKind, Metadata};
use super::BucketFs;
use crate::storage::objects::{ObjectHead, ObjectMeta, Overwrite};

/// What the store holds under a name.
#[derive(Debug)]
pub(crate) enum Probe {
    /// An object `key` (a file or a symbolic link).
    Object(ObjectHead),
    /// A directory with its marker `key/`.
    Marker(ObjectHead),
    /// A directory that only exists through keys under it.
    Implicit,
    Absent,
}

/// How `setxattr` may treat an existing attribute (`XATTR_CREATE`, `XATTR_REPLACE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XattrWrite {
    /// Create or replace.
    Any,
    /// Fail if it exists.
    Create,
    /// Fail if it does not exist.
    Replace,
}

/// Content type of directory markers, as s3fs writes it.
const DIRECTORY_CONTENT_TYPE: &str = "application/x-directory";
/// Content type of symbolic links and special nodes, as s3fs writes it.
const NODE_CONTENT_TYPE: &str = "application/octet-stream";
/// A change that lost its race with another client's change is tried this many times in all.
const CHANGE_ATTEMPTS: usize = 3;

impl BucketFs {
    /// How times are written to this store (whole seconds on COS, for cosfs).
    pub(crate) fn time_format(&self) -> TimeFormat {
        if self.objects().is_cos() {
            TimeFormat::WholeSeconds
        } else {
            TimeFormat::Nanoseconds
        }
    }

    /// Metadata of a name with its stored attributes: from the cache when it knows them, else with a HEAD (a
    /// listing fills the cache without them). The root and files being written need no request.
    pub(crate) async fn stat_with_attrs(&self, key: &Key) -> FsResult<Metadata> {
        let meta = self.stat_key(key).await?;
        if meta.attrs.is_some() || key.is_root() {
            return Ok(meta);
        }
        self.stat_from_store(key).await
    }

    /// Looks at what the store holds under `key`: a HEAD of the object and a one-key listing of `key/`
    /// concurrently; a HEAD of the marker when the listing shows one.
    pub(crate) async fn probe(&self, key: &Key) -> FsResult<Probe> {
        let (object, dir) = tokio::join!(self.objects().head(key.as_str()), self.dir_state(key));
        match object {
            Ok(Some(head)) => return Ok(Probe::Object(head)),
            Ok(None) => {}
            Err(e) if super::namespace::is_absent(&e) => {}
            Err(e) => return Err(FsError::store(&format!("stat {}", key.display()), e)),
        }
        match dir? {
            DirState::Absent => Ok(Probe::Absent),
            DirState::Implicit => Ok(Probe::Implicit),
            DirState::Marker => match self.objects().head(&key.dir_prefix()).await {
                Ok(Some(head)) => Ok(Probe::Marker(head)),
                // Removed between the listing and the HEAD: what is left is what the listing showed.
                Ok(None) => Ok(Probe::Implicit),
                Err(e) => Err(FsError::store(&format!("stat {}", key.display()), e)),
            },
        }
    }

    /// Changes mode, owner or times (`chmod`, `chown`, `utimens`, FTP `MFMT`). Needs the right to write; the
    /// mount's kernel has already checked who may (only root gives files away, as POSIX says). The root
    /// directory has no object to keep attributes on: a change of it is accepted and changes nothing.
    #[instrument(level = "info", skip(self), fields(path = %key.display()))]
    pub async fn set_attributes(&self, key: &Key, change: &AttrChange) -> FsResult<Metadata> {
        let now = SystemTime::now();
        let changed = self
            .change_attrs(key, "change the attributes of", |attrs| {
                attrs.apply(change, now);
                Ok(())
            })
            .await?;
        if key.is_root() {
            // No object keeps the root's attributes; its change time moves all the same.
            self.cache().node_changed(key, now);
        } else if changed.is_dir() && change.mtime.is_some() {
            self.cache().times_set(key);
        }
        Ok(self.cache().with_local_times(key, changed))
    }

    /// The value of the extended attribute `name` (`user.*`).
    pub async fn get_xattr(&self, key: &Key, name: &str) -> FsResult<Vec<u8>> {
        self.check_name(key)?;
        let meta = self.stat_with_attrs(key).await?;
        meta.attrs
            .as_ref()
            .and_then(|a| a.xattrs.get(name).cloned())
            .ok_or_else(|| {
                FsError::new(
                    FsErrorKind::NoAttribute,
                    format!("{}: no extended attribute {name:?}", key.display()),
                )
            })
    }

    /// The names of the file's extended attributes.
    pub async fn list_xattrs(&self, key: &Key) -> FsResult<Vec<String>> {
        self.check_name(key)?;
        let meta = self.stat_with_attrs(key).await?;
        Ok(meta
            .attrs
            .map(|a| a.xattrs.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// Sets the extended attribute `name` (`user.*` only; all of a file's metadata must fit the store's 2 KB).
    #[instrument(level = "info", skip(self, value), fields(path = %key.display(), len = value.len()))]
    pub async fn set_xattr(
        &self,
        key: &Key,
        name: &str,
        value: &[u8],
        how: XattrWrite,
    ) -> FsResult<Metadata> {
        check_xattr_name(name)?;
        self.change_attrs(key, "set an extended attribute of", |attrs| {
            let exists = attrs.xattrs.contains_key(name);
            match how {
                XattrWrite::Create if exists => Err(FsError::new(
                    FsErrorKind::AlreadyExists,
                    format!("{}: extended attribute {name:?} exists", key.display()),
                )),
                XattrWrite::Replace if !exists => Err(no_xattr(key, name)),
                _ => {
                    attrs.xattrs.insert(name.to_string(), value.to_vec());
                    attrs.ctime = Some(SystemTime::now());
                    Ok(())
                }
            }
        })
        .await
    }

    /// Removes the extended attribute `name`.
    #[instrument(level = "info", skip(self), fields(path = %key.display()))]
    pub async fn remove_xattr(&self, key: &Key, name: &str) -> FsResult<Metadata> {
        self.change_attrs(key, "remove an extended attribute of", |attrs| match attrs
            .xattrs
            .remove(name)
        {
            Some(_) => {
                attrs.ctime = Some(SystemTime::now());
                Ok(())
            }
            None => Err(no_xattr(key, name)),
        })
        .await
    }

    /// Creates a symbolic link at `key` pointing to `target`, stored as s3fs stores one: an object whose body is
    /// the target and whose mode says "link". Never replaces an existing name.
    #[instrument(level = "info", skip(self, target), fields(path = %key.display()))]
    pub async fn symlink(
        &self,
        key: &Key,
        target: &[u8],
        owner: Option<(u32, u32)>,
    ) -> FsResult<Metadata> {
        let attrs = FileAttrs {
            mode: Some(0o777),
            uid: owner.map(|o| o.0),
            gid: owner.map(|o| o.1),
            file_type: Some(S_IFLNK),
            ..FileAttrs::default()
        };
        let created = self
            .create_node(key, "symlink", Bytes::copy_from_slice(target), attrs)
            .await?;
        info!(path = %key.display(), "symbolic link created");
        Ok(created)
    }

    /// Creates a FIFO, socket or device node at `key` (`file_type` is its `S_IF*` bits), stored as s3fs stores
    /// one: an empty object whose mode says what it is. Never replaces an existing name.
    #[instrument(level = "info", skip(self), fields(path = %key.display()))]
    pub async fn mknod(
        &self,
        key: &Key,
        file_type: u32,
        mode: u32,
        rdev: u32,
        owner: Option<(u32, u32)>,
    ) -> FsResult<Metadata> {
        if !matches!(file_type, S_IFIFO | S_IFSOCK | S_IFCHR | S_IFBLK) {
            return Err(FsError::new(
                FsErrorKind::Unsupported,
                format!("{}: mknod of type {file_type:#o}", key.display()),
            ));
        }
        let attrs = FileAttrs {
            mode: Some(mode & 0o7777),
            uid: owner.map(|o| o.0),
            gid: owner.map(|o| o.1),
            file_type: Some(file_type),
            rdev: Some(rdev),
            ..FileAttrs::default()
        };
        let created = self.create_node(key, "mknod", Bytes::new(), attrs).await?;
        info!(path = %key.display(), "special file created");
        Ok(created)
    }

    /// A new object that is not a plain file (a link, a node): created in one PUT that never replaces.
    async fn create_node(
        &self,
        key: &Key,
        what: &str,
        body: Bytes,
        mut attrs: FileAttrs,
    ) -> FsResult<Metadata> {
        self.check_name(key)?;
        self.policy().check_write(what, &key.display())?;
        if key.is_root() || self.lookup_key(key).await?.is_some() {
            return Err(exists(key));
        }
        if let Some(parent) = key.parent() {
            self.require_dir(&parent).await?;
        }
        let now = SystemTime::now();
        attrs.mtime = Some(now);
        attrs.ctime = Some(now);
        let mut meta = ObjectMeta {
            content_type: Some(NODE_CONTENT_TYPE.to_string()),
            ..ObjectMeta::default()
        };
        attrs.write_user_metadata(attrs.object_kind(), self.time_format(), &mut meta.user);
        let size = body.len() as u64;
        let committed = self
            .objects()
            .put(key.as_str(), body, &meta, Overwrite::Forbid)
            .await
            .map_err(
                |e| match FsError::store(&format!("{what} {}", key.display()), e) {
                    e if e.kind() == FsErrorKind::Conflict => exists(key),
                    e => e,
                },
            )?;
        let head = ObjectHead {
            size,
            etag: committed.etag,
            last_modified: committed.last_modified,
            meta,
            checksums: committed.checksums,
        };
        let created = Metadata::from_head(&head, false);
        self.cache().put(key, Some(created.clone()));
        self.entry_changed(key);
        Ok(created)
    }

    /// The target of the symbolic link at `key`.
    #[instrument(level = "debug", skip(self), fields(path = %key.display()))]
    pub async fn readlink(&self, key: &Key) -> FsResult<Bytes> {
        self.check_name(key)?;
        let meta = self.stat_with_attrs(key).await?;
        if meta.kind != FileKind::Symlink {
            return Err(FsError::new(
                FsErrorKind::NotALink,
                format!("{}: not a symbolic link", key.display()),
            ));
        }
        let context = format!("readlink {}", key.display());
        let buffer = self
            .op()
            .read(key.as_str())
            .await
            .map_err(|e| FsError::store(&context, e))?;
        Ok(buffer.to_bytes())
    }

    /// Creates a directory marker carrying `attrs` (the mount's `mkdir` with its mode and owner).
    pub(crate) async fn put_marker(&self, key: &Key, attrs: &FileAttrs) -> FsResult<Metadata> {
        let mut meta = ObjectMeta {
            content_type: Some(DIRECTORY_CONTENT_TYPE.to_string()),
            ..ObjectMeta::default()
        };
        attrs.write_user_metadata(FileKind::Directory, self.time_format(), &mut meta.user);
        check_size(&meta.user, &key.display())?;
        let committed = self
            .objects()
            .put(&key.dir_prefix(), Bytes::new(), &meta, Overwrite::Allow)
            .await
            .map_err(|e| FsError::store(&format!("mkdir {}", key.display()), e))?;
        Ok(Metadata::from_head(
            &ObjectHead {
                size: 0,
                etag: committed.etag,
                last_modified: committed.last_modified,
                meta,
                checksums: committed.checksums,
            },
            true,
        ))
    }

    /// A directory marker at `target` with the metadata (mode, owner, times) of the one at `source`, for a
    /// directory rename; a plain marker when `source` has none (an implicit directory).
    pub(crate) async fn copy_marker(&self, source: &str, target: &str) -> opendal::Result<()> {
        match self.objects().head(source).await? {
            Some(head) => self
                .objects()
                .put(target, Bytes::new(), &head.meta, Overwrite::Allow)
                .await
                .map(drop),
            None => self.op().create_dir(target).await,
        }
    }

    /// The attributes a new version of `key` keeps from the one described by `meta` (a HEAD when the cache does
    /// not know them).
    pub(crate) async fn inherited_attrs(&self, key: &Key, meta: Metadata) -> FsResult<FileAttrs> {
        let meta = match meta.attrs {
            Some(_) => meta,
            None => self.stat_with_attrs(key).await?,
        };
        Ok(meta.stored().inherited())
    }

    /// Makes the stored object carry `pending` (the attributes of a handle closed without writing): a copy onto
    /// itself when they differ from what is stored, nothing otherwise.
    pub(crate) async fn store_attrs(&self, key: &Key, pending: &FileAttrs) -> FsResult<Metadata> {
        let Some(current) = self.stat_store(key).await? else {
            return Err(FsError::not_found(&key.display()));
        };
        if !pending.differs_from(&current.stored()) {
            return Ok(current);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let overlay = |attrs: &mut FileAttrs| {
                attrs.overlay(pending);
                Ok(())
            };
            match self.change_stored(key, &overlay, None).await {
                Err(e) if e.kind() == FsErrorKind::Conflict && attempt < CHANGE_ATTEMPTS => {}
                result => return result,
            }
        }
    }

    /// Applies `change` to the attributes of `key`: to the pending commit of a file being written, else to the
    /// stored object (a copy onto itself, retried when another client changed it meanwhile).
    async fn change_attrs<F>(&self, key: &Key, what: &str, change: F) -> FsResult<Metadata>
    where
        F: Fn(&mut FileAttrs) -> FsResult<()>,
    {
        self.check_name(key)?;
        self.policy().check_write(what, &key.display())?;
        if key.is_root() {
            debug!("the root directory keeps no attributes; change ignored");
            return Ok(Metadata::directory());
        }
        self.writers().settle(key).await;
        if let Some(entry) = self.writers().get(key) {
            let mut attrs = entry.attrs();
            change(&mut attrs)?;
            let mut user = Default::default();
            attrs.write_user_metadata(FileKind::File, self.time_format(), &mut user);
            check_size(&user, &key.display())?;
            entry.update_attrs(|pending| *pending = attrs);
            return self.stat_key(key).await;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            // An object this gateway has just written needs no look at the store (see `recent`); a retry always looks.
            let written = (attempt == 1)
                .then(|| self.recent_writes().take(key))
                .flatten();
            match self.change_stored(key, &change, written).await {
                Err(e) if e.kind() == FsErrorKind::Conflict && attempt < CHANGE_ATTEMPTS => {
                    debug!(attempt, "changed by another client meanwhile; trying again");
                }
                result => return result,
            }
        }
    }

    async fn change_stored<F>(
        &self,
        key: &Key,
        change: &F,
        written: Option<ObjectHead>,
    ) -> FsResult<Metadata>
    where
        F: Fn(&mut FileAttrs) -> FsResult<()>,
    {
        let context = || format!("set the attributes of {}", key.display());
        let probe = match written {
            Some(head) => Probe::Object(head),
            None => self.probe(key).await?,
        };
        let (object_key, head, directory) = match probe {
            Probe::Object(head) => (key.as_str().to_string(), head, false),
            Probe::Marker(head) => (key.dir_prefix(), head, true),
            Probe::Implicit => {
                // No marker to keep the attributes: make one.
                let mut attrs = FileAttrs::default();
                change(&mut attrs)?;
                let meta = self.put_marker(key, &attrs).await?;
                self.cache().put(key, Some(meta.clone()));
                return Ok(meta);
            }
            Probe::Absent => {
                self.cache().put(key, None);
                return Err(FsError::not_found(&key.display()));
            }
        };
        let mut attrs = FileAttrs::from_user_metadata(&head.meta.user);
        change(&mut attrs)?;
        let kind = if directory {
            FileKind::Directory
        } else {
            attrs.object_kind()
        };
        let mut meta = head.meta.clone();
        attrs.write_user_metadata(kind, self.time_format(), &mut meta.user);
        check_size(&meta.user, &key.display())?;
        let committed = self
            .objects()
            .replace_metadata(&object_key, &head, &meta)
            .await
            .map_err(|e| FsError::store(&context(), e))?;
        let changed = Metadata::from_head(
            &ObjectHead {
                etag: committed.etag.or(head.etag),
                last_modified: committed.last_modified,
                meta,
                ..head
            },
            directory,
        );
        self.cache().put(key, Some(changed.clone()));
        Ok(changed)
    }
}

/// What the one-key listing of `key/` shows.
pub(crate) enum DirState {
    Absent,
    /// Keys under it, but no marker.
    Implicit,
    Marker,
}

fn exists(key: &Key) -> FsError {
    FsError::new(
        FsErrorKind::AlreadyExists,
        format!("{}: already exists", key.display()),
    )
}

fn no_xattr(key: &Key, name: &str) -> FsError {
    FsError::new(
        FsErrorKind::NoAttribute,
        format!("{}: no extended attribute {name:?}", key.display()),
    )
}
