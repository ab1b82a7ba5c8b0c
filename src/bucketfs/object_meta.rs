//! A file's POSIX attributes as object user metadata, in the conventions other tools already use, so that a bucket
//! written by s3fs, rclone or cosftpd reads the same through all three.
//!
//! What is written (names without the store's prefix: `x-amz-meta-mtime` on S3, `x-cos-meta-mtime` on COS):
//!
//! | name | value | read by |
//! |---|---|---|
//! | `mtime`, `ctime`, `atime` | seconds since the epoch: `1700000000`, or with nanoseconds always as nine digits (`1700000000.123456789`); on COS whole seconds | s3fs (nine digits exactly), rclone (any fraction), cosfs (whole seconds) |
//! | `mode` | decimal `st_mode` with the type bits (`33188` = `0100644`, a symbolic link `41471`, a FIFO `4516`) | s3fs, cosfs |
//! | `uid`, `gid` | decimal | s3fs, cosfs |
//! | `rdev` | a device node's number, hexadecimal (rclone's form; s3fs keeps none) | rclone |
//! | `xattr` | URL-encoded `{"user.name":"<base64 value>",…}` | s3fs |
//!
//! What is read, beyond that: rclone's float times with a fraction of any length (padded or cut to nanoseconds,
//! as rclone reads them) and RFC 3339 times (rclone's `--metadata` atime); a `mode` in octal, with a leading `0`
//! (s3fs reads base 0) or without one where decimal would give no file type (rclone `--metadata` writes `100644`);
//! the fallbacks s3fs reads (`goog-reserved-file-mtime`, `permissions`, `goog-reserved-posix-mode` (octal),
//! `owner`/`group`, `goog-reserved-posix-uid`/`-gid`). Values that are none of these are ignored, never an error.
//!
//! Changing attributes keeps every other user metadata entry (another tool's keys survive a `chmod`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::error::{FsError, FsErrorKind, FsResult};
use super::types::FileKind;
use crate::storage::objects::mtime;

const MTIME: &str = "mtime";
const CTIME: &str = "ctime";
const ATIME: &str = "atime";
const MODE: &str = "mode";
const UID: &str = "uid";
const GID: &str = "gid";
const XATTR: &str = "xattr";

/// The kernel's own namespaces of extended attributes (capabilities, ACLs, SELinux labels, the administrator's):
/// they mean nothing on an object store and are not kept. Every other name is (`user.*`, and names without a
/// namespace, as macOS programs and s3fs use them).
const KERNEL_NAMESPACES: [&str; 3] = ["security.", "system.", "trusted."];

/// User metadata a store keeps per object: S3 allows 2 KB in all (names and values), COS 2 KB per entry. Times,
/// mode, owner and extended attributes share it with other tools' entries.
pub const MAX_USER_METADATA: usize = 2048;

const RDEV: &str = "rdev";

pub const S_IFMT: u32 = 0o170_000;
pub const S_IFREG: u32 = 0o100_000;
pub const S_IFDIR: u32 = 0o040_000;
pub const S_IFLNK: u32 = 0o120_000;
pub const S_IFIFO: u32 = 0o010_000;
pub const S_IFCHR: u32 = 0o020_000;
pub const S_IFBLK: u32 = 0o060_000;
pub const S_IFSOCK: u32 = 0o140_000;
const PERMISSION_BITS: u32 = 0o7777;

/// What s3fs's `urlEncodePath` leaves alone: letters, digits and `.-_~/`.
const XATTR_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// The POSIX attributes an object carries in its user metadata; `None` where it carries none (then the mount's
/// configured defaults and the store's Last-Modified apply).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileAttrs {
    /// Permission bits (`0o7777`: with set-user-ID, set-group-ID and sticky), without the file type.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mtime: Option<SystemTime>,
    pub atime: Option<SystemTime>,
    pub ctime: Option<SystemTime>,
    /// The file type the stored mode says (`S_IFLNK`: s3fs stores a link as an object whose body is the
    /// target; `S_IFIFO`, `S_IFSOCK`, `S_IFCHR`, `S_IFBLK`: an empty object stands for the node).
    pub file_type: Option<u32>,
    /// A device node's device number.
    pub rdev: Option<u32>,
    /// Extended attributes by full name (`user.comment`).
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// How times are written: COS's own client (cosfs) reads whole seconds only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    Nanoseconds,
    WholeSeconds,
}

/// A change of attributes (`chmod`, `chown`, `utimens`, FTP `MFMT`): `None` leaves an attribute as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttrChange {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
}

impl AttrChange {
    pub fn is_empty(&self) -> bool {
        *self == AttrChange::default()
    }
}

impl FileAttrs {
    /// Reads the attributes from an object's user metadata (names without the store's prefix, lower-case).
    pub fn from_user_metadata(user: &BTreeMap<String, String>) -> Self {
        let get = |name: &str| user.get(name).map(String::as_str);
        let first = |names: &[&str], parse: fn(&str) -> Option<u32>| {
            names.iter().find_map(|n| get(n).and_then(parse))
        };
        let stored_mode = get(MODE)
            .and_then(parse_mode)
            .or_else(|| get("permissions").and_then(parse_mode))
            .or_else(|| get("goog-reserved-posix-mode").and_then(parse_octal));
        Self {
            mode: stored_mode.map(|m| m & PERMISSION_BITS),
            uid: first(&[UID, "owner", "goog-reserved-posix-uid"], parse_id),
            gid: first(&[GID, "group", "goog-reserved-posix-gid"], parse_id),
            mtime: get(MTIME)
                .and_then(parse_time)
                .or_else(|| get("goog-reserved-file-mtime").and_then(parse_time)),
            atime: get(ATIME).and_then(parse_time),
            ctime: get(CTIME).and_then(parse_time),
            file_type: stored_mode.map(|m| m & S_IFMT).filter(|t| *t != 0),
            rdev: get(RDEV).and_then(|v| u32::from_str_radix(v.trim(), 16).ok()),
            xattrs: get(XATTR).map(parse_xattrs).unwrap_or_default(),
        }
    }

    /// Writes the attributes into `user` (an object's user metadata, whose other entries stay), for an object of
    /// `kind`. Entries for attributes that are `None` are left as they are.
    pub fn write_user_metadata(
        &self,
        kind: FileKind,
        format: TimeFormat,
        user: &mut BTreeMap<String, String>,
    ) {
        let mut set_time = |name: &str, time: Option<SystemTime>| {
            if let Some(value) = time.and_then(|t| format_time(t, format)) {
                user.insert(name.to_string(), value);
            }
        };
        set_time(MTIME, self.mtime);
        set_time(CTIME, self.ctime);
        set_time(ATIME, self.atime);
        let kind_bits = match kind {
            FileKind::File => S_IFREG,
            FileKind::Directory => S_IFDIR,
            FileKind::Symlink => S_IFLNK,
            FileKind::Special => self.file_type.unwrap_or(S_IFREG),
        };
        let mode = match kind {
            // A link's own permission bits mean nothing; s3fs writes 0777.
            FileKind::Symlink => Some(0o777),
            _ => self.mode,
        };
        if let Some(mode) = mode {
            user.insert(
                MODE.to_string(),
                (kind_bits | (mode & PERMISSION_BITS)).to_string(),
            );
        }
        if let Some(uid) = self.uid {
            user.insert(UID.to_string(), uid.to_string());
        }
        if let Some(gid) = self.gid {
            user.insert(GID.to_string(), gid.to_string());
        }
        if let Some(rdev) = self.rdev.filter(|r| *r != 0) {
            user.insert(RDEV.to_string(), format!("{rdev:x}"));
        }
        if self.xattrs.is_empty() {
            user.remove(XATTR);
        } else {
            user.insert(XATTR.to_string(), format_xattrs(&self.xattrs));
        }
    }

    /// The attributes a new version of a file keeps from the old one (`O_TRUNC`, an FTP overwrite, an append):
    /// mode, owner, extended attributes and the access time (writing is no access), not the modification and
    /// change times. What replaces a link or a special node is a plain
    /// file, with a plain file's default mode.
    pub fn inherited(&self) -> Self {
        let plain = self.file_type.is_none_or(|t| t == S_IFREG);
        Self {
            mode: self.mode.filter(|_| plain),
            uid: self.uid,
            gid: self.gid,
            atime: self.atime,
            xattrs: self.xattrs.clone(),
            ..Self::default()
        }
    }

    /// The kind of entry an object with these attributes is (not a directory: that is its key's form).
    pub fn object_kind(&self) -> FileKind {
        match self.file_type {
            Some(S_IFLNK) => FileKind::Symlink,
            Some(S_IFIFO | S_IFCHR | S_IFBLK | S_IFSOCK) => FileKind::Special,
            _ => FileKind::File,
        }
    }

    /// Applies a change; every change also sets the change time, as on a local disk.
    pub fn apply(&mut self, change: &AttrChange, now: SystemTime) {
        if change.mode.is_some() || change.uid.is_some() || change.gid.is_some() {
            self.ctime = Some(now);
        }
        if let Some(mode) = change.mode {
            self.mode = Some(mode & PERMISSION_BITS);
        }
        if change.uid.is_some() {
            self.uid = change.uid;
        }
        if change.gid.is_some() {
            self.gid = change.gid;
        }
        if change.atime.is_some() {
            self.atime = change.atime;
            self.ctime = Some(now);
        }
        if change.mtime.is_some() {
            self.mtime = change.mtime;
            self.ctime = Some(now);
        }
    }

    /// Whether storing `self` over `stored` would change anything: an attribute `self` sets differs, or the
    /// extended attributes do.
    pub fn differs_from(&self, stored: &FileAttrs) -> bool {
        fn differs<T: PartialEq>(mine: Option<T>, theirs: Option<T>) -> bool {
            mine.is_some() && mine != theirs
        }
        differs(self.mode, stored.mode)
            || differs(self.uid, stored.uid)
            || differs(self.gid, stored.gid)
            || differs(self.mtime, stored.mtime)
            || differs(self.atime, stored.atime)
            || differs(self.ctime, stored.ctime)
            || self.xattrs != stored.xattrs
    }

    /// Takes every attribute `other` sets, and its extended attributes.
    pub fn overlay(&mut self, other: &FileAttrs) {
        fn take<T>(mine: &mut Option<T>, theirs: Option<T>) {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
        take(&mut self.mode, other.mode);
        take(&mut self.uid, other.uid);
        take(&mut self.gid, other.gid);
        take(&mut self.mtime, other.mtime);
        take(&mut self.atime, other.atime);
        take(&mut self.ctime, other.ctime);
        self.xattrs = other.xattrs.clone();
    }

    /// Bytes the attributes take in memory beyond the struct (for the cache's weighing).
    pub(crate) fn heap_size(&self) -> usize {
        self.xattrs
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum()
    }
}

/// Fails when `user` does not fit the stores' limit on user metadata (names and values, without the prefix).
pub fn check_size(user: &BTreeMap<String, String>, path: &str) -> FsResult<()> {
    let size: usize = user.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_USER_METADATA {
        return Err(FsError::new(
            FsErrorKind::NoSpace,
            format!(
                "{path}: the file's metadata would take {size} bytes; an object store keeps at most \
                 {MAX_USER_METADATA} (times, mode, owner and extended attributes together)"
            ),
        ));
    }
    Ok(())
}

/// Whether an extended attribute of this name can be kept (not one of the kernel's own namespaces).
pub fn is_kept_xattr(name: &str) -> bool {
    !KERNEL_NAMESPACES.iter().any(|ns| name.starts_with(ns))
}

/// Checks an extended attribute's name: not one of the kernel's namespaces, and a name s3fs can read back (no
/// `"`, `,`, `\` or control characters: its format separates entries with `,` and quotes names).
pub fn check_xattr_name(name: &str) -> FsResult<()> {
    if !is_kept_xattr(name) {
        return Err(FsError::new(
            FsErrorKind::Unsupported,
            format!(
                "extended attribute {name:?}: the kernel's namespaces are not kept in a bucket"
            ),
        ));
    }
    let rest = name.strip_prefix("user.").unwrap_or(name);
    if rest.is_empty()
        || rest
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | ',' | '\\'))
    {
        return Err(FsError::new(
            FsErrorKind::InvalidName,
            format!("extended attribute {name:?}: the name cannot be stored"),
        ));
    }
    Ok(())
}

/// `sec`, or `sec.nnnnnnnnn` when there are nanoseconds (s3fs's form, which rclone reads too); whole seconds in
/// [`TimeFormat::WholeSeconds`]. `None` before the epoch (no tool stores those).
pub fn format_time(time: SystemTime, format: TimeFormat) -> Option<String> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    Some(match (format, since.subsec_nanos()) {
        (TimeFormat::WholeSeconds, _) | (_, 0) => since.as_secs().to_string(),
        (TimeFormat::Nanoseconds, nanos) => format!("{}.{nanos:09}", since.as_secs()),
    })
}

/// A time as it will read back from the store in `format` (whole seconds on COS).
pub fn stored_time(time: SystemTime, format: TimeFormat) -> SystemTime {
    match (format, time.duration_since(UNIX_EPOCH)) {
        (TimeFormat::WholeSeconds, Ok(since)) => UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        _ => time,
    }
}

/// Float seconds (s3fs, rclone), else RFC 3339 (rclone's `--metadata` times).
fn parse_time(value: &str) -> Option<SystemTime> {
    mtime::parse(value).or_else(|| {
        chrono::DateTime::parse_from_rfc3339(value.trim())
            .ok()
            .map(SystemTime::from)
    })
}

/// A decimal id (s3fs reads base 0: a leading `0` is octal, `0x` hex).
fn parse_id(value: &str) -> Option<u32> {
    parse_base0(value.trim())
}

/// `st_mode` as s3fs reads it (base 0). A decimal reading that gives no valid file type but an octal one does is
/// rclone's `--metadata` form (`100644`, octal without the leading `0`).
fn parse_mode(value: &str) -> Option<u32> {
    let value = value.trim();
    let mode = parse_base0(value)?;
    if plausible(mode) {
        return Some(mode);
    }
    parse_octal(value).filter(|m| plausible(*m) && m & S_IFMT != 0)
}

/// Fits in `st_mode` (16 bits) with no file type or a valid one.
fn plausible(mode: u32) -> bool {
    mode <= 0o177_777 && (mode & S_IFMT == 0 || valid_type(mode))
}

fn parse_octal(value: &str) -> Option<u32> {
    u32::from_str_radix(value.trim(), 8).ok()
}

fn parse_base0(value: &str) -> Option<u32> {
    if let Some(hex) = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        return u32::from_str_radix(hex, 16).ok();
    }
    if value.len() > 1 && value.starts_with('0') {
        return u32::from_str_radix(&value[1..], 8).ok();
    }
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The file types `st_mode` can carry: FIFO, character device, directory, block device, file, link, socket.
fn valid_type(mode: u32) -> bool {
    matches!(
        mode & S_IFMT,
        0o010_000 | 0o020_000 | 0o040_000 | 0o060_000 | 0o100_000 | 0o120_000 | 0o140_000
    )
}

/// s3fs's `x-amz-meta-xattr`: URL-encoded `{"name":"base64",…}`. Entries that do not parse are skipped, as
/// s3fs skips them.
fn parse_xattrs(value: &str) -> BTreeMap<String, Vec<u8>> {
    let decoded = percent_decode_str(value).decode_utf8_lossy();
    let (Some(start), Some(end)) = (decoded.find('{'), decoded.rfind('}')) else {
        return BTreeMap::new();
    };
    if end <= start {
        return BTreeMap::new();
    }
    decoded[start + 1..end]
        .split(',')
        .filter_map(|pair| {
            let (name, value) = pair.rsplit_once(':')?;
            let name = unquote(name)?;
            let value = unquote(value)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .ok()?;
            Some((name.to_string(), bytes))
        })
        .collect()
}

/// The text between the first and the last `"`, which must hold no other (as s3fs requires).
fn unquote(text: &str) -> Option<&str> {
    let text = text.trim();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('"')).then_some(inner)
}

fn format_xattrs(xattrs: &BTreeMap<String, Vec<u8>>) -> String {
    let body: Vec<String> = xattrs
        .iter()
        .map(|(name, value)| {
            format!(
                "\"{name}\":\"{}\"",
                base64::engine::general_purpose::STANDARD.encode(value)
            )
        })
        .collect();
    let json = format!("{{{}}}", body.join(","));
    utf8_percent_encode(&json, XATTR_ENCODE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    fn user(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_what_s3fs_writes() {
        let attrs = FileAttrs::from_user_metadata(&user(&[
            ("mtime", "1700000000.123456789"),
            ("ctime", "1700000001"),
            ("atime", "1700000002"),
            ("mode", "33261"),
            ("uid", "1000"),
            ("gid", "100"),
            (
                "xattr",
                "%7B%22user.a%22%3A%22aGVsbG8%3D%22%2C%22user.b%22%3A%22%22%7D",
            ),
        ]));
        assert_eq!(attrs.mtime, Some(at(1_700_000_000, 123_456_789)));
        assert_eq!(attrs.ctime, Some(at(1_700_000_001, 0)));
        assert_eq!(attrs.atime, Some(at(1_700_000_002, 0)));
        assert_eq!(attrs.mode, Some(0o755));
        assert_eq!((attrs.uid, attrs.gid), (Some(1000), Some(100)));
        assert_eq!(attrs.object_kind(), FileKind::File);
        assert_eq!(
            attrs.xattrs.get("user.a").map(Vec::as_slice),
            Some(&b"hello"[..])
        );
        assert_eq!(
            attrs.xattrs.get("user.b").map(Vec::as_slice),
            Some(&b""[..])
        );
        let link = FileAttrs::from_user_metadata(&user(&[("mode", "41471")]));
        assert_eq!(link.object_kind(), FileKind::Symlink);
        assert_eq!(link.mode, Some(0o777));
        let fifo = FileAttrs::from_user_metadata(&user(&[("mode", "4516")]));
        assert_eq!(fifo.object_kind(), FileKind::Special);
        assert_eq!((fifo.file_type, fifo.mode), (Some(S_IFIFO), Some(0o644)));
    }

    #[test]
    fn reads_what_rclone_writes() {
        let attrs = FileAttrs::from_user_metadata(&user(&[
            ("mtime", "1700000000.5"),
            ("atime", "2023-11-14T22:13:20.25Z"),
            // `rclone --metadata` from a local disk: octal without the leading 0.
            ("mode", "100664"),
        ]));
        assert_eq!(attrs.mtime, Some(at(1_700_000_000, 500_000_000)));
        assert_eq!(attrs.atime, Some(at(1_700_000_000, 250_000_000)));
        assert_eq!(attrs.mode, Some(0o664));
        let dir = FileAttrs::from_user_metadata(&user(&[("mode", "40755")]));
        assert_eq!(dir.mode, Some(0o755));
    }

    #[test]
    fn fallbacks_and_base_zero() {
        let attrs = FileAttrs::from_user_metadata(&user(&[
            ("goog-reserved-file-mtime", "1700000000"),
            ("goog-reserved-posix-mode", "644"),
            ("owner", "7"),
            ("group", "0x10"),
        ]));
        assert_eq!(attrs.mtime, Some(at(1_700_000_000, 0)));
        assert_eq!(attrs.mode, Some(0o644));
        assert_eq!((attrs.uid, attrs.gid), (Some(7), Some(16)));
        assert_eq!(
            FileAttrs::from_user_metadata(&user(&[("mode", "0100600")])).mode,
            Some(0o600)
        );
        // Garbage is ignored, not an error.
        let junk = FileAttrs::from_user_metadata(&user(&[
            ("mtime", "yesterday"),
            ("mode", "rwx"),
            ("uid", "-1"),
            ("xattr", "not json"),
        ]));
        assert_eq!(junk, FileAttrs::default());
    }

    #[test]
    fn writes_what_s3fs_and_rclone_read_and_round_trips() {
        let mut attrs = FileAttrs {
            mode: Some(0o4755),
            uid: Some(1000),
            gid: Some(1000),
            mtime: Some(at(1_700_000_000, 5)),
            atime: Some(at(1_700_000_001, 0)),
            ctime: None,
            file_type: Some(S_IFREG),
            rdev: None,
            xattrs: BTreeMap::new(),
        };
        attrs
            .xattrs
            .insert("user.note".into(), b"a,b:\"c\"\0".to_vec());
        let mut written = user(&[("md5chksum", "keep me")]);
        attrs.write_user_metadata(FileKind::File, TimeFormat::Nanoseconds, &mut written);
        assert_eq!(written["mtime"], "1700000000.000000005");
        assert_eq!(written["atime"], "1700000001");
        assert_eq!(written["mode"], (0o104_755).to_string());
        assert_eq!(written["uid"], "1000");
        assert_eq!(written["md5chksum"], "keep me");
        assert!(written["xattr"]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"%.-_~/".contains(&b)));
        assert!(!written.contains_key("ctime"));
        assert_eq!(FileAttrs::from_user_metadata(&written), attrs);

        let mut cos = BTreeMap::new();
        attrs.write_user_metadata(FileKind::Directory, TimeFormat::WholeSeconds, &mut cos);
        assert_eq!(cos["mtime"], "1700000000");
        assert_eq!(cos["mode"], (0o044_755).to_string());

        // Removing the last extended attribute removes the entry.
        attrs.xattrs.clear();
        attrs.write_user_metadata(FileKind::File, TimeFormat::Nanoseconds, &mut written);
        assert!(!written.contains_key("xattr"));

        let mut link = BTreeMap::new();
        FileAttrs::default().write_user_metadata(
            FileKind::Symlink,
            TimeFormat::Nanoseconds,
            &mut link,
        );
        assert_eq!(link["mode"], "41471");
    }

    #[test]
    fn changes_set_the_change_time() {
        let now = at(1_800_000_000, 0);
        let mut attrs = FileAttrs::default();
        attrs.apply(
            &AttrChange {
                atime: Some(at(5, 0)),
                ..AttrChange::default()
            },
            now,
        );
        assert_eq!((attrs.atime, attrs.ctime), (Some(at(5, 0)), Some(now)));
        attrs.apply(
            &AttrChange {
                mode: Some(0o100_600),
                ..AttrChange::default()
            },
            now,
        );
        assert_eq!((attrs.mode, attrs.ctime), (Some(0o600), Some(now)));
    }

    #[test]
    fn a_new_version_keeps_mode_owner_xattrs_and_access_time_not_the_other_times() {
        let old = FileAttrs {
            mode: Some(0o640),
            uid: Some(7),
            gid: Some(8),
            mtime: Some(at(10, 0)),
            atime: Some(at(20, 0)),
            ctime: Some(at(30, 0)),
            xattrs: BTreeMap::from([("user.a".to_string(), b"1".to_vec())]),
            ..FileAttrs::default()
        };
        let new = old.inherited();
        assert_eq!(
            (new.mode, new.uid, new.gid, new.atime),
            (Some(0o640), Some(7), Some(8), Some(at(20, 0)))
        );
        assert_eq!((new.mtime, new.ctime), (None, None));
        assert_eq!(new.xattrs, old.xattrs);
        let link = FileAttrs {
            file_type: Some(S_IFLNK),
            mode: Some(0o777),
            ..FileAttrs::default()
        };
        assert_eq!(
            link.inherited().mode,
            None,
            "what replaces a link is a plain file"
        );
    }

    #[test]
    fn names_and_sizes() {
        assert!(check_xattr_name("user.comment").is_ok());
        assert!(
            check_xattr_name("key1").is_ok(),
            "no namespace, as s3fs keeps them"
        );
        assert_eq!(
            check_xattr_name("security.capability").unwrap_err().kind(),
            FsErrorKind::Unsupported
        );
        for bad in ["user.", "user.a,b", "user.\"", "user.a\nb"] {
            assert_eq!(
                check_xattr_name(bad).unwrap_err().kind(),
                FsErrorKind::InvalidName,
                "{bad:?}"
            );
        }
        let small = user(&[("mtime", "1")]);
        assert!(check_size(&small, "/f").is_ok());
        let big = user(&[("xattr", &"x".repeat(MAX_USER_METADATA))]);
        assert_eq!(
            check_size(&big, "/f").unwrap_err().kind(),
            FsErrorKind::NoSpace
        );
        assert_eq!(stored_time(at(1, 999), TimeFormat::WholeSeconds), at(1, 0));
    }
}
