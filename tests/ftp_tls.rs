//! FTPS with real clients: explicit (AUTH TLS) and implicit TLS with curl, lftp and Python ftplib, and
//! `tls_mode = required`. The certificate is a self-signed one made by `rcgen` for each server.

mod common;
mod ftpd;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use ftpd::{pattern, run, success, tool, Ctl, TestServer, Tls};

fn curl(args: &[&str]) -> Option<std::process::Output> {
    let curl = tool("curl")?;
    let mut cmd = Command::new(curl);
    cmd.args(["-sS", "--max-time", "60", "-k"]).args(args);
    Some(run(&mut cmd))
}

/// FEAT announces TLS only when it is configured; a failed handshake costs only that session.
#[test]
fn feat_and_a_broken_handshake() {
    let server = TestServer::builder().tls(Tls::Optional).start();
    let mut c = Ctl::connect(server.addr);
    let feat = c.expect("FEAT", 211);
    for f in ["AUTH TLS", "PBSZ", "PROT"] {
        assert!(
            feat.lines.iter().any(|l| l.trim() == f),
            "FEAT lacks {f}: {feat:?}"
        );
    }
    // Plain login still works in optional mode.
    c.login("user", "pass");
    c.expect("PROT P", 503);
    c.expect("PBSZ 0", 503);
    let (_, names, _) = c.download("NLST");
    assert!(names.is_empty());
    drop(c);
    let mut c = Ctl::connect(server.addr);
    c.expect("AUTH TLS", 234);
    c.send(b"this is not a TLS client hello\r\n");
    assert!(c.is_closed(), "a failed handshake ends the session");
    server.login().expect("NOOP", 200);
}

#[test]
fn curl_explicit_and_implicit_tls() {
    let server = TestServer::builder()
        .tls(Tls::Optional)
        .implicit_tls()
        .start();
    let local = tempfile::tempdir().unwrap();
    let body = pattern(2 * 1024 * 1024 + 5, 2);
    let up = local.path().join("up.bin");
    std::fs::write(&up, &body).unwrap();
    let up = up.to_str().unwrap();
    let url = server.url();
    let Some(out) = curl(&[
        "--ssl-reqd",
        "--ftp-create-dirs",
        "-T",
        up,
        &format!("{url}tls/up.bin"),
    ]) else {
        return;
    };
    success("curl --ssl-reqd -T", &out);
    assert_eq!(server.object("tls/up.bin"), Some(body.clone()));
    let down = local.path().join("down.bin");
    let down_s = down.to_str().unwrap();
    // (Active mode over TLS is left to ftplib: curl 7.88 cannot, curl/curl#10669.)
    let remote = format!("{url}tls/up.bin");
    success(
        "curl --ssl-reqd RETR",
        &curl(&["--ssl-reqd", "-o", down_s, &remote]).unwrap(),
    );
    assert_eq!(std::fs::read(&down).unwrap(), body);
    let list = success(
        "curl --ssl-reqd LIST",
        &curl(&["--ssl-reqd", &format!("{url}tls/")]).unwrap(),
    );
    assert!(list.lines().any(|l| l.ends_with(" up.bin")), "{list:?}");

    // Implicit FTPS: TLS from the first byte.
    let implicit = server.implicit_addr.expect("implicit listener");
    let ftps = format!("ftps://user:pass@127.0.0.1:{}/", implicit.port());
    success(
        "curl ftps:// -T",
        &curl(&["-T", up, &format!("{ftps}tls/implicit.bin")]).unwrap(),
    );
    assert_eq!(server.object("tls/implicit.bin"), Some(body.clone()));
    success(
        "curl ftps:// RETR",
        &curl(&["-o", down_s, &format!("{ftps}tls/implicit.bin")]).unwrap(),
    );
    assert_eq!(std::fs::read(&down).unwrap(), body);
    // Plain text on the implicit port gets no FTP greeting, only a closed connection.
    let mut plain = std::net::TcpStream::connect(implicit).unwrap();
    plain.set_read_timeout(Some(ftpd::TIMEOUT)).unwrap();
    plain.write_all(b"USER user\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"220"), "{answer:?}");
}

#[test]
fn ftplib_explicit_and_implicit_tls() {
    let server = TestServer::builder()
        .tls(Tls::Optional)
        .implicit_tls()
        .start();
    let Some(out) = ftpd::ftplib(&server, server.addr, 0, "walk_tls", &["explicit"]) else {
        return;
    };
    success("ftplib FTP_TLS walk", &out);
    let implicit = server.implicit_addr.expect("implicit listener");
    let out = ftpd::ftplib(&server, implicit, 0, "walk_implicit", &["implicit"]).unwrap();
    success("ftplib implicit TLS walk", &out);
    assert!(server.keys().is_empty(), "{:?}", server.keys());
}

#[test]
fn lftp_over_tls() {
    if tool("lftp").is_none() {
        return;
    }
    let server = TestServer::builder().tls(Tls::Required).start();
    let local = tempfile::tempdir().unwrap();
    let body = pattern(500_000, 6);
    std::fs::write(local.path().join("a.bin"), &body).unwrap();
    let script = format!(
        "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 30; set ftp:ssl-force yes; \
         set ftp:ssl-protect-data yes; set ssl:verify-certificate no; \
         open -u user,pass -p {} 127.0.0.1; mkdir t; put {} -o t/a.bin; get t/a.bin -o {}; cls t",
        server.port(),
        local.path().join("a.bin").display(),
        local.path().join("b.bin").display()
    );
    let mut cmd = Command::new("lftp");
    cmd.args(["-c", &script]);
    let out = success(
        "lftp over TLS",
        &ftpd::run_with_timeout(&mut cmd, Duration::from_secs(120)),
    );
    assert!(out.contains("a.bin"), "{out}");
    assert_eq!(server.object("t/a.bin"), Some(body.clone()));
    assert_eq!(std::fs::read(local.path().join("b.bin")).unwrap(), body);
}

/// aioftp completes the TLS handshake of a passive data connection before it sends the transfer command: the
/// server takes the connection and answers the handshake at once (it used to wait for the command, and the client
/// for the handshake, until a timeout). PROT P upload, download and listing, explicit and implicit TLS.
#[test]
fn aioftp_handshakes_before_the_transfer_command() {
    let Some(python) = ftpd::venv_python_with("aioftp") else {
        return;
    };
    let server = TestServer::builder()
        .tls(Tls::Optional)
        .implicit_tls()
        .start();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/aioftp_client.py");
    let implicit = server.implicit_addr.expect("implicit TLS listener");
    for (mode, addr) in [("explicit", server.addr), ("implicit", implicit)] {
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .args([mode, "127.0.0.1", &addr.port().to_string(), "user", "pass"]);
        let out = ftpd::run_with_timeout(&mut cmd, Duration::from_secs(45));
        assert!(
            success(&format!("aioftp {mode}"), &out).contains(&format!("ok {mode}")),
            "{out:?}"
        );
        assert!(server.object(&format!("aioftp-{mode}.bin")).is_some());
    }
}

/// `tls_mode = required`: USER in clear gets 530, data without PROT P is refused, PROT C is refused.
#[test]
fn tls_required() {
    let server = TestServer::builder().tls(Tls::Required).start();
    let mut c = Ctl::connect(server.addr);
    c.expect("USER user", 530);
    c.expect("PASS pass", 503);
    c.expect("PWD", 530);
    let Some(out) = ftpd::ftplib(&server, server.addr, 0, "required", &[]) else {
        return;
    };
    success("ftplib in tls_mode = required", &out);
    assert_eq!(
        server.object("secret.txt").as_deref(),
        Some(&b"over TLS"[..])
    );
    if let Some(out) = curl(&[&server.url()]) {
        assert!(!out.status.success(), "plain curl must be refused: {out:?}");
    }
}
