//! Real FTP clients against the in-process engine: curl, lftp, tnftp and Python ftplib, over the `fs` store, plus
//! one run over a real S3 server (moto) to prove the store path. A client that is not installed skips its test,
//! unless `COSFTPD_REQUIRE_S3=1` (CI), where `scripts/test.sh` has installed them all.

mod common;
mod ftpd;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ftpd::{pattern, run, run_with_input, success, tool, Store, TestServer, TIMEOUT};

/// Writes a local file and returns its path.
fn local_file(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

fn curl(curl: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(curl);
    cmd.args(["-sS", "--max-time", "60"]).args(args);
    run(&mut cmd)
}

#[test]
fn curl_uploads_downloads_lists_in_passive_and_active_mode() {
    let Some(curl_bin) = tool("curl") else { return };
    let c = |args: &[&str]| curl(&curl_bin, args);
    let server = TestServer::start();
    let url = server.url();
    let local = tempfile::tempdir().unwrap();
    let body = pattern(1024 * 1024 + 3, 5);
    let up = local_file(local.path(), "up.bin", &body);
    let up = up.to_str().unwrap();

    // STOR through EPSV (curl's default), creating the directories on the way.
    success(
        "curl -T",
        &c(&["--ftp-create-dirs", "-T", up, &format!("{url}c/d/up.bin")]),
    );
    assert_eq!(server.object("c/d/up.bin"), Some(body.clone()));
    // RETR through EPSV and through PASV.
    for extra in [&[][..], &["--disable-epsv"][..]] {
        let out = local.path().join("down.bin");
        let remote = format!("{url}c/d/up.bin");
        let mut args = extra.to_vec();
        args.extend(["-o", out.to_str().unwrap(), &remote]);
        success("curl RETR", &c(&args));
        assert_eq!(std::fs::read(&out).unwrap(), body, "{extra:?}");
    }
    // Active mode: PORT/EPRT to 127.0.0.1, both directions.
    success(
        "curl --ftp-port -T",
        &c(&[
            "--ftp-port",
            "127.0.0.1",
            "-T",
            up,
            &format!("{url}c/active.bin"),
        ]),
    );
    assert_eq!(server.object("c/active.bin"), Some(body.clone()));
    let out = local.path().join("active-down.bin");
    success(
        "curl --ftp-port RETR",
        &c(&[
            "--ftp-port",
            "127.0.0.1",
            "--disable-eprt",
            "-o",
            out.to_str().unwrap(),
            &format!("{url}c/active.bin"),
        ]),
    );
    assert_eq!(std::fs::read(&out).unwrap(), body);

    // LIST and NLST.
    let list = success("curl LIST", &c(&[&format!("{url}c/d/")]));
    assert!(
        list.lines().any(|l| l.starts_with('-')
            && l.contains(&format!(" {} ", body.len()))
            && l.ends_with(" up.bin")),
        "{list:?}"
    );
    let names = success("curl NLST", &c(&["--list-only", &format!("{url}c/")]));
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["active.bin", "d"]);

    // APPE.
    let small = local_file(local.path(), "small.txt", b"appended by curl");
    success(
        "curl --append",
        &c(&[
            "--append",
            "-T",
            small.to_str().unwrap(),
            &format!("{url}c/d/up.bin"),
        ]),
    );
    let mut appended = body.clone();
    appended.extend_from_slice(b"appended by curl");
    assert_eq!(server.object("c/d/up.bin"), Some(appended.clone()));

    // Resumed download (REST) and resumed upload (SIZE, then APPE of the rest).
    let partial = local_file(local.path(), "partial.bin", &appended[..300_000]);
    success(
        "curl -C - RETR",
        &c(&[
            "-C",
            "-",
            "-o",
            partial.to_str().unwrap(),
            &format!("{url}c/d/up.bin"),
        ]),
    );
    assert_eq!(std::fs::read(&partial).unwrap(), appended);
    server.put("c/half.bin", &body[..500_000]);
    success(
        "curl -C - -T",
        &c(&["-C", "-", "-T", up, &format!("{url}c/half.bin")]),
    );
    assert_eq!(server.object("c/half.bin"), Some(body.clone()));

    // Commands by -Q: rename, delete, mkdir.
    success(
        "curl -Q RNFR/RNTO",
        &c(&[
            "-Q",
            "RNFR c/active.bin",
            "-Q",
            "RNTO c/renamed.bin",
            "-Q",
            "MKD c/made",
            &url,
        ]),
    );
    assert!(server.object("c/active.bin").is_none());
    assert_eq!(server.object("c/renamed.bin"), Some(body.clone()));
    assert!(server.root.join("c/made").is_dir());
    success("curl -Q DELE", &c(&["-Q", "DELE c/renamed.bin", &url]));
    assert!(server.object("c/renamed.bin").is_none());

    // Failures come back as curl's FTP error codes.
    let missing = c(&["-o", "/dev/null", &format!("{url}c/missing.bin")]);
    assert_eq!(
        missing.status.code(),
        Some(78),
        "RETR of a missing file: {missing:?}"
    );
    let bad_login = c(&[&format!("ftp://user:wrong@127.0.0.1:{}/", server.port())]);
    assert_eq!(
        bad_login.status.code(),
        Some(67),
        "bad password: {bad_login:?}"
    );
}

/// A W-only account with curl: uploads work, listing and downloading are refused.
#[test]
fn curl_write_only_account() {
    let Some(curl_bin) = tool("curl") else { return };
    let c = |args: &[&str]| curl(&curl_bin, args);
    let server = TestServer::builder()
        .account("drop", "box", "W", false)
        .start();
    let url = server.url();
    let local = tempfile::tempdir().unwrap();
    let up = local_file(local.path(), "f.txt", b"dropped");
    success(
        "curl -T",
        &c(&["-T", up.to_str().unwrap(), &format!("{url}inbox.txt")]),
    );
    assert_eq!(server.object("inbox.txt").as_deref(), Some(&b"dropped"[..]));
    let list = c(&[&url]);
    assert!(!list.status.success(), "W-only listing must fail: {list:?}");
    let get = c(&["-o", "/dev/null", &format!("{url}inbox.txt")]);
    assert!(!get.status.success(), "W-only download must fail: {get:?}");
    let again = c(&["-T", up.to_str().unwrap(), &format!("{url}inbox.txt")]);
    assert!(
        !again.status.success(),
        "overwrite without delete_enable must fail: {again:?}"
    );
}

/// A tree of small files, some in UTF-8 and with spaces, nested a few levels.
fn make_tree(root: &Path) -> usize {
    let mut count = 0;
    for d in 0..10 {
        let dir = root
            .join(format!("dir {d}"))
            .join(if d % 3 == 0 { "目录" } else { "sub" });
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..20 {
            let name = if f % 7 == 0 {
                format!("文件 {f}.txt")
            } else {
                format!("file-{f}.dat")
            };
            let len = if f == 5 { 0 } else { 37 * f + d * 101 };
            std::fs::write(dir.join(name), pattern(len, (d * 20 + f) as u8)).unwrap();
            count += 1;
        }
    }
    std::fs::create_dir_all(root.join("empty dir")).unwrap();
    count
}

/// Every file under `root` with its contents, sorted by relative path.
fn read_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                out.push((format!("{rel}/"), Vec::new()));
                walk(base, &p, out);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn lftp(server: &TestServer, script: &str) -> std::process::Output {
    let a = &server.accounts[0];
    let full = format!(
        "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 30; set net:reconnect-interval-base 1; \
         set ftp:ssl-allow no; open -u {},{} -p {} 127.0.0.1; {script}",
        a.user,
        a.pass,
        server.port()
    );
    let mut cmd = Command::new("lftp");
    cmd.args(["-c", &full]);
    ftpd::run_with_timeout(&mut cmd, Duration::from_secs(180))
}

/// lftp mirrors a tree of 200 files up (`mirror -R`), and back down; both copies match byte for byte.
#[test]
fn lftp_mirror_up_and_down() {
    if tool("lftp").is_none() {
        return;
    }
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let up = local.path().join("up");
    let files = make_tree(&up);
    assert_eq!(files, 200);
    success(
        "lftp mirror -R",
        &lftp(
            &server,
            &format!("mirror -R --parallel=4 {} /tree", up.display()),
        ),
    );
    let original = read_tree(&up);
    assert_eq!(
        read_tree(&server.root.join("tree")),
        original,
        "the store holds the tree"
    );

    let down = local.path().join("down");
    success(
        "lftp mirror",
        &lftp(
            &server,
            &format!("mirror --parallel=4 /tree {}", down.display()),
        ),
    );
    assert_eq!(
        read_tree(&down),
        original,
        "the tree comes back as it went up"
    );

    // A second mirror -R with changes: one file changed, one deleted, one added.
    std::fs::write(up.join("dir 1/sub/file-1.dat"), b"changed").unwrap();
    std::fs::remove_file(up.join("dir 2/sub/file-2.dat")).unwrap();
    std::fs::write(up.join("dir 2/new.txt"), b"new").unwrap();
    success(
        "lftp mirror -R --delete",
        &lftp(
            &server,
            &format!("mirror -R --delete {} /tree", up.display()),
        ),
    );
    assert_eq!(read_tree(&server.root.join("tree")), read_tree(&up));

    // cls, mv, rm -r.
    let ls = success("lftp cls", &lftp(&server, "cls -1 /tree"));
    assert!(
        ls.lines()
            .any(|l| l.trim_end_matches('/').ends_with("/empty dir")),
        "{ls:?}"
    );
    success("lftp mv", &lftp(&server, "mv /tree/dir\\ 3 /tree/moved"));
    assert!(server.root.join("tree/moved/目录/file-4.dat").is_file());
    assert!(!server.root.join("tree/dir 3").exists());
    success("lftp rm -r", &lftp(&server, "rm -r /tree"));
    assert!(server.keys().is_empty(), "{:?}", server.keys());
}

/// tnftp (NetBSD ftp) driven by a command script on stdin, and its URL auto-fetch.
#[test]
fn tnftp_script_and_autofetch() {
    let Some(tnftp) = tool("tnftp") else { return };
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let body = pattern(200_000, 3);
    let up = local_file(local.path(), "up.bin", &body);
    let down = local.path().join("down.bin");
    let script = format!(
        "open 127.0.0.1 {port}\nuser user pass\nbinary\nmkdir tdir\ncd tdir\nput {up} t.bin\nget t.bin {down}\n\
         ls\nrename t.bin r.bin\nsize r.bin\nmodtime r.bin\npwd\nbye\n",
        port = server.port(),
        up = up.display(),
        down = down.display()
    );
    let mut cmd = Command::new(&tnftp);
    cmd.args(["-n", "-v", "-p"]);
    let out = run_with_input(&mut cmd, script.as_bytes(), TIMEOUT);
    let text = success("tnftp script", &out);
    assert_eq!(std::fs::read(&down).unwrap(), body);
    assert_eq!(server.object("tdir/r.bin"), Some(body.clone()));
    assert!(text.contains("t.bin"), "ls output: {text}");
    assert!(text.contains("\"/tdir\""), "pwd output: {text}");
    assert!(
        text.contains(&body.len().to_string()),
        "size output: {text}"
    );

    let fetched = local.path().join("fetched.bin");
    let mut cmd = Command::new(&tnftp);
    cmd.args(["-V", "-o"])
        .arg(&fetched)
        .arg(format!("{}tdir/r.bin", server.url()));
    success("tnftp auto-fetch", &run(&mut cmd));
    assert_eq!(std::fs::read(&fetched).unwrap(), body);
}

/// tnftp's `mget *.txt` sends `NLST *.txt` and fetches each name it gets back; `mls` and `mdelete` expand the same
/// way.
#[test]
fn tnftp_mget_expands_patterns() {
    let Some(tnftp) = tool("tnftp") else { return };
    let server = TestServer::start();
    for (key, body) in [
        ("a.txt", "A"),
        ("b.txt", "B"),
        ("c.bin", "C"),
        ("sub/d.txt", "D"),
    ] {
        server.put(key, body.as_bytes());
    }
    let local = tempfile::tempdir().unwrap();
    let script = format!(
        "open 127.0.0.1 {port}\nuser user pass\nbinary\nlcd {dir}\nmget *.txt\ncd sub\nmget *.txt\nbye\n",
        port = server.port(),
        dir = local.path().display()
    );
    let mut cmd = Command::new(&tnftp);
    // -i: no prompt for each file.
    cmd.args(["-n", "-v", "-i", "-p"]);
    let out = run_with_input(&mut cmd, script.as_bytes(), TIMEOUT);
    let text = success("tnftp mget", &out);
    let mut got: Vec<(String, String)> = std::fs::read_dir(local.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    got.sort();
    let want = [("a.txt", "A"), ("b.txt", "B"), ("d.txt", "D")]
        .map(|(n, b)| (n.to_string(), b.to_string()));
    assert_eq!(got, want, "{text}");
}

/// Python ftplib: every call a program makes, passive and active.
#[test]
fn ftplib_walk() {
    let server = TestServer::start();
    let Some(out) = ftpd::ftplib(&server, server.addr, 0, "walk", &[]) else {
        return;
    };
    success("ftplib walk", &out);
    assert!(
        server.keys().is_empty(),
        "the walk cleans up: {:?}",
        server.keys()
    );
}

/// ftplib's `abort()` sends ABOR as TCP urgent data (as most clients do): the upload stops and nothing is stored.
#[test]
fn ftplib_abort_mid_upload() {
    let server = TestServer::start();
    let Some(out) = ftpd::ftplib(&server, server.addr, 0, "abort", &["aborted.bin"]) else {
        return;
    };
    success("ftplib abort", &out);
    assert!(server.keys().is_empty(), "{:?}", server.keys());
}

/// Over `single_file_max_size`, ftplib's STOR is answered 552 (not a connection reset while it sends, with the 552
/// left to answer its next command), and the session stays in step; curl sees the 552 as its upload's answer.
#[test]
fn over_the_size_limit_the_stor_gets_552() {
    let server = TestServer::builder()
        .file("single_file_max_size = 1M")
        .start();
    // Well past the limit: the client is still sending long after the limit was hit.
    let size = (8 * 1024 * 1024).to_string();
    let Some(out) = ftpd::ftplib(&server, server.addr, 0, "too_large", &["big.bin", &size]) else {
        return;
    };
    assert!(success("ftplib too_large", &out).contains("ok 552"));
    assert_eq!(server.keys(), ["small-big.bin"]);

    let Some(curl_bin) = tool("curl") else { return };
    let local = tempfile::tempdir().unwrap();
    let up = local_file(local.path(), "big.bin", &pattern(8 * 1024 * 1024, 3));
    let out = curl(
        &curl_bin,
        &[
            "-v",
            "-T",
            up.to_str().unwrap(),
            &format!("{}big.bin", server.url()),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // CURLE_REMOTE_DISK_FULL, curl's reading of 552 ("Exceeded storage allocation"); 55 would be a send failure.
    assert_eq!(out.status.code(), Some(70), "{stderr}");
    assert!(stderr.contains("< 552 "), "{stderr}");
    assert_eq!(server.keys(), ["small-big.bin"]);
}

/// 100 sessions at once, each uploading, listing, downloading and deleting its own files: zero errors.
#[test]
fn hundred_concurrent_sessions() {
    let server = TestServer::builder()
        .optional("max_connection_per_ip = 0")
        .start();
    let Some(out) = ftpd::ftplib(&server, server.addr, 0, "concurrent", &["100", "3"]) else {
        return;
    };
    let text = success("100 concurrent ftplib sessions", &out);
    assert!(text.contains("ok 100 sessions"), "{text}");
    assert!(server.keys().is_empty(), "{:?}", server.keys());
}

/// The store path through FTP: STOR (multipart), RETR, REST, LIST, APPE (server-side copy) and DELE against moto in
/// S3 mode, checked in the bucket itself.
#[test]
fn s3_store_through_ftp() {
    let Some(s3) = common::S3Server::shared(common::ServerMode::S3) else {
        return;
    };
    let bucket = common::unique_bucket("ftp");
    s3.create_bucket(&bucket);
    let server = TestServer::builder()
        .store(Store::S3 {
            endpoint: s3.endpoint(),
            bucket: bucket.clone(),
        })
        .start();
    let mut c = server.login();
    let body = pattern(6 * 1024 * 1024 + 123, 11);
    c.expect("MKD data", 257);
    c.stor("data/big.bin", &body);
    assert_eq!(s3.get_object(&bucket, "data/big.bin"), Some(body.clone()));
    let (_, got, last) = c.retr("data/big.bin");
    assert_eq!(last.code, 226);
    assert!(got == body, "RETR returns the object");
    c.expect("REST 6000000", 350);
    let (_, tail, _) = c.retr("data/big.bin");
    assert!(tail == body[6_000_000..], "REST + RETR");

    let (_, list, _) = c.download("LIST data");
    let list = String::from_utf8(list).unwrap();
    assert!(
        list.lines()
            .any(|l| l.contains(&format!(" {} ", body.len())) && l.ends_with(" big.bin")),
        "{list:?}"
    );
    let extra = pattern(1024 * 1024, 12);
    let (_, last) = c.upload("APPE data/big.bin", &extra);
    assert_eq!(last.code, 226, "{last:?}");
    let mut want = body.clone();
    want.extend_from_slice(&extra);
    assert!(
        s3.get_object(&bucket, "data/big.bin") == Some(want.clone()),
        "APPE in the bucket"
    );
    assert_eq!(
        c.expect("SIZE data/big.bin", 213).text(),
        want.len().to_string()
    );

    // An aborted upload leaves no object and no open multipart upload behind.
    let mut data = c.epsv();
    c.expect("STOR data/aborted.bin", 150);
    use std::io::Write;
    data.write_all(&pattern(6 * 1024 * 1024, 1)).unwrap();
    c.send(b"ABOR\r\n");
    let r = c.reply();
    assert_eq!(r.code, 426, "{r:?}");
    c.expect_final(226);
    drop(data);
    assert_eq!(s3.get_object(&bucket, "data/aborted.bin"), None);
    let uploads = s3.request("GET", &bucket, "", "uploads", &[], b"").unwrap();
    assert!(
        !uploads.text().contains("<UploadId>"),
        "open multipart uploads: {}",
        uploads.text()
    );

    c.expect("DELE data/big.bin", 250);
    c.expect("RMD data", 250);
    let left = s3.list_all(&bucket, "", "");
    assert!(left.keys.is_empty(), "{:?}", left.keys);
}
