//! `conf/vsftpd.conf`: the original COS FTP Server's INI format, read whole and validated before anything starts.
//!
//! Parsing and validation live in `parse.rs` (with `syntax`, `reader`, `values`, `account` and `settings`), the
//! checks that need the machine (name resolution, a writable log directory) in `preflight.rs`; this file holds the
//! typed result every other room consumes.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

mod account;
pub mod location;
mod parse;
mod preflight;
mod reader;
mod settings;
mod syntax;
#[cfg(test)]
mod tests;
mod values;

pub use parse::{ConfigError, ConfigErrors};

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;
pub const TIB: u64 = 1024 * GIB;

/// Store limits for multipart uploads (COS and S3 agree on these).
pub const MIN_PART_SIZE: u64 = MIB;
pub const MAX_PART_SIZE: u64 = 5 * GIB;
pub const MAX_PARTS: u64 = 10_000;

/// A string that never shows itself in `Debug`/`Display`, so secrets cannot leak through logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub accounts: Vec<Account>,
    pub network: Network,
    pub file: FileOption,
    pub optional: Optional,
    /// `[CLUSTER]`: several nodes sharing their state on Redis; `None` (no section) = this node alone.
    pub cluster: Option<Cluster>,
    /// Non-fatal findings (the original's ignored keys, a value that may have been cut by a comment, …), each
    /// naming section and key.
    pub warnings: Vec<String>,
}

/// What an account may do; letters of `authority`, accepted in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    Read,
    Write,
    ReadWrite,
}

impl Authority {
    pub fn can_read(self) -> bool {
        matches!(self, Authority::Read | Authority::ReadWrite)
    }
    pub fn can_write(self) -> bool {
        matches!(self, Authority::Write | Authority::ReadWrite)
    }
    pub fn letters(self) -> &'static str {
        match self {
            Authority::Read => "R",
            Authority::Write => "W",
            Authority::ReadWrite => "RW",
        }
    }
}

/// One `[COS_ACCOUNT_*]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// The section name, e.g. `COS_ACCOUNT_0`, for messages.
    pub section: String,
    pub storage: StorageConfig,
    /// Absolute path (relative paths in the file are resolved against the current directory).
    pub home_dir: PathBuf,
    pub user: String,
    /// Plaintext (as in the original) or a crypt-style hash (`$argon2id$…`, `$2b$…`, `$6$…`).
    pub password: Secret,
    pub authority: Authority,
    pub delete_enable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    Cos,
    S3,
    Fs,
    Memory,
}

impl StorageKind {
    pub fn name(self) -> &'static str {
        match self {
            StorageKind::Cos => "cos",
            StorageKind::S3 => "s3",
            StorageKind::Fs => "fs",
            StorageKind::Memory => "memory",
        }
    }
}

/// Where an account's objects live.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageConfig {
    Cos {
        /// `name-appid`.
        bucket: String,
        /// Full URL, e.g. `https://cos.ap-guangzhou.myqcloud.com` (from `cos_protocol` + `cos_region`), or
        /// `cos_endpoint` as given (a bare host gets `cos_protocol://` in front).
        endpoint: String,
        secret_id: Secret,
        secret_key: Secret,
    },
    S3 {
        bucket: String,
        /// Endpoint URL (`cos_endpoint`), e.g. `http://127.0.0.1:9000`.
        endpoint: String,
        /// `cos_region`, default `us-east-1`.
        region: String,
        access_key: Secret,
        secret_key: Secret,
        /// `s3_virtual_host`, default false (path-style).
        virtual_host: bool,
    },
    Fs {
        /// `storage_root`, absolute.
        root: PathBuf,
    },
    Memory,
}

impl StorageConfig {
    pub fn kind(&self) -> StorageKind {
        match self {
            StorageConfig::Cos { .. } => StorageKind::Cos,
            StorageConfig::S3 { .. } => StorageKind::S3,
            StorageConfig::Fs { .. } => StorageKind::Fs,
            StorageConfig::Memory => StorageKind::Memory,
        }
    }

    /// A short human description: `cos bucket-125 at https://…`, `fs /srv/data`, …
    pub fn describe(&self) -> String {
        match self {
            StorageConfig::Cos {
                bucket, endpoint, ..
            } => format!("cos bucket {bucket} at {endpoint}"),
            StorageConfig::S3 {
                bucket, endpoint, ..
            } => format!("s3 bucket {bucket} at {endpoint}"),
            StorageConfig::Fs { root } => format!("fs directory {}", root.display()),
            StorageConfig::Memory => "memory (lost at exit)".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyEncoding {
    /// Paths are UTF-8 only; other bytes are refused with 553.
    None,
    /// Non-UTF-8 path bytes are decoded as GBK (Chinese Windows clients).
    Gbk,
}

/// How log lines are written (stderr and the file in `log_dir`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `2024-05-01T10:00:00.000000Z  INFO ftp{peer=…}: message key=value`.
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// The format of `xferlog_file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XferlogFormat {
    /// vsftpd's `xferlog_std_format` (wu-ftpd's xferlog(5)): one line per upload, download or delete.
    Xferlog,
    /// One JSON object per line, for every logged operation (uploads, downloads, deletes, renames, mkdir, rmdir).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Off,
    /// AUTH TLS offered; plaintext allowed.
    Optional,
    /// Login refused until AUTH TLS; data needs PROT P.
    Required,
}

/// `[NETWORK]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// IP address or host name announced in PASV replies; `None` = the control connection's local address.
    pub masquerade_address: Option<String>,
    /// `listen_address`, default 0.0.0.0.
    pub listen_address: IpAddr,
    /// `listen_port`, default 2121.
    pub listen_port: u16,
    /// `passive_port = low,high`, inclusive, default 60000,65535.
    pub passive_ports: RangeInclusive<u16>,
    /// `legacy_encoding = gbk`, default none.
    pub legacy_encoding: LegacyEncoding,
    /// `tls_mode = off|optional|required`, default off (optional when a certificate is configured).
    pub tls_mode: TlsMode,
    /// `tls_cert_file`, PEM chain.
    pub tls_cert_file: Option<PathBuf>,
    /// `tls_key_file`, PEM private key.
    pub tls_key_file: Option<PathBuf>,
    /// `tls_implicit_port`: a second listener speaking TLS from the first byte (FTPS implicit); none by default.
    pub tls_implicit_port: Option<u16>,
    /// `metrics_address`: where `GET /metrics` (Prometheus) and `GET /healthz` are served; off when unset.
    pub metrics_address: Option<SocketAddr>,
    /// `proxy_protocol_from`: the load balancers (addresses or networks) whose connections begin with a PROXY
    /// protocol header (v1 or v2) naming the real client; empty (the default) = no PROXY protocol.
    pub proxy_protocol_from: Vec<ipnet::IpNet>,
}

/// `[CLUSTER]`.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `redis_url`, e.g. `redis://10.0.0.5:6379/0` (a password in it stays out of logs and messages).
    pub redis_url: Secret,
    /// `node_name`, unique in the cluster; default `<host name>:<listen_port>`.
    pub node_name: String,
    /// `lease_time`, default 15 s: how long a crashed node's writer leases and connection counts outlive it.
    pub lease_time: Duration,
}

/// `[FILE_OPTION]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOption {
    /// `single_file_max_size`, bytes, default 200 GiB.
    pub single_file_max_size: u64,
}

/// `[OPTIONAL]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Optional {
    /// `min_part_size`, bytes, default 2 MiB.
    pub min_part_size: u64,
    /// `upload_thread_num`, default (`default` or absent) 4 × cores.
    pub upload_thread_num: usize,
    /// `max_connection_num`, default 512; `0` in the file = unlimited = `None`.
    pub max_connection_num: Option<usize>,
    /// `max_connection_per_ip`, default 50; `0` = unlimited = `None`.
    pub max_connection_per_ip: Option<usize>,
    /// `max_list_file`, default 10000.
    pub max_list_file: usize,
    /// `log_level`: error, warn, info, debug, trace (any case; `warning` and `critical` of the original map to warn/error).
    pub log_level: tracing::Level,
    /// `log_dir`, as given (never lower-cased); `None` = no log file.
    pub log_dir: Option<PathBuf>,
    /// `log_format = text | json`, default text: one line per event either way.
    pub log_format: LogFormat,
    /// `log_keep_days`: daily log files kept in `log_dir` (the newest ones); `None` (0 or unset) keeps them all.
    pub log_keep_days: Option<usize>,
    /// `xferlog_file`: the transfer log in a file of its own, as vsftpd writes it; none by default.
    pub xferlog_file: Option<PathBuf>,
    /// `xferlog_format = xferlog | json`, default xferlog (the wu-ftpd format vsftpd writes).
    pub xferlog_format: XferlogFormat,
    /// `shutdown_grace`, default 30 s: how long SIGTERM lets running transfers finish before aborting them.
    pub shutdown_grace: Duration,
    /// `mount_enable`, default true.
    pub mount_enable: bool,
    /// `memory_budget`, bytes, default 512 MiB: all upload part buffers and read-ahead together.
    pub memory_budget: u64,
    /// `create_home_dir`, default false.
    pub create_home_dir: bool,
    /// `metadata_ttl`, default 1 s.
    pub metadata_ttl: Duration,
    /// `metadata_cache_size`, bytes per account, default 16 MiB.
    pub metadata_cache_size: u64,
    /// `upload_resume_ttl`: how long an interrupted FTP upload is kept for resume, default 24 h; 0 = abort at
    /// once.
    pub upload_resume_ttl: Duration,
    /// `upload_digests`: digests computed while uploading and kept as object metadata, default `sha256,crc32`;
    /// `none` for none.
    pub upload_digests: crate::bucketfs::digest::AlgorithmSet,
    /// `hash_max_size`: the most bytes read to compute a digest a client asks for (objects cosftpd did not write,
    /// ranges), default 1 GiB.
    pub hash_max_size: u64,
    /// `max_rename_objects`, default 10000.
    pub max_rename_objects: usize,
    /// `allow_other`, default true.
    pub allow_other: bool,
    /// `mount_uid` / `mount_gid`, default: the daemon's own.
    pub mount_uid: Option<u32>,
    pub mount_gid: Option<u32>,
    /// `file_mode` / `dir_mode` (octal), defaults 0644 / 0755.
    pub file_mode: u16,
    pub dir_mode: u16,
    /// `mount_nonempty`, default false: mount over a home_dir that has files in it (hiding them).
    pub mount_nonempty: bool,
    /// `idle_timeout`, default 300 s.
    pub idle_timeout: Duration,
    /// `login_timeout`: time allowed from connect to a successful login, default 30 s.
    pub login_timeout: Duration,
    /// `login_fail_limit`: failed logins from one IP within `login_fail_window` before it is refused, default 5.
    pub login_fail_limit: u32,
    /// `login_fail_window`, default 300 s.
    pub login_fail_window: Duration,
    /// `login_ban_time`, default 600 s.
    pub login_ban_time: Duration,
}

impl Optional {
    /// `part_size = max(min_part_size, ceil(single_file_max_size / 10000))`, clamped to the store's limits.
    pub fn part_size(&self, file: &FileOption) -> u64 {
        let needed = file.single_file_max_size.div_ceil(MAX_PARTS);
        self.min_part_size
            .max(needed)
            .clamp(MIN_PART_SIZE, MAX_PART_SIZE)
    }
}

impl Config {
    /// Reads and validates the file; every problem is reported at once.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigErrors> {
        parse::load(path)
    }

    /// The checks that need the machine rather than the file (`masquerade_address` resolves, `log_dir` can be
    /// written), for `check-config` and before `serve` / `mount` start anything. On error, the config's warnings
    /// come along. Nothing is created or changed.
    pub fn preflight(&self) -> Result<(), ConfigErrors> {
        preflight::check(self)
    }

    /// Parses config text (paths resolved against the current directory).
    pub fn parse_str(text: &str) -> Result<Config, ConfigErrors> {
        parse::parse_str(text)
    }

    pub fn part_size(&self) -> u64 {
        self.optional.part_size(&self.file)
    }

    /// Worst case of process memory for data buffers: the shared budget (uploads + read-ahead).
    pub fn worst_case_memory(&self) -> u64 {
        self.optional.memory_budget
    }
}
