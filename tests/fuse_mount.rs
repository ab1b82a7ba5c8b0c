//! A real kernel mount of `BucketFs`, driven by std::fs and the commands people use (`cp`, `dd`, `ls`, `mv`,
//! `rm`, shell redirections). Needs root and /dev/fuse: without them each test says "skipping" and passes, unless
//! `COSFTPD_REQUIRE_FUSE=1` makes that a failure.

mod common;

use common::{errno, pattern, shell_quote as q};

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cosftpd::bucketfs::{BucketFs, MemoryBudget, Policy, Settings};
use cosftpd::config::{Authority, StorageConfig};
use cosftpd::fuse::{mount, MountError, MountHandle, MountOptions};
use cosftpd::storage::{build_store, AccountStore, StorageOptions};
use opendal::Operator;
use tempfile::TempDir;
use tokio::runtime::Runtime;

const MIB: usize = 1024 * 1024;

/// A mounted bucket; unmounted when dropped, also when a test panics.
struct Mounted {
    handle: Option<MountHandle>,
    dir: TempDir,
    op: Operator,
    rt: Runtime,
    /// The directory of an `fs` store, removed after the mount (fields drop in order).
    backing: Option<TempDir>,
}

impl Mounted {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Puts an object straight into the store, past the mount.
    fn put(&self, key: &str, data: &[u8]) {
        let data = data.to_vec();
        self.rt
            .block_on(self.op.write(key, data))
            .expect("write to the store");
    }

    fn put_dir(&self, key: &str) {
        self.rt
            .block_on(self.op.create_dir(key))
            .expect("create a marker in the store");
    }

    fn store_has(&self, key: &str) -> bool {
        self.rt
            .block_on(self.op.exists(key))
            .expect("exists in the store")
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

fn required() -> bool {
    std::env::var("COSFTPD_REQUIRE_FUSE").is_ok_and(|v| v == "1")
}

fn settings() -> Settings {
    Settings {
        part_size: 5 * MIB as u64,
        upload_concurrency: 2,
        metadata_ttl: Duration::from_secs(1),
        ..Settings::default()
    }
}

fn memory_store() -> AccountStore {
    build_store(&StorageConfig::Memory, &StorageOptions::default()).expect("memory store")
}

/// Mounts a bucket over `op` with `policy`, or `None` (after saying so) when this host cannot mount FUSE.
fn mount_with(store: AccountStore, policy: Policy) -> Option<Mounted> {
    let rt = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("mount point");
    let op = store.op.clone();
    let fs = BucketFs::new(
        store,
        policy,
        settings(),
        MemoryBudget::new(256 * MIB as u64),
    );
    let options = MountOptions::new("cosftpd:test");
    match mount(fs, dir.path(), options, rt.handle().clone()) {
        Ok(handle) => Some(Mounted {
            handle: Some(handle),
            dir,
            op,
            rt,
            backing: None,
        }),
        Err(e @ (MountError::NoFuseDevice | MountError::NotPermitted { .. })) if !required() => {
            eprintln!("skipping: FUSE is not available here: {e}");
            None
        }
        Err(e) => panic!("mount failed: {e}"),
    }
}

fn mount_memory(policy: Policy) -> Option<Mounted> {
    mount_with(memory_store(), policy)
}

/// A mount of an `fs` store in a directory of its own, and that store's root (to look behind the mount).
fn mount_fs(policy: Policy) -> Option<(Mounted, PathBuf)> {
    let backing = tempfile::tempdir().expect("backing dir");
    let root = backing.path().join("data");
    let store = build_store(
        &StorageConfig::Fs { root: root.clone() },
        &StorageOptions::default(),
    )
    .expect("fs store");
    let mut m = mount_with(store, policy)?;
    m.backing = Some(backing);
    Some((m, root))
}

/// Runs a shell command line; panics with its output unless it succeeds.
fn sh(script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("LC_ALL", "C.UTF-8")
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

/// Runs a shell command line that must fail; returns its stderr.
fn sh_fails(script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("run sh");
    assert!(!out.status.success(), "`{script}` should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn files_round_trip_through_cp_cmp_ls_and_stat() {
    let Some(m) = mount_memory(Policy::full()) else {
        return;
    };
    let local = tempfile::tempdir().expect("local dir");
    let src = local.path().join("src.bin");
    let data = pattern(3 * MIB + 12_345, 1);
    fs::write(&src, &data).expect("write local");

    let dst = m.path("data.bin");
    sh(&format!("cp {} {}", q(&src), q(&dst)));
    sh(&format!("cmp {} {}", q(&src), q(&dst)));
    assert!(m.store_has("data.bin"), "cp's close committed the object");
    let back = local.path().join("back.bin");
    sh(&format!("cp {} {}", q(&dst), q(&back)));
    assert_eq!(fs::read(&back).expect("read back"), data);

    let listing = sh(&format!("ls -l {}", q(m.root())));
    let line = listing
        .lines()
        .find(|l| l.ends_with(" data.bin"))
        .unwrap_or_else(|| panic!("data.bin not in ls -l:\n{listing}"));
    assert!(line.starts_with("-rw-r--r--"), "{line}");
    assert!(line.contains(&format!(" {} ", data.len())), "{line}");
    assert_eq!(
        sh(&format!("stat -c '%s %F' {}", q(&dst))).trim(),
        format!("{} regular file", data.len())
    );
    assert_eq!(
        sh(&format!("stat -c '%F' {}", q(m.root()))).trim(),
        "directory"
    );

    // cp -p sets mode, owner and times: accepted, changes nothing, does not fail.
    sh(&format!("cp -p {} {}", q(&src), q(&m.path("kept.bin"))));
    sh(&format!("touch {}", q(&m.path("kept.bin"))));
    sh(&format!("chmod 600 {}", q(&m.path("kept.bin"))));
    assert_eq!(fs::read(m.path("kept.bin")).expect("read"), data);

    // Reads at offsets (a seek, then sequential).
    let mut f = File::open(&dst).expect("open");
    f.seek(SeekFrom::Start(2 * MIB as u64 + 7)).expect("seek");
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).expect("read tail");
    assert_eq!(tail, &data[2 * MIB + 7..]);
}

#[test]
fn dd_of_64_mib_in_and_out() {
    let Some(m) = mount_memory(Policy::full()) else {
        return;
    };
    let local = tempfile::tempdir().expect("local dir");
    let src = local.path().join("big.in");
    fs::write(&src, pattern(64 * MIB, 2)).expect("write local");
    let dst = m.path("big.bin");
    let out = local.path().join("big.out");
    sh(&format!(
        "dd if={} of={} bs=1M status=none",
        q(&src),
        q(&dst)
    ));
    assert_eq!(fs::metadata(&dst).expect("stat").len(), 64 * MIB as u64);
    sh(&format!(
        "dd if={} of={} bs=1M status=none",
        q(&dst),
        q(&out)
    ));
    let sums = sh(&format!("sha256sum {} {}", q(&src), q(&out)));
    let sums: Vec<&str> = sums.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(sums.len(), 2);
    assert_eq!(sums[0], sums[1], "checksums differ");
}

/// A file of several read-ahead GETs, read through the kernel as programs read: sequential readers at once (the
/// kernel's readahead keeps several requests in flight and answers them out of order), seeks back and forth
/// with `pread` of odd sizes, reads across the end. Every byte must be the store's.
#[test]
fn multi_window_reads_are_byte_exact_in_any_order() {
    use std::os::unix::fs::FileExt;
    let Some(m) = mount_memory(Policy::full()) else {
        return;
    };
    let size = 40 * MIB + 4_321;
    let data = pattern(size, 5);
    m.put("multi.bin", &data);
    let path = m.path("multi.bin");
    std::thread::scope(|s| {
        for reader in 0..3 {
            let (path, data) = (&path, &data);
            s.spawn(move || {
                let mut got = Vec::with_capacity(size);
                File::open(path)
                    .expect("open")
                    .read_to_end(&mut got)
                    .expect("read");
                assert!(got == *data, "sequential reader {reader}: bytes differ");
            });
        }
    });
    let file = File::open(&path).expect("open");
    let mut offset: u64 = 0;
    let mut step: u64 = 1;
    for _ in 0..200 {
        // A walk that mostly goes forward in steps up to a few MiB, and sometimes jumps back.
        step = (step * 48_271 + 11) % 2_147_483_647;
        let len = (step % (3 * MIB as u64)) as usize + 1;
        offset = if step.is_multiple_of(5) {
            offset.saturating_sub(step % (9 * MIB as u64))
        } else {
            (offset + step % (2 * MIB as u64)) % (size as u64 + 10)
        };
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            let n = file
                .read_at(&mut buf[filled..], offset + filled as u64)
                .expect("pread");
            if n == 0 {
                break;
            }
            filled += n;
        }
        let want = &data[(offset as usize).min(size)..(offset as usize + len).min(size)];
        assert!(buf[..filled] == *want, "{len} bytes at {offset} differ");
    }
}

#[test]
fn directories_mkdir_rmdir_mv_rm() {
    let Some(m) = mount_memory(Policy::full()) else {
        return;
    };
    sh(&format!("mkdir -p {}", q(&m.path("a/b/c"))));
    assert!(fs::metadata(m.path("a/b/c")).expect("stat").is_dir());
    assert!(m.store_has("a/b/c/"), "mkdir made a marker");
    fs::write(m.path("a/b/file.txt"), b"hello\n").expect("write");

    assert_eq!(errno(fs::remove_dir(m.path("a/b"))), libc::ENOTEMPTY);
    sh_fails(&format!("rmdir {}", q(&m.path("a"))));
    assert_eq!(errno(fs::create_dir(m.path("a/b"))), libc::EEXIST);
    assert_eq!(errno(fs::read(m.path("a/nope"))), libc::ENOENT);
    assert_eq!(errno(fs::read_dir(m.path("a/b/file.txt"))), libc::ENOTDIR);

    // mv of a file, then of a directory tree.
    sh(&format!(
        "mv {} {}",
        q(&m.path("a/b/file.txt")),
        q(&m.path("a/moved.txt"))
    ));
    assert_eq!(errno(fs::metadata(m.path("a/b/file.txt"))), libc::ENOENT);
    assert_eq!(fs::read(m.path("a/moved.txt")).expect("read"), b"hello\n");
    sh(&format!("mv {} {}", q(&m.path("a")), q(&m.path("z"))));
    assert_eq!(errno(fs::metadata(m.path("a"))), libc::ENOENT);
    assert_eq!(fs::read(m.path("z/moved.txt")).expect("read"), b"hello\n");
    assert!(fs::metadata(m.path("z/b/c")).expect("stat").is_dir());
    let mut names: Vec<String> = fs::read_dir(m.path("z"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["b", "moved.txt"]);

    // A file moved onto an existing file replaces it.
    fs::write(m.path("z/other.txt"), b"other\n").expect("write");
    fs::rename(m.path("z/other.txt"), m.path("z/moved.txt")).expect("rename over");
    assert_eq!(fs::read(m.path("z/moved.txt")).expect("read"), b"other\n");

    sh(&format!("rmdir {}", q(&m.path("z/b/c"))));
    sh(&format!("rm {}", q(&m.path("z/moved.txt"))));
    sh(&format!("rm -r {}", q(&m.path("z"))));
    assert_eq!(errno(fs::metadata(m.path("z"))), libc::ENOENT);
    assert_eq!(
        fs::read_dir(m.root()).expect("list root").count(),
        0,
        "everything is gone"
    );
}

#[test]
fn chinese_and_space_names() {
    let Some(m) = mount_memory(Policy::full()) else {
        return;
    };
    let dir = m.path("目录 一");
    fs::create_dir(&dir).expect("mkdir");
    let file = dir.join("中文 文件.txt");
    fs::write(&file, "你好，世界\n").expect("write");
    assert!(m.store_has("目录 一/中文 文件.txt"));
    assert_eq!(fs::read_to_string(&file).expect("read"), "你好，世界\n");
    let listing = sh(&format!("ls -1 {}", q(&dir)));
    assert_eq!(listing.trim(), "中文 文件.txt");
    let moved = m.path("新 名字.txt");
    sh(&format!("mv {} {}", q(&file), q(&moved)));
    assert_eq!(fs::read_to_string(&moved).expect("read"), "你好，世界\n");
    sh(&format!("rm {} && rmdir {}", q(&moved), q(&dir)));
}

#[test]
fn shell_redirections_append_and_truncate() {
    let Some(m) = mount_memory(Policy::full()) else {
        return;
    };
    let f = m.path("log.txt");
    sh(&format!(
        "echo one > {f}; echo two >> {f}; echo three >> {f}",
        f = q(&f)
    ));
    assert_eq!(fs::read_to_string(&f).expect("read"), "one\ntwo\nthree\n");

    // Every child closes its copy of the descriptor while the loop still writes: only the shell's own close
    // may commit.
    let looped = m.path("loop.txt");
    sh(&format!(
        "for i in 1 2 3; do /bin/echo $i; done > {}",
        q(&looped)
    ));
    assert_eq!(fs::read_to_string(&looped).expect("read"), "1\n2\n3\n");
    sh(&format!("( /bin/echo a; echo b ) >> {}", q(&looped)));
    assert_eq!(
        fs::read_to_string(&looped).expect("read"),
        "1\n2\n3\na\nb\n"
    );

    // Open without O_TRUNC, ftruncate(0), write from 0 (what vsftpd does).
    let mut file = OpenOptions::new().write(true).open(&f).expect("open");
    file.set_len(0).expect("ftruncate 0");
    file.write_all(b"rewritten\n").expect("write");
    drop(file);
    assert_eq!(fs::read_to_string(&f).expect("read"), "rewritten\n");

    // truncate by path, and growing with zeros.
    sh(&format!("truncate -s 0 {}", q(&f)));
    assert_eq!(fs::metadata(&f).expect("stat").len(), 0);
    fs::write(&f, b"0123456789").expect("write");
    OpenOptions::new()
        .write(true)
        .open(&f)
        .and_then(|f| f.set_len(12))
        .expect("grow with zeros");
    assert_eq!(fs::read(&f).expect("read"), b"0123456789\0\0");
    sh(&format!("truncate -s 4 {}", q(&f)));
    assert_eq!(fs::read(&f).expect("read"), b"0123");

    // touch makes an empty file.
    let touched = m.path("touched");
    sh(&format!("touch {}", q(&touched)));
    assert_eq!(fs::metadata(&touched).expect("stat").len(), 0);
}

/// Within the part in memory (a file of up to one part) any write pattern works: holes, edits in the middle of
/// an existing file, `dd conv=notrunc`, reading back through the descriptor that writes.
#[test]
fn a_file_within_one_part_is_written_like_a_local_file() {
    let Some(m) = mount_memory(Policy::full()) else {
        return;
    };
    // A new file with a hole: the hole reads as zeros.
    let f = m.path("holes.bin");
    let mut file = File::create(&f).expect("create");
    file.write_all(b"0123456789").expect("write");
    file.seek(SeekFrom::Start(4096)).expect("seek");
    file.write_all(b"x").expect("write after a hole");
    drop(file);
    let data = fs::read(&f).expect("read");
    assert_eq!(data.len(), 4097);
    assert_eq!(&data[..10], b"0123456789");
    assert!(data[10..4096].iter().all(|&b| b == 0));
    assert_eq!(data[4096], b'x');

    // An existing file: writing into the middle changes just those bytes.
    fs::write(&f, b"0123456789").expect("write");
    let mut file = OpenOptions::new().write(true).open(&f).expect("open");
    file.seek(SeekFrom::Start(3)).expect("seek");
    file.write_all(b"xyz").expect("write in the middle");
    drop(file);
    assert_eq!(fs::read(&f).expect("read"), b"012xyz6789");

    // dd into the middle of a file (conv=notrunc).
    sh(&format!(
        "printf abc | dd of={} bs=1 seek=5 conv=notrunc status=none",
        q(&f)
    ));
    assert_eq!(fs::read(&f).expect("read"), b"012xyabc89");

    // Reading back through a descriptor opened for reading and writing, before and after a sync.
    let mut rw = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&f)
        .expect("open rw");
    rw.seek(SeekFrom::End(0)).expect("seek");
    rw.write_all(&[7; 70_000]).expect("write");
    let mut back = vec![0u8; 70_010];
    rw.seek(SeekFrom::Start(0)).expect("seek");
    rw.read_exact(&mut back)
        .expect("read back all of it, never short");
    assert_eq!(&back[..10], b"012xyabc89");
    assert!(back[10..].iter().all(|&b| b == 7));
    rw.sync_all().expect("fsync commits");
    rw.write_all(b"tail")
        .expect("write after fsync continues the file");
    drop(rw);
    let data = fs::read(&f).expect("read");
    assert_eq!(data.len(), 70_014);
    assert!(data.ends_with(b"tail"));
}

/// `ftruncate` may grow a file past the part in memory (fsx and pjdfstest do): the parts in between are sent as
/// zeros (an object has no holes), and writing continues at the new end.
#[test]
fn truncate_grows_a_file_past_the_part_in_memory() {
    let Some(m) = mount_memory(Policy::full()) else {
        return;
    };
    let f = m.path("grown.bin");
    let mut file = File::create(&f).expect("create");
    file.write_all(b"head").expect("write");
    let len = 2 * 5 * MIB + 3;
    file.set_len(len as u64)
        .expect("grow past two parts of 5 MiB");
    assert_eq!(file.metadata().expect("fstat").len(), len as u64);
    file.seek(SeekFrom::End(0)).expect("seek");
    file.write_all(b"tail").expect("write at the new end");
    close(file).expect("close commits");
    let data = fs::read(&f).expect("read");
    assert_eq!(data.len(), len + 4);
    assert_eq!(&data[..4], b"head");
    assert!(
        data[4..len].iter().all(|&b| b == 0),
        "the hole reads as zeros"
    );
    assert_eq!(&data[len..], b"tail");
}

/// The times a bucket keeps no object for, as on a local disk (from memory, for this account's changes): a
/// directory's modification and change times move when an entry is added, removed or renamed (the mount's root
/// too); a renamed file keeps its modification time and gets a new change time; a time set explicitly on a
/// directory wins over them.
#[test]
fn directory_and_rename_times_follow_this_accounts_changes() {
    let Some(m) = mount_memory(Policy::full()) else {
        return;
    };
    let since = |t: SystemTime| {
        move |p: &Path| {
            let md = fs::symlink_metadata(p).expect("stat");
            let ctime = UNIX_EPOCH + Duration::new(md.ctime() as u64, md.ctime_nsec() as u32);
            (md.modified().expect("mtime") >= t, ctime >= t)
        }
    };
    let epoch = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
    let d = m.path("d");
    let before = SystemTime::now();
    fs::create_dir(&d).expect("mkdir");
    assert_eq!(
        since(before)(m.root()),
        (true, true),
        "the root's times moved"
    );

    sh(&format!("touch -d @1000000000 {}", q(&d)));
    assert_eq!(
        fs::metadata(&d).expect("stat").modified().expect("mtime"),
        epoch(1_000_000_000)
    );
    let before = SystemTime::now();
    fs::write(d.join("f"), b"f").expect("create an entry");
    assert_eq!(since(before)(&d), (true, true), "an entry added");

    sh(&format!("touch -d @1500000000 {}", q(&d.join("f"))));
    sh(&format!("touch -d @1000000000 {}", q(&d)));
    let before = SystemTime::now();
    fs::rename(d.join("f"), d.join("g")).expect("rename");
    assert_eq!(since(before)(&d), (true, true), "an entry renamed");
    let g = fs::symlink_metadata(d.join("g")).expect("stat");
    assert_eq!(
        g.modified().expect("mtime"),
        epoch(1_500_000_000),
        "a rename keeps the modification time"
    );
    assert_eq!(
        since(before)(&d.join("g")),
        (false, true),
        "…and moves the change time"
    );

    sh(&format!("touch -d @1000000000 {}", q(&d)));
    let before = SystemTime::now();
    fs::remove_file(d.join("g")).expect("unlink");
    assert_eq!(since(before)(&d), (true, true), "an entry removed");
    sh(&format!("touch -d @1000000000 {}", q(&d)));
    assert_eq!(
        fs::metadata(&d).expect("stat").modified().expect("mtime"),
        epoch(1_000_000_000),
        "an explicit time wins"
    );
}

/// Bytes already sent to the store as a part cannot change: such a write is refused (EINVAL), the upload is
/// abandoned and nothing is committed.
#[test]
fn writes_before_the_part_in_memory_are_refused_and_commit_nothing() {
    let Some(m) = mount_memory(Policy::full()) else {
        return;
    };
    let f = m.path("big.bin");
    let mut file = File::create(&f).expect("create");
    file.write_all(&pattern(6 * MIB, 1))
        .expect("write more than a part");
    file.seek(SeekFrom::Start(3)).expect("seek");
    assert_eq!(errno(file.write_all(b"x")), libc::EINVAL);
    assert_eq!(errno(file.sync_all()), libc::EINVAL, "fsync reports it too");
    assert_eq!(errno(file.write_all(b"y")), libc::EINVAL);
    drop(file);
    assert!(!m.store_has("big.bin"), "nothing was committed");
}

#[test]
fn the_fs_service_in_a_directory() {
    let Some((m, root)) = mount_fs(Policy::full()) else {
        return;
    };
    let data = pattern(2 * MIB + 1, 3);
    let local = tempfile::tempdir().expect("local dir");
    let src = local.path().join("src.bin");
    fs::write(&src, &data).expect("write local");

    sh(&format!("mkdir -p {}", q(&m.path("x/y"))));
    sh(&format!("cp {} {}", q(&src), q(&m.path("x/y/f.bin"))));
    assert_eq!(
        fs::read(root.join("x/y/f.bin")).expect("backing file"),
        data
    );
    sh(&format!("cmp {} {}", q(&src), q(&m.path("x/y/f.bin"))));
    sh(&format!("echo more >> {}", q(&m.path("x/y/f.bin"))));
    assert_eq!(
        fs::metadata(root.join("x/y/f.bin")).expect("stat").len(),
        data.len() as u64 + 5
    );
    assert!(sh(&format!("ls -l {}", q(&m.path("x/y")))).contains("f.bin"));
    sh(&format!("mv {} {}", q(&m.path("x")), q(&m.path("w"))));
    assert!(root.join("w/y/f.bin").exists());
    assert!(!root.join("x").exists());
    assert_eq!(errno(fs::remove_dir(m.path("w"))), libc::ENOTEMPTY);
    sh(&format!("rm -r {}", q(&m.path("w"))));
    assert!(!root.join("w").exists());
}

/// A directory renamed while a file in it is being written (`touch` holds the file open for writing only for an
/// instant; a writer holding it open across the `mv` is the hard case): the file ends up under the new name, never
/// nested under it or lost, in every round.
#[test]
fn a_directory_renamed_while_a_file_in_it_is_written() {
    let Some((m, root)) = mount_fs(Policy::full()) else {
        return;
    };
    for round in 0..70 {
        let (d, moved) = (m.path(&format!("d{round}")), m.path(&format!("n{round}")));
        sh(&format!(
            "mkdir {d}; touch {d}/file; mv {d} {n}",
            d = q(&d),
            n = q(&moved)
        ));
        // A writer that holds the file open across the rename, writing before and after it.
        let dir = m.path(&format!("w{round}"));
        fs::create_dir(&dir).expect("mkdir");
        let mut file = File::create(dir.join("file")).expect("create");
        file.write_all(b"before ").expect("write");
        fs::rename(&dir, m.path(&format!("v{round}"))).expect("rename the directory");
        file.write_all(b"after").expect("write after the rename");
        close(file).expect("close commits");

        // Through the mount at once; in the store when the kernel's delayed release of `touch`'s descriptor
        // arrives (a file opened and closed without writing is created then: docs/SEMANTICS.md).
        assert!(
            moved.join("file").is_file(),
            "round {round}: touched file, seen through the mount"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !root.join(format!("n{round}/file")).is_file() {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: touched file not in the store; the backing tree: {}",
                sh(&format!("cd {} && find . | sort | tail -20", q(&root)))
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            !root.join(format!("n{round}/d{round}")).exists(),
            "round {round}: nested"
        );
        assert!(
            !root.join(format!("d{round}")).exists(),
            "round {round}: old name left"
        );
        assert_eq!(
            fs::read(root.join(format!("v{round}/file")))
                .ok()
                .as_deref(),
            Some(&b"before after"[..]),
            "round {round}: the written file is under the new name"
        );
        assert!(
            !root.join(format!("w{round}")).exists(),
            "round {round}: old name left"
        );
    }
}

/// A program that starts another while it has a file open for writing on the mount: the child's exec closes its
/// copy of the descriptor (close-on-exec), and that `flush` reaches the mount while the kernel holds the child in
/// the middle of its exec, where reading the child's /proc/<pid>/stat blocks until the exec ends. A mount that
/// waited on that read hung the child, the program and every later request on the worker.
#[test]
fn a_program_started_while_a_file_is_open_for_writing() {
    let Some(m) = mount_memory(Policy::full()) else {
        return;
    };
    let connection = fuse_connection_of(m.root());
    let path = m.path("open-across-exec.txt");
    let mut file = File::create(&path).expect("create");
    file.write_all(b"before\n").expect("write");
    assert!(
        succeeds_unless_hung(Command::new("true"), connection),
        "a child's exec hung on the mount (its close-on-exec flush was never answered)"
    );
    file.write_all(b"after\n")
        .expect("write after the child ran");
    close(file).expect("close commits");
    assert_eq!(
        fs::read_to_string(&path).expect("read back"),
        "before\nafter\n"
    );
    assert!(m.store_has("open-across-exec.txt"));

    // The opener itself exec's with the file open (Python opens close-on-exec): its exec's close is its close,
    // and it commits, though the kernel holds the opener mid-exec while it waits for the answer.
    let own = m.path("opener-execs.txt");
    let script = format!(
        "import os; fd = os.open({:?}, os.O_WRONLY | os.O_CREAT); os.write(fd, b'written, then exec'); \
         os.execv('/bin/true', ['true'])",
        own.display().to_string()
    );
    let mut python = Command::new("python3");
    python.args(["-c", &script]);
    assert!(
        succeeds_unless_hung(python, connection),
        "a program's exec hung on the mount (its own close-on-exec flush was never answered)"
    );
    assert_eq!(
        fs::read_to_string(&own).expect("read back"),
        "written, then exec"
    );
}

/// Runs `command` and says whether it succeeded; false when it did not end within a minute, after aborting the
/// FUSE `connection` so that the stuck program (and the test binary) can end.
fn succeeds_unless_hung(mut command: Command, connection: u32) -> bool {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let status = command.status().map(|s| s.success());
        let _ = done.send(status);
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(status) => {
            assert!(status.expect("spawn"), "the program failed");
            true
        }
        Err(_) => {
            abort_fuse_connection(connection);
            false
        }
    }
}

/// The FUSE connection number of the mount at `root` (its device's minor number).
fn fuse_connection_of(root: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    libc::minor(fs::symlink_metadata(root).expect("stat the mount").dev())
}

/// Reads through a descriptor after it was fsync'ed, as fsx -y does (its failures, reduced): the descriptor
/// must see the file as it is now, not as the version its fsync committed, and an unlinked file's bytes must stay
/// readable after an fsync.
#[test]
fn reads_after_fsync_see_later_truncates_and_unlinked_bytes() {
    use std::os::unix::fs::FileExt;
    let Some(m) = mount_memory(Policy::full()) else {
        return;
    };
    let open_rw = |name: &str| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(m.path(name))
            .expect("open")
    };
    let read_at = |f: &File, len: usize, at: u64| {
        let mut buf = vec![0xAA; len];
        let mut got = 0;
        while got < len {
            match f.read_at(&mut buf[got..], at + got as u64).expect("pread") {
                0 => break,
                n => got += n,
            }
        }
        buf.truncate(got);
        buf
    };

    // Grown by a truncate after an fsync: the new bytes read as zeros (they read as nothing: 0 bytes).
    let f = open_rw("grown");
    f.write_all_at(&pattern(0xde9, 1), 0x15d85).expect("pwrite");
    f.sync_all().expect("fsync");
    assert_eq!(read_at(&f, 0xc03c, 0x8b64).len(), 0xc03c);
    f.set_len(0x2f147).expect("ftruncate up");
    assert_eq!(read_at(&f, 0x95fb, 0x1d339), vec![0; 0x95fb]);

    // Cut twice after an fsync: reads of what is left return it (they failed with EIO: the reader expected the
    // committed version's length).
    let data = pattern(0x38425a, 2);
    let f = open_rw("cut");
    f.write_all_at(&data, 0).expect("write");
    f.sync_all().expect("fsync");
    f.set_len(0x1befc3).expect("ftruncate down");
    assert_eq!(
        read_at(&f, 0xd08a, 0xd5f4b),
        &data[0xd5f4b..0xd5f4b + 0xd08a]
    );
    f.set_len(0x9f26d).expect("ftruncate down again");
    assert_eq!(
        read_at(&f, 0x8430, 0x8e459),
        &data[0x8e459..0x8e459 + 0x8430]
    );

    // Unlinked, written, fsync'ed: still readable through the descriptor (it was ENOENT), and never stored.
    let f = open_rw("gone");
    fs::remove_file(m.path("gone")).expect("unlink");
    f.write_all_at(b"hello", 0).expect("write");
    f.sync_all().expect("fsync");
    assert_eq!(read_at(&f, 5, 0), b"hello");
    drop(f);
    assert!(!m.store_has("gone"));
}

/// Aborts a FUSE connection through the fusectl filesystem, which fails every request waiting on it: the way out
/// of a hung mount. No program is started (its exec would close our descriptors on the mount and hang too).
fn abort_fuse_connection(connection: u32) {
    let dir = c"/sys/fs/fuse/connections";
    // SAFETY: plain mount(2) of the kernel's fusectl filesystem with constant C strings; failure (already
    // mounted, no permission) is harmless here.
    unsafe {
        libc::mount(
            c"fusectl".as_ptr(),
            dir.as_ptr(),
            c"fusectl".as_ptr(),
            0,
            std::ptr::null(),
        );
    }
    let _ = fs::write(format!("/sys/fs/fuse/connections/{connection}/abort"), "1");
}

/// One account's view: what the policy table of DESIGN.md promises, as errno.
fn check_policy(authority: Authority, delete_enable: bool) {
    let Some(m) = mount_memory(Policy::new(authority, delete_enable)) else {
        return;
    };
    let case = format!("{} delete_enable={delete_enable}", authority.letters());
    m.put("seed.txt", b"seed\n");
    m.put("victim.txt", b"victim\n");
    m.put_dir("empty/");
    let can_read = authority != Authority::Write;
    let can_write = authority != Authority::Read;
    // A refused write: EROFS without W, EPERM when it would destroy data and delete_enable is off.
    let destroy_errno = if !can_write {
        Some(libc::EROFS)
    } else if !delete_enable {
        Some(libc::EPERM)
    } else {
        None
    };
    let expect = |what: &str, result: io::Result<()>, wanted: Option<i32>| match (result, wanted) {
        (Ok(()), None) => {}
        (Err(e), Some(errno)) => assert_eq!(e.raw_os_error(), Some(errno), "{case}: {what}: {e}"),
        (result, wanted) => panic!("{case}: {what}: got {result:?}, wanted errno {wanted:?}"),
    };
    let write_errno = (!can_write).then_some(libc::EROFS);
    let read_errno = (!can_read).then_some(libc::EACCES);

    expect("stat", fs::metadata(m.path("seed.txt")).map(|_| ()), None);
    expect("read", fs::read(m.path("seed.txt")).map(|_| ()), read_errno);
    expect(
        "list",
        fs::read_dir(m.root()).and_then(|mut d| d.try_for_each(|e| e.map(|_| ()))),
        read_errno,
    );
    expect(
        "create",
        fs::write(m.path("new.txt"), b"new\n"),
        write_errno,
    );
    expect("mkdir", fs::create_dir(m.path("newdir")), write_errno);
    expect(
        "append",
        OpenOptions::new()
            .append(true)
            .open(m.path("seed.txt"))
            .and_then(|mut f| f.write_all(b"more\n")),
        write_errno,
    );
    expect(
        "overwrite",
        fs::write(m.path("victim.txt"), b"replaced\n"),
        destroy_errno,
    );
    if can_write {
        expect(
            "rename to a new name",
            fs::rename(m.path("new.txt"), m.path("renamed.txt")),
            None,
        );
        expect(
            "rename onto an existing name",
            fs::rename(m.path("renamed.txt"), m.path("seed.txt")),
            destroy_errno,
        );
    } else {
        expect(
            "rename",
            fs::rename(m.path("seed.txt"), m.path("renamed.txt")),
            write_errno,
        );
    }
    expect(
        "delete",
        fs::remove_file(m.path("victim.txt")),
        destroy_errno,
    );
    expect("rmdir", fs::remove_dir(m.path("empty")), destroy_errno);

    // What the store holds afterwards agrees.
    let victim = m.rt.block_on(m.op.read("victim.txt"));
    match destroy_errno {
        Some(_) => assert_eq!(victim.expect("kept").to_vec(), b"victim\n", "{case}"),
        None => assert!(victim.is_err(), "{case}: deleted"),
    }
    if can_write {
        let seed = m.rt.block_on(m.op.read("seed.txt")).expect("seed").to_vec();
        let wanted: &[u8] = if delete_enable {
            b"new\n"
        } else {
            b"seed\nmore\n"
        };
        assert_eq!(seed, wanted, "{case}: seed.txt");
    }
}

#[test]
fn the_policy_table_read_only() {
    check_policy(Authority::Read, true);
    check_policy(Authority::Read, false);
}

#[test]
fn the_policy_table_write_only() {
    check_policy(Authority::Write, true);
    check_policy(Authority::Write, false);
}

#[test]
fn the_policy_table_read_write() {
    check_policy(Authority::ReadWrite, true);
    check_policy(Authority::ReadWrite, false);
}

/// A refused `ftruncate` spends the open file, like a refused write: later writes and the close report the same
/// refusal (not a store error), and the file stays as it was. This is the vsftpd overwrite pattern on an account
/// with `delete_enable = false`.
#[test]
fn a_refused_truncate_spends_the_open_file() {
    let Some(m) = mount_memory(Policy::new(Authority::ReadWrite, false)) else {
        return;
    };
    m.put("victim.txt", b"victim\n");
    let mut file = OpenOptions::new()
        .write(true)
        .open(m.path("victim.txt"))
        .expect("open without O_TRUNC");
    assert_eq!(errno(file.set_len(0)), libc::EPERM);
    assert_eq!(errno(file.write_all(b"new")), libc::EPERM);
    assert_eq!(errno(file.sync_all()), libc::EPERM);
    assert_eq!(errno(close(file)), libc::EPERM);
    assert_eq!(fs::read(m.path("victim.txt")).expect("read"), b"victim\n");

    // Cutting the old bytes short destroys data too: EPERM, the same way; appending is allowed.
    let mut file = OpenOptions::new()
        .write(true)
        .open(m.path("victim.txt"))
        .expect("open without O_TRUNC");
    assert_eq!(errno(file.set_len(3)), libc::EPERM);
    assert_eq!(errno(file.write_all(b"more")), libc::EPERM);
    assert_eq!(errno(close(file)), libc::EPERM);
    assert_eq!(fs::read(m.path("victim.txt")).expect("read"), b"victim\n");
    let mut file = OpenOptions::new()
        .append(true)
        .open(m.path("victim.txt"))
        .expect("open for append");
    file.write_all(b"more\n").expect("append");
    close(file).expect("close");
    assert_eq!(
        fs::read(m.path("victim.txt")).expect("read"),
        b"victim\nmore\n"
    );
}

/// Extended attributes in the `user.` namespace are kept with the object (s3fs's form): set, read, listed,
/// replaced, removed, and names without a namespace; the kernel's namespaces are not kept (`security.*` reads as absent, setting one is refused with
/// EOPNOTSUPP); `cp -a` copies a tree with its attributes.
#[test]
fn user_extended_attributes_are_kept_and_cp_a_copies_them() {
    let Some(m) = mount_memory(Policy::full()) else {
        return;
    };
    let file = m.path("f.txt");
    fs::write(&file, b"f\n").expect("write");
    assert_eq!(xattr::get(&file, "user.test").expect("getxattr"), None);
    xattr::set(&file, "user.test", b"value one").expect("setxattr");
    xattr::set(&file, "user.other", b"").expect("setxattr");
    assert_eq!(
        xattr::get(&file, "user.test").expect("getxattr").as_deref(),
        Some(&b"value one"[..])
    );
    let mut names: Vec<String> = xattr::list(&file)
        .expect("listxattr")
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["user.other", "user.test"]);
    xattr::remove(&file, "user.other").expect("removexattr");
    // A name without a namespace (macOS programs and s3fs's tests use them) is kept like a user. one.
    xattr::set(&file, "key1", b"value1").expect("setxattr without a namespace");
    assert_eq!(
        xattr::get(&file, "key1").expect("getxattr").as_deref(),
        Some(&b"value1"[..])
    );
    xattr::remove(&file, "key1").expect("removexattr");
    assert_eq!(
        errno(xattr::remove(&file, "user.other")),
        libc::ENODATA,
        "removing what is not there"
    );
    // Outside user.*: nothing is kept (and what `ls -l` asks of every entry is answered as absent).
    for name in [
        "security.capability",
        "security.selinux",
        "system.posix_acl_access",
    ] {
        assert_eq!(xattr::get(&file, name).expect("getxattr"), None, "{name}");
    }
    assert_eq!(
        errno(xattr::set(&file, "trusted.x", b"1")),
        libc::EOPNOTSUPP
    );
    // The bytes are untouched by metadata changes.
    assert_eq!(fs::read(&file).expect("read"), b"f\n");

    let local = tempfile::tempdir().expect("local dir");
    fs::create_dir(local.path().join("tree")).expect("mkdir");
    fs::write(local.path().join("tree/a.txt"), b"a\n").expect("write");
    xattr::set(local.path().join("tree/a.txt"), "user.origin", b"local").expect("setxattr");
    sh(&format!(
        "cp -a {} {}",
        q(&local.path().join("tree")),
        q(&m.path("tree"))
    ));
    assert_eq!(fs::read(m.path("tree/a.txt")).expect("read"), b"a\n");
    assert_eq!(
        xattr::get(m.path("tree/a.txt"), "user.origin")
            .expect("getxattr")
            .as_deref(),
        Some(&b"local"[..])
    );
}

/// `close(2)` with its result (dropping a `File` ignores it).
fn close(file: File) -> io::Result<()> {
    use std::os::fd::IntoRawFd;
    let fd = file.into_raw_fd();
    // SAFETY: `fd` was just released by the File, so it is open and owned by nobody else.
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[test]
fn a_stale_mount_is_cleared_and_a_live_one_refused() {
    let dir = tempfile::tempdir().expect("mount point");
    if !make_stale_mount(dir.path(), "cosftpd") {
        return;
    }
    let stale = fs::metadata(dir.path());
    assert_eq!(errno(stale), libc::ENOTCONN, "the mount is stale");

    let rt = Runtime::new().expect("runtime");
    let fs = BucketFs::new(
        memory_store(),
        Policy::full(),
        settings(),
        MemoryBudget::new(64 * MIB as u64),
    );
    let handle = mount(
        fs.clone(),
        dir.path(),
        MountOptions::new("cosftpd:test"),
        rt.handle().clone(),
    )
    .expect("mount over a stale mount");
    fs::write(dir.path().join("f"), b"works\n").expect("write");
    assert_eq!(fs::read(dir.path().join("f")).expect("read"), b"works\n");

    let again = mount(
        fs,
        dir.path(),
        MountOptions::new("cosftpd:test"),
        rt.handle().clone(),
    );
    assert!(
        matches!(again, Err(MountError::AlreadyMounted { .. })),
        "{again:?}"
    );
    // EBUSY is possible when another test thread spawns a command at the moment this one has a file open on
    // the mount (the child holds a copy of the descriptor until it execs); the handle then detaches lazily.
    match handle.unmount() {
        Ok(()) | Err(MountError::Unmount { .. }) => {}
        Err(e) => panic!("unmount: {e}"),
    }
    assert!(
        fs::metadata(dir.path()).is_ok(),
        "nothing stale is left behind"
    );
    assert!(fs::read_dir(dir.path()).expect("list").next().is_none());
}

/// Another program's stale FUSE mount is neither cleared nor mounted over: cosftpd clears only its own
/// (`fuse.cosftpd` in the mount table).
#[test]
fn another_programs_stale_mount_is_left_alone() {
    let dir = tempfile::tempdir().expect("mount point");
    if !make_stale_mount(dir.path(), "sshfs") {
        return;
    }
    let rt = Runtime::new().expect("runtime");
    let fs = BucketFs::new(
        memory_store(),
        Policy::full(),
        settings(),
        MemoryBudget::new(64 * MIB as u64),
    );
    let result = mount(
        fs,
        dir.path(),
        MountOptions::new("cosftpd:test"),
        rt.handle().clone(),
    );
    let still_there = mount_type(dir.path());
    // Cleaned up here, whatever happened, so that a failure leaves nothing behind.
    if let Ok(handle) = result {
        drop(handle);
        detach(dir.path());
        panic!("mounted over another program's stale mount (type then: {still_there:?})");
    }
    let err = result.err().map(|e| e.to_string()).unwrap_or_default();
    detach(dir.path());
    assert_eq!(still_there.as_deref(), Some("fuse.sshfs"), "{err}");
    assert!(
        err.contains("stale fuse.sshfs mount") && err.contains(&dir.path().display().to_string()),
        "{err}"
    );
}

/// The type the mount table gives the mount on top at `path`.
fn mount_type(path: &Path) -> Option<String> {
    let wanted = path.display().to_string();
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    info.lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(wanted.as_str()))
        .and_then(|l| l.split(" - ").nth(1)?.split(' ').next().map(str::to_string))
}

fn detach(path: &Path) {
    let _ = Command::new("umount").arg("-l").arg(path).status();
}

/// A FUSE mount of type `fuse.<subtype>` whose server is gone, as a crashed daemon leaves it: mounted on an fd
/// that is then closed.
fn make_stale_mount(path: &Path, subtype: &str) -> bool {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::io::AsRawFd;

    let device = match OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(device) => device,
        Err(e) if !required() => {
            eprintln!("skipping: /dev/fuse: {e}");
            return false;
        }
        Err(e) => panic!("/dev/fuse: {e}"),
    };
    let target = CString::new(path.as_os_str().as_bytes()).expect("path");
    let options = CString::new(format!(
        "fd={},rootmode=40000,user_id=0,group_id=0,subtype={subtype}",
        device.as_raw_fd()
    ))
    .expect("options");
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            c"cosftpd-stale".as_ptr(),
            target.as_ptr(),
            c"fuse".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        assert!(!required(), "mount(2) for a stale mount: {e}");
        eprintln!("skipping: cannot mount(2) here: {e}");
        return false;
    }
    drop(device);
    true
}
