//! Listing formats: `LIST` lines in vsftpd's layout, `NLST` names, and RFC 3659 `MLSD`/`MLST` fact lines.
//!
//! Everything here is pure: the current time is passed in, so a test pins it. Formatters append to a `String` so a
//! page of entries becomes one buffer (and one write on the data connection); the session encodes the buffer for
//! the client ([`super::encoding::encode`]).
//!
//! A name containing CR, LF or NUL is never listed: each formatter refuses it with [`UnlistableName`] and writes
//! nothing. Such a line would split in two on the wire (or be cut short by C clients), so the client would
//! misread the whole listing; the session skips the entry and logs it. Our own commands cannot create such names
//! (see [`super::encoding::decode`]); only another writer to the bucket can.

use std::fmt::Write as _;
use std::ops::BitOr;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, Timelike, Utc};
use thiserror::Error;

use crate::bucketfs::{FileKind, Metadata, Permissions, Policy};

/// A name that would break a listing line (it contains CR, LF or NUL).
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("name contains CR, LF or NUL and cannot be listed")]
pub struct UnlistableName;

/// Whether `name` can appear in a listing line.
pub fn is_listable(name: &str) -> bool {
    !name.contains(['\r', '\n', '\0'])
}

fn check(name: &str) -> Result<(), UnlistableName> {
    if is_listable(name) {
        Ok(())
    } else {
        Err(UnlistableName)
    }
}

/// How one listing is written: the one formatter behind LIST, NLST, MLSD and STAT.
#[derive(Debug, Clone)]
pub enum LineFormat {
    /// `ls -l` lines, dated relative to `now`.
    List { now: SystemTime },
    /// Bare names.
    Nlst,
    /// RFC 3659 fact lines of the entries of `dir` (its display path, for the `unique` fact).
    Mlsd { format: MlsxFormat, dir: String },
}

impl LineFormat {
    /// Appends the line of one entry (with CRLF); nothing when the name cannot be listed.
    pub fn write(
        &self,
        out: &mut String,
        name: &str,
        meta: &Metadata,
    ) -> Result<(), UnlistableName> {
        self.write_marked(out, name, meta, false)
    }

    /// `write`; `partial` marks an upload kept for resume where the format can (MLSD's `x.partial` fact).
    pub fn write_marked(
        &self,
        out: &mut String,
        name: &str,
        meta: &Metadata,
        partial: bool,
    ) -> Result<(), UnlistableName> {
        match self {
            LineFormat::List { now } => list_line(out, name, meta, *now),
            LineFormat::Nlst => nlst_line(out, name),
            LineFormat::Mlsd { format, dir } => format.mlsd_line_of(out, dir, name, meta, partial),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// LIST

/// vsftpd (and GNU `ls`) show the time of day for files younger than about six months, the year otherwise.
/// vsftpd's exact threshold: 182 days.
const RECENT: i64 = 60 * 60 * 24 * 182;

/// vsftpd shows any future date with the year. The store's clock and ours differ by a little, so a file uploaded a
/// second ago could look "future"; up to an hour ahead still counts as recent.
const FUTURE_SKEW: i64 = 60 * 60;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Appends one `LIST` line for `name`, laid out as vsftpd's `ls.c` does:
///
/// ```text
/// drwxr-xr-x    1 ftp      ftp             0 Jan 02 03:04 name
/// -rw-r--r--    1 ftp      ftp          1234 Jan 02  2023 name
/// ```
///
/// Mode, a space, the link count right-aligned in 4, a space, owner and group left-aligned in 8 each with a space
/// after each, the size right-aligned in 8 (wider sizes just take more room), a space, the date (`%b %d %H:%M` or
/// `%b %d  %Y`, always 12 characters, in UTC), a space, the name, CRLF. lftp, curl and FileZilla all parse this.
/// A missing mtime (implicit directories) shows as the Unix epoch.
pub fn list_line(
    out: &mut String,
    name: &str,
    meta: &Metadata,
    now: SystemTime,
) -> Result<(), UnlistableName> {
    check(name)?;
    let mode = mode_string(meta);
    // Directories have no size on a store; `ls` would show a block count, 0 is honest.
    let size = if meta.is_dir() { 0 } else { meta.size };
    let _ = write!(out, "{mode} {:>4} {:<8} {:<8} {size:>8} ", 1, "ftp", "ftp");
    list_date(out, meta.mtime, now);
    out.push(' ');
    out.push_str(name);
    out.push_str("\r\n");
    Ok(())
}

/// `drwxr-xr-x` / `-rw-r--r--`, or the file's own permission bits where they are known. FTP shows a symbolic
/// link as the file it is in the store (its content is the target), with a file's default bits.
fn mode_string(meta: &Metadata) -> String {
    let (kind, default) = match meta.kind {
        FileKind::Directory => ('d', 0o755),
        FileKind::File | FileKind::Symlink | FileKind::Special => ('-', 0o644),
    };
    let bits = match meta.kind {
        FileKind::Symlink | FileKind::Special => default,
        _ => meta.attrs.as_ref().and_then(|a| a.mode).unwrap_or(default),
    };
    let mut mode = String::with_capacity(10);
    mode.push(kind);
    for (shift, special, special_char) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let triple = (bits >> shift) & 0o7;
        mode.push(if triple & 4 != 0 { 'r' } else { '-' });
        mode.push(if triple & 2 != 0 { 'w' } else { '-' });
        let exec = triple & 1 != 0;
        mode.push(match (bits & special != 0, exec) {
            (true, true) => special_char,
            (true, false) => special_char.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    mode
}

fn list_date(out: &mut String, mtime: Option<SystemTime>, now: SystemTime) {
    // A missing or unprintable mtime shows as the epoch, in the year form like any old date.
    let (when, recent) = match mtime.and_then(|t| Some((civil(t)?, unix_seconds(t)?))) {
        Some((when, t)) => {
            let recent = unix_seconds(now)
                .is_some_and(|now| (-FUTURE_SKEW..=RECENT).contains(&now.saturating_sub(t)));
            (when, recent)
        }
        None => (DateTime::UNIX_EPOCH, false),
    };
    let month = MONTHS.get(when.month0() as usize).copied().unwrap_or("Jan");
    if recent {
        let _ = write!(
            out,
            "{month} {:02} {:02}:{:02}",
            when.day(),
            when.hour(),
            when.minute()
        );
    } else {
        let _ = write!(out, "{month} {:02}  {:04}", when.day(), when.year());
    }
}

// ---------------------------------------------------------------------------------------------------------------
// NLST

/// Appends one `NLST` line: the name and CRLF.
pub fn nlst_line(out: &mut String, name: &str) -> Result<(), UnlistableName> {
    check(name)?;
    out.push_str(name);
    out.push_str("\r\n");
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// MLSD / MLST (RFC 3659)

/// `perm` letters (RFC 3659 §7.5.5) of what the core says the account may do to an entry. Files: `a` append,
/// `d` delete, `f` rename, `r` retrieve, `w` store (an overwrite). Directories: `c` create files, `d` delete,
/// `e` enter, `f` rename, `l` list, `m` make directories, `p` purge (delete contents).
fn perm_letters(kind: FileKind, p: Permissions) -> String {
    match kind {
        FileKind::File | FileKind::Symlink | FileKind::Special => letters(&[
            ('a', p.append),
            ('d', p.delete),
            ('f', p.rename),
            ('r', p.read),
            ('w', p.write),
        ]),
        FileKind::Directory => letters(&[
            ('c', p.create),
            ('d', p.delete),
            ('e', p.enter),
            ('f', p.rename),
            ('l', p.list),
            ('m', p.create),
            ('p', p.delete),
        ]),
    }
}

fn letters(table: &[(char, bool)]) -> String {
    table
        .iter()
        .filter(|(_, on)| *on)
        .map(|(c, _)| *c)
        .collect()
}

/// A set of MLSx facts: the ones we support, and the ones the client enabled with `OPTS MLST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Facts(u8);

impl Facts {
    pub const NONE: Facts = Facts(0);
    pub const TYPE: Facts = Facts(1);
    pub const SIZE: Facts = Facts(1 << 1);
    pub const MODIFY: Facts = Facts(1 << 2);
    pub const PERM: Facts = Facts(1 << 3);
    pub const UNIQUE: Facts = Facts(1 << 4);
    /// Every fact we support; also the default set (RFC 3659 lets the server choose it).
    pub const ALL: Facts = Facts(0b1_1111);

    /// In the order they are listed in `FEAT` and written in entries.
    const NAMES: [(Facts, &'static str); 5] = [
        (Facts::TYPE, "type"),
        (Facts::SIZE, "size"),
        (Facts::MODIFY, "modify"),
        (Facts::PERM, "perm"),
        (Facts::UNIQUE, "unique"),
    ];

    pub fn contains(self, other: Facts) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses the argument of `OPTS MLST`: fact names each followed by `;` (`type;size;modify;`), case-insensitive.
    /// Unknown facts are ignored and an empty list enables none (RFC 3659 §7.9).
    pub fn parse(list: &str) -> Facts {
        list.split(';')
            .map(str::trim)
            .filter_map(|name| {
                Self::NAMES
                    .iter()
                    .find(|(_, known)| known.eq_ignore_ascii_case(name))
                    .map(|(fact, _)| *fact)
            })
            .fold(Facts::NONE, BitOr::bitor)
    }

    /// The enabled facts as `OPTS MLST` lists them: `type;size;`.
    pub fn to_list(self) -> String {
        Self::NAMES
            .iter()
            .filter(|(fact, _)| self.contains(*fact))
            .map(|(_, name)| format!("{name};"))
            .collect()
    }

    /// The text of the `200` answer to `OPTS MLST` (RFC 3659 §7.9): `MLST OPTS type;size;`, or `MLST OPTS` when
    /// no fact is enabled.
    pub fn opts_reply_text(self) -> String {
        if self.is_empty() {
            "MLST OPTS".to_owned()
        } else {
            format!("MLST OPTS {}", self.to_list())
        }
    }

    /// The `FEAT` line (RFC 3659 §7.8): every supported fact, the enabled ones marked with `*`:
    /// `MLST type*;size*;modify*;perm*;unique*;`.
    pub fn feat_line(self) -> String {
        let mut line = String::from("MLST ");
        for (fact, name) in Self::NAMES {
            line.push_str(name);
            if self.contains(fact) {
                line.push('*');
            }
            line.push(';');
        }
        line
    }
}

impl Default for Facts {
    fn default() -> Self {
        Facts::ALL
    }
}

impl BitOr for Facts {
    type Output = Facts;

    fn bitor(self, rhs: Facts) -> Facts {
        Facts(self.0 | rhs.0)
    }
}

/// How MLSD and MLST entries are written for one session: the facts the client enabled and the account's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MlsxFormat {
    pub facts: Facts,
    pub policy: Policy,
}

impl MlsxFormat {
    /// Appends one MLSD line: `type=file;size=5;modify=20240102030405;perm=r;unique=…; name` and CRLF.
    /// `dir` is the absolute virtual path of the listed directory; with `name` it gives the `unique` fact, which is
    /// the same as MLST gives for the joined path.
    pub fn mlsd_line(
        &self,
        out: &mut String,
        dir: &str,
        name: &str,
        meta: &Metadata,
    ) -> Result<(), UnlistableName> {
        self.mlsd_line_of(out, dir, name, meta, false)
    }

    /// `mlsd_line`; `partial` adds `x.partial=true;` (an upload of the name was interrupted and is kept for resume:
    /// `size` is what the store holds so far).
    pub fn mlsd_line_of(
        &self,
        out: &mut String,
        dir: &str,
        name: &str,
        meta: &Metadata,
        partial: bool,
    ) -> Result<(), UnlistableName> {
        check(name)?;
        let mut hash = Fnv1a::new();
        hash.write(dir.as_bytes());
        if !dir.ends_with('/') {
            hash.write(b"/");
        }
        hash.write(name.as_bytes());
        self.write_facts(out, meta, hash.finish(), partial);
        out.push(' ');
        out.push_str(name);
        out.push_str("\r\n");
        Ok(())
    }

    /// The entry line of an MLST reply (RFC 3659 §7.2): a leading space, the facts, a space and `path`, without
    /// CRLF, since it goes in the middle of a multi-line [`super::reply::Reply`]. `path` should be the absolute
    /// virtual path: it is also what the `unique` fact is computed from.
    pub fn mlst_line(&self, path: &str, meta: &Metadata) -> Result<String, UnlistableName> {
        self.mlst_line_of(path, meta, false)
    }

    /// `mlst_line`, with `x.partial=true;` for an upload kept for resume.
    pub fn mlst_line_of(
        &self,
        path: &str,
        meta: &Metadata,
        partial: bool,
    ) -> Result<String, UnlistableName> {
        check(path)?;
        let mut hash = Fnv1a::new();
        hash.write(path.as_bytes());
        let mut line = String::from(" ");
        self.write_facts(&mut line, meta, hash.finish(), partial);
        line.push(' ');
        line.push_str(path);
        Ok(line)
    }

    fn write_facts(&self, out: &mut String, meta: &Metadata, unique: u64, partial: bool) {
        let facts = self.facts;
        if facts.contains(Facts::TYPE) {
            out.push_str(match meta.kind {
                FileKind::Directory => "type=dir;",
                FileKind::File | FileKind::Symlink | FileKind::Special => "type=file;",
            });
        }
        // RFC 3659 §7.5.7: size applies to non-directory files.
        if facts.contains(Facts::SIZE) && !meta.is_dir() {
            let _ = write!(out, "size={};", meta.size);
        }
        // Implicit directories have no mtime: a fact that does not apply is left out, not invented.
        if facts.contains(Facts::MODIFY) {
            if let Some(time) = meta.mtime.and_then(time_val) {
                let _ = write!(out, "modify={time};");
            }
        }
        if facts.contains(Facts::PERM) {
            let letters = perm_letters(meta.kind, self.policy.permissions(meta.kind));
            let _ = write!(out, "perm={letters};");
        }
        if facts.contains(Facts::UNIQUE) {
            let _ = write!(out, "unique={unique:016x};");
        }
        // RFC 3659 §7.5 leaves `X.`-prefixed facts to private use; clients ignore facts they do not know.
        if partial {
            out.push_str("x.partial=true;");
        }
    }
}

/// FNV-1a, 64 bits: a stable hash of the virtual path for the `unique` fact. Stable across sessions and restarts
/// (unlike `DefaultHasher`, whose output may change between Rust releases), and distinct per path, which the ETag
/// is not: two files with the same content share an ETag, and a client must not think they are one file.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Time

/// RFC 3659 `time-val` in UTC, `YYYYMMDDHHMMSS`: the `modify` fact and the `213` answer to MDTM. `None` for a time
/// outside years 0–9999, which has no 14-digit form.
pub fn time_val(t: SystemTime) -> Option<String> {
    let when = civil(t)?;
    Some(format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        when.year(),
        when.month(),
        when.day(),
        when.hour(),
        when.minute(),
        when.second()
    ))
}

/// Whole seconds since the Unix epoch, rounded down (also before 1970); `None` beyond `i64`.
fn unix_seconds(t: SystemTime) -> Option<i64> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).ok(),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).ok()?;
            let partial = i64::from(before.subsec_nanos() > 0);
            0i64.checked_sub(secs)?.checked_sub(partial)
        }
    }
}

/// The UTC calendar time of `t`, if its year has four digits. Never panics, unlike `From<SystemTime>`.
fn civil(t: SystemTime) -> Option<DateTime<Utc>> {
    let when = DateTime::from_timestamp(unix_seconds(t)?, 0)?;
    (0..=9999).contains(&when.year()).then_some(when)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Authority;

    /// 2024-01-02 03:04:05 UTC.
    const T0: u64 = 1_704_164_645;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn file(size: u64, mtime: Option<SystemTime>) -> Metadata {
        Metadata {
            kind: FileKind::File,
            size,
            mtime,
            etag: Some("d41d8cd98f00b204e9800998ecf8427e".to_owned()),
            modified: mtime,
            attrs: None,
        }
    }

    fn dir(mtime: Option<SystemTime>) -> Metadata {
        Metadata {
            kind: FileKind::Directory,
            size: 4096,
            mtime,
            etag: None,
            modified: mtime,
            attrs: None,
        }
    }

    fn list(name: &str, meta: &Metadata, now: SystemTime) -> String {
        let mut out = String::new();
        list_line(&mut out, name, meta, now).unwrap();
        out
    }

    #[test]
    fn list_line_of_a_recent_directory_matches_vsftpd() {
        assert_eq!(
            list("name", &dir(Some(at(T0))), at(T0 + 3600)),
            "drwxr-xr-x    1 ftp      ftp             0 Jan 02 03:04 name\r\n"
        );
    }

    #[test]
    fn list_line_of_a_file() {
        assert_eq!(
            list("a b.txt", &file(1234, Some(at(T0))), at(T0)),
            "-rw-r--r--    1 ftp      ftp          1234 Jan 02 03:04 a b.txt\r\n"
        );
    }

    #[test]
    fn list_line_sizes_wider_than_the_column_push_the_date_right() {
        assert_eq!(
            list("big", &file(123_456_789_012, Some(at(T0))), at(T0)),
            "-rw-r--r--    1 ftp      ftp      123456789012 Jan 02 03:04 big\r\n"
        );
        assert_eq!(
            list("max", &file(u64::MAX, Some(at(T0))), at(T0)),
            "-rw-r--r--    1 ftp      ftp      18446744073709551615 Jan 02 03:04 max\r\n"
        );
    }

    #[test]
    fn list_date_switches_to_the_year_after_182_days() {
        let day = 24 * 3600;
        let now = at(T0 + 182 * day);
        assert_eq!(
            list("f", &file(0, Some(at(T0))), now),
            "-rw-r--r--    1 ftp      ftp             0 Jan 02 03:04 f\r\n",
            "exactly 182 days is still recent"
        );
        let now = at(T0 + 182 * day + 1);
        assert_eq!(
            list("f", &file(0, Some(at(T0))), now),
            "-rw-r--r--    1 ftp      ftp             0 Jan 02  2024 f\r\n"
        );
    }

    #[test]
    fn list_date_of_the_future_beyond_an_hour_shows_the_year() {
        let mtime = Some(at(T0));
        assert_eq!(
            list("f", &file(0, mtime), at(T0 - 3600)),
            "-rw-r--r--    1 ftp      ftp             0 Jan 02 03:04 f\r\n",
            "an hour of clock skew is tolerated"
        );
        assert_eq!(
            list("f", &file(0, mtime), at(T0 - 3601)),
            "-rw-r--r--    1 ftp      ftp             0 Jan 02  2024 f\r\n"
        );
    }

    #[test]
    fn list_date_pads_days_with_zero_and_uses_utc() {
        // 2023-11-09 23:59:59 UTC.
        let t = 1_699_574_399;
        assert_eq!(
            list("f", &file(7, Some(at(t))), at(t + 60)),
            "-rw-r--r--    1 ftp      ftp             7 Nov 09 23:59 f\r\n"
        );
    }

    #[test]
    fn list_without_mtime_shows_the_epoch() {
        assert_eq!(
            list("implicit", &dir(None), at(T0)),
            "drwxr-xr-x    1 ftp      ftp             0 Jan 01  1970 implicit\r\n"
        );
    }

    #[test]
    fn list_of_times_before_1970_and_far_future() {
        let before = UNIX_EPOCH - Duration::from_millis(1);
        assert_eq!(
            list("old", &file(0, Some(before)), at(T0)),
            "-rw-r--r--    1 ftp      ftp             0 Dec 31  1969 old\r\n"
        );
        // Year 10000 and beyond have no 4-digit year: the epoch stands in.
        let far = at(253_402_300_800);
        assert_eq!(
            list("far", &file(0, Some(far)), at(T0)),
            "-rw-r--r--    1 ftp      ftp             0 Jan 01  1970 far\r\n"
        );
        let farthest = UNIX_EPOCH + Duration::from_secs(i64::MAX as u64);
        assert_eq!(
            list("farthest", &file(0, Some(farthest)), farthest),
            "-rw-r--r--    1 ftp      ftp             0 Jan 01  1970 farthest\r\n"
        );
    }

    #[test]
    fn list_refuses_names_with_line_breaks_and_writes_nothing() {
        let mut out = String::from("kept\r\n");
        for name in ["a\rb", "a\nb", "a\r\n226 fake", "nul\0"] {
            assert_eq!(
                list_line(&mut out, name, &file(1, None), at(T0)),
                Err(UnlistableName)
            );
            assert_eq!(nlst_line(&mut out, name), Err(UnlistableName));
            assert_eq!(
                MlsxFormat {
                    facts: Facts::ALL,
                    policy: RW
                }
                .mlsd_line(&mut out, "/", name, &file(1, None)),
                Err(UnlistableName)
            );
            assert_eq!(
                MlsxFormat {
                    facts: Facts::ALL,
                    policy: RW
                }
                .mlst_line(name, &file(1, None)),
                Err(UnlistableName)
            );
        }
        assert_eq!(out, "kept\r\n");
        assert!(is_listable("tab\tand spaces are fine"));
    }

    #[test]
    fn nlst_lines_are_bare_names() {
        let mut out = String::new();
        nlst_line(&mut out, "a.txt").unwrap();
        nlst_line(&mut out, "目录").unwrap();
        nlst_line(&mut out, " lead").unwrap();
        assert_eq!(out, "a.txt\r\n目录\r\n lead\r\n");
    }

    const RW: Policy = Policy {
        authority: Authority::ReadWrite,
        delete_enable: true,
    };

    #[test]
    fn mlsd_line_of_a_file_with_all_facts() {
        let mut out = String::new();
        let format = MlsxFormat {
            facts: Facts::ALL,
            policy: RW,
        };
        format
            .mlsd_line(&mut out, "/", "a.txt", &file(5, Some(at(T0))))
            .unwrap();
        let unique = {
            let mut h = Fnv1a::new();
            h.write(b"/a.txt");
            h.finish()
        };
        assert_eq!(
            out,
            format!(
                "type=file;size=5;modify=20240102030405;perm=adfrw;unique={unique:016x}; a.txt\r\n"
            )
        );
    }

    #[test]
    fn mlsd_line_of_a_directory_has_no_size() {
        let mut out = String::new();
        let format = MlsxFormat {
            facts: Facts::TYPE | Facts::SIZE | Facts::MODIFY | Facts::PERM,
            policy: RW,
        };
        format
            .mlsd_line(&mut out, "/x", "sub", &dir(Some(at(T0))))
            .unwrap();
        assert_eq!(out, "type=dir;modify=20240102030405;perm=cdeflmp; sub\r\n");
    }

    #[test]
    fn mlsd_line_of_an_implicit_directory_has_no_modify() {
        let mut out = String::new();
        let format = MlsxFormat {
            facts: Facts::TYPE | Facts::MODIFY,
            policy: RW,
        };
        format.mlsd_line(&mut out, "/", "d", &dir(None)).unwrap();
        assert_eq!(out, "type=dir; d\r\n");
    }

    #[test]
    fn mlsd_with_no_facts_is_a_space_and_the_name() {
        let mut out = String::new();
        let format = MlsxFormat {
            facts: Facts::NONE,
            policy: RW,
        };
        format
            .mlsd_line(&mut out, "/", " spaced name ", &file(1, None))
            .unwrap();
        assert_eq!(out, "  spaced name \r\n");
    }

    #[test]
    fn perm_letters_follow_the_policy_table() {
        let cases = [
            // (authority, delete_enable) → file letters, dir letters
            ((Authority::Read, false), "r", "el"),
            ((Authority::Read, true), "r", "el"),
            ((Authority::Write, false), "af", "cefm"),
            ((Authority::Write, true), "adfw", "cdefmp"),
            ((Authority::ReadWrite, false), "afr", "ceflm"),
            ((Authority::ReadWrite, true), "adfrw", "cdeflmp"),
        ];
        for ((authority, delete_enable), file_letters, dir_letters) in cases {
            let policy = Policy::new(authority, delete_enable);
            let letters = |kind| perm_letters(kind, policy.permissions(kind));
            assert_eq!(letters(FileKind::File), file_letters, "{policy:?}");
            assert_eq!(letters(FileKind::Directory), dir_letters, "{policy:?}");
        }
    }

    #[test]
    fn unique_is_the_same_for_mlsd_and_mlst_and_differs_per_path() {
        let format = MlsxFormat {
            facts: Facts::UNIQUE,
            policy: RW,
        };
        let meta = file(1, None);
        let mut a = String::new();
        format.mlsd_line(&mut a, "/d", "f", &meta).unwrap();
        let mut root = String::new();
        format.mlsd_line(&mut root, "/", "f", &meta).unwrap();
        let mlst = format.mlst_line("/d/f", &meta).unwrap();
        let mlst_root = format.mlst_line("/f", &meta).unwrap();
        assert_eq!(a, format!("{} f\r\n", &mlst[1..mlst.len() - 5]));
        assert_eq!(
            root,
            format!("{} f\r\n", &mlst_root[1..mlst_root.len() - 3])
        );
        assert_ne!(a, root);
        // FNV-1a 64 of "/f", computed independently.
        assert_eq!(mlst_root, " unique=07d66007b49ccd48; /f");
    }

    #[test]
    fn mlst_line_has_a_leading_space_and_no_crlf() {
        let format = MlsxFormat {
            facts: Facts::TYPE | Facts::SIZE | Facts::MODIFY,
            policy: RW,
        };
        assert_eq!(
            format
                .mlst_line("/dir/a.txt", &file(42, Some(at(T0))))
                .unwrap(),
            " type=file;size=42;modify=20240102030405; /dir/a.txt"
        );
    }

    #[test]
    fn facts_parse_is_case_insensitive_and_ignores_unknown_facts() {
        assert_eq!(Facts::parse("type;size;"), Facts::TYPE | Facts::SIZE);
        assert_eq!(Facts::parse("Type;SIZE;Modify;perm;unique;"), Facts::ALL);
        assert_eq!(
            Facts::parse("type;UNIX.mode;media-type;size"),
            Facts::TYPE | Facts::SIZE
        );
        assert_eq!(Facts::parse(""), Facts::NONE);
        assert_eq!(Facts::parse(";;;"), Facts::NONE);
        assert_eq!(
            Facts::parse(" modify ; perm ;"),
            Facts::MODIFY | Facts::PERM
        );
    }

    #[test]
    fn facts_render_for_feat_and_opts() {
        assert_eq!(Facts::default(), Facts::ALL);
        assert_eq!(
            Facts::ALL.feat_line(),
            "MLST type*;size*;modify*;perm*;unique*;"
        );
        assert_eq!(
            (Facts::TYPE | Facts::MODIFY).feat_line(),
            "MLST type*;size;modify*;perm;unique;"
        );
        assert_eq!(
            (Facts::SIZE | Facts::TYPE).opts_reply_text(),
            "MLST OPTS type;size;"
        );
        assert_eq!(Facts::NONE.opts_reply_text(), "MLST OPTS");
        assert_eq!(Facts::ALL.to_list(), "type;size;modify;perm;unique;");
    }

    #[test]
    fn time_val_is_fourteen_digits_in_utc() {
        assert_eq!(time_val(at(T0)).as_deref(), Some("20240102030405"));
        assert_eq!(time_val(UNIX_EPOCH).as_deref(), Some("19700101000000"));
        assert_eq!(
            time_val(UNIX_EPOCH - Duration::from_secs(1)).as_deref(),
            Some("19691231235959")
        );
        assert_eq!(
            time_val(at(253_402_300_799)).as_deref(),
            Some("99991231235959")
        );
        assert_eq!(time_val(at(253_402_300_800)), None);
        assert_eq!(
            time_val(UNIX_EPOCH + Duration::from_secs(i64::MAX as u64)),
            None
        );
    }

    #[test]
    fn random_names_give_one_line_each_or_nothing() {
        const PIECES: &[&str] = &["a", " ", "\r", "\n", "\0", "\t", "中", "😀", ";", "=", "-"];
        let mut state = 0xfeed_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let format = MlsxFormat {
            facts: Facts::ALL,
            policy: RW,
        };
        for _ in 0..20_000 {
            let name: String = (0..next() % 8)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let meta = file(next() % 100_000_000, Some(at(next() % (2 * T0))));
            let mut out = String::new();
            let results = [
                list_line(&mut out, &name, &meta, at(T0)),
                nlst_line(&mut out, &name),
                format.mlsd_line(&mut out, "/d", &name, &meta),
            ];
            if is_listable(&name) {
                assert!(results.iter().all(Result::is_ok));
                let lines: Vec<&str> = out.split_terminator("\r\n").collect();
                assert_eq!(lines.len(), 3, "{out:?}");
                assert!(lines.iter().all(|l| !l.contains(['\r', '\n'])));
                // Sizes under 10^8 keep every column in place: the name starts at column 56.
                assert_eq!(&lines[0][56..], name, "{:?}", lines[0]);
                assert_eq!(lines[1], name);
                assert!(lines[2].ends_with(&format!("; {name}")), "{:?}", lines[2]);
            } else {
                assert!(results.iter().all(Result::is_err));
                assert_eq!(out, "");
            }
        }
    }
}
