//! Multipart uploads of a directory store, kept beside the root so that they survive restarts as the real
//! stores' uploads do: `<root>.cosftpd-tmp/uploads/<upload id>/` holds `upload.json` (key, metadata, creation
//! time) and one file per part, `part-00001` … `part-10000`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::storage::objects::ObjectMeta;

const RECORD: &str = "upload.json";
const PART_PREFIX: &str = "part-";

/// What `upload.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct UploadRecord {
    pub key: String,
    pub content_type: Option<String>,
    pub user: BTreeMap<String, String>,
    /// Milliseconds since the epoch.
    pub initiated_ms: u64,
}

impl UploadRecord {
    pub(super) fn new(key: &str, meta: &ObjectMeta, now: SystemTime) -> Self {
        UploadRecord {
            key: key.to_string(),
            content_type: meta.content_type.clone(),
            user: meta.user.clone(),
            initiated_ms: now
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
        }
    }

    pub(super) fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            content_type: self.content_type.clone(),
            user: self.user.clone(),
        }
    }

    pub(super) fn initiated(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.initiated_ms)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Staging {
    uploads: PathBuf,
}

impl Staging {
    pub(super) fn new(uploads: PathBuf) -> Self {
        Staging { uploads }
    }

    /// The directory of upload `id`; `None` for an id this module never makes (so no id can name a path
    /// outside the staging directory).
    pub(super) fn dir(&self, id: &str) -> Option<PathBuf> {
        let valid = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| self.uploads.join(id))
    }

    /// Creates a new upload and returns its id.
    pub(super) fn create(&self, record: &UploadRecord) -> io::Result<String> {
        std::fs::create_dir_all(&self.uploads)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.uploads.join(&id);
        std::fs::create_dir(&dir)?;
        let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        let temp = dir.join(format!("{RECORD}.tmp"));
        let mut file = File::create_new(&temp)?;
        file.write_all(&json)?;
        file.sync_data()?;
        std::fs::rename(&temp, dir.join(RECORD))?;
        Ok(id)
    }

    /// The record of upload `id`: `NotFound` when there is no such upload.
    pub(super) fn load(&self, id: &str) -> io::Result<(PathBuf, UploadRecord)> {
        let dir = self
            .dir(id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such upload"))?;
        let json = std::fs::read(dir.join(RECORD))?;
        let record = serde_json::from_slice(&json).map_err(io::Error::other)?;
        Ok((dir, record))
    }

    /// Every upload whose record is readable, with its id.
    pub(super) fn list(&self) -> io::Result<Vec<(String, UploadRecord)>> {
        let entries = match std::fs::read_dir(&self.uploads) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut uploads = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            match self.load(&id) {
                Ok((_, record)) => uploads.push((id, record)),
                // Being created or removed right now, or not ours.
                Err(e) => tracing::debug!(id, error = %e, "skipping a staging entry"),
            }
        }
        Ok(uploads)
    }
}

pub(super) fn part_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("{PART_PREFIX}{number:05}"))
}

/// The part number a staging file name stands for (`part-00042` → 42; temporary names → `None`).
pub(super) fn part_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(PART_PREFIX)?;
    if digits.len() != 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names() {
        assert_eq!(part_number("part-00001"), Some(1));
        assert_eq!(part_number("part-10000"), Some(10_000));
        assert_eq!(part_number("part-00001.tmp-ab"), None);
        assert_eq!(part_number("upload.json"), None);
        assert_eq!(part_path(Path::new("/u"), 7), Path::new("/u/part-00007"));
    }

    #[test]
    fn ids_cannot_escape_the_staging_directory() {
        let s = Staging::new(PathBuf::from("/s/uploads"));
        assert!(s.dir("../../etc").is_none());
        assert!(s.dir("0123456789abcdef0123456789ABCDEF").is_none());
        assert_eq!(
            s.dir("0123456789abcdef0123456789abcdef"),
            Some(PathBuf::from("/s/uploads/0123456789abcdef0123456789abcdef"))
        );
    }

    #[test]
    fn records_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let s = Staging::new(dir.path().join("uploads"));
        let meta = ObjectMeta {
            content_type: Some("text/plain".into()),
            user: [("mtime".to_string(), "1".to_string())]
                .into_iter()
                .collect(),
        };
        let record = UploadRecord::new("a/b", &meta, UNIX_EPOCH + Duration::from_millis(1500));
        let id = s.create(&record).unwrap();
        let (_, loaded) = s.load(&id).unwrap();
        assert_eq!(loaded, record);
        assert_eq!(loaded.meta(), meta);
        assert_eq!(loaded.initiated(), UNIX_EPOCH + Duration::from_millis(1500));
        assert_eq!(s.list().unwrap(), vec![(id, record)]);
    }
}
