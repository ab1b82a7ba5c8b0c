//! The test harness itself: the moto server starts in both modes, takes buckets and objects, lists
//! directories, and goes away when told to. Skips when moto is missing, unless COSFTPD_REQUIRE_S3=1.

mod common;

use common::{S3Server, ServerMode};

/// PUT/GET/list through the raw client, addressed the way the mode's clients do it.
fn exercise(server: &S3Server, bucket: &str) {
    server.create_bucket(bucket);

    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    server.put_object(bucket, "dir/", b"");
    server.put_object(bucket, "dir/file.bin", &data);
    server.put_object(bucket, "dir/sub/deep.txt", b"deep");
    server.put_object(bucket, "top.txt", b"top");
    server.put_object(bucket, "name with spaces & ünïcode.txt", b"odd");

    assert_eq!(
        server.get_object(bucket, "dir/file.bin").as_deref(),
        Some(&data[..])
    );
    assert_eq!(server.get_object(bucket, "dir/").as_deref(), Some(&b""[..]));
    assert_eq!(
        server
            .get_object(bucket, "name with spaces & ünïcode.txt")
            .as_deref(),
        Some(&b"odd"[..])
    );
    assert_eq!(server.get_object(bucket, "missing"), None);

    let root = server.list_all(bucket, "", "/");
    assert_eq!(root.keys, vec!["name with spaces & ünïcode.txt", "top.txt"]);
    assert_eq!(root.common_prefixes, vec!["dir/"]);

    let dir = server.list_all(bucket, "dir/", "/");
    assert_eq!(dir.keys, vec!["dir/", "dir/file.bin"]);
    assert_eq!(dir.common_prefixes, vec!["dir/sub/"]);

    // Ranged GET, as the read path does it.
    let r = server
        .request(
            "GET",
            bucket,
            "dir/file.bin",
            "",
            &[("Range", "bytes=10-19")],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[10..20]);

    server.delete_object(bucket, "top.txt");
    assert_eq!(server.get_object(bucket, "top.txt"), None);
}

/// Pages of 2 over keys and prefixes mixed: each entry exactly once, NextMarker always given when truncated
/// (the cos lister stops without it; moto's own v1 listing would repeat the prefixes on every page).
fn paging(server: &S3Server, bucket: &str) {
    server.create_bucket(bucket);
    for key in ["a/", "a/x", "b/y", "c", "d", "e/", "f/z/w", "g"] {
        server.put_object(bucket, key, b"x");
    }
    let mut names = Vec::new();
    let mut marker = String::new();
    let mut pages = 0;
    loop {
        let page = server.list_page(bucket, "", "/", &marker, 2);
        pages += 1;
        assert!(
            page.keys.len() + page.common_prefixes.len() <= 2,
            "{page:?}"
        );
        names.extend(page.keys);
        names.extend(page.common_prefixes);
        if !page.is_truncated {
            break;
        }
        marker = page.next_marker.expect("NextMarker on a truncated page");
        assert!(pages < 10, "listing does not end");
    }
    names.sort();
    assert_eq!(names, vec!["a/", "b/", "c", "d", "e/", "f/", "g"]);

    // Without a delimiter too.
    let page = server.list_page(bucket, "", "", "", 3);
    assert_eq!(page.keys, vec!["a/", "a/x", "b/y"]);
    assert!(page.is_truncated);
    assert_eq!(page.next_marker.as_deref(), Some("b/y"));
}

#[test]
fn s3_mode_path_style() {
    let Some(server) = S3Server::start(ServerMode::S3) else {
        return;
    };
    exercise(&server, "plain-bucket");
    paging(&server, "paging-bucket");
    // Path-style is what S3 mode's clients send: check one request by hand.
    let r = common::http_request(
        server.addr(),
        "GET",
        &format!("127.0.0.1:{}", server.port()),
        "/plain-bucket/dir/sub/deep.txt",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"deep"[..]));
}

#[test]
fn cos_mode_host_style() {
    let Some(server) = S3Server::start(ServerMode::Cos) else {
        return;
    };
    let bucket = "examplebucket-1250000000";
    exercise(&server, bucket);
    paging(&server, "paging-1250000000");

    // The bucket comes from the Host name, the key is the whole path, and COS-signed requests are accepted.
    let host = format!("{bucket}.{}:{}", common::COS_DOMAIN, server.port());
    let auth = "q-sign-algorithm=sha1&q-ak=AKIDEXAMPLE&q-sign-time=1700000000;1700003600\
                &q-key-time=1700000000;1700003600&q-header-list=host&q-url-param-list=&q-signature=00";
    let r = common::http_request(
        server.addr(),
        "GET",
        &host,
        "/dir/sub/deep.txt",
        &[("Authorization", auth)],
        b"",
    )
    .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"deep"[..]));

    // COS's spelling of copy and metadata (x-cos-*), as OpenDAL's cos service sends them.
    let r = server
        .request(
            "PUT",
            bucket,
            "copied.bin",
            "",
            &[("x-cos-copy-source", &format!("/{bucket}/dir/file.bin"))],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = server
        .request("HEAD", bucket, "copied.bin", "", &[], b"")
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("100000"));
    let r = server
        .request(
            "PUT",
            bucket,
            "meta.txt",
            "",
            &[("x-cos-meta-origin", "harness")],
            b"m",
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = server
        .request("HEAD", bucket, "meta.txt", "", &[], b"")
        .unwrap();
    assert_eq!(r.header("x-cos-meta-origin"), Some("harness"));

    // x-cos-forbid-overwrite: true refuses to replace an existing object (412, as If-None-Match: *).
    let r = server
        .request(
            "PUT",
            bucket,
            "copied.bin",
            "",
            &[("x-cos-forbid-overwrite", "true")],
            b"new",
        )
        .unwrap();
    assert_eq!(r.status, 412, "{}", r.text());
    assert_eq!(
        server.get_object(bucket, "copied.bin").map(|b| b.len()),
        Some(100_000)
    );

    // Path-style requests reach the same store.
    let r = common::http_request(
        server.addr(),
        "GET",
        &format!("127.0.0.1:{}", server.port()),
        &format!("/{bucket}/dir/sub/deep.txt"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"deep"[..]));
}

#[test]
fn buckets_at_start_and_stop() {
    let Some(mut server) = S3Server::start_with_buckets(ServerMode::Cos, &["pre-made-1250000000"])
    else {
        return;
    };
    server.put_object("pre-made-1250000000", "k", b"v");
    assert_eq!(
        server.get_object("pre-made-1250000000", "k").as_deref(),
        Some(&b"v"[..])
    );
    assert!(server.is_running());

    let addr = server.addr();
    server.stop();
    assert!(!server.is_running());
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "server still listening after stop()"
    );
    server.stop(); // idempotent
}

#[test]
fn shared_server_and_helpers() {
    let Some(server) = S3Server::shared(ServerMode::S3) else {
        return;
    };
    let again = S3Server::shared(ServerMode::S3).unwrap();
    assert_eq!(server.port(), again.port());
    let bucket = common::unique_bucket("shared");
    assert_ne!(bucket, common::unique_bucket("shared"));
    server.create_bucket(&bucket);
    server.put_object(&bucket, "x", b"y");
    assert_eq!(server.get_object(&bucket, "x").as_deref(), Some(&b"y"[..]));

    let port = common::free_port();
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), "[COS_ACCOUNT_0]\ncos_bucket = b\n");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "[COS_ACCOUNT_0]\ncos_bucket = b\n"
    );
}

/// Append as the design builds it: a multipart upload whose first part is a server-side copy of the old
/// object (COS spelling, `x-cos-copy-source` + `x-cos-copy-source-range`), then the new bytes; ListParts and
/// abort too. COS mode accepts 1 MiB parts, as COS does.
#[test]
fn cos_mode_multipart_with_part_copy() {
    let bucket = "append-1250000000";
    let Some(server) = S3Server::start_with_buckets(ServerMode::Cos, &[bucket]) else {
        return;
    };
    let old: Vec<u8> = (0..1024 * 1024 + 100).map(|i| (i % 241) as u8).collect();
    server.put_object(bucket, "log.txt", &old);

    let r = server
        .request("POST", bucket, "log.txt", "uploads", &[], b"")
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let upload_id = common::xml_values(&r.text(), "UploadId")
        .pop()
        .expect("UploadId");
    let id = common::encode_query(&upload_id);

    let source = format!("/{bucket}/log.txt");
    let r = server
        .request(
            "PUT",
            bucket,
            "log.txt",
            &format!("partNumber=1&uploadId={id}"),
            &[
                ("x-cos-copy-source", &source),
                (
                    "x-cos-copy-source-range",
                    &format!("bytes=0-{}", old.len() - 1),
                ),
            ],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let etag1 = common::xml_values(&r.text(), "ETag")
        .pop()
        .expect("CopyPartResult ETag");

    let r = server
        .request(
            "PUT",
            bucket,
            "log.txt",
            &format!("partNumber=2&uploadId={id}"),
            &[],
            b"appended",
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let etag2 = r.header("etag").expect("ETag").to_string();

    let r = server
        .request(
            "GET",
            bucket,
            "log.txt",
            &format!("uploadId={id}"),
            &[],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(common::xml_values(&r.text(), "PartNumber"), vec!["1", "2"]);

    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag1}</ETag></Part>\
         <Part><PartNumber>2</PartNumber><ETag>{etag2}</ETag></Part></CompleteMultipartUpload>"
    );
    let r = server
        .request(
            "POST",
            bucket,
            "log.txt",
            &format!("uploadId={id}"),
            &[],
            complete.as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let mut want = old.clone();
    want.extend_from_slice(b"appended");
    assert_eq!(server.get_object(bucket, "log.txt"), Some(want));

    // An aborted upload leaves the object as it was.
    let r = server
        .request("POST", bucket, "log.txt", "uploads", &[], b"")
        .unwrap();
    let upload_id = common::xml_values(&r.text(), "UploadId")
        .pop()
        .expect("UploadId");
    let id = common::encode_query(&upload_id);
    let r = server
        .request(
            "PUT",
            bucket,
            "log.txt",
            &format!("partNumber=1&uploadId={id}"),
            &[],
            b"junk",
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let r = server
        .request(
            "DELETE",
            bucket,
            "log.txt",
            &format!("uploadId={id}"),
            &[],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        server.get_object(bucket, "log.txt").map(|b| b.len()),
        Some(old.len() + 8)
    );
}

/// An unknown upload id: 404 NoSuchUpload on part upload and completion, as S3 and COS answer (moto: 500).
#[test]
fn unknown_upload_is_no_such_upload_in_both_modes() {
    for mode in [ServerMode::S3, ServerMode::Cos] {
        let Some(server) = S3Server::shared(mode) else {
            return;
        };
        let bucket = common::unique_bucket("gone");
        server.create_bucket(&bucket);
        let part = server
            .request("PUT", &bucket, "k", "partNumber=1&uploadId=nope", &[], b"x")
            .unwrap();
        assert_eq!(part.status, 404, "{mode:?}: {}", part.text());
        assert!(
            part.text().contains("<Code>NoSuchUpload</Code>"),
            "{}",
            part.text()
        );
        let complete = server
            .request(
                "POST",
                &bucket,
                "k",
                "uploadId=nope",
                &[],
                b"<CompleteMultipartUpload/>",
            )
            .unwrap();
        assert_eq!(complete.status, 404, "{mode:?}: {}", complete.text());
        assert!(
            complete.text().contains("NoSuchUpload"),
            "{}",
            complete.text()
        );
    }
}

/// COS's spellings of a metadata copy (`Replaced`, copy source `<bucket>.cos.<region>.myqcloud.com/<key>`),
/// and `x-cos-hash-crc64ecma` on PUT, HEAD, ranged GET and CompleteMultipartUpload.
#[test]
fn cos_mode_copy_spellings_and_crc64() {
    let Some(server) = S3Server::shared(ServerMode::Cos) else {
        return;
    };
    let bucket = common::unique_bucket("cosdialect");
    server.create_bucket(&bucket);
    let crc = |data: &[u8]| crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Xz, data).to_string();

    let body = b"hello, crc";
    let put = server
        .request(
            "PUT",
            &bucket,
            "a.txt",
            "",
            &[("x-cos-meta-mtime", "1")],
            body,
        )
        .unwrap();
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.header("x-cos-hash-crc64ecma"), Some(crc(body).as_str()));

    let source = format!("{bucket}.{}/a.txt", common::COS_DOMAIN);
    let copy = server
        .request(
            "PUT",
            &bucket,
            "a.txt",
            "",
            &[
                ("x-cos-copy-source", &source),
                ("x-cos-metadata-directive", "Replaced"),
                ("x-cos-meta-mtime", "2"),
            ],
            b"",
        )
        .unwrap();
    assert_eq!(copy.status, 200, "{}", copy.text());
    let head = server
        .request("HEAD", &bucket, "a.txt", "", &[], b"")
        .unwrap();
    assert_eq!(head.header("x-cos-meta-mtime"), Some("2"));
    assert_eq!(
        head.header("x-cos-hash-crc64ecma"),
        Some(crc(body).as_str())
    );
    let ranged = server
        .request("GET", &bucket, "a.txt", "", &[("Range", "bytes=1-3")], b"")
        .unwrap();
    assert_eq!((ranged.status, &ranged.body[..]), (206, &b"ell"[..]));
    // The whole object's CRC, also on a ranged read.
    assert_eq!(
        ranged.header("x-cos-hash-crc64ecma"),
        Some(crc(body).as_str())
    );

    let r = server
        .request("POST", &bucket, "mp.bin", "uploads", &[], b"")
        .unwrap();
    let id = common::encode_query(
        &common::xml_values(&r.text(), "UploadId")
            .pop()
            .expect("UploadId"),
    );
    let part = server
        .request(
            "PUT",
            &bucket,
            "mp.bin",
            &format!("partNumber=1&uploadId={id}"),
            &[],
            b"only part",
        )
        .unwrap();
    assert_eq!(
        part.header("x-cos-hash-crc64ecma"),
        Some(crc(b"only part").as_str())
    );
    let etag = part.header("etag").expect("ETag").to_string();
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let done = server
        .request(
            "POST",
            &bucket,
            "mp.bin",
            &format!("uploadId={id}"),
            &[],
            complete.as_bytes(),
        )
        .unwrap();
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(
        done.header("x-cos-hash-crc64ecma"),
        Some(crc(b"only part").as_str())
    );
}
