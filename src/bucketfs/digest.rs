//! Digests of file contents: computed while an upload streams, kept as object metadata, answered from there (FTP
//! HASH, XSHA256, …) without reading the data; computed from the store's bytes for objects cosftpd did not write
//! (bounded by `hash_max_size`).
//!
//! Metadata names: `cosftpd-md5`, `cosftpd-sha1`, `cosftpd-sha256`, `cosftpd-sha512`, `cosftpd-crc32` (lower-case
//! hex), and rclone's `md5chksum` (base64 MD5) when MD5 is computed, so `rclone check` trusts it too.
//!
//! CRC-64/XZ is also computed on COS, where the store reports its own (`x-cos-hash-crc64ecma`) for each part and
//! for the whole object: a difference means the bytes were damaged on the way, and the upload fails.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use base64::Engine as _;
use bytes::Bytes;
use crc_fast::{CrcAlgorithm, Digest as Crc};
use sha2::Digest as _;

/// A digest a client can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
    Crc32,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Md5,
        Algorithm::Sha1,
        Algorithm::Sha256,
        Algorithm::Sha512,
        Algorithm::Crc32,
    ];

    /// The name FTP's HASH command uses (draft-bryan-ftpext-hash).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha1 => "SHA-1",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512 => "SHA-512",
            Algorithm::Crc32 => "CRC32",
        }
    }

    /// The user-metadata name it is kept under.
    pub fn meta_key(self) -> &'static str {
        match self {
            Algorithm::Md5 => "cosftpd-md5",
            Algorithm::Sha1 => "cosftpd-sha1",
            Algorithm::Sha256 => "cosftpd-sha256",
            Algorithm::Sha512 => "cosftpd-sha512",
            Algorithm::Crc32 => "cosftpd-crc32",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `md5`, `MD5`, `sha-256`, `sha256`, `SHA256`, `crc32`, …
impl FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let flat: String = s
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect();
        match flat.as_str() {
            "md5" => Ok(Algorithm::Md5),
            "sha1" => Ok(Algorithm::Sha1),
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            "crc32" => Ok(Algorithm::Crc32),
            _ => Err(format!(
                "unknown digest `{s}` (expected md5, sha1, sha256, sha512 or crc32)"
            )),
        }
    }
}

/// A set of algorithms (`upload_digests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlgorithmSet(u8);

impl AlgorithmSet {
    pub const NONE: AlgorithmSet = AlgorithmSet(0);

    pub fn of(algorithms: &[Algorithm]) -> Self {
        AlgorithmSet(algorithms.iter().fold(0, |bits, a| bits | a.bit()))
    }

    pub fn contains(self, algorithm: Algorithm) -> bool {
        self.0 & algorithm.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

impl fmt::Display for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Algorithm::name).collect();
        f.write_str(&names.join(","))
    }
}

/// Digests being computed over bytes in file order.
pub(crate) struct Hasher {
    md5: Option<md5::Md5>,
    sha1: Option<sha1::Sha1>,
    sha256: Option<sha2::Sha256>,
    sha512: Option<sha2::Sha512>,
    crc32: Option<Crc>,
    crc64: Option<Crc>,
    bytes: u64,
}

impl Hasher {
    /// The digests of `set`, and CRC-64/XZ when `crc64` (for comparing with COS's).
    pub(crate) fn new(set: AlgorithmSet, crc64: bool) -> Self {
        Self {
            md5: set.contains(Algorithm::Md5).then(md5::Md5::new),
            sha1: set.contains(Algorithm::Sha1).then(sha1::Sha1::new),
            sha256: set.contains(Algorithm::Sha256).then(sha2::Sha256::new),
            sha512: set.contains(Algorithm::Sha512).then(sha2::Sha512::new),
            crc32: set
                .contains(Algorithm::Crc32)
                .then(|| Crc::new(CrcAlgorithm::Crc32IsoHdlc)),
            crc64: crc64.then(|| Crc::new(CrcAlgorithm::Crc64Xz)),
            bytes: 0,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        if let Some(h) = &mut self.md5 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha512 {
            h.update(data);
        }
        if let Some(h) = &mut self.crc32 {
            h.update(data);
        }
        if let Some(h) = &mut self.crc64 {
            h.update(data);
        }
    }

    pub(crate) fn finish(self) -> Digests {
        let mut values = BTreeMap::new();
        if let Some(h) = self.md5 {
            values.insert(Algorithm::Md5, hex::encode(h.finalize()));
        }
        if let Some(h) = self.sha1 {
            values.insert(Algorithm::Sha1, hex::encode(h.finalize()));
        }
        if let Some(h) = self.sha256 {
            values.insert(Algorithm::Sha256, hex::encode(h.finalize()));
        }
        if let Some(h) = self.sha512 {
            values.insert(Algorithm::Sha512, hex::encode(h.finalize()));
        }
        if let Some(h) = self.crc32 {
            values.insert(Algorithm::Crc32, format!("{:08x}", h.finalize()));
        }
        Digests {
            values,
            crc64: self.crc64.map(|h| h.finalize()),
            bytes: self.bytes,
        }
    }
}

/// Finished digests of a whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digests {
    /// Lower-case hex, by algorithm.
    pub values: BTreeMap<Algorithm, String>,
    /// CRC-64/XZ (COS's `crc64ecma`), when computed.
    pub crc64: Option<u64>,
    /// The bytes they cover.
    pub bytes: u64,
}

impl Digests {
    /// The user metadata that keeps them.
    pub(crate) fn to_user_meta(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .values
            .iter()
            .map(|(a, v)| (a.meta_key().to_string(), v.clone()))
            .collect();
        if let Some(md5) = self.values.get(&Algorithm::Md5) {
            if let Ok(raw) = hex::decode(md5) {
                out.push((
                    "md5chksum".to_string(),
                    base64::engine::general_purpose::STANDARD.encode(raw),
                ));
            }
        }
        out
    }

    /// The digest of `algorithm` kept in an object's user metadata, if any.
    pub(crate) fn from_user_meta(
        user: &BTreeMap<String, String>,
        algorithm: Algorithm,
    ) -> Option<String> {
        if let Some(v) = user.get(algorithm.meta_key()) {
            return Some(v.to_ascii_lowercase());
        }
        // rclone's MD5 of a multipart upload.
        if algorithm == Algorithm::Md5 {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(user.get("md5chksum")?)
                .ok()?;
            return (raw.len() == 16).then(|| hex::encode(raw));
        }
        None
    }
}

/// CRC-64/XZ of one buffer (a part, checked against what COS computed of it).
pub(crate) fn crc64(data: &[u8]) -> u64 {
    let mut crc = Crc::new(CrcAlgorithm::Crc64Xz);
    crc.update(data);
    crc.finalize()
}

/// MD5 of one buffer (a single PUT: sent as Content-MD5 and compared with the ETag).
pub(crate) fn md5(data: &[u8]) -> [u8; 16] {
    md5::Md5::digest(data).into()
}

/// Hashes the parts of an upload, in order, on a thread of its own (hashing a GiB takes a second or more, which
/// must not hold up the async runtime or the upload).
pub(crate) struct HashWorker {
    feed: std::sync::mpsc::Sender<Bytes>,
    done: tokio::sync::oneshot::Receiver<Digests>,
}

impl HashWorker {
    pub(crate) fn start(set: AlgorithmSet, crc64: bool) -> Self {
        let (feed, input) = std::sync::mpsc::channel::<Bytes>();
        let (report, done) = tokio::sync::oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let mut hasher = Hasher::new(set, crc64);
            for bytes in input {
                hasher.update(&bytes);
            }
            let _ = report.send(hasher.finish());
        });
        Self { feed, done }
    }

    /// The next bytes of the file (cheap: `Bytes` is shared, not copied).
    pub(crate) fn feed(&self, bytes: Bytes) {
        let _ = self.feed.send(bytes);
    }

    /// The digests of everything fed.
    pub(crate) async fn finish(self) -> Option<Digests> {
        drop(self.feed);
        self.done.await.ok()
    }
}

/// A range of a file to hash (FTP `RANG`, `XCRC name start end`); `None` is the whole file.
pub type HashRange = Option<Range<u64>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let mut h = Hasher::new(AlgorithmSet::of(&Algorithm::ALL), true);
        h.update(b"123456");
        h.update(b"789");
        let d = h.finish();
        assert_eq!(
            d.values[&Algorithm::Md5],
            "25f9e794323b453885f5181f1b624d0b"
        );
        assert_eq!(
            d.values[&Algorithm::Sha1],
            "f7c3bc1d808e04732adf679965ccc34ca7ae3441"
        );
        assert_eq!(
            d.values[&Algorithm::Sha256],
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
        );
        assert_eq!(d.values[&Algorithm::Crc32], "cbf43926");
        assert_eq!(d.crc64, Some(0x995D_C9BB_DF19_39FA));
        assert_eq!(d.bytes, 9);
        let meta: BTreeMap<String, String> = d.to_user_meta().into_iter().collect();
        assert_eq!(meta["md5chksum"], "JfnnlDI7RTiF9RgfG2JNCw==");
        assert_eq!(
            Digests::from_user_meta(&meta, Algorithm::Md5).as_deref(),
            Some("25f9e794323b453885f5181f1b624d0b")
        );
        let rclone_only: BTreeMap<String, String> =
            [("md5chksum".to_string(), meta["md5chksum"].clone())].into();
        assert_eq!(
            Digests::from_user_meta(&rclone_only, Algorithm::Md5).as_deref(),
            Some("25f9e794323b453885f5181f1b624d0b")
        );
        assert_eq!(crc64(b"123456789"), 0x995D_C9BB_DF19_39FA);
    }

    #[test]
    fn names_parse_in_every_spelling() {
        for (text, want) in [
            ("SHA-256", Algorithm::Sha256),
            ("sha256", Algorithm::Sha256),
            ("Sha_1", Algorithm::Sha1),
            ("MD5", Algorithm::Md5),
            ("crc32", Algorithm::Crc32),
        ] {
            assert_eq!(text.parse::<Algorithm>().unwrap(), want, "{text}");
        }
        assert!("sha3".parse::<Algorithm>().is_err());
        let set = AlgorithmSet::of(&[Algorithm::Sha256, Algorithm::Crc32]);
        assert_eq!(set.to_string(), "SHA-256,CRC32");
    }

    #[tokio::test]
    async fn the_worker_hashes_in_order() {
        let worker = HashWorker::start(AlgorithmSet::of(&[Algorithm::Crc32]), false);
        worker.feed(Bytes::from_static(b"12345"));
        worker.feed(Bytes::from_static(b"6789"));
        let d = worker.finish().await.unwrap();
        assert_eq!(d.values[&Algorithm::Crc32], "cbf43926");
    }
}

/// The answer to a HASH-style question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestAnswer {
    pub algorithm: Algorithm,
    /// Lower-case hex.
    pub value: String,
    /// The bytes covered: `start..end` of the file.
    pub range: Range<u64>,
    /// True when it was computed now from the store's bytes (the object carried no digest of this kind, or a range
    /// was asked), false when it came from the object's metadata.
    pub computed: bool,
}

impl BucketFs {
    /// The digests computed while uploading (`upload_digests`).
    pub(crate) fn digest_set(&self) -> AlgorithmSet {
        self.settings().upload_digests
    }

    /// The digest of a file, or of `range` of it: from the object's metadata when cosftpd wrote it (no data read),
    /// else computed from the store's bytes, up to `hash_max_size`.
    #[tracing::instrument(level = "debug", skip(self), fields(path = %key.display()))]
    pub async fn digest(
        &self,
        key: &Key,
        algorithm: Algorithm,
        range: HashRange,
    ) -> FsResult<DigestAnswer> {
        self.check_name(key)?;
        self.policy().check_read("hash", &key.display())?;
        let meta = self.stat_file(key).await?;
        let whole = 0..meta.size;
        let range = match range {
            Some(r) if r.start > r.end || r.end > meta.size => {
                return Err(FsError::new(
                    FsErrorKind::InvalidOffset,
                    format!(
                        "{}: the range {}-{} is outside the file ({} bytes)",
                        key.display(),
                        r.start,
                        r.end,
                        meta.size
                    ),
                ))
            }
            Some(r) => r,
            None => whole.clone(),
        };
        if range == whole {
            if let Some(head) = self
                .objects()
                .head(key.as_str())
                .await
                .map_err(|e| FsError::store(&format!("hash {}", key.display()), e))?
            {
                if head.size == meta.size {
                    if let Some(value) = Digests::from_user_meta(&head.meta.user, algorithm) {
                        return Ok(DigestAnswer {
                            algorithm,
                            value,
                            range,
                            computed: false,
                        });
                    }
                }
            }
        }
        let digests = self
            .compute_digests(key, AlgorithmSet::of(&[algorithm]), range.clone())
            .await?;
        let value = digests.values.get(&algorithm).cloned().unwrap_or_default();
        Ok(DigestAnswer {
            algorithm,
            value,
            range,
            computed: true,
        })
    }

    /// Reads `range` of a file from the store and hashes it, if it is not over `hash_max_size`.
    async fn compute_digests(
        &self,
        key: &Key,
        set: AlgorithmSet,
        range: Range<u64>,
    ) -> FsResult<Digests> {
        let limit = self.settings().hash_max_size;
        let len = range.end - range.start;
        if len > limit {
            return Err(FsError::new(
                FsErrorKind::Unsupported,
                format!(
                    "{}: {len} bytes to read to compute the digest, more than hash_max_size ({limit})",
                    key.display()
                ),
            ));
        }
        let (_, mut stream) = self.read_stream_range(key, range).await?;
        let worker = HashWorker::start(set, false);
        use futures::StreamExt;
        while let Some(chunk) = stream.next().await {
            worker.feed(chunk?);
        }
        worker.finish().await.ok_or_else(|| {
            FsError::new(
                FsErrorKind::Store,
                format!("{}: hashing stopped", key.display()),
            )
        })
    }

    /// Adds `digests` (or, when not known, digests computed from the store's bytes) to the object's metadata by a
    /// copy onto itself. Skipped when the object changed since the upload that made `etag`.
    pub(crate) async fn store_digests(
        &self,
        key: &Key,
        etag: Option<String>,
        digests: Option<Digests>,
    ) -> FsResult<()> {
        let context = || format!("keep the digests of {}", key.display());
        let head = self
            .objects()
            .head(key.as_str())
            .await
            .map_err(|e| FsError::store(&context(), e))?
            .ok_or_else(|| FsError::not_found(&key.display()))?;
        if etag.is_some() && head.etag != etag {
            return Ok(()); // replaced meanwhile
        }
        let digests = match digests {
            Some(d) => d,
            None => {
                self.compute_digests(key, self.digest_set(), 0..head.size)
                    .await?
            }
        };
        let mut meta = head.meta.clone();
        meta.user.extend(digests.to_user_meta());
        if meta == head.meta {
            return Ok(());
        }
        self.objects()
            .replace_metadata(key.as_str(), &head, &meta)
            .await
            .map_err(|e| FsError::store(&context(), e))?;
        self.cache().forget_tree(key);
        tracing::debug!(path = %key.display(), "digests kept in the object's metadata");
        Ok(())
    }
}

use super::error::{FsError, FsErrorKind, FsResult};
use super::path::Key;
use super::BucketFs;
