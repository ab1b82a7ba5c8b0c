use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    File,
    Directory,
}

/// What a listing or a stat says about one name. Listings fill it from the ListObjects answer, so no
/// per-entry HEAD is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub kind: FileKind,
    pub size: u64,
    /// Last modification; `None` for implicit directories (no object behind them).
    pub mtime: Option<SystemTime>,
    pub etag: Option<String>,
}

impl Metadata {
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Directory
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
        }
    }

    pub fn file(size: u64, mtime: Option<SystemTime>) -> Self {
        Self {
            kind: FileKind::File,
            size,
            mtime,
            etag: None,
        }
    }

    /// From a HEAD or a listing entry of the store.
    pub(crate) fn from_store(meta: &opendal::Metadata) -> Self {
        if meta.is_dir() {
            return Self::directory();
        }
        Self {
            kind: FileKind::File,
            size: meta.content_length(),
            mtime: meta.last_modified().map(SystemTime::from),
            etag: meta.etag().map(|e| e.trim_matches('"').to_string()),
        }
    }
}
