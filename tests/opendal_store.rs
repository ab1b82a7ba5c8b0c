//! OpenDAL's `s3` and `cos` services against the loopback moto server: proves the harness serves what the
//! product's storage layer will send (virtual-host COS URLs, COS signatures and `x-cos-*` headers, ListObjects
//! v1 paging, multipart uploads with COS's 1 MiB part minimum, copy with forbid-overwrite).
//! Skips when moto is missing, unless COSFTPD_REQUIRE_S3=1.

mod common;

use common::{S3Server, ServerMode};
use opendal::{ErrorKind, HttpTransporter, Operator};
use opendal_http_transport_reqwest::ReqwestTransport;

const MIB: usize = 1024 * 1024;

fn s3_operator(server: &S3Server, bucket: &str) -> Operator {
    let builder = opendal::services::S3::default()
        .bucket(bucket)
        .endpoint(&server.endpoint())
        .region("us-east-1")
        .access_key_id("test-access-key")
        .secret_access_key("test-secret-key")
        .disable_config_load();
    with_client(Operator::new(builder).unwrap(), client().build().unwrap())
}

/// reqwest has no TLS crypto provider of its own here (Cargo.toml): the product's one is installed first.
fn client() -> reqwest::ClientBuilder {
    cosftpd::storage::install_crypto_provider();
    reqwest::Client::builder()
}

/// With opendal's features as Cargo.toml sets them (no default features, no HTTP transport feature), nothing
/// installs a default HTTP transport: an operator without one fails its first request with "default HTTP
/// transport is not installed". Each operator gets its client here.
fn with_client(op: Operator, client: reqwest::Client) -> Operator {
    let ctx = op
        .base_context()
        .with_http_transport(HttpTransporter::new(ReqwestTransport::new(client)));
    op.with_context(ctx)
}

/// The cos service as the product will set it up: the real endpoint name with the test port, and an HTTP
/// client that resolves `<bucket>.cos.ap-guangzhou.myqcloud.com` to the test server.
fn cos_operator(server: &S3Server, bucket: &str) -> Operator {
    let builder = opendal::services::Cos::default()
        .bucket(bucket)
        .endpoint(&server.cos_endpoint())
        .secret_id("AKIDtestsecretid")
        .secret_key("testsecretkey")
        .disable_config_load();
    let (host, addr) = server.cos_resolve(bucket);
    let client = client().resolve(&host, addr).build().unwrap();
    with_client(Operator::new(builder).unwrap(), client)
}

async fn exercise(server: &S3Server, op: &Operator, bucket: &str, min_part: usize) {
    // Small object, dir marker, nested file.
    op.write("hello.txt", "hello").await.unwrap();
    op.create_dir("dir/").await.unwrap();
    op.write("dir/sub/deep.txt", "deep").await.unwrap();
    assert_eq!(op.read("hello.txt").await.unwrap().to_vec(), b"hello");
    assert_eq!(op.stat("hello.txt").await.unwrap().content_length(), 5);
    assert!(op.stat("dir/").await.unwrap().mode().is_dir());
    assert_eq!(
        op.stat("missing").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // The raw client sees what OpenDAL wrote, at the same keys.
    assert_eq!(server.get_object(bucket, "dir/").as_deref(), Some(&b""[..]));
    assert_eq!(
        server.get_object(bucket, "dir/sub/deep.txt").as_deref(),
        Some(&b"deep"[..])
    );

    // Ranged read.
    assert_eq!(
        op.read_with("hello.txt")
            .range(1..4)
            .await
            .unwrap()
            .to_vec(),
        b"ell"
    );

    // Multipart: three parts of the store's minimum plus a short tail.
    let data: Vec<u8> = (0..3 * min_part + 12345).map(|i| (i % 253) as u8).collect();
    let mut w = op.writer_with("big.bin").chunk(min_part).await.unwrap();
    for piece in data.chunks(300_000) {
        w.write(piece.to_vec()).await.unwrap();
    }
    w.close().await.unwrap();
    assert_eq!(op.read("big.bin").await.unwrap().to_vec(), data);
    assert_eq!(
        server.get_object(bucket, "big.bin").map(|b| b.len()),
        Some(data.len())
    );

    // An aborted writer leaves nothing behind.
    let mut w = op.writer_with("aborted.bin").chunk(min_part).await.unwrap();
    w.write(vec![1u8; min_part + 1]).await.unwrap();
    w.abort().await.unwrap();
    assert_eq!(server.get_object(bucket, "aborted.bin"), None);

    // Server-side copy.
    op.copy("hello.txt", "copy.txt").await.unwrap();
    assert_eq!(op.read("copy.txt").await.unwrap().to_vec(), b"hello");

    // Listing, non-recursive, paged: more entries than one page of 5.
    for i in 0..12 {
        op.write(&format!("many/f{i:02}"), "x").await.unwrap();
        if i % 3 == 0 {
            op.create_dir(&format!("many/d{i:02}/")).await.unwrap();
        }
    }
    let mut names: Vec<String> = op
        .list_with("many/")
        .limit(5)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path().to_string())
        .collect();
    names.sort();
    let mut want: Vec<String> = (0..12).map(|i| format!("many/f{i:02}")).collect();
    want.extend((0..12).step_by(3).map(|i| format!("many/d{i:02}/")));
    want.push("many/".to_string());
    want.sort();
    names.retain(|n| n != "many/");
    want.retain(|n| n != "many/");
    assert_eq!(names, want);

    let root: Vec<String> = op
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path().to_string())
        .filter(|p| !p.is_empty() && p != "/")
        .collect();
    for expected in ["hello.txt", "dir/", "big.bin", "copy.txt", "many/"] {
        assert!(
            root.iter().any(|p| p == expected),
            "{expected} not in {root:?}"
        );
    }

    // Delete.
    op.delete("copy.txt").await.unwrap();
    assert_eq!(
        op.stat("copy.txt").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opendal_s3_service() {
    let Some(server) = S3Server::start_with_buckets(ServerMode::S3, &["opendal-s3"]) else {
        return;
    };
    let op = s3_operator(&server, "opendal-s3");
    exercise(&server, &op, "opendal-s3", 5 * MIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opendal_cos_service() {
    let bucket = "opendal-1250000000";
    let Some(server) = S3Server::start_with_buckets(ServerMode::Cos, &[bucket]) else {
        return;
    };
    let op = cos_operator(&server, bucket);
    exercise(&server, &op, bucket, MIB).await;

    // COS's forbid-overwrite on write and copy (if_not_exists).
    op.write("exists.txt", "old").await.unwrap();
    let err = op
        .write_with("exists.txt", "new")
        .if_not_exists(true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConditionNotMatch, "{err}");
    assert_eq!(op.read("exists.txt").await.unwrap().to_vec(), b"old");
    let err = op
        .copy_with("hello.txt", "exists.txt")
        .if_not_exists(true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConditionNotMatch, "{err}");
    assert_eq!(op.read("exists.txt").await.unwrap().to_vec(), b"old");
    op.copy_with("hello.txt", "fresh.txt")
        .if_not_exists(true)
        .await
        .unwrap();
    assert_eq!(op.read("fresh.txt").await.unwrap().to_vec(), b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_going_away_is_an_error_not_a_hang() {
    let Some(mut server) = S3Server::start_with_buckets(ServerMode::Cos, &["gone-1250000000"])
    else {
        return;
    };
    let op = cos_operator(&server, "gone-1250000000");
    op.write("a", "b").await.unwrap();
    server.stop();
    let err = op.read("a").await.unwrap_err();
    assert!(
        err.is_temporary() || err.kind() == ErrorKind::Unexpected,
        "{err:?}"
    );
}
