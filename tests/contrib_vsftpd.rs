//! `contrib/vsftpd/`: Debian's vsftpd serving cosftpd mounts, set up exactly as its README says — `cosftpd mount`,
//! `gen_vsftpd.py`, the PAM service (pam_pwdfile) in /etc/pam.d, `/var/run/vsftpd/empty` — and driven with curl:
//! upload, download, listing, overwrite (vsftpd opens without `O_TRUNC` and truncates to 0), append, mkdir,
//! delete, and what R and no-delete accounts are refused. The objects are checked in the store (`storage_type =
//! fs`, so the store is a directory).
//!
//! Needs root, /dev/fuse, /usr/sbin/vsftpd, pam_pwdfile, python3, openssl and curl (`scripts/test.sh` installs
//! them): without them the test says "skipping" and passes, unless `COSFTPD_REQUIRE_FUSE=1` makes that a failure.

mod common;

use common::pattern;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cosftpd");
const VSFTPD: &str = "/usr/sbin/vsftpd";
const MIB: usize = 1024 * 1024;

fn generator() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/vsftpd/gen_vsftpd.py")
}

/// Why this host cannot run the setup, if it cannot.
fn missing_piece() -> Option<String> {
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (vsftpd and the mounts need it)".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse is missing".into());
    }
    if !Path::new(VSFTPD).exists() {
        return Some(format!("{VSFTPD} is missing (apt-get install vsftpd)"));
    }
    let pam_dirs = [
        "/lib/x86_64-linux-gnu/security",
        "/usr/lib/x86_64-linux-gnu/security",
        "/lib/aarch64-linux-gnu/security",
        "/usr/lib/aarch64-linux-gnu/security",
        "/lib/security",
        "/usr/lib/security",
        "/lib64/security",
    ];
    if !pam_dirs
        .iter()
        .any(|d| Path::new(d).join("pam_pwdfile.so").exists())
    {
        return Some("pam_pwdfile.so is missing (apt-get install libpam-pwdfile)".into());
    }
    for tool in ["python3", "openssl", "curl"] {
        if !runs(tool, &["--version"]) && !runs(tool, &["version"]) {
            return Some(format!("{tool} is missing"));
        }
    }
    None
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn available() -> bool {
    match missing_piece() {
        None => true,
        Some(why) => {
            assert!(
                !common::require_fuse(),
                "COSFTPD_REQUIRE_FUSE=1 but the vsftpd setup cannot run: {why}"
            );
            eprintln!("skipping: {why}");
            false
        }
    }
}

/// The system user vsftpd maps virtual users to: Debian's `ftp` (the vsftpd package makes it), else `nobody`.
fn guest_user() -> &'static str {
    if runs("getent", &["passwd", "ftp"]) {
        "ftp"
    } else {
        "nobody"
    }
}

/// A child process killed (SIGTERM, then SIGKILL) and reaped when dropped. Its stderr goes to a file (a pipe
/// nobody reads would block a chatty daemon), shown when it dies early.
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &'static str, log: PathBuf, command: &mut Command) -> Process {
        let file = std::fs::File::create(&log).expect("process log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Process { name, child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the process's stderr if it has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("{} exited early ({status}):\n{}", self.name, self.log());
        }
    }

    /// SIGTERM and wait (SIGKILL after 20 s).
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        // SAFETY: plain kill(2) of our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    eprintln!("{} did not stop on SIGTERM; killing it", self.name);
                    let _ = self.child.kill();
                    return self.child.wait().ok();
                }
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A file in /etc/pam.d for the duration of the test.
struct PamService(PathBuf);

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn is_mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let path = path.display().to_string();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(path.as_str()))
}

/// Polls `done` until it holds (readiness, not a fixed sleep); panics with `what` after `limit`.
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until an FTP server on `port` greets with 220.
fn wait_for_banner(port: u16, server: &mut Process) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        server.assert_running();
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut line = String::new();
            if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("220") {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "vsftpd did not answer on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("run curl")
}

fn curl_ok(args: &[&str]) -> Vec<u8> {
    let out = curl(args);
    assert!(
        out.status.success(),
        "curl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// curl must fail; returns its stderr (which has the FTP reply code).
fn curl_fails(args: &[&str]) -> String {
    let out = curl(args);
    assert!(!out.status.success(), "curl {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Percent-encodes a path for an ftp:// URL (keeps `/`).
fn url_path(path: &str) -> String {
    common::encode_key(path)
}

struct Setup {
    dir: tempfile::TempDir,
    port: u16,
}

impl Setup {
    fn store(&self, key: &str) -> PathBuf {
        self.dir.path().join("bucket").join(key)
    }

    fn url(&self, user: &str, password: &str, path: &str) -> String {
        format!(
            "ftp://{user}:{password}@127.0.0.1:{}/{}",
            self.port,
            url_path(path)
        )
    }

    fn local(&self, name: &str, data: &[u8]) -> String {
        let path = self.dir.path().join("local").join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("local dir");
        std::fs::write(&path, data).expect("write local file");
        path.display().to_string()
    }

    /// vsftpd answers 226 before it closes the file, and the mount commits at that close: wait for the store.
    fn wait_for_object(&self, key: &str, data: &[u8]) {
        let path = self.store(key);
        wait_until(
            &format!("{key} to hold {} bytes in the store", data.len()),
            Duration::from_secs(20),
            || std::fs::read(&path).is_ok_and(|b| b == data),
        );
    }
}

/// The uid and gid of a user, from `id`.
fn ids_of(user: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, user]).output().expect("id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("id {flag} {user}"))
    };
    (id("-u"), id("-g"))
}

fn config_text(dir: &Path, passive: u16) -> String {
    // The kernel checks vsftpd's guest user against the mounts' owner and mode: the mounts are its own.
    let (uid, gid) = ids_of(guest_user());
    format!(
        r#"
[COS_ACCOUNT_0]
storage_type = fs
storage_root = {dir}/bucket
home_dir = {dir}/home0
ftp_login_user_name = alice
ftp_login_user_password = alice-pass-1   # plaintext: the generator hashes it
authority = RW
delete_enable = true

[COS_ACCOUNT_1]
storage_type = fs
storage_root = {dir}/bucket
home_dir = {dir}/home1
ftp_login_user_name = bob
ftp_login_user_password = bob-pass-2
authority = R
delete_enable = true

[COS_ACCOUNT_2]
storage_type = fs
storage_root = {dir}/bucket
home_dir = {dir}/home2
ftp_login_user_name = carol
ftp_login_user_password = carol-pass-3
authority = RW
delete_enable = false

[NETWORK]
listen_address = 127.0.0.1
listen_port = {unused}
passive_port = {passive},{passive_end}

[OPTIONAL]
create_home_dir = true
mount_enable = true
allow_other = true
mount_uid = {uid}
mount_gid = {gid}
# Not world-readable: vsftpd must still let guests download (anon_world_readable_only=NO).
file_mode = 0640
log_level = info
"#,
        dir = dir.display(),
        unused = common::free_port(),
        passive_end = passive + 40,
    )
}

/// A passive range of 41 ports starting at a port that was free (vsftpd tries another port of the range when
/// one is taken).
fn passive_base() -> u16 {
    loop {
        let p = common::free_port();
        if p < 65000 {
            return p;
        }
    }
}

#[test]
fn vsftpd_serves_cosftpd_mounts_as_the_readme_says() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config = common::write_config(dir.path(), &config_text(dir.path(), passive_base()));
    let homes: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("home{i}")))
        .collect();

    // 1. cosftpd mount -c … (every account at its home_dir, allow_other).
    let mut mount = Process::spawn(
        "cosftpd mount",
        dir.path().join("cosftpd.log"),
        Command::new(BIN).args(["mount", "-c"]).arg(&config),
    );
    wait_until("the three mounts", Duration::from_secs(20), || {
        mount.assert_running();
        homes.iter().all(|h| is_mounted(h))
    });

    // 2. gen_vsftpd.py, run the way the README runs it.
    let port = common::free_port();
    let out_dir = dir.path().join("vsftpd");
    let service = format!("cosftpd-test-{}", std::process::id());
    let generated = Command::new(generator())
        .arg(&config)
        .arg(&out_dir)
        .args(["--listen-port", &port.to_string()])
        .args(["--listen-address", "127.0.0.1"])
        .args(["--pam-service", &service])
        .args(["--guest-user", guest_user()])
        .output()
        .expect("run gen_vsftpd.py");
    assert!(
        generated.status.success(),
        "gen_vsftpd.py: {}",
        String::from_utf8_lossy(&generated.stderr)
    );

    // 3. The PAM service into /etc/pam.d (removed at the end), the secure chroot dir.
    let pam = PamService(Path::new("/etc/pam.d").join(&service));
    std::fs::copy(out_dir.join("pam.d").join(&service), &pam.0).expect("install the PAM service");
    std::fs::create_dir_all("/var/run/vsftpd/empty").expect("/var/run/vsftpd/empty");

    // 4. vsftpd in the foreground (background=NO), its log kept with the test.
    let log = dir.path().join("vsftpd.log");
    let mut vsftpd = Process::spawn(
        "vsftpd",
        dir.path().join("vsftpd.stderr"),
        Command::new(VSFTPD)
            .arg(out_dir.join("vsftpd.conf"))
            .arg(format!("-ovsftpd_log_file={}", log.display())),
    );
    wait_for_banner(port, &mut vsftpd);
    let setup = Setup { dir, port };
    let alice = |path: &str| setup.url("alice", "alice-pass-1", path);
    let bob = |path: &str| setup.url("bob", "bob-pass-2", path);
    let carol = |path: &str| setup.url("carol", "carol-pass-3", path);

    // Upload: a few MiB, and a name with Chinese characters and a space.
    let big = pattern(3 * MIB + 4321, 1);
    curl_ok(&["-T", &setup.local("big.bin", &big), &alice("big.bin")]);
    setup.wait_for_object("big.bin", &big);
    let chinese = "中文 名字.txt";
    curl_ok(&[
        "-T",
        &setup.local("cn.txt", "你好\n".as_bytes()),
        &alice(chinese),
    ]);
    setup.wait_for_object(chinese, "你好\n".as_bytes());

    // Download.
    assert!(curl_ok(&[&alice("big.bin")]) == big, "download differs");
    assert_eq!(curl_ok(&[&alice(chinese)]), "你好\n".as_bytes());

    // Listing: LIST and NLST.
    let list = String::from_utf8(curl_ok(&[&alice("")])).expect("utf-8 listing");
    let line = list
        .lines()
        .find(|l| l.ends_with(" big.bin"))
        .unwrap_or_else(|| panic!("big.bin not listed:\n{list}"));
    assert!(line.starts_with("-rw-r-----"), "{list}");
    assert!(line.contains(&format!(" {} ", big.len())), "{list}");
    assert!(list.contains(chinese), "{list}");
    let names = String::from_utf8(curl_ok(&["-l", &alice("")])).expect("utf-8 names");
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["big.bin", chinese]);

    // Overwrite an existing file, shorter then longer: vsftpd opens it without O_TRUNC, ftruncate(0)s it and
    // writes from 0. The object holds exactly the new bytes each time.
    curl_ok(&[
        "-T",
        &setup.local("short.txt", b"short\n"),
        &alice("big.bin"),
    ]);
    setup.wait_for_object("big.bin", b"short\n");
    let longer = pattern(MIB + 7, 2);
    curl_ok(&["-T", &setup.local("longer.bin", &longer), &alice("big.bin")]);
    setup.wait_for_object("big.bin", &longer);
    assert!(curl_ok(&[&alice("big.bin")]) == longer);

    // Append (APPE).
    curl_ok(&[
        "-a",
        "-T",
        &setup.local("tail.txt", b"tail\n"),
        &alice("big.bin"),
    ]);
    let mut appended = longer.clone();
    appended.extend_from_slice(b"tail\n");
    setup.wait_for_object("big.bin", &appended);

    // mkdir, upload into it, delete, rmdir.
    curl_ok(&["-Q", "MKD sub dir", &alice("")]);
    assert!(setup.store("sub dir").is_dir(), "MKD made the directory");
    curl_ok(&[
        "-T",
        &setup.local("in.txt", b"inside\n"),
        &alice("sub dir/in.txt"),
    ]);
    setup.wait_for_object("sub dir/in.txt", b"inside\n");
    let refused = curl_fails(&["-Q", "RMD sub dir", &alice("")]);
    assert!(refused.contains("550"), "{refused}");
    curl_ok(&["-Q", "DELE sub dir/in.txt", "-Q", "RMD sub dir", &alice("")]);
    assert!(!setup.store("sub dir").exists());

    // Rename.
    curl_ok(&[
        "-Q",
        &format!("RNFR {chinese}"),
        "-Q",
        "RNTO renamed.txt",
        &alice(""),
    ]);
    assert!(!setup.store(chinese).exists());
    assert_eq!(
        std::fs::read(setup.store("renamed.txt")).expect("renamed"),
        "你好\n".as_bytes()
    );

    // An R account: lists and downloads; every change is refused (vsftpd hides them, the mount is read-only).
    assert!(curl_ok(&[&bob("big.bin")]) == appended);
    assert!(String::from_utf8_lossy(&curl_ok(&[&bob("")])).contains("renamed.txt"));
    let refused = curl_fails(&["-T", &setup.local("x.txt", b"x"), &bob("new.txt")]);
    assert!(refused.contains("550"), "{refused}");
    let refused = curl_fails(&["-T", &setup.local("x.txt", b"x"), &bob("big.bin")]);
    assert!(refused.contains("550"), "{refused}");
    let refused = curl_fails(&["-Q", "DELE renamed.txt", &bob("")]);
    assert!(refused.contains("550"), "{refused}");
    assert!(!setup.store("new.txt").exists());

    // RW with delete_enable = false: new files and appends work; delete, rename onto a file and overwrite are
    // refused by the mount (EPERM). vsftpd treats a failed ftruncate as fatal ("500 OOPS: ftruncate"), so an
    // overwrite ends that session — and changes nothing.
    curl_ok(&["-T", &setup.local("c.txt", b"carol\n"), &carol("carol.txt")]);
    setup.wait_for_object("carol.txt", b"carol\n");
    curl_ok(&[
        "-a",
        "-T",
        &setup.local("c2.txt", b"more\n"),
        &carol("carol.txt"),
    ]);
    setup.wait_for_object("carol.txt", b"carol\nmore\n");
    let refused = curl_fails(&["-Q", "DELE renamed.txt", &carol("")]);
    assert!(refused.contains("550"), "{refused}");
    let refused = curl_fails(&["-Q", "RNFR carol.txt", "-Q", "RNTO renamed.txt", &carol("")]);
    assert!(refused.contains("550"), "{refused}");
    let refused = curl_fails(&[
        "-T",
        &setup.local("o.txt", b"overwritten\n"),
        &carol("renamed.txt"),
    ]);
    assert!(
        refused.contains("500") || refused.contains("55"),
        "{refused}"
    );
    assert_eq!(
        std::fs::read(setup.store("renamed.txt")).expect("kept"),
        "你好\n".as_bytes()
    );
    assert_eq!(
        std::fs::read(setup.store("carol.txt")).expect("kept"),
        b"carol\nmore\n"
    );

    // Delete.
    curl_ok(&["-Q", "DELE big.bin", &alice("")]);
    assert!(!setup.store("big.bin").exists());

    // vsftpd's own log saw the transfers.
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        log.contains("OK UPLOAD") && log.contains("OK DOWNLOAD"),
        "{log}"
    );

    // Stop vsftpd first (its sessions live in the mounts), then the mounts.
    vsftpd.stop();
    let status = mount.stop().expect("cosftpd mount status");
    assert!(
        status.success(),
        "cosftpd mount exited with {status}:\n{}",
        mount.log()
    );
    assert!(!mount.log().contains("WARN"), "{}", mount.log());
    assert!(homes.iter().all(|h| !is_mounted(h)), "mounts left behind");
    drop(pam);
}

/// The generator alone (no root needed): what it writes for each kind of account.
#[test]
fn gen_vsftpd_writes_users_passwords_and_pam() {
    if !runs("python3", &["--version"]) || !runs("openssl", &["version"]) {
        assert!(
            !common::require_fuse(),
            "COSFTPD_REQUIRE_FUSE=1 but python3 or openssl is missing"
        );
        eprintln!("skipping: python3 or openssl is missing");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // Saved by a Windows editor: a byte-order mark, CRLF line ends; a section without a number, a hash given (in
    // double quotes, which are not part of it).
    let text = format!(
        "\u{feff}[COS_ACCOUNT]\r\n\
         cos_bucket = b-1250000000\r\n\
         home_dir = {d}/h0\r\n\
         ftp_login_user_name = reader\r\n\
         ftp_login_user_password = pw#1  ; a comment\r\n\
         authority = r\r\n\
         \r\n\
         [COS_ACCOUNT_1]\r\n\
         home_dir = {d}/h1\r\n\
         ftp_login_user_name = writer\r\n\
         ftp_login_user_password = \"$6$salt$hash\"  ; quoted, as cosftpd allows\r\n\
         authority = W\r\n\
         \r\n\
         [NETWORK]\r\n\
         passive_port = 50000, 50100\r\n\
         masquerade_address = 203.0.113.7\r\n\
         \r\n\
         [OPTIONAL]\r\n\
         allow_other = off\r\n",
        d = dir.path().display()
    );
    let config = common::write_config(dir.path(), &text);
    let out_dir = dir.path().join("out");
    let out = Command::new(generator())
        .arg(&config)
        .arg(&out_dir)
        .args(["--guest-user", guest_user()])
        .output()
        .expect("run gen_vsftpd.py");
    assert!(
        out.status.success(),
        "gen_vsftpd.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("allow_other = false"),
        "a mount without allow_other is unreachable for vsftpd's guest user: warned\n{stderr}"
    );
    let (uid, _) = ids_of(guest_user());
    assert!(
        stderr.contains(&format!("set mount_uid = {uid}")),
        "mounts not owned by vsftpd's guest user cannot be written by it: warned\n{stderr}"
    );
    let read = |rel: &str| std::fs::read_to_string(out_dir.join(rel)).expect(rel);

    let conf = read("vsftpd.conf");
    let guest = format!("guest_username={}", guest_user());
    for line in [
        "listen_port=21",
        "background=NO",
        "guest_enable=YES",
        guest.as_str(),
        "pam_service_name=vsftpd-cosftpd",
        "pasv_min_port=50000",
        "pasv_max_port=50100",
        "pasv_address=203.0.113.7",
        // The mount decides who may read what; vsftpd's "world-readable only" rule for guests would refuse
        // downloads whenever file_mode is not world-readable.
        "anon_world_readable_only=NO",
    ] {
        assert!(conf.lines().any(|l| l == line), "{line} not in:\n{conf}");
    }

    let reader = read("users/reader");
    assert!(
        reader.contains(&format!("local_root={}/h0\n", dir.path().display())),
        "{reader}"
    );
    assert!(reader.contains("write_enable=NO\n"), "{reader}");
    assert!(reader.contains("download_enable=YES\n") && reader.contains("dirlist_enable=YES\n"));
    let writer = read("users/writer");
    assert!(writer.contains("write_enable=YES\n"), "{writer}");
    assert!(writer.contains("download_enable=NO\n") && writer.contains("dirlist_enable=NO\n"));

    let passwd = read("passwd");
    let lines: Vec<&str> = passwd.lines().collect();
    assert_eq!(lines.len(), 2, "{passwd}");
    assert!(lines[0].starts_with("reader:$6$"), "{passwd}");
    assert_ne!(lines[0], "reader:pw#1", "plaintext is hashed");
    assert_eq!(lines[1], "writer:$6$salt$hash", "a hash is kept as it is");
    // The plaintext password is the part before the inline comment: `pw#1` (a # without a space before it).
    let salt = lines[0]
        .trim_start_matches("reader:")
        .split('$')
        .nth(2)
        .expect("salt");
    let again = Command::new("openssl")
        .args(["passwd", "-6", "-salt", salt, "pw#1"])
        .output()
        .expect("openssl");
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        lines[0].trim_start_matches("reader:")
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(out_dir.join("passwd"))
            .expect("passwd")
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "the password file is private");

    let pam = read("pam.d/vsftpd-cosftpd");
    assert!(
        pam.contains(&format!(
            "pam_pwdfile.so pwdfile={}/passwd",
            out_dir.display()
        )),
        "{pam}"
    );
}
