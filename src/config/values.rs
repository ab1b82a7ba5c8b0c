//! Scalar value syntax: booleans, sizes, durations, ports, modes and the small keyword sets.
//!
//! Each parser takes the trimmed value and returns what is wrong with it *without* repeating it: the caller decides
//! whether the value may be shown (it may not when the key holds a secret).

use std::net::{IpAddr, SocketAddr};
use std::num::{IntErrorKind, ParseIntError};
use std::ops::RangeInclusive;
use std::path::{Component, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::{
    Authority, LegacyEncoding, LogFormat, StorageKind, TlsMode, XferlogFormat, GIB, KIB, MIB, TIB,
};

pub(super) type Parsed<T> = Result<T, String>;

/// `true/false`, `yes/no`, `on/off`, `1/0`, any case (what Python's `getboolean` accepts).
pub(super) fn boolean(s: &str) -> Parsed<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err("expected true/false, yes/no, on/off or 1/0".into()),
    }
}

/// A whole, non-negative number.
pub(super) fn number<T>(s: &str) -> Parsed<T>
where
    T: FromStr<Err = ParseIntError>,
{
    s.parse().map_err(|e: ParseIntError| match e.kind() {
        IntErrorKind::PosOverflow => "the number is too large".to_string(),
        _ => "expected a whole number".to_string(),
    })
}

/// Splits `123abc` into `(123, "abc")`, the suffix trimmed and lower-cased.
fn split_number(s: &str) -> Parsed<(u64, String)> {
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(digits_end);
    if digits.is_empty() {
        return Err("expected a number".into());
    }
    Ok((number(digits)?, suffix.trim().to_ascii_lowercase()))
}

/// Bytes, with an optional binary suffix: `1048576`, `512K`, `2M`, `2MB`, `2MiB`, `200G`, `1T` (any case).
pub(super) fn size(s: &str) -> Parsed<u64> {
    const EXPECTED: &str =
        "expected a size in bytes, optionally with a K, M, G or T suffix (e.g. 2M, 200G)";
    let (n, suffix) = split_number(s).map_err(|_| EXPECTED.to_string())?;
    let unit = match suffix.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        "t" | "tb" | "tib" => TIB,
        _ => return Err(EXPECTED.into()),
    };
    n.checked_mul(unit)
        .ok_or_else(|| "the size is too large".to_string())
}

/// Seconds, or a number with `ms`, `s`, `m` or `h`: `30`, `30s`, `500ms`, `5m`, `1h`.
pub(super) fn duration(s: &str) -> Parsed<Duration> {
    const EXPECTED: &str = "expected seconds, or a number with ms, s, m or h (e.g. 30, 500ms, 5m)";
    let (n, suffix) = split_number(s).map_err(|_| EXPECTED.to_string())?;
    let seconds = |factor: u64| {
        n.checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| "the duration is too large".to_string())
    };
    match suffix.as_str() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        _ => Err(EXPECTED.into()),
    }
}

/// A TCP port, 1–65535 (0 would mean "any port", which nobody can connect to on purpose).
pub(super) fn port(s: &str) -> Parsed<u16> {
    match number::<u16>(s) {
        Ok(0) | Err(_) => Err("expected a port number between 1 and 65535".into()),
        Ok(p) => Ok(p),
    }
}

/// `low,high`, inclusive, as in the original.
pub(super) fn port_range(s: &str) -> Parsed<RangeInclusive<u16>> {
    const EXPECTED: &str =
        "expected `low,high`, two port numbers between 1 and 65535 (e.g. 60000,65535)";
    let (low, high) = s.split_once(',').ok_or_else(|| EXPECTED.to_string())?;
    let (low, high) = match (port(low.trim()), port(high.trim())) {
        (Ok(low), Ok(high)) => (low, high),
        _ => return Err(EXPECTED.into()),
    };
    if low > high {
        return Err(format!("the range is empty: {low} is above {high}"));
    }
    Ok(low..=high)
}

/// Unix permission bits in octal: `644`, `0644`, `0o644`.
pub(super) fn mode(s: &str) -> Parsed<u16> {
    const EXPECTED: &str = "expected octal permission bits between 0 and 7777 (e.g. 0644)";
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u16::from_str_radix(digits, 8) {
        Ok(bits) if !digits.starts_with('+') && bits <= 0o7777 => Ok(bits),
        _ => Err(EXPECTED.into()),
    }
}

pub(super) fn authority(s: &str) -> Parsed<Authority> {
    match s.to_ascii_uppercase().as_str() {
        "R" => Ok(Authority::Read),
        "W" => Ok(Authority::Write),
        "RW" | "WR" => Ok(Authority::ReadWrite),
        _ => Err("expected R, W or RW".into()),
    }
}

pub(super) fn storage_kind(s: &str) -> Parsed<StorageKind> {
    match s.to_ascii_lowercase().as_str() {
        "cos" => Ok(StorageKind::Cos),
        "s3" => Ok(StorageKind::S3),
        "fs" => Ok(StorageKind::Fs),
        "memory" => Ok(StorageKind::Memory),
        _ => Err("expected cos, s3, fs or memory".into()),
    }
}

/// The original's Python level names too: `WARNING` and `CRITICAL`.
pub(super) fn log_level(s: &str) -> Parsed<tracing::Level> {
    match s.to_ascii_lowercase().as_str() {
        "critical" | "error" => Ok(tracing::Level::ERROR),
        "warning" | "warn" => Ok(tracing::Level::WARN),
        "info" => Ok(tracing::Level::INFO),
        "debug" => Ok(tracing::Level::DEBUG),
        "trace" => Ok(tracing::Level::TRACE),
        _ => Err("expected error, warn, info, debug or trace".into()),
    }
}

/// A comma-separated list of digests (`md5, sha1, sha256, sha512, crc32`), or `none`.
pub(super) fn digests(s: &str) -> Parsed<crate::bucketfs::digest::AlgorithmSet> {
    use crate::bucketfs::digest::{Algorithm, AlgorithmSet};
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(AlgorithmSet::NONE);
    }
    let algorithms = s
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(str::parse::<Algorithm>)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AlgorithmSet::of(&algorithms))
}

/// GB2312 and CP936 are GBK's subset and Microsoft's name for it, so they decode the same way.
pub(super) fn legacy_encoding(s: &str) -> Parsed<LegacyEncoding> {
    match s.to_ascii_lowercase().as_str() {
        "" | "none" | "utf8" | "utf-8" => Ok(LegacyEncoding::None),
        "gbk" | "cp936" | "gb2312" => Ok(LegacyEncoding::Gbk),
        _ => Err("expected none or gbk".into()),
    }
}

pub(super) fn tls_mode(s: &str) -> Parsed<TlsMode> {
    match s.to_ascii_lowercase().as_str() {
        "off" => Ok(TlsMode::Off),
        "optional" => Ok(TlsMode::Optional),
        "required" => Ok(TlsMode::Required),
        _ => Err("expected off, optional or required".into()),
    }
}

pub(super) fn log_format(s: &str) -> Parsed<LogFormat> {
    match s.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected text or json".into()),
    }
}

pub(super) fn xferlog_format(s: &str) -> Parsed<XferlogFormat> {
    match s.to_ascii_lowercase().as_str() {
        "xferlog" | "wu-ftpd" => Ok(XferlogFormat::Xferlog),
        "json" => Ok(XferlogFormat::Json),
        _ => Err("expected xferlog or json".into()),
    }
}

/// `address:port`, IPv6 in brackets (`127.0.0.1:9121`, `[::1]:9121`); the port must not be 0.
pub(super) fn socket_addr(s: &str) -> Parsed<SocketAddr> {
    const EXPECTED: &str =
        "expected an IP address and a port, such as 127.0.0.1:9121 or [::1]:9121";
    let addr: SocketAddr = s.parse().map_err(|_| EXPECTED.to_string())?;
    if addr.port() == 0 {
        return Err(EXPECTED.into());
    }
    Ok(addr)
}

pub(super) fn protocol(s: &str) -> Parsed<String> {
    match s.to_ascii_lowercase().as_str() {
        p @ ("http" | "https") => Ok(p.to_string()),
        _ => Err("expected http or https".into()),
    }
}

/// An IP address; IPv6 may be written in brackets (`[::]`).
pub(super) fn ip_addr(s: &str) -> Parsed<IpAddr> {
    let bare = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse()
        .map_err(|_| "expected an IP address such as 0.0.0.0, 127.0.0.1 or ::".to_string())
}

/// An IP address (returned without brackets) or a DNS host name.
pub(super) fn host(s: &str) -> Parsed<String> {
    if let Ok(ip) = ip_addr(s) {
        return Ok(ip.to_string());
    }
    if is_host_name(s) {
        return Ok(s.to_string());
    }
    // `300.1.2.3` is a syntactically valid host name, but nobody means it as one.
    if s.split('.')
        .all(|label| label.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("not a valid IPv4 address".into());
    }
    Err("expected an IP address or a host name".into())
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let all_numeric = s.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()));
    !s.is_empty() && s.len() <= 253 && s.split('.').all(label_ok) && !all_numeric
}

/// A path, made absolute against the current directory and normalised (`.` and `..` resolved by name, as a shell
/// user reads them), so that two spellings of one directory compare equal. It need not exist.
pub(super) fn absolute_path(s: &str) -> Parsed<PathBuf> {
    let path = std::path::absolute(s)
        .map_err(|e| format!("cannot resolve it against the current directory: {e}"))?;
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            // At the root, `pop` keeps the root, as `/..` is `/`.
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    Ok(normal)
}

/// A SecretId / SecretKey / access key: a copy-and-paste accident shows as whitespace inside it.
pub(super) fn credential(s: &str) -> Parsed<String> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "must not contain spaces or control characters (check the copy and paste)".into(),
        );
    }
    Ok(s.to_string())
}

/// A user name or password: anything printable (FTP commands are lines of text).
pub(super) fn printable(s: &str) -> Parsed<String> {
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(s.to_string())
}

/// `ftp_login_user_password`: plaintext or a hash that `ftp::auth` verifies. MD5-crypt is refused rather than
/// accepted quietly: whoever can read the config file could recover the password.
pub(super) fn password(s: &str) -> Parsed<String> {
    let s = printable(s)?;
    if s.starts_with("$1$") {
        return Err("MD5-crypt hashes ($1$…) are not accepted: the scheme is broken (a GPU tests billions of \
                    guesses a second); use `openssl passwd -6` (SHA-512-crypt), bcrypt ($2b$) or argon2id"
            .into());
    }
    Ok(s)
}

/// `name-appid`, the full COS bucket name (`examplebucket-1250000000`), which the original insisted on too.
pub(super) fn cos_bucket(s: &str) -> Parsed<String> {
    let well_formed = s.rsplit_once('-').is_some_and(|(name, appid)| {
        !name.is_empty() && !appid.is_empty() && appid.bytes().all(|b| b.is_ascii_digit())
    });
    if !well_formed || s.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err("expected `name-appid`, e.g. examplebucket-1250000000".into());
    }
    Ok(s.to_string())
}

pub(super) fn s3_bucket(s: &str) -> Parsed<String> {
    if s.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err("a bucket name has no spaces or `/`".into());
    }
    Ok(s.to_string())
}

/// A COS region goes into a host name (`cos.<region>.myqcloud.com`).
pub(super) fn cos_region(s: &str) -> Parsed<String> {
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err("expected a region name such as ap-guangzhou".into());
    }
    Ok(s.to_string())
}

/// An endpoint URL; a bare host (`cos.internal.example:8080`) gets `protocol://` in front, as the original's
/// `cos_endpoint` was a host name.
pub(super) fn endpoint_url(s: &str, protocol: &str) -> Parsed<String> {
    const EXPECTED: &str = "expected a host name or an http:// or https:// URL";
    let url = match s.split_once("://") {
        Some((scheme, _)) if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") => {
            return Err(EXPECTED.into())
        }
        Some(_) => s.to_string(),
        None => format!("{protocol}://{s}"),
    };
    let host = url
        .split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
    if host.is_empty() || url.contains(char::is_whitespace) {
        return Err(EXPECTED.into());
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// `1 MiB`, `200 GiB`, or `21474837 bytes (~20.5 MiB)`: sizes in messages, exact when they can be.
pub(super) fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
    if let Some((unit, name)) = UNITS
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
    {
        return format!("{} {name}", bytes / unit);
    }
    match UNITS.iter().find(|(unit, _)| bytes >= *unit) {
        Some((unit, name)) => format!("{bytes} bytes (~{:.1} {name})", bytes as f64 / *unit as f64),
        None if bytes == 1 => "1 byte".to_string(),
        None => format!("{bytes} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_in_every_spelling() {
        for s in ["true", "TRUE", "Yes", "on", "1"] {
            assert_eq!(boolean(s), Ok(true), "{s}");
        }
        for s in ["false", "False", "NO", "Off", "0"] {
            assert_eq!(boolean(s), Ok(false), "{s}");
        }
        for s in ["", "2", "truee", "enabled", "y"] {
            assert!(boolean(s).is_err(), "{s}");
        }
    }

    #[test]
    fn sizes_with_binary_suffixes() {
        assert_eq!(size("0"), Ok(0));
        assert_eq!(size("21474836480"), Ok(20 * GIB));
        assert_eq!(size("512k"), Ok(512 * KIB));
        assert_eq!(size("512 KB"), Ok(512 * KIB));
        assert_eq!(size("2M"), Ok(2 * MIB));
        assert_eq!(size("2mib"), Ok(2 * MIB));
        assert_eq!(size("2MiB"), Ok(2 * MIB));
        assert_eq!(size("200G"), Ok(200 * GIB));
        assert_eq!(size("200GB"), Ok(200 * GIB));
        assert_eq!(size("1T"), Ok(TIB));
        assert_eq!(size("10b"), Ok(10));
        for bad in [
            "",
            "M",
            "-1",
            "1.5G",
            "2X",
            "2 M B",
            "G2",
            "99999999999999999999",
        ] {
            assert!(size(bad).is_err(), "{bad}");
        }
        assert_eq!(size("20000000T"), Err("the size is too large".to_string()));
    }

    #[test]
    fn durations_with_units() {
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("500 MS"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "s", "1.5", "5d", "-3", "1 hour"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_and_ranges() {
        assert_eq!(port("2121"), Ok(2121));
        assert!(port("0").is_err());
        assert!(port("65536").is_err());
        assert!(port("ftp").is_err());
        assert_eq!(port_range("60000,65535"), Ok(60000..=65535));
        assert_eq!(port_range(" 60000 , 60000 "), Ok(60000..=60000));
        assert!(port_range("60000").is_err());
        assert!(port_range("60000-65535").is_err());
        assert!(port_range("0,10").is_err());
        assert!(port_range("10,70000").is_err());
        assert_eq!(
            port_range("65535,60000"),
            Err("the range is empty: 65535 is above 60000".to_string())
        );
    }

    #[test]
    fn octal_modes() {
        assert_eq!(mode("644"), Ok(0o644));
        assert_eq!(mode("0644"), Ok(0o644));
        assert_eq!(mode("0o755"), Ok(0o755));
        assert_eq!(mode("7777"), Ok(0o7777));
        for bad in ["", "8", "0x1ff", "17777", "+644", "rw-r--r--"] {
            assert!(mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keywords_any_case() {
        assert_eq!(authority("rw"), Ok(Authority::ReadWrite));
        assert_eq!(authority("Rw"), Ok(Authority::ReadWrite));
        assert_eq!(authority("r"), Ok(Authority::Read));
        assert_eq!(authority("W"), Ok(Authority::Write));
        assert!(authority("RWX").is_err());
        assert!(authority("").is_err());
        assert_eq!(storage_kind("S3"), Ok(StorageKind::S3));
        assert!(storage_kind("gcs").is_err());
        assert_eq!(log_level("INFO"), Ok(tracing::Level::INFO));
        assert_eq!(log_level("Warning"), Ok(tracing::Level::WARN));
        assert_eq!(log_level("CRITICAL"), Ok(tracing::Level::ERROR));
        assert_eq!(log_level("trace"), Ok(tracing::Level::TRACE));
        assert!(log_level("verbose").is_err());
        assert_eq!(legacy_encoding("GBK"), Ok(LegacyEncoding::Gbk));
        assert_eq!(legacy_encoding("utf-8"), Ok(LegacyEncoding::None));
        assert!(legacy_encoding("latin1").is_err());
        assert_eq!(tls_mode("Required"), Ok(TlsMode::Required));
        assert!(tls_mode("on").is_err());
        assert_eq!(protocol("HTTP"), Ok("http".to_string()));
        assert!(protocol("ftp").is_err());
    }

    #[test]
    fn addresses_and_host_names() {
        assert_eq!(ip_addr("0.0.0.0"), Ok("0.0.0.0".parse().unwrap()));
        assert_eq!(ip_addr("::"), Ok("::".parse().unwrap()));
        assert_eq!(ip_addr("[::1]"), Ok("::1".parse().unwrap()));
        assert!(ip_addr("localhost").is_err());
        assert_eq!(host("203.0.113.7"), Ok("203.0.113.7".to_string()));
        assert_eq!(host("ftp.example.com"), Ok("ftp.example.com".to_string()));
        assert_eq!(host("2001:db8::1"), Ok("2001:db8::1".to_string()));
        assert_eq!(host("[2001:db8::1]"), Ok("2001:db8::1".to_string()));
        assert_eq!(host("XXX.XXX.XXX.XXX"), Ok("XXX.XXX.XXX.XXX".to_string()));
        assert_eq!(
            host("300.1.2.3"),
            Err("not a valid IPv4 address".to_string())
        );
        for bad in [
            "-a.example.com",
            "a..b",
            "host name",
            "a_b.example",
            "ftp://x",
        ] {
            assert!(host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_in_messages() {
        assert_eq!(format_size(2 * MIB), "2 MiB");
        assert_eq!(format_size(200 * GIB), "200 GiB");
        assert_eq!(format_size(1536), "1536 bytes (~1.5 KiB)");
        assert_eq!(format_size(21_474_837), "21474837 bytes (~20.5 MiB)");
        assert_eq!(format_size(100), "100 bytes");
    }

    #[test]
    fn paths_become_absolute_and_normal() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            absolute_path("/home/user0"),
            Ok(PathBuf::from("/home/user0"))
        );
        assert_eq!(
            absolute_path("/home/./user0/"),
            Ok(PathBuf::from("/home/user0"))
        );
        assert_eq!(
            absolute_path("/home/x/../user0"),
            Ok(PathBuf::from("/home/user0"))
        );
        assert_eq!(absolute_path("/../.."), Ok(PathBuf::from("/")));
        assert_eq!(absolute_path("./run/user0"), Ok(cwd.join("run/user0")));
        assert_eq!(absolute_path("run/../data"), Ok(cwd.join("data")));
    }

    #[test]
    fn credentials_and_names() {
        assert_eq!(credential("AKIDabc123"), Ok("AKIDabc123".to_string()));
        assert!(credential("AKID abc").is_err());
        assert!(credential("AKID\tabc").is_err());
        assert_eq!(printable("pass word"), Ok("pass word".to_string()));
        assert!(printable("pass\u{7}").is_err());
    }

    #[test]
    fn buckets_and_regions() {
        assert!(cos_bucket("examplebucket-1250000000").is_ok());
        assert!(cos_bucket("my-bucket-125").is_ok());
        for bad in [
            "examplebucket",
            "examplebucket-",
            "-125",
            "bucket-12a",
            "{bucket name}-{appid}",
            "a b-1",
        ] {
            assert!(cos_bucket(bad).is_err(), "{bad}");
        }
        assert!(s3_bucket("test").is_ok());
        assert!(s3_bucket("a/b").is_err());
        assert!(cos_region("ap-guangzhou").is_ok());
        assert!(cos_region("ap guangzhou").is_err());
        assert!(cos_region("evil.com/x").is_err());
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint_url("cos.internal.example", "https"),
            Ok("https://cos.internal.example".to_string())
        );
        assert_eq!(
            endpoint_url("127.0.0.1:9000", "http"),
            Ok("http://127.0.0.1:9000".to_string())
        );
        assert_eq!(
            endpoint_url("HTTP://127.0.0.1:9000/", "https"),
            Ok("HTTP://127.0.0.1:9000".to_string())
        );
        for bad in ["ftp://host", "http://", "host name", "://x"] {
            assert!(endpoint_url(bad, "https").is_err(), "{bad}");
        }
    }
}
