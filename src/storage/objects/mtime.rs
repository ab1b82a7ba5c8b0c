//! The `mtime` user metadata as s3fs and rclone write it: decimal seconds since the epoch, maybe with a
//! fraction (`1700000000`, `1700000000.5`, `1700000000.123456789`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The name of the user metadata that carries a file's modification time.
pub(crate) const MTIME: &str = "mtime";

/// Parses an `mtime` value; `None` when it is not one. The fraction is read as rclone reads it (right-padded or
/// truncated to nanoseconds), so both s3fs's nine digits and rclone's trimmed fractions come out right.
pub(crate) fn parse(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let nanos = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::new(secs, nanos))
    }

    #[test]
    fn whole_and_fractional_seconds() {
        assert_eq!(parse("1700000000"), at(1_700_000_000, 0));
        assert_eq!(parse("1700000000.5"), at(1_700_000_000, 500_000_000));
        assert_eq!(
            parse("1700000000.123456789"),
            at(1_700_000_000, 123_456_789)
        );
        assert_eq!(
            parse("1700000000.1234567891"),
            at(1_700_000_000, 123_456_789)
        );
        assert_eq!(parse(" 1700000000. "), at(1_700_000_000, 0));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            ".5",
            "-1",
            "1e9",
            "17000x",
            "1.2.3",
            "2023-11-14T22:13:20Z",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
