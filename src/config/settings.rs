//! `[NETWORK]`, `[FILE_OPTION]` and `[OPTIONAL]`: every key has a default, so a missing section is fine.

use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr};
use std::num::{NonZeroUsize, ParseIntError};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::reader::{Keys, SectionReader};
use super::values::{self, format_size, Parsed};
use super::{
    FileOption, LegacyEncoding, LogFormat, Network, Optional, TlsMode, XferlogFormat, GIB,
    MAX_PARTS, MAX_PART_SIZE, MIB, MIN_PART_SIZE,
};

pub(super) const NETWORK_KEYS: &Keys = &Keys {
    used: &[
        "masquerade_address",
        "listen_address",
        "listen_port",
        "passive_port",
        "legacy_encoding",
        "tls_mode",
        "tls_cert_file",
        "tls_key_file",
        "tls_implicit_port",
        "metrics_address",
        "proxy_protocol_from",
    ],
    ignored: &[],
};

pub(super) const CLUSTER_KEYS: &Keys = &Keys {
    used: &["redis_url", "node_name", "lease_time"],
    ignored: &[],
};

const DEFAULT_LEASE_TIME: Duration = Duration::from_secs(15);
/// Leases are renewed three times per lease time; below this, a busy Redis or a paused process loses them.
const MIN_LEASE_TIME: Duration = Duration::from_secs(2);
const MAX_NODE_NAME: usize = 64;

pub(super) const FILE_OPTION_KEYS: &Keys = &Keys {
    used: &["single_file_max_size"],
    ignored: &[],
};

const LOG_ROTATION: &str =
    "the log file in log_dir is always rotated daily (cosftpd.log.<date>) and never truncated; set \
     log_keep_days to remove old files";

pub(super) const OPTIONAL_KEYS: &Keys = &Keys {
    used: OPTIONAL_USED,
    // Every key of the original's [OPTIONAL] that cosftpd does not read: its config keeps working unchanged.
    ignored: &[
        (
            "config_check_enable",
            "cosftpd always checks the whole config at start (check-config shows what it sets up), and \
             memory_budget bounds the memory of transfers",
        ),
        ("log_rotate_enabled", LOG_ROTATION),
        ("log_rotate_when", LOG_ROTATION),
        ("log_backup_count", LOG_ROTATION),
    ],
};

const OPTIONAL_USED: &[&str] = &[
    "min_part_size",
    "upload_thread_num",
    "max_connection_num",
    "max_connection_per_ip",
    "max_list_file",
    "log_level",
    "log_dir",
    "mount_enable",
    "memory_budget",
    "create_home_dir",
    "metadata_ttl",
    "metadata_cache_size",
    "upload_resume_ttl",
    "upload_digests",
    "hash_max_size",
    "max_rename_objects",
    "allow_other",
    "mount_uid",
    "mount_gid",
    "file_mode",
    "dir_mode",
    "mount_nonempty",
    "idle_timeout",
    "login_timeout",
    "login_fail_limit",
    "login_fail_window",
    "login_ban_time",
    "log_format",
    "log_keep_days",
    "xferlog_file",
    "xferlog_format",
    "shutdown_grace",
];

const DEFAULT_LISTEN_PORT: u16 = 2121;
const DEFAULT_PASSIVE_PORTS: RangeInclusive<u16> = 60000..=65535;
const DEFAULT_SINGLE_FILE_MAX_SIZE: u64 = 200 * GIB;
const DEFAULT_MIN_PART_SIZE: u64 = 2 * MIB;
const MAX_UPLOAD_THREADS: usize = 256;

pub(super) fn read_network(r: &mut SectionReader<'_>) -> Network {
    let masquerade_address = match r.optional("masquerade_address", values::host) {
        Some(address) if is_placeholder(&address) => {
            r.warn(
                "masquerade_address",
                format!(
                    "{address} is the placeholder of the original's example, taken as not set (as the original \
                     did): passive-mode replies announce the address the client connected to. Set the address \
                     clients use to reach this server, or remove the line"
                ),
            );
            None
        }
        other => other,
    };
    let listen_address = r.value(
        "listen_address",
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        values::ip_addr,
    );
    let listen_port = r.get("listen_port", values::port);
    let passive_ports = r.get("passive_port", values::port_range);
    let legacy_encoding = r.value(
        "legacy_encoding",
        LegacyEncoding::None,
        values::legacy_encoding,
    );
    let tls = read_tls(r);
    let proxy_protocol_from = r.value("proxy_protocol_from", Vec::new(), networks);

    // Collisions are only judged between values that are themselves valid.
    if let (Ok(listen), Ok(passive)) = (&listen_port, &passive_ports) {
        let listen = listen.unwrap_or(DEFAULT_LISTEN_PORT);
        let passive = passive.clone().unwrap_or(DEFAULT_PASSIVE_PORTS);
        check_ports(r, listen, &passive, tls.implicit_port);
    }

    Network {
        masquerade_address,
        listen_address,
        listen_port: listen_port.ok().flatten().unwrap_or(DEFAULT_LISTEN_PORT),
        passive_ports: passive_ports
            .ok()
            .flatten()
            .unwrap_or(DEFAULT_PASSIVE_PORTS),
        legacy_encoding,
        tls_mode: tls.mode,
        tls_cert_file: tls.cert_file,
        tls_key_file: tls.key_file,
        tls_implicit_port: tls.implicit_port,
        metrics_address: r.optional("metrics_address", values::socket_addr),
        proxy_protocol_from,
    }
}

/// `10.0.0.5, 10.1.0.0/16, fd00::/8`: addresses and networks, comma-separated.
fn networks(s: &str) -> Parsed<Vec<ipnet::IpNet>> {
    s.split(',')
        .map(str::trim)
        .map(|item| {
            if item.is_empty() {
                return Err(
                    "an empty entry (expected addresses or networks, comma-separated)".to_string(),
                );
            }
            if let Ok(ip) = item.parse::<IpAddr>() {
                return Ok(ipnet::IpNet::from(ip));
            }
            item.parse::<ipnet::IpNet>()
                .map(|net| net.trunc())
                .map_err(|_| {
                    format!("`{item}` is neither an IP address nor a network like 10.0.0.0/8")
                })
        })
        .collect()
}

/// `[CLUSTER]`; `listen_port` makes the default node name unique among the nodes of one machine.
pub(super) fn read_cluster(r: &mut SectionReader<'_>, listen_port: u16) -> Option<super::Cluster> {
    let redis_url = r.required("redis_url", redis_url);
    let node_name = r
        .optional("node_name", node_name)
        .unwrap_or_else(|| format!("{}:{listen_port}", host_name()));
    let lease_time = r.value(
        "lease_time",
        DEFAULT_LEASE_TIME,
        |s| match values::duration(s)? {
            d if d < MIN_LEASE_TIME => Err(format!(
                "must be at least {} s: leases are renewed every third of it",
                MIN_LEASE_TIME.as_secs()
            )),
            d => Ok(d),
        },
    );
    Some(super::Cluster {
        redis_url: redis_url?,
        node_name,
        lease_time,
    })
}

/// What the Redis client accepts (`redis://`, `redis+unix://`, `unix://`); `rediss://` needs TLS, which this build
/// does not have.
fn redis_url(s: &str) -> Parsed<super::Secret> {
    if s.starts_with("rediss://") || s.starts_with("valkeys://") {
        return Err(
            "TLS to Redis (rediss://) is not supported by this build; use redis:// on a private \
                    network, or a local TLS tunnel"
                .into(),
        );
    }
    match redis::Client::open(s) {
        Ok(_) => Ok(super::Secret::new(s)),
        Err(e) => Err(format!("not a Redis URL: {e}")),
    }
}

/// Letters, digits and `.-_:`, at most 64: it is part of Redis keys and values, and of log lines.
fn node_name(s: &str) -> Parsed<String> {
    let fits = s.len() <= MAX_NODE_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if fits {
        Ok(s.to_string())
    } else {
        Err(format!(
            "at most {MAX_NODE_NAME} letters, digits and . - _ : (it becomes part of Redis keys)"
        ))
    }
}

/// This machine's name (a pod's name on Kubernetes), for the default node name.
fn host_name() -> String {
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(MAX_NODE_NAME - 6)
        .collect();
    if name.is_empty() {
        "node".to_string()
    } else {
        name
    }
}

/// `XXX.XXX.XXX.XXX`, as in the original's example: the original ignored it (not an IPv4 address), so working
/// deployments still have it. Any other name must resolve (see `preflight`).
fn is_placeholder(address: &str) -> bool {
    address.contains(['x', 'X']) && address.chars().all(|c| matches!(c, 'x' | 'X' | '.'))
}

struct Tls {
    mode: TlsMode,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    implicit_port: Option<u16>,
}

fn read_tls(r: &mut SectionReader<'_>) -> Tls {
    let cert_file = r.optional("tls_cert_file", existing_file);
    let key_file = r.optional("tls_key_file", existing_file);
    let implicit_port = r.optional("tls_implicit_port", values::port);
    // Configuring a certificate is asking for TLS; plaintext stays allowed unless `tls_mode = required`.
    let default_mode = if r.has("tls_cert_file") {
        TlsMode::Optional
    } else {
        TlsMode::Off
    };
    let mode = r.value("tls_mode", default_mode, values::tls_mode);

    // Judged on what is written, so that a wrong path is reported once (above), not again as "missing".
    match (r.has("tls_cert_file"), r.has("tls_key_file")) {
        (true, false) => r.error("tls_key_file", "required when tls_cert_file is set"),
        (false, true) => r.error("tls_cert_file", "required when tls_key_file is set"),
        (false, false) if mode != TlsMode::Off || implicit_port.is_some() => {
            let why = if mode != TlsMode::Off {
                "tls_mode is not off"
            } else {
                "tls_implicit_port is set"
            };
            r.error(
                "tls_cert_file",
                format!("tls_cert_file and tls_key_file are required when {why}"),
            );
        }
        _ => {}
    }

    Tls {
        mode,
        cert_file,
        key_file,
        implicit_port,
    }
}

fn existing_file(s: &str) -> Parsed<PathBuf> {
    let path = values::absolute_path(s)?;
    // Where a relative path led is the useful part when the daemon runs from an unexpected directory.
    let resolved = if Path::new(s).is_absolute() {
        String::new()
    } else {
        format!(" ({})", path.display())
    };
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => Err(format!("not a file{resolved}")),
        Err(e) => Err(format!("cannot read it{resolved}: {e}")),
    }
}

fn check_ports(
    r: &mut SectionReader<'_>,
    listen: u16,
    passive: &RangeInclusive<u16>,
    implicit: Option<u16>,
) {
    if passive.contains(&listen) {
        r.warn(
            "passive_port",
            format!("the range includes listen_port {listen}, which is then never used for data"),
        );
    }
    let Some(implicit) = implicit else { return };
    if implicit == listen {
        r.error(
            "tls_implicit_port",
            format!("must differ from listen_port ({listen}): both are listened on"),
        );
    } else if passive.contains(&implicit) {
        r.warn(
            "passive_port",
            format!("the range includes tls_implicit_port {implicit}, which is then never used for data"),
        );
    }
}

pub(super) fn read_file_option(r: &mut SectionReader<'_>) -> FileOption {
    // A file needs at most 10,000 parts of at most 5 GiB.
    let max = MAX_PARTS * MAX_PART_SIZE;
    let single_file_max_size = r.value("single_file_max_size", DEFAULT_SINGLE_FILE_MAX_SIZE, |s| {
        bytes(s, 1, Some(max))
    });
    FileOption {
        single_file_max_size,
    }
}

pub(super) fn read_optional(r: &mut SectionReader<'_>) -> Optional {
    Optional {
        min_part_size: r.value("min_part_size", DEFAULT_MIN_PART_SIZE, |s| {
            bytes(s, MIN_PART_SIZE, Some(MAX_PART_SIZE))
        }),
        upload_thread_num: r.value("upload_thread_num", default_upload_threads(), |s| {
            count(s, 1, Some(MAX_UPLOAD_THREADS))
        }),
        max_connection_num: r.value("max_connection_num", Some(512), unlimited_if_zero),
        max_connection_per_ip: r.value("max_connection_per_ip", Some(50), unlimited_if_zero),
        max_list_file: r.value("max_list_file", 10_000, |s| count(s, 1, None)),
        log_level: r.value("log_level", tracing::Level::INFO, values::log_level),
        // As written: the original lower-cased it, which broke directories with capitals.
        log_dir: r.optional("log_dir", |s| Ok(PathBuf::from(s))),
        log_format: r.value("log_format", LogFormat::Text, values::log_format),
        log_keep_days: r
            .value("log_keep_days", None, |s| {
                Ok(Some(values::number::<usize>(s)?))
            })
            .filter(|&days| days != 0),
        xferlog_file: r.optional("xferlog_file", |s| Ok(PathBuf::from(s))),
        xferlog_format: r.value(
            "xferlog_format",
            XferlogFormat::Xferlog,
            values::xferlog_format,
        ),
        shutdown_grace: r.value("shutdown_grace", Duration::from_secs(30), values::duration),
        mount_enable: r.value("mount_enable", true, values::boolean),
        // Checked against the part size later, where a too-small budget can be explained.
        memory_budget: r.value("memory_budget", 512 * MIB, values::size),
        create_home_dir: r.value("create_home_dir", false, values::boolean),
        metadata_ttl: r.value("metadata_ttl", Duration::from_secs(1), values::duration),
        metadata_cache_size: r.value("metadata_cache_size", 16 * MIB, values::size),
        upload_resume_ttl: r.value(
            "upload_resume_ttl",
            Duration::from_secs(24 * 3600),
            values::duration,
        ),
        upload_digests: r.value(
            "upload_digests",
            crate::bucketfs::digest::AlgorithmSet::of(&[
                crate::bucketfs::digest::Algorithm::Sha256,
                crate::bucketfs::digest::Algorithm::Crc32,
            ]),
            values::digests,
        ),
        hash_max_size: r.value("hash_max_size", GIB, values::size),
        max_rename_objects: r.value("max_rename_objects", 10_000, |s| count(s, 1, None)),
        allow_other: r.value("allow_other", true, values::boolean),
        mount_uid: r.optional("mount_uid", values::number),
        mount_gid: r.optional("mount_gid", values::number),
        file_mode: r.value("file_mode", 0o644, values::mode),
        dir_mode: r.value("dir_mode", 0o755, values::mode),
        mount_nonempty: r.value("mount_nonempty", false, values::boolean),
        idle_timeout: r.value("idle_timeout", Duration::from_secs(300), positive_duration),
        login_timeout: r.value("login_timeout", Duration::from_secs(30), positive_duration),
        login_fail_limit: r.value("login_fail_limit", 5, |s| count(s, 1, None)),
        login_fail_window: r.value(
            "login_fail_window",
            Duration::from_secs(300),
            positive_duration,
        ),
        login_ban_time: r.value(
            "login_ban_time",
            Duration::from_secs(600),
            positive_duration,
        ),
    }
}

/// The original's default: four uploads in flight per core.
fn default_upload_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    (4 * cores).min(MAX_UPLOAD_THREADS)
}

/// `0` means "no limit", as the original documented (but did not implement).
fn unlimited_if_zero(s: &str) -> Parsed<Option<usize>> {
    Ok(Some(values::number(s)?).filter(|&n| n != 0))
}

/// A whole number in `min..=max` (no upper bound when `max` is `None`).
fn count<T>(s: &str, min: T, max: Option<T>) -> Parsed<T>
where
    T: FromStr<Err = ParseIntError> + PartialOrd + Copy + Display,
{
    within(values::number(s)?, min, max, |n| n.to_string())
}

/// A size in `min..=max` (no upper bound when `max` is `None`).
fn bytes(s: &str, min: u64, max: Option<u64>) -> Parsed<u64> {
    within(values::size(s)?, min, max, format_size)
}

fn within<T: PartialOrd + Copy>(
    n: T,
    min: T,
    max: Option<T>,
    show: impl Fn(T) -> String,
) -> Parsed<T> {
    if n >= min && max.is_none_or(|max| n <= max) {
        return Ok(n);
    }
    match max {
        Some(max) => Err(format!("must be between {} and {}", show(min), show(max))),
        None => Err(format!("must be at least {}", show(min))),
    }
}

/// A zero timeout would end every session at once.
fn positive_duration(s: &str) -> Parsed<Duration> {
    match values::duration(s)? {
        Duration::ZERO => Err("must be more than 0".into()),
        d => Ok(d),
    }
}
