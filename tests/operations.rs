//! The built binary as an operator runs it: `/metrics` and `/healthz` (`metrics_address`), the transfer log file
//! (`xferlog_file`), JSON and one-line logs, SIGHUP reloading the config, and SIGTERM letting running transfers
//! finish (`shutdown_grace`). Real parts: the daemon process, moto for the S3 store, raw FTP control and data
//! connections, a kernel FUSE mount where the host allows one.

mod common;
mod ftpd;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::{Daemon, LogLines, BIN, DEADLINE};
use common::{S3Server, ServerMode};
use ftpd::{pattern, Ctl};

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// An `fs` account section (or `s3` when `store` names a moto endpoint and bucket).
fn account(n: u32, dir: &Path, user: &str, password: &str, authority: &str) -> String {
    format!(
        "[COS_ACCOUNT_{n}]\nstorage_type = fs\nstorage_root = {root}\nhome_dir = {home}\n\
         ftp_login_user_name = {user}\nftp_login_user_password = {password}\nauthority = {authority}\n\n",
        root = dir.join("bucket").display(),
        home = dir.join(format!("home-{user}")).display(),
    )
}

/// `[NETWORK]` on loopback (`port`, passive 41000–41999) with `network` lines, and `[OPTIONAL]` without mounts
/// (unless `optional` says otherwise) with `optional` lines.
fn settings(port: u16, network: &str, optional: &str) -> String {
    format!(
        "[NETWORK]\nlisten_address = 127.0.0.1\nlisten_port = {port}\npassive_port = 41000,41999\n{network}\n\n\
         [OPTIONAL]\ncreate_home_dir = true\n{optional}\n"
    )
}

/// GET over a plain TCP connection: (status, body).
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to metrics_address");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read the answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head}"));
    (status, body.to_string())
}

/// The value of one series (`name{labels}` exactly as exposed), 0 when it is not there yet.
fn series(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{series} {v}")))
        .unwrap_or(0.0)
}

/// The sum of every series of `name` whose labels contain all of `labels`.
fn sum(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Each of the daemon's stderr lines is one event: it starts with an RFC 3339 timestamp.
fn assert_one_line_per_event(log: &str) {
    for line in log.lines() {
        let stamp = line.split(' ').next().unwrap_or("");
        assert!(
            stamp.len() >= 20 && stamp.as_bytes()[4] == b'-' && stamp.contains('T'),
            "a log line that is not an event of its own: {line:?}\n--- log ---\n{log}"
        );
    }
}

/// Metrics move with an FTP upload (transfers, bytes, logins, store requests); `/healthz` is 200 while the store
/// answers and 503 once it is gone. With RUST_BACKTRACE=1, the store's failures are still logged one line each.
#[test]
fn metrics_follow_transfers_and_healthz_follows_the_store() {
    let Some(mut s3) = S3Server::start_with_buckets(ServerMode::S3, &["ops-metrics"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (common::free_port(), common::free_port());
    let text = format!(
        "[COS_ACCOUNT_0]\nstorage_type = s3\ncos_endpoint = {endpoint}\ncos_bucket = ops-metrics\n\
         cos_secretid = test-key\ncos_secretkey = test-secret\nhome_dir = {home}\n\
         ftp_login_user_name = alice\nftp_login_user_password = pw-alice\nauthority = RW\n\n{settings}",
        endpoint = s3.endpoint(),
        home = dir.path().join("home").display(),
        settings = settings(
            port,
            &format!("metrics_address = 127.0.0.1:{metrics_port}"),
            "mount_enable = false"
        ),
    );
    let config = common::write_config(dir.path(), &text);
    let mut daemon = Daemon::spawn(
        Command::new(BIN)
            .args(["serve", "-c"])
            .arg(&config)
            .env("RUST_BACKTRACE", "1"),
    );
    let mut log = daemon.log_lines();
    log.wait_for("ready: serving 1 account(s)");
    let metrics = local(metrics_port);

    let (status, body) = http_get(metrics, "/healthz");
    assert_eq!((status, body.as_str()), (200, "alice: up\n"));
    let (status, before) = http_get(metrics, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        series(&before, "cosftpd_memory_budget_bytes"),
        512.0 * 1024.0 * 1024.0
    );
    assert_eq!(series(&before, r#"cosftpd_store_up{user="alice"}"#), 1.0);
    assert!(before.contains("cosftpd_build_info{version="), "{before}");

    let mut ctl = Ctl::connect(local(port));
    ctl.login("alice", "pw-alice");
    let body = pattern(300_000, 7);
    ctl.stor("up.bin", &body);
    // The session marks itself idle just after its 226 reached the client: wait for that (by then the
    // transfer's counters are final too).
    let after = {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (_, text) = http_get(metrics, "/metrics");
            let idle = series(&text, r#"cosftpd_ftp_sessions{state="idle"}"#);
            if idle == 1.0 || Instant::now() >= deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let upload_ok = r#"{direction="upload",result="ok"}"#;
    let grew = |name: &str, labels: &str| {
        let series_name = format!("{name}{labels}");
        series(&after, &series_name) - series(&before, &series_name)
    };
    assert_eq!(
        grew("cosftpd_ftp_transfers_total", upload_ok),
        1.0,
        "{after}"
    );
    assert_eq!(
        grew("cosftpd_ftp_transfer_bytes_total", upload_ok),
        body.len() as f64
    );
    assert_eq!(grew("cosftpd_ftp_logins_total", r#"{result="ok"}"#), 1.0);
    // The write path's PutObject (one part), and its HeadObject of the name before it (the old version's
    // attributes; not there yet).
    assert_eq!(
        grew(
            "cosftpd_store_requests_total",
            r#"{operation="PutObject",outcome="ok"}"#
        ),
        1.0,
        "{after}"
    );
    assert!(
        grew(
            "cosftpd_store_requests_total",
            r#"{operation="HeadObject",outcome="not_found"}"#
        ) >= 1.0,
        "{after}"
    );
    // OpenDAL's own operation metrics are served too (the store probe's one-entry listing at least).
    assert!(
        sum(
            &after,
            "opendal_operation_duration_seconds_count",
            &[r#"operation="list""#]
        ) >= 1.0,
        "{after}"
    );
    // The logged-in session, idle now.
    assert_eq!(series(&after, r#"cosftpd_ftp_sessions{state="idle"}"#), 1.0);

    // The store goes away: a request fails (retried, which brings the health probe forward: /healthz says so in
    // seconds, not at the next period). A name never asked about, so that no cache answers.
    s3.stop();
    let stopped = Instant::now();
    let size = ctl.cmd("SIZE never-seen.bin");
    assert_eq!(size.code, 451, "{size:?}");
    let deadline = Instant::now() + DEADLINE;
    let (status, body) = loop {
        let (status, body) = http_get(metrics, "/healthz");
        if status != 200 || Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("alice: down: "), "{body}");
    // A measurement (--nocapture), not an assertion.
    eprintln!(
        "/healthz answered 503 {:?} after the store stopped",
        stopped.elapsed()
    );
    let (_, down) = http_get(metrics, "/metrics");
    assert_eq!(series(&down, r#"cosftpd_store_up{user="alice"}"#), 0.0);
    assert!(
        sum(&down, "cosftpd_store_retries_total", &[]) >= 1.0,
        "{down}"
    );

    drop(ctl);
    assert!(daemon.terminate().success());
    let log = log.rest().to_string();
    assert!(
        log.contains("WARN") && log.contains("store request failed; retrying"),
        "{log}"
    );
    assert_one_line_per_event(&log);
}

/// The mount's requests and their errors by errno.
#[test]
fn metrics_count_mount_requests_and_errors_by_errno() {
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    if !(Path::new("/dev/fuse").exists() && unsafe { libc::geteuid() } == 0) {
        assert!(
            !common::require_fuse(),
            "COSFTPD_REQUIRE_FUSE=1 but FUSE is not available"
        );
        eprintln!("skipping: FUSE needs root and /dev/fuse");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (common::free_port(), common::free_port());
    let text = account(0, dir.path(), "alice", "pw-alice", "RW")
        + &settings(
            port,
            &format!("metrics_address = 127.0.0.1:{metrics_port}"),
            "",
        );
    let config = common::write_config(dir.path(), &text);
    let mut daemon = Daemon::start(&["serve", "-c", config.to_str().unwrap()]);
    daemon.wait_for_log("ready: serving 1 account(s)");
    let home = dir.path().join("home-alice");
    assert!(std::fs::metadata(home.join("missing")).is_err());
    std::fs::write(home.join("written.txt"), b"through the mount").unwrap();
    let (_, metrics) = http_get(local(metrics_port), "/metrics");
    assert!(
        series(&metrics, r#"cosftpd_fuse_requests_total{op="write"}"#) >= 1.0,
        "{metrics}"
    );
    assert!(
        series(
            &metrics,
            r#"cosftpd_fuse_errors_total{op="lookup",errno="ENOENT"}"#
        ) >= 1.0,
        "{metrics}"
    );
    assert!(daemon.terminate().success());
}

/// One line of `xferlog_file` per upload, download and delete, in vsftpd's format; JSON logs are one object per
/// line and carry every operation (renames, mkdir, rmdir too).
#[test]
fn xferlog_file_and_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let xferlog = dir.path().join("log/xferlog");
    let text = account(0, dir.path(), "alice", "pw-alice", "RW")
        + &settings(
            port,
            "",
            &format!(
                "mount_enable = false\nlog_format = json\nlog_dir = {}\nxferlog_file = {}",
                dir.path().join("log").display(),
                xferlog.display()
            ),
        );
    let config = common::write_config(dir.path(), &text);
    let mut daemon = Daemon::spawn(
        Command::new(BIN)
            .args(["serve", "-c"])
            .arg(&config)
            .env("RUST_BACKTRACE", "1"),
    );
    let mut log = daemon.log_lines();
    log.wait_for("ready: serving 1 account(s)");

    let mut ctl = Ctl::connect(local(port));
    ctl.login("alice", "pw-alice");
    ctl.stor("a b.txt", b"first file");
    let (first, bytes, last) = ctl.retr("a b.txt");
    assert_eq!(
        (first.code, bytes.as_slice(), last.code),
        (150, &b"first file"[..], 226)
    );
    ctl.expect("MKD dir", 257);
    ctl.expect("RNFR a b.txt", 350);
    ctl.expect("RNTO dir/c.txt", 250);
    ctl.expect("DELE dir/c.txt", 250);
    ctl.expect("RMD dir", 250);
    // An upload aborted halfway: logged as incomplete.
    let mut data = ctl.epsv();
    ctl.expect("STOR aborted.bin", 150);
    data.write_all(&pattern(50_000, 3)).unwrap();
    let abort = ctl.cmd("ABOR");
    let abort = if abort.code == 426 {
        ctl.reply()
    } else {
        abort
    };
    assert_eq!(abort.code, 226, "{abort:?}");
    drop(data);
    ctl.expect("QUIT", 221);
    assert!(daemon.terminate().success());
    let log = log.rest().to_string();

    // vsftpd's xferlog: 18 fields; uploads i, downloads o, deletes d (ProFTPD's letter); c complete, i incomplete.
    let lines: Vec<Vec<String>> = std::fs::read_to_string(&xferlog)
        .unwrap()
        .lines()
        .map(|l| {
            l.split(' ')
                .filter(|f| !f.is_empty())
                .map(String::from)
                .collect()
        })
        .collect();
    let shown: Vec<(String, String, String, String)> = lines
        .iter()
        .map(|f| {
            assert_eq!(f.len(), 18, "{f:?}");
            assert_eq!(f[6], "127.0.0.1", "{f:?}");
            assert!(f[5].parse::<u64>().unwrap() >= 1, "{f:?}");
            assert_eq!(
                [&f[9], &f[10], &f[12], &f[13], &f[14], &f[15], &f[16]],
                ["b", "_", "r", "alice", "ftp", "0", "*"],
                "{f:?}"
            );
            assert!(
                chrono::NaiveDateTime::parse_from_str(&f[..5].join(" "), "%a %b %e %H:%M:%S %Y")
                    .is_ok(),
                "{f:?}"
            );
            (f[11].clone(), f[8].clone(), f[7].clone(), f[17].clone())
        })
        .collect();
    let expected: Vec<(String, String, String, String)> = [
        ("i", "/a_b.txt", "10", "c"),
        ("o", "/a_b.txt", "10", "c"),
        ("d", "/dir/c.txt", "0", "c"),
    ]
    .iter()
    .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
    .collect();
    assert_eq!(shown[..3], expected[..], "{shown:?}");
    assert_eq!(shown.len(), 4, "{shown:?}");
    assert_eq!(
        (
            shown[3].0.as_str(),
            shown[3].1.as_str(),
            shown[3].3.as_str()
        ),
        ("i", "/aborted.bin", "i")
    );

    // JSON logs: every line of stderr and of the log file is one object; the transfer log events are in it.
    let file_log: String = std::fs::read_dir(dir.path().join("log"))
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?.to_string();
            name.starts_with("cosftpd.log")
                .then(|| std::fs::read_to_string(path).ok())?
        })
        .collect();
    for text in [&log, &file_log] {
        let events: Vec<serde_json::Value> = text
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not one JSON object: {l:?}: {e}"))
            })
            .collect();
        let ops: Vec<&str> = events
            .iter()
            .filter(|e| e["target"] == "xferlog")
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        assert_eq!(
            ops,
            ["upload", "download", "mkdir", "rename", "delete", "rmdir", "upload"],
            "{text}"
        );
        let rename = events.iter().find(|e| e["message"] == "rename").unwrap();
        assert_eq!(
            (
                &rename["user"],
                &rename["client"],
                &rename["path"],
                &rename["to"],
                &rename["result"]
            ),
            (
                &serde_json::json!("alice"),
                &serde_json::json!("127.0.0.1"),
                &serde_json::json!("/a b.txt"),
                &serde_json::json!("/dir/c.txt"),
                &serde_json::json!("ok")
            )
        );
        let login = events.iter().find(|e| e["message"] == "login").unwrap();
        assert_eq!(login["span"]["user"], "alice", "{login}");
    }
}

/// Writes `text` as the config and sends SIGHUP; returns the reload's outcome line.
fn reload(daemon: &Daemon, log: &mut LogLines, config: &Path, text: &str, outcome: &str) -> String {
    std::fs::write(config, text).unwrap();
    daemon.signal(libc::SIGHUP);
    log.wait_for(outcome)
}

/// SIGHUP: an account added logs in at once while a session of the running config keeps working; a broken config
/// is refused and the old one stays; a removed account's idle session is closed; a changed password applies to
/// new logins only.
#[test]
fn sighup_reloads_accounts_and_refuses_a_broken_config() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let optional = "mount_enable = false";
    let alice = |password: &str| account(0, dir.path(), "alice", password, "RW");
    let bob = account(1, dir.path(), "bob", "pw-bob", "R");
    let config = common::write_config(
        dir.path(),
        &(alice("pw-alice") + &settings(port, "", optional)),
    );
    let mut daemon = Daemon::start(&["serve", "-c", config.to_str().unwrap()]);
    let mut log = daemon.log_lines();
    log.wait_for("ready: serving 1 account(s)");
    let addr = local(port);

    let mut old = Ctl::connect(addr);
    old.login("alice", "pw-alice");
    old.stor("before.txt", b"before");

    // Added: bob logs in at once, with his authority (R).
    let line = reload(
        &daemon,
        &mut log,
        &config,
        &(alice("pw-alice") + &bob + &settings(port, "", optional)),
        "config reloaded",
    );
    assert!(line.contains("added: bob; removed: none"), "{line}");
    let mut bob_session = Ctl::connect(addr);
    bob_session.login("bob", "pw-bob");
    assert_eq!(bob_session.nlst(""), ["before.txt"]);
    let (first, _) = bob_session.upload("STOR nope.txt", b"x");
    assert_eq!(first.code, 550, "{first:?}");
    // The session opened before the reload goes on.
    old.stor("after.txt", b"after");

    // Broken: refused with the error named, the running config stays (bob and alice still log in).
    let broken = alice("pw-alice")
        + &bob.replace("authority = R", "authority = X")
        + &settings(port, "", optional);
    let line = reload(&daemon, &mut log, &config, &broken, "reload refused");
    assert!(line.contains("[COS_ACCOUNT_1] authority"), "{line}");
    log.wait_for("the previous one stays in force");
    Ctl::connect(addr).login("bob", "pw-bob");
    Ctl::connect(addr).login("alice", "pw-alice");

    // Removed and changed: bob's idle session is closed with 421; alice's new password is for new logins.
    let line = reload(
        &daemon,
        &mut log,
        &config,
        &(alice("new-pw") + &settings(port, "", optional)),
        "config reloaded",
    );
    assert!(line.contains("removed: bob; changed: alice"), "{line}");
    let closed = bob_session.try_reply().expect("a reply before the close");
    assert_eq!(
        (closed.code, closed.text()),
        (
            421,
            "Your account was removed from this server.".to_string()
        )
    );
    assert!(bob_session.is_closed());
    let mut stranger = Ctl::connect(addr);
    stranger.expect("USER bob", 331);
    stranger.expect("PASS pw-bob", 530);
    let mut wrong = Ctl::connect(addr);
    wrong.expect("USER alice", 331);
    wrong.expect("PASS pw-alice", 530);
    Ctl::connect(addr).login("alice", "new-pw");
    old.expect("NOOP", 200);
    assert_eq!(old.nlst(""), ["after.txt", "before.txt"]);

    drop(old);
    assert!(daemon.terminate().success());
}

/// Logs in, opens a data connection and starts `STOR name`, sends `sent` bytes and waits until the server has
/// them (STAT), so that the transfer is running when the test goes on.
fn start_upload(addr: SocketAddr, name: &str, sent: &[u8]) -> (Ctl, TcpStream) {
    let mut ctl = Ctl::connect(addr);
    ctl.login("alice", "pw-alice");
    let mut data = ctl.epsv();
    ctl.expect(&format!("STOR {name}"), 150);
    data.write_all(sent).unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let stat = ctl.expect("STAT", 213);
        if stat
            .text()
            .contains(&format!("{} bytes so far", sent.len()))
        {
            break;
        }
        assert!(Instant::now() < deadline, "{stat:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    (ctl, data)
}

/// SIGTERM: no new connections, idle sessions closed at once, a running upload finishes and is stored (226, then
/// 421) within `shutdown_grace`; a second SIGTERM aborts a running upload at once (nothing stored).
#[test]
fn sigterm_lets_a_running_upload_finish_and_a_second_one_aborts_it() {
    let dir = tempfile::tempdir().unwrap();
    let body = pattern(2 * 1024 * 1024, 9);
    let (first_half, second_half) = body.split_at(body.len() / 2);

    // The default grace (30 s): the upload is finished by the client after the signal.
    let port = common::free_port();
    let text = account(0, dir.path(), "alice", "pw-alice", "RW")
        + &settings(port, "", "mount_enable = false");
    let config = common::write_config(dir.path(), &text);
    let mut daemon = Daemon::start(&["serve", "-c", config.to_str().unwrap()]);
    let mut log = daemon.log_lines();
    log.wait_for("ready: serving 1 account(s)");
    let mut idle = Ctl::connect(local(port));
    idle.login("alice", "pw-alice");
    let (mut ctl, mut data) = start_upload(local(port), "graced.bin", first_half);
    daemon.signal(libc::SIGTERM);
    log.wait_for("running transfers may finish within 30 s");
    let bye = idle.try_reply().expect("421 for the idle session");
    assert_eq!(
        (bye.code, bye.text()),
        (421, "Server shutting down.".to_string())
    );
    // No new sessions: the connection is refused, or closed without a greeting.
    if let Ok(mut late) = TcpStream::connect(local(port)) {
        late.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut greeting = Vec::new();
        let _ = late.read_to_end(&mut greeting);
        assert!(
            greeting.is_empty(),
            "{}",
            String::from_utf8_lossy(&greeting)
        );
    }
    data.write_all(second_half).unwrap();
    drop(data);
    assert_eq!(ctl.reply().code, 226);
    let bye = ctl.reply();
    assert_eq!(
        (bye.code, bye.text()),
        (421, "Server shutting down.".to_string())
    );
    assert!(daemon.wait_exit().success());
    assert_eq!(
        std::fs::read(dir.path().join("bucket/graced.bin")).unwrap(),
        body
    );

    // A long grace, cut short by a second signal: the upload is aborted, nothing is stored.
    let port = common::free_port();
    let text = account(0, dir.path(), "alice", "pw-alice", "RW")
        + &settings(port, "", "mount_enable = false\nshutdown_grace = 1h");
    let config = common::write_config(dir.path(), &text);
    let mut daemon = Daemon::start(&["serve", "-c", config.to_str().unwrap()]);
    let mut log = daemon.log_lines();
    log.wait_for("ready: serving 1 account(s)");
    let (mut ctl, _data) = start_upload(local(port), "cut.bin", first_half);
    daemon.signal(libc::SIGTERM);
    log.wait_for("running transfers may finish within 3600 s");
    daemon.signal(libc::SIGTERM);
    log.wait_for("second signal: aborting the transfers still running");
    let bye = ctl.reply();
    assert_eq!(
        (bye.code, bye.text()),
        (421, "Server shutting down.".to_string())
    );
    assert!(daemon.wait_exit().success());
    assert!(!dir.path().join("bucket/cut.bin").exists());
}

/// A fresh self-signed certificate and key for `name`, written at `cert` and `key`; returns the certificate's PEM.
fn write_certificate(cert: &Path, key: &Path, name: &str) -> String {
    let rcgen::CertifiedKey {
        cert: c,
        signing_key,
    } = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    std::fs::write(cert, c.pem()).unwrap();
    std::fs::write(key, signing_key.serialize_pem()).unwrap();
    c.pem()
}

/// The base64 body of the first PEM certificate in `text`.
fn pem_body(text: &str) -> String {
    text.split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END CERTIFICATE-----").next())
        .unwrap_or_else(|| panic!("no certificate in:\n{text}"))
        .split_whitespace()
        .collect()
}

/// The certificate the server presents after AUTH TLS, as openssl sees it.
fn served_certificate(openssl: &Path, port: u16) -> String {
    let out = ftpd::run(
        Command::new(openssl)
            .args(["s_client", "-starttls", "ftp", "-connect"])
            .arg(format!("127.0.0.1:{port}")),
    );
    pem_body(&String::from_utf8_lossy(&out.stdout))
}

/// SIGHUP reads the TLS certificate and key again from the same paths (a renewal); files that do not load are
/// refused and the certificate in use stays.
#[test]
fn sighup_rereads_the_tls_certificate() {
    let Some(openssl) = ftpd::tool("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let first = write_certificate(&cert, &key, "first.test");
    let text = account(0, dir.path(), "alice", "pw-alice", "RW")
        + &settings(
            port,
            &format!(
                "tls_mode = optional\ntls_cert_file = {}\ntls_key_file = {}",
                cert.display(),
                key.display()
            ),
            "mount_enable = false",
        );
    let config = common::write_config(dir.path(), &text);
    let mut daemon = Daemon::start(&["serve", "-c", config.to_str().unwrap()]);
    let mut log = daemon.log_lines();
    log.wait_for("ready: serving 1 account(s)");
    assert_eq!(served_certificate(&openssl, port), pem_body(&first));

    let renewed = write_certificate(&cert, &key, "renewed.test");
    daemon.signal(libc::SIGHUP);
    log.wait_for("config reloaded");
    assert_eq!(served_certificate(&openssl, port), pem_body(&renewed));

    std::fs::write(&cert, "not a certificate\n").unwrap();
    daemon.signal(libc::SIGHUP);
    let refused = log.wait_for("reload refused");
    assert!(refused.contains("tls_cert_file"), "{refused}");
    assert_eq!(served_certificate(&openssl, port), pem_body(&renewed));
    assert!(daemon.terminate().success());
}
