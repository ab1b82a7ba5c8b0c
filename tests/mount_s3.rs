//! A real kernel mount of a `BucketFs` over a real S3 server (moto, plain S3 mode, path-style), driven by the
//! commands people use (`cp`, `cmp`, `dd`, `ls`, `stat`, `mkdir -p`, `rmdir`, `mv`, `rm`, `>>`), with the bucket
//! checked behind the mount's back (`get_object`, ListObjects, ListMultipartUploads). Also: the store going away
//! mid-write (EIO, nothing committed), injected store failures (no object, no multipart upload left behind), and
//! the policy table as errno.
//!
//! Needs moto (`COSFTPD_TEST_PYTHON` or `.venv`) and FUSE (root, /dev/fuse); without them each test skips unless
//! `COSFTPD_REQUIRE_S3=1` / `COSFTPD_REQUIRE_FUSE=1`. Run with `--nocapture` to see the throughput lines of
//! `dd_of_64_mib_in_and_out_and_throughput`.

mod common;

fn key(path: &str) -> Key {
    Key::parse(path).expect("a valid test path")
}

use common::{errno, pattern, shell_quote as q};

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{S3Server, ServerMode};
use cosftpd::bucketfs::{BucketFs, Key, MemoryBudget, Policy, Settings, WriteIntent};
use cosftpd::config::{Authority, Secret, StorageConfig};
use cosftpd::fuse::{mount, MountError, MountHandle, MountOptions};
use cosftpd::storage::{build_operator, build_store, FaultInjector, FaultRule, StorageOptions};
use futures::TryStreamExt;
use tempfile::TempDir;
use tokio::runtime::Runtime;

const MIB: usize = 1024 * 1024;
const BUCKET: &str = "mnt";

/// A bucket on its own moto server, mounted; unmounted when dropped (also when a test panics), then the server
/// is killed.
struct Mounted {
    handle: Option<MountHandle>,
    dir: TempDir,
    server: S3Server,
    fs: BucketFs,
    rt: Runtime,
}

impl Mounted {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.server.get_object(BUCKET, key)
    }

    fn put(&self, key: &str, data: &[u8]) {
        self.server.put_object(BUCKET, key, data);
    }

    /// Every key in the bucket, sorted (no delimiter).
    fn keys(&self) -> Vec<String> {
        let mut keys = self.server.list_all(BUCKET, "", "").keys;
        keys.sort();
        keys
    }

    /// Multipart uploads started and neither completed nor aborted.
    fn pending_uploads(&self) -> usize {
        let response = self
            .server
            .request("GET", BUCKET, "", "uploads", &[], b"")
            .expect("ListMultipartUploads");
        assert_eq!(response.status, 200, "{}", response.text());
        common::xml_values(&response.text(), "UploadId").len()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            if let Err(e) = handle.unmount() {
                eprintln!("unmount: {e}");
            }
        }
    }
}

fn settings() -> Settings {
    Settings {
        // S3's smallest part; the core would raise anything smaller to it.
        part_size: 5 * MIB as u64,
        upload_concurrency: 2,
        metadata_ttl: Duration::from_secs(1),
        ..Settings::default()
    }
}

fn s3_config(server: &S3Server) -> StorageConfig {
    StorageConfig::S3 {
        bucket: BUCKET.to_string(),
        endpoint: server.endpoint(),
        region: "us-east-1".into(),
        access_key: Secret::new("test-key"),
        secret_key: Secret::new("test-secret"),
        virtual_host: false,
    }
}

/// A fresh moto server with bucket `mnt`, mounted with `policy`; `faults` makes chosen requests fail. `None`
/// (after saying why) when moto or FUSE is missing and not required.
fn mount_s3(policy: Policy, faults: Option<FaultInjector>) -> Option<Mounted> {
    // `RUST_LOG=cosftpd=debug` shows what the mount and the store do (with `--nocapture`).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let server = S3Server::start_with_buckets(ServerMode::S3, &[BUCKET])?;
    let store = build_store(
        &s3_config(&server),
        &StorageOptions {
            resolve: vec![],
            faults,
        },
    )
    .expect("s3 store");
    let fs = BucketFs::new(
        store,
        policy,
        settings(),
        MemoryBudget::new(256 * MIB as u64),
    );
    assert_eq!(fs.settings().part_size, 5 * MIB as u64);
    let rt = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("mount point");
    match mount(
        fs.clone(),
        dir.path(),
        MountOptions::new("cosftpd:mnt"),
        rt.handle().clone(),
    ) {
        Ok(handle) => Some(Mounted {
            handle: Some(handle),
            dir,
            server,
            fs,
            rt,
        }),
        Err(e @ (MountError::NoFuseDevice | MountError::NotPermitted { .. }))
            if !common::require_fuse() =>
        {
            eprintln!("skipping: FUSE is not available here: {e}");
            None
        }
        Err(e) => panic!("mount failed: {e}"),
    }
}

fn mount_full() -> Option<Mounted> {
    mount_s3(Policy::full(), None)
}

/// Runs a shell command line; panics with its output unless it succeeds. Returns stdout.
fn sh(script: &str) -> String {
    let out = run_sh(script);
    assert!(
        out.status.success(),
        "`{script}` failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a shell command line that must fail; returns its stderr.
fn sh_fails(script: &str) -> String {
    let out = run_sh(script);
    assert!(!out.status.success(), "`{script}` should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn run_sh(script: &str) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("run sh")
}

/// `close(2)` with its result (dropping a `File` throws away the error of the close, which is where a mount
/// reports a failed upload).
fn close(file: File) -> io::Result<()> {
    let fd = file.into_raw_fd();
    // SAFETY: `fd` was just released by the File, so it is open and owned by nobody else.
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Writes `data` to a new file and closes it, reporting the first error of write or close.
fn write_and_close(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    match file.write_all(data) {
        Ok(()) => close(file),
        Err(e) => {
            let _ = close(file);
            Err(e)
        }
    }
}

fn sha256(path: &Path) -> String {
    sh(&format!("sha256sum {}", q(path)))
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn mb_per_s(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / MIB as f64 / took.as_secs_f64()
}

#[test]
fn cp_in_and_out_cmp_ls_and_stat() {
    let Some(m) = mount_full() else {
        return;
    };
    let local = tempfile::tempdir().expect("local dir");
    // Two parts and a bit: a real multipart upload.
    let data = pattern(11 * MIB + 12_345, 1);
    let src = local.path().join("src.bin");
    fs::write(&src, &data).expect("write local");
    let small = local.path().join("small.txt");
    fs::write(&small, b"a small file\n").expect("write local");

    let dst = m.path("data.bin");
    sh(&format!("cp {} {}", q(&src), q(&dst)));
    sh(&format!("cp {} {}", q(&small), q(m.root())));
    assert_eq!(
        m.get("data.bin").as_deref(),
        Some(&data[..]),
        "cp's close committed the object"
    );
    assert_eq!(m.get("small.txt").as_deref(), Some(&b"a small file\n"[..]));
    assert_eq!(m.pending_uploads(), 0);
    sh(&format!("cmp {} {}", q(&src), q(&dst)));

    let back = local.path().join("back.bin");
    sh(&format!("cp {} {}", q(&dst), q(&back)));
    sh(&format!("cmp {} {}", q(&src), q(&back)));

    // An object put into the bucket behind the mount's back is there too (after the ttl of the negative cache
    // at most; it was never looked up, so at once).
    m.put("outside.txt", b"from another client\n");
    let listing = sh(&format!("ls -l {}", q(m.root())));
    let line = |name: &str| -> String {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{name} not in ls -l:\n{listing}"))
            .to_string()
    };
    assert!(line("data.bin").starts_with("-rw-r--r--"), "{listing}");
    assert!(
        line("data.bin").contains(&format!(" {} ", data.len())),
        "{listing}"
    );
    assert!(line("small.txt").contains(" 13 "), "{listing}");
    assert!(line("outside.txt").contains(" 20 "), "{listing}");

    assert_eq!(
        sh(&format!("stat -c '%s %F' {}", q(&dst))).trim(),
        format!("{} regular file", data.len())
    );
    assert_eq!(
        sh(&format!("stat -c '%F' {}", q(m.root()))).trim(),
        "directory"
    );
    // The modification time is the object's Last-Modified: today, not the epoch.
    let mtime: u64 = sh(&format!("stat -c %Y {}", q(&dst)))
        .trim()
        .parse()
        .expect("mtime");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(now.abs_diff(mtime) < 600, "mtime {mtime}, now {now}");
    assert_eq!(
        sh(&format!("cat {}", q(&m.path("outside.txt")))),
        "from another client\n"
    );
}

#[test]
fn dd_of_64_mib_in_and_out_and_throughput() {
    let Some(m) = mount_full() else {
        return;
    };
    const SIZE: usize = 64 * MIB;
    let local = tempfile::tempdir().expect("local dir");
    let data = pattern(SIZE, 2);
    let src = local.path().join("big.in");
    fs::write(&src, &data).expect("write local");
    let dst = m.path("big.bin");
    let out = local.path().join("big.out");

    let started = Instant::now();
    sh(&format!(
        "dd if={} of={} bs=1M status=none",
        q(&src),
        q(&dst)
    ));
    let dd_write = started.elapsed();
    assert_eq!(fs::metadata(&dst).expect("stat").len(), SIZE as u64);
    assert_eq!(m.pending_uploads(), 0);

    let started = Instant::now();
    sh(&format!(
        "dd if={} of={} bs=1M status=none",
        q(&dst),
        q(&out)
    ));
    let dd_read = started.elapsed();
    assert_eq!(sha256(&src), sha256(&out), "checksums differ");
    let stored = m.get("big.bin").expect("object in the bucket");
    assert!(stored == data, "the bucket holds other bytes");

    // The same size straight through the core (no kernel, no FUSE), same server, same settings.
    let started = Instant::now();
    m.rt.block_on(async {
        let mut w =
            m.fs.open_write(&key("/direct.bin"), WriteIntent::Replace)
                .await
                .expect("open_write");
        for chunk in data.chunks(MIB) {
            w.write(Bytes::copy_from_slice(chunk)).await.expect("write");
        }
        w.close().await.expect("close");
    });
    let core_write = started.elapsed();
    let started = Instant::now();
    let read_back = m.rt.block_on(async {
        let (_, stream) =
            m.fs.read_stream(&key("/direct.bin"), 0)
                .await
                .expect("read");
        let chunks: Vec<Bytes> = stream.try_collect().await.expect("read");
        chunks.concat()
    });
    let core_read = started.elapsed();
    assert!(read_back == data, "direct read differs");

    // And a bare OpenDAL operator (what any S3 client would do): the same parts, two in flight, one GET.
    let op = build_operator(&s3_config(&m.server), &StorageOptions::default()).expect("op");
    let started = Instant::now();
    m.rt.block_on(async {
        let mut w = op
            .writer_with("raw.bin")
            .chunk(5 * MIB)
            .concurrent(2)
            .await
            .expect("writer");
        for chunk in data.chunks(MIB) {
            w.write(chunk.to_vec()).await.expect("write");
        }
        w.close().await.expect("close");
    });
    let raw_write = started.elapsed();
    let started = Instant::now();
    let raw = m.rt.block_on(op.read("raw.bin")).expect("read").to_vec();
    let raw_read = started.elapsed();
    assert!(raw == data, "raw read differs");

    eprintln!(
        "throughput, 64 MiB over moto (s3 mode), part 5 MiB x2 in flight:\n  \
         mount dd write {:.1} MB/s ({:.2?}), dd read {:.1} MB/s ({:.2?})\n  \
         BucketFs direct write {:.1} MB/s ({:.2?}), read_stream {:.1} MB/s ({:.2?})\n  \
         bare operator write {:.1} MB/s ({:.2?}), read {:.1} MB/s ({:.2?})",
        mb_per_s(SIZE, dd_write),
        dd_write,
        mb_per_s(SIZE, dd_read),
        dd_read,
        mb_per_s(SIZE, core_write),
        core_write,
        mb_per_s(SIZE, core_read),
        core_read,
        mb_per_s(SIZE, raw_write),
        raw_write,
        mb_per_s(SIZE, raw_read),
        raw_read,
    );
}

#[test]
fn mkdir_rmdir_mv_rm_and_the_keys_in_the_bucket() {
    let Some(m) = mount_full() else {
        return;
    };
    sh(&format!("mkdir -p {}", q(&m.path("a/b/c"))));
    assert!(fs::metadata(m.path("a/b/c")).expect("stat").is_dir());
    assert_eq!(m.keys(), ["a/", "a/b/", "a/b/c/"], "one marker per level");
    sh(&format!("mkdir -p {}", q(&m.path("a/b/c"))));
    assert_eq!(errno(fs::create_dir(m.path("a/b"))), libc::EEXIST);

    fs::write(m.path("a/b/file.txt"), b"hello\n").expect("write");
    assert_eq!(errno(fs::remove_dir(m.path("a/b"))), libc::ENOTEMPTY);
    let stderr = sh_fails(&format!("rmdir {}", q(&m.path("a/b"))));
    assert!(stderr.contains("not empty"), "{stderr}");
    assert_eq!(m.keys(), ["a/", "a/b/", "a/b/c/", "a/b/file.txt"]);

    // An implicit directory (keys under it, no marker) is a directory too.
    m.put("implicit/deep/x.txt", b"x");
    assert!(fs::metadata(m.path("implicit/deep"))
        .expect("stat")
        .is_dir());
    assert_eq!(errno(fs::remove_dir(m.path("implicit"))), libc::ENOTEMPTY);

    // mv of a file: a copy and a delete in the bucket.
    sh(&format!(
        "mv {} {}",
        q(&m.path("a/b/file.txt")),
        q(&m.path("a/moved.txt"))
    ));
    assert_eq!(m.get("a/moved.txt").as_deref(), Some(&b"hello\n"[..]));
    assert_eq!(m.get("a/b/file.txt"), None);
    assert_eq!(errno(fs::metadata(m.path("a/b/file.txt"))), libc::ENOENT);

    // mv of a directory tree: every key moves.
    sh(&format!("mv {} {}", q(&m.path("a")), q(&m.path("z"))));
    assert_eq!(
        m.keys(),
        ["implicit/deep/x.txt", "z/", "z/b/", "z/b/c/", "z/moved.txt"]
    );
    assert_eq!(fs::read(m.path("z/moved.txt")).expect("read"), b"hello\n");
    assert_eq!(errno(fs::metadata(m.path("a"))), libc::ENOENT);
    // An implicit directory moved gets a marker at its new name.
    sh(&format!(
        "mv {} {}",
        q(&m.path("implicit")),
        q(&m.path("z/explicit"))
    ));
    assert_eq!(
        m.keys(),
        [
            "z/",
            "z/b/",
            "z/b/c/",
            "z/explicit/",
            "z/explicit/deep/x.txt",
            "z/moved.txt"
        ]
    );

    // A file moved onto an existing file replaces it.
    fs::write(m.path("z/other.txt"), b"other\n").expect("write");
    sh(&format!(
        "mv {} {}",
        q(&m.path("z/other.txt")),
        q(&m.path("z/moved.txt"))
    ));
    assert_eq!(m.get("z/moved.txt").as_deref(), Some(&b"other\n"[..]));
    assert_eq!(m.get("z/other.txt"), None);

    sh(&format!("rmdir {}", q(&m.path("z/b/c"))));
    assert_eq!(m.get("z/b/c/"), None);
    sh(&format!("rm {}", q(&m.path("z/moved.txt"))));
    assert_eq!(m.get("z/moved.txt"), None);
    sh(&format!("rm -r {}", q(&m.path("z"))));
    assert_eq!(errno(fs::metadata(m.path("z"))), libc::ENOENT);
    assert!(m.keys().is_empty(), "left in the bucket: {:?}", m.keys());
    assert_eq!(fs::read_dir(m.root()).expect("list").count(), 0);
}

#[test]
fn chinese_and_space_names_are_the_keys() {
    let Some(m) = mount_full() else {
        return;
    };
    let dir = m.path("目录 一");
    sh(&format!("mkdir {}", q(&dir)));
    let file = dir.join("中文 文件.txt");
    sh(&format!("printf '你好，世界\\n' > {}", q(&file)));
    assert_eq!(
        m.get("目录 一/中文 文件.txt").as_deref(),
        Some("你好，世界\n".as_bytes())
    );
    assert!(m.keys().contains(&"目录 一/".to_string()), "{:?}", m.keys());
    assert_eq!(sh(&format!("ls -1 {}", q(&dir))).trim(), "中文 文件.txt");
    assert_eq!(sh(&format!("cat {}", q(&file))), "你好，世界\n");

    // Names made elsewhere (the COS console, another client) show as they are.
    m.put("空 格/文 件 名.bin", b"12345");
    assert_eq!(
        sh(&format!("stat -c %s {}", q(&m.path("空 格/文 件 名.bin")))).trim(),
        "5"
    );
    let moved = m.path("新 名字.txt");
    sh(&format!("mv {} {}", q(&file), q(&moved)));
    assert_eq!(m.get("目录 一/中文 文件.txt"), None);
    assert_eq!(
        m.get("新 名字.txt").as_deref(),
        Some("你好，世界\n".as_bytes())
    );
    sh(&format!("rmdir {}", q(&dir)));
    assert_eq!(m.keys(), ["新 名字.txt", "空 格/文 件 名.bin"]);
}

#[test]
fn append_with_the_shell_puts_old_and_new_bytes_in_the_object() {
    let Some(m) = mount_full() else {
        return;
    };
    let f = m.path("log.txt");
    sh(&format!("echo one > {f}; echo two >> {f}", f = q(&f)));
    assert_eq!(m.get("log.txt").as_deref(), Some(&b"one\ntwo\n"[..]));
    sh(&format!("echo three >> {}", q(&f)));
    assert_eq!(m.get("log.txt").as_deref(), Some(&b"one\ntwo\nthree\n"[..]));

    // An object bigger than a part: the old bytes are copied server-side (UploadPartCopy), then the new ones.
    let old = pattern(6 * MIB + 3, 3);
    m.put("big.log", &old);
    sh(&format!("echo appended >> {}", q(&m.path("big.log"))));
    let mut wanted = old.clone();
    wanted.extend_from_slice(b"appended\n");
    let stored = m.get("big.log").expect("object");
    assert_eq!(stored.len(), wanted.len());
    assert!(stored == wanted, "old + new bytes");
    assert_eq!(
        fs::metadata(m.path("big.log")).expect("stat").len(),
        wanted.len() as u64
    );
    assert_eq!(m.pending_uploads(), 0);
}

/// Files written through the mount carry the digests of `upload_digests` as metadata: a small one from its PUT,
/// a multipart one right after it completes, an appended one (old bytes copied server-side) computed from the store.
#[test]
fn files_written_through_the_mount_carry_their_digests() {
    use sha2::Digest as _;
    let Some(m) = mount_full() else {
        return;
    };
    let stored_sha256 = |key: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let response = m
                .server
                .request("GET", BUCKET, key, "", &[], b"")
                .expect("GET");
            if let Some(value) = response.header("x-amz-meta-cosftpd-sha256") {
                return value.to_string();
            }
            assert!(Instant::now() < deadline, "{key}: no digest after 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    for (name, len) in [("small.bin", 100_000), ("multi.bin", 6 * MIB + 5)] {
        let body = pattern(len, 21);
        write_and_close(&m.path(name), &body).expect("write");
        assert_eq!(
            stored_sha256(name),
            hex::encode(sha2::Sha256::digest(&body)),
            "{name}"
        );
    }
    let old = pattern(6 * MIB + 3, 22);
    m.put("grown.bin", &old);
    sh(&format!("echo more >> {}", q(&m.path("grown.bin"))));
    let mut wanted = old;
    wanted.extend_from_slice(b"more\n");
    assert_eq!(
        stored_sha256("grown.bin"),
        hex::encode(sha2::Sha256::digest(&wanted))
    );
}

/// The store goes away while a file bigger than a part is written through the mount: write or close fails with
/// EIO, and nothing was committed before (the object only appears at a successful close).
#[test]
fn store_stopped_mid_write_fails_with_eio() {
    let Some(mut m) = mount_full() else {
        return;
    };
    let path = m.path("big.bin");
    let mut file = File::create(&path).expect("create");
    // OpenDAL's multipart writer keeps one full part back (a file of one part is a single PUT at close), so the
    // upload starts when the second part is full: after 11 MiB it is open and part 1 is on its way.
    file.write_all(&pattern(11 * MIB, 4)).expect("first 11 MiB");
    assert_eq!(m.get("big.bin"), None, "nothing is committed before close");
    assert_eq!(m.pending_uploads(), 1, "the upload streams while writing");
    assert_eq!(
        fs::metadata(&path).expect("stat while writing").len(),
        11 * MIB as u64,
        "the mount shows the size written so far"
    );

    m.server.stop();
    let started = Instant::now();
    let more = pattern(6 * MIB, 5);
    let result = match file.write_all(&more) {
        Ok(()) => {
            eprintln!(
                "store stopped: the writes returned after {:.1?}",
                started.elapsed()
            );
            close(file)
        }
        Err(e) => {
            eprintln!(
                "store stopped: a write failed after {:.1?}: {e}",
                started.elapsed()
            );
            let again = close(file);
            assert!(again.is_err(), "a close after a failed write fails too");
            Err(e)
        }
    };
    eprintln!(
        "store stopped: failed after {:.1?}: {result:?}",
        started.elapsed()
    );
    assert_eq!(errno(result), libc::EIO);
}

/// Store requests fail (injected, past the retries) while cp/dd write through the mount: EIO, no object, no
/// multipart upload left open, and an existing object stays as it was.
#[test]
fn injected_store_failures_commit_nothing_and_leave_no_upload() {
    let faults = FaultInjector::new();
    let Some(m) = mount_s3(Policy::full(), Some(faults.clone())) else {
        return;
    };

    // The second part fails.
    faults.add(FaultRule {
        method: "PUT",
        query_contains: "partNumber=2",
        times: 1,
    });
    let result = write_and_close(&m.path("new.bin"), &pattern(11 * MIB, 6));
    assert_eq!(errno(result), libc::EIO);
    assert_eq!(faults.fired(), 1);
    assert_eq!(m.get("new.bin"), None, "no object");
    assert_eq!(m.pending_uploads(), 0, "the multipart upload was aborted");
    assert_eq!(errno(fs::metadata(m.path("new.bin"))), libc::ENOENT);

    // A part fails and so does the abort that follows (the store is still failing): the abort is tried again in
    // the background, and the parts do not stay in the bucket.
    faults.add(FaultRule {
        method: "PUT",
        query_contains: "partNumber=2",
        times: 1,
    });
    faults.add(FaultRule {
        method: "DELETE",
        query_contains: "uploadId=",
        times: 1,
    });
    let result = write_and_close(&m.path("orphan.bin"), &pattern(11 * MIB, 5));
    assert_eq!(errno(result), libc::EIO);
    assert_eq!(faults.fired(), 3, "the part and the first abort failed");
    assert_eq!(m.get("orphan.bin"), None, "no object");
    let deadline = Instant::now() + Duration::from_secs(30);
    while m.pending_uploads() > 0 {
        assert!(
            Instant::now() < deadline,
            "the refused abort was never tried again: the upload stays in the bucket"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Completion fails, on an overwrite: the old object stays.
    m.put("keep.bin", b"old contents");
    faults.add(FaultRule {
        method: "POST",
        query_contains: "uploadId=",
        times: 1,
    });
    let result = write_and_close(&m.path("keep.bin"), &pattern(6 * MIB, 7));
    assert_eq!(errno(result), libc::EIO);
    assert_eq!(faults.fired(), 4);
    assert_eq!(m.get("keep.bin").as_deref(), Some(&b"old contents"[..]));
    assert_eq!(m.pending_uploads(), 0);
    assert_eq!(fs::read(m.path("keep.bin")).expect("read"), b"old contents");

    // Through a command: dd reports the failure (at write or close) and exits non-zero.
    let local = tempfile::tempdir().expect("local dir");
    let src = local.path().join("src.bin");
    fs::write(&src, pattern(12 * MIB, 8)).expect("write local");
    faults.add(FaultRule {
        method: "PUT",
        query_contains: "partNumber=1",
        times: 1,
    });
    let stderr = sh_fails(&format!(
        "dd if={} of={} bs=1M status=none",
        q(&src),
        q(&m.path("dd.bin"))
    ));
    assert!(stderr.contains("Input/output error"), "{stderr}");
    assert_eq!(m.get("dd.bin"), None);
    assert_eq!(m.pending_uploads(), 0);

    // A small file (one PUT, no multipart upload) whose PUT fails: close fails, nothing stored.
    faults.add(FaultRule {
        method: "PUT",
        query_contains: "",
        times: 1,
    });
    let result = write_and_close(&m.path("small.txt"), b"small\n");
    assert_eq!(errno(result), libc::EIO);
    assert_eq!(m.get("small.txt"), None);

    // The mount still works afterwards.
    write_and_close(&m.path("fine.bin"), &pattern(6 * MIB, 9)).expect("a write without faults");
    assert_eq!(m.get("fine.bin").map(|b| b.len()), Some(6 * MIB));
    assert_eq!(m.pending_uploads(), 0);
}

#[test]
fn policy_read_only_is_erofs_and_changes_nothing() {
    let Some(m) = mount_s3(Policy::new(Authority::Read, true), None) else {
        return;
    };
    m.put("seed.txt", b"seed\n");
    m.put("dir/", b"");
    assert_eq!(fs::read(m.path("seed.txt")).expect("read"), b"seed\n");
    let listing = sh(&format!("ls -l {}", q(m.root())));
    assert!(
        listing.contains("seed.txt") && listing.contains("dir"),
        "{listing}"
    );

    assert_eq!(
        errno(write_and_close(&m.path("new.txt"), b"x")),
        libc::EROFS
    );
    assert_eq!(errno(fs::create_dir(m.path("newdir"))), libc::EROFS);
    assert_eq!(
        errno(
            OpenOptions::new()
                .append(true)
                .open(m.path("seed.txt"))
                .and_then(|mut f| f.write_all(b"more\n"))
        ),
        libc::EROFS
    );
    assert_eq!(errno(fs::write(m.path("seed.txt"), b"x")), libc::EROFS);
    assert_eq!(
        errno(fs::rename(m.path("seed.txt"), m.path("renamed.txt"))),
        libc::EROFS
    );
    assert_eq!(errno(fs::remove_file(m.path("seed.txt"))), libc::EROFS);
    assert_eq!(errno(fs::remove_dir(m.path("dir"))), libc::EROFS);
    let stderr = sh_fails(&format!("rm -f {}", q(&m.path("seed.txt"))));
    assert!(stderr.contains("Read-only file system"), "{stderr}");

    assert_eq!(m.keys(), ["dir/", "seed.txt"]);
    assert_eq!(m.get("seed.txt").as_deref(), Some(&b"seed\n"[..]));
}

#[test]
fn policy_read_write_without_delete_is_eperm_for_what_destroys_data() {
    let Some(m) = mount_s3(Policy::new(Authority::ReadWrite, false), None) else {
        return;
    };
    m.put("seed.txt", b"seed\n");
    m.put("victim.txt", b"victim\n");
    m.put("empty/", b"");

    // What destroys nothing is allowed.
    write_and_close(&m.path("new.txt"), b"new\n").expect("create");
    fs::create_dir(m.path("newdir")).expect("mkdir");
    sh(&format!("echo more >> {}", q(&m.path("seed.txt"))));
    fs::rename(m.path("new.txt"), m.path("renamed.txt")).expect("rename to a new name");
    assert_eq!(fs::read(m.path("seed.txt")).expect("read"), b"seed\nmore\n");

    // What destroys data is EPERM.
    assert_eq!(
        errno(write_and_close(&m.path("victim.txt"), b"replaced\n")),
        libc::EPERM
    );
    assert_eq!(
        errno(fs::rename(m.path("renamed.txt"), m.path("victim.txt"))),
        libc::EPERM
    );
    assert_eq!(errno(fs::remove_file(m.path("victim.txt"))), libc::EPERM);
    assert_eq!(errno(fs::remove_dir(m.path("empty"))), libc::EPERM);
    // Open without O_TRUNC, then ftruncate(0): the vsftpd way to overwrite, refused the same way.
    assert_eq!(
        errno(
            OpenOptions::new()
                .write(true)
                .open(m.path("victim.txt"))
                .and_then(|f| f.set_len(0))
        ),
        libc::EPERM
    );
    let stderr = sh_fails(&format!("rm {}", q(&m.path("victim.txt"))));
    assert!(stderr.contains("Operation not permitted"), "{stderr}");

    assert_eq!(
        m.keys(),
        ["empty/", "newdir/", "renamed.txt", "seed.txt", "victim.txt"]
    );
    assert_eq!(m.get("victim.txt").as_deref(), Some(&b"victim\n"[..]));
    assert_eq!(m.get("renamed.txt").as_deref(), Some(&b"new\n"[..]));
    assert_eq!(m.get("seed.txt").as_deref(), Some(&b"seed\nmore\n"[..]));
}

/// A file opened for writing and closed without writing is not "being written" any more: the next command does
/// not get EBUSY while the kernel's delayed release is still on its way (20 of 20 tries failed before).
#[test]
fn closed_without_writing_is_not_busy() {
    let Some(m) = mount_s3(Policy::full(), None) else {
        return;
    };
    for round in 0..20 {
        let f = m.path(&format!("f{round}"));
        sh(&format!("touch {f}; rm {f}", f = q(&f)));
        assert_eq!(errno(fs::metadata(&f)), libc::ENOENT, "round {round}");
        sh(&format!(": > {f}; echo y > {f}", f = q(&f)));
        assert_eq!(fs::read(&f).expect("read"), b"y\n", "round {round}");
        for _ in 0..2 {
            let rw = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&f)
                .unwrap_or_else(|e| panic!("round {round}: open O_RDWR: {e}"));
            drop(rw);
        }
    }
    // Every upload ended: the last round's file is there with its content.
    assert_eq!(m.get("f19").as_deref(), Some(&b"y\n"[..]));
    assert_eq!(m.pending_uploads(), 0);
}

/// A writer killed by a signal commits nothing: the old object stays, and no multipart upload is left behind
/// (20 of 20 kills committed a partial file before).
#[test]
fn a_killed_writer_commits_nothing() {
    let Some(m) = mount_s3(Policy::full(), None) else {
        return;
    };
    for round in 0..5 {
        let name = format!("victim{round}.bin");
        m.put(&name, b"old contents");
        let path = m.path(&name);
        // Writes 1 MiB at a time, far more than it will be allowed to.
        let mut writer = Command::new("python3")
            .arg("-c")
            .arg(
                "import sys\nf = open(sys.argv[1], 'wb')\nfor _ in range(2000):\n    f.write(b'x' * 1048576)\n",
            )
            .arg(&path)
            .spawn()
            .expect("start the writer");
        // Until the mount shows that more than a part (5 MiB) has been written.
        let deadline = Instant::now() + Duration::from_secs(60);
        while fs::metadata(&path).map(|m| m.len()).unwrap_or(0) < 7 * MIB as u64 {
            assert!(
                Instant::now() < deadline,
                "round {round}: the writer never got going"
            );
            assert!(
                writer.try_wait().expect("wait").is_none(),
                "round {round}: the writer ended"
            );
            std::thread::yield_now();
        }
        writer.kill().expect("SIGKILL");
        writer.wait().expect("reap");
        // Until the kernel has released the file: then the mount shows the old object again.
        let deadline = Instant::now() + Duration::from_secs(60);
        while fs::metadata(&path).map(|m| m.len()).unwrap_or(0) != 12 {
            assert!(
                Instant::now() < deadline,
                "round {round}: the killed writer's file never went away"
            );
            std::thread::yield_now();
        }
        assert_eq!(
            m.get(&name).as_deref(),
            Some(&b"old contents"[..]),
            "round {round}"
        );
        assert_eq!(m.pending_uploads(), 0, "round {round}");
    }
}
