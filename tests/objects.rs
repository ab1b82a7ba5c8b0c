//! `storage::objects` (the object-write layer) on every backend: moto in S3 and in COS mode, a temporary
//! directory (`fs`) and OpenDAL's memory service. Each scenario runs on all four (`<scenario>::s3`, `::cos`,
//! `::fs`, `::memory`); what the store holds is checked behind the layer's back (raw HTTP to moto, std::fs, the
//! OpenDAL operator). Then what only some backends have (COS CRC-64, fs extended attributes and errors), and
//! failure handling against canned HTTP answers, a stopped moto and a stalled listener.
//! The moto cases skip when moto is missing, unless COSFTPD_REQUIRE_S3=1.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use common::{S3Server, ServerMode};
use cosftpd::config::{Secret, StorageConfig};
use cosftpd::storage::objects::{ObjectMeta, ObjectStore, Overwrite, UploadedPart};
use cosftpd::storage::{self, AccountStore, FaultInjector, FaultRule, StorageOptions};
use opendal::ErrorKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    S3,
    Cos,
    Fs,
    Memory,
}

/// One store to test, and a way to look into it without the layer.
struct Fixture {
    kind: Kind,
    store: AccountStore,
    faults: FaultInjector,
    server: Option<&'static S3Server>,
    bucket: String,
    root: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

fn s3_config(endpoint: String, bucket: &str) -> StorageConfig {
    StorageConfig::S3 {
        bucket: bucket.to_string(),
        endpoint,
        region: "us-east-1".into(),
        access_key: Secret::new("test-key"),
        secret_key: Secret::new("test-secret"),
        virtual_host: false,
    }
}

fn cos_config(server: &S3Server, bucket: &str) -> StorageConfig {
    StorageConfig::Cos {
        bucket: bucket.to_string(),
        endpoint: server.cos_endpoint(),
        secret_id: Secret::new("AKIDtest"),
        secret_key: Secret::new("cos-secret"),
    }
}

impl Fixture {
    /// `None` (skip) when the moto server is unavailable.
    fn new(kind: Kind) -> Option<Fixture> {
        let faults = FaultInjector::new();
        let mut options = StorageOptions {
            resolve: Vec::new(),
            faults: Some(faults.clone()),
        };
        let (mut server, mut bucket, mut root, mut dir) = (None, String::new(), None, None);
        let config = match kind {
            Kind::S3 | Kind::Cos => {
                let mode = if kind == Kind::S3 {
                    ServerMode::S3
                } else {
                    ServerMode::Cos
                };
                let shared = S3Server::shared(mode)?;
                bucket = common::unique_bucket("objects");
                shared.create_bucket(&bucket);
                server = Some(shared);
                if kind == Kind::S3 {
                    s3_config(shared.endpoint(), &bucket)
                } else {
                    options.resolve.push(shared.cos_resolve(&bucket));
                    cos_config(shared, &bucket)
                }
            }
            Kind::Fs => {
                let temp = tempfile::tempdir().expect("tempdir");
                root = Some(temp.path().join("root"));
                dir = Some(temp);
                StorageConfig::Fs {
                    root: root.clone()?,
                }
            }
            Kind::Memory => StorageConfig::Memory,
        };
        Some(Fixture {
            kind,
            store: storage::build_store(&config, &options).expect("store"),
            faults,
            server,
            bucket,
            root,
            _dir: dir,
        })
    }

    fn objects(&self) -> &ObjectStore {
        &self.store.objects
    }

    fn min_part(&self) -> usize {
        self.objects().limits().min_part as usize
    }

    /// The object's bytes as the store holds them, read without `objects`.
    async fn read(&self, key: &str) -> Option<Vec<u8>> {
        match self.kind {
            Kind::S3 | Kind::Cos => self.server?.get_object(&self.bucket, key),
            Kind::Fs => std::fs::read(self.root.as_ref()?.join(key)).ok(),
            Kind::Memory => self.store.op.read(key).await.ok().map(|b| b.to_vec()),
        }
    }
}

fn meta(content_type: &str, user: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        content_type: Some(content_type.to_string()),
        user: user
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn pattern(len: usize, seed: u64) -> Bytes {
    Bytes::from(common::pattern(len, seed))
}

fn crc64(data: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Xz, data)
}

/// Runs a scenario on each backend: `<scenario>::{s3, cos, fs, memory}`.
macro_rules! on_every_store {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::{Fixture, Kind};
            #[tokio::test]
            async fn s3() {
                if let Some(fx) = Fixture::new(Kind::S3) {
                    super::$scenario(&fx).await
                }
            }
            #[tokio::test]
            async fn cos() {
                if let Some(fx) = Fixture::new(Kind::Cos) {
                    super::$scenario(&fx).await
                }
            }
            #[tokio::test]
            async fn fs() {
                if let Some(fx) = Fixture::new(Kind::Fs) {
                    super::$scenario(&fx).await
                }
            }
            #[tokio::test]
            async fn memory() {
                if let Some(fx) = Fixture::new(Kind::Memory) {
                    super::$scenario(&fx).await
                }
            }
        }
    )*};
}

on_every_store!(
    put_with_metadata_then_head,
    conditional_writes_refuse_an_existing_key,
    multipart_round_trip,
    abort_drops_the_upload,
    copy_part_from_an_existing_object,
    replace_metadata_keeps_the_bytes,
    injected_fault_on_upload_part_is_not_retried,
);

async fn put_with_metadata_then_head(fx: &Fixture) {
    let s = fx.objects();
    let first = meta("text/plain", &[("mtime", "1700000000"), ("mode", "33188")]);
    let committed = s
        .put(
            "dir/a.txt",
            Bytes::from_static(b"hello"),
            &first,
            Overwrite::Allow,
        )
        .await
        .unwrap();
    assert!(committed.etag.is_some(), "{committed:?}");
    let head = s.head("dir/a.txt").await.unwrap().expect("the object");
    assert_eq!(head.size, 5);
    assert_eq!(head.meta, first);
    assert_eq!(head.etag, committed.etag);
    assert_eq!(fx.read("dir/a.txt").await.as_deref(), Some(&b"hello"[..]));
    assert_eq!(s.head("dir/absent.txt").await.unwrap(), None);

    // Replaced, metadata and all.
    let second = meta("application/octet-stream", &[("mtime", "1800000000")]);
    s.put(
        "dir/a.txt",
        Bytes::from_static(b"bye"),
        &second,
        Overwrite::Allow,
    )
    .await
    .unwrap();
    let head = s.head("dir/a.txt").await.unwrap().expect("the object");
    assert_eq!((head.size, head.meta), (3, second));
    assert_eq!(fx.read("dir/a.txt").await.as_deref(), Some(&b"bye"[..]));
}

async fn conditional_writes_refuse_an_existing_key(fx: &Fixture) {
    let s = fx.objects();
    let m = meta("text/plain", &[]);
    s.put(
        "exists.txt",
        Bytes::from_static(b"old"),
        &m,
        Overwrite::Allow,
    )
    .await
    .unwrap();
    let err = s
        .put(
            "exists.txt",
            Bytes::from_static(b"new"),
            &m,
            Overwrite::Forbid,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConditionNotMatch, "{err}");
    assert!(!err.is_temporary());
    assert_eq!(fx.read("exists.txt").await.as_deref(), Some(&b"old"[..]));

    let id = s.create_upload("exists.txt", &m).await.unwrap();
    let part = s
        .upload_part("exists.txt", &id, 1, Bytes::from_static(b"new"))
        .await
        .unwrap();
    let err = s
        .complete_upload("exists.txt", &id, &[part], Overwrite::Forbid)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConditionNotMatch, "{err}");
    assert_eq!(fx.read("exists.txt").await.as_deref(), Some(&b"old"[..]));
    // The upload survives the refusal, to be aborted (or completed differently).
    let pending = s.list_uploads("exists").await.unwrap();
    assert!(
        pending.iter().any(|u| u.id == id && u.key == "exists.txt"),
        "{pending:?}"
    );
    s.abort_upload("exists.txt", &id).await.unwrap();
    let again = s.abort_upload("exists.txt", &id).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::NotFound, "{again}");
    assert!(!s
        .list_uploads("exists")
        .await
        .unwrap()
        .iter()
        .any(|u| u.id == id));

    // Where nothing is, the conditional write goes through.
    s.put("fresh.txt", Bytes::from_static(b"x"), &m, Overwrite::Forbid)
        .await
        .unwrap();
    assert_eq!(fx.read("fresh.txt").await.as_deref(), Some(&b"x"[..]));
}

async fn multipart_round_trip(fx: &Fixture) {
    let s = fx.objects();
    let key = "mp/file.bin";
    let (p1, p2) = (pattern(fx.min_part(), 1), pattern(1000, 2));
    let m = meta(
        "application/x-test",
        &[("mtime", "1700000000.5"), ("mode", "33188")],
    );
    let id = s.create_upload(key, &m).await.unwrap();
    // Out of order, as parallel part uploads finish.
    let u2 = s.upload_part(key, &id, 2, p2.clone()).await.unwrap();
    let u1 = s.upload_part(key, &id, 1, p1.clone()).await.unwrap();
    assert_eq!((u1.number, u1.size), (1, p1.len() as u64));
    assert_eq!((u2.number, u2.size), (2, 1000));
    assert_eq!(
        listed(s.list_parts(key, &id).await.unwrap()),
        listed(vec![u1.clone(), u2.clone()])
    );

    let pending = s.list_uploads("mp/").await.unwrap();
    assert!(
        pending.iter().any(|u| u.id == id && u.key == key),
        "{pending:?}"
    );
    let elsewhere = s.list_uploads("other/").await.unwrap();
    assert!(!elsewhere.iter().any(|u| u.id == id), "{elsewhere:?}");

    let committed = s
        .complete_upload(key, &id, &[u1, u2], Overwrite::Forbid)
        .await
        .unwrap();
    let mut whole = p1.to_vec();
    whole.extend_from_slice(&p2);
    assert_eq!(fx.read(key).await.as_deref(), Some(&whole[..]));
    let head = s.head(key).await.unwrap().expect("the object");
    assert_eq!(head.size, whole.len() as u64);
    assert_eq!(head.meta, m);
    assert_eq!(head.etag, committed.etag);
    assert!(!s
        .list_uploads("mp/")
        .await
        .unwrap()
        .iter()
        .any(|u| u.id == id));
}

async fn abort_drops_the_upload(fx: &Fixture) {
    let s = fx.objects();
    let key = "ab/file.bin";
    let id = s.create_upload(key, &ObjectMeta::default()).await.unwrap();
    s.upload_part(key, &id, 1, pattern(100, 3)).await.unwrap();
    s.abort_upload(key, &id).await.unwrap();
    assert_eq!(s.list_uploads("ab/").await.unwrap(), vec![]);
    let late = s
        .upload_part(key, &id, 2, pattern(100, 4))
        .await
        .unwrap_err();
    assert_eq!(late.kind(), ErrorKind::NotFound, "{late}");
    let listed = s.list_parts(key, &id).await.unwrap_err();
    assert_eq!(listed.kind(), ErrorKind::NotFound, "{listed}");
    assert_eq!(fx.read(key).await, None);
}

async fn copy_part_from_an_existing_object(fx: &Fixture) {
    let s = fx.objects();
    let min = fx.min_part();
    let source = pattern(min + 100, 5);
    s.put(
        "src.bin",
        source.clone(),
        &ObjectMeta::default(),
        Overwrite::Allow,
    )
    .await
    .unwrap();
    let key = "copy/dst.bin";
    let id = s
        .create_upload(key, &meta("text/plain", &[]))
        .await
        .unwrap();
    let first = s
        .copy_part(key, &id, 1, "src.bin", 0..min as u64)
        .await
        .unwrap();
    let second = s
        .copy_part(key, &id, 2, "src.bin", min as u64..(min + 100) as u64)
        .await
        .unwrap();
    assert_eq!((first.size, second.size), (min as u64, 100));
    assert_eq!(
        s.list_parts(key, &id).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    s.complete_upload(key, &id, &[first, second], Overwrite::Allow)
        .await
        .unwrap();
    assert_eq!(fx.read(key).await.as_deref(), Some(&source[..]));
}

async fn replace_metadata_keeps_the_bytes(fx: &Fixture) {
    let s = fx.objects();
    let body = pattern(1000, 6);
    let before = meta("text/plain", &[("mtime", "1700000000"), ("mode", "33188")]);
    s.put("meta.txt", body.clone(), &before, Overwrite::Allow)
        .await
        .unwrap();
    let current = s.head("meta.txt").await.unwrap().expect("the object");
    let after = meta("text/markdown", &[("mtime", "1800000000"), ("uid", "1000")]);
    s.replace_metadata("meta.txt", &current, &after)
        .await
        .unwrap();
    let head = s.head("meta.txt").await.unwrap().expect("the object");
    assert_eq!(head.meta, after);
    assert_eq!(head.size, 1000);
    assert_eq!(fx.read("meta.txt").await.as_deref(), Some(&body[..]));

    // Over the single-copy limit: a multipart copy onto itself (s3 only; the local stores have no limit).
    let min = fx.min_part();
    let big = pattern(min + 10, 7);
    s.put("big.bin", big.clone(), &before, Overwrite::Allow)
        .await
        .unwrap();
    let current = s.head("big.bin").await.unwrap().expect("the object");
    let limited = s.clone().with_single_copy_limit(min as u64);
    limited
        .replace_metadata("big.bin", &current, &after)
        .await
        .unwrap();
    let head = s.head("big.bin").await.unwrap().expect("the object");
    assert_eq!((head.size, &head.meta), (big.len() as u64, &after));
    assert_eq!(fx.read("big.bin").await.as_deref(), Some(&big[..]));
    assert!(!s
        .list_uploads("big.bin")
        .await
        .unwrap()
        .iter()
        .any(|u| u.key == "big.bin"));

    // A HEAD from before another write is stale. moto ignores copy-source-if-match, so only the local stores
    // can show the refusal here.
    if matches!(fx.kind, Kind::Fs | Kind::Memory) {
        let stale = s.head("meta.txt").await.unwrap().expect("the object");
        s.put("meta.txt", pattern(10, 8), &before, Overwrite::Allow)
            .await
            .unwrap();
        let err = s
            .replace_metadata("meta.txt", &stale, &after)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConditionNotMatch, "{err}");
        assert_eq!(
            s.head("meta.txt").await.unwrap().expect("object").meta,
            before
        );
    }
}

async fn injected_fault_on_upload_part_is_not_retried(fx: &Fixture) {
    let s = fx.objects();
    let key = "fault/file.bin";
    let id = s.create_upload(key, &ObjectMeta::default()).await.unwrap();
    fx.faults.add(FaultRule {
        method: "PUT",
        query_contains: "partNumber=",
        times: 1,
    });
    let err = s
        .upload_part(key, &id, 1, pattern(100, 9))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert!(!err.is_temporary(), "{err}");
    // One request failed and none followed: a retry would have found the rule spent and succeeded.
    assert_eq!(fx.faults.fired(), 1);
    let part = s.upload_part(key, &id, 1, pattern(100, 9)).await.unwrap();
    assert_eq!(
        listed(s.list_parts(key, &id).await.unwrap()),
        listed(vec![part])
    );
    s.abort_upload(key, &id).await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------
// COS: the store's CRC-64 of what it stored.

#[tokio::test]
async fn cos_reports_the_crc64_of_puts_and_completed_uploads() {
    let Some(fx) = Fixture::new(Kind::Cos) else {
        return;
    };
    let s = fx.objects();
    let body = pattern(3000, 10);
    let committed = s
        .put(
            "crc.bin",
            body.clone(),
            &ObjectMeta::default(),
            Overwrite::Allow,
        )
        .await
        .unwrap();
    assert_eq!(committed.checksums.crc64ecma, Some(crc64(&body)));
    let head = s.head("crc.bin").await.unwrap().expect("the object");
    assert_eq!(head.checksums.crc64ecma, Some(crc64(&body)));

    let (p1, p2) = (pattern(fx.min_part(), 11), pattern(500, 12));
    let id = s
        .create_upload("crc-mp.bin", &ObjectMeta::default())
        .await
        .unwrap();
    let u1 = s
        .upload_part("crc-mp.bin", &id, 1, p1.clone())
        .await
        .unwrap();
    let u2 = s
        .upload_part("crc-mp.bin", &id, 2, p2.clone())
        .await
        .unwrap();
    let committed = s
        .complete_upload("crc-mp.bin", &id, &[u1, u2], Overwrite::Allow)
        .await
        .unwrap();
    // The whole object's CRC, which a resumed upload can also get by combining the parts' CRCs.
    let whole = crc_fast::checksum_combine(
        crc_fast::CrcAlgorithm::Crc64Xz,
        crc64(&p1),
        crc64(&p2),
        p2.len() as u64,
    );
    assert_eq!(committed.checksums.crc64ecma, Some(whole));
    let head = s.head("crc-mp.bin").await.unwrap().expect("the object");
    assert_eq!(head.checksums.crc64ecma, Some(whole));
}

#[tokio::test]
async fn s3_reports_no_crc64() {
    let Some(fx) = Fixture::new(Kind::S3) else {
        return;
    };
    let committed = fx
        .objects()
        .put(
            "crc.bin",
            pattern(10, 13),
            &ObjectMeta::default(),
            Overwrite::Allow,
        )
        .await
        .unwrap();
    assert_eq!(committed.checksums.crc64ecma, None);
}

// ---------------------------------------------------------------------------------------------------------
// fs: metadata in extended attributes and the file's mtime, staging, OS errors.

#[tokio::test]
async fn fs_keeps_metadata_in_xattrs_and_the_mtime() {
    let fx = Fixture::new(Kind::Fs).expect("fs");
    let root = fx.root.clone().expect("root");
    let m = meta(
        "text/plain",
        &[("mtime", "1700000000.5"), ("mode", "33188")],
    );
    fx.objects()
        .put("x/f.txt", Bytes::from_static(b"hi"), &m, Overwrite::Allow)
        .await
        .unwrap();
    let path = root.join("x/f.txt");
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert_eq!(
        modified,
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_500)
    );
    match xattr::get(&path, "user.cosftpd.meta.mtime") {
        Ok(value) => {
            assert_eq!(value.as_deref(), Some(&b"1700000000.5"[..]));
            assert_eq!(
                xattr::get(&path, "user.cosftpd.content_type")
                    .unwrap()
                    .as_deref(),
                Some(&b"text/plain"[..])
            );
        }
        Err(e) => eprintln!("no user xattrs under {}: {e}", root.display()),
    }

    // A directory marker is the directory, with its own metadata.
    let dir_meta = meta("application/x-directory", &[("mode", "16877")]);
    fx.objects()
        .put("d/", Bytes::new(), &dir_meta, Overwrite::Forbid)
        .await
        .unwrap();
    assert!(root.join("d").is_dir());
    let head = fx.objects().head("d/").await.unwrap().expect("the marker");
    assert_eq!(head.size, 0);
    assert_eq!(fx.objects().head("d").await.unwrap(), None);
}

#[tokio::test]
async fn fs_stages_uploads_beside_the_root() {
    let fx = Fixture::new(Kind::Fs).expect("fs");
    let root = fx.root.clone().expect("root");
    let s = fx.objects();
    let id = s
        .create_upload("a/b.bin", &meta("text/plain", &[]))
        .await
        .unwrap();
    let staged = PathBuf::from(format!("{}.cosftpd-tmp", root.display()))
        .join("uploads")
        .join(&id.0);
    let record = std::fs::read_to_string(staged.join("upload.json")).unwrap();
    assert!(record.contains("\"a/b.bin\""), "{record}");
    let part = s
        .upload_part("a/b.bin", &id, 1, pattern(10, 14))
        .await
        .unwrap();
    assert!(staged.join("part-00001").is_file());
    // Another key cannot use this upload.
    let wrong = s
        .upload_part("a/c.bin", &id, 1, pattern(10, 14))
        .await
        .unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::NotFound, "{wrong}");
    s.complete_upload("a/b.bin", &id, &[part], Overwrite::Allow)
        .await
        .unwrap();
    assert!(!staged.exists());
    assert_eq!(
        std::fs::read(root.join("a/b.bin")).unwrap(),
        &pattern(10, 14)[..]
    );
    // A complete with a wrong ETag is refused and the upload kept.
    let id = s
        .create_upload("a/b.bin", &ObjectMeta::default())
        .await
        .unwrap();
    let mut part = s
        .upload_part("a/b.bin", &id, 1, pattern(10, 15))
        .await
        .unwrap();
    part.etag = "0".repeat(32);
    let err = s
        .complete_upload("a/b.bin", &id, &[part], Overwrite::Allow)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert!(err.to_string().contains("InvalidPart"), "{err}");
    assert_eq!(s.list_uploads("a/").await.unwrap().len(), 1);
}

#[tokio::test]
async fn fs_maps_os_errors_to_permanent_kinds() {
    let fx = Fixture::new(Kind::Fs).expect("fs");
    let s = fx.objects();
    let none = ObjectMeta::default();
    s.put("file", Bytes::from_static(b"x"), &none, Overwrite::Allow)
        .await
        .unwrap();
    let under_a_file = s
        .put(
            "file/child",
            Bytes::from_static(b"y"),
            &none,
            Overwrite::Allow,
        )
        .await
        .unwrap_err();
    assert_eq!(
        under_a_file.kind(),
        ErrorKind::NotADirectory,
        "{under_a_file}"
    );
    assert!(!under_a_file.is_temporary());

    s.put(
        "dir/inner",
        Bytes::from_static(b"x"),
        &none,
        Overwrite::Allow,
    )
    .await
    .unwrap();
    let onto_a_dir = s
        .put("dir", Bytes::from_static(b"y"), &none, Overwrite::Allow)
        .await
        .unwrap_err();
    assert_eq!(onto_a_dir.kind(), ErrorKind::IsADirectory, "{onto_a_dir}");
    assert!(!onto_a_dir.is_temporary());

    let long = "n".repeat(300);
    let too_long = s
        .put(&long, Bytes::from_static(b"x"), &none, Overwrite::Allow)
        .await
        .unwrap_err();
    assert_eq!(too_long.kind(), ErrorKind::Unsupported, "{too_long}");
    assert!(!too_long.is_temporary());
}

/// Of many writers racing to create one key, exactly one wins (link/RENAME_NOREPLACE on fs, the write lock on
/// memory).
async fn concurrent_creates_have_one_winner(fx: &Fixture) {
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let s = fx.objects().clone();
            tokio::spawn(async move {
                s.put(
                    "race.txt",
                    pattern(100, i),
                    &ObjectMeta::default(),
                    Overwrite::Forbid,
                )
                .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConditionNotMatch, "{e}"),
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_concurrent_creates_have_one_winner() {
    concurrent_creates_have_one_winner(&Fixture::new(Kind::Fs).expect("fs")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_concurrent_creates_have_one_winner() {
    concurrent_creates_have_one_winner(&Fixture::new(Kind::Memory).expect("memory")).await;
}

// ---------------------------------------------------------------------------------------------------------
// Failures: canned answers (retries of temporary errors, none of permanent ones, errors inside 200 answers),
// a stopped moto and a stalled listener (time to error, printed with --nocapture: a measurement, not asserted).

/// An HTTP server on 127.0.0.1 that answers each request (one per connection) with the next canned answer,
/// the last one repeating, and counts requests.
struct CannedStore {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl CannedStore {
    fn start(answers: Vec<String>) -> CannedStore {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (Arc::clone(&requests), Arc::clone(&heads));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let n = count.fetch_add(1, Ordering::SeqCst);
                let answer = answers[n.min(answers.len() - 1)].clone();
                if let Ok(head) = read_request(&mut stream) {
                    seen.lock().unwrap_or_else(|e| e.into_inner()).push(head);
                    let _ = stream.write_all(answer.as_bytes());
                }
            }
        });
        CannedStore {
            addr,
            requests,
            heads,
        }
    }

    /// The heads of the requests so far, lower-cased.
    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn store(&self) -> ObjectStore {
        let config = s3_config(format!("http://{}", self.addr), "canned");
        storage::build_store(&config, &StorageOptions::default())
            .expect("store")
            .objects
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request's head and body (by Content-Length); returns the head, lower-cased.
fn read_request(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(String::from_utf8_lossy(&data).to_ascii_lowercase());
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while data.len() < end + 4 + length {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
            }
            return Ok(head);
        }
    }
}

fn answer(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text
}

fn error_doc(code: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>canned</Message><RequestId>req-1</RequestId></Error>")
}

fn canned_upload_id() -> cosftpd::storage::objects::UploadId {
    cosftpd::storage::objects::UploadId("u-1".into())
}

#[tokio::test]
async fn temporary_errors_are_retried() {
    let canned = CannedStore::start(vec![
        answer("503 Service Unavailable", &[], &error_doc("SlowDown")),
        answer(
            "500 Internal Server Error",
            &[],
            &error_doc("InternalError"),
        ),
        answer(
            "200 OK",
            &[("ETag", "\"0123456789abcdef0123456789abcdef\"")],
            "",
        ),
    ]);
    // Over one upload slice (64 KiB), so the body is streamed: still with its length, as S3 requires.
    let body = pattern(200 * 1024, 16);
    let part = canned
        .store()
        .upload_part("k", &canned_upload_id(), 1, body)
        .await
        .unwrap();
    assert_eq!(part.etag, "0123456789abcdef0123456789abcdef");
    assert_eq!(canned.requests(), 3);
    for head in canned.heads() {
        assert!(
            head.starts_with("put /canned/k?partnumber=1&uploadid=u-1 "),
            "{head}"
        );
        assert!(head.contains("\r\ncontent-length: 204800\r\n"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(
            head.contains("\r\nauthorization: aws4-hmac-sha256 "),
            "{head}"
        );
    }
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    for (status, code, kind) in [
        ("403 Forbidden", "AccessDenied", ErrorKind::PermissionDenied),
        ("404 Not Found", "NoSuchUpload", ErrorKind::NotFound),
        (
            "409 Conflict",
            "FileAlreadyExists",
            ErrorKind::ConditionNotMatch,
        ),
        (
            "412 Precondition Failed",
            "PreconditionFailed",
            ErrorKind::ConditionNotMatch,
        ),
        ("400 Bad Request", "EntityTooSmall", ErrorKind::Unexpected),
    ] {
        let canned = CannedStore::start(vec![answer(status, &[], &error_doc(code))]);
        let err = canned
            .store()
            .upload_part("k", &canned_upload_id(), 1, pattern(10, 17))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{code}: {err}");
        assert!(!err.is_temporary(), "{code}: {err}");
        assert!(err.to_string().contains(code), "{err}");
        assert_eq!(canned.requests(), 1, "{code}");
    }
}

#[tokio::test]
async fn an_error_inside_a_200_complete_is_an_error_and_retried() {
    let result = "<CompleteMultipartUploadResult><Bucket>canned</Bucket><Key>k</Key><ETag>\"abc-1\"</ETag></CompleteMultipartUploadResult>";
    let canned = CannedStore::start(vec![
        answer(
            "200 OK",
            &[],
            &format!("\n  \n{}", error_doc("InternalError")),
        ),
        answer("200 OK", &[], result),
    ]);
    let part = UploadedPart {
        number: 1,
        etag: "0123456789abcdef0123456789abcdef".into(),
        size: 10,
        checksums: Default::default(),
    };
    let committed = canned
        .store()
        .complete_upload(
            "k",
            &canned_upload_id(),
            std::slice::from_ref(&part),
            Overwrite::Allow,
        )
        .await
        .unwrap();
    assert_eq!(committed.etag.as_deref(), Some("abc-1"));
    assert_eq!(canned.requests(), 2);

    // A permanent code inside a 200 is not retried.
    let canned = CannedStore::start(vec![answer("200 OK", &[], &error_doc("AccessDenied"))]);
    let err = canned
        .store()
        .complete_upload("k", &canned_upload_id(), &[part], Overwrite::Allow)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(canned.requests(), 1);
}

#[tokio::test]
async fn stopped_store_fails_fast_with_a_temporary_error() {
    let bucket = common::unique_bucket("stopped");
    let Some(mut server) = S3Server::start_with_buckets(ServerMode::S3, &[&bucket]) else {
        return;
    };
    let store = storage::build_store(
        &s3_config(server.endpoint(), &bucket),
        &StorageOptions::default(),
    )
    .expect("store");
    let s = store.objects;
    s.put(
        "k",
        Bytes::from_static(b"x"),
        &ObjectMeta::default(),
        Overwrite::Allow,
    )
    .await
    .unwrap();
    server.stop();
    let started = Instant::now();
    let err = s.head("k").await.unwrap_err();
    let head_took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert!(err.is_temporary(), "{err}");
    let started = Instant::now();
    let err = s
        .upload_part("k", &canned_upload_id(), 1, pattern(1024 * 1024, 18))
        .await
        .unwrap_err();
    let part_took = started.elapsed();
    assert!(err.is_temporary(), "{err}");
    eprintln!("store stopped: HEAD failed after {head_took:.2?}, UploadPart (1 MiB) after {part_took:.2?}: {err}");
}

#[tokio::test]
async fn stalled_store_fails_within_the_budget() {
    // Accepts connections and never answers (nor reads).
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
    });
    let config = s3_config(format!("http://{addr}"), "stalled");
    let s = storage::build_store(&config, &StorageOptions::default())
        .expect("store")
        .objects;
    let started = Instant::now();
    let err = s.head("k").await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert!(err.is_temporary(), "{err}");
    eprintln!("store stalled: HEAD failed after {took:.2?}: {err}");
}

/// What ListParts tells of parts: number, ETag and size (the checksums are UploadPart's answer only).
fn listed(parts: Vec<UploadedPart>) -> Vec<(u32, String, u64)> {
    parts
        .into_iter()
        .map(|p| (p.number, p.etag, p.size))
        .collect()
}
