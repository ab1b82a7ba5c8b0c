use std::sync::Arc;
use std::time::SystemTime;

use super::object_meta::FileAttrs;
use crate::storage::objects::ObjectHead;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    File,
    Directory,
    /// An object whose stored mode says "symbolic link" (s3fs's form): its body is the target. FTP shows it as a
    /// file (its content is the target path); the mount as a link.
    Symlink,
    /// An empty object whose stored mode says FIFO, socket or device node (s3fs's `mknod`). The kernel gives it
    /// its meaning on the mount; FTP shows an empty file.
    Special,
}

/// What a listing or a stat says about one name. Listings fill it from the ListObjects answer, so no
/// per-entry HEAD is needed; they carry no user metadata, so their `attrs` are unknown unless this server saw
/// the same version of the object before (see `cache.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub kind: FileKind,
    pub size: u64,
    /// Last modification: the stored `mtime` when known, else the store's Last-Modified; `None` for implicit
    /// directories (no object behind them).
    pub mtime: Option<SystemTime>,
    pub etag: Option<String>,
    /// The store's Last-Modified of this version: with the ETag and size it tells versions apart.
    pub modified: Option<SystemTime>,
    /// The stored POSIX attributes (mode, owner, times, extended attributes); `None` when not known.
    pub attrs: Option<Arc<FileAttrs>>,
}

impl Metadata {
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Directory
    }

    /// A file or a symbolic link: something with bytes, not a directory.
    pub fn is_file_like(&self) -> bool {
        self.kind != FileKind::Directory
    }
}

/// One child of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The child's own name (no `/`).
    pub name: String,
    pub meta: Metadata,
    /// An upload of this name was interrupted and is kept for resume: `meta.size` is its durable size (only FTP
    /// listings show such entries; the name is not an object yet).
    pub partial: bool,
}

impl Metadata {
    pub fn directory() -> Self {
        Self {
            kind: FileKind::Directory,
            size: 0,
            mtime: None,
            etag: None,
            modified: None,
            attrs: None,
        }
    }

    pub fn file(size: u64, mtime: Option<SystemTime>) -> Self {
        Self {
            kind: FileKind::File,
            size,
            mtime,
            etag: None,
            modified: mtime,
            attrs: None,
        }
    }

    /// From a listing entry of the store: size, time and ETag, no user metadata.
    pub(crate) fn from_store(meta: &opendal::Metadata) -> Self {
        if meta.is_dir() {
            return Self::directory();
        }
        let modified = meta.last_modified().map(SystemTime::from);
        Self {
            kind: FileKind::File,
            size: meta.content_length(),
            mtime: modified,
            etag: meta.etag().map(|e| e.trim_matches('"').to_string()),
            modified,
            attrs: None,
        }
    }

    /// From a HEAD of a file's object (or, with `directory`, of a directory's marker): with its attributes.
    pub(crate) fn from_head(head: &ObjectHead, directory: bool) -> Self {
        let attrs = FileAttrs::from_user_metadata(&head.meta.user);
        let kind = if directory {
            FileKind::Directory
        } else {
            attrs.object_kind()
        };
        Self {
            kind,
            size: if directory { 0 } else { head.size },
            mtime: attrs.mtime.or(head.last_modified),
            etag: head.etag.clone(),
            modified: head.last_modified,
            attrs: Some(Arc::new(attrs)),
        }
        .normalized()
    }

    /// With the stored attributes known to belong to this version: the stored time wins, a stored link or node
    /// type makes a link or a node.
    pub(crate) fn with_attrs(mut self, attrs: Arc<FileAttrs>) -> Self {
        if let Some(mtime) = attrs.mtime {
            self.mtime = Some(mtime);
        }
        if self.kind != FileKind::Directory {
            self.kind = attrs.object_kind();
        }
        self.attrs = Some(attrs);
        self
    }

    /// The times moved forward: the modification time to `modified` (a directory whose entries changed), the
    /// change time (where the attributes are known) to `changed`; never back.
    pub(crate) fn changed_at(mut self, modified: Option<SystemTime>, changed: SystemTime) -> Self {
        let later = |t: Option<SystemTime>, than: SystemTime| t.is_none_or(|t| t < than);
        if let Some(at) = modified.filter(|at| later(self.mtime, *at)) {
            self.mtime = Some(at);
        }
        if let Some(stored) = &self.attrs {
            let mut attrs = FileAttrs::clone(stored);
            if attrs.mtime.is_some() {
                attrs.mtime = self.mtime;
            }
            if later(attrs.ctime.or(self.mtime), changed) {
                attrs.ctime = Some(changed);
            }
            self.attrs = Some(Arc::new(attrs));
        }
        self
    }

    /// Whether `other` describes the same version of the object: same size and ETag, and the same
    /// Last-Modified to the second (a listing says milliseconds, a HEAD whole seconds).
    pub(crate) fn same_version(&self, other: &Metadata) -> bool {
        let secs = |t: Option<SystemTime>| {
            t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
        };
        self.kind != FileKind::Directory
            && self.size == other.size
            && self.etag.is_some()
            && self.etag == other.etag
            && secs(self.modified).is_some()
            && secs(self.modified) == secs(other.modified)
    }

    /// Directories have no size and no ETag of their own (a marker's is not the directory's).
    fn normalized(mut self) -> Self {
        if self.is_dir() {
            self.size = 0;
            self.etag = None;
        }
        self
    }

    /// The stored attributes, or none known.
    pub fn stored(&self) -> FileAttrs {
        self.attrs.as_deref().cloned().unwrap_or_default()
    }
}
