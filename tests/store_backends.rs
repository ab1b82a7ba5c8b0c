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

    let (meta, tail) = fs
        .read_stream(&key("/log.bin"), 5 * MIB as u64)
        .await
        .unwrap();
    assert_eq!(meta.size, expected.len() as u64);
    let tail: Vec<Bytes> = tail.try_collect().await.unwrap();
    assert_eq!(tail.concat(), &expected[5 * MIB..]);
    assert_eq!(pending_uploads(&server, "append"), 0);
}
