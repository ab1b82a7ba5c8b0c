//! A store that is dead (connection refused) or stalled (accepts, never answers) surfaces as an error, to the
//! core's callers and through a kernel mount, instead of hanging; a permanent error of a local store (a path
//! through a file, a name the filesystem cannot hold) is not retried.
//!
//! What is asserted is that each operation FAILS (with the store error: EIO on the mount), and, on the mount, within
//! the store's time-to-error budget (15 s, `storage::silence`) plus a scheduling allowance: the bound is a promise
//! of the product, counted by its own timers, not a speed. How long each took is printed (`--nocapture`).
//!
//! Stalled stores come in two kinds: a TCP listener that never accepts (the kernel completes the handshake and
//! queues the connection; nothing answers), and moto frozen with SIGSTOP mid-test.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{S3Server, ServerMode};
use cosftpd::bucketfs::{
    BucketFs, FsError, FsErrorKind, Key, MemoryBudget, Policy, Settings, WriteIntent,
};
use cosftpd::config::{Secret, StorageConfig};
use cosftpd::fuse::{mount, MountError, MountOptions};
use cosftpd::storage::{build_store, silence, StorageOptions};
use tokio::runtime::Runtime;

const BUCKET: &str = "tte";
const MIB: u64 = 1024 * 1024;

fn key(path: &str) -> Key {
    Key::parse(path).expect("a valid test path")
}

fn s3_config(endpoint: String) -> StorageConfig {
    StorageConfig::S3 {
        bucket: BUCKET.to_string(),
        endpoint,
        region: "us-east-1".into(),
        access_key: Secret::new("test-key"),
        secret_key: Secret::new("test-secret"),
        virtual_host: false,
    }
}

fn bucket_fs(config: &StorageConfig) -> BucketFs {
    let store = build_store(config, &StorageOptions::default()).expect("store");
    BucketFs::new(
        store,
        Policy::full(),
        Settings {
            part_size: 5 * MIB,
            upload_concurrency: 2,
            ..Settings::default()
        },
        MemoryBudget::new(64 * MIB),
    )
}

/// Runs `call` and measures it.
async fn timed<F>(call: F) -> (Duration, Result<(), FsError>)
where
    F: std::future::Future<Output = Result<(), FsError>>,
{
    let started = Instant::now();
    let result = call.await;
    (started.elapsed(), result)
}

/// stat, list and read of names the core has not cached, run concurrently; each must fail with a store error.
async fn core_calls_fail(fs: &BucketFs, what: &str) {
    let stat = timed(async { fs.stat(&key("a.txt")).await.map(|_| ()) });
    let list = timed(async {
        let mut dir = fs.read_dir(&key("d")).await?;
        dir.next_entry().await.map(|_| ())
    });
    let read = timed(async {
        let mut file = fs.open_read(&key("b.txt")).await?;
        file.read_at(0, 4096).await.map(|_| ())
    });
    let (stat, list, read) = tokio::join!(stat, list, read);
    for (op, (took, result)) in [("stat", stat), ("list", list), ("read", read)] {
        eprintln!("{what}: core {op} failed after {took:.2?}: {result:?}");
        match result {
            Err(e) => assert_eq!(e.kind(), FsErrorKind::Store, "{what}: {op}: {e:?}"),
            Ok(()) => panic!("{what}: {op} succeeded against a store that cannot answer"),
        }
    }
}

#[tokio::test]
async fn a_dead_store_fails_stat_list_and_read() {
    // A port nobody listens on: every connection is refused at once.
    let port = common::free_port();
    let fs = bucket_fs(&s3_config(format!("http://127.0.0.1:{port}")));
    core_calls_fail(&fs, "dead store (connection refused)").await;
}

#[tokio::test]
async fn a_stalled_store_fails_stat_list_and_read() {
    // Bound and listening, never accepting: connections complete in the kernel and are never answered.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fs = bucket_fs(&s3_config(format!("http://{addr}")));
    core_calls_fail(&fs, "stalled store (never accepts)").await;
    drop(listener);
}

/// What a command on the mount may take beyond the store's budget: process start-up and a loaded machine's
/// scheduling. Before the store's budget was shared by its requests, `cat` took 27 s and `mv` 40–55 s.
const SCHEDULING_ALLOWANCE: Duration = Duration::from_secs(3);

/// moto frozen with SIGSTOP after the objects exist: `stat`, `cat`, `mv` and `ls` on the mount each fail with EIO
/// within the store's budget, however many requests and syscalls each makes; once moto runs again, the mount
/// answers again within the silence's hold.
#[test]
fn a_frozen_store_fails_stat_cat_and_mv_on_the_mount() {
    let Some(mut server) = S3Server::start_with_buckets(ServerMode::S3, &[BUCKET]) else {
        return;
    };
    for name in ["a.txt", "b.txt", "c.txt", "d/e.txt"] {
        server.put_object(BUCKET, name, b"bytes\n");
    }
    let fs = bucket_fs(&s3_config(server.endpoint()));
    let rt = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("mount point");
    let handle = match mount(
        fs,
        dir.path(),
        MountOptions::new("cosftpd:tte"),
        rt.handle().clone(),
    ) {
        Ok(handle) => handle,
        Err(e @ (MountError::NoFuseDevice | MountError::NotPermitted { .. }))
            if !common::require_fuse() =>
        {
            eprintln!("skipping: FUSE is not available here: {e}");
            return;
        }
        Err(e) => panic!("mount failed: {e}"),
    };
    // Nothing of the bucket has been looked at through the mount yet, so every command below reaches the store.
    server.pause();
    let root = dir.path();
    let commands = [
        ("stat", format!("stat {}", q(&root.join("a.txt")))),
        ("cat", format!("cat {}", q(&root.join("b.txt")))),
        (
            "mv",
            format!("mv {} {}", q(&root.join("c.txt")), q(&root.join("c2.txt"))),
        ),
        ("ls", format!("ls {}", q(&root.join("d")))),
    ];
    let runs: Vec<_> = commands
        .into_iter()
        .map(|(name, script)| {
            std::thread::spawn(move || {
                let started = Instant::now();
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(&script)
                    .env("LC_ALL", "C")
                    .output()
                    .expect("run sh");
                (name, started.elapsed(), out)
            })
        })
        .collect();
    let mut failures = Vec::new();
    for run in runs {
        let (name, took, out) = run.join().expect("command thread");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!("frozen store: {name} on the mount failed after {took:.2?}: {stderr}");
        if out.status.success() || !stderr.contains("Input/output error") {
            failures.push(format!("{name}: {:?} {stderr}", out.status));
        }
        if took > silence::BUDGET + SCHEDULING_ALLOWANCE {
            failures.push(format!("{name}: failed only after {took:.2?}"));
        }
    }
    server.resume();

    // The store answers again: within the hold, commands work again (a readiness loop, not a timing).
    let resumed = Instant::now();
    let back = loop {
        let out = Command::new("cat")
            .arg(root.join("a.txt"))
            .output()
            .expect("run cat");
        if out.status.success() {
            break Some(out.stdout);
        }
        if resumed.elapsed() > silence::HOLD + silence::BUDGET {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "frozen store: the mount answered again {:.2?} after the store resumed",
        resumed.elapsed()
    );
    drop(handle);
    assert!(
        failures.is_empty(),
        "commands on a frozen store: {failures:?}"
    );
    assert_eq!(
        back.as_deref(),
        Some(&b"bytes\n"[..]),
        "the mount did not answer again once the store did"
    );
}

/// A local directory's errors are the kernel's answer; retrying them only delays it. A path through a file
/// (ENOTDIR) and a name the filesystem cannot hold (ENAMETOOLONG, from the temporary file beside it) fail on
/// the first attempt: OpenDAL's retry layer marks an error it gave up on as "persistent", so an error that is
/// not marked so was not retried.
#[tokio::test]
async fn a_local_store_does_not_retry_permanent_errors() {
    let dir = tempfile::tempdir().expect("store dir");
    let root = dir.path().join("bucket");
    std::fs::create_dir_all(&root).expect("root");
    std::fs::write(root.join("f.txt"), b"file\n").expect("f.txt");
    let fs = bucket_fs(&StorageConfig::Fs { root: root.clone() });

    let started = Instant::now();
    let through_a_file = fs.stat(&key("f.txt/x")).await;
    eprintln!(
        "fs: stat f.txt/x answered after {:.2?}: {through_a_file:?}",
        started.elapsed()
    );
    not_retried(&through_a_file);

    let started = Instant::now();
    let read_through_a_file = async {
        let mut file = fs.open_read(&key("f.txt/x")).await?;
        file.read_at(0, 10).await.map(|_| ())
    }
    .await;
    eprintln!(
        "fs: read f.txt/x answered after {:.2?}: {read_through_a_file:?}",
        started.elapsed()
    );
    assert!(read_through_a_file.is_err());
    not_retried(&read_through_a_file);

    // 250 bytes: a valid name (NAME_MAX is 255); uploads are staged under short names, so it can be written.
    let long = "n".repeat(250);
    let written = async {
        let mut writer = fs.open_write(&key(&long), WriteIntent::CreateNew).await?;
        writer.write(bytes::Bytes::from_static(b"x")).await?;
        writer.close().await.map(|_| ())
    }
    .await;
    assert!(written.is_ok(), "{written:?}");

    // 256 bytes: more than the disk holds in one name, refused before any request.
    let too_long = "n".repeat(256);
    let started = Instant::now();
    let refused = fs.open_write(&key(&too_long), WriteIntent::CreateNew).await;
    eprintln!(
        "fs: write of a 256-byte name answered after {:.2?}: {:?}",
        started.elapsed(),
        refused.as_ref().map(|_| ())
    );
    assert_eq!(
        refused.map(|_| ()).unwrap_err().kind(),
        cosftpd::bucketfs::FsErrorKind::NameTooLong
    );
}

fn not_retried<T: std::fmt::Debug>(result: &Result<T, FsError>) {
    if let Err(e) = result {
        let shown = format!("{e:?}");
        assert!(!shown.contains("(persistent)"), "retried: {shown}");
    }
}

fn q(path: &Path) -> String {
    common::shell_quote(path)
}
