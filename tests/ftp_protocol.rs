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
