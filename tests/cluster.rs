//! A real cluster on one machine: Redis, HAProxy (`send-proxy-v2`, round robin) in front of two or three
//! `cosftpd serve` processes (the built binary), all on one moto bucket. Each node listens on its own loopback
//! address (`127.0.<net>.1n`), with its own passive range and `masquerade_address`; clients connect from other
//! loopback addresses (`127.0.<net>.2x`, the client socket bound to them), so the addresses the nodes see are the
//! clients' only if the PROXY header was read. Each test has its own `<net>`, Redis and HAProxy.
//!
//! Needs moto (`COSFTPD_REQUIRE_S3`), redis-server (`COSFTPD_REQUIRE_REDIS`) and haproxy (`COSFTPD_REQUIRE_HAPROXY`);
//! each skips without them unless required.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::services::{HaProxy, RedisServer};
use common::{free_port, unique_bucket, S3Server, ServerMode};

const TIMEOUT: Duration = Duration::from_secs(30);
const USER: &str = "user";
const PASS: &str = "pass";

/// What differs between the tests' clusters.
struct Spec {
    /// The third byte of every address of this cluster.
    net: u8,
    nodes: u8,
    /// Extra `[OPTIONAL]` lines.
    optional: &'static str,
    lease_time_s: u32,
}

struct Node {
    name: String,
    addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has a line with every one of `needles`; false after the deadline.
    fn wait_log(&self, needles: &[&str], within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self
                .log()
                .lines()
                .any(|line| needles.iter().all(|n| line.contains(n)))
            {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no goodbye, no abort of its uploads, no release of its leases.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM: the node leaves the cluster cleanly.
            let pid = i32::try_from(child.id()).expect("pid");
            // SAFETY: kill(2) of our own child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct TestCluster {
    s3: &'static S3Server,
    bucket: String,
    redis: RedisServer,
    nodes: Vec<Node>,
    proxy: HaProxy,
    net: u8,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    /// `None` (skip) when moto, redis-server or haproxy is missing and not required.
    fn start(spec: Spec) -> Option<TestCluster> {
        let s3 = S3Server::shared(ServerMode::S3)?;
        let redis = RedisServer::start()?;
        let bucket = unique_bucket("cluster");
        s3.create_bucket(&bucket);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut nodes = Vec::new();
        for n in 1..=spec.nodes {
            nodes.push(start_node(&spec, n, s3, &bucket, &redis, dir.path()));
        }
        for node in &nodes {
            wait_listening(node);
        }
        let backends: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
        let proxy = HaProxy::start(&backends)?;
        Some(TestCluster {
            s3,
            bucket,
            redis,
            nodes,
            proxy,
            net: spec.net,
            _dir: dir,
        })
    }

    /// A client address of this cluster: `127.0.<net>.<20 + n>`.
    fn client_ip(&self, n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, self.net, 20 + n))
    }

    /// A control connection through HAProxy from client `n`.
    fn connect(&self, n: u8) -> Client {
        Client::connect(self.client_ip(n), self.proxy.addr())
    }

    /// A logged-in session of client `n` on another node than `not` (round robin brings one within a turn).
    fn connect_elsewhere(&self, n: u8, not: &str) -> Client {
        for _ in 0..=self.nodes.len() {
            let mut client = self.connect(n);
            client.login();
            if client.node() != not {
                return client;
            }
            client.expect("QUIT", 221);
        }
        panic!("no session of client {n} away from {not}:\n{}", self.logs());
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for node in &self.nodes {
            all += &format!("---- {} ----\n{}\n", node.name, node.log());
        }
        all + "---- haproxy ----\n" + &self.proxy.log()
    }
}

fn start_node(
    spec: &Spec,
    n: u8,
    s3: &S3Server,
    bucket: &str,
    redis: &RedisServer,
    dir: &std::path::Path,
) -> Node {
    let ip = Ipv4Addr::new(127, 0, spec.net, 10 + n);
    let port = free_port();
    let passive = 30000 + u16::from(spec.net) * 100 + u16::from(n) * 20;
    let name = format!("node{n}");
    let home = dir.join(format!("home-{n}"));
    std::fs::create_dir_all(&home).expect("home");
    let config = format!(
        "[COS_ACCOUNT_0]\n\
         storage_type = s3\n\
         cos_endpoint = {endpoint}\n\
         cos_bucket = {bucket}\n\
         cos_secretid = test-key\n\
         cos_secretkey = test-secret\n\
         home_dir = {home}\n\
         ftp_login_user_name = {USER}\n\
         ftp_login_user_password = {PASS}\n\
         authority = RW\n\
         delete_enable = true\n\
         \n\
         [NETWORK]\n\
         listen_address = {ip}\n\
         listen_port = {port}\n\
         passive_port = {passive},{passive_end}\n\
         masquerade_address = {ip}\n\
         proxy_protocol_from = 127.0.0.1\n\
         \n\
         [OPTIONAL]\n\
         mount_enable = false\n\
         log_level = info\n\
         {optional}\n\
         \n\
         [CLUSTER]\n\
         redis_url = {redis}\n\
         node_name = {name}\n\
         lease_time = {lease}\n",
        endpoint = s3.endpoint(),
        home = home.display(),
        passive_end = passive + 19,
        optional = spec.optional,
        redis = redis.url(),
        lease = spec.lease_time_s,
    );
    let path = dir.join(format!("node{n}.conf"));
    std::fs::write(&path, config).expect("write config");
    let log = dir.join(format!("node{n}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_cosftpd"))
        .args(["serve", "--no-check", "-c"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("run cosftpd");
    Node {
        name,
        addr: SocketAddr::new(IpAddr::V4(ip), port),
        child: Some(child),
        log,
    }
}

fn wait_listening(node: &Node) {
    let deadline = Instant::now() + TIMEOUT;
    while !node.log().contains("FTP listening") {
        assert!(
            Instant::now() < deadline,
            "{} did not start:\n{}",
            node.name,
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP connection from `ip` (the client socket bound to it).
fn connect_from(ip: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(ip, 0).into())?;
    socket.connect_timeout(&to.into(), TIMEOUT)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    Ok(stream)
}

/// A small FTP client whose every connection (control and PASV data) comes from one address.
struct Client {
    ip: IpAddr,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    greeting: (u16, String),
}

impl Client {
    fn connect(ip: IpAddr, to: SocketAddr) -> Client {
        let stream = connect_from(ip, to).expect("connect");
        let writer = stream.try_clone().expect("clone");
        let mut client = Client {
            ip,
            reader: BufReader::new(stream),
            writer,
            greeting: (0, String::new()),
        };
        client.greeting = client.reply();
        client
    }

    /// The next reply (all lines of a multi-line one); code 0 when the server closed the connection.
    fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        let mut line = String::new();
        if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
            return (0, text);
        }
        let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        text += &line;
        if line.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                line.clear();
                if self.reader.read_line(&mut line).unwrap_or(0) == 0 || line.starts_with(&end) {
                    text += &line;
                    break;
                }
                text += &line;
            }
        }
        (code, text)
    }

    fn cmd(&mut self, line: &str) -> (u16, String) {
        if self
            .writer
            .write_all(format!("{line}\r\n").as_bytes())
            .is_err()
        {
            return (0, String::new());
        }
        self.reply()
    }

    fn expect(&mut self, line: &str, code: u16) -> String {
        let (got, text) = self.cmd(line);
        assert_eq!(got, code, "{line}: {text}");
        text
    }

    fn login(&mut self) {
        assert_eq!(self.greeting.0, 220, "greeting: {}", self.greeting.1);
        self.expect(&format!("USER {USER}"), 331);
        self.expect(&format!("PASS {PASS}"), 230);
    }

    /// The node that serves this session, from STAT.
    fn node(&mut self) -> String {
        let text = self.expect("STAT", 211);
        let line = text
            .lines()
            .find(|l| l.contains("Served by cluster node"))
            .unwrap_or_else(|| panic!("no node in STAT: {text}"));
        line.rsplit(' ')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// PASV, and a data connection from this client's address.
    fn data(&mut self) -> TcpStream {
        let text = self.expect("PASV", 227);
        let inner = text
            .split('(')
            .nth(1)
            .and_then(|s| s.split(')').next())
            .unwrap_or_else(|| panic!("bad PASV reply {text}"));
        let n: Vec<u16> = inner
            .split(',')
            .map(|v| v.trim().parse().unwrap())
            .collect();
        let addr = SocketAddr::from((
            [n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8],
            n[4] * 256 + n[5],
        ));
        connect_from(self.ip, addr).expect("data connection")
    }

    /// STOR with the whole body: (first reply, final reply); a refusal is both.
    fn stor(&mut self, name: &str, body: &[u8]) -> (u16, u16) {
        let mut data = self.data();
        let (first, text) = self.cmd(&format!("STOR {name}"));
        if first != 150 {
            drop(data);
            eprintln!("STOR {name}: {text}");
            return (first, first);
        }
        data.write_all(body).expect("send");
        drop(data);
        (first, self.reply().0)
    }

    fn retr(&mut self, name: &str) -> Option<Vec<u8>> {
        let mut data = self.data();
        let (first, _) = self.cmd(&format!("RETR {name}"));
        if first != 150 {
            return None;
        }
        let mut body = Vec::new();
        data.read_to_end(&mut body).expect("read");
        assert_eq!(self.reply().0, 226);
        Some(body)
    }

    fn nlst(&mut self) -> Vec<String> {
        let mut data = self.data();
        self.expect("NLST", 150);
        let mut body = String::new();
        data.read_to_string(&mut body).expect("read");
        assert_eq!(self.reply().0, 226);
        body.lines().map(str::to_string).collect()
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Through HAProxy, every node sees the client's own address (STAT, log lines); a connection from the balancer's
/// address without a header is refused, one from elsewhere is served as it is. A lockout earned on the nodes in
/// turn holds on every node, and the per-address connection limit counts the connections on all nodes.
#[test]
fn clients_are_seen_and_the_lockout_and_limits_hold_on_every_node() {
    let Some(cluster) = TestCluster::start(Spec {
        net: 61,
        nodes: 3,
        optional: "login_fail_limit = 3\nmax_connection_per_ip = 2",
        lease_time_s: 3,
    }) else {
        return;
    };
    let logs = || cluster.logs();

    // Round robin: three sessions, three nodes, each seeing the client's address.
    let mut served = BTreeSet::new();
    for _ in 0..3 {
        let mut client = cluster.connect(1);
        client.login();
        let stat = client.expect("STAT", 211);
        assert!(
            stat.contains(&format!("Connected to {}", cluster.client_ip(1))),
            "{stat}"
        );
        assert!(stat.contains("Through a load balancer"), "{stat}");
        served.insert(client.node());
        // EPSV would send the client to the balancer's address: refused, and not offered, so clients use PASV.
        assert!(!client.expect("FEAT", 211).contains("EPSV"));
        assert_eq!(client.cmd("EPSV").0, 502);
        // PORT may only point back at the client: its own address, not the balancer's.
        let [a, b, c, d] = match cluster.client_ip(1) {
            IpAddr::V4(v4) => v4.octets(),
            IpAddr::V6(_) => unreachable!(),
        };
        client.expect(&format!("PORT {a},{b},{c},{d},200,1"), 200);
        client.expect("PORT 127,0,0,1,200,1", 500);
        client.expect("QUIT", 221);
    }
    assert_eq!(served.len(), 3, "round robin over three nodes: {served:?}");
    for node in &cluster.nodes {
        assert!(
            node.wait_log(
                &[
                    "session start",
                    &format!("peer={}", cluster.client_ip(1)),
                    "via=127.0.0.1"
                ],
                TIMEOUT
            ),
            "{}",
            logs()
        );
    }

    // Straight from the balancer's address without a header: refused without a greeting.
    let mut raw =
        connect_from("127.0.0.1".parse().unwrap(), cluster.nodes[0].addr).expect("connect");
    raw.write_all(b"USER anonymous\r\n").expect("send");
    let mut buf = Vec::new();
    let _ = raw.read_to_end(&mut buf);
    assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
    // From anywhere else: served as ever, with the socket's address.
    let mut direct = Client::connect(cluster.client_ip(9), cluster.nodes[0].addr);
    direct.login();
    let stat = direct.expect("STAT", 211);
    assert!(
        stat.contains(&format!("Connected to {}", cluster.client_ip(9))),
        "{stat}"
    );
    assert!(!stat.contains("load balancer"), "{stat}");
    direct.expect("QUIT", 221);

    // Three failed logins, on the three nodes in turn: the address is locked out on all of them.
    let locked = format!("peer={}", cluster.client_ip(2));
    for _ in 0..3 {
        let mut client = cluster.connect(2);
        client.expect(&format!("USER {USER}"), 331);
        let (code, text) = client.cmd("PASS wrong");
        assert!(code == 530 || code == 421, "{code} {text}");
    }
    for node in &cluster.nodes {
        assert!(
            node.wait_log(&[&locked, "login failed"], TIMEOUT),
            "{}",
            logs()
        );
    }
    for _ in 0..3 {
        let client = cluster.connect(2);
        assert_eq!(client.greeting.0, 421, "{:?}\n{}", client.greeting, logs());
    }
    for node in &cluster.nodes {
        assert!(
            node.wait_log(
                &[&locked, "connection refused: address locked out"],
                TIMEOUT
            ),
            "{} did not refuse:\n{}",
            node.name,
            logs()
        );
    }
    // Another address is welcome.
    let mut other = cluster.connect(3);
    other.login();
    other.expect("QUIT", 221);

    // max_connection_per_ip = 2 for the cluster: two sessions on two nodes, the third is refused on the third.
    let mut first = cluster.connect(4);
    first.login();
    let mut second = cluster.connect(4);
    second.login();
    assert_ne!(first.node(), second.node());
    let third = cluster.connect(4);
    assert_eq!(third.greeting.0, 421, "{:?}", third.greeting);
    assert!(
        third
            .greeting
            .1
            .contains("too many connections from your address"),
        "{:?}",
        third.greeting
    );
    first.expect("QUIT", 221);
}

/// A second writer of a name on another node gets 450 while the first writes, and may write once it is done; a
/// file written, replaced or deleted through one node is what the other node shows once `metadata_ttl` has passed.
#[test]
fn one_writer_per_name_and_changes_seen_across_nodes() {
    let Some(cluster) = TestCluster::start(Spec {
        net: 62,
        nodes: 2,
        optional: "metadata_ttl = 2",
        lease_time_s: 3,
    }) else {
        return;
    };
    let ttl = Duration::from_secs(2);
    let mut a = cluster.connect(1);
    a.login();
    let node_a = a.node();
    let mut b = cluster.connect_elsewhere(2, &node_a);
    let node_b = b.node();

    // A writes big.bin and keeps its data connection open: B is refused.
    let mut data = a.data();
    a.expect("STOR big.bin", 150);
    let first_half = pattern(300_000, 1);
    data.write_all(&first_half).expect("send");
    let mut b_data = b.data();
    let (code, text) = b.cmd("STOR big.bin");
    drop(b_data.flush());
    assert_eq!(code, 450, "{text}\n{}", cluster.logs());
    assert!(
        text.contains(&node_a),
        "the reply names the writing node: {text}"
    );
    let second_half = pattern(300_000, 2);
    data.write_all(&second_half).expect("send");
    drop(data);
    assert_eq!(a.reply().0, 226);
    // A is done: B may write the name at once.
    let mine = pattern(1000, 3);
    assert_eq!(b.stor("big.bin", &mine), (150, 226));
    assert_eq!(
        cluster.s3.get_object(&cluster.bucket, "big.bin").as_deref(),
        Some(mine.as_slice())
    );

    // B looks before the file exists (and may remember that for metadata_ttl)…
    assert_eq!(b.cmd("SIZE new.txt").0, 550);
    assert!(!b.nlst().contains(&"new.txt".to_string()));
    // …A creates it: B's listings ask the store, so they show it at once…
    assert_eq!(a.stor("new.txt", b"hello"), (150, 226));
    assert!(b.nlst().contains(&"new.txt".to_string()));
    // …and once metadata_ttl has passed since B's lookup, B sizes it and reads it.
    std::thread::sleep(ttl);
    assert_eq!(b.expect("SIZE new.txt", 213).trim(), "213 5");
    assert_eq!(b.retr("new.txt").as_deref(), Some(b"hello".as_slice()));

    // A replaces it: B reads the new bytes after metadata_ttl.
    assert_eq!(a.stor("new.txt", b"hello, again"), (150, 226));
    std::thread::sleep(ttl);
    assert_eq!(b.expect("SIZE new.txt", 213).trim(), "213 12");
    assert_eq!(
        b.retr("new.txt").as_deref(),
        Some(b"hello, again".as_slice())
    );

    // A deletes it: gone from B's listings at once, and for every lookup after metadata_ttl.
    a.expect("DELE new.txt", 250);
    assert!(!b.nlst().contains(&"new.txt".to_string()));
    std::thread::sleep(ttl);
    assert_eq!(b.cmd("SIZE new.txt").0, 550);
    assert!(b.retr("new.txt").is_none());
    assert!(!b.nlst().contains(&"new.txt".to_string()));
    assert!(cluster.node(&node_a).log().contains("upload complete"));
    assert!(cluster.node(&node_b).log().contains("upload complete"));
}

/// A node killed (SIGKILL) in the middle of an upload commits nothing, and its lease on the name holds until it
/// expires (another node answers 450 meanwhile); then the name is free.
#[test]
fn a_killed_node_leaves_no_object_and_its_lease_lapses() {
    let Some(mut cluster) = TestCluster::start(Spec {
        net: 63,
        nodes: 2,
        optional: "",
        lease_time_s: 4,
    }) else {
        return;
    };
    let mut a = cluster.connect(1);
    a.login();
    let victim_node = a.node();
    let mut data = a.data();
    a.expect("STOR victim.bin", 150);
    // More than one part (5 MiB on S3): a part upload is under way when the node dies.
    data.write_all(&pattern(6 << 20, 7)).expect("send");
    let victim = cluster
        .nodes
        .iter()
        .position(|n| n.name == victim_node)
        .expect("victim");
    cluster.nodes[victim].kill();
    drop(data);
    assert_eq!(
        a.reply().0,
        0,
        "the client's control connection ends with the node"
    );

    // Nothing was committed.
    assert_eq!(cluster.s3.get_object(&cluster.bucket, "victim.bin"), None);
    // The dead node's lease still holds the name…
    let mut b = cluster.connect_elsewhere(2, &victim_node);
    let body = pattern(2000, 9);
    let (code, _) = b.stor("victim.bin", &body);
    assert_eq!(code, 450, "{}", cluster.logs());
    // …until it lapses (lease_time after the last renewal).
    let deadline = Instant::now() + Duration::from_secs(4 * 5);
    loop {
        let (first, last) = b.stor("victim.bin", &body);
        if first == 150 {
            assert_eq!(last, 226);
            break;
        }
        assert_eq!(first, 450);
        assert!(Instant::now() < deadline, "the lease never lapsed");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        cluster
            .s3
            .get_object(&cluster.bucket, "victim.bin")
            .as_deref(),
        Some(body.as_slice())
    );
    assert_eq!(
        cluster
            .redis
            .command(&["EXISTS", "{cosftpd}:lease:user:victim.bin"]),
        ":0"
    );
}

/// Redis stops mid-run: nodes say so (WARN) and go on alone — logins, uploads, a lockout per node — and resume the
/// shared state when it is back.
#[test]
fn redis_going_away_falls_back_to_each_nodes_own_state() {
    let Some(mut cluster) = TestCluster::start(Spec {
        net: 64,
        nodes: 2,
        optional: "login_fail_limit = 2",
        lease_time_s: 3,
    }) else {
        return;
    };
    cluster.redis.stop();

    // Logins and uploads go on.
    let mut a = cluster.connect(1);
    a.login();
    assert_eq!(a.stor("during-outage.txt", b"still here"), (150, 226));
    let node_a = a.node();
    assert!(
        cluster
            .node(&node_a)
            .wait_log(&["WARN", "Redis is unreachable"], TIMEOUT),
        "{}",
        cluster.logs()
    );
    // Each node locks out on its own count: two failures on node 1 lock the address out there, not on node 2.
    let (node1, node2) = (cluster.nodes[0].addr, cluster.nodes[1].addr);
    for _ in 0..2 {
        let mut c = Client::connect(cluster.client_ip(5), node1);
        c.expect(&format!("USER {USER}"), 331);
        let (code, _) = c.cmd("PASS wrong");
        assert!(code == 530 || code == 421);
    }
    assert_eq!(Client::connect(cluster.client_ip(5), node1).greeting.0, 421);
    let mut elsewhere = Client::connect(cluster.client_ip(5), node2);
    elsewhere.login();
    elsewhere.expect("QUIT", 221);

    // Redis is back (empty): both nodes resume, and two writers of a name on two nodes meet again.
    cluster.redis.restart();
    for node in &cluster.nodes {
        assert!(
            node.wait_log(&["INFO", "Redis answers again; shared"], TIMEOUT),
            "{}",
            cluster.logs()
        );
    }
    let mut b = cluster.connect(2);
    b.login();
    let mut c = cluster.connect_elsewhere(3, &b.node());
    let mut data = b.data();
    b.expect("STOR shared.bin", 150);
    data.write_all(b"first").expect("send");
    let (code, _) = c.stor("shared.bin", b"second");
    assert_eq!(code, 450, "{}", cluster.logs());
    drop(data);
    assert_eq!(b.reply().0, 226);
    a.expect("QUIT", 221);
}
