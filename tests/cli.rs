//! The binary as a user runs it: `check-config`, `passwd`, `--version`, where the config is looked for, and
//! `serve` / `mount` end to end (a real FUSE mount, a real FTP client, systemd notifications, SIGTERM for a clean
//! stop).

mod common;
mod ftpd;

use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cosftpd::config::Secret;
use cosftpd::ftp::auth::verify_password;

use common::daemon::{Daemon, BIN};

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

/// Store errors are retried and reported, not bugs: with RUST_BACKTRACE=1 in the daemon's environment their log
/// lines carry no backtrace (each was 5–8 KB, and symbolising the first cost ≈138 MiB of RSS).
#[test]
fn store_errors_log_no_backtrace_under_rust_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on the port a listener just gave back: every request is refused, retried, reported.
    let refused = common::free_port();
    let path = config_with(dir.path(), "", "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "storage_type = fs\n",
            &format!(
                "storage_type = s3\ncos_endpoint = http://127.0.0.1:{refused}\ncos_bucket = b\n\
                 cos_secretid = k\ncos_secretkey = s\n"
            ),
        )
        .replace(
            &format!("storage_root = {}/bucket\n", dir.path().display()),
            "",
        );
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "-c"])
        .arg(&path)
        .env("RUST_BACKTRACE", "full")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the start-up check must fail: {stderr}"
    );
    assert!(
        stderr.contains("127.0.0.1") || stderr.contains("store"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Backtrace")
            && !stderr.contains("stack backtrace")
            && !stderr.contains("  0: "),
        "{stderr}"
    );
}

fn check_config(path: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(["check-config", "-c"])
        .arg(path)
        .output()
        .expect("run cosftpd check-config")
}

/// A complete local config (fs store, no cloud) with `extra` appended: `extra` may open new sections.
fn config_with(dir: &Path, account_extra: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        "[COS_ACCOUNT_0]\n\
         storage_type = fs\n\
         storage_root = {dir}/bucket\n\
         home_dir = {dir}/home0\n\
         ftp_login_user_name = alice\n\
         ftp_login_user_password = secret-password-1\n\
         authority = rw\n\
         {account_extra}\n\
         [OPTIONAL]\n\
         create_home_dir = true\n\
         mount_enable = false\n\
         {extra}\n",
        dir = dir.display(),
    );
    common::write_config(dir, &text)
}

#[test]
fn check_config_refuses_misspelt_sections_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_with(
        dir.path(),
        "delete_enabel = false",
        &format!(
            "[COS_ACOUNT_1]\n\
             storage_type = fs\n\
             storage_root = {dir}/bucket\n\
             home_dir = {dir}/home1\n\
             ftp_login_user_name = bob\n\
             ftp_login_user_password = secret-password-2\n\
             authority = r\n\
             [network]\n\
             listen_port = 2100\n",
            dir = dir.path().display()
        ),
    );
    let out = check_config(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted:\n{stderr}");
    for expected in [
        "[COS_ACCOUNT_0] delete_enabel: unknown key (did you mean delete_enable?)",
        "[COS_ACOUNT_1] unknown section (did you mean [COS_ACCOUNT_1]?)",
        "[network] unknown section (section names are case-sensitive: did you mean [NETWORK]?)",
    ] {
        assert!(
            stderr.lines().any(|l| l.trim() == expected),
            "`{expected}` not in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("secret-password"), "{stderr}");
}

#[test]
fn check_config_shows_the_cluster_but_never_the_redis_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_with(
        dir.path(),
        "",
        "[NETWORK]\nproxy_protocol_from = 10.0.0.5, 10.1.0.0/16\n\
         [CLUSTER]\nredis_url = redis://:hunter2@10.0.0.9:6380/1\nnode_name = ftp-7\nlease_time = 9s\n",
    );
    let out = check_config(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("PROXY protocol header required from: 10.0.0.5/32, 10.1.0.0/16"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cluster: node ftp-7") && stdout.contains("Redis at 10.0.0.9:6380"),
        "{stdout}"
    );
    assert!(stdout.contains("lease time 9 s"), "{stdout}");
    assert!(!stdout.contains("hunter2"), "{stdout}");

    // A wrong URL is refused without showing it.
    let path = config_with(dir.path(), "", "[CLUSTER]\nredis_url = redis//:hunter2@x\n");
    let out = check_config(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("[CLUSTER] redis_url: invalid value"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn check_config_resolves_masquerade_address() {
    let dir = tempfile::tempdir().unwrap();
    // `.invalid` never resolves (RFC 6761), and is answered locally.
    let path = config_with(
        dir.path(),
        "",
        "[NETWORK]\nmasquerade_address = ftp.cosftpd.invalid\n",
    );
    let out = check_config(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted:\n{stderr}");
    assert!(
        stderr.contains("[NETWORK] masquerade_address: ftp.cosftpd.invalid does not resolve"),
        "{stderr}"
    );

    for good in ["127.0.0.1", "localhost"] {
        let path = config_with(
            dir.path(),
            "",
            &format!("[NETWORK]\nmasquerade_address = {good}\n"),
        );
        let out = check_config(&path);
        assert!(
            out.status.success(),
            "{good}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn check_config_takes_the_original_placeholder_as_unset_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_with(
        dir.path(),
        "",
        "[NETWORK]\nmasquerade_address = XXX.XXX.XXX.XXX\n",
    );
    let out = check_config(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .contains("warning: [NETWORK] masquerade_address: XXX.XXX.XXX.XXX is the placeholder"),
        "{stdout}"
    );
    assert!(
        stdout.contains("masquerade (control connection address)"),
        "{stdout}"
    );
}

#[test]
fn check_config_refuses_a_log_dir_that_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    for (log_dir, expected) in [
        (file.clone(), "exists but is not a directory"),
        (file.join("logs"), "cannot be created"),
    ] {
        let path = config_with(
            dir.path(),
            "",
            &format!("log_dir = {}\n", log_dir.display()),
        );
        let out = check_config(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted:\n{stderr}");
        assert!(
            stderr.contains(&format!("[OPTIONAL] log_dir: {}", log_dir.display()))
                && stderr.contains(expected),
            "{stderr}"
        );
    }
    // A log_dir that does not exist yet but can be created is fine, and check-config does not create it.
    let log_dir = dir.path().join("new/logs");
    let path = config_with(
        dir.path(),
        "",
        &format!("log_dir = {}\n", log_dir.display()),
    );
    let out = check_config(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!log_dir.exists());
}

#[test]
fn serve_and_mount_stop_before_starting_on_what_check_config_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_with(
        dir.path(),
        "",
        &format!(
            "log_dir = {}/a-file/logs\n[NETWORK]\nmasquerade_address = ftp.cosftpd.invalid\n",
            dir.path().display()
        ),
    );
    std::fs::write(dir.path().join("a-file"), b"x").unwrap();
    for command in ["serve", "mount"] {
        let out = Command::new(BIN)
            .args([command, "--no-check", "-c"])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}:\n{stderr}");
        assert!(
            stderr.contains("masquerade_address: ftp.cosftpd.invalid does not resolve")
                && stderr.contains("log_dir"),
            "{command}:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{command}:\n{stderr}");
    }
}

#[test]
fn check_config_warns_when_a_value_may_have_been_cut_by_a_comment() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_with(dir.path(), "", "")
        .to_string_lossy()
        .into_owned();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("secret-password-1", "bob #1pass");
    std::fs::write(&path, text).unwrap();
    let out = check_config(Path::new(&path));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("warning: [COS_ACCOUNT_0] ftp_login_user_password: line 6:"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("1pass"),
        "the cut-off part is shown:\n{stdout}"
    );

    // Quoted, the whole value is kept and nothing is warned about.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("bob #1pass", "\"bob #1pass\"   # quoted");
    std::fs::write(&path, text).unwrap();
    let out = check_config(Path::new(&path));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(!stdout.contains("warning"), "{stdout}");
}

/// Runs `cosftpd passwd` with `input` on stdin (not a terminal); returns (success, stdout, stderr).
fn passwd(input: &[u8]) -> (bool, String, String) {
    let out = ftpd::run_with_input(Command::new(BIN).arg("passwd"), input, ftpd::TIMEOUT);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn passwd_hashes_the_first_line_of_stdin_with_argon2id() {
    let (ok, stdout, stderr) = passwd(b"pass word 1\nsecond line is ignored\n");
    assert!(ok, "{stderr}");
    // One line, the hash alone: no prompt when stdin is not a terminal.
    let hash = stdout.strip_suffix('\n').expect("one line");
    assert!(!hash.contains('\n'), "{stdout:?}");
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    // Verified by the code the FTP login uses; the line ending is not part of the password, spaces are.
    assert!(verify_password(&Secret::new(hash), "pass word 1"));
    assert!(!verify_password(&Secret::new(hash), "pass word 1\n"));
    assert!(!verify_password(&Secret::new(hash), "password1"));

    // A CRLF line (a file written on Windows) and a last line without a newline give the same password.
    for input in [&b"crlf-pass\r\n"[..], b"crlf-pass"] {
        let (ok, stdout, stderr) = passwd(input);
        assert!(ok, "{stderr}");
        assert!(verify_password(
            &Secret::new(stdout.trim_end()),
            "crlf-pass"
        ));
    }
}

#[test]
fn passwd_refuses_an_empty_password() {
    for input in [&b""[..], b"\n"] {
        let (ok, stdout, stderr) = passwd(input);
        assert!(!ok, "{stdout}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(stderr.contains("empty password"), "{stderr}");
    }
}

/// `cosftpd passwd` output as `ftp_login_user_password`: `serve` (no FUSE needed) accepts the password over FTP.
#[test]
fn a_passwd_hash_in_the_config_logs_in_over_ftp() {
    let (ok, stdout, stderr) = passwd(b"correct horse battery\n");
    assert!(ok, "{stderr}");
    let hash = stdout.trim_end();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let text = format!(
        "[COS_ACCOUNT_0]\nstorage_type = fs\nstorage_root = {root}\nhome_dir = {home}\n\
         ftp_login_user_name = carol\nftp_login_user_password = {hash}\nauthority = RW\n\n\
         [NETWORK]\nlisten_address = 127.0.0.1\nlisten_port = {port}\npassive_port = 40000,40100\n\n\
         [OPTIONAL]\nmount_enable = false\ncreate_home_dir = true\n",
        root = dir.path().join("bucket").display(),
        home = dir.path().join("home").display(),
    );
    let config = common::write_config(dir.path(), &text);
    let mut daemon = Daemon::start(&["serve", "-c", config.to_str().unwrap()]);
    daemon.wait_for_log("FTP listening");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));

    let mut ctl = ftpd::Ctl::connect(addr);
    ctl.login("carol", "correct horse battery");
    ctl.expect("PWD", 257);

    // The hash itself is not a password, nor is a near miss.
    for wrong in [hash, "correct horse"] {
        let mut ctl = ftpd::Ctl::connect(addr);
        ctl.expect("USER carol", 331);
        ctl.expect(&format!("PASS {wrong}"), 530);
    }
    assert!(daemon.terminate().success());
}

/// What `build.rs` sees: the short hash of HEAD when the package is the top of a git work tree, else nothing.
fn git_head() -> Option<String> {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    if !git(&["rev-parse", "--show-prefix"])?.is_empty() {
        return None;
    }
    git(&["rev-parse", "--short", "HEAD"])
}

#[test]
fn version_names_the_release_and_the_git_commit() {
    let version = env!("CARGO_PKG_VERSION");
    for flag in ["--version", "-V"] {
        let out = Command::new(BIN).arg(flag).output().unwrap();
        assert!(out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.trim_end();
        match git_head() {
            Some(hash) => assert!(
                line == format!("cosftpd {version} (git {hash})")
                    || line == format!("cosftpd {version} (git {hash}-dirty)"),
                "{line:?} does not name commit {hash}"
            ),
            None => assert_eq!(line, format!("cosftpd {version}")),
        }
    }
}

#[test]
fn the_config_is_dash_c_else_cosftpd_config_else_etc_else_conf() {
    let dir = tempfile::tempdir().unwrap();
    let good = local_config(&dir.path().join("a"), 2121, false);
    let other = local_config(&dir.path().join("b"), 2121, false);
    let check = |cwd: &Path, env: Option<&Path>, args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.arg("check-config").args(args).current_dir(cwd);
        match env {
            Some(path) => cmd.env("COSFTPD_CONFIG", path),
            None => cmd.env_remove("COSFTPD_CONFIG"),
        };
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };

    let (ok, text) = check(dir.path(), Some(&good), &[]);
    assert!(
        ok && text.starts_with(&format!("{}: OK", good.display())),
        "{text}"
    );
    let (ok, text) = check(dir.path(), Some(&good), &["-c", other.to_str().unwrap()]);
    assert!(
        ok && text.starts_with(&format!("{}: OK", other.display())),
        "{text}"
    );

    // Neither: the installed config if there is one, else conf/vsftpd.conf under the working directory.
    let installed = Path::new(cosftpd::config::location::SYSTEM_PATH).exists();
    let empty = tempfile::tempdir().unwrap();
    let (ok, text) = check(empty.path(), None, &[]);
    if installed {
        assert!(text.starts_with("/etc/cosftpd/vsftpd.conf"), "{text}");
    } else {
        assert!(!ok, "{text}");
        assert!(
            text.starts_with("conf/vsftpd.conf: 1 error(s)") && text.contains("cannot read"),
            "{text}"
        );
        let project = dir.path().join("project");
        std::fs::create_dir_all(project.join("conf")).unwrap();
        std::fs::copy(&good, project.join("conf/vsftpd.conf")).unwrap();
        let (ok, text) = check(&project, None, &[]);
        assert!(ok && text.starts_with("conf/vsftpd.conf: OK"), "{text}");
        // An empty COSFTPD_CONFIG counts as unset.
        let (ok, text) = check(&project, Some(Path::new("")), &[]);
        assert!(ok && text.starts_with("conf/vsftpd.conf: OK"), "{text}");
    }

    // --help says so.
    for sub in ["serve", "mount", "check-config"] {
        let out = Command::new(BIN).args([sub, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("COSFTPD_CONFIG")
                && help.contains("/etc/cosftpd/vsftpd.conf")
                && help.contains("conf/vsftpd.conf"),
            "{help}"
        );
    }
}

/// Under systemd (`Type=notify`), READY=1 comes once the FTP listener accepts connections, RELOADING=1 and READY=1
/// around a SIGHUP, STOPPING=1 when a SIGTERM starts the shutdown.
#[test]
fn serve_notifies_systemd_when_ready_and_when_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let config = local_config(dir.path(), port, false);
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    // A deadline for a daemon that never notifies, not a synchronisation delay.
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let receive = || {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("a notification within 30 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };

    let mut daemon = Daemon::spawn(
        Command::new(BIN)
            .args(["serve", "-c", config.to_str().unwrap()])
            .env("NOTIFY_SOCKET", &socket_path),
    );
    daemon.wait_for_log("FTP listening"); // and keep its stderr drained
    let ready = receive();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(ready.contains("STATUS=serving 2 account(s)"), "{ready:?}");
    let mut ctl = ftpd::Ctl::connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    ctl.login("alice", "secret-password-1");
    drop(ctl);

    // SIGHUP: RELOADING=1 with the time (systemd's Type=notify-reload wants it), then READY=1 again.
    daemon.signal(libc::SIGHUP);
    let reloading = receive();
    assert!(
        reloading.lines().any(|l| l == "RELOADING=1"),
        "{reloading:?}"
    );
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    let ready = receive();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");

    let status = daemon.terminate();
    let stopping = receive();
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    assert!(status.success(), "{status}");
}
