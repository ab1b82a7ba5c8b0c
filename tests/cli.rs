//! The binary as a user runs it: `check-config`, and `serve` / `mount` end to end (a real FUSE mount, a real FTP
//! client, SIGTERM for a clean stop).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cosftpd");

fn fuse_available() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory of ours.
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

fn local_config(dir: &Path, port: u16, mount_enable: bool) -> std::path::PathBuf {
    let text = format!(
        r#"
[COS_ACCOUNT_0]
storage_type = fs
storage_root = {root}
home_dir = {dir}/home0     # inline comments are comments
ftp_login_user_name = alice
ftp_login_user_password = secret-password-1
authority = rw
delete_enable = true

[COS_ACCOUNT_1]
storage_type = fs
storage_root = {root}
home_dir = {dir}/home1
ftp_login_user_name = bob
ftp_login_user_password = secret-password-2
authority = R
delete_enable = false

[NETWORK]
listen_address = 127.0.0.1
listen_port = {port}
passive_port = 40000,40100

[OPTIONAL]
create_home_dir = true
mount_enable = {mount_enable}
log_level = debug
log_dir = {dir}/logs
"#,
        root = dir.join("bucket").display(),
        dir = dir.display(),
    );
    common::write_config(dir, &text)
}

/// Stops the daemon with SIGTERM on drop (and waits), so no test leaves a process or a mount behind.
struct Daemon(Child);

impl Daemon {
    fn start(args: &[&str]) -> Daemon {
        let child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cosftpd");
        Daemon(child)
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill takes plain integers; the pid is our own child, not yet reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "cosftpd did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.0.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }

    /// Waits until the daemon logs `needle` (its readiness line) or dies.
    fn wait_for_log(&mut self, needle: &str) {
        let err = self.0.stderr.take().expect("stderr");
        let mut reader = BufReader::new(err);
        let mut line = String::new();
        let mut seen = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).expect("read stderr");
            assert!(n > 0, "cosftpd exited before logging {needle:?}:\n{seen}");
            seen.push_str(&line);
            if line.contains(needle) {
                break;
            }
        }
        // Keep draining so the daemon never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = reader.read_to_string(&mut sink);
        });
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

fn is_mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let path = path.display().to_string();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(path.as_str()))
}

#[test]
fn check_config_reports_every_problem_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[COS_ACCOUNT_0]
cos_secretid = AKIDsecretvalue
cos_secretkey = the-secret-key
cos_bucket = examplebucket-1250000000
cos_region = ap-guangzhou
home_dir = /nonexistent/home0
ftp_login_user_name = user0
ftp_login_user_password = hunter2
authority = RWX
delete_enable = maybe

[NETWORK]
listen_port = 99999
"#;
    let path = common::write_config(dir.path(), text);
    let out = Command::new(BIN)
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in ["authority", "delete_enable", "listen_port", "home_dir"] {
        assert!(
            stderr.contains(expected),
            "{expected} not reported:\n{stderr}"
        );
    }
    for secret in ["AKIDsecretvalue", "the-secret-key", "hunter2"] {
        assert!(!stderr.contains(secret), "secret leaked:\n{stderr}");
    }
}

#[test]
fn check_config_prints_the_setup() {
    let dir = tempfile::tempdir().unwrap();
    let path = local_config(dir.path(), 2121, true);
    let out = Command::new(BIN)
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("user alice") && stdout.contains("RW"),
        "{stdout}"
    );
    assert!(
        stdout.contains("user bob") && stdout.contains("delete_enable=false"),
        "{stdout}"
    );
    assert!(stdout.contains("part size"), "{stdout}");
    assert!(!stdout.contains("secret-password"), "{stdout}");
}

#[test]
fn the_example_config_parses_and_names_its_placeholder_home_dirs() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/vsftpd.conf.example");
    let out = Command::new(BIN)
        .args(["check-config", "-c"])
        .arg(&example)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return; // the placeholder home dirs happen to exist here
    }
    assert!(
        stderr
            .lines()
            .skip(1)
            .all(|l| l.contains("home_dir") || l.contains("warning")),
        "{stderr}"
    );
}

#[test]
fn serve_mounts_and_serves_ftp_then_stops_cleanly_on_sigterm() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let config = local_config(dir.path(), port, true);
    let mut daemon = Daemon::start(&["serve", "-c", config.to_str().unwrap()]);
    daemon.wait_for_log("FTP listening");
    let home0 = dir.path().join("home0");
    let home1 = dir.path().join("home1");
    assert!(is_mounted(&home0) && is_mounted(&home1));

    // A file written through the mount is there over FTP, and the other way round.
    std::fs::write(home0.join("from-mount.txt"), b"mount bytes").unwrap();
    let url = format!("ftp://alice:secret-password-1@127.0.0.1:{port}/");
    let upload = dir.path().join("up.txt");
    std::fs::write(&upload, b"ftp bytes").unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-T"])
        .arg(&upload)
        .arg(format!("{url}from-ftp.txt"))
        .output();
    let Ok(out) = out else {
        assert!(!common::require_s3(), "curl is missing");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-l"])
        .arg(&url)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(
        names.contains("from-mount.txt") && names.contains("from-ftp.txt"),
        "{names}"
    );
    assert_eq!(
        std::fs::read(home1.join("from-ftp.txt")).unwrap(),
        b"ftp bytes"
    );
    // The R account's mount is read-only, the same policy as its FTP login.
    let denied = std::fs::write(home1.join("nope"), b"x").unwrap_err();
    assert_eq!(denied.raw_os_error(), Some(libc::EROFS));

    let status = daemon.terminate();
    assert!(
        status.success(),
        "exit status {status}: {}",
        daemon.stderr()
    );
    assert!(
        !is_mounted(&home0) && !is_mounted(&home1),
        "mounts left behind"
    );
    // The log file is written (appended, rotated daily) and holds no password.
    let logs: String = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    assert!(logs.contains("login"), "{logs}");
    assert!(!logs.contains("secret-password"), "password in the log");
}

#[test]
fn mount_only_serves_no_ftp() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let config = local_config(dir.path(), port, true);
    let mut daemon = Daemon::start(&["mount", "-c", config.to_str().unwrap()]);
    daemon.wait_for_log("mounted");
    let home0 = dir.path().join("home0");
    // Both mounts come up before the daemon waits for signals; poll the mount table (readiness, not timing).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(is_mounted(&home0) && is_mounted(&dir.path().join("home1"))) {
        assert!(Instant::now() < deadline, "mounts did not appear");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(home0.join("a.txt"), b"a").unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("bucket/a.txt")).unwrap(),
        b"a"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "mount must not listen for FTP"
    );
    assert!(daemon.terminate().success());
    assert!(!is_mounted(&home0));
}

#[test]
fn serve_refuses_mount_enable_false_for_mount_and_reports_bad_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = local_config(dir.path(), common::free_port(), false);
    let out = Command::new(BIN)
        .args(["mount", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mount_enable"));
}
