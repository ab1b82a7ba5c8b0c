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
    let bucket = common::unique_bucket("races");
    server.create_bucket(&bucket);
    let config = StorageConfig::S3 {
        bucket,
        endpoint: server.endpoint(),
        region: "us-east-1".into(),
        access_key: Secret::new("test-key"),
        secret_key: Secret::new("test-secret"),
        virtual_host: false,
    };
    let store = storage::build_store(&config, &StorageOptions::default()).expect("store");
    let settings = Settings {
        metadata_ttl: Duration::from_secs(5),
        ..Settings::default()
    };
    BucketFs::new(store, Policy::full(), settings, MemoryBudget::new(64 << 20))
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
