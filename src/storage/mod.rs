//! One OpenDAL operator per account: cos | s3 | fs | memory, with timeout, retry and tracing layers.
//!
//! This is the only room that knows how a store is reached. `bucketfs` receives a ready `Operator`.

mod fault;
pub mod objects;

use std::net::SocketAddr;
use std::time::Duration;

use opendal::layers::{RetryLayer, TimeoutLayer, TracingLayer};
use opendal::{ErrorKind, HttpTransporter, Operator};
use opendal_http_transport_reqwest::ReqwestTransport;

use crate::config::{Account, StorageConfig};

pub use fault::{FaultInjector, FaultRule};

/// Why a store could not be built or reached.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage settings are invalid: {0}")]
    Invalid(String),
    #[error("credentials were refused ({0})")]
    Credentials(String),
    #[error("the bucket does not exist ({0})")]
    NoSuchBucket(String),
    #[error("the store is unreachable ({0})")]
    Unreachable(String),
    #[error("the store answered with an error ({0})")]
    Other(String),
}

/// Knobs that are not part of the config file: test hooks and tuning.
#[derive(Debug, Clone, Default)]
pub struct StorageOptions {
    /// Host names to resolve to fixed addresses instead of DNS (tests reach a local server under COS's
    /// virtual-host names this way). The port of the address is ignored; the URL's port is used.
    pub resolve: Vec<(String, SocketAddr)>,
    /// Requests matching its rules fail before they leave the process (fault injection for tests).
    pub faults: Option<FaultInjector>,
}

/// Remote stores (COS, S3): each attempt of a request gets `ATTEMPT_TIMEOUT`, connecting included — a control
/// call (stat), a list page, a delete, a copy, and each step of a data stream (the first byte, then each chunk).
/// A temporary failure (a timeout, a refused or reset connection, 5xx, 429) is retried `RETRIES` times, after
/// `RETRY_MIN_DELAY`, then twice that, each plus up to 100 % jitter; a permanent one (4xx) never. So a dead store
/// (connection refused) surfaces in 1–2 s, and a stalled one (accepts, never answers) within 3 × 4 s + 1.8 s,
/// under 15 s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
const RETRIES: usize = 2;
const RETRY_MIN_DELAY: Duration = Duration::from_millis(300);
const RETRY_MAX_DELAY: Duration = Duration::from_secs(2);
/// Local stores (fs, memory) are not retried: their errors are the kernel's answer (OpenDAL marks most as
/// temporary — ENOTDIR, ENAMETOOLONG — so retrying would only delay them). The timeouts only catch a hung disk,
/// and leave a slow one (a large fsync) alone.
const LOCAL_CONTROL_TIMEOUT: Duration = Duration::from_secs(60);
const LOCAL_IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the operator for one account's storage.
pub fn build_operator(
    config: &StorageConfig,
    options: &StorageOptions,
) -> Result<Operator, StorageError> {
    let op = match config {
        StorageConfig::Cos {
            bucket,
            endpoint,
            secret_id,
            secret_key,
        } => {
            let builder = opendal::services::Cos::default()
                .bucket(bucket)
                .endpoint(endpoint)
                .secret_id(secret_id.expose())
                .secret_key(secret_key.expose())
                .disable_config_load();
            Operator::new(builder)
        }
        StorageConfig::S3 {
            bucket,
            endpoint,
            region,
            access_key,
            secret_key,
            virtual_host,
        } => {
            let mut builder = opendal::services::S3::default()
                .bucket(bucket)
                .endpoint(endpoint)
                .region(region)
                .access_key_id(access_key.expose())
                .secret_access_key(secret_key.expose())
                .disable_config_load()
                .disable_ec2_metadata();
            if *virtual_host {
                builder = builder.enable_virtual_host_style();
            }
            Operator::new(builder)
        }
        StorageConfig::Fs { root } => {
            // A fresh try-it-out setup has no data directory yet; creating it is what the user wants.
            std::fs::create_dir_all(root).map_err(|e| {
                StorageError::Invalid(format!("cannot create {}: {e}", root.display()))
            })?;
            let root = root.to_str().ok_or_else(|| {
                StorageError::Invalid(format!("{} is not valid UTF-8", root.display()))
            })?;
            // Writes go to a temporary file beside the root and are renamed into place on close, so an
            // aborted upload leaves the old file untouched (and an append can read the old bytes while writing).
            let staging = format!("{}.cosftpd-tmp", root.trim_end_matches('/'));
            std::fs::create_dir_all(&staging)
                .map_err(|e| StorageError::Invalid(format!("cannot create {staging}: {e}")))?;
            Operator::new(
                opendal::services::Fs::default()
                    .root(root)
                    .atomic_write_dir(&staging),
            )
        }
        StorageConfig::Memory => Operator::new(opendal::services::Memory::default()),
    }
    .map_err(|e| StorageError::Invalid(e.to_string()))?;

    let op = with_http_transport(op, options)?;
    let op = match config {
        StorageConfig::Cos { .. } | StorageConfig::S3 { .. } => op
            .layer(
                TimeoutLayer::new()
                    .with_timeout(ATTEMPT_TIMEOUT)
                    .with_io_timeout(ATTEMPT_TIMEOUT),
            )
            .layer(
                RetryLayer::new()
                    .with_jitter()
                    .with_min_delay(RETRY_MIN_DELAY)
                    .with_max_delay(RETRY_MAX_DELAY)
                    .with_max_times(RETRIES),
            ),
        StorageConfig::Fs { .. } | StorageConfig::Memory => op.layer(
            TimeoutLayer::new()
                .with_timeout(LOCAL_CONTROL_TIMEOUT)
                .with_io_timeout(LOCAL_IO_TIMEOUT),
        ),
    };
    Ok(op.layer(TracingLayer::new()))
}

fn with_http_transport(op: Operator, options: &StorageOptions) -> Result<Operator, StorageError> {
    let mut client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true);
    for (host, addr) in &options.resolve {
        client = client.resolve(host, *addr);
    }
    let client = client
        .build()
        .map_err(|e| StorageError::Invalid(format!("HTTP client: {e}")))?;
    let transport = ReqwestTransport::new(client);
    let transporter = match &options.faults {
        Some(faults) => HttpTransporter::new(faults.wrap(transport)),
        None => HttpTransporter::new(transport),
    };
    let ctx = op.context().with_http_transport(transporter);
    Ok(op.with_context(ctx))
}

/// One cheap request (the first page of a listing) to prove the bucket is there and the keys work.
pub async fn check(op: &Operator) -> Result<(), StorageError> {
    use futures::TryStreamExt;
    let result = async {
        let mut lister = op.lister_with("/").limit(1).await?;
        lister.try_next().await?;
        Ok::<_, opendal::Error>(())
    }
    .await;
    result.map_err(classify)
}

/// Sorts a store error into what a user can act on.
pub fn classify(err: opendal::Error) -> StorageError {
    let text = err.to_string();
    // The store's own error code is the most precise diagnosis; OpenDAL files NoSuchBucket under ConfigInvalid.
    if text.contains("NoSuchBucket") {
        return StorageError::NoSuchBucket(text);
    }
    if [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "InvalidSecretId",
    ]
    .iter()
    .any(|c| text.contains(c))
    {
        return StorageError::Credentials(text);
    }
    match err.kind() {
        ErrorKind::PermissionDenied => StorageError::Credentials(text),
        ErrorKind::NotFound => StorageError::NoSuchBucket(text),
        ErrorKind::ConfigInvalid => StorageError::Invalid(text),
        _ if err.is_temporary()
            || text.contains("send http request")
            || text.contains("timeout") =>
        {
            StorageError::Unreachable(text)
        }
        _ => StorageError::Other(text),
    }
}

/// Builds and (unless `skip_check`) checks every account's store; errors name the account and bucket.
pub async fn open_account(
    account: &Account,
    options: &StorageOptions,
    skip_check: bool,
) -> Result<Operator, AccountStoreError> {
    let fail = |source| AccountStoreError {
        section: account.section.clone(),
        user: account.user.clone(),
        store: account.storage.describe(),
        source,
    };
    let op = build_operator(&account.storage, options).map_err(fail)?;
    if !skip_check {
        check(&op).await.map_err(fail)?;
    }
    Ok(op)
}

/// A store that failed at start, with the account it belongs to.
#[derive(Debug, thiserror::Error)]
#[error("[{section}] user {user} ({store}): {source}")]
pub struct AccountStoreError {
    pub section: String,
    pub user: String,
    pub store: String,
    #[source]
    pub source: StorageError,
}
