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
}
