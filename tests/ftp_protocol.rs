//! The FTP engine over raw TCP: every command of the protocol, the permission table, resume and append, aborted and
//! dropped uploads, the size limit, malformed input, lockout, connection limits, timeouts and name encodings.
//! The server runs in-process over a temporary `fs` store (`tests/ftpd`).

mod common;
mod ftpd;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ftpd::{pattern, Ctl, TestServer};

#[test]
fn every_command() {
    let server = TestServer::start();
    let mut c = Ctl::connect(server.addr);
    assert_eq!(c.greeting.code, 220);

    // Login, and what is refused before it.
    c.expect("PASS pass", 503);
    c.expect("PWD", 530);
    c.expect("USER user", 331);
    let t = Instant::now();
    c.expect("PASS wrong", 530);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "failed logins are slowed down"
    );
    c.expect("USER nobody", 331);
    c.expect("PASS pass", 530);
    c.login("user", "pass");

    // Session information.
    let syst = c.expect("SYST", 215);
    assert!(syst.text().starts_with("UNIX Type: L8"), "{syst:?}");
    let feat = c.expect("FEAT", 211);
    for f in [
        "EPSV",
        "EPRT",
        "MDTM",
        "MFMT",
        "SIZE",
        "REST STREAM",
        "UTF8",
        "MLST type*;size*",
    ] {
        assert!(
            feat.lines.iter().any(|l| l.trim().starts_with(f)),
            "FEAT lacks {f}: {feat:?}"
        );
    }
    assert!(
        !feat.text().contains("AUTH TLS"),
        "no TLS configured, none announced: {feat:?}"
    );
    c.expect("OPTS UTF8 ON", 200);
    c.expect("OPTS UTF8 OFF", 504);
    c.expect("OPTS FROB 1", 501);
    let help = c.expect("HELP", 214);
    assert!(help.text().contains("RETR"), "{help:?}");
    let site_help = c.expect("SITE HELP", 214);
    assert!(site_help.lines.len() > 1, "{site_help:?}");
    c.expect("SITE CHMOD 755 x", 502);
    c.expect("NOOP", 200);
    let stat = c.expect("STAT", 211);
    assert!(stat.text().contains("Logged in as user"), "{stat:?}");

    // Directories.
    assert!(c.expect("PWD", 257).text().starts_with("\"/\""));
    let mkd = c.expect("MKD dir", 257);
    assert!(mkd.text().starts_with("\"/dir\""), "{mkd:?}");
    c.expect("MKD dir", 550);
    c.expect("CWD dir", 250);
    assert!(c.expect("PWD", 257).text().starts_with("\"/dir\""));
    c.expect("CWD missing", 550);
    c.expect("CDUP", 250);
    assert!(c.expect("PWD", 257).text().starts_with("\"/\""));

    // Settings.
    c.expect("TYPE A", 200);
    c.expect("TYPE E", 504);
    c.expect("TYPE L 8", 200);
    c.expect("TYPE I", 200);
    c.expect("MODE B", 504);
    c.expect("MODE S", 200);
    c.expect("STRU R", 504);
    c.expect("STRU F", 200);
    c.expect("ALLO 1000", 202);
    c.expect("ABOR", 225);
    c.expect("AUTH TLS", 502);
    c.expect("PBSZ 0", 503);
    c.expect("PROT P", 503);

    // Files: STOR, SIZE, MDTM, RETR, LIST, NLST, MLSD, MLST, STAT path.
    let body = pattern(100_000, 1);
    c.stor("dir/file.bin", &body);
    assert_eq!(server.object("dir/file.bin").as_deref(), Some(&body[..]));
    assert_eq!(c.expect("SIZE dir/file.bin", 213).text(), "100000");
    c.expect("SIZE dir", 550);
    c.expect("SIZE nothing", 550);
    let mdtm = c.expect("MDTM dir/file.bin", 213).text();
    assert!(
        mdtm.len() >= 14
            && mdtm.starts_with("20")
            && mdtm.bytes().take(14).all(|b| b.is_ascii_digit()),
        "MDTM {mdtm:?}"
    );
    let (first, got, last) = c.retr("dir/file.bin");
    assert_eq!((first.code, last.code), (150, 226), "{first:?} {last:?}");
    assert_eq!(got, body);
    c.expect("RETR dir/file.bin", 425);
    let (first, _, _) = c.download("RETR dir");
    assert_eq!(first.code, 550, "RETR of a directory: {first:?}");

    let (_, list, last) = c.download("LIST dir");
    assert_eq!(last.code, 226);
    let list = String::from_utf8(list).unwrap();
    assert!(
        list.lines()
            .any(|l| l.starts_with('-') && l.contains(" 100000 ") && l.ends_with(" file.bin")),
        "LIST: {list:?}"
    );
    let (_, list_root, _) = c.download("LIST -la");
    let list_root = String::from_utf8(list_root).unwrap();
    assert!(
        list_root
            .lines()
            .any(|l| l.starts_with('d') && l.ends_with(" dir")),
        "LIST -la: {list_root:?}"
    );
    assert_eq!(c.nlst("dir"), ["file.bin"]);
    let (_, mlsd, last) = c.download("MLSD dir");
    assert_eq!(last.code, 226);
    let mlsd = String::from_utf8(mlsd).unwrap();
    assert!(
        mlsd.lines().any(|l| l.contains("type=file;")
            && l.contains("size=100000;")
            && l.ends_with(" file.bin")),
        "MLSD: {mlsd:?}"
    );
    let (first, _, _) = c.download("MLSD dir/file.bin");
    assert_eq!(first.code, 501, "MLSD of a file");
    let mlst = c.expect("MLST dir/file.bin", 250);
    assert!(
        mlst.lines
            .iter()
            .any(|l| l.contains("size=100000;") && l.ends_with("/dir/file.bin")),
        "MLST: {mlst:?}"
    );
    c.expect("OPTS MLST type;size;", 200);
    let mlst = c.expect("MLST dir/file.bin", 250);
    assert!(
        mlst.lines
            .iter()
            .any(|l| l.trim_start() == "type=file;size=100000; /dir/file.bin"),
        "MLST with OPTS MLST type;size: {mlst:?}"
    );
    let stat = c.expect("STAT dir", 213);
    assert!(stat.text().contains("file.bin"), "{stat:?}");

    // REST + RETR, APPE, REST + STOR.
    c.expect("REST 99990", 350);
    let (_, tail, last) = c.retr("dir/file.bin");
    assert_eq!(last.code, 226);
    assert_eq!(tail, &body[99_990..]);
    let (_, last) = c.upload("APPE dir/file.bin", b"appended");
    assert_eq!(last.code, 226, "{last:?}");
    let mut want = body.clone();
    want.extend_from_slice(b"appended");
    assert_eq!(server.object("dir/file.bin"), Some(want.clone()));
    c.expect(&format!("REST {}", want.len()), 350);
    let (_, last) = c.upload("STOR dir/file.bin", b"+resumed");
    assert_eq!(last.code, 226, "{last:?}");
    want.extend_from_slice(b"+resumed");
    assert_eq!(server.object("dir/file.bin"), Some(want.clone()));

    // STOU: a fresh name each time, announced in the 150 reply.
    let (first, last) = c.upload("STOU", b"unique 1");
    assert_eq!((first.code, last.code), (150, 226), "{first:?} {last:?}");
    let (first2, last2) = c.upload("STOU", b"unique 2");
    assert_eq!(last2.code, 226);
    let name1 = first.text().trim_start_matches("FILE: ").to_string();
    let name2 = first2.text().trim_start_matches("FILE: ").to_string();
    assert_ne!(name1, name2);
    assert_eq!(
        server.object(name1.trim_start_matches('/')).as_deref(),
        Some(&b"unique 1"[..])
    );
    assert_eq!(
        server.object(name2.trim_start_matches('/')).as_deref(),
        Some(&b"unique 2"[..])
    );

    // PASV, PORT and EPRT data connections.
    let mut data = c.pasv();
    c.expect("NLST dir", 150);
    let mut names = String::new();
    data.read_to_string(&mut names).unwrap();
    assert_eq!(names.trim_end(), "file.bin");
    c.expect_final(226);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    c.expect(
        &format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff),
        200,
    );
    c.expect("RETR dir/file.bin", 150);
    let (mut active, _) = listener.accept().unwrap();
    let mut got = Vec::new();
    active.read_to_end(&mut got).unwrap();
    assert_eq!(got, want);
    c.expect_final(226);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    c.expect(&format!("EPRT |1|127.0.0.1|{port}|"), 200);
    c.expect("STOR dir/active.txt", 150);
    let (mut active, _) = listener.accept().unwrap();
    active.write_all(b"over an active connection").unwrap();
    drop(active);
    c.expect_final(226);
    assert_eq!(
        server.object("dir/active.txt").as_deref(),
        Some(&b"over an active connection"[..])
    );
    // No FTP bounce: PORT to another host or a privileged port is refused.
    c.expect("PORT 10,1,2,3,200,10", 500);
    c.expect("EPRT |1|127.0.0.1|21|", 500);

    // Rename and delete.
    c.expect("RNFR dir/active.txt", 350);
    c.expect("RNTO dir/renamed.txt", 250);
    assert!(server.object("dir/active.txt").is_none());
    assert!(server.object("dir/renamed.txt").is_some());
    c.expect("RNFR dir/none", 550);
    c.expect("RNTO dir/x", 503);
    c.expect("RMD dir", 550);
    c.expect("DELE dir/renamed.txt", 250);
    c.expect("DELE dir/file.bin", 250);
    c.expect("DELE dir/file.bin", 550);
    c.expect("RMD dir", 250);
    c.expect("CWD dir", 550);

    // EPSV ALL: afterwards PASV and PORT are refused.
    c.expect("EPSV ALL", 200);
    c.expect("PASV", 503);

    c.expect("QUIT", 221);
    assert!(c.is_closed());
}

/// DESIGN.md's permission table, row by row, for R, W and RW with and without `delete_enable`: each refusal is a
/// 550 that says why, and leaves the store as it was.
#[test]
fn permission_table() {
    let cases = [
        ("R", true),
        ("R", false),
        ("W", true),
        ("W", false),
        ("RW", true),
        ("RW", false),
    ];
    let mut builder = TestServer::builder();
    for (n, (authority, delete)) in cases.iter().enumerate() {
        builder = builder.account(&format!("u{n}"), "pw", authority, *delete);
    }
    let server = builder.start();
    for (n, &(authority, delete)) in cases.iter().enumerate() {
        let who = format!("{authority} delete_enable={delete}");
        let p = format!("a{n}");
        server.put(&format!("{p}/exist.txt"), b"old");
        server.put(&format!("{p}/other.txt"), b"other");
        std::fs::create_dir_all(server.root.join(format!("{p}/empty"))).unwrap();
        let read = authority.contains('R');
        let write = authority.contains('W');
        let mut c = server.login_as(n);

        // Checks one outcome: allowed → `ok`; refused → 550 whose text names the reason.
        let check = |what: &str, reply: &ftpd::Reply, ok: u16, allowed: bool, reason: &str| {
            if allowed {
                assert_eq!(reply.code, ok, "{who}: {what} should work: {reply:?}");
            } else {
                assert_eq!(
                    reply.code, 550,
                    "{who}: {what} should be refused: {reply:?}"
                );
                assert!(
                    reply.text().contains(reason),
                    "{who}: {what}: the refusal should say {reason:?}: {reply:?}"
                );
            }
        };

        let r = c.cmd(&format!("CWD {p}"));
        check("CWD", &r, 250, true, "");
        let r = c.cmd("CWD /");
        check("CWD /", &r, 250, true, "");
        let r = c.cmd(&format!("SIZE {p}/exist.txt"));
        check("SIZE", &r, 213, true, "");
        let r = c.cmd(&format!("MDTM {p}/exist.txt"));
        check("MDTM", &r, 213, true, "");
        let r = c.cmd(&format!("MLST {p}/exist.txt"));
        check("MLST", &r, 250, true, "");

        for list in ["LIST", "NLST", "MLSD"] {
            let (first, _, last) = c.download(&format!("{list} {p}"));
            let reply = if first.code == 150 { last } else { first };
            check(list, &reply, 226, read, "may not read");
        }
        let (first, body, last) = c.retr(&format!("{p}/exist.txt"));
        let reply = if first.code == 150 { last } else { first };
        check("RETR", &reply, 226, read, "may not read");
        if read {
            assert_eq!(body, b"old");
        }

        let (_, last) = c.upload(&format!("STOR {p}/new.txt"), b"new");
        check("STOR new", &last, 226, write, "read-only");
        assert_eq!(
            server.object(&format!("{p}/new.txt")).is_some(),
            write,
            "{who}"
        );

        let (_, last) = c.upload(&format!("STOR {p}/exist.txt"), b"replaced");
        let reason = if write { "delete_enable" } else { "read-only" };
        check("STOR overwrite", &last, 226, write && delete, reason);
        let exist_now: &[u8] = if write && delete { b"replaced" } else { b"old" };
        assert_eq!(
            server.object(&format!("{p}/exist.txt")).as_deref(),
            Some(exist_now),
            "{who}"
        );

        let (_, last) = c.upload(&format!("APPE {p}/exist.txt"), b"+more");
        check("APPE", &last, 226, write, "read-only");
        let mut exist_now = exist_now.to_vec();
        if write {
            exist_now.extend_from_slice(b"+more");
        }
        assert_eq!(
            server.object(&format!("{p}/exist.txt")),
            Some(exist_now.clone()),
            "{who}"
        );

        let r = c.cmd(&format!("MKD {p}/newdir"));
        check("MKD", &r, 257, write, "read-only");

        c.expect(&format!("RNFR {p}/other.txt"), 350);
        let r = c.cmd(&format!("RNTO {p}/moved.txt"));
        check("RNTO new name", &r, 250, write, "read-only");
        let moved = if write { "moved.txt" } else { "other.txt" };

        c.expect(&format!("RNFR {p}/{moved}"), 350);
        let r = c.cmd(&format!("RNTO {p}/exist.txt"));
        check("RNTO onto existing", &r, 250, write && delete, reason);
        let exist_now: &[u8] = if write && delete {
            b"other"
        } else {
            &exist_now
        };
        assert_eq!(
            server.object(&format!("{p}/exist.txt")).as_deref(),
            Some(exist_now),
            "{who}"
        );

        let r = c.cmd(&format!("DELE {p}/exist.txt"));
        check("DELE", &r, 250, write && delete, reason);
        assert_eq!(
            server.object(&format!("{p}/exist.txt")).is_none(),
            write && delete,
            "{who}"
        );
        let r = c.cmd(&format!("RMD {p}/empty"));
        check("RMD", &r, 250, write && delete, reason);
        assert_eq!(
            server.root.join(format!("{p}/empty")).exists(),
            !(write && delete),
            "{who}"
        );
        c.expect("QUIT", 221);
    }
}

/// Resuming: REST + RETR from any offset; REST + STOR and APPE only at the current end (554 elsewhere).
#[test]
fn resume_and_append() {
    let server = TestServer::start();
    let mut c = server.login();
    let body = pattern(3 * 1024 * 1024 + 17, 7);
    c.stor("big.bin", &body);

    // Download resume from several offsets, including the end; a file of several 8 MiB GETs too.
    let large = pattern(25 * 1024 * 1024 + 3, 9);
    c.stor("large.bin", &large);
    for offset in [
        0,
        8 * 1024 * 1024 - 1,
        8 * 1024 * 1024 + 1,
        17 * 1024 * 1024,
    ] {
        c.expect(&format!("REST {offset}"), 350);
        let (first, got, last) = c.retr("large.bin");
        assert_eq!((first.code, last.code), (150, 226), "REST {offset}");
        assert!(
            got == large[offset..],
            "REST {offset} of large.bin: bytes differ"
        );
    }
    for offset in [1, 1024 * 1024, body.len() - 1, body.len()] {
        c.expect(&format!("REST {offset}"), 350);
        let (first, got, last) = c.retr("big.bin");
        assert_eq!((first.code, last.code), (150, 226), "REST {offset}");
        assert_eq!(got, &body[offset..], "REST {offset}");
    }
    c.expect(&format!("REST {}", body.len() + 1), 350);
    let (first, _, _) = c.retr("big.bin");
    assert_eq!(first.code, 554, "REST past the end: {first:?}");
    // REST applies to one transfer only.
    let (_, got, _) = c.retr("big.bin");
    assert_eq!(got, body);

    // Upload resume: a first part, then REST at its size + STOR of the rest.
    let (head, tail) = body.split_at(1_000_000);
    c.stor("resumed.bin", head);
    c.expect(&format!("REST {}", head.len()), 350);
    let (first, last) = c.upload("STOR resumed.bin", tail);
    assert_eq!((first.code, last.code), (150, 226), "{last:?}");
    assert_eq!(server.object("resumed.bin"), Some(body.clone()));

    // Anywhere else: 554 before any data, and the object is untouched.
    for offset in [1, body.len() - 1, body.len() + 1] {
        c.expect(&format!("REST {offset}"), 350);
        let (first, _) = c.upload("STOR resumed.bin", b"x");
        assert_eq!(first.code, 554, "REST {offset} + STOR: {first:?}");
    }
    c.expect("REST 10", 350);
    let (first, _) = c.upload("STOR absent.bin", b"x");
    assert_eq!(first.code, 554, "REST + STOR of a missing file: {first:?}");
    assert!(server.object("absent.bin").is_none());
    assert_eq!(server.object("resumed.bin"), Some(body.clone()));

    // APPE onto an existing file, and onto a new one (creates it).
    let (_, last) = c.upload("APPE resumed.bin", b"tail");
    assert_eq!(last.code, 226, "{last:?}");
    let mut want = body.clone();
    want.extend_from_slice(b"tail");
    assert_eq!(server.object("resumed.bin"), Some(want));
    let (_, last) = c.upload("APPE fresh.txt", b"first bytes");
    assert_eq!(last.code, 226, "{last:?}");
    assert_eq!(
        server.object("fresh.txt").as_deref(),
        Some(&b"first bytes"[..])
    );
    // An empty APPE leaves the file as it was.
    let (_, last) = c.upload("APPE fresh.txt", b"");
    assert_eq!(last.code, 226, "{last:?}");
    assert_eq!(
        server.object("fresh.txt").as_deref(),
        Some(&b"first bytes"[..])
    );
}

/// Waits until the running transfer has moved at least `bytes` (STAT during a transfer reports its progress).
fn wait_progress(c: &mut Ctl, bytes: u64) {
    let deadline = Instant::now() + ftpd::TIMEOUT;
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
            Instant::now() < deadline,
            "the transfer made no progress: {stat:?}"
        );
        std::thread::yield_now();
    }
}

/// ABOR while an upload streams: 426 then 226, nothing stored (not even a partial object), the session and the
/// name stay usable. ABOR of a download stops it too.
#[test]
fn abort_mid_upload_stores_nothing() {
    let server = TestServer::start();
    server.put("keep/old.bin", b"the old object");
    let mut c = server.login();
    for (name, before) in [
        ("new.bin", None),
        ("keep/old.bin", Some(&b"the old object"[..])),
    ] {
        let mut data = c.epsv();
        c.expect(&format!("STOR {name}"), 150);
        let chunk = pattern(3 * 1024 * 1024, 3);
        data.write_all(&chunk).unwrap();
        wait_progress(&mut c, 1024 * 1024);
        // What clients send: Telnet IP and DM, then ABOR.
        c.send(b"\xff\xf4\xff\xf2ABOR\r\n");
        let aborted = c.reply();
        assert_eq!(aborted.code, 426, "{aborted:?}");
        c.expect_final(226);
        let mut rest = Vec::new();
        let _ = data.read_to_end(&mut rest);
        assert_eq!(server.object(name).as_deref(), before, "{name} after ABOR");
        c.expect("NOOP", 200);
    }
    assert_eq!(
        server.keys(),
        ["keep/old.bin"],
        "no partial object or temporary file left"
    );
    c.stor("new.bin", b"after the abort");
    assert_eq!(
        server.object("new.bin").as_deref(),
        Some(&b"after the abort"[..])
    );

    // ABOR of a download.
    server.put("large.bin", &pattern(8 * 1024 * 1024, 1));
    let mut data = c.epsv();
    c.expect("RETR large.bin", 150);
    let mut first = vec![0u8; 64 * 1024];
    data.read_exact(&mut first).unwrap();
    c.send(b"ABOR\r\n");
    let r = c.reply();
    if r.code == 426 {
        c.expect_final(226);
    } else {
        // The transfer may have finished into the socket buffers first.
        assert_eq!(r.code, 226, "{r:?}");
        let r = c.reply();
        assert!(matches!(r.code, 225 | 226), "{r:?}");
    }
    drop(data);
    c.expect("NOOP", 200);
}

/// Resets a TCP connection (SO_LINGER 0): the peer sees ECONNRESET, not a clean end of file.
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized option value.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
    drop(stream);
}

/// A data connection that breaks mid-upload is a failed upload: 426 and no object.
#[test]
fn dropped_data_connection_stores_nothing() {
    let server = TestServer::start();
    server.put("old.bin", b"old contents");
    let mut c = server.login();
    for (name, before) in [("new.bin", None), ("old.bin", Some(&b"old contents"[..]))] {
        let mut data = c.epsv();
        c.expect(&format!("STOR {name}"), 150);
        data.write_all(&pattern(2 * 1024 * 1024, 9)).unwrap();
        wait_progress(&mut c, 1024 * 1024);
        reset(data);
        let r = c.reply();
        assert_eq!(r.code, 426, "{name}: {r:?}");
        assert_eq!(server.object(name).as_deref(), before, "{name}");
        c.expect("NOOP", 200);
    }
    assert_eq!(server.keys(), ["old.bin"]);
}

/// A client that closes its control connection before the data connection ends (as a killed client does, when
/// its control connection goes first) gets nothing stored: the upload's end cannot be answered.
#[test]
fn client_gone_before_the_upload_ends_stores_nothing() {
    let server = TestServer::start();
    let mut watcher = server.login();
    for round in 0..3 {
        let name = format!("gone-{round}.bin");
        let mut c = server.login();
        let mut data = c.epsv();
        c.expect(&format!("STOR {name}"), 150);
        data.write_all(&pattern(100_000, 4)).unwrap();
        wait_progress(&mut c, 100_000);
        drop(c);
        drop(data);
        // The upload ends one way or the other: then SIZE answers 550 (aborted) or the object exists.
        let deadline = Instant::now() + ftpd::TIMEOUT;
        while server.object(&name).is_none() && watcher.cmd(&format!("SIZE {name}")).code == 213 {
            assert!(Instant::now() < deadline, "the upload never ended");
            std::thread::yield_now();
        }
        assert!(server.object(&name).is_none(), "round {round}: stored");
    }
    assert!(server.keys().is_empty(), "{:?}", server.keys());
}

/// QUIT during a transfer (RFC 959 §4.1.1): the transfer completes and is answered (226), then 221 — also when the
/// client closes its side right after QUIT.
#[test]
fn quit_during_a_transfer_lets_it_finish() {
    let server = TestServer::start();
    let body = pattern(300_000, 8);
    for (round, close_after_quit) in [(0, false), (1, true)] {
        let name = format!("quit-{round}.bin");
        let mut c = server.login();
        let mut data = c.epsv();
        c.expect(&format!("STOR {name}"), 150);
        data.write_all(&body[..100_000]).unwrap();
        wait_progress(&mut c, 100_000);
        c.send(b"QUIT\r\n");
        if close_after_quit {
            c.shutdown_write();
        }
        data.write_all(&body[100_000..]).unwrap();
        drop(data);
        c.expect_final(226);
        c.expect_final(221);
        assert!(c.is_closed());
        assert_eq!(server.object(&name), Some(body.clone()), "round {round}");
    }
    // A download too.
    server.put("down.bin", &body);
    let mut c = server.login();
    let mut data = c.epsv();
    c.expect("RETR down.bin", 150);
    c.send(b"QUIT\r\n");
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(got, body);
    c.expect_final(226);
    c.expect_final(221);
}

/// `single_file_max_size`: the byte after the limit fails the upload with 552 and nothing is stored; the 552 comes
/// after the client has sent everything (no reset while it sends).
#[test]
fn size_limit() {
    let server = TestServer::builder()
        .file("single_file_max_size = 1M")
        .start();
    let mut c = server.login();
    let limit = 1024 * 1024;
    c.stor("exact.bin", &pattern(limit, 1));
    assert_eq!(server.object("exact.bin").map(|b| b.len()), Some(limit));

    for (name, len) in [("over.bin", limit + 1), ("far-over.bin", 5 * limit)] {
        let mut data = c.epsv();
        c.expect(&format!("STOR {name}"), 150);
        // The server reads (and throws away) the rest, so the client can send it all and then read the 552.
        data.write_all(&pattern(len, 2))
            .expect("the server reads past the limit");
        drop(data);
        let r = c.reply();
        assert_eq!(r.code, 552, "{name}: {r:?}");
        assert!(r.text().contains("single_file_max_size"), "{r:?}");
        assert!(server.object(name).is_none(), "{name} must not be stored");
        c.expect("NOOP", 200);
    }
    // Appending past the limit is refused the same way, and the old object stays.
    let (_, last) = c.upload("APPE exact.bin", b"one more byte");
    assert_eq!(last.code, 552, "{last:?}");
    assert_eq!(server.object("exact.bin").map(|b| b.len()), Some(limit));
    assert_eq!(server.keys(), ["exact.bin"]);
}

/// Bad input costs the client one error reply, never the session: bad arguments 501, unknown commands 500/502,
/// wrong order 503, control characters in names 553, an over-long line 500; `..` never leaves the root.
#[test]
fn malformed_commands_keep_the_session() {
    let server = TestServer::start();
    let mut c = server.login();
    c.stor("file.txt", b"contents");

    for line in [
        "CWD",
        "MKD ",
        "RETR",
        "REST abc",
        "REST -1",
        "REST 99999999999999999999999",
        "PORT 1,2,3",
        "PORT 127,0,0,1,256,1",
        "PORT a,b,c,d,e,f",
        "EPRT |1|300.1.1.1|5000|",
        "EPRT |1|127.0.0.1|0|",
        "EPRT |1|127.0.0.1|99999|",
        "EPRT junk",
        "EPRT",
        "TYPE X",
        "TYPE L",
        "TYPE A B C",
        "MODE",
        "MODE XY",
        "STRU",
        "PROT",
        "PBSZ x",
        "OPTS",
        "SITE",
    ] {
        c.expect(line, 501);
    }
    c.expect("EPRT |3|::1|5000|", 522);
    c.expect("EPSV 3", 522);

    for line in ["XYZZY", "FOO bar", "MFCT 20200101000000 file.txt"] {
        c.expect(line, 502);
    }
    for line in ["123", "!!", "A-B", "AVERYLONGVERBTHATISNOTACOMMAND"] {
        c.expect(line, 500);
    }
    let r = c.cmd_bytes(b"\xc3\x28OOP");
    assert_eq!(r.code, 500, "{r:?}");
    // An empty line gets no reply; the next command's reply is next.
    c.send(b"\r\n");
    c.expect("NOOP", 200);
    // Telnet IAC sequences are dropped; bare LF line ends work.
    c.expect("\u{0}", 500);
    let r = c.cmd_bytes(b"\xff\xf4\xff\xf2NOOP");
    assert_eq!(r.code, 200, "{r:?}");
    c.send(b"NOOP\n");
    assert_eq!(c.reply().code, 200);

    // Wrong order.
    c.expect("RNTO x", 503);
    c.expect("PBSZ 0", 503);
    c.expect("RNFR file.txt", 350);
    c.expect("NOOP", 200);
    c.expect("RNTO renamed.txt", 250);

    // NUL and other control characters in names.
    for line in [
        &b"CWD a\0b"[..],
        b"MKD \0",
        b"STOR x\0y",
        b"DELE renamed.txt\0",
        b"MKD a\rb",
        b"RNFR \x07bell",
    ] {
        let r = c.cmd_bytes(line);
        assert_eq!(r.code, 553, "{:?}: {r:?}", line.escape_ascii().to_string());
    }
    let r = c.cmd_bytes(b"NO\0OP");
    assert_eq!(r.code, 500, "{r:?}");

    // A line of 1 MiB: 500, and the session goes on.
    let mut long = b"NOOP ".to_vec();
    long.resize(1024 * 1024, b'x');
    long.extend_from_slice(b"\r\n");
    c.send(&long);
    let r = c.reply();
    assert_eq!(r.code, 500, "{r:?}");
    c.expect("NOOP", 200);

    // `..` stays in the root, however it is spelled.
    c.expect("CWD ../../../..", 250);
    assert!(c.expect("PWD", 257).text().starts_with("\"/\""));
    c.expect("MKD sub", 257);
    c.expect("CWD sub/../../sub/./..//sub", 250);
    assert!(c.expect("PWD", 257).text().starts_with("\"/sub\""));
    c.stor("../../../../escape.txt", b"inside");
    assert_eq!(server.object("escape.txt").as_deref(), Some(&b"inside"[..]));
    let outside = server.root.parent().unwrap();
    assert!(
        !outside.join("escape.txt").exists(),
        "nothing is written outside the root"
    );
    let (first, _, _) = c.retr("../../../../etc/passwd");
    assert_eq!(first.code, 550, "{first:?}");
    let r = c.cmd("SIZE /../../bucket/escape.txt");
    assert_eq!(r.code, 550, "{r:?}");
    assert_eq!(c.nlst("../.."), ["escape.txt", "renamed.txt", "sub"]);
    c.expect("CWD ..\\..", 550);

    // Still the same session, still working.
    c.expect("CDUP", 250);
    let (_, got, last) = c.retr("renamed.txt");
    assert_eq!(last.code, 226);
    assert_eq!(got, b"contents");
    c.expect("QUIT", 221);
}

/// A control "line" that never ends closes that session (memory stays bounded); the server serves on.
#[test]
fn control_flood_closes_the_session() {
    let server = TestServer::start();
    let mut c = server.login();
    let junk = vec![b'A'; 64 * 1024];
    let mut sent = 0;
    while sent < 16 * 1024 * 1024 && c.try_send(&junk) {
        sent += junk.len();
    }
    assert!(
        sent < 16 * 1024 * 1024,
        "the server kept reading an endless line"
    );
    assert!(c.is_closed());
    let mut other = server.login();
    other.expect("NOOP", 200);
}

/// A control connection from another loopback address (127.0.0.2 reaches a server on 127.0.0.1), for per-IP rules.
fn connect_from(source: &str, server: SocketAddr) -> Ctl {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(source.parse().unwrap(), 0))
            .unwrap();
        socket.connect(server).await.unwrap().into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    Ctl::from_stream(stream)
}

/// `login_fail_limit` failed logins from one address: that address gets 421, at once and on every new connection,
/// while other addresses log in as usual.
#[test]
fn lockout_after_failed_logins() {
    let server = TestServer::builder()
        .optional("login_fail_limit = 3")
        .optional("login_ban_time = 600s")
        .start();
    let mut c = Ctl::connect(server.addr);
    c.expect("USER user", 331);
    c.expect("PASS wrong1", 530);
    c.expect("USER user", 331);
    c.expect("PASS wrong2", 530);
    c.expect("USER nobody", 331);
    c.expect("PASS wrong3", 421);
    assert!(c.is_closed(), "the locked-out session is closed");

    let mut again = Ctl::connect(server.addr);
    assert_eq!(again.greeting.code, 421, "{:?}", again.greeting);
    assert!(again.is_closed());

    let mut other = connect_from("127.0.0.2", server.addr);
    other.login("user", "pass");
    other.expect("NOOP", 200);
}

/// The lockout holds for sessions opened before the ban: 50 connections opened first, then wrong passwords guessed
/// on 48 of them at once, each until it is refused. With `login_fail_limit = 5`, at most 5 guesses are answered
/// (530, or the 421 of the guess that locks the address), whatever is in flight; then the right password on a
/// pre-opened session that had already sent USER is refused, and so is USER on another pre-opened session.
#[test]
fn lockout_holds_for_sessions_opened_before_the_ban() {
    let limit = 5;
    let server = TestServer::builder()
        .optional(&format!("login_fail_limit = {limit}"))
        .optional("login_ban_time = 600s")
        .optional("max_connection_per_ip = 60")
        .start();
    let mut sessions: Vec<Ctl> = (0..50).map(|_| Ctl::connect(server.addr)).collect();
    for c in &sessions {
        assert_eq!(c.greeting.code, 220, "{:?}", c.greeting);
    }
    let mut late_user = sessions.pop().expect("a session");
    let mut right_password = sessions.pop().expect("a session");
    right_password.expect("USER user", 331);

    let started = Instant::now();
    let guessers: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(n, mut c)| {
            std::thread::spawn(move || {
                let mut wrong = 0;
                let mut answered = 0;
                for guess in 0..10 {
                    match c.try_cmd("USER user").map(|r| r.code) {
                        Some(331) => {}
                        _ => break,
                    }
                    match c
                        .try_cmd(&format!("PASS wrong-{n}-{guess}"))
                        .map(|r| r.code)
                    {
                        Some(530) => {
                            wrong += 1;
                            answered += 1;
                        }
                        Some(421) => break,
                        other => panic!("PASS → {other:?}"),
                    }
                }
                (wrong, answered)
            })
        })
        .collect();
    let mut answered = 0;
    for g in guessers {
        answered += g.join().expect("guesser").1;
    }
    eprintln!(
        "{answered} wrong passwords answered 530 in {:?} (limit {limit})",
        started.elapsed()
    );
    assert!(
        answered < limit,
        "{answered} guesses answered 530 with login_fail_limit = {limit}"
    );

    let r = right_password.cmd("PASS pass");
    assert_eq!(r.code, 421, "the right password during the ban: {r:?}");
    assert!(right_password.is_closed());
    let r = late_user.cmd("USER user");
    assert_eq!(
        r.code, 421,
        "USER on a pre-opened session during the ban: {r:?}"
    );
    assert!(late_user.is_closed());
}

/// Connects until the server admits the connection again (a closed session frees its place a moment after the
/// client sees the close).
fn connect_when_admitted(server: SocketAddr) -> Ctl {
    let deadline = Instant::now() + ftpd::TIMEOUT;
    loop {
        let c = Ctl::connect(server);
        if c.greeting.code == 220 {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "never admitted: {:?}",
            c.greeting
        );
        std::thread::yield_now();
    }
}

/// `max_connection_num` and `max_connection_per_ip`: the connection over the limit gets 421 and is closed; a closed
/// session frees its place.
#[test]
fn connection_limits() {
    let server = TestServer::builder()
        .optional("max_connection_num = 3")
        .optional("max_connection_per_ip = 2")
        .start();
    let mut a1 = server.login();
    let _a2 = server.login();
    let mut a3 = Ctl::connect(server.addr);
    assert_eq!(a3.greeting.code, 421, "{:?}", a3.greeting);
    assert!(
        a3.greeting.text().contains("from your address"),
        "{:?}",
        a3.greeting
    );
    assert!(a3.is_closed());

    let mut b1 = connect_from("127.0.0.2", server.addr);
    assert_eq!(b1.greeting.code, 220);
    let mut b2 = connect_from("127.0.0.3", server.addr);
    assert_eq!(b2.greeting.code, 421, "{:?}", b2.greeting);
    assert!(
        b2.greeting.text().contains("to this server"),
        "{:?}",
        b2.greeting
    );
    assert!(b2.is_closed());

    a1.expect("QUIT", 221);
    assert!(a1.is_closed());
    let mut a4 = connect_when_admitted(server.addr);
    a4.login("user", "pass");
    b1.login("user", "pass");
    b1.expect("NOOP", 200);
}

/// `login_timeout` closes a connection that does not log in; `idle_timeout` a logged-in one without commands; a
/// transfer longer than the idle timeout is not cut.
#[test]
fn timeouts() {
    let server = TestServer::builder()
        .optional("login_timeout = 1s")
        .optional("idle_timeout = 2s")
        .start();
    let t = Instant::now();
    let mut c = Ctl::connect(server.addr);
    c.expect("USER user", 331);
    let r = c.reply();
    assert_eq!(r.code, 421, "{r:?}");
    assert!(r.text().contains("login"), "{r:?}");
    assert!(c.is_closed());
    assert!(t.elapsed() < Duration::from_secs(10));

    let mut c = server.login();
    let t = Instant::now();
    let r = c.reply();
    assert_eq!(r.code, 421, "{r:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t.elapsed()
    );
    assert!(c.is_closed());

    // Commands keep a session alive; so does a slow upload that moves 64 KiB per idle_timeout (here 48 KiB every
    // 0.7 s).
    let mut c = server.login();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        c.expect("NOOP", 200);
    }
    let mut data = c.epsv();
    c.expect("STOR slow.txt", 150);
    for i in 0..5 {
        data.write_all(&pattern(48 * 1024, i)).unwrap();
        std::thread::sleep(Duration::from_millis(700));
    }
    drop(data);
    c.expect_final(226);
    assert_eq!(
        server.object("slow.txt").map(|b| b.len()),
        Some(5 * 48 * 1024)
    );

    // A data connection that stops moving (still open) ends the transfer after idle_timeout; nothing is stored.
    let mut data = c.epsv();
    c.expect("STOR stalled.txt", 150);
    data.write_all(b"some bytes, then nothing").unwrap();
    let t = Instant::now();
    let r = c.reply();
    assert_eq!(r.code, 426, "{r:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(server.object("stalled.txt"), None);
    drop(data);
}

/// Idle means "no complete command": a logged-in client trickling a command line a byte at a time is cut after
/// idle_timeout like a silent one; a data connection that moves a byte at a time (less than 64 KiB per
/// idle_timeout) ends its transfer the same way, and nothing is stored.
#[test]
fn trickling_clients_are_cut() {
    let server = TestServer::builder().optional("idle_timeout = 2s").start();
    // A byte every 0.5 s, for up to 10 s (five idle timeouts), never a whole line.
    let trickle = 20;
    let mut c = server.login();
    let mut sent = 0;
    while sent < trickle && !c.has_reply_within(Duration::from_millis(500)) {
        if !c.try_send(b"N") {
            break;
        }
        sent += 1;
    }
    assert!(
        sent < trickle,
        "a session trickling a line was never cut ({sent} bytes)"
    );
    let r = c.reply();
    assert_eq!(r.code, 421, "{r:?}");
    assert!(c.is_closed());

    let mut c = server.login();
    let mut data = c.epsv();
    c.expect("STOR trickle.bin", 150);
    let mut sent = 0;
    while sent < trickle && !c.has_reply_within(Duration::from_millis(500)) {
        if data.write_all(b"x").is_err() {
            break;
        }
        sent += 1;
    }
    assert!(
        sent < trickle,
        "an upload trickling a byte at a time was never cut ({sent} bytes)"
    );
    let r = c.reply();
    assert_eq!(r.code, 426, "{r:?}");
    assert!(r.text().contains("KiB moved"), "{r:?}");
    assert_eq!(server.object("trickle.bin"), None);
    c.expect("NOOP", 200);
}

/// On shutdown (SIGTERM) every session hears `421 Server shutting down.` before its connection closes: sessions
/// that are not logged in, idle ones, and ones in the middle of an upload or a download; the upload stores nothing.
#[test]
fn shutdown_says_421_to_every_session() {
    let mut server = TestServer::start();
    server.put("big.bin", &pattern(8 * 1024 * 1024, 2));
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push((Ctl::connect(server.addr), "not logged in", None));
        sessions.push((server.login(), "idle", None));
    }
    for n in 0..2 {
        let mut c = server.login();
        let mut data = c.epsv();
        c.expect(&format!("STOR up-{n}.bin"), 150);
        data.write_all(&pattern(100_000, 1)).unwrap();
        wait_progress(&mut c, 100_000);
        sessions.push((c, "uploading", Some(data)));
        // The client does not read: the download waits on a full socket.
        let mut c = server.login();
        let data = c.epsv();
        c.expect("RETR big.bin", 150);
        sessions.push((c, "downloading", Some(data)));
    }
    server.shutdown();
    let total = sessions.len();
    let mut bare = Vec::new();
    for (n, (mut c, what, _data)) in sessions.into_iter().enumerate() {
        match c.try_reply() {
            Some(r) => {
                assert_eq!(r.code, 421, "session {n} ({what}): {r:?}");
                assert_eq!(r.text(), "Server shutting down.", "session {n} ({what})");
            }
            None => bare.push(format!("{n} ({what})")),
        }
        assert!(c.is_closed(), "session {n} ({what})");
    }
    assert!(
        bare.is_empty(),
        "{} of {total} sessions closed without a 421: {bare:?}",
        bare.len()
    );
    assert!(server.object("up-0.bin").is_none() && server.object("up-1.bin").is_none());
}

/// NLST and LIST expand a shell pattern in the last segment of their argument (`*`, `?`, `[...]`), as vsftpd does
/// and as `mget *.txt` needs; a file literally named like the pattern wins; a leading dot is matched only by a
/// literal one; MLSD takes no patterns.
#[test]
fn nlst_and_list_expand_patterns() {
    let server = TestServer::start();
    for key in [
        "a.txt",
        "b.txt",
        "c.bin",
        ".hidden.txt",
        "sub/d.txt",
        "sub/e.bin",
    ] {
        server.put(key, b"x");
    }
    let mut c = server.login();
    assert_eq!(c.nlst("*.txt"), ["a.txt", "b.txt"]);
    assert_eq!(c.nlst("?.bin"), ["c.bin"]);
    assert_eq!(c.nlst("[ab].*"), ["a.txt", "b.txt"]);
    assert_eq!(c.nlst("[!a].txt"), ["b.txt"]);
    // A directory part is kept as typed, so that the names can be fetched as they are (mget sub/*.txt).
    assert_eq!(c.nlst("sub/*.txt"), ["sub/d.txt"]);
    assert_eq!(c.nlst("/sub/*"), ["/sub/d.txt", "/sub/e.bin"]);
    c.expect("CWD sub", 250);
    assert_eq!(c.nlst("*.bin"), ["e.bin"]);
    assert_eq!(c.nlst("../*.bin"), ["../c.bin"]);
    c.expect("CWD /", 250);
    // Nothing matches: an empty listing; a directory that does not exist: 550.
    assert!(c.nlst("*.none").is_empty());
    let (first, _, _) = c.download("NLST nodir/*.txt");
    assert_eq!(first.code, 550, "{first:?}");

    let (first, list, last) = c.download("LIST *.txt");
    assert_eq!((first.code, last.code), (150, 226));
    let list = String::from_utf8(list).unwrap();
    let mut names: Vec<&str> = list
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.txt", "b.txt"], "{list}");
    assert!(list.lines().all(|l| l.starts_with("-rw")), "{list}");
    let (first, _, _) = c.download("MLSD *.txt");
    assert_eq!(first.code, 550, "{first:?}");

    // A file literally named like the pattern wins. Stored through this account: a file another client puts
    // into a directory listed within `metadata_ttl` is not seen until the TTL ends (docs/SEMANTICS.md).
    c.stor("[ab].txt", b"literal");
    assert_eq!(c.nlst("[ab].txt"), ["[ab].txt"]);
    assert_eq!(c.nlst("*.txt"), ["[ab].txt", "a.txt", "b.txt"]);
}

/// STOU decodes its argument like every other command: a GBK name (with `legacy_encoding = gbk`) becomes a UTF-8
/// key, and bytes that are not text in the session's encoding are refused with 553 (never a U+FFFD in a key).
#[test]
fn stou_decodes_names_like_every_command() {
    let server = TestServer::builder()
        .network("legacy_encoding = gbk")
        .start();
    let gbk = |s: &str| encoding_rs::GBK.encode(s).0.into_owned();
    let mut c = server.login();
    let mut data = c.epsv();
    let r = c.cmd_bytes(&[b"STOU ", &gbk("中文.txt")[..]].concat());
    assert_eq!(r.code, 150, "{r:?}");
    data.write_all(b"unique").unwrap();
    drop(data);
    c.expect_final(226);
    assert_eq!(
        server.object("中文.txt").as_deref(),
        Some(&b"unique"[..]),
        "{:?}",
        server.keys()
    );

    let server = TestServer::start();
    let mut c = server.login();
    let _data = c.epsv();
    let r = c.cmd_bytes(b"STOU bad\xc3\x28name");
    assert_eq!(r.code, 553, "{r:?}");
    assert!(server.keys().is_empty(), "{:?}", server.keys());
}

/// UTF-8 names end to end: stored as UTF-8 keys, listed and served back as sent.
#[test]
fn utf8_names() {
    let server = TestServer::start();
    let mut c = server.login();
    c.expect("OPTS UTF8 ON", 200);
    let mkd = c.expect("MKD 中文目录", 257);
    assert!(mkd.text().contains("中文目录"), "{mkd:?}");
    c.expect("CWD 中文目录", 250);
    c.stor("文件 名 ü é.txt", "内容".as_bytes());
    c.stor(" leading space", b"spaces");
    assert_eq!(
        server.object("中文目录/文件 名 ü é.txt").as_deref(),
        Some("内容".as_bytes())
    );
    assert_eq!(
        server.object("中文目录/ leading space").as_deref(),
        Some(&b"spaces"[..])
    );
    assert_eq!(c.nlst(""), [" leading space", "文件 名 ü é.txt"]);
    // The store trims whitespace at the ends of a key: such names are refused rather than silently changed.
    for name in [
        "trailing ",
        "/ at the root",
        "/中文目录/ideographic\u{3000}",
    ] {
        let (first, _) = c.upload(&format!("STOR {name}"), b"x");
        assert_eq!(first.code, 553, "STOR {name:?}: {first:?}");
    }
    assert_eq!(server.keys().len(), 2, "{:?}", server.keys());
    let (_, list, _) = c.download("LIST");
    let list = String::from_utf8(list).expect("LIST is UTF-8");
    assert!(
        list.lines().any(|l| l.ends_with(" 文件 名 ü é.txt")),
        "{list:?}"
    );
    let (_, mlsd, _) = c.download("MLSD /中文目录");
    assert!(String::from_utf8(mlsd)
        .unwrap()
        .contains("; 文件 名 ü é.txt\r\n"));
    c.expect("RNFR 文件 名 ü é.txt", 350);
    c.expect("RNTO 改名.txt", 250);
    let (_, got, _) = c.retr("/中文目录/改名.txt");
    assert_eq!(got, "内容".as_bytes());
    assert!(c.expect("PWD", 257).text().starts_with("\"/中文目录\""));
    // Invalid UTF-8 is refused without legacy_encoding.
    let (gbk, _, _) = encoding_rs::GBK.encode("中文");
    let r = c.cmd_bytes(&[b"MKD ", &gbk[..]].concat());
    assert_eq!(r.code, 553, "{r:?}");
}

/// `legacy_encoding = gbk`: GBK bytes from old Windows clients become UTF-8 keys, and names go back in GBK.
#[test]
fn gbk_names() {
    let server = TestServer::builder()
        .network("legacy_encoding = gbk")
        .start();
    let gbk = |s: &str| encoding_rs::GBK.encode(s).0.into_owned();
    let mut c = server.login();
    let r = c.cmd_bytes(&[b"MKD ", &gbk("中文目录")[..]].concat());
    assert_eq!(r.code, 257, "{r:?}");
    assert!(server.root.join("中文目录").is_dir(), "the key is UTF-8");
    let r = c.cmd_bytes(&[b"CWD ", &gbk("中文目录")[..]].concat());
    assert_eq!(r.code, 250, "{r:?}");

    // STOR with a GBK name.
    let mut data = c.epsv();
    let r = c.cmd_bytes(&[b"STOR ", &gbk("文件.txt")[..]].concat());
    assert_eq!(r.code, 150, "{r:?}");
    data.write_all(b"gbk client").unwrap();
    drop(data);
    c.expect_final(226);
    assert_eq!(
        server.object("中文目录/文件.txt").as_deref(),
        Some(&b"gbk client"[..])
    );

    // Listings and PWD come back in GBK.
    let (_, nlst, _) = c.download("NLST");
    assert_eq!(nlst, [&gbk("文件.txt")[..], b"\r\n"].concat());
    let (_, list, _) = c.download("LIST");
    assert!(
        list.ends_with(&[b" ", &gbk("文件.txt")[..], b"\r\n"].concat()),
        "{list:?}"
    );
    c.send(b"PWD\r\n");
    let pwd = c.raw_reply_line();
    assert_eq!(pwd[..5], *b"257 \"");
    assert_eq!(
        pwd[5..5 + 1 + gbk("中文目录").len()],
        [b"/", &gbk("中文目录")[..]].concat()[..]
    );

    // RETR with the GBK name; UTF-8 names still work.
    let (first, got, _) = c.download(&String::from_utf8_lossy(b"RETR dummy"));
    assert_eq!(first.code, 550);
    drop(got);
    let mut data = c.epsv();
    let r = c.cmd_bytes(&[b"RETR ", &gbk("文件.txt")[..]].concat());
    assert_eq!(r.code, 150, "{r:?}");
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    c.expect_final(226);
    assert_eq!(got, b"gbk client");
    let (_, got, _) = c.retr("/中文目录/文件.txt");
    assert_eq!(got, b"gbk client");
    // Bytes that are neither UTF-8 nor GBK: 553.
    let r = c.cmd_bytes(b"MKD \xff\xff\xff");
    assert_eq!(r.code, 553, "{r:?}");
}

/// With an IPv6 `listen_address`, everything works over `::1`: EPSV and EPRT |2|, while PASV (IPv4-only) and
/// EPRT |1| answer 522 naming protocol 2.
#[test]
fn ipv6_control_and_data_connections() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback on this host");
        return;
    }
    let server = TestServer::builder()
        .listen_address("::1".parse().unwrap())
        .start();
    assert!(server.addr.is_ipv6(), "{}", server.addr);
    let mut c = server.login();
    c.stor("v6.txt", b"over ipv6");
    let (_, body, done) = c.retr("v6.txt");
    assert_eq!(body, b"over ipv6");
    assert_eq!(done.code, 226);

    let pasv = c.cmd("PASV");
    assert_eq!(pasv.code, 522, "{pasv:?}");
    assert!(pasv.text().contains("(2)"), "{pasv:?}");
    c.expect("EPRT |1|127.0.0.1|5000|", 522);

    // Active mode back to us over IPv6.
    let listener = TcpListener::bind("[::1]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    c.expect(&format!("EPRT |2|::1|{port}|"), 200);
    c.expect("RETR v6.txt", 150);
    let (mut data, _) = listener.accept().unwrap();
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"over ipv6");
    c.expect_final(226);
}

/// Hashed passwords in the config (verified on tokio's blocking pool): the password logs in, the hash text does not.
#[test]
fn hashed_passwords_log_in() {
    // `openssl passwd -6 -salt saltsalt secret`; crypt_blowfish's test vector for `U*U`.
    let sha512 = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    let bcrypt = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    let server = TestServer::builder()
        .account("sha", sha512, "RW", true)
        .account("bf", bcrypt, "RW", true)
        .start();
    let mut c = Ctl::connect(server.addr);
    c.login("sha", "secret");
    c.expect("PWD", 257);
    let mut c = Ctl::connect(server.addr);
    c.login("bf", "U*U");
    c.expect("PWD", 257);
    let mut c = Ctl::connect(server.addr);
    c.expect("USER sha", 331);
    c.expect(&format!("PASS {sha512}"), 530);
}
