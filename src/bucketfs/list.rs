//! Listing: ListObjects with delimiter `/`, streamed page by page, capped at `max_list_file`.

use std::collections::HashSet;

use futures::TryStreamExt;
use tracing::{instrument, warn};

use super::error::{FsError, FsResult};
use super::path::Key;
use super::types::{DirEntry, Metadata};
use super::BucketFs;

/// The answer to `list`: a directory's entries, or a single file.
#[derive(Debug)]
pub enum Listing {
    Directory(ReadDir),
    File(DirEntry),
}

/// An open directory listing. Entries carry the metadata of the listing itself, so no per-entry HEAD is made.
pub struct ReadDir {
    fs: BucketFs,
    dir: Key,
    prefix: String,
    lister: Option<opendal::Lister>,
    seen: HashSet<String>,
    yielded: usize,
    cap: usize,
    capped: bool,
}

impl BucketFs {
    /// Opens a listing of the directory at `path`.
    #[instrument(level = "debug", skip(self))]
    pub async fn read_dir(&self, path: &str) -> FsResult<ReadDir> {
        let dir = Key::parse(path)?;
        self.policy().check_read("list", &dir.display())?;
        self.require_dir(&dir).await?;
        self.read_dir_key(dir, self.settings().max_list_file).await
    }

    /// What `ls path` shows: a directory's entries, or a file as its own single entry. Both need read
    /// permission, as any listing does.
    #[instrument(level = "debug", skip(self))]
    pub async fn list(&self, path: &str) -> FsResult<Listing> {
        let key = Key::parse(path)?;
        self.policy().check_read("list", &key.display())?;
        let meta = self.stat_key(&key).await?;
        if meta.is_dir() {
            let cap = self.settings().max_list_file;
            return Ok(Listing::Directory(self.read_dir_key(key, cap).await?));
        }
        Ok(Listing::File(DirEntry {
            name: key.name().to_string(),
            meta,
        }))
    }

    pub(crate) async fn read_dir_key(&self, dir: Key, cap: usize) -> FsResult<ReadDir> {
        let prefix = dir.dir_prefix();
        let list_path = if dir.is_root() {
            "/".to_string()
        } else {
            prefix.clone()
        };
        let lister = match self.op().lister(&list_path).await {
            Ok(lister) => Some(lister),
            // A local directory that vanished between stat and list lists as empty.
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => None,
            Err(e) => return Err(FsError::store(&format!("list {}", dir.display()), e)),
        };
        Ok(ReadDir {
            fs: self.clone(),
            dir,
            prefix,
            lister,
            seen: HashSet::new(),
            yielded: 0,
            cap,
            capped: false,
        })
    }
}

impl ReadDir {
    /// The next entry, or `None` at the end (or at the cap: see `capped`).
    pub async fn next_entry(&mut self) -> FsResult<Option<DirEntry>> {
        loop {
            if self.yielded >= self.cap {
                if !self.capped && self.has_more().await? {
                    self.capped = true;
                    warn!(dir = %self.dir.display(), cap = self.cap, "listing capped at max_list_file");
                }
                return Ok(None);
            }
            let Some(entry) = self.next_store_entry().await? else {
                return Ok(None);
            };
            let Some(name) = self.child_name(entry.path()) else {
                continue;
            };
            // A file and a directory of the same name: the first (the file, in key order) wins, as in stat.
            if !self.seen.insert(name.clone()) {
                continue;
            }
            let meta = Metadata::from_store(entry.metadata());
            if let Ok(key) = self.dir.join(&name) {
                self.fs.cache().put(&key, Some(meta.clone()));
            }
            self.yielded += 1;
            return Ok(Some(DirEntry { name, meta }));
        }
    }

    /// Whether the listing stopped at `max_list_file` with entries left over.
    pub fn capped(&self) -> bool {
        self.capped
    }

    /// Entries returned so far.
    pub fn yielded(&self) -> usize {
        self.yielded
    }

    pub fn dir(&self) -> &Key {
        &self.dir
    }

    async fn next_store_entry(&mut self) -> FsResult<Option<opendal::Entry>> {
        let Some(lister) = self.lister.as_mut() else {
            return Ok(None);
        };
        lister
            .try_next()
            .await
            .map_err(|e| FsError::store(&format!("list {}", self.dir.display()), e))
    }

    async fn has_more(&mut self) -> FsResult<bool> {
        while let Some(entry) = self.next_store_entry().await? {
            if let Some(name) = self.child_name(entry.path()) {
                if !self.seen.contains(&name) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The child's own name, or `None` for the directory itself and names a path cannot reach.
    fn child_name(&self, path: &str) -> Option<String> {
        let rest = path.strip_prefix(&self.prefix)?.trim_end_matches('/');
        if rest.is_empty() || rest == "." || rest == ".." || rest.contains('/') {
            return None;
        }
        if self.dir.join(rest).is_err() {
            return None;
        }
        Some(rest.to_string())
    }
}

impl std::fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadDir")
            .field("dir", &self.dir)
            .field("yielded", &self.yielded)
            .finish()
    }
}
