//! Clients that die in the middle of an upload must not commit a truncated object: `curl -T -` fed from a pipe and
//! killed with SIGKILL at random points, and a raw client that closes both of its connections without QUIT, over
//! the `fs` store and over moto (S3). An upload that is let finish must still commit, whole.
//!
//! The race this guards against: a killed process's data connection ends with a clean FIN, which looks just like a
//! finished upload, and its control connection closes a few microseconds before or after it.

mod common;
mod ftpd;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ftpd::{pattern, tool, Ctl, Store, TestServer};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// A small deterministic generator (xorshift), so a failing round can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The objects the test looks for, behind the server's back.
enum Bucket<'a> {
    Fs(&'a TestServer),
    S3 {
        s3: &'a common::S3Server,
        bucket: String,
    },
}

impl Bucket<'_> {
    /// The committed object's size, if there is one.
    fn committed(&self, key: &str) -> Option<usize> {
        match self {
            Bucket::Fs(server) => server.object(key).map(|b| b.len()),
            Bucket::S3 { s3, bucket } => s3.get_object(bucket, key).map(|b| b.len()),
        }
    }

    fn keys(&self) -> Vec<String> {
        match self {
            Bucket::Fs(server) => server.keys(),
            Bucket::S3 { s3, bucket } => s3.list_all(bucket, "", "").keys,
        }
    }

    /// Multipart uploads started and neither completed nor aborted (S3 only).
    fn pending_uploads(&self) -> usize {
        match self {
            Bucket::Fs(_) => 0,
            Bucket::S3 { s3, bucket } => {
                let r = s3
                    .request("GET", bucket, "", "uploads", &[], b"")
                    .expect("ListMultipartUploads");
                assert_eq!(r.status, 200, "{}", r.text());
                common::xml_values(&r.text(), "UploadId").len()
            }
        }
    }
}

/// What the rounds of one store did.
#[derive(Default)]
struct Tally {
    killed: usize,
    /// Killed uploads that committed anyway: (name, bytes committed).
    committed: Vec<(String, usize)>,
    finished: usize,
}

/// `curl -T -` reading a pipe that the test feeds in chunks; killed with SIGKILL after `kill_after` bytes and a
/// random pause (the server has usually read everything by then and waits for more, which is when the data
/// connection's end looks like a finished upload), or let finish when `kill_after` is `None`.
fn curl_round(curl: &Path, url: &str, body: &[u8], kill_after: Option<usize>, pause: Duration) {
    let mut child = Command::new(curl)
        .args(["-sS", "--max-time", "60", "-T", "-", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn curl");
    let mut stdin = child.stdin.take().expect("stdin");
    let end = kill_after.unwrap_or(body.len());
    for chunk in body[..end].chunks(64 * KIB) {
        if stdin.write_all(chunk).is_err() {
            break;
        }
    }
    match kill_after {
        Some(_) => {
            std::thread::sleep(pause);
            child.kill().expect("SIGKILL curl");
            let _ = child.wait();
        }
        None => {
            drop(stdin);
            let status = child.wait().expect("wait for curl");
            assert!(status.success(), "curl -T of a whole file: {status}");
        }
    }
}

/// A raw client: STOR, some bytes, then both connections closed without QUIT, in either order.
fn raw_round(server: &TestServer, name: &str, bytes: usize, data_first: bool) {
    let mut c = server.login();
    let mut data = c.epsv();
    c.expect(&format!("STOR {name}"), 150);
    data.write_all(&pattern(bytes, 3)).expect("send data");
    // Wait until the server has read it all and waits for more.
    wait_progress(&mut c, bytes as u64);
    if data_first {
        drop(data);
        drop(c);
    } else {
        drop(c);
        drop(data);
    }
}

/// Waits until the running transfer has moved at least `bytes` (STAT during a transfer reports its progress).
fn wait_progress(c: &mut Ctl, bytes: u64) {
    let deadline = std::time::Instant::now() + ftpd::TIMEOUT;
    loop {
        let stat = c.expect("STAT", 213);
        let moved: u64 = stat
            .text()
            .split(": ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("STAT during a transfer: {stat:?}"));
        if moved >= bytes {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no progress: {stat:?}"
        );
        std::thread::yield_now();
    }
}

/// Runs `rounds` curl rounds (one in ten let finish) and `raw` raw-client rounds against `server`, and checks the
/// store after each: a killed upload left no object, a finished one its whole file.
fn kill_rounds(
    server: &TestServer,
    bucket: &Bucket<'_>,
    file_size: usize,
    rounds: usize,
    raw: usize,
    seed: u64,
) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng(seed);
    let body = pattern(file_size, 7);
    let curl = tool("curl");
    let check = |tally: &mut Tally, name: String, killed: bool| {
        // The session has ended once its transfer is settled: committed or aborted, nothing pending.
        server.wait_connections(0);
        let size = bucket.committed(&name);
        if killed {
            tally.killed += 1;
            if let Some(size) = size {
                tally.committed.push((name, size));
            }
        } else {
            assert_eq!(size, Some(file_size), "{name}: a finished upload commits");
            tally.finished += 1;
        }
    };
    if let Some(curl) = &curl {
        for round in 0..rounds {
            let name = format!("curl-{round}.bin");
            let url = format!("{}{name}", server.url());
            let kill_after = (round % 10 != 9).then(|| rng.below(file_size - 64 * KIB));
            let pause = Duration::from_millis(rng.below(30) as u64);
            curl_round(curl, &url, &body, kill_after, pause);
            check(&mut tally, name, kill_after.is_some());
        }
    }
    for round in 0..raw {
        let name = format!("raw-{round}.bin");
        raw_round(server, &name, 1 + rng.below(file_size), round % 2 == 0);
        check(&mut tally, name, true);
    }
    tally
}

fn report(store: &str, tally: &Tally, bucket: &Bucket<'_>) {
    eprintln!(
        "{store}: {} of {} killed uploads committed {:?}; {} finished uploads committed whole",
        tally.committed.len(),
        tally.killed,
        tally.committed,
        tally.finished
    );
    assert!(
        tally.committed.is_empty(),
        "{store}: killed clients committed {} of {} uploads: {:?}",
        tally.committed.len(),
        tally.killed,
        tally.committed
    );
    let left: Vec<String> = bucket
        .keys()
        .into_iter()
        .filter(|k| !k.starts_with("curl-"))
        .collect();
    assert!(left.is_empty(), "{store}: objects left: {left:?}");
}

#[test]
fn killed_clients_commit_nothing_on_fs() {
    let server = TestServer::start();
    let bucket = Bucket::Fs(&server);
    let tally = kill_rounds(&server, &bucket, 3 * MIB, 50, 20, 0x5eed_0001);
    report("fs", &tally, &bucket);
}

#[test]
fn killed_clients_commit_nothing_on_s3() {
    let Some(s3) = common::S3Server::shared(common::ServerMode::S3) else {
        return;
    };
    let name = common::unique_bucket("killed");
    s3.create_bucket(&name);
    // Resume off: a killed client's upload is then aborted, and nothing may be left behind. (With resume on, it is
    // kept for a resume instead: tests/ftp_resume.rs.)
    let server = TestServer::builder()
        .store(Store::S3 {
            endpoint: s3.endpoint(),
            bucket: name.clone(),
        })
        .optional("upload_resume_ttl = 0")
        .start();
    let bucket = Bucket::S3 { s3, bucket: name };
    // Past 10 MiB (two 5 MiB parts) a multipart upload is under way when the client dies.
    let tally = kill_rounds(&server, &bucket, 12 * MIB, 50, 20, 0x5eed_0002);
    report("s3", &tally, &bucket);
    assert_eq!(bucket.pending_uploads(), 0, "multipart uploads left behind");
}
