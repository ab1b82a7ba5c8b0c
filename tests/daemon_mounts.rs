//! The mounts of the built binary over a local (`fs`) store, as an operator and local users meet them: what an
//! unprivileged local user may do through a mount, SIGHUP, a restart after `kill -9`, another program's mount or
//! files on a home_dir, special files and ioctls (answered without flooding the log).
//!
//! Needs root and /dev/fuse (and `setpriv` for the local-user cases); without them each test says "skipping"
//! and passes, unless `COSFTPD_REQUIRE_FUSE=1`.

mod common;
mod ftpd;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::shell_quote as q;

const BIN: &str = env!("CARGO_BIN_EXE_cosftpd");
/// How long a daemon may take to log what a test waits for (a deadline for a broken daemon, not a delay).
const LOG_DEADLINE: Duration = Duration::from_secs(30);
/// `nobody` / `nogroup` on Debian.
const NOBODY: u32 = 65534;

fn fuse_available() -> bool {
    // SAFETY: geteuid cannot fail.
    let ok = Path::new("/dev/fuse").exists() && unsafe { libc::geteuid() } == 0;
    if !ok {
        assert!(
            !common::require_fuse(),
            "COSFTPD_REQUIRE_FUSE=1 but FUSE (root + /dev/fuse) is not available"
        );
        eprintln!("skipping: FUSE needs root and /dev/fuse");
    }
    ok
}

/// A test directory that an unprivileged user may walk through (tempdirs are 0700), with `bucket/` (the fs
/// store) and the home dirs in it.
struct Site {
    dir: tempfile::TempDir,
    port: u16,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::create_dir(dir.path().join("bucket")).expect("bucket");
        Site {
            dir,
            port: common::free_port(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// An object in the store, put there behind the mount's back.
    fn put(&self, key: &str, data: &[u8]) {
        let path = self.path("bucket").join(key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, data).expect("put");
    }

    fn object(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path("bucket").join(key)).ok()
    }

    /// Three accounts on one store (RW, R, W), homes `rw`, `r`, `w`; `optional` goes into [OPTIONAL].
    fn config(&self, optional: &str) -> PathBuf {
        self.config_of(&[("rw", "RW"), ("r", "R"), ("w", "W")], optional)
    }

    /// Accounts `(user, authority)` on one store, each with home `<user>` and password `secret-password-<user>`
    /// where the user is not one of the three of `config` (theirs is `secret-password-<n>`).
    fn config_of(&self, accounts: &[(&str, &str)], optional: &str) -> PathBuf {
        let account = |user: &str, authority: &str| {
            let n = match user {
                "rw" => "0".to_string(),
                "r" => "1".to_string(),
                "w" => "2".to_string(),
                other => other.to_string(),
            };
            format!(
                "[COS_ACCOUNT_{n}]\n\
                 storage_type = fs\n\
                 storage_root = {root}\n\
                 home_dir = {home}\n\
                 ftp_login_user_name = {user}\n\
                 ftp_login_user_password = secret-password-{n}\n\
                 authority = {authority}\n\
                 delete_enable = true\n",
                root = self.path("bucket").display(),
                home = self.path(user).display(),
            )
        };
        let accounts: String = accounts.iter().map(|(u, a)| account(u, a)).collect();
        let text = format!(
            "{accounts}\
             [NETWORK]\n\
             listen_address = 127.0.0.1\n\
             listen_port = {port}\n\
             passive_port = 20000,20100\n\
             [OPTIONAL]\n\
             create_home_dir = true\n\
             {optional}\n",
            port = self.port,
        );
        common::write_config(self.dir.path(), &text)
    }

    fn homes(&self) -> [PathBuf; 3] {
        [self.path("rw"), self.path("r"), self.path("w")]
    }
}

impl Drop for Site {
    /// A test that failed half-way may leave a mount (or a stale one) behind: detach it, so the next run and
    /// the removal of the directory are not blocked by it.
    fn drop(&mut self) {
        for home in self.homes().into_iter().chain([self.path("new")]) {
            if mount_type(&home).is_some() {
                let _ = Command::new("umount").arg("-l").arg(&home).status();
            }
        }
    }
}

/// The file system type mounted on top at `path` (from /proc/self/mountinfo), if any.
fn mount_type(path: &Path) -> Option<String> {
    let wanted = path.display().to_string();
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    info.lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(wanted.as_str()))
        .and_then(|l| l.split(" - ").nth(1)?.split(' ').next().map(str::to_string))
}

/// A running `cosftpd serve|mount`; its stderr is collected as it comes. SIGTERM (and a wait) on drop.
struct Daemon {
    child: Child,
    log: Arc<(Mutex<String>, Condvar)>,
}

impl Daemon {
    fn start(mode: &str, config: &Path) -> Daemon {
        let mut child = Command::new(BIN)
            .arg(mode)
            .arg("-c")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cosftpd");
        let log = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let (text, changed) = &*sink;
            // A test that panicked while holding the lock has its answer already; keep collecting.
            let append = |line: &str| {
                let mut text = text.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                text.push_str(line);
                text.push('\n');
                changed.notify_all();
            };
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                append(&line);
            }
            append("<end of stderr>");
        });
        Daemon { child, log }
    }

    fn log(&self) -> String {
        self.log.0.lock().expect("log").clone()
    }

    /// Waits until the daemon has logged `needle`; panics if it ends (or takes past the deadline) first.
    fn wait_for_log(&self, needle: &str) {
        let (text, changed) = &*self.log;
        let deadline = Instant::now() + LOG_DEADLINE;
        let mut text = text.lock().expect("log");
        while !text.contains(needle) {
            assert!(
                !text.contains("<end of stderr>"),
                "cosftpd exited before logging {needle:?}:\n{text}"
            );
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{needle:?} not logged within {LOG_DEADLINE:?}:\n{text}"
            );
            text = changed.wait_timeout(text, left).expect("log").0;
        }
    }

    /// Waits until the daemon has exited (its stderr closed); panics if it is still running at the deadline.
    fn wait_for_exit(&mut self) -> std::process::ExitStatus {
        {
            let (text, changed) = &*self.log;
            let deadline = Instant::now() + LOG_DEADLINE;
            let mut text = text.lock().expect("log");
            while !text.contains("<end of stderr>") {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "cosftpd is still running:\n{text}");
                text = changed.wait_timeout(text, left).expect("log").0;
            }
        }
        self.wait()
    }

    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) of our own child.
        unsafe { libc::kill(pid, signal) };
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, and the exit status (within 20 s).
    fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait()
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "cosftpd did not stop within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.is_running() {
            self.terminate();
        }
    }
}

/// Starts `cosftpd mount` and waits until every home is mounted (the mount table is the readiness signal).
fn mount_all(site: &Site, config: &Path) -> Daemon {
    let mut daemon = Daemon::start("mount", config);
    let deadline = Instant::now() + LOG_DEADLINE;
    while !site.homes().iter().all(|home| is_live_mount(home)) {
        assert!(daemon.is_running(), "cosftpd exited:\n{}", daemon.log());
        assert!(Instant::now() < deadline, "not mounted:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}

/// A FUSE mount on `path` that answers (not a stale one).
fn is_live_mount(path: &Path) -> bool {
    mount_type(path).is_some_and(|t| t.starts_with("fuse")) && std::fs::metadata(path).is_ok()
}

/// Runs `script` in sh as `nobody` (no supplementary groups); returns the output.
fn as_nobody(script: &str) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .env("LC_ALL", "C")
        .output()
        .expect("setpriv")
}

/// Runs `script` as root.
fn as_root(script: &str) -> Output {
    Command::new("sh")
        .args(["-c", script])
        .env("LC_ALL", "C")
        .output()
        .expect("sh")
}

fn succeeds(who: &str, out: &Output, script: &str) {
    assert!(
        out.status.success(),
        "{who}: `{script}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts the script failed and its stderr says `why`.
fn fails_with(who: &str, out: &Output, script: &str, why: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(why),
        "{who}: `{script}` should have failed with {why:?}: {:?} {stderr}",
        out.status
    );
}

fn setpriv_available() -> bool {
    let ok = Command::new("setpriv").arg("--version").output().is_ok();
    if !ok {
        assert!(!common::require_fuse(), "setpriv (util-linux) is missing");
        eprintln!("skipping: setpriv is missing");
    }
    ok
}

/// With the defaults (owner: the daemon's user, root; 0644 / 0755), another local user may read what the
/// account may read and change nothing; `access(2)` says the same. Root still does everything the account
/// may. With `mount_uid`/`mount_gid` naming that user, it may change what the account may change — and the
/// account's policy still decides (R: read-only file system; W: no reading).
#[test]
fn local_users_get_the_owner_and_mode_the_mount_shows() {
    if !fuse_available() || !setpriv_available() {
        return;
    }
    let site = Site::new();
    site.put("seed.txt", b"seed\n");
    site.put("sub/inner.txt", b"inner\n");
    let rw = site.path("rw");

    {
        let _daemon = mount_all(&site, &site.config(""));
        let ls = as_root(&format!("ls -ln {}", q(&rw)));
        let ls = String::from_utf8_lossy(&ls.stdout).into_owned();
        assert!(
            ls.lines()
                .any(|l| l.starts_with("-rw-r--r-- 1 0 0 ") && l.ends_with(" seed.txt")),
            "{ls}"
        );
        assert!(
            ls.lines()
                .any(|l| l.starts_with("drwxr-xr-x 2 0 0 ") && l.ends_with(" sub")),
            "{ls}"
        );

        // Reading and listing: allowed to others by 0644 / 0755.
        for script in [
            format!("cat {}", q(&rw.join("seed.txt"))),
            format!("ls {}", q(&rw.join("sub"))),
            format!("test -r {}", q(&rw.join("seed.txt"))),
        ] {
            succeeds("nobody", &as_nobody(&script), &script);
        }
        // Changing: not allowed, and access(2) agrees.
        for script in [
            format!("test -w {}", q(&rw)),
            format!("test -w {}", q(&rw.join("seed.txt"))),
        ] {
            let out = as_nobody(&script);
            assert!(!out.status.success(), "nobody: `{script}` said writable");
        }
        for script in [
            format!("touch {}", q(&rw.join("new.txt"))),
            format!("mkdir {}", q(&rw.join("newdir"))),
            format!("rm -f {}", q(&rw.join("seed.txt"))),
            format!(
                "mv {} {}",
                q(&rw.join("seed.txt")),
                q(&rw.join("moved.txt"))
            ),
            format!("echo more >> {}", q(&rw.join("seed.txt"))),
            format!("rm -f {}", q(&rw.join("sub/inner.txt"))),
        ] {
            fails_with("nobody", &as_nobody(&script), &script, "Permission denied");
        }
        assert_eq!(site.object("seed.txt").as_deref(), Some(&b"seed\n"[..]));
        assert_eq!(
            site.object("sub/inner.txt").as_deref(),
            Some(&b"inner\n"[..])
        );
        assert_eq!(site.object("new.txt"), None);

        // Root, the owner, as before.
        for script in [
            format!("test -w {}", q(&rw)),
            format!("echo root > {}", q(&rw.join("root.txt"))),
            format!(
                "mv {} {}",
                q(&rw.join("root.txt")),
                q(&rw.join("root2.txt"))
            ),
            format!("rm {}", q(&rw.join("root2.txt"))),
        ] {
            succeeds("root", &as_root(&script), &script);
        }
        assert_eq!(site.object("root2.txt"), None);
    }

    // The mount owned by nobody: it may change what the account may change.
    let config = site.config(&format!("mount_uid = {NOBODY}\nmount_gid = {NOBODY}"));
    let _daemon = mount_all(&site, &config);
    let ls = as_root(&format!("ls -ln {}", q(&rw)));
    let ls = String::from_utf8_lossy(&ls.stdout).into_owned();
    assert!(
        ls.lines().any(
            |l| l.starts_with(&format!("-rw-r--r-- 1 {NOBODY} {NOBODY} "))
                && l.ends_with(" seed.txt")
        ),
        "{ls}"
    );
    for script in [
        format!("test -w {}", q(&rw)),
        format!("echo nobody > {}", q(&rw.join("new.txt"))),
        format!("mkdir {}", q(&rw.join("newdir"))),
        format!(
            "mv {} {}",
            q(&rw.join("new.txt")),
            q(&rw.join("newdir/moved.txt"))
        ),
        format!("rm {}", q(&rw.join("seed.txt"))),
    ] {
        succeeds("nobody (owner)", &as_nobody(&script), &script);
    }
    assert_eq!(
        site.object("newdir/moved.txt").as_deref(),
        Some(&b"nobody\n"[..])
    );
    assert_eq!(site.object("seed.txt"), None);

    // The account's policy on top: R is a read-only file system, W may not read; access(2) agrees.
    let r = site.path("r");
    let out = as_nobody(&format!("test -w {}", q(&r)));
    assert!(!out.status.success(), "an R account's mount said writable");
    let script = format!("touch {}", q(&r.join("x.txt")));
    fails_with(
        "nobody",
        &as_nobody(&script),
        &script,
        "Read-only file system",
    );
    succeeds(
        "nobody",
        &as_nobody(&format!("cat {}", q(&r.join("sub/inner.txt")))),
        "cat",
    );

    let w = site.path("w");
    let out = as_nobody(&format!("test -r {}", q(&w.join("sub/inner.txt"))));
    assert!(!out.status.success(), "a W account's file said readable");
    let script = format!("cat {}", q(&w.join("sub/inner.txt")));
    fails_with("nobody", &as_nobody(&script), &script, "Permission denied");
    let script = format!("echo w > {}", q(&w.join("from-w.txt")));
    succeeds("nobody", &as_nobody(&script), &script);
    assert_eq!(site.object("from-w.txt").as_deref(), Some(&b"w\n"[..]));
}

/// SIGHUP reloads the config: the mounts keep working through it; an account the reload adds is mounted at once
/// (and logs in); one it removes cannot log in, and stays mounted until the daemon stops, which unmounts every one.
#[test]
fn sighup_mounts_added_accounts_and_keeps_the_others() {
    if !fuse_available() {
        return;
    }
    let site = Site::new();
    let mut daemon = Daemon::start("serve", &site.config(""));
    daemon.wait_for_log("FTP listening");
    let rw = site.path("rw");
    std::fs::write(rw.join("before.txt"), b"before\n").expect("write through the mount");

    site.config_of(&[("rw", "RW"), ("r", "R"), ("new", "RW")], "");
    daemon.signal(libc::SIGHUP);
    daemon.wait_for_log("config reloaded: 3 account(s); added: new; removed: w");
    daemon.wait_for_log("the mounts of removed users (w)");
    assert!(daemon.is_running(), "SIGHUP stopped the daemon");

    let new = site.path("new");
    assert_eq!(mount_type(&new).as_deref(), Some("fuse.cosftpd"));
    std::fs::write(new.join("via-new.txt"), b"new\n").expect("write through the new mount");
    assert_eq!(site.object("via-new.txt").as_deref(), Some(&b"new\n"[..]));
    assert_eq!(mount_type(&site.path("w")).as_deref(), Some("fuse.cosftpd"));

    let addr = SocketAddr::from(([127, 0, 0, 1], site.port));
    let mut ctl = ftpd::Ctl::connect(addr);
    ctl.login("new", "secret-password-new");
    ctl.expect("SIZE before.txt", 213);
    let mut gone = ftpd::Ctl::connect(addr);
    gone.expect("USER w", 331);
    gone.expect("PASS secret-password-2", 530);
    drop((ctl, gone));
    std::fs::write(rw.join("after.txt"), b"after\n").expect("the mount still works");
    assert_eq!(site.object("after.txt").as_deref(), Some(&b"after\n"[..]));

    let status = daemon.terminate();
    assert!(status.success(), "{status}\n{}", daemon.log());
    for home in site.homes().into_iter().chain([new]) {
        assert_eq!(mount_type(&home), None, "{} left mounted", home.display());
    }
}

/// `kill -9` leaves dead mounts (ENOTCONN); the next start clears them — they are cosftpd's own, as the mount
/// table's type `fuse.cosftpd` says — logs that it did, and mounts.
#[test]
fn a_start_after_kill_9_clears_its_own_stale_mounts() {
    if !fuse_available() {
        return;
    }
    let site = Site::new();
    let config = site.config("");
    let mut daemon = mount_all(&site, &config);
    let rw = site.path("rw");
    std::fs::write(rw.join("kept.txt"), b"kept\n").expect("write through the mount");
    daemon.signal(libc::SIGKILL);
    daemon.wait();
    let stale = std::fs::metadata(&rw).expect_err("a dead mount");
    assert_eq!(stale.raw_os_error(), Some(libc::ENOTCONN), "{stale}");

    let again = mount_all(&site, &config);
    assert_eq!(mount_type(&rw).as_deref(), Some("fuse.cosftpd"));
    // Logged after every mount, so the lines about clearing are in by then.
    again.wait_for_log("ready: mounted 3 account(s)");
    let log = again.log();
    assert!(
        log.lines()
            .filter(|l| l.contains("clearing a stale cosftpd mount"))
            .count()
            == 3,
        "{log}"
    );
    assert_eq!(std::fs::read(rw.join("kept.txt")).expect("read"), b"kept\n");
    std::fs::write(rw.join("new.txt"), b"new\n").expect("write");
    assert_eq!(site.object("new.txt").as_deref(), Some(&b"new\n"[..]));
}

/// Another program's mount on a home_dir (here a tmpfs) is neither mounted over nor unmounted: `mount` and
/// `serve` stop with a message that names the directory and what is mounted there.
#[test]
fn another_programs_mount_on_a_home_dir_stops_the_start_and_is_left_alone() {
    if !fuse_available() {
        return;
    }
    let site = Site::new();
    let config = site.config("");
    let rw = site.path("rw");
    std::fs::create_dir(&rw).expect("home");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "cosftpd-test-tmpfs"])
        .arg(&rw)
        .status()
        .expect("mount");
    assert!(mounted.success(), "mount -t tmpfs");
    std::fs::write(rw.join("theirs.txt"), b"theirs\n").expect("write to tmpfs");

    for mode in ["mount", "serve"] {
        let mut daemon = Daemon::start(mode, &config);
        let status = daemon.wait_for_exit();
        let stderr = daemon.log();
        assert!(!status.success(), "{mode} started:\n{stderr}");
        let wanted = format!(
            "{} has a tmpfs filesystem (cosftpd-test-tmpfs) mounted on it",
            rw.display()
        );
        assert!(stderr.contains(&wanted), "{mode}:\n{stderr}");
        assert_eq!(
            mount_type(&rw).as_deref(),
            Some("tmpfs"),
            "{mode} touched the tmpfs"
        );
        assert_eq!(
            std::fs::read(rw.join("theirs.txt")).expect("read"),
            b"theirs\n"
        );
        for home in [site.path("r"), site.path("w")] {
            assert_eq!(
                mount_type(&home),
                None,
                "{mode} left {} mounted",
                home.display()
            );
        }
    }
}

/// A home_dir with files in it is not mounted over (the files would be hidden) unless `mount_nonempty = true`.
#[test]
fn a_home_dir_with_files_is_mounted_over_only_with_mount_nonempty() {
    if !fuse_available() {
        return;
    }
    let site = Site::new();
    site.put("in-bucket.txt", b"bucket\n");
    let rw = site.path("rw");
    std::fs::create_dir(&rw).expect("home");
    std::fs::write(rw.join("local.txt"), b"local\n").expect("local file");

    let mut daemon = Daemon::start("mount", &site.config(""));
    let status = daemon.wait_for_exit();
    let stderr = daemon.log();
    assert!(!status.success(), "mounted over files:\n{stderr}");
    let wanted = format!("{} is not empty", rw.display());
    assert!(
        stderr.contains(&wanted) && stderr.contains("mount_nonempty"),
        "{stderr}"
    );
    assert_eq!(mount_type(&rw), None);
    assert_eq!(
        std::fs::read(rw.join("local.txt")).expect("read"),
        b"local\n"
    );

    drop(daemon);
    let mut daemon = mount_all(&site, &site.config("mount_nonempty = true"));
    assert_eq!(
        std::fs::read(rw.join("in-bucket.txt")).expect("read"),
        b"bucket\n"
    );
    assert!(!rw.join("local.txt").exists(), "hidden while mounted");
    assert!(daemon.terminate().success());
    assert_eq!(
        std::fs::read(rw.join("local.txt")).expect("read"),
        b"local\n"
    );
}

/// `mknod` of a regular file creates an empty one through the core; a FIFO and a symbolic link are stored (as
/// s3fs stores them); hard links are EPERM; ioctls are ENOTTY. None of it writes a "[Not Implemented]" line to the log at the default level.
#[test]
fn mknod_links_and_ioctls_are_answered_quietly() {
    if !fuse_available() {
        return;
    }
    let site = Site::new();
    site.put("f.txt", b"data\n");
    let mut daemon = mount_all(&site, &site.config(""));
    let rw = site.path("rw");

    // A FIFO is stored as s3fs stores one (an empty object whose mode says FIFO); the kernel makes it a pipe.
    let script = format!("mknod {0} p && test -p {0}", q(&rw.join("fifo")));
    succeeds("root", &as_root(&script), &script);
    assert_eq!(site.object("fifo").as_deref(), Some(&b""[..]));
    // Symbolic links are stored (an object whose body is the target, as s3fs stores them).
    let script = format!("ln -s f.txt {}", q(&rw.join("link")));
    succeeds("root", &as_root(&script), &script);
    assert_eq!(
        std::fs::read_link(rw.join("link")).expect("readlink"),
        Path::new("f.txt")
    );
    assert_eq!(site.object("link").as_deref(), Some(&b"f.txt"[..]));
    let script = format!("ln {} {}", q(&rw.join("f.txt")), q(&rw.join("hard")));
    fails_with(
        "root",
        &as_root(&script),
        &script,
        "Operation not permitted",
    );

    let created = rw.join("node.txt");
    let script = format!(
        "python3 -c 'import os, stat, sys; os.mknod(sys.argv[1], stat.S_IFREG | 0o644)' {}",
        q(&created)
    );
    succeeds("root", &as_root(&script), &script);
    assert_eq!(
        site.object("node.txt").as_deref(),
        Some(&b""[..]),
        "an empty object"
    );
    assert_eq!(std::fs::metadata(&created).expect("stat").len(), 0);

    // FS_IOC_GETFLAGS (lsattr) and a terminal ioctl on a regular file.
    let script = format!(
        "python3 -c 'import fcntl, sys, termios\n\
         f = open(sys.argv[1], \"rb\")\n\
         for request in (0x80086601, termios.TIOCGWINSZ):\n\
         \x20   try:\n\
         \x20       fcntl.ioctl(f, request, bytes(8))\n\
         \x20   except OSError as e:\n\
         \x20       print(e.errno)\n' {}",
        q(&rw.join("f.txt"))
    );
    let out = as_root(&script);
    succeeds("root", &out, &script);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        [libc::ENOTTY.to_string(), libc::ENOTTY.to_string()]
    );
    // `cp` asks for SEEK_DATA / SEEK_HOLE and may try copy_file_range.
    let script = format!("cp {} {}", q(&rw.join("f.txt")), q(&rw.join("copy.txt")));
    succeeds("root", &as_root(&script), &script);
    assert_eq!(site.object("copy.txt").as_deref(), Some(&b"data\n"[..]));

    assert!(daemon.terminate().success());
    daemon.wait_for_log("<end of stderr>");
    let log = daemon.log();
    assert!(!log.contains("Not Implemented"), "{log}");
}
