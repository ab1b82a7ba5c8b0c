//! Shared harness of the integration tests (`tests/*.rs` say `mod common;`).
//!
//! - [`S3Server`]: a loopback S3 server (moto, `tests/support/s3_server.py`, run with the venv python that
//!   `scripts/test.sh` installs), in plain S3 or COS mode, with a raw-HTTP client to look into the store
//!   without going through the product.
//! - [`require_s3`] / [`require_fuse`]: in CI a missing piece is a failure, elsewhere a skip.
//! - [`free_port`], [`write_config`], [`unique_bucket`].
//!
//! Everything here is synchronous (std only), so both plain `#[test]`s and `#[tokio::test]`s can use it; from
//! async code, call the HTTP helpers through `tokio::task::spawn_blocking` if the runtime has one thread.
#![allow(dead_code)]

pub mod daemon;

pub mod services;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::Duration;

/// `COSFTPD_REQUIRE_S3=1`: a test that cannot start the S3 server fails instead of skipping (CI sets it).
pub fn require_s3() -> bool {
    env_flag("COSFTPD_REQUIRE_S3")
}

/// `COSFTPD_REQUIRE_FUSE=1`: a test that cannot mount FUSE fails instead of skipping (CI sets it).
pub fn require_fuse() -> bool {
    env_flag("COSFTPD_REQUIRE_FUSE")
}

pub(crate) fn env_flag(name: &str) -> bool {
    matches!(
        std::env::var(name).as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// Skips (returns `None` after an eprintln "skipping: …") or panics, as `COSFTPD_REQUIRE_S3` says.
fn s3_unavailable<T>(why: &str) -> Option<T> {
    if require_s3() {
        panic!("COSFTPD_REQUIRE_S3=1 but the S3 test server is unavailable: {why} (run scripts/test.sh to install it)");
    }
    eprintln!("skipping: S3 test server unavailable: {why} (run scripts/test.sh to install it)");
    None
}

/// A port that was free on 127.0.0.1 a moment ago (bind to :0, read it, close).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Writes `text` to `dir/cosftpd.conf` (creating `dir`) and returns the file's path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create config dir");
    let path = dir.join("cosftpd.conf");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A bucket name unique in this process and among concurrent test processes: `<prefix>-<pid>-<n>`, lowercase,
/// valid for S3 and COS (3–63 characters of `[a-z0-9-]`). Useful with a shared server.
pub fn unique_bucket(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut name = format!(
        "{}-{}-{}",
        prefix.to_ascii_lowercase(),
        std::process::id(),
        n
    );
    name.truncate(63);
    name
}

/// How the S3 server is addressed. See `tests/support/s3_server.py` for the details.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerMode {
    /// Plain S3, path-style: `http://127.0.0.1:PORT/<bucket>/<key>` (OpenDAL `s3` service, any region and keys).
    S3,
    /// Tencent COS dialect, virtual-host style: `Host: <bucket>.cos.ap-guangzhou.myqcloud.com:PORT`, `/<key>`
    /// (OpenDAL `cos` service with endpoint [`S3Server::cos_endpoint`] and `<bucket>.`[`COS_DOMAIN`] resolved
    /// to [`S3Server::addr`]). Path-style requests to 127.0.0.1 work too.
    Cos,
}

impl ServerMode {
    fn arg(self) -> &'static str {
        match self {
            ServerMode::S3 => "s3",
            ServerMode::Cos => "cos",
        }
    }
}

/// The COS region the tests pretend to use.
pub const COS_REGION: &str = "ap-guangzhou";
/// The COS endpoint host for [`COS_REGION`]; a bucket's host is `<bucket>.COS_DOMAIN`.
pub const COS_DOMAIN: &str = "cos.ap-guangzhou.myqcloud.com";

/// Options of [`S3Server::start_with_options`].
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Buckets created before the server answers.
    pub buckets: Vec<String>,
    /// Smallest non-last multipart part the server accepts (else EntityTooSmall on complete). `None`: the
    /// real store's limit, 5 MiB in S3 mode, 1 MiB in COS mode.
    pub min_part_size: Option<usize>,
}

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A moto S3 server on 127.0.0.1, a child process of the test. Dropping it kills the server.
pub struct S3Server {
    port: u16,
    mode: ServerMode,
    child: Option<Child>,
    // Kept open: the server exits when it reads EOF, i.e. when this process dies.
    stdin: Option<ChildStdin>,
}

impl S3Server {
    /// Starts a server with no buckets. `None` (after "skipping: …" on stderr) when python or moto is missing
    /// and `COSFTPD_REQUIRE_S3` is not set; panics when it is set, or when the server fails otherwise.
    pub fn start(mode: ServerMode) -> Option<S3Server> {
        Self::start_with_buckets(mode, &[])
    }

    /// Like [`S3Server::start`], with these buckets created before the server answers.
    pub fn start_with_buckets(mode: ServerMode, buckets: &[&str]) -> Option<S3Server> {
        Self::start_with_options(
            mode,
            &ServerOptions {
                buckets: buckets.iter().map(|b| b.to_string()).collect(),
                ..ServerOptions::default()
            },
        )
    }

    /// Like [`S3Server::start`], with [`ServerOptions`].
    pub fn start_with_options(mode: ServerMode, options: &ServerOptions) -> Option<S3Server> {
        let python = python_path();
        if !python.exists() {
            return s3_unavailable(&format!("no python at {}", python.display()));
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/s3_server.py");
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .args(["--mode", mode.arg(), "--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if !options.buckets.is_empty() {
            cmd.arg("--buckets").arg(options.buckets.join(","));
        }
        if let Some(size) = options.min_part_size {
            cmd.arg("--min-part-size").arg(size.to_string());
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return s3_unavailable(&format!("cannot run {}: {e}", python.display())),
        };
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");

        // Read stdout on a thread so the wait can time out; the thread keeps draining it afterwards.
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line.clone()).is_err() {
                    eprintln!("s3_server stdout: {line}");
                }
            }
        });

        let started = std::time::Instant::now();
        let fail = |child: &mut Child, msg: String| -> ! {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "S3 test server ({}) failed to start: {msg}",
                script.display()
            );
        };
        loop {
            let left = READY_TIMEOUT.saturating_sub(started.elapsed());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(port) = line.strip_prefix("READY ") {
                        let port: u16 = match port.trim().parse() {
                            Ok(p) => p,
                            Err(_) => fail(&mut child, format!("bad READY line {line:?}")),
                        };
                        return Some(S3Server {
                            port,
                            mode,
                            child: Some(child),
                            stdin,
                        });
                    }
                    if let Some(why) = line.strip_prefix("MISSING ") {
                        let _ = child.wait();
                        return s3_unavailable(why);
                    }
                    eprintln!("s3_server stdout: {line}");
                }
                Err(mpsc::RecvTimeoutError::Timeout) => fail(
                    &mut child,
                    format!("no READY line within {READY_TIMEOUT:?}"),
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().ok();
                    fail(
                        &mut child,
                        format!("exited before READY ({status:?}); its stderr is above"),
                    )
                }
            }
        }
    }

    /// One server per mode for the whole test binary, started on first use (tests sharing it should use
    /// [`unique_bucket`] names). Never dropped: it exits when the test process does (EOF on its stdin).
    pub fn shared(mode: ServerMode) -> Option<&'static S3Server> {
        static SHARED: OnceLock<Mutex<HashMap<ServerMode, &'static S3Server>>> = OnceLock::new();
        let mut map = SHARED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(&mode) {
            return Some(s);
        }
        let server: &'static S3Server = Box::leak(Box::new(Self::start(mode)?));
        map.insert(mode, server);
        Some(server)
    }

    pub fn mode(&self) -> ServerMode {
        self.mode
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, where every host name of this server must resolve.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:PORT`: the endpoint for OpenDAL's `s3` service (path-style).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://cos.ap-guangzhou.myqcloud.com:PORT`: the endpoint for OpenDAL's `cos` service, which turns it
    /// into `http://<bucket>.cos.ap-guangzhou.myqcloud.com:PORT`; resolve that name to [`S3Server::addr`].
    pub fn cos_endpoint(&self) -> String {
        format!("http://{COS_DOMAIN}:{}", self.port)
    }

    /// The host name (no port) a client of this mode uses for `bucket`: `127.0.0.1` in S3 mode,
    /// `<bucket>.cos.ap-guangzhou.myqcloud.com` in COS mode.
    pub fn bucket_host(&self, bucket: &str) -> String {
        match self.mode {
            ServerMode::S3 => "127.0.0.1".to_string(),
            ServerMode::Cos => format!("{bucket}.{COS_DOMAIN}"),
        }
    }

    /// `(host name, address)` to give reqwest's `ClientBuilder::resolve` so the cos service reaches this
    /// server for `bucket`.
    pub fn cos_resolve(&self, bucket: &str) -> (String, SocketAddr) {
        (format!("{bucket}.{COS_DOMAIN}"), self.addr())
    }

    /// A raw request addressed the way this mode's client does it: S3 → `Host: 127.0.0.1:PORT`,
    /// `/<bucket>/<key>`; COS → `Host: <bucket>.cos.<region>.myqcloud.com:PORT`, `/<key>`. `key` is not encoded
    /// yet (this does it, keeping `/`); `query` is the raw query string without `?` ("" for none).
    pub fn request(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<HttpResponse> {
        let host = format!("{}:{}", self.bucket_host(bucket), self.port);
        let mut path = match self.mode {
            ServerMode::S3 => format!("/{bucket}/{}", encode_key(key)),
            ServerMode::Cos => format!("/{}", encode_key(key)),
        };
        if !query.is_empty() {
            path.push('?');
            path.push_str(query);
        }
        http_request(self.addr(), method, &host, &path, headers, body)
    }

    /// Creates a bucket (PUT bucket); panics unless the server answers 200.
    pub fn create_bucket(&self, name: &str) {
        let r = self
            .request("PUT", name, "", "", &[], b"")
            .expect("PUT bucket");
        assert_eq!(r.status, 200, "create bucket {name}: {}", r.text());
    }

    /// Stores an object directly (PUT object); panics unless 200.
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        let r = self
            .request(
                "PUT",
                bucket,
                key,
                "",
                &[("Content-Type", "application/octet-stream")],
                body,
            )
            .expect("PUT object");
        assert_eq!(r.status, 200, "put {bucket}/{key}: {}", r.text());
    }

    /// Reads an object directly: `Some(bytes)`, `None` on 404; panics on anything else.
    ///
    /// moto answers 500 ("read of closed file") to a GET that meets a replacement of the same key — here the
    /// copy onto itself that stores a multipart upload's digests just after its commit, which a real store
    /// serves as the old or the new version (same bytes). Such a GET is asked again.
    pub fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        const ATTEMPTS: u32 = 5;
        for attempt in 1..=ATTEMPTS {
            let r = self
                .request("GET", bucket, key, "", &[], b"")
                .expect("GET object");
            match r.status {
                200 => return Some(r.body),
                404 => return None,
                500 if attempt < ATTEMPTS => {
                    std::thread::sleep(std::time::Duration::from_millis(20 * u64::from(attempt)))
                }
                s => panic!("get {bucket}/{key}: HTTP {s}: {}", r.text()),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Deletes an object directly; panics unless 204/200.
    pub fn delete_object(&self, bucket: &str, key: &str) {
        let r = self
            .request("DELETE", bucket, key, "", &[], b"")
            .expect("DELETE object");
        assert!(
            matches!(r.status, 200 | 204),
            "delete {bucket}/{key}: HTTP {}: {}",
            r.status,
            r.text()
        );
    }

    /// One page of ListObjects (v1, as COS has it) with `prefix`, `delimiter` ("" for none), `marker`
    /// ("" for none) and `max_keys` (0 for the default of 1,000); panics unless 200.
    pub fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: &str,
        marker: &str,
        max_keys: usize,
    ) -> ListPage {
        let mut q = vec![format!("prefix={}", encode_query(prefix))];
        if !delimiter.is_empty() {
            q.push(format!("delimiter={}", encode_query(delimiter)));
        }
        if !marker.is_empty() {
            q.push(format!("marker={}", encode_query(marker)));
        }
        if max_keys > 0 {
            q.push(format!("max-keys={max_keys}"));
        }
        let r = self
            .request("GET", bucket, "", &q.join("&"), &[], b"")
            .expect("GET bucket");
        assert_eq!(r.status, 200, "list {bucket} {prefix:?}: {}", r.text());
        ListPage::parse(&r.text())
    }

    /// Every key and common prefix under `prefix`, following NextMarker page by page.
    pub fn list_all(&self, bucket: &str, prefix: &str, delimiter: &str) -> ListPage {
        let mut all = ListPage::default();
        let mut marker = String::new();
        loop {
            let page = self.list_page(bucket, prefix, delimiter, &marker, 0);
            all.keys.extend(page.keys);
            all.common_prefixes.extend(page.common_prefixes);
            match page.next_marker {
                Some(m) if page.is_truncated => marker = m,
                _ => return all,
            }
        }
    }

    /// Kills the server and waits for it (the store goes away mid-test). Idempotent.
    pub fn stop(&mut self) {
        self.stdin.take();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections are still accepted by the kernel, but nothing is answered — a
    /// stalled store. `resume` (or Drop) ends it.
    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&mut self, signal: i32) {
        if let Some(child) = &self.child {
            let pid = i32::try_from(child.id()).expect("pid");
            // SAFETY: plain kill(2) of our own child process.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn python_path() -> PathBuf {
    match std::env::var_os("COSFTPD_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

/// A parsed ListObjects page (only what tests look at). Keys and prefixes are XML-unescaped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub keys: Vec<String>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_marker: Option<String>,
}

impl ListPage {
    pub fn parse(xml: &str) -> ListPage {
        let mut page = ListPage {
            is_truncated: xml_values(xml, "IsTruncated")
                .first()
                .map(|v| v == "true")
                .unwrap_or(false),
            next_marker: xml_values(xml, "NextMarker").into_iter().next(),
            ..ListPage::default()
        };
        for contents in xml_values(xml, "Contents") {
            page.keys.extend(xml_values(&contents, "Key"));
        }
        for cp in xml_values(xml, "CommonPrefixes") {
            page.common_prefixes.extend(xml_values(&cp, "Prefix"));
        }
        page
    }
}

/// The texts of every `<tag>…</tag>` in `xml` (no nesting of the same tag; entities decoded).
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(xml_unescape(&after[..j]));
        rest = &after[j + close.len()..];
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Percent-encodes a key for a URL path: everything but unreserved characters and `/`.
pub fn encode_key(key: &str) -> String {
    encode(key, true)
}

/// Percent-encodes a query value: everything but unreserved characters.
pub fn encode_query(value: &str) -> String {
    encode(value, false)
}

fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A response read by [`http_request`].
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A minimal HTTP/1.1 client over std: one request per connection (`Connection: close`), body sent with
/// Content-Length, response read to EOF (Content-Length or chunked honoured). For looking into a test store.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(req.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let bad = |msg: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string());
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[head_end + 4..].to_vec();
    let mut resp = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    } else if let Some(len) = resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        if method != "HEAD" && body.len() >= len {
            body.truncate(len);
        }
    }
    resp.body = body;
    Ok(resp)
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Deterministic bytes that do not repeat at any small period (so a misplaced range cannot compare equal).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `path`, single-quoted for sh.
pub fn shell_quote(path: &std::path::Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// The errno of a failed call (panics when it succeeded: the test expected a refusal).
pub fn errno<T: std::fmt::Debug>(result: std::io::Result<T>) -> i32 {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .raw_os_error()
            .unwrap_or_else(|| panic!("no errno in {e}")),
    }
}
