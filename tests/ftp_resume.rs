//! Uploads that survive a broken connection (issue: resumable uploads), against a real S3 server (moto) with real
//! clients: a raw client and curl die mid-upload, SIZE answers the bytes the store holds, `REST n` + `STOR`,
//! `curl -C -` and `lftp put -c` finish the file with only the missing bytes sent; across a restart of cosftpd too.
//! ABOR keeps nothing; a fresh STOR and DELE discard what was kept; the sweep aborts what expired.

mod common;
mod ftpd;

use std::io::Write;
use std::net::Shutdown;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{S3Server, ServerMode};
use ftpd::{Ctl, Store, TestServer};

const MIB: usize = 1024 * 1024;
/// S3's smallest part (moto enforces it in s3 mode): the part size of these servers.
const PART: usize = 5 * MIB;

struct Bucket {
    s3: &'static S3Server,
    name: String,
}

impl Bucket {
    fn new() -> Option<Bucket> {
        let s3 = S3Server::shared(ServerMode::S3)?;
        let name = common::unique_bucket("resume");
        s3.create_bucket(&name);
        Some(Bucket { s3, name })
    }

    fn server(&self, optional: &[&str]) -> TestServer {
        // 10 GiB / 10,000 parts is below S3's 5 MiB minimum: parts of 5 MiB.
        let mut builder = TestServer::builder()
            .store(Store::S3 {
                endpoint: self.s3.endpoint(),
                bucket: self.name.clone(),
            })
            .file("single_file_max_size = 10G");
        for line in optional {
            builder = builder.optional(line);
        }
        builder.start()
    }

    fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.s3.get_object(&self.name, key)
    }

    /// Multipart uploads the store holds, neither completed nor aborted.
    fn pending_uploads(&self) -> usize {
        let response = self
            .s3
            .request("GET", &self.name, "", "uploads", &[], b"")
            .expect("ListMultipartUploads");
        common::xml_values(&response.text(), "UploadId").len()
    }
}

fn sha256(data: &[u8]) -> String {
    use std::fmt::Write as _;
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().expect("stdin").write_all(data)?;
            child.wait_with_output()
        })
        .expect("sha256sum");
    let mut hex = String::new();
    let _ = write!(hex, "{}", String::from_utf8_lossy(&out.stdout));
    hex.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Sends `sent` bytes of a STOR of `name`, then disappears: both connections closed without QUIT, as a killed
/// client's are.
fn broken_stor(server: &TestServer, name: &str, body: &[u8], sent: usize) {
    let mut c = server.login();
    let mut data = c.epsv();
    c.expect(&format!("STOR {name}"), 150);
    data.write_all(&body[..sent]).expect("send");
    // Until the server has taken it all in (the last bytes may still be in flight otherwise).
    wait_progress(&mut c, sent as u64);
    let _ = data.shutdown(Shutdown::Both);
    drop(data);
    c.shutdown_write();
    drop(c);
    server.wait_connections(0);
}

/// STAT during a transfer reports the bytes received so far; waits until it says `bytes`.
fn wait_progress(c: &mut Ctl, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = c.cmd("STAT");
        // "STOR /name: 123 bytes so far."
        let so_far: u64 = reply
            .text()
            .split_whitespace()
            .rev()
            .nth(3)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if so_far >= bytes {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server never got {bytes} bytes: {reply:?}"
        );
        std::thread::yield_now();
    }
}

fn size_of(c: &mut Ctl, name: &str) -> usize {
    let reply = c.expect(&format!("SIZE {name}"), 213);
    reply.text().trim().parse().expect("a size")
}

#[test]
fn a_raw_client_resumes_with_rest_and_stor_and_only_the_missing_bytes_are_sent() {
    let Some(bucket) = Bucket::new() else {
        return;
    };
    let server = bucket.server(&[]);
    let body = common::pattern(13 * MIB, 11);
    broken_stor(&server, "big.bin", &body, 12 * MIB);

    // Nothing partial became an object; the store keeps the upload.
    assert_eq!(bucket.object("big.bin"), None);
    assert_eq!(bucket.pending_uploads(), 1);

    let mut c = server.login();
    // Two full parts (10 MiB) were stored; the rest of what was sent was in memory and is gone.
    let durable = size_of(&mut c, "big.bin");
    assert!(
        (2 * PART..=12 * MIB).contains(&durable),
        "durable size {durable}"
    );
    assert_eq!(durable % PART, 0, "whole parts are kept: {durable}");
    let mlst = c.expect("MLST big.bin", 250);
    assert!(mlst.text().contains("x.partial=true;"), "{mlst:?}");
    assert!(
        mlst.text().contains(&format!("size={durable};")),
        "{mlst:?}"
    );
    // RETR of the name does not return partial data.
    let data = c.epsv();
    let retr = c.cmd("RETR big.bin");
    assert_eq!(retr.code, 550, "{retr:?}");
    drop(data.shutdown(Shutdown::Both));

    // A resume at another offset is refused and says where to resume.
    c.expect("REST 7", 350);
    let (first, _) = c.upload("STOR big.bin", b"x");
    assert_eq!(first.code, 554, "{first:?}");
    assert!(first.text().contains(&durable.to_string()), "{first:?}");

    c.expect(&format!("REST {durable}"), 350);
    let (first, last) = c.upload("STOR big.bin", &body[durable..]);
    assert_eq!((first.code, last.code), (150, 226), "{first:?} {last:?}");
    let stored = bucket.object("big.bin").expect("committed");
    assert_eq!(stored.len(), body.len());
    assert_eq!(sha256(&stored), sha256(&body));
    assert_eq!(bucket.pending_uploads(), 0);
}

#[test]
fn an_upload_resumes_after_a_restart_of_cosftpd() {
    let Some(bucket) = Bucket::new() else {
        return;
    };
    let body = common::pattern(12 * MIB, 12);
    {
        let server = bucket.server(&[]);
        broken_stor(&server, "across.bin", &body, 11 * MIB);
    }
    // A new process (or another gateway) knows nothing of it: the state is in the store.
    let server = bucket.server(&[]);
    assert_eq!(server.sweep().kept, 1, "the start-up sweep finds it");
    let mut c = server.login();
    let durable = size_of(&mut c, "across.bin");
    assert_eq!(durable, 2 * PART);
    let listing = {
        let mut data = c.epsv();
        c.expect("MLSD", 150);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut data, &mut text).expect("listing");
        c.expect_final(226);
        text
    };
    assert!(
        listing.contains(&format!("size={durable};"))
            && listing.contains("x.partial=true; across.bin"),
        "{listing}"
    );
    // APPE continues at the durable size too.
    let (first, last) = c.upload("APPE across.bin", &body[durable..]);
    assert_eq!((first.code, last.code), (150, 226), "{first:?} {last:?}");
    assert_eq!(
        sha256(&bucket.object("across.bin").expect("committed")),
        sha256(&body)
    );
    assert_eq!(bucket.pending_uploads(), 0);
}

#[test]
fn abor_keeps_nothing_and_a_fresh_stor_or_dele_discards_what_was_kept() {
    let Some(bucket) = Bucket::new() else {
        return;
    };
    let server = bucket.server(&[]);
    let body = common::pattern(12 * MIB, 13);

    // ABOR: the user cancelled.
    let mut c = server.login();
    let mut data = c.epsv();
    c.expect("STOR cancelled.bin", 150);
    data.write_all(&body[..11 * MIB]).expect("send");
    wait_progress(&mut c, 11 * MIB as u64);
    let reply = c.cmd("ABOR");
    let reply = if reply.code == 426 { c.reply() } else { reply };
    assert_eq!(reply.code, 226, "{reply:?}");
    drop(data);
    assert_eq!(bucket.pending_uploads(), 0, "ABOR leaves nothing");
    drop(c);

    // A broken upload, then a fresh STOR from 0: the new file replaces what was kept.
    broken_stor(&server, "again.bin", &body, 11 * MIB);
    assert_eq!(bucket.pending_uploads(), 1);
    let mut c = server.login();
    c.stor("again.bin", b"small");
    drop(c);
    assert_eq!(bucket.object("again.bin").as_deref(), Some(&b"small"[..]));
    assert_eq!(bucket.pending_uploads(), 0);

    // A broken upload, then DELE of the name: what was kept is discarded.
    broken_stor(&server, "gone.bin", &body, 11 * MIB);
    assert_eq!(bucket.pending_uploads(), 1);
    let mut c = server.login();
    c.expect("DELE gone.bin", 250);
    assert_eq!(bucket.pending_uploads(), 0);
    c.expect("SIZE gone.bin", 550);
}

#[test]
fn the_sweep_aborts_uploads_kept_past_the_ttl() {
    let Some(bucket) = Bucket::new() else {
        return;
    };
    let server = bucket.server(&["upload_resume_ttl = 2s"]);
    let body = common::pattern(11 * MIB, 14);
    broken_stor(&server, "expires.bin", &body, 11 * MIB);
    assert_eq!(bucket.pending_uploads(), 1);
    assert_eq!(server.sweep().kept, 1, "within the TTL it is kept");
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.sweep().expired == 0 {
        assert!(Instant::now() < deadline, "never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(bucket.pending_uploads(), 0);
    let mut c = server.login();
    c.expect("SIZE expires.bin", 550);
}

#[test]
fn curl_and_lftp_resume_a_killed_upload() {
    let Some(bucket) = Bucket::new() else {
        return;
    };
    let server = bucket.server(&[]);
    let local = tempfile::tempdir().expect("local dir");
    let body = common::pattern(14 * MIB, 15);
    let file = local.path().join("src.bin");
    std::fs::write(&file, &body).expect("local file");
    let account = &server.accounts[0];
    let base = format!("ftp://{}:{}@{}/", account.user, account.pass, server.addr);

    // curl, killed mid-upload (its rate limit keeps it mid-transfer), then `curl -C -`.
    if let Some(curl) = ftpd::tool("curl") {
        let mut child = Command::new(&curl)
            .args(["-sS", "--limit-rate", "2M", "-T"])
            .arg(&file)
            .arg(format!("{base}curl.bin"))
            .spawn()
            .expect("curl");
        let deadline = Instant::now() + Duration::from_secs(60);
        while bucket.pending_uploads() == 0 || !server_has_parts(&bucket, 2) {
            assert!(Instant::now() < deadline, "curl never got two parts stored");
            if let Some(status) = child.try_wait().expect("wait") {
                panic!("curl ended early: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        server.wait_connections(0);
        assert_eq!(
            bucket.object("curl.bin"),
            None,
            "a killed client commits nothing"
        );
        let out = ftpd::run(
            Command::new(&curl)
                .args(["-sS", "-C", "-", "-T"])
                .arg(&file)
                .arg(format!("{base}curl.bin")),
        );
        assert!(
            out.status.success(),
            "curl -C -: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            sha256(&bucket.object("curl.bin").expect("committed")),
            sha256(&body)
        );
    }

    // lftp: a broken upload of the same file, then `put -c`.
    if let Some(lftp) = ftpd::tool("lftp") {
        broken_stor(&server, "lftp.bin", &body, 12 * MIB);
        let script = format!(
            "set net:max-retries 1; open -u {},{} {}; put -c {} -o lftp.bin; bye",
            account.user,
            account.pass,
            server.addr,
            file.display()
        );
        let out = ftpd::run(Command::new(&lftp).args(["-c", &script]));
        assert!(
            out.status.success(),
            "lftp put -c: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            sha256(&bucket.object("lftp.bin").expect("committed")),
            sha256(&body)
        );
    }
    assert_eq!(bucket.pending_uploads(), 0);
}

/// Whether the one pending upload of the bucket has at least `n` parts stored.
fn server_has_parts(bucket: &Bucket, n: usize) -> bool {
    let listing = bucket
        .s3
        .request("GET", &bucket.name, "", "uploads", &[], b"")
        .expect("ListMultipartUploads")
        .text();
    let (Some(key), Some(id)) = (
        common::xml_values(&listing, "Key").into_iter().next(),
        common::xml_values(&listing, "UploadId").into_iter().next(),
    ) else {
        return false;
    };
    let parts = bucket
        .s3
        .request(
            "GET",
            &bucket.name,
            &key,
            &format!("uploadId={}", common::encode_query(&id)),
            &[],
            b"",
        )
        .expect("ListParts")
        .text();
    common::xml_values(&parts, "PartNumber").len() >= n
}
