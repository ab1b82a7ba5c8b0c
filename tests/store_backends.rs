//! `storage` and `bucketfs` against a real S3 server (moto on loopback): the s3 and cos wiring of our own
//! `build_operator`, the start-up check's diagnoses, multipart streaming writes with aborts on every failure path,
//! append by server-side part copy, and listings with markers and implicit directories.

mod common;

fn key(path: &str) -> Key {
    Key::parse(path).expect("a valid test path")
}

use bytes::Bytes;
use common::{S3Server, ServerMode};
use cosftpd::bucketfs::{BucketFs, FsErrorKind, Key, MemoryBudget, Policy, Settings, WriteIntent};
use cosftpd::config::{Secret, StorageConfig};
use cosftpd::storage::{self, FaultInjector, FaultRule, StorageError, StorageOptions};
use futures::TryStreamExt;

const MIB: usize = 1024 * 1024;

fn s3_config(server: &S3Server, bucket: &str) -> StorageConfig {
    StorageConfig::S3 {
        bucket: bucket.to_string(),
        endpoint: server.endpoint(),
        region: "us-east-1".into(),
        access_key: Secret::new("test-key"),
        secret_key: Secret::new("test-secret"),
        virtual_host: false,
    }
}

fn cos_config(server: &S3Server, bucket: &str) -> (StorageConfig, StorageOptions) {
    let config = StorageConfig::Cos {
        bucket: bucket.to_string(),
        endpoint: server.cos_endpoint(),
        secret_id: Secret::new("AKIDtest"),
        secret_key: Secret::new("cos-secret"),
    };
    let options = StorageOptions {
        resolve: vec![server.cos_resolve(bucket)],
        faults: None,
    };
    (config, options)
}

fn fs_over(store: storage::AccountStore, part_size: u64) -> BucketFs {
    let settings = Settings {
        part_size,
        upload_concurrency: 2,
        ..Settings::default()
    };
    BucketFs::new(
        store,
        Policy::full(),
        settings,
        MemoryBudget::new(64 * MIB as u64),
    )
}

/// A gateway of its own (fresh cache) over `bucket`, with 5 MiB parts.
fn s3_fs(server: &S3Server, bucket: &str) -> BucketFs {
    let store = storage::build_store(&s3_config(server, bucket), &StorageOptions::default());
    fs_over(store.expect("s3 store"), 5 * MIB as u64)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    common::pattern(len, u64::from(seed))
}

async fn write_file(
    fs: &BucketFs,
    path: &str,
    data: &[u8],
    mode: WriteIntent,
) -> Result<(), cosftpd::bucketfs::FsError> {
    let mut w = fs.open_write(&key(path), mode).await?;
    for chunk in data.chunks(700_000) {
        w.write(Bytes::copy_from_slice(chunk)).await?;
    }
    w.close().await.map(|_| ())
}

async fn read_file(fs: &BucketFs, path: &str) -> Vec<u8> {
    let (_, stream) = fs.read_stream(&key(path), 0).await.expect("read_stream");
    let chunks: Vec<Bytes> = stream.try_collect().await.expect("read");
    chunks.concat()
}

fn pending_uploads(server: &S3Server, bucket: &str) -> usize {
    let response = server
        .request("GET", bucket, "", "uploads", &[], b"")
        .expect("ListMultipartUploads");
    common::xml_values(&response.text(), "UploadId").len()
}

#[tokio::test]
async fn cos_service_wiring_end_to_end() {
    let Some(server) = S3Server::start_with_buckets(ServerMode::Cos, &["examplebucket-1250000000"])
    else {
        return;
    };
    let (config, options) = cos_config(&server, "examplebucket-1250000000");
    let store = storage::build_store(&config, &options).expect("cos store");
    storage::check(&store.op).await.expect("bucket check");

    let fs = fs_over(store, MIB as u64);
    fs.mkdir(&key("/dir")).await.unwrap();
    let data = pattern(3 * MIB + 17, 1);
    write_file(&fs, "/dir/中文 file.bin", &data, WriteIntent::Replace)
        .await
        .unwrap();
    assert_eq!(read_file(&fs, "/dir/中文 file.bin").await, data);
    // The object really is in the bucket under the expected key, and the marker too.
    assert_eq!(
        server
            .get_object("examplebucket-1250000000", "dir/中文 file.bin")
            .as_deref(),
        Some(&data[..])
    );
    assert!(server
        .get_object("examplebucket-1250000000", "dir/")
        .is_some());

    // Append through COS: old bytes copied server-side, new ones uploaded.
    write_file(&fs, "/dir/中文 file.bin", b"tail", WriteIntent::Append)
        .await
        .unwrap();
    let mut expected = data.clone();
    expected.extend_from_slice(b"tail");
    assert_eq!(read_file(&fs, "/dir/中文 file.bin").await, expected);

    fs.rename(&key("/dir"), &key("/moved")).await.unwrap();
    assert!(server
        .get_object("examplebucket-1250000000", "dir/中文 file.bin")
        .is_none());
    assert_eq!(
        read_file(&fs, "/moved/中文 file.bin").await.len(),
        expected.len()
    );
    assert_eq!(pending_uploads(&server, "examplebucket-1250000000"), 0);
}

#[tokio::test]
async fn start_up_check_says_what_is_wrong() {
    let Some(mut server) = S3Server::start_with_buckets(ServerMode::S3, &["present"]) else {
        return;
    };
    let store =
        storage::build_store(&s3_config(&server, "absent"), &StorageOptions::default()).unwrap();
    let err = storage::check(&store.op).await.unwrap_err();
    assert!(matches!(err, StorageError::NoSuchBucket(_)), "{err}");

    let store =
        storage::build_store(&s3_config(&server, "present"), &StorageOptions::default()).unwrap();
    storage::check(&store.op).await.expect("present bucket");
    server.stop();
    let err = storage::check(&store.op).await.unwrap_err();
    assert!(matches!(err, StorageError::Unreachable(_)), "{err}");
    // Secrets never show in the diagnosis.
    assert!(!err.to_string().contains("test-secret"));
}

#[tokio::test]
async fn s3_listing_pages_markers_and_implicit_directories() {
    let Some(server) = S3Server::shared(ServerMode::S3) else {
        return;
    };
    let bucket = common::unique_bucket("list");
    server.create_bucket(&bucket);
    for i in 0..1205 {
        server.put_object(&bucket, &format!("many/f{i:05}"), b"x");
    }
    server.put_object(&bucket, "marker/", b"");
    server.put_object(&bucket, "implicit/deep/file", b"abc");
    server.put_object(&bucket, "top.txt", b"12345");

    let store =
        storage::build_store(&s3_config(server, &bucket), &StorageOptions::default()).unwrap();
    let fs = fs_over(store, 5 * MIB as u64);
    let mut root = fs.read_dir(&key("/")).await.unwrap();
    let mut names = Vec::new();
    while let Some(e) = root.next_entry().await.unwrap() {
        names.push((e.name.clone(), e.meta.is_dir(), e.meta.size));
    }
    names.sort();
    assert_eq!(
        names,
        vec![
            ("implicit".into(), true, 0),
            ("many".into(), true, 0),
            ("marker".into(), true, 0),
            ("top.txt".into(), false, 5)
        ]
    );
    assert!(fs.stat(&key("/implicit/deep")).await.unwrap().is_dir());

    // More than one ListObjects page (1,000 keys) arrives whole.
    let mut many = fs.read_dir(&key("/many")).await.unwrap();
    let mut count = 0;
    while many.next_entry().await.unwrap().is_some() {
        count += 1;
    }
    assert_eq!(count, 1205);
    assert!(!many.capped());
}

#[tokio::test]
async fn failed_part_upload_aborts_and_keeps_the_old_object() {
    let Some(server) = S3Server::start_with_buckets(ServerMode::S3, &["faults"]) else {
        return;
    };
    let faults = FaultInjector::new();
    let store = storage::build_store(
        &s3_config(&server, "faults"),
        &StorageOptions {
            resolve: vec![],
            faults: Some(faults.clone()),
        },
    )
    .unwrap();
    // S3's smallest part is 5 MiB; the core raises smaller settings to it.
    let fs = fs_over(store, MIB as u64);
    assert_eq!(fs.settings().part_size, 5 * MIB as u64);
    write_file(&fs, "/keep.bin", b"old contents", WriteIntent::Replace)
        .await
        .unwrap();

    // The second part fails (permanently, past the retries): the upload is aborted, the old object stays.
    faults.add(FaultRule {
        method: "PUT",
        query_contains: "partNumber=2",
        times: 1,
    });
    let err = write_file(
        &fs,
        "/keep.bin",
        &pattern(11 * MIB, 2),
        WriteIntent::Replace,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), FsErrorKind::Store, "{err}");
    assert_eq!(faults.fired(), 1);
    assert_eq!(
        server.get_object("faults", "keep.bin").as_deref(),
        Some(&b"old contents"[..])
    );
    assert_eq!(
        pending_uploads(&server, "faults"),
        0,
        "the multipart upload was aborted"
    );

    // Completion fails: nothing committed either.
    faults.add(FaultRule {
        method: "POST",
        query_contains: "uploadId=",
        times: 1,
    });
    let err = write_file(&fs, "/new.bin", &pattern(6 * MIB, 3), WriteIntent::Replace)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FsErrorKind::Store, "{err}");
    assert_eq!(faults.fired(), 2);
    assert!(server.get_object("faults", "new.bin").is_none());
    assert_eq!(pending_uploads(&server, "faults"), 0);
}

#[tokio::test]
async fn store_stopped_mid_write_commits_nothing() {
    let Some(mut server) = S3Server::start_with_buckets(ServerMode::S3, &["stop"]) else {
        return;
    };
    let store =
        storage::build_store(&s3_config(&server, "stop"), &StorageOptions::default()).unwrap();
    let fs = fs_over(store, 5 * MIB as u64);
    let mut w = fs
        .open_write(&key("/big.bin"), WriteIntent::Replace)
        .await
        .unwrap();
    w.write(Bytes::from(pattern(6 * MIB, 4))).await.unwrap();
    server.stop();
    let mut failed = false;
    for _ in 0..4 {
        if w.write(Bytes::from(pattern(MIB, 5))).await.is_err() {
            failed = true;
            break;
        }
    }
    if !failed {
        let err = w.close().await.unwrap_err();
        assert_eq!(err.kind(), FsErrorKind::Store);
    }
}

#[tokio::test]
async fn s3_append_uses_part_copy_and_rest_offsets_read_from_there() {
    let Some(server) = S3Server::start_with_buckets(ServerMode::S3, &["append"]) else {
        return;
    };
    let store =
        storage::build_store(&s3_config(&server, "append"), &StorageOptions::default()).unwrap();
    assert!(store.op.info().capability().copy);
    let fs = fs_over(store, 5 * MIB as u64);
    let first = pattern(6 * MIB + 5, 6);
    write_file(&fs, "/log.bin", &first, WriteIntent::Replace)
        .await
        .unwrap();
    let second = pattern(MIB + 3, 7);
    write_file(&fs, "/log.bin", &second, WriteIntent::Append)
        .await
        .unwrap();
    let mut expected = first.clone();
    expected.extend_from_slice(&second);
    assert_eq!(
        server.get_object("append", "log.bin").as_deref(),
        Some(&expected[..])
    );

    let (len, tail) = fs
        .read_stream(&key("/log.bin"), 5 * MIB as u64)
        .await
        .unwrap();
    assert_eq!(len, (expected.len() - 5 * MIB) as u64);
    let tail: Vec<Bytes> = tail.try_collect().await.unwrap();
    assert_eq!(tail.concat(), &expected[5 * MIB..]);
    assert_eq!(pending_uploads(&server, "append"), 0);
}

/// A RETR of a name this gateway has not looked at (lftp's `mirror` after the listing's `metadata_ttl`, any
/// first download) is one GET: no HEAD and no listing before it (both fail here). The answer's size stitches the
/// first GET to the chunks after it, from any offset.
#[tokio::test]
async fn a_read_of_a_name_the_cache_does_not_know_is_one_get() {
    let Some(server) = S3Server::start_with_buckets(ServerMode::S3, &["firstget"]) else {
        return;
    };
    let writer = s3_fs(&server, "firstget");
    let small = pattern(4096, 1);
    let large = pattern(3 * MIB + 7, 2);
    writer.mkdir(&key("/d")).await.unwrap();
    write_file(&writer, "/d/small.txt", &small, WriteIntent::Replace)
        .await
        .unwrap();
    write_file(&writer, "/d/large.bin", &large, WriteIntent::Replace)
        .await
        .unwrap();

    for (path, body, offset) in [
        ("/d/small.txt", &small, 0),
        ("/d/small.txt", &small, 4000),
        ("/d/large.bin", &large, 0),
        ("/d/large.bin", &large, MIB + MIB / 2),
    ] {
        let faults = FaultInjector::new();
        for (method, query) in [("HEAD", ""), ("GET", "list-type")] {
            faults.add(FaultRule {
                method,
                query_contains: query,
                times: 1,
            });
        }
        let options = StorageOptions {
            faults: Some(faults.clone()),
            ..Default::default()
        };
        let reader = fs_over(
            storage::build_store(&s3_config(&server, "firstget"), &options).unwrap(),
            5 * MIB as u64,
        );
        let (len, stream) = reader
            .read_stream(&key(path), offset as u64)
            .await
            .unwrap_or_else(|e| panic!("{path} at {offset}: {e}"));
        assert_eq!(len, (body.len() - offset) as u64, "{path} at {offset}");
        let got: Vec<Bytes> = stream.try_collect().await.expect("read");
        assert_eq!(got.concat(), &body[offset..], "{path} at {offset}");
        assert_eq!(
            faults.fired(),
            0,
            "{path} at {offset}: a HEAD or a listing was made"
        );
    }
}

/// When that GET finds nothing to read, the name is looked at and the answer is the one a stat gives: no such
/// file, a directory, an empty transfer at the end (also of an empty file), an offset past the end.
#[tokio::test]
async fn a_read_the_first_get_cannot_serve_answers_as_after_a_look() {
    let Some(server) = S3Server::start_with_buckets(ServerMode::S3, &["nofirst"]) else {
        return;
    };
    let store = || s3_fs(&server, "nofirst");
    let writer = store();
    write_file(&writer, "/f.txt", b"four", WriteIntent::Replace)
        .await
        .unwrap();
    write_file(&writer, "/empty", b"", WriteIntent::Replace)
        .await
        .unwrap();
    writer.mkdir(&key("/dir")).await.unwrap();
    write_file(&writer, "/dir/inside.txt", b"x", WriteIntent::Replace)
        .await
        .unwrap();

    let kind = |r: Result<(u64, _), cosftpd::bucketfs::FsError>| r.err().map(|e| e.kind());
    assert_eq!(
        kind(store().read_stream(&key("/missing"), 0).await),
        Some(FsErrorKind::NotFound)
    );
    assert_eq!(
        kind(store().read_stream(&key("/dir"), 0).await),
        Some(FsErrorKind::IsADirectory)
    );
    assert_eq!(
        kind(store().read_stream(&key("/f.txt"), 5).await),
        Some(FsErrorKind::InvalidOffset)
    );
    for (path, offset) in [("/f.txt", 4), ("/empty", 0)] {
        let (len, stream) = store()
            .read_stream(&key(path), offset)
            .await
            .unwrap_or_else(|e| panic!("{path} at {offset}: {e}"));
        assert_eq!(len, 0, "{path} at {offset}");
        let got: Vec<Bytes> = stream.try_collect().await.expect("read");
        assert!(got.concat().is_empty(), "{path} at {offset}");
    }
}

/// The bytes after the first GET are asked for on condition that the object is still the one it found: a file
/// replaced between the two ends the read with `Conflict` instead of a mix of two versions.
#[tokio::test]
async fn a_file_replaced_after_the_first_get_ends_the_read_with_a_conflict() {
    let Some(server) = S3Server::start_with_buckets(ServerMode::S3, &["replaced"]) else {
        return;
    };
    let store = || s3_fs(&server, "replaced");
    let writer = store();
    let old = pattern(3 * MIB, 3);
    write_file(&writer, "/f.bin", &old, WriteIntent::Replace)
        .await
        .unwrap();
    let (_, mut stream) = store().read_stream(&key("/f.bin"), 0).await.unwrap();
    // The first GET's bytes; the chunks after them are asked for when the stream is polled past them.
    let mut read = 0;
    while read < MIB {
        let bytes = stream.try_next().await.expect("first bytes").expect("more");
        assert_eq!(&bytes[..], &old[read..read + bytes.len()]);
        read += bytes.len();
    }
    write_file(
        &writer,
        "/f.bin",
        &pattern(3 * MIB, 4),
        WriteIntent::Replace,
    )
    .await
    .unwrap();
    let rest: Result<Vec<Bytes>, _> = stream.try_collect().await;
    let err = rest.expect_err("the replaced file read on");
    assert_eq!(err.kind(), FsErrorKind::Conflict, "{err}");
}
