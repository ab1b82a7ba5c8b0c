//! One store per account: cos | s3 | fs | memory, as an OpenDAL operator (with timeout, retry and tracing
//! layers) for reads, listings, deletes and plain copies, and an [`ObjectStore`] for writes and metadata.
//!
//! This is the only room that knows how a store is reached. `bucketfs` receives a ready [`AccountStore`].

#[cfg(feature = "fault-injection")]
mod fault;
pub mod health;
pub mod metrics;
pub mod objects;
pub mod silence;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use opendal::layers::{
    MetricsLayer, RetryEvent, RetryInterceptor, RetryLayer, TimeoutLayer, TracingLayer,
};
use opendal::{ErrorKind, HttpTransporter, Operator};
use opendal_http_transport_reqwest::ReqwestTransport;

use crate::config::{Account, StorageConfig};

#[cfg(feature = "fault-injection")]
pub use fault::{FaultInjector, FaultRule};
pub use health::{StoreHealth, StoreStatus};
pub use objects::{build_object_store, ObjectStore};
use silence::{Role, SilenceTransport, StoreSilence};

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
    /// Requests matching its rules fail before they leave the process (fault injection for tests; the
    /// `fault-injection` feature, which the integration tests turn on, see Cargo.toml).
    #[cfg(feature = "fault-injection")]
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
    build_watched_operator(config, options, &StoreHealth::detached()).map(|(op, _)| op)
}

/// The operator, its retries reported to `health` (see `storage::health`); and the same operator for the health
/// probes, without OpenDAL's metrics or retry notices (a probe is not a user's request, and it stops a listing after
/// one entry, which the metrics layer would count as a failed `list`).
fn build_watched_operator(
    config: &StorageConfig,
    options: &StorageOptions,
    health: &StoreHealth,
) -> Result<(Operator, Operator), StorageError> {
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
            let staging = fs_staging_dir(Path::new(root));
            std::fs::create_dir_all(&staging).map_err(|e| {
                StorageError::Invalid(format!("cannot create {}: {e}", staging.display()))
            })?;
            let staging = staging.to_str().ok_or_else(|| {
                StorageError::Invalid(format!("{} is not valid UTF-8", staging.display()))
            })?;
            Operator::new(
                opendal::services::Fs::default()
                    .root(root)
                    .atomic_write_dir(staging),
            )
        }
        StorageConfig::Memory => Operator::new(opendal::services::Memory::default()),
    }
    .map_err(|e| StorageError::Invalid(e.to_string()))?;

    // The probe has a transport of its own that is sent while the store is silent (and whose answer ends the
    // silence): a store that comes back is used again at the next probe, not only when the hold is over.
    let probe = with_http_transport(op.clone(), options, health.silence(), Role::Probe)?;
    let op = with_http_transport(op, options, health.silence(), Role::Requests)?;
    // The probe's retries are its own business: not counted, not logged, and they do not call for another probe.
    let probe = with_layers(probe, config, |_: RetryEvent<'_>| {});
    let observer = metrics::RetryObserver {
        health: health.clone(),
    };
    // Outermost: OpenDAL's metrics see each operation whole, retries included.
    let op = with_layers(op, config, observer).layer(MetricsLayer::new());
    Ok((op, probe))
}

/// Timeouts, retries (remote stores; each retry told to `notify`) and tracing.
fn with_layers<I: RetryInterceptor>(op: Operator, config: &StorageConfig, notify: I) -> Operator {
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
                    .with_max_times(RETRIES)
                    .with_notify(notify),
            ),
        StorageConfig::Fs { .. } | StorageConfig::Memory => op.layer(
            TimeoutLayer::new()
                .with_timeout(LOCAL_CONTROL_TIMEOUT)
                .with_io_timeout(LOCAL_IO_TIMEOUT),
        ),
    };
    op.layer(TracingLayer::new())
}

/// `<root>.cosftpd-tmp`: the directory beside an `fs` root for temporary files and staged uploads (on the
/// root's filesystem, so that finished files can be renamed into place).
pub(crate) fn fs_staging_dir(root: &Path) -> PathBuf {
    let root = root.to_string_lossy();
    PathBuf::from(format!("{}.cosftpd-tmp", root.trim_end_matches('/')))
}

/// The HTTP client of one account's store, with the test hooks of `options` (fixed name resolution).
pub(crate) fn http_client(
    options: &StorageOptions,
    connect_timeout: Duration,
) -> Result<reqwest::Client, StorageError> {
    install_crypto_provider();
    let mut client = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true);
    for (host, addr) in &options.resolve {
        client = client.resolve(host, *addr);
    }
    client
        .build()
        .map_err(|e| StorageError::Invalid(format!("HTTP client: {e}")))
}

fn with_http_transport(
    op: Operator,
    options: &StorageOptions,
    silence: &StoreSilence,
    role: Role,
) -> Result<Operator, StorageError> {
    let client = http_client(options, Duration::from_secs(10))?;
    let transport = SilenceTransport::new(ReqwestTransport::new(client), silence.clone(), role);
    #[cfg(feature = "fault-injection")]
    let transporter = match &options.faults {
        Some(faults) => HttpTransporter::new(faults.wrap(transport)),
        None => HttpTransporter::new(transport),
    };
    #[cfg(not(feature = "fault-injection"))]
    let transporter = HttpTransporter::new(transport);
    let ctx = op.context().with_http_transport(transporter);
    Ok(op.with_context(ctx))
}

/// reqwest is built without a TLS crypto provider of its own (`rustls-no-provider`, see Cargo.toml) and takes
/// rustls's process-wide default, which must be installed before a `reqwest::Client` is built (building panics
/// otherwise). This installs ring, the provider FTPS uses too, so the binary carries one TLS implementation.
/// `build_operator` calls it; code that builds its own reqwest client calls it first.
pub fn install_crypto_provider() {
    // An error means a provider is installed already (an earlier call, or a program embedding this library
    // that chose its own): that one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
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

/// One account's store, both ways in. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AccountStore {
    /// Reads, listings, deletes and plain copies.
    pub op: Operator,
    /// Writes (single and multipart, conditional), HEADs with user metadata, metadata changes.
    pub objects: ObjectStore,
}

/// Builds both clients of one store (no request is sent).
pub fn build_store(
    config: &StorageConfig,
    options: &StorageOptions,
) -> Result<AccountStore, StorageError> {
    build_watched_store(config, options, &StoreHealth::detached())
}

/// Both clients, their temporary failures reported to `health`, which is given the probe operator.
fn build_watched_store(
    config: &StorageConfig,
    options: &StorageOptions,
    health: &StoreHealth,
) -> Result<AccountStore, StorageError> {
    let (op, probe) = build_watched_operator(config, options, health)?;
    health.set_probe(probe);
    let objects = build_object_store(config, options, &op, health)?;
    Ok(AccountStore { op, objects })
}

/// One account's store and what is known of its health.
#[derive(Clone, Debug)]
pub struct WatchedStore {
    pub store: AccountStore,
    /// Starts `Up` when the start-up check ran, `Unknown` with `skip_check`; `StoreHealth::watch` keeps it current.
    pub health: StoreHealth,
}

/// Builds and (unless `skip_check`) checks one account's store; errors name the account and bucket.
pub async fn open_account(
    account: &Account,
    options: &StorageOptions,
    skip_check: bool,
) -> Result<WatchedStore, AccountStoreError> {
    let fail = |source| AccountStoreError {
        section: account.section.clone(),
        user: account.user.clone(),
        store: account.storage.describe(),
        source,
    };
    let health = StoreHealth::new(&account.user);
    let store = build_watched_store(&account.storage, options, &health).map_err(fail)?;
    if !skip_check {
        health.first_check().await.map_err(fail)?;
    }
    Ok(WatchedStore { store, health })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    /// Building the HTTPS client needs a TLS crypto provider (reqwest has none of its own here): building an
    /// operator for a COS bucket over https must succeed, and leave ring as the process default. No request is
    /// sent.
    #[test]
    fn https_operator_builds_with_the_ring_provider() {
        let config = StorageConfig::Cos {
            bucket: "examplebucket-1250000000".into(),
            endpoint: "https://cos.ap-guangzhou.myqcloud.com".into(),
            secret_id: Secret::new("AKIDEXAMPLE"),
            secret_key: Secret::new("secret"),
        };
        let op = build_operator(&config, &StorageOptions::default());
        assert!(op.is_ok(), "{:?}", op.err());
        let installed = rustls::crypto::CryptoProvider::get_default();
        let ring = rustls::crypto::ring::default_provider();
        let suites = |p: &rustls::crypto::CryptoProvider| {
            p.cipher_suites
                .iter()
                .map(|s| s.suite())
                .collect::<Vec<_>>()
        };
        assert_eq!(installed.map(|p| suites(p)), Some(suites(&ring)));
    }
}
