//! Redis and HAProxy as the cluster tests need them: Debian's `redis-server` and `haproxy`, started in the
//! foreground on free loopback ports, stopped when dropped. No system service is used or touched.
//!
//! A missing program skips the test (`None` after "skipping: …"), unless `COSFTPD_REQUIRE_REDIS=1` /
//! `COSFTPD_REQUIRE_HAPROXY=1` (CI) make it a failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{env_flag, free_port};

const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// `COSFTPD_REQUIRE_REDIS=1`: a test that cannot run redis-server fails instead of skipping (CI sets it).
pub fn require_redis() -> bool {
    env_flag("COSFTPD_REQUIRE_REDIS")
}

/// `COSFTPD_REQUIRE_HAPROXY=1`: a test that cannot run haproxy fails instead of skipping (CI sets it).
pub fn require_haproxy() -> bool {
    env_flag("COSFTPD_REQUIRE_HAPROXY")
}

fn unavailable<T>(what: &str, required: bool, flag: &str) -> Option<T> {
    if required {
        panic!("{flag}=1 but {what} is unavailable (scripts/test.sh installs it)");
    }
    eprintln!("skipping: {what} is unavailable (scripts/test.sh installs it)");
    None
}

/// The program's path when it is installed (Debian puts haproxy in /usr/sbin, not always on a user's PATH).
fn program(name: &str) -> Option<PathBuf> {
    let dirs = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// A redis-server on 127.0.0.1, without persistence.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// `None` (skip) when redis-server is missing, unless required.
    pub fn start() -> Option<RedisServer> {
        let Some(binary) = program("redis-server") else {
            return unavailable("redis-server", require_redis(), "COSFTPD_REQUIRE_REDIS");
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir,
        };
        server.spawn(&binary);
        Some(server)
    }

    fn spawn(&mut self, binary: &Path) {
        let log = std::fs::File::create(self.dir.path().join("redis.log")).expect("redis log");
        let child = Command::new(binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.try_command(&["PING"]).as_deref() == Some("+PONG") {
                return;
            }
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("redis-server exited at start ({status}): {}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server not ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Kills the server (Redis goes away mid-run). Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        let binary = program("redis-server").expect("redis-server");
        self.spawn(&binary);
    }

    /// One command, answered in RESP: the first line of the reply, or the elements of an array reply joined by
    /// newlines (enough for PING, GET, KEYS, TTL).
    pub fn command(&self, args: &[&str]) -> String {
        self.try_command(args)
            .unwrap_or_else(|| panic!("redis command {args:?} failed"))
    }

    fn try_command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request += &format!("${}\r\n{arg}\r\n", arg.len());
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reader = BufReader::new(stream);
        read_resp(&mut reader)
    }
}

fn read_resp(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let line = line.trim_end().to_string();
    match line.chars().next()? {
        '$' => {
            let len: i64 = line[1..].parse().ok()?;
            if len < 0 {
                return Some(String::new());
            }
            let mut body = vec![0u8; usize::try_from(len).ok()? + 2];
            reader.read_exact(&mut body).ok()?;
            body.truncate(body.len() - 2);
            Some(String::from_utf8_lossy(&body).into_owned())
        }
        '*' => {
            let n: i64 = line[1..].parse().ok()?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                items.push(read_resp(reader)?);
            }
            Some(items.join("\n"))
        }
        _ => Some(line),
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// HAProxy in TCP mode: one front end on 127.0.0.1, round robin over `backends`, each connection preceded by a
/// PROXY protocol v2 header (`send-proxy-v2`). [`HaProxy::config`] is the file docs/CLUSTER.md shows.
pub struct HaProxy {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl HaProxy {
    /// `None` (skip) when haproxy is missing, unless required.
    pub fn start(backends: &[SocketAddr]) -> Option<HaProxy> {
        let Some(binary) = program("haproxy") else {
            return unavailable("haproxy", require_haproxy(), "COSFTPD_REQUIRE_HAPROXY");
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = dir.path().join("haproxy.cfg");
        std::fs::write(&config, Self::config(port, backends)).expect("haproxy.cfg");
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("haproxy log");
        let child = Command::new(binary)
            .arg("-f")
            .arg(&config)
            // Foreground, no daemon; the test owns the process.
            .arg("-db")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("run haproxy");
        let mut proxy = HaProxy {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(child) = &mut proxy.child {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("haproxy exited at start ({status}): {}", proxy.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "haproxy not ready: {}",
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(proxy)
    }

    /// The configuration: TCP mode, long client/server timeouts (FTP control connections idle between
    /// commands), a connection that finds its node down is sent to another (`option redispatch`), and a health
    /// check every second (with `send-proxy-v2`, HAProxy sends it a `LOCAL` header: the node answers 220 and
    /// closes). One thread, so that round robin is strict and the tests know which node comes next.
    pub fn config(port: u16, backends: &[SocketAddr]) -> String {
        let mut text = format!(
            "global\n\
             \x20   maxconn 2000\n\
             \x20   nbthread 1\n\
             \n\
             defaults\n\
             \x20   mode tcp\n\
             \x20   timeout connect 5s\n\
             \x20   timeout client 1h\n\
             \x20   timeout server 1h\n\
             \x20   retries 3\n\
             \x20   option redispatch\n\
             \n\
             frontend ftp\n\
             \x20   bind 127.0.0.1:{port}\n\
             \x20   default_backend cosftpd\n\
             \n\
             backend cosftpd\n\
             \x20   balance roundrobin\n"
        );
        for (n, addr) in backends.iter().enumerate() {
            text += &format!(
                "    server node{} {addr} send-proxy-v2 check inter 1s fall 2 rise 1\n",
                n + 1
            );
        }
        text
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
