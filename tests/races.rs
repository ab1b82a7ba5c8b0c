//! Races between sessions of one account, against a real S3 server (moto): what one session does must be what
//! the next command of that session sees, whatever lookups other sessions have in flight.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{S3Server, ServerMode};
use cosftpd::bucketfs::{BucketFs, FsErrorKind, Key, MemoryBudget, Policy, Settings};
use cosftpd::config::{Secret, StorageConfig};
use cosftpd::storage::{self, StorageOptions};

fn key(path: &str) -> Key {
    Key::parse(path).expect("a valid test path")
}

fn fs_on_moto(server: &S3Server) -> BucketFs {
    fs_on_moto_with(server, Policy::full()).0
}

/// A fresh bucket on the moto server, its name, and an account over it with `policy`.
fn fs_on_moto_with(server: &S3Server, policy: Policy) -> (BucketFs, String) {
    let bucket = common::unique_bucket("races");
    server.create_bucket(&bucket);
    let config = StorageConfig::S3 {
        bucket: bucket.clone(),
        endpoint: server.endpoint(),
        region: "us-east-1".into(),
        access_key: Secret::new("test-key"),
        secret_key: Secret::new("test-secret"),
        virtual_host: false,
    };
    let store = storage::build_store(&config, &StorageOptions::default()).expect("store");
    let settings = Settings {
        metadata_ttl: Duration::from_secs(5),
        part_size: 5 << 20,
        ..Settings::default()
    };
    (
        BucketFs::new(store, policy, settings, MemoryBudget::new(64 << 20)),
        bucket,
    )
}

/// MKD d then MKD d/sub in one session while three others keep asking about d (MLST d): a lookup that began
/// before the first MKD must not leave "d does not exist" in the cache for the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_in_flight_does_not_hide_a_directory_just_made() {
    let Some(server) = S3Server::shared(ServerMode::S3) else {
        return;
    };
    let fs = fs_on_moto(server);
    let stop = Arc::new(AtomicBool::new(false));
    let current = Arc::new(AtomicUsize::new(0));
    let mut watchers = Vec::new();
    for _ in 0..3 {
        let (fs, stop, current) = (fs.clone(), Arc::clone(&stop), Arc::clone(&current));
        watchers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let round = current.load(Ordering::Relaxed);
                let _ = fs.stat(&key(&format!("/d{round}"))).await;
                // A cached answer does not yield: let the session that makes directories run.
                tokio::task::yield_now().await;
            }
        }));
    }
    for round in 0..100 {
        current.store(round, Ordering::Relaxed);
        // Give the watchers a moment to have a lookup of the new name in flight.
        tokio::task::yield_now().await;
        let dir = format!("/d{round}");
        fs.mkdir(&key(&dir))
            .await
            .expect("mkdir of a new directory");
        fs.mkdir(&key(&format!("{dir}/sub")))
            .await
            .unwrap_or_else(|e| {
                panic!("round {round}: mkdir {dir}/sub right after mkdir {dir}: {e}")
            });
        assert_eq!(
            fs.mkdir(&key(&dir)).await.unwrap_err().kind(),
            FsErrorKind::AlreadyExists,
            "round {round}: a second mkdir of {dir}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in watchers {
        w.await.expect("watcher");
    }
}

/// With delete_enable = false an upload may only create: another client that creates the same name while the
/// upload runs keeps its object, and the upload fails with a conflict (FTP 450, mount EAGAIN) and leaves nothing
/// behind. For a single PUT (If-None-Match: * on PutObject) and a multipart upload (on CompleteMultipartUpload).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_never_replaces_what_another_client_created_meanwhile() {
    use bytes::Bytes;
    use cosftpd::bucketfs::WriteIntent;
    use cosftpd::config::Authority;
    let Some(server) = S3Server::shared(ServerMode::S3) else {
        return;
    };
    let (fs, bucket) = fs_on_moto_with(server, Policy::new(Authority::ReadWrite, false));
    for (name, len) in [("small.bin", 100_000), ("big.bin", 12 << 20)] {
        let path = format!("/{name}");
        let ours = common::pattern(len, 1);
        let mut handle = fs
            .open_write(&key(&path), WriteIntent::Replace)
            .await
            .expect("a new name may be created");
        let (first, rest) = ours.split_at(len / 2);
        handle
            .write(Bytes::copy_from_slice(first))
            .await
            .expect("write");
        server.put_object(&bucket, name, b"the other client's");
        handle
            .write(Bytes::copy_from_slice(rest))
            .await
            .expect("write");
        let err = handle
            .close()
            .await
            .expect_err("the upload must not replace it");
        assert_eq!(err.kind(), FsErrorKind::Conflict, "{name}: {err}");
        assert_eq!(
            server.get_object(&bucket, name).as_deref(),
            Some(&b"the other client's"[..]),
            "{name}"
        );
        let uploads = server
            .request("GET", &bucket, "", "uploads", &[], b"")
            .expect("ListMultipartUploads");
        assert!(
            common::xml_values(&uploads.text(), "UploadId").is_empty(),
            "{name}: no upload left behind"
        );
    }
}
