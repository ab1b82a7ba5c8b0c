//! FTP's digest commands (issue: resume and checksums): HASH with OPTS HASH and RANG (draft-bryan-ftpext-hash,
//! draft-bryan-ftp-range), the older XSHA256/XSHA1/XSHA512/XMD5/XCRC and MD5, and RANG + RETR; on the local store
//! and on a real S3 server (moto), where the digests of an upload come from its metadata.

mod common;
mod ftpd;

use common::{S3Server, ServerMode};
use ftpd::{Account, Store, TestServer};
use sha2::Digest as _;

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

fn sha1_hex(data: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(data))
}

fn sha512_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha512::digest(data))
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(data))
}

fn crc32_hex(data: &[u8]) -> String {
    let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc);
    crc.update(data);
    format!("{:08x}", crc.finalize())
}

/// FEAT, OPTS HASH, HASH of the whole file and of a RANG, RANG reset, every X command, MD5, and the errors.
fn check_digest_commands(server: &TestServer) {
    let body = ftpd::pattern(150_000, 3);
    let mut ctl = server.login();
    ctl.stor("d.bin", &body);

    let feat = ctl.expect("FEAT", 211).text();
    assert!(
        feat.contains(" HASH MD5;SHA-1;SHA-256*;SHA-512;CRC32"),
        "FEAT names the algorithms, SHA-256 selected: {feat}"
    );
    assert!(feat.contains(" RANG STREAM"), "{feat}");
    assert!(feat.contains(" XSHA256"), "{feat}");

    assert_eq!(ctl.expect("OPTS HASH", 200).text(), "SHA-256");
    let last = body.len() - 1;
    assert_eq!(
        ctl.expect("HASH d.bin", 213).text(),
        format!("SHA-256 0-{last} {} /d.bin", sha256_hex(&body))
    );

    // Another algorithm, then a range: the draft's ends are inclusive.
    assert_eq!(ctl.expect("OPTS HASH SHA-1", 200).text(), "SHA-1");
    ctl.expect("RANG 100 199", 350);
    assert_eq!(
        ctl.expect("HASH d.bin", 213).text(),
        format!("SHA-1 100-199 {} /d.bin", sha1_hex(&body[100..200]))
    );
    // The range was for one command.
    assert_eq!(
        ctl.expect("HASH d.bin", 213).text(),
        format!("SHA-1 0-{last} {} /d.bin", sha1_hex(&body))
    );
    ctl.expect("RANG 5 9", 350);
    ctl.expect("RANG 1 0", 350);
    assert!(ctl
        .expect("HASH d.bin", 213)
        .text()
        .starts_with(&format!("SHA-1 0-{last} ")));

    ctl.expect("OPTS HASH CRC-37", 501);
    assert_eq!(ctl.expect("OPTS HASH", 200).text(), "SHA-1", "unchanged");

    // The older commands: the digest alone (MD5 in capitals, as clients of XMD5 expect), or with the name.
    assert_eq!(ctl.expect("XSHA256 d.bin", 250).text(), sha256_hex(&body));
    assert_eq!(ctl.expect("XSHA1 d.bin", 250).text(), sha1_hex(&body));
    assert_eq!(ctl.expect("XSHA512 d.bin", 250).text(), sha512_hex(&body));
    assert_eq!(
        ctl.expect("XMD5 d.bin", 250).text(),
        md5_hex(&body).to_ascii_uppercase()
    );
    assert_eq!(ctl.expect("XCRC d.bin", 250).text(), crc32_hex(&body));
    assert_eq!(
        ctl.expect("XCRC d.bin 10 20", 250).text(),
        crc32_hex(&body[10..20]),
        "X commands take start and end (exclusive), as proftpd's mod_digest"
    );
    assert_eq!(
        ctl.expect("MD5 d.bin", 251).text(),
        format!("/d.bin {}", md5_hex(&body))
    );

    // Errors: no such file, a directory, a range past the end.
    ctl.expect("HASH nothing.bin", 550);
    ctl.expect("MKD sub", 257);
    ctl.expect("HASH sub", 550);
    ctl.expect(&format!("RANG {} {}", body.len() + 1, body.len() + 5), 350);
    let past = ctl.cmd("HASH d.bin");
    assert!(
        past.code >= 500,
        "a range past the end is refused: {past:?}"
    );

    // RANG + RETR sends only those bytes; REST cancels a RANG.
    ctl.expect("RANG 1000 1999", 350);
    let (first, got, last) = ctl.retr("d.bin");
    assert_eq!((first.code, last.code), (150, 226));
    assert_eq!(got, &body[1000..2000]);
    ctl.expect("RANG 0 9", 350);
    ctl.expect("REST 149990", 350);
    let (_, got, _) = ctl.retr("d.bin");
    assert_eq!(got, &body[149_990..]);
    // RANG does not apply to uploads: refused, nothing written.
    ctl.expect("RANG 0 9", 350);
    let (first, _) = ctl.upload("STOR r.bin", b"data");
    assert_eq!(first.code, 504, "{first:?}");
    ctl.expect("SIZE r.bin", 550);
}

#[test]
fn digest_commands_on_the_local_store() {
    let server = TestServer::start();
    check_digest_commands(&server);
}

#[test]
fn digest_commands_on_s3() {
    let Some(s3) = S3Server::shared(ServerMode::S3) else {
        return;
    };
    let bucket = common::unique_bucket("ftp-digests");
    s3.create_bucket(&bucket);
    let server = TestServer::builder()
        .store(Store::S3 {
            endpoint: s3.endpoint(),
            bucket,
        })
        .start();
    check_digest_commands(&server);
}

/// HASH needs the right to read: a write-only account is refused, as for RETR.
#[test]
fn hash_needs_read_permission() {
    let server = TestServer::builder()
        .account("writer", "pw", "W", false)
        .start();
    let Account { user, pass, .. } = server.accounts[0].clone();
    let mut ctl = ftpd::Ctl::connect(server.addr);
    ctl.login(&user, &pass);
    ctl.stor("w.bin", b"secret");
    ctl.expect("HASH w.bin", 550);
    ctl.expect("XSHA256 w.bin", 550);
}
