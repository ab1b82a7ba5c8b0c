//! Checksums (issue: resume and checksums), against a real S3 server (moto) in its S3 and COS dialects: the
//! digests computed while uploading are kept as object metadata and answered without reading the data; objects
//! cosftpd did not write are hashed on request, up to `hash_max_size`; bytes damaged on the way to the store are
//! noticed (the store's MD5 ETag, COS's CRC-64) and nothing damaged is kept.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{S3Server, ServerMode};
use cosftpd::bucketfs::digest::{Algorithm, AlgorithmSet};
use cosftpd::bucketfs::{BucketFs, FsErrorKind, Key, MemoryBudget, Policy, Settings, WriteIntent};
use cosftpd::config::{Secret, StorageConfig};
use cosftpd::storage::{self, FaultInjector, FaultRule, StorageOptions};
use sha2::Digest as _;

const MIB: usize = 1024 * 1024;

struct Bucket {
    server: &'static S3Server,
    name: String,
    faults: FaultInjector,
    fs: BucketFs,
}

impl Bucket {
    fn new(mode: ServerMode, settings: Settings) -> Option<Bucket> {
        let server = S3Server::shared(mode)?;
        let name = common::unique_bucket("digests");
        server.create_bucket(&name);
        let faults = FaultInjector::new();
        let mut options = StorageOptions {
            resolve: Vec::new(),
            faults: Some(faults.clone()),
        };
        let config = match mode {
            ServerMode::S3 => StorageConfig::S3 {
                bucket: name.clone(),
                endpoint: server.endpoint(),
                region: "us-east-1".into(),
                access_key: Secret::new("test-key"),
                secret_key: Secret::new("test-secret"),
                virtual_host: false,
            },
            ServerMode::Cos => {
                options.resolve.push(server.cos_resolve(&name));
                StorageConfig::Cos {
                    bucket: name.clone(),
                    endpoint: server.cos_endpoint(),
                    secret_id: Secret::new("AKIDtest"),
                    secret_key: Secret::new("cos-secret"),
                }
            }
        };
        let store = storage::build_store(&config, &options).expect("store");
        let fs = BucketFs::new(store, Policy::full(), settings, MemoryBudget::new(64 << 20));
        Some(Bucket {
            server,
            name,
            faults,
            fs,
        })
    }

    async fn write(&self, path: &str, body: &[u8]) -> Result<(), cosftpd::bucketfs::FsError> {
        let mut handle = self.fs.open_write(&key(path), WriteIntent::Replace).await?;
        // In pieces, as a transfer arrives.
        for chunk in body.chunks(256 * 1024) {
            handle.write(Bytes::copy_from_slice(chunk)).await?;
        }
        handle.close().await.map(|_| ())
    }

    /// The object's user metadata `name` as the store returns it (`x-amz-meta-` or `x-cos-meta-`).
    fn stored_meta(&self, path: &str, name: &str) -> Option<String> {
        let key = path.trim_start_matches('/');
        let response = self
            .server
            .request("GET", &self.name, key, "", &[], b"")
            .expect("GET object");
        if response.status != 200 {
            return None;
        }
        ["x-amz-meta-", "x-cos-meta-"]
            .iter()
            .find_map(|prefix| response.header(&format!("{prefix}{name}")))
            .map(str::to_string)
    }

    /// Waits for the background copy that adds a multipart upload's digests to its object.
    fn wait_meta(&self, path: &str, name: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(value) = self.stored_meta(path, name) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: no {name} in its metadata after 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pending_uploads(&self) -> usize {
        let response = self
            .server
            .request("GET", &self.name, "", "uploads", &[], b"")
            .expect("ListMultipartUploads");
        common::xml_values(&response.text(), "UploadId").len()
    }
}

fn key(path: &str) -> Key {
    Key::parse(path).expect("a valid test path")
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

fn crc32_hex(data: &[u8]) -> String {
    let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc);
    crc.update(data);
    format!("{:08x}", crc.finalize())
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(data))
}

/// Parts of 5 MiB (S3's smallest): a 6 MiB file is a multipart upload.
fn settings() -> Settings {
    Settings {
        part_size: 5 * MIB as u64,
        ..Settings::default()
    }
}

/// A file small enough for one PUT carries its digests from the start; HASH-style questions are answered from
/// them (`computed: false`), and they are the digests of the bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_put_keeps_its_digests() {
    let Some(b) = Bucket::new(ServerMode::S3, settings()) else {
        return;
    };
    let body = common::pattern(300 * 1024, 1);
    b.write("/small.bin", &body).await.expect("write");
    assert_eq!(
        b.stored_meta("/small.bin", "cosftpd-sha256").as_deref(),
        Some(sha256_hex(&body).as_str())
    );
    assert_eq!(
        b.stored_meta("/small.bin", "cosftpd-crc32").as_deref(),
        Some(crc32_hex(&body).as_str())
    );
    // Not in upload_digests: not computed while uploading.
    assert_eq!(b.stored_meta("/small.bin", "cosftpd-md5"), None);

    let answer =
        b.fs.digest(&key("/small.bin"), Algorithm::Sha256, None)
            .await
            .expect("digest");
    assert_eq!(answer.value, sha256_hex(&body));
    assert!(!answer.computed, "answered from the metadata");
    assert_eq!(answer.range, 0..body.len() as u64);

    // MD5 was not kept: computed from the store's bytes.
    let md5 =
        b.fs.digest(&key("/small.bin"), Algorithm::Md5, None)
            .await
            .expect("md5");
    assert_eq!(md5.value, md5_hex(&body));
    assert!(md5.computed);
}

/// A multipart upload's metadata is fixed when it begins: its digests are added by a copy onto itself after the
/// upload completes, and are those of the whole file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_gets_its_digests_afterwards() {
    let Some(b) = Bucket::new(ServerMode::S3, settings()) else {
        return;
    };
    let body = common::pattern(6 * MIB, 2);
    b.write("/big.bin", &body).await.expect("write");
    assert_eq!(b.wait_meta("/big.bin", "cosftpd-sha256"), sha256_hex(&body));
    assert_eq!(
        b.stored_meta("/big.bin", "cosftpd-crc32").as_deref(),
        Some(crc32_hex(&body).as_str())
    );
    assert_eq!(
        b.server.get_object(&b.name, "big.bin").as_deref(),
        Some(&body[..]),
        "the copy that added the metadata kept the bytes"
    );
    let answer =
        b.fs.digest(&key("/big.bin"), Algorithm::Crc32, None)
            .await
            .expect("digest");
    assert_eq!(answer.value, crc32_hex(&body));
    assert!(!answer.computed);
}

/// Objects put into the bucket by other tools are hashed from their bytes; a range is always computed; a file
/// over hash_max_size is refused with a reason, and a range past the end too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_objects_and_ranges_are_computed_within_the_limit() {
    let Some(b) = Bucket::new(
        ServerMode::S3,
        Settings {
            hash_max_size: 1024 * 1024,
            ..settings()
        },
    ) else {
        return;
    };
    let body = common::pattern(700 * 1024, 3);
    b.server.put_object(&b.name, "foreign.bin", &body);
    let answer =
        b.fs.digest(&key("/foreign.bin"), Algorithm::Sha256, None)
            .await
            .expect("digest");
    assert_eq!(answer.value, sha256_hex(&body));
    assert!(answer.computed);

    let range =
        b.fs.digest(&key("/foreign.bin"), Algorithm::Sha256, Some(1000..5000))
            .await
            .expect("range digest");
    assert_eq!(range.value, sha256_hex(&body[1000..5000]));
    assert_eq!(range.range, 1000..5000);

    let past =
        b.fs.digest(
            &key("/foreign.bin"),
            Algorithm::Sha256,
            Some(0..body.len() as u64 + 1),
        )
        .await
        .expect_err("a range past the end");
    assert_eq!(past.kind(), FsErrorKind::InvalidOffset);

    b.server
        .put_object(&b.name, "huge.bin", &common::pattern(2 * MIB, 4));
    let err =
        b.fs.digest(&key("/huge.bin"), Algorithm::Sha256, None)
            .await
            .expect_err("over hash_max_size");
    assert_eq!(err.kind(), FsErrorKind::Unsupported);
    assert!(err.to_string().contains("hash_max_size"), "{err}");

    let missing =
        b.fs.digest(&key("/missing.bin"), Algorithm::Sha256, None)
            .await
            .expect_err("no such file");
    assert_eq!(missing.kind(), FsErrorKind::NotFound);
}

/// With upload_digests empty nothing is computed or kept while uploading; questions are still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_upload_digests_keeps_none() {
    let Some(b) = Bucket::new(
        ServerMode::S3,
        Settings {
            upload_digests: AlgorithmSet::default(),
            ..settings()
        },
    ) else {
        return;
    };
    let body = common::pattern(100 * 1024, 5);
    b.write("/plain.bin", &body).await.expect("write");
    assert_eq!(b.stored_meta("/plain.bin", "cosftpd-sha256"), None);
    assert_eq!(b.stored_meta("/plain.bin", "cosftpd-crc32"), None);
    let answer =
        b.fs.digest(&key("/plain.bin"), Algorithm::Sha256, None)
            .await
            .expect("digest");
    assert_eq!(answer.value, sha256_hex(&body));
    assert!(answer.computed);
}

/// One byte of a single PUT changed on the way: the store (which does not check Content-MD5 here, as some
/// S3-compatible stores do not) keeps it, its ETag gives it away, and the damaged object is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_damaged_on_the_way_is_not_kept() {
    let Some(b) = Bucket::new(ServerMode::S3, settings()) else {
        return;
    };
    b.faults.add_corruption(FaultRule {
        method: "PUT",
        query_contains: "",
        times: 1,
    });
    let err = b
        .write("/damaged.bin", &common::pattern(200 * 1024, 6))
        .await
        .expect_err("a damaged upload fails");
    assert_eq!(b.faults.fired(), 1, "the body was damaged");
    assert!(err.to_string().contains("damaged"), "{err}");
    assert_eq!(b.server.get_object(&b.name, "damaged.bin"), None);

    // The next upload of that name is whole.
    let body = common::pattern(200 * 1024, 7);
    b.write("/damaged.bin", &body).await.expect("a clean retry");
    assert_eq!(
        b.server.get_object(&b.name, "damaged.bin").as_deref(),
        Some(&body[..])
    );
}

/// One part of a multipart upload damaged on the way: the part's ETag (S3) or CRC-64 (COS) gives it away, the
/// upload fails and is aborted, and no object appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_damaged_on_the_way_fails_the_upload() {
    for mode in [ServerMode::S3, ServerMode::Cos] {
        let Some(b) = Bucket::new(mode, settings()) else {
            return;
        };
        b.faults.add_corruption(FaultRule {
            method: "PUT",
            query_contains: "partNumber=2",
            times: 1,
        });
        let err = b
            .write("/parts.bin", &common::pattern(12 * MIB, 8))
            .await
            .expect_err("a damaged part fails the upload");
        assert_eq!(b.faults.fired(), 1, "{mode:?}: the part was damaged");
        assert!(err.to_string().contains("damaged"), "{mode:?}: {err}");
        assert_eq!(b.server.get_object(&b.name, "parts.bin"), None, "{mode:?}");
        assert_eq!(b.pending_uploads(), 0, "{mode:?}: the upload was aborted");
    }
}

/// On COS the store's CRC-64 of a single PUT is compared too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cos_single_put_damaged_on_the_way_is_not_kept() {
    let Some(b) = Bucket::new(ServerMode::Cos, settings()) else {
        return;
    };
    b.faults.add_corruption(FaultRule {
        method: "PUT",
        query_contains: "",
        times: 1,
    });
    let err = b
        .write("/cos.bin", &common::pattern(64 * 1024, 9))
        .await
        .expect_err("a damaged upload fails");
    assert!(err.to_string().contains("damaged"), "{err}");
    assert_eq!(b.server.get_object(&b.name, "cos.bin"), None);
}
