//! The `fs` backend: objects are files under the root (`a/b/c` is `<root>/a/b/c`, a directory marker `a/` is
//! the directory), multipart uploads are staged beside it (see [`staging`]), metadata lives in extended
//! attributes (see [`xattrs`]).
//!
//! Every write is made in a temporary file in `<root>.cosftpd-tmp/`, synced, and renamed into place (see
//! [`commit`]), so readers never see half an object. The staging directory must be on the root's filesystem
//! (it is, unless the root itself is a mount point): rename(2) cannot cross filesystems, and such a write fails
//! with a message saying so.
//!
//! ETags are made of a file's inode, change time and size, which change with every write and metadata change:
//! an object's (reading whole files to hash them on each HEAD would cost too much) and a part's (so that joining
//! the parts checks each is the one uploaded, without reading it twice; the bytes never leave the machine, so an
//! MD5 would check nothing a local write can get wrong).
//!
//! Errors: OS errors map to the kinds the core knows (ENOENT → `NotFound`, ENOTDIR → `NotADirectory`, EISDIR →
//! `IsADirectory`, EACCES/EPERM/EROFS → `PermissionDenied`, ENAMETOOLONG → `Unsupported`: the name is longer
//! than this filesystem takes), all permanent but EINTR/EAGAIN/ETIMEDOUT. Nothing here retries.

mod commit;
mod staging;
mod xattrs;

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use opendal::{Error, ErrorKind};
use tracing::warn;

use self::commit::CommitError;
use self::staging::{part_number, part_path, Staging, UploadRecord};
use super::faults::FaultHook;
use super::{
    mtime, Committed, ObjectHead, ObjectMeta, Overwrite, PendingUpload, UploadId, UploadedPart,
    LOCAL_LIMITS,
};
use crate::storage::StorageError;

#[derive(Clone, Debug)]
pub(super) struct FsObjects {
    inner: Arc<Inner>,
    faults: FaultHook,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    /// `<root>.cosftpd-tmp`: temporary files of single writes and completions.
    temp: PathBuf,
    staging: Staging,
}

impl FsObjects {
    pub(super) fn new(root: &Path, faults: FaultHook) -> Result<Self, StorageError> {
        let temp = crate::storage::fs_staging_dir(root);
        let uploads = temp.join("uploads");
        std::fs::create_dir_all(&uploads).map_err(|e| {
            StorageError::Invalid(format!("cannot create {}: {e}", uploads.display()))
        })?;
        Ok(FsObjects {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                temp,
                staging: Staging::new(uploads),
            }),
            faults,
        })
    }

    /// Runs `f` on the blocking pool, after the fault check for the S3 request it stands for.
    async fn run<T, F>(&self, method: &str, query: String, f: F) -> opendal::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> opendal::Result<T> + Send + 'static,
    {
        self.faults.check(method, &query)?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| {
                Error::new(ErrorKind::Unexpected, "a filesystem task failed")
                    .set_source(e)
                    .set_permanent()
            })?
    }

    pub(super) async fn head(&self, key: &str) -> opendal::Result<Option<ObjectHead>> {
        let key = key.to_string();
        self.run("HEAD", String::new(), move |fs| fs.head(&key))
            .await
    }

    pub(super) async fn put(
        &self,
        key: &str,
        body: Bytes,
        meta: &ObjectMeta,
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        let (key, meta) = (key.to_string(), meta.clone());
        self.run("PUT", String::new(), move |fs| {
            fs.put(&key, &body, &meta, overwrite)
        })
        .await
    }

    pub(super) async fn create_upload(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> opendal::Result<UploadId> {
        let (key, meta) = (key.to_string(), meta.clone());
        self.run("POST", "uploads".into(), move |fs| {
            fs.create_upload(&key, &meta)
        })
        .await
    }

    pub(super) async fn upload_part(
        &self,
        key: &str,
        id: &UploadId,
        number: u32,
        body: Bytes,
    ) -> opendal::Result<UploadedPart> {
        let (key, id) = (key.to_string(), id.clone());
        let query = part_query(&id, number);
        self.run("PUT", query, move |fs| {
            fs.store_part(&key, &id, number, |out| {
                out.write_all(&body).map_err(|e| io_error("UploadPart", e))
            })
        })
        .await
    }

    pub(super) async fn copy_part(
        &self,
        key: &str,
        id: &UploadId,
        number: u32,
        source: &str,
        range: Range<u64>,
    ) -> opendal::Result<UploadedPart> {
        let (key, id, source) = (key.to_string(), id.clone(), source.to_string());
        let query = part_query(&id, number);
        self.run("PUT", query, move |fs| {
            fs.copy_part(&key, &id, number, &source, range)
        })
        .await
    }

    pub(super) async fn list_parts(
        &self,
        key: &str,
        id: &UploadId,
    ) -> opendal::Result<Vec<UploadedPart>> {
        let (key, id) = (key.to_string(), id.clone());
        let query = format!("uploadId={}", id.0);
        self.run("GET", query, move |fs| fs.list_parts(&key, &id))
            .await
    }

    pub(super) async fn list_uploads(&self, prefix: &str) -> opendal::Result<Vec<PendingUpload>> {
        let prefix = prefix.to_string();
        let query = format!("uploads&prefix={prefix}");
        self.run("GET", query, move |fs| fs.list_uploads(&prefix))
            .await
    }

    pub(super) async fn complete_upload(
        &self,
        key: &str,
        id: &UploadId,
        parts: &[UploadedPart],
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        let (key, id, parts) = (key.to_string(), id.clone(), parts.to_vec());
        let query = format!("uploadId={}", id.0);
        self.run("POST", query, move |fs| {
            fs.complete(&key, &id, &parts, overwrite)
        })
        .await
    }

    pub(super) async fn abort_upload(&self, key: &str, id: &UploadId) -> opendal::Result<()> {
        let (key, id) = (key.to_string(), id.clone());
        let query = format!("uploadId={}", id.0);
        self.run("DELETE", query, move |fs| fs.abort(&key, &id))
            .await
    }

    pub(super) async fn replace_metadata(
        &self,
        key: &str,
        current: &ObjectHead,
        meta: &ObjectMeta,
    ) -> opendal::Result<Committed> {
        let (key, etag, meta) = (key.to_string(), current.etag.clone(), meta.clone());
        self.run("PUT", String::new(), move |fs| {
            fs.replace_metadata(&key, etag.as_deref(), &meta)
        })
        .await
    }
}

fn part_query(id: &UploadId, number: u32) -> String {
    format!("partNumber={number}&uploadId={}", id.0)
}

impl Inner {
    /// `<root>/<key>`; a key that could leave the root or is no path (empty, `.`/`..`, `//`, NUL) is refused.
    fn object_path(&self, op: &'static str, key: &str) -> opendal::Result<PathBuf> {
        let name = key.strip_suffix('/').unwrap_or(key);
        let valid = !name.is_empty()
            && !name.contains('\0')
            && name.split('/').all(|c| !matches!(c, "" | "." | ".."));
        if !valid {
            return Err(refused(
                op,
                ErrorKind::Unexpected,
                format!("{key:?} is no valid key"),
            ));
        }
        Ok(self.root.join(name))
    }

    fn temp_path(&self, what: &str) -> PathBuf {
        self.temp
            .join(format!("{}.{what}", uuid::Uuid::new_v4().simple()))
    }

    fn head(&self, key: &str) -> opendal::Result<Option<ObjectHead>> {
        const OP: &str = "HeadObject";
        let path = self.object_path(OP, key)?;
        let Some((file, md)) =
            open_existing(&path, key.ends_with('/')).map_err(|e| io_error(OP, e))?
        else {
            return Ok(None);
        };
        let meta = xattrs::read(&file).map_err(|e| io_error(OP, e))?;
        Ok(Some(ObjectHead {
            size: if md.is_dir() { 0 } else { md.len() },
            etag: Some(etag_of(&md)),
            last_modified: md.modified().ok(),
            meta,
            checksums: Default::default(),
        }))
    }

    fn put(
        &self,
        key: &str,
        body: &[u8],
        meta: &ObjectMeta,
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        const OP: &str = "PutObject";
        let path = self.object_path(OP, key)?;
        if key.ends_with('/') {
            if !body.is_empty() {
                return Err(refused(
                    OP,
                    ErrorKind::IsADirectory,
                    "a directory marker has no content",
                ));
            }
            return self.put_directory(&path, meta, overwrite);
        }
        let temp = self.temp_path("put");
        let result = (|| {
            let mut file = File::create_new(&temp).map_err(|e| io_error(OP, e))?;
            file.write_all(body).map_err(|e| io_error(OP, e))?;
            finish_file(OP, &file, meta)?;
            self.commit(OP, &temp, &path, overwrite)
        })();
        discard_on_error(&temp, result)
    }

    fn put_directory(
        &self,
        path: &Path,
        meta: &ObjectMeta,
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        const OP: &str = "PutObject";
        create_parents(OP, path)?;
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let md = std::fs::metadata(path).map_err(|e| io_error(OP, e))?;
                if !md.is_dir() {
                    return Err(refused(
                        OP,
                        ErrorKind::NotADirectory,
                        "a file has this name",
                    ));
                }
                if overwrite == Overwrite::Forbid {
                    return Err(exists(OP));
                }
            }
            Err(e) => return Err(io_error(OP, e)),
        }
        let dir = File::open(path).map_err(|e| io_error(OP, e))?;
        xattrs::replace(&dir, meta).map_err(|e| io_error(OP, e))?;
        set_mtime(OP, &dir, meta)?;
        committed(OP, &dir)
    }

    /// Moves a finished temporary file into place and says what is there now.
    fn commit(
        &self,
        op: &'static str,
        temp: &Path,
        dest: &Path,
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        create_parents(op, dest)?;
        match commit::commit(temp, dest, overwrite) {
            Ok(()) => {}
            Err(CommitError::Exists) => return Err(exists(op)),
            Err(CommitError::Io(e)) if e.raw_os_error() == Some(libc::EXDEV) => {
                return Err(refused(
                    op,
                    ErrorKind::Unexpected,
                    format!(
                        "{} is not on the filesystem of {}: cannot rename into place",
                        self.temp.display(),
                        self.root.display()
                    ),
                ))
            }
            Err(CommitError::Io(e)) => return Err(io_error(op, e)),
        }
        let file = File::open(dest).map_err(|e| io_error(op, e))?;
        committed(op, &file)
    }

    fn create_upload(&self, key: &str, meta: &ObjectMeta) -> opendal::Result<UploadId> {
        const OP: &str = "CreateMultipartUpload";
        self.object_path(OP, key)?;
        let record = UploadRecord::new(key, meta, SystemTime::now());
        let id = self.staging.create(&record).map_err(|e| io_error(OP, e))?;
        Ok(UploadId(id))
    }

    /// The directory and record of upload `id` of `key`; `NotFound` (as S3's NoSuchUpload) when it is gone or
    /// belongs to another key.
    fn upload(
        &self,
        op: &'static str,
        key: &str,
        id: &UploadId,
    ) -> opendal::Result<(PathBuf, UploadRecord)> {
        match self.staging.load(&id.0) {
            Ok((dir, record)) if record.key == key => Ok((dir, record)),
            Ok(_) => Err(no_such_upload(op)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(no_such_upload(op)),
            Err(e) => Err(io_error(op, e)),
        }
    }

    /// Writes part `number` with `fill` into a temporary name, then renames it over any earlier part of that
    /// number. The part's ETag is its file's identity (see `etag_of`), not a hash of its bytes: the bytes never
    /// leave this machine, so there is nothing to check them against, and hashing cost more CPU than the rest of
    /// an upload (an MD5 when the part was stored and again when the parts were joined).
    fn store_part(
        &self,
        key: &str,
        id: &UploadId,
        number: u32,
        fill: impl FnOnce(&mut File) -> opendal::Result<()>,
    ) -> opendal::Result<UploadedPart> {
        const OP: &str = "UploadPart";
        check_part_number(OP, number)?;
        let (dir, _) = self.upload(OP, key, id)?;
        let final_path = part_path(&dir, number);
        let temp = final_path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        let result = (|| {
            let mut file = File::create_new(&temp).map_err(|e| upload_io_error(OP, e))?;
            fill(&mut file)?;
            file.sync_data().map_err(|e| io_error(OP, e))?;
            std::fs::rename(&temp, &final_path).map_err(|e| upload_io_error(OP, e))?;
            // After the rename, which moves the change time the ETag is made of.
            let md = file.metadata().map_err(|e| io_error(OP, e))?;
            Ok(UploadedPart {
                number,
                etag: etag_of(&md),
                size: md.len(),
                checksums: Default::default(),
            })
        })();
        discard_on_error(&temp, result)
    }

    fn copy_part(
        &self,
        key: &str,
        id: &UploadId,
        number: u32,
        source: &str,
        range: Range<u64>,
    ) -> opendal::Result<UploadedPart> {
        const OP: &str = "UploadPartCopy";
        let source_path = self.object_path(OP, source)?;
        let mut input = match open_existing(&source_path, false).map_err(|e| io_error(OP, e))? {
            Some((file, md)) if !md.is_dir() => (file, md),
            _ => {
                return Err(refused(
                    OP,
                    ErrorKind::NotFound,
                    format!("no object {source:?}"),
                ))
            }
        };
        let size = input.1.len();
        if range.is_empty() || range.end > size {
            return Err(refused(
                OP,
                ErrorKind::RangeNotSatisfied,
                format!("range {range:?} of an object of {size} bytes"),
            ));
        }
        input
            .0
            .seek(SeekFrom::Start(range.start))
            .map_err(|e| io_error(OP, e))?;
        let mut reader = input.0.take(range.end - range.start);
        self.store_part(key, id, number, |out| {
            io::copy(&mut reader, out)
                .map(drop)
                .map_err(|e| io_error(OP, e))
        })
    }

    fn list_parts(&self, key: &str, id: &UploadId) -> opendal::Result<Vec<UploadedPart>> {
        const OP: &str = "ListParts";
        let (dir, _) = self.upload(OP, key, id)?;
        let entries = std::fs::read_dir(&dir).map_err(|e| upload_io_error(OP, e))?;
        let mut parts = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(OP, e))?;
            let Some(number) = entry.file_name().to_str().and_then(part_number) else {
                continue;
            };
            let md = match std::fs::metadata(entry.path()) {
                Ok(md) => md,
                // Replaced or aborted meanwhile.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(OP, e)),
            };
            parts.push(UploadedPart {
                number,
                etag: etag_of(&md),
                size: md.len(),
                checksums: Default::default(),
            });
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    fn list_uploads(&self, prefix: &str) -> opendal::Result<Vec<PendingUpload>> {
        const OP: &str = "ListMultipartUploads";
        let mut uploads: Vec<PendingUpload> = self
            .staging
            .list()
            .map_err(|e| io_error(OP, e))?
            .into_iter()
            .filter(|(_, record)| record.key.starts_with(prefix))
            .map(|(id, record)| PendingUpload {
                initiated: Some(record.initiated()),
                key: record.key,
                id: UploadId(id),
            })
            .collect();
        uploads.sort_by(|a, b| a.key.cmp(&b.key).then(a.initiated.cmp(&b.initiated)));
        Ok(uploads)
    }

    fn complete(
        &self,
        key: &str,
        id: &UploadId,
        parts: &[UploadedPart],
        overwrite: Overwrite,
    ) -> opendal::Result<Committed> {
        const OP: &str = "CompleteMultipartUpload";
        let (dir, record) = self.upload(OP, key, id)?;
        let path = self.object_path(OP, key)?;
        if parts.is_empty() {
            return Err(refused(OP, ErrorKind::Unexpected, "no parts"));
        }
        if parts.windows(2).any(|w| w[0].number >= w[1].number) {
            return Err(refused(
                OP,
                ErrorKind::Unexpected,
                "InvalidPartOrder: part numbers must ascend",
            ));
        }
        let temp = self.temp_path("complete");
        let result = (|| {
            let mut out = File::create_new(&temp).map_err(|e| io_error(OP, e))?;
            for (i, part) in parts.iter().enumerate() {
                let mut input = match File::open(part_path(&dir, part.number)) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(refused(
                            OP,
                            ErrorKind::Unexpected,
                            format!("InvalidPart: part {} was never uploaded", part.number),
                        ))
                    }
                    Err(e) => return Err(io_error(OP, e)),
                };
                let md = input.metadata().map_err(|e| io_error(OP, e))?;
                let (etag, size) = (etag_of(&md), md.len());
                if etag != part.etag {
                    return Err(refused(
                        OP,
                        ErrorKind::Unexpected,
                        format!(
                            "InvalidPart: part {} has ETag {etag}, not {}",
                            part.number, part.etag
                        ),
                    ));
                }
                if i + 1 < parts.len() && size < LOCAL_LIMITS.min_part {
                    return Err(refused(
                        OP,
                        ErrorKind::Unexpected,
                        format!("EntityTooSmall: part {} is empty", part.number),
                    ));
                }
                // copy_file_range: the kernel copies (or shares the extents, on filesystems that can).
                let copied = io::copy(&mut input, &mut out).map_err(|e| io_error(OP, e))?;
                if copied != size {
                    return Err(refused(
                        OP,
                        ErrorKind::Unexpected,
                        format!(
                            "InvalidPart: part {} changed while it was joined",
                            part.number
                        ),
                    ));
                }
            }
            finish_file(OP, &out, &record.meta())?;
            self.commit(OP, &temp, &path, overwrite)
        })();
        let committed = discard_on_error(&temp, result)?;
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            warn!(upload = %id.0, error = %e, "the completed upload's staging directory stays behind");
        }
        Ok(committed)
    }

    fn abort(&self, key: &str, id: &UploadId) -> opendal::Result<()> {
        const OP: &str = "AbortMultipartUpload";
        let (dir, _) = self.upload(OP, key, id)?;
        std::fs::remove_dir_all(&dir).map_err(|e| upload_io_error(OP, e))
    }

    fn replace_metadata(
        &self,
        key: &str,
        expected_etag: Option<&str>,
        meta: &ObjectMeta,
    ) -> opendal::Result<Committed> {
        const OP: &str = "CopyObject";
        let path = self.object_path(OP, key)?;
        let Some((file, md)) =
            open_existing(&path, key.ends_with('/')).map_err(|e| io_error(OP, e))?
        else {
            return Err(refused(
                OP,
                ErrorKind::NotFound,
                format!("no object {key:?}"),
            ));
        };
        if expected_etag.is_some_and(|e| e != etag_of(&md)) {
            return Err(refused(
                OP,
                ErrorKind::ConditionNotMatch,
                "the object changed meanwhile",
            ));
        }
        xattrs::replace(&file, meta).map_err(|e| io_error(OP, e))?;
        set_mtime(OP, &file, meta)?;
        committed(OP, &file)
    }
}

/// Opens the file (or, for a directory marker, the directory) at `path`; `None` when there is none of that
/// type there (S3 has no object `a` when only `a/` exists, and the other way round).
fn open_existing(path: &Path, directory: bool) -> io::Result<Option<(File, Metadata)>> {
    let md = match std::fs::metadata(path) {
        Ok(md) => md,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    if md.is_dir() != directory || !(md.is_dir() || md.is_file()) {
        return Ok(None);
    }
    match File::open(path) {
        Ok(file) => Ok(Some((file, md))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Metadata, mtime and data sync of a new file before it is renamed into place.
fn finish_file(op: &'static str, file: &File, meta: &ObjectMeta) -> opendal::Result<()> {
    xattrs::write(file, meta).map_err(|e| io_error(op, e))?;
    set_mtime(op, file, meta)?;
    // The rename is the commit: the bytes must be on disk before the name is.
    file.sync_data().map_err(|e| io_error(op, e))
}

fn set_mtime(op: &'static str, file: &File, meta: &ObjectMeta) -> opendal::Result<()> {
    match meta.user.get(mtime::MTIME).and_then(|v| mtime::parse(v)) {
        Some(time) => file.set_modified(time).map_err(|e| io_error(op, e)),
        None => Ok(()),
    }
}

fn committed(op: &'static str, file: &File) -> opendal::Result<Committed> {
    let md = file.metadata().map_err(|e| io_error(op, e))?;
    Ok(Committed {
        etag: Some(etag_of(&md)),
        last_modified: md.modified().ok(),
        checksums: Default::default(),
    })
}

fn create_parents(op: &'static str, path: &Path) -> opendal::Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    std::fs::create_dir_all(parent).map_err(|e| match e.kind() {
        // A file where a directory should be: mkdir says EEXIST, a deeper mkdir ENOTDIR.
        io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory => refused(
            op,
            ErrorKind::NotADirectory,
            format!("{}: a file is in the way", parent.display()),
        ),
        _ => io_error(op, e),
    })
}

/// Changes with every write (new inode), metadata change (change time) and size.
fn etag_of(md: &Metadata) -> String {
    let ctime = i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec());
    format!("{:x}-{:x}-{:x}", md.ino(), ctime, md.size())
}

fn check_part_number(op: &'static str, number: u32) -> opendal::Result<()> {
    if (1..=LOCAL_LIMITS.max_parts).contains(&number) {
        Ok(())
    } else {
        Err(refused(
            op,
            ErrorKind::Unexpected,
            format!("part number {number} is not in 1..=10000"),
        ))
    }
}

fn discard_on_error<T>(temp: &Path, result: opendal::Result<T>) -> opendal::Result<T> {
    if result.is_err() {
        if let Err(e) = std::fs::remove_file(temp) {
            if e.kind() != io::ErrorKind::NotFound {
                warn!(path = %temp.display(), error = %e, "cannot remove a temporary file");
            }
        }
    }
    result
}

fn refused(op: &'static str, kind: ErrorKind, what: impl Into<String>) -> Error {
    Error::new(kind, format!("{op}: {}", what.into()))
        .with_operation(op)
        .set_permanent()
}

fn exists(op: &'static str) -> Error {
    refused(
        op,
        ErrorKind::ConditionNotMatch,
        "an object exists at the key",
    )
}

fn no_such_upload(op: &'static str) -> Error {
    refused(
        op,
        ErrorKind::NotFound,
        "NoSuchUpload: the upload does not exist",
    )
}

/// An error in the upload's own directory: ENOENT there means the upload was aborted or completed meanwhile.
fn upload_io_error(op: &'static str, err: io::Error) -> Error {
    if err.kind() == io::ErrorKind::NotFound {
        no_such_upload(op)
    } else {
        io_error(op, err)
    }
}

/// An OS error as an `opendal::Error` of the kind the core maps; permanent unless a retry may help.
fn io_error(op: &'static str, err: io::Error) -> Error {
    let (kind, temporary) = match err.raw_os_error() {
        Some(libc::ENOENT) => (ErrorKind::NotFound, false),
        Some(libc::ENOTDIR) => (ErrorKind::NotADirectory, false),
        Some(libc::EISDIR) => (ErrorKind::IsADirectory, false),
        Some(libc::EEXIST) => (ErrorKind::AlreadyExists, false),
        Some(libc::EACCES | libc::EPERM | libc::EROFS) => (ErrorKind::PermissionDenied, false),
        Some(libc::ENAMETOOLONG) => (ErrorKind::Unsupported, false),
        Some(libc::EINTR | libc::EAGAIN | libc::ETIMEDOUT) => (ErrorKind::Unexpected, true),
        _ => match err.kind() {
            io::ErrorKind::NotFound => (ErrorKind::NotFound, false),
            io::ErrorKind::PermissionDenied => (ErrorKind::PermissionDenied, false),
            io::ErrorKind::AlreadyExists => (ErrorKind::AlreadyExists, false),
            io::ErrorKind::Unsupported => (ErrorKind::Unsupported, false),
            _ => (ErrorKind::Unexpected, false),
        },
    };
    let err = Error::new(kind, format!("{op}: {err}"))
        .with_operation(op)
        .set_source(err);
    if temporary {
        err.set_temporary()
    } else {
        err.set_permanent()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_map_to_permanent_kinds() {
        let cases = [
            (libc::ENOENT, ErrorKind::NotFound, false),
            (libc::ENOTDIR, ErrorKind::NotADirectory, false),
            (libc::EISDIR, ErrorKind::IsADirectory, false),
            (libc::ENAMETOOLONG, ErrorKind::Unsupported, false),
            (libc::EACCES, ErrorKind::PermissionDenied, false),
            (libc::EROFS, ErrorKind::PermissionDenied, false),
            (libc::ENOSPC, ErrorKind::Unexpected, false),
            (libc::EINTR, ErrorKind::Unexpected, true),
        ];
        for (errno, kind, temporary) in cases {
            let e = io_error("Op", io::Error::from_raw_os_error(errno));
            assert_eq!(
                (e.kind(), e.is_temporary()),
                (kind, temporary),
                "errno {errno}"
            );
        }
    }

    #[test]
    fn keys_that_leave_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsObjects::new(&dir.path().join("root"), FaultHook::default()).unwrap();
        for bad in ["", "/", "../x", "a/../../x", "a//b", "./a", "a/\0"] {
            assert!(fs.inner.object_path("Op", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            fs.inner.object_path("Op", "a/b/").unwrap(),
            dir.path().join("root/a/b")
        );
    }
}
