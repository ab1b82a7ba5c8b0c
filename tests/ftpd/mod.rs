//! In-process FTP server for the client tests (`tests/ftp_*.rs` say `mod common; mod ftpd;`).
//!
//! - [`TestServer`]: our FTP engine on 127.0.0.1 (port 0) over a temporary `fs` store (or an S3 server), in its own
//!   tokio runtime, so tests are plain synchronous `#[test]`s that drive external clients.
//! - [`Ctl`]: a raw control connection (std `TcpStream`) that reads replies the RFC 959 way, for protocol tests.
//! - [`run`] / [`tool`]: external client processes with a deadline; a missing client skips, unless
//!   `COSFTPD_REQUIRE_S3=1` (CI) makes it a failure.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cosftpd::bucketfs::BucketFs;
use cosftpd::config::Config;
use cosftpd::daemon::{self, Mode, RunOptions};
use cosftpd::ftp::server::{FtpServer, ServerContext};
use cosftpd::storage::StorageOptions;

use crate::common;

/// How long any one reply, data transfer or client process may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The passive range of every test server: below Linux's ephemeral ports, so outgoing connections do not take them;
/// ports in use (other servers, other tests) are skipped by the engine.
const PASSIVE: &str = "20000,29999";

/// One `[COS_ACCOUNT_n]`.
#[derive(Clone, Debug)]
pub struct Account {
    pub user: String,
    pub pass: String,
    pub authority: String,
    pub delete_enable: bool,
}

impl Account {
    pub fn new(user: &str, pass: &str, authority: &str, delete_enable: bool) -> Self {
        Self {
            user: user.into(),
            pass: pass.into(),
            authority: authority.into(),
            delete_enable,
        }
    }
}

/// Where the accounts' objects live.
#[derive(Clone, Debug)]
pub enum Store {
    /// A temporary directory (shared by all accounts).
    Fs,
    /// An S3 server (`storage_type = s3`, path-style), this bucket.
    S3 { endpoint: String, bucket: String },
}

/// FTPS settings of a test server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    Off,
    Optional,
    Required,
}

pub struct Builder {
    accounts: Vec<Account>,
    store: Store,
    tls: Tls,
    implicit_tls: bool,
    network: Vec<String>,
    file: Vec<String>,
    optional: Vec<String>,
    listen_address: Option<std::net::IpAddr>,
}

impl Builder {
    pub fn account(mut self, user: &str, pass: &str, authority: &str, delete_enable: bool) -> Self {
        self.accounts
            .push(Account::new(user, pass, authority, delete_enable));
        self
    }

    pub fn store(mut self, store: Store) -> Self {
        self.store = store;
        self
    }

    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Also listen for implicit FTPS (needs `tls`).
    pub fn implicit_tls(mut self) -> Self {
        self.implicit_tls = true;
        self
    }

    /// Listen on this address instead of 127.0.0.1 (e.g. `::1`).
    pub fn listen_address(mut self, ip: std::net::IpAddr) -> Self {
        self.listen_address = Some(ip);
        self
    }

    /// A `key = value` line for `[NETWORK]`.
    pub fn network(mut self, line: &str) -> Self {
        self.network.push(line.into());
        self
    }

    /// A `key = value` line for `[FILE_OPTION]`.
    pub fn file(mut self, line: &str) -> Self {
        self.file.push(line.into());
        self
    }

    /// A `key = value` line for `[OPTIONAL]`.
    pub fn optional(mut self, line: &str) -> Self {
        self.optional.push(line.into());
        self
    }

    pub fn start(self) -> TestServer {
        init_logging();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("bucket");
        let mut text = String::new();
        let accounts = if self.accounts.is_empty() {
            vec![Account::new("user", "pass", "RW", true)]
        } else {
            self.accounts
        };
        for (n, a) in accounts.iter().enumerate() {
            let home = dir.path().join(format!("home-{n}"));
            std::fs::create_dir_all(&home).expect("home dir");
            text += &format!("[COS_ACCOUNT_{n}]\n");
            match &self.store {
                Store::Fs => {
                    text += &format!("storage_type = fs\nstorage_root = {}\n", root.display())
                }
                Store::S3 { endpoint, bucket } => {
                    text += &format!(
                        "storage_type = s3\ncos_endpoint = {endpoint}\ncos_bucket = {bucket}\n\
                         cos_secretid = test-key\ncos_secretkey = test-secret\n"
                    )
                }
            }
            text += &format!(
                "home_dir = {}\nftp_login_user_name = {}\nftp_login_user_password = {}\nauthority = {}\n\
                 delete_enable = {}\n\n",
                home.display(),
                a.user,
                a.pass,
                a.authority,
                a.delete_enable
            );
        }
        // The port in the file is replaced by 0 below (the config refuses 0, the listener takes it).
        text += &format!(
            "[NETWORK]\nlisten_address = 127.0.0.1\nlisten_port = 2121\npassive_port = {PASSIVE}\n"
        );
        let mut cert_files = None;
        if self.tls != Tls::Off {
            let (cert, key) = write_certificate(dir.path());
            let mode = match self.tls {
                Tls::Required => "required",
                _ => "optional",
            };
            text += &format!(
                "tls_mode = {mode}\ntls_cert_file = {}\ntls_key_file = {}\n",
                cert.display(),
                key.display()
            );
            if self.implicit_tls {
                text += "tls_implicit_port = 2990\n";
            }
            cert_files = Some(cert);
        }
        for line in &self.network {
            text += &format!("{line}\n");
        }
        text += "\n[FILE_OPTION]\n";
        for line in &self.file {
            text += &format!("{line}\n");
        }
        text += "\n[OPTIONAL]\nmount_enable = false\nlog_level = info\n";
        for line in &self.optional {
            text += &format!("{line}\n");
        }

        let mut config = match Config::parse_str(&text) {
            Ok(c) => c,
            Err(e) => panic!("test config refused: {:?}\n{text}", e.errors),
        };
        config.network.listen_port = 0;
        if let Some(ip) = self.listen_address {
            config.network.listen_address = ip;
        }
        if config.network.tls_implicit_port.is_some() {
            config.network.tls_implicit_port = Some(0);
        }
        let config = Arc::new(config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (server, filesystems) = runtime.block_on(async {
            let options = RunOptions {
                mode: Mode::Serve,
                no_check: true,
                storage: StorageOptions::default(),
            };
            let accounts = daemon::open_accounts(&config, &options, None)
                .await
                .expect("open accounts");
            let context = ServerContext::new(Arc::clone(&config), &accounts, None)
                .await
                .expect("server context");
            let server = FtpServer::start(Arc::new(context))
                .await
                .expect("FTP server start");
            (server, accounts.into_iter().map(|a| a.fs).collect())
        });
        let addrs = server.local_addrs().to_vec();
        TestServer {
            runtime: Some(runtime),
            server: Some(server),
            addr: addrs[0],
            implicit_addr: addrs.get(1).copied(),
            root,
            cert: cert_files,
            accounts,
            filesystems,
            _dir: dir,
        }
    }
}

/// A running engine; dropping it shuts the listeners and sessions down.
pub struct TestServer {
    runtime: Option<tokio::runtime::Runtime>,
    server: Option<FtpServer>,
    pub addr: SocketAddr,
    /// The implicit-FTPS listener, when configured.
    pub implicit_addr: Option<SocketAddr>,
    /// The `fs` store's directory (objects are files under it).
    pub root: PathBuf,
    /// The server's certificate (PEM), when TLS is on.
    pub cert: Option<PathBuf>,
    pub accounts: Vec<Account>,
    /// Each account's filesystem, the one its FTP sessions use (a test may mount it, as `serve` does; the daemon's
    /// background tasks drive it, e.g. the upload sweep).
    filesystems: Vec<BucketFs>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub fn builder() -> Builder {
        Builder {
            accounts: Vec::new(),
            store: Store::Fs,
            tls: Tls::Off,
            implicit_tls: false,
            network: Vec::new(),
            file: Vec::new(),
            optional: Vec::new(),
            listen_address: None,
        }
    }

    /// One RW account `user`/`pass` over a temporary directory.
    pub fn start() -> TestServer {
        Self::builder().start()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Account `n`'s filesystem: what its FTP sessions see, shared with a mount of it as in `serve`.
    pub fn fs(&self, n: usize) -> BucketFs {
        self.filesystems[n].clone()
    }

    /// The server's runtime, for a mount of an account's filesystem.
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.runtime.as_ref().expect("running").handle().clone()
    }

    /// `ftp://user:pass@127.0.0.1:PORT/` of the first account.
    pub fn url(&self) -> String {
        let a = &self.accounts[0];
        format!("ftp://{}:{}@127.0.0.1:{}/", a.user, a.pass, self.port())
    }

    /// The object at `key` in the `fs` store, `None` when absent (or a directory).
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        let path = self.root.join(key);
        if path.is_file() {
            Some(std::fs::read(path).expect("read object"))
        } else {
            None
        }
    }

    /// Puts a file straight into the `fs` store (fixtures), creating its directories.
    pub fn put(&self, key: &str, body: &[u8]) {
        let path = self.root.join(key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, body).expect("write object");
    }

    /// Every file under the `fs` store, as keys, sorted (to see that nothing was left behind).
    pub fn keys(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else if let Ok(rel) = p.strip_prefix(base) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.sort();
        out
    }

    /// Stops the server as SIGTERM does (`FtpServer::shutdown`), and waits until it has.
    pub fn shutdown(&mut self) {
        if let (Some(runtime), Some(server)) = (self.runtime.as_ref(), self.server.take()) {
            runtime.block_on(server.shutdown());
        }
    }

    /// Control connections the server has admitted and not yet ended.
    /// Runs the sweep of pending uploads of every account once (the daemon runs it at start and periodically).
    pub fn sweep(&self) -> cosftpd::bucketfs::SweepReport {
        let runtime = self.runtime.as_ref().expect("runtime");
        let mut total = cosftpd::bucketfs::SweepReport::default();
        for fs in &self.filesystems {
            let report = runtime.block_on(fs.sweep_uploads()).expect("sweep");
            total.kept += report.kept;
            total.expired += report.expired;
            total.failed += report.failed;
        }
        total
    }

    pub fn connections(&self) -> usize {
        self.server.as_ref().map_or(0, FtpServer::connections)
    }

    /// Waits until at most `n` control connections are left: every other session has ended, and with it its
    /// transfer (an upload is committed or aborted by then).
    pub fn wait_connections(&self, n: usize) {
        let deadline = Instant::now() + TIMEOUT;
        while self.connections() > n {
            assert!(
                Instant::now() < deadline,
                "{} sessions still running",
                self.connections()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A logged-in raw control connection as account `n`.
    pub fn login_as(&self, n: usize) -> Ctl {
        let a = &self.accounts[n];
        let mut ctl = Ctl::connect(self.addr);
        ctl.login(&a.user, &a.pass);
        ctl
    }

    /// A logged-in raw control connection as the first account.
    pub fn login(&self) -> Ctl {
        self.login_as(0)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let (Some(runtime), Some(server)) = (self.runtime.take(), self.server.take()) {
            runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(30), server.shutdown()).await;
            });
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A self-signed certificate for `localhost` and 127.0.0.1, as PEM files in `dir`.
fn write_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("self-signed certificate");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, signing_key.serialize_pem()).expect("write key");
    (cert_path, key_path)
}

// ---------------------------------------------------------------------------------------------------------------
// Raw control connection
// ---------------------------------------------------------------------------------------------------------------

/// One reply: its code and every line's text (without the code).
#[derive(Clone, Debug)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// A control connection driven byte by byte.
pub struct Ctl {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub greeting: Reply,
}

impl Ctl {
    /// Connects and reads the greeting (any code: 220, or 421 when refused).
    pub fn connect(addr: SocketAddr) -> Ctl {
        Self::from_stream(TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect"))
    }

    /// Takes over a connected control stream and reads the greeting.
    pub fn from_stream(stream: TcpStream) -> Ctl {
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(TIMEOUT)).expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut ctl = Ctl {
            reader: BufReader::new(stream),
            writer,
            greeting: Reply {
                code: 0,
                lines: Vec::new(),
            },
        };
        ctl.greeting = ctl.reply();
        ctl
    }

    pub fn login(&mut self, user: &str, pass: &str) {
        assert_eq!(self.greeting.code, 220, "greeting {:?}", self.greeting);
        self.expect(&format!("USER {user}"), 331);
        self.expect(&format!("PASS {pass}"), 230);
    }

    /// Sends raw bytes (a command line must carry its own CRLF).
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send");
    }

    /// Sends raw bytes; false when the server has closed the connection.
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.writer.write_all(bytes).is_ok()
    }

    /// Sends `line` + CRLF and reads the reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.cmd_bytes(line.as_bytes())
    }

    pub fn cmd_bytes(&mut self, line: &[u8]) -> Reply {
        let mut bytes = line.to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.send(&bytes);
        self.reply()
    }

    /// Sends `line` + CRLF and reads the reply; `None` when the server has closed the connection.
    pub fn try_cmd(&mut self, line: &str) -> Option<Reply> {
        if !self.try_send(format!("{line}\r\n").as_bytes()) {
            return None;
        }
        self.try_reply()
    }

    /// Sends `line` and asserts the reply code.
    pub fn expect(&mut self, line: &str, code: u16) -> Reply {
        let reply = self.cmd(line);
        assert_eq!(reply.code, code, "{line} → {reply:?}");
        reply
    }

    /// Reads the next reply (the end of a transfer) and asserts its code.
    pub fn expect_final(&mut self, code: u16) -> Reply {
        let reply = self.reply();
        assert_eq!(reply.code, code, "{reply:?}");
        reply
    }

    /// Reads one reply; panics on EOF or timeout.
    pub fn reply(&mut self) -> Reply {
        match self.try_reply() {
            Some(r) => r,
            None => panic!("the server closed the control connection"),
        }
    }

    /// Reads one reply; `None` when the connection is closed (EOF or reset) before one arrives.
    pub fn try_reply(&mut self) -> Option<Reply> {
        let first = self.line()?;
        let code = parse_code(&first);
        let mut lines = vec![first.get(4..).unwrap_or_default().to_string()];
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                let line = self.line()?;
                if line.starts_with(&end) || line == format!("{code}") {
                    lines.push(line.get(4..).unwrap_or_default().to_string());
                    break;
                }
                lines.push(line);
            }
        }
        Some(Reply { code, lines })
    }

    /// One line, lossily decoded, without CRLF; `None` at EOF or on a reset.
    fn line(&mut self) -> Option<String> {
        let mut raw = Vec::new();
        match self.reader.read_until(b'\n', &mut raw) {
            Ok(0) => None,
            Ok(_) => {
                while raw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    raw.pop();
                }
                Some(String::from_utf8_lossy(&raw).into_owned())
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("no reply within {TIMEOUT:?}")
            }
            Err(_) => None,
        }
    }

    /// Whether something (a reply, or the end of the connection) arrives within `wait`; nothing is consumed.
    pub fn has_reply_within(&mut self, wait: Duration) -> bool {
        self.reader
            .get_ref()
            .set_read_timeout(Some(wait))
            .expect("timeout");
        let arrived = match self.reader.fill_buf() {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        self.reader
            .get_ref()
            .set_read_timeout(Some(TIMEOUT))
            .expect("timeout");
        arrived
    }

    /// One reply line as raw bytes (for replies carrying names in a legacy encoding).
    pub fn raw_reply_line(&mut self) -> Vec<u8> {
        let mut raw = Vec::new();
        self.reader.read_until(b'\n', &mut raw).expect("read");
        raw
    }

    /// Whether the server has closed the connection: reads to EOF (discarding any replies).
    pub fn is_closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }

    /// EPSV, then the connected data socket.
    pub fn epsv(&mut self) -> TcpStream {
        let reply = self.expect("EPSV", 229);
        let text = reply.text();
        let inner = text
            .split('(')
            .nth(1)
            .and_then(|s| s.split(')').next())
            .unwrap_or_else(|| panic!("bad EPSV reply {text:?}"));
        let port: u16 = inner
            .trim_matches('|')
            .parse()
            .unwrap_or_else(|_| panic!("bad EPSV port in {text:?}"));
        let addr = SocketAddr::new(self.writer.peer_addr().expect("peer").ip(), port);
        data_socket(addr)
    }

    /// PASV, then the connected data socket.
    pub fn pasv(&mut self) -> TcpStream {
        let reply = self.expect("PASV", 227);
        data_socket(parse_pasv(&reply.text()))
    }

    /// RETR through EPSV: (150 reply, bytes, final reply).
    pub fn retr(&mut self, path: &str) -> (Reply, Vec<u8>, Reply) {
        self.download(&format!("RETR {path}"))
    }

    /// A data-receiving command (RETR, LIST, NLST, MLSD) through EPSV. When the first reply is not 1xx, the data
    /// connection is dropped and that reply is returned twice.
    pub fn download(&mut self, line: &str) -> (Reply, Vec<u8>, Reply) {
        let mut data = self.epsv();
        let first = self.cmd(line);
        if first.code >= 200 {
            drop(data);
            return (first.clone(), Vec::new(), first);
        }
        let mut body = Vec::new();
        data.read_to_end(&mut body).expect("read data");
        let last = self.reply();
        (first, body, last)
    }

    /// A data-sending command (STOR, APPE, STOU) through EPSV: (first reply, final reply).
    pub fn upload(&mut self, line: &str, body: &[u8]) -> (Reply, Reply) {
        let mut data = self.epsv();
        let first = self.cmd(line);
        if first.code >= 200 {
            drop(data);
            return (first.clone(), first);
        }
        data.write_all(body).expect("send data");
        drop(data);
        let last = self.reply();
        (first, last)
    }

    /// STOR that must succeed.
    pub fn stor(&mut self, path: &str, body: &[u8]) {
        let (first, last) = self.upload(&format!("STOR {path}"), body);
        assert_eq!(first.code, 150, "STOR {path}: {first:?}");
        assert_eq!(last.code, 226, "STOR {path}: {last:?}");
    }

    /// NLST of `path` ("" for the current directory), sorted names.
    pub fn nlst(&mut self, path: &str) -> Vec<String> {
        let line = if path.is_empty() {
            "NLST".to_string()
        } else {
            format!("NLST {path}")
        };
        let (first, body, last) = self.download(&line);
        assert_eq!(first.code, 150, "{line}: {first:?}");
        assert_eq!(last.code, 226, "{line}: {last:?}");
        let mut names: Vec<String> = String::from_utf8_lossy(&body)
            .lines()
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.writer.local_addr().expect("local addr")
    }

    /// Half-closes our side (the server then sees EOF).
    pub fn shutdown_write(&self) {
        let _ = self.writer.shutdown(Shutdown::Write);
    }
}

fn parse_code(line: &str) -> u16 {
    line.get(..3)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not a reply line: {line:?}"))
}

/// `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` → the address.
pub fn parse_pasv(text: &str) -> SocketAddr {
    let inner = text
        .split('(')
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("bad PASV reply {text:?}"));
    let n: Vec<u16> = inner
        .split(',')
        .map(|f| f.trim().parse().expect("PASV number"))
        .collect();
    assert_eq!(n.len(), 6, "PASV reply {text:?}");
    let ip = std::net::Ipv4Addr::new(n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8);
    SocketAddr::new(ip.into(), n[4] << 8 | n[5])
}

fn data_socket(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("data connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(TIMEOUT)).expect("timeout");
    s
}

/// Deterministic test bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    crate::common::pattern(len, u64::from(seed))
}

// ---------------------------------------------------------------------------------------------------------------
// External clients
// ---------------------------------------------------------------------------------------------------------------

/// The path of a client program, or `None` (after "skipping: …") when it is not installed; panics instead under
/// `COSFTPD_REQUIRE_S3=1`, the CI rule for every piece `scripts/test.sh` installs.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if common::require_s3() {
            panic!(
                "COSFTPD_REQUIRE_S3=1 but {name} is not installed (scripts/test.sh installs it)"
            );
        }
        eprintln!("skipping: {name} is not installed (scripts/test.sh installs it)");
    }
    found
}

/// A Python 3 for ftplib scripts: `python3` on PATH, else the test venv's.
pub fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("python3"))
            .find(|p| p.is_file())
    }) {
        return Some(p);
    }
    match std::env::var_os("COSFTPD_TEST_PYTHON") {
        Some(p) if Path::new(&p).is_file() => Some(PathBuf::from(p)),
        _ => tool("python3"),
    }
}

/// The test venv's Python (`COSFTPD_TEST_PYTHON`, else `<repo>/.venv/bin/python`, as scripts/test.sh makes it) when
/// it can import `module`; `None` (after "skipping: …") otherwise, or a panic under `COSFTPD_REQUIRE_S3=1`.
pub fn venv_python_with(module: &str) -> Option<PathBuf> {
    let python = match std::env::var_os("COSFTPD_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    };
    let found = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(python);
    }
    let why = format!(
        "{} cannot import {module} (scripts/test.sh installs tests/support/requirements.txt)",
        python.display()
    );
    if common::require_s3() {
        panic!("COSFTPD_REQUIRE_S3=1 but {why}");
    }
    eprintln!("skipping: {why}");
    None
}

/// Runs a client to its end within [`TIMEOUT`] (killed after that), capturing its output.
pub fn run(cmd: &mut Command) -> Output {
    run_with_timeout(cmd, TIMEOUT)
}

pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    run_with_input(cmd, b"", timeout)
}

/// Like [`run`], with `input` on the client's stdin (then closed).
pub fn run_with_input(cmd: &mut Command, input: &[u8], timeout: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feed = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{shown} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.join().unwrap_or_default()),
                String::from_utf8_lossy(&err.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = feed.join();
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Asserts the client exited 0 and returns its stdout as text.
pub fn success(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a scenario of `tests/support/ftplib_client.py` against `addr` as account `n` (`None`: no python; skip).
pub fn ftplib(
    server: &TestServer,
    addr: SocketAddr,
    n: usize,
    scenario: &str,
    args: &[&str],
) -> Option<Output> {
    let python = python()?;
    let a = &server.accounts[n];
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/ftplib_client.py");
    let port = addr.port().to_string();
    let mut cmd = Command::new(python);
    cmd.arg("-u")
        .arg(script)
        .args([scenario, "127.0.0.1", &port, &a.user, &a.pass])
        .args(args);
    Some(run(&mut cmd))
}
