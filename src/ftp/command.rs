//! Control-connection commands: one line of bytes → a typed [`Command`].
//!
//! [`parse`] is total: any input gives `Ok` or a [`ParseError`] that maps to a reply code, never a panic, so bad
//! input costs the client one error reply and never the session.
//!
//! Line shape (RFC 959 §5.3, read the way vsftpd reads it): the verb runs to the first space and is
//! case-insensitive; the argument is *everything* after that first space, so file names may begin or end with
//! spaces. Path arguments stay raw bytes ([`RawPath`]): the session decodes them (UTF-8, or GBK for legacy
//! clients) with [`super::encoding::decode`]. Typed arguments (numbers, addresses, single letters) are trimmed of
//! surrounding whitespace before they are read. Commands that take no argument ignore one if sent.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::time::SystemTime;

use thiserror::Error;

use super::listing::Facts;
use crate::bucketfs::digest::Algorithm;

/// The longest verb-shaped word that is reported back as [`Command::Unknown`] rather than as junk.
const MAX_VERB: usize = 16;

/// A path or name argument exactly as the client sent it (not necessarily UTF-8).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct RawPath(Vec<u8>);

impl RawPath {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl From<&[u8]> for RawPath {
    fn from(bytes: &[u8]) -> Self {
        RawPath(bytes.to_vec())
    }
}

impl From<&str> for RawPath {
    fn from(text: &str) -> Self {
        RawPath(text.as_bytes().to_vec())
    }
}

/// Shows the bytes as text with non-ASCII escaped, so traced commands stay readable.
impl fmt::Debug for RawPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawPath(\"{}\")", self.0.escape_ascii())
    }
}

/// PASS's argument. Its `Debug` is redacted, so tracing a command never logs a password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(Vec<u8>);

impl Password {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for Password {
    fn from(bytes: &[u8]) -> Self {
        Password(bytes.to_vec())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// One command from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    /// The password; empty when PASS came without one (anonymous-style clients send that).
    Pass(Password),
    /// QUIT, or its alias BYE.
    Quit,
    Syst,
    Feat,
    Opts(OptsArg),
    /// HELP, with the command asked about (upper-cased), if any.
    Help(Option<String>),
    Noop,
    /// STAT alone (server status), or STAT with a path (a LIST over the control connection).
    Stat(Option<ListArgs>),
    /// PWD or XPWD.
    Pwd,
    /// CWD or XCWD.
    Cwd(RawPath),
    /// CDUP or XCUP.
    Cdup,
    /// MKD or XMKD.
    Mkd(RawPath),
    /// RMD or XRMD.
    Rmd(RawPath),
    Dele(RawPath),
    Rnfr(RawPath),
    Rnto(RawPath),
    List(ListArgs),
    Nlst(ListArgs),
    Mlsd(Option<RawPath>),
    Mlst(Option<RawPath>),
    Size(RawPath),
    /// MDTM (RFC 3659 §3). The argument stays whole: `MDTM <time> <path>` sets the time (vsftpd's extension,
    /// ncftp and lftp send it) only when the whole argument is not itself a file, which the session finds out
    /// (see [`split_time_arg`]).
    Mdtm(RawPath),
    /// MFMT (draft-somers-ftp-mfxx): set a file's modification time.
    Mfmt {
        mtime: SystemTime,
        path: RawPath,
    },
    Retr(RawPath),
    Stor(RawPath),
    /// STOU, with the name hint some clients send.
    Stou(Option<RawPath>),
    Appe(RawPath),
    Rest(u64),
    Abor,
    Type(TransferType),
    Mode(TransferMode),
    Stru(FileStructure),
    /// ALLO; its arguments are not needed (we never preallocate) and not checked.
    Allo,
    Pasv,
    Epsv(EpsvArg),
    Port(SocketAddrV4),
    Eprt(SocketAddr),
    Auth(AuthMechanism),
    Pbsz(u64),
    Prot(ProtectionLevel),
    Site(SiteCommand),
    /// HASH (draft-bryan-ftpext-hash): the digest of a file in the session's algorithm (`OPTS HASH`), over the
    /// session's range (`RANG`).
    Hash(RawPath),
    /// RANG start end: the bytes HASH covers, `start` to `end` (exclusive); `RANG 1 0` resets to the whole file.
    Rang(u64, u64),
    /// XMD5, XSHA1, XSHA256, XSHA512, XCRC (`250 <hex>`) and MD5 (`251 <path> <hex>`): one digest of a file,
    /// optionally of `start end` given after the name.
    Digest(DigestRequest),
    /// A well-formed verb (letters only) that we do not implement, upper-cased: answer 502.
    Unknown(String),
}

impl Command {
    /// The verb, for logs and spans (aliases give their canonical name).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Quit => "QUIT",
            Command::Syst => "SYST",
            Command::Feat => "FEAT",
            Command::Opts(_) => "OPTS",
            Command::Help(_) => "HELP",
            Command::Noop => "NOOP",
            Command::Stat(_) => "STAT",
            Command::Pwd => "PWD",
            Command::Cwd(_) => "CWD",
            Command::Cdup => "CDUP",
            Command::Mkd(_) => "MKD",
            Command::Rmd(_) => "RMD",
            Command::Dele(_) => "DELE",
            Command::Rnfr(_) => "RNFR",
            Command::Rnto(_) => "RNTO",
            Command::List(_) => "LIST",
            Command::Nlst(_) => "NLST",
            Command::Mlsd(_) => "MLSD",
            Command::Mlst(_) => "MLST",
            Command::Size(_) => "SIZE",
            Command::Mdtm(_) => "MDTM",
            Command::Mfmt { .. } => "MFMT",
            Command::Retr(_) => "RETR",
            Command::Stor(_) => "STOR",
            Command::Stou(_) => "STOU",
            Command::Appe(_) => "APPE",
            Command::Rest(_) => "REST",
            Command::Abor => "ABOR",
            Command::Type(_) => "TYPE",
            Command::Mode(_) => "MODE",
            Command::Stru(_) => "STRU",
            Command::Allo => "ALLO",
            Command::Pasv => "PASV",
            Command::Epsv(_) => "EPSV",
            Command::Port(_) => "PORT",
            Command::Eprt(_) => "EPRT",
            Command::Auth(_) => "AUTH",
            Command::Pbsz(_) => "PBSZ",
            Command::Prot(_) => "PROT",
            Command::Site(_) => "SITE",
            Command::Hash(_) => "HASH",
            Command::Rang(..) => "RANG",
            Command::Digest(d) => d.verb,
            Command::Unknown(_) => "UNKNOWN",
        }
    }
}

/// The argument of LIST, NLST and STAT: the `ls`-style options clients put first (`-a`, `-l`, `-la`), then the
/// path, if any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListArgs {
    /// The option letters seen, in order (`"la"` for `-l -a` or `-la`).
    pub options: String,
    pub path: Option<RawPath>,
}

/// TYPE (RFC 959 §3.1.1). We serve `A N` and `I` (and `L 8`, which is `I`); the others parse and get 504.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    Ascii(FormatControl),
    Ebcdic(FormatControl),
    Image,
    /// Local byte size.
    Local(u8),
}

impl TransferType {
    /// Whether we serve it, and as what: `Some(true)` for binary, `Some(false)` for ASCII, `None` → 504.
    pub fn is_binary(self) -> Option<bool> {
        match self {
            TransferType::Image | TransferType::Local(8) => Some(true),
            TransferType::Ascii(FormatControl::NonPrint) => Some(false),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatControl {
    NonPrint,
    Telnet,
    CarriageControl,
}

/// MODE. Only `S` is served; the others parse and get 504.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMode {
    Stream,
    Block,
    Compressed,
    /// `MODE Z` (deflate), an extension some clients try.
    Deflate,
}

/// STRU. Only `F` is served; the others parse and get 504.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStructure {
    File,
    Record,
    Page,
}

/// The network protocol numbers of RFC 2428.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetProto {
    /// 1
    V4,
    /// 2
    V6,
}

/// EPSV's argument (RFC 2428 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    /// No argument: the protocol of the control connection.
    Any,
    /// `EPSV ALL`: from now on only EPSV; refuse PORT, EPRT and PASV.
    All,
    Protocol(NetProto),
}

/// AUTH's mechanism (RFC 2228/4217).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMechanism {
    /// `TLS`, and the older names `SSL`, `TLS-C`, `TLS-P`, all answered as TLS (as vsftpd does).
    Tls,
    /// Anything else, upper-cased: answer 504.
    Other(String),
}

/// PROT (RFC 4217 §9). We serve `C` and `P`; `S` and `E` parse and get 536/504.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectionLevel {
    Clear,
    Safe,
    Confidential,
    Private,
}

/// OPTS's argument (RFC 2389).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptsArg {
    /// `OPTS UTF8 ON` (also `UTF-8`, any case; a bare `OPTS UTF8` means on), or `OFF`.
    Utf8(bool),
    /// `OPTS MLST type;size;…`: the facts to show from now on.
    Mlst(Facts),
    /// `OPTS HASH` (ask which) or `OPTS HASH <name>` (choose HASH's algorithm).
    Hash(Option<String>),
    /// An option of another command, upper-cased: answer 501.
    Other(String),
}

/// One of the X-digest commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRequest {
    pub verb: &'static str,
    pub algorithm: Algorithm,
    /// MD5's reply names the file (`251 <path> <hex>`); the X forms answer the digest alone (`250 <hex>`).
    pub names_path: bool,
    pub path: RawPath,
    /// `start..end`, when given.
    pub range: Option<(u64, u64)>,
}

/// SITE's sub-command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteCommand {
    Help,
    /// `SITE UTIME` in either form clients send (ProFTPD's `mod_site_misc`): `<time> <path>` (lftp's "utime2"),
    /// or `<path> <atime> <mtime> <ctime> UTC` (ncftp, lftp, WinSCP). The change time cannot be set; it is
    /// accepted and ignored.
    Utime {
        atime: Option<SystemTime>,
        mtime: SystemTime,
        path: RawPath,
    },
    /// Any other sub-command (upper-cased) with its raw argument: answer 500/502.
    Other {
        verb: String,
        arg: RawPath,
    },
}

/// Why a line is not a command. Every variant has a reply code; the session answers and reads the next line.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    #[error("{verb} needs an argument")]
    MissingArgument { verb: &'static str },
    #[error("bad {verb} argument: {reason}")]
    BadArgument {
        verb: &'static str,
        reason: &'static str,
    },
    #[error("command is not valid UTF-8")]
    VerbNotUtf8,
    /// Not even verb-shaped (empty, starting with a digit, punctuation, too long; XSHA256 has digits); the text
    /// is cut to a few characters for logs.
    #[error("unrecognised command {0:?}")]
    UnknownCommand(String),
    /// EPRT or EPSV with a protocol number other than 1 and 2 (RFC 2428).
    #[error("network protocol not supported")]
    UnsupportedNetworkProtocol,
}

/// Parses one control line (without its CRLF).
///
/// Leniencies, each for a client seen in the wild: a stray trailing CR or LF is dropped (bare-LF clients); leading
/// spaces and Telnet command bytes (0xF0–0xFF) before the verb are skipped, since clients send ABOR after
/// `IAC IP IAC DM`, part of which may reach us in band.
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = trim_line(line);
    let (verb, arg) = match line.iter().position(|&b| b == b' ') {
        Some(space) => (&line[..space], Some(&line[space + 1..])),
        None => (line, None),
    };
    let verb = std::str::from_utf8(verb).map_err(|_| ParseError::VerbNotUtf8)?;
    if verb.is_empty()
        || verb.len() > MAX_VERB
        || !verb.as_bytes()[0].is_ascii_alphabetic()
        || !verb.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(ParseError::UnknownCommand(
            verb.chars().take(MAX_VERB).collect(),
        ));
    }
    let verb = verb.to_ascii_uppercase();
    let arg = Arg(arg);
    let command = match verb.as_str() {
        "USER" => Command::User(arg.text("USER")?.to_owned()),
        "PASS" => Command::Pass(Password::from(arg.0.unwrap_or_default())),
        "QUIT" | "BYE" => Command::Quit,
        "SYST" => Command::Syst,
        "FEAT" => Command::Feat,
        "OPTS" => Command::Opts(parse_opts(arg.trimmed_text("OPTS")?)),
        "HELP" => Command::Help(arg.optional_word()),
        "NOOP" => Command::Noop,
        "STAT" => Command::Stat(arg.optional_path().map(|p| list_args(p.as_bytes()))),
        "PWD" | "XPWD" => Command::Pwd,
        "CWD" | "XCWD" => Command::Cwd(arg.path("CWD")?),
        "CDUP" | "XCUP" => Command::Cdup,
        "MKD" | "XMKD" => Command::Mkd(arg.path("MKD")?),
        "RMD" | "XRMD" => Command::Rmd(arg.path("RMD")?),
        "DELE" => Command::Dele(arg.path("DELE")?),
        "RNFR" => Command::Rnfr(arg.path("RNFR")?),
        "RNTO" => Command::Rnto(arg.path("RNTO")?),
        "LIST" => Command::List(list_args(arg.0.unwrap_or_default())),
        "NLST" => Command::Nlst(list_args(arg.0.unwrap_or_default())),
        "MLSD" => Command::Mlsd(arg.optional_path()),
        "MLST" => Command::Mlst(arg.optional_path()),
        "SIZE" => Command::Size(arg.path("SIZE")?),
        "MDTM" => Command::Mdtm(arg.path("MDTM")?),
        "MFMT" => {
            let (mtime, path) = split_time_arg(arg.nonempty("MFMT")?)
                .ok_or(bad("MFMT", "expected <time> <path>"))?;
            Command::Mfmt {
                mtime,
                path: RawPath::from(path),
            }
        }
        "RETR" => Command::Retr(arg.path("RETR")?),
        "STOR" => Command::Stor(arg.path("STOR")?),
        "STOU" => Command::Stou(arg.optional_path()),
        "APPE" => Command::Appe(arg.path("APPE")?),
        "REST" => Command::Rest(decimal("REST", arg.trimmed_text("REST")?)?),
        "ABOR" => Command::Abor,
        "TYPE" => Command::Type(parse_type(arg.trimmed_text("TYPE")?)?),
        "MODE" => Command::Mode(parse_mode(arg.trimmed_text("MODE")?)?),
        "STRU" => Command::Stru(parse_stru(arg.trimmed_text("STRU")?)?),
        "ALLO" => Command::Allo,
        "PASV" => Command::Pasv,
        "EPSV" => Command::Epsv(parse_epsv(arg.optional_trimmed_text("EPSV")?)?),
        "PORT" => Command::Port(parse_port(arg.trimmed_text("PORT")?)?),
        "EPRT" => Command::Eprt(parse_eprt(arg.trimmed_text("EPRT")?)?),
        "AUTH" => Command::Auth(parse_auth(arg.trimmed_text("AUTH")?)),
        "PBSZ" => Command::Pbsz(decimal("PBSZ", arg.trimmed_text("PBSZ")?)?),
        "PROT" => Command::Prot(parse_prot(arg.trimmed_text("PROT")?)?),
        "SITE" => Command::Site(parse_site(arg.nonempty("SITE")?)?),
        "HASH" => Command::Hash(arg.path("HASH")?),
        "RANG" => parse_rang(arg.trimmed_text("RANG")?)?,
        "XMD5" => digest_request("XMD5", Algorithm::Md5, false, arg.nonempty("XMD5")?),
        "MD5" => digest_request("MD5", Algorithm::Md5, true, arg.nonempty("MD5")?),
        "XSHA" | "XSHA1" => digest_request("XSHA1", Algorithm::Sha1, false, arg.nonempty("XSHA1")?),
        "XSHA256" => digest_request(
            "XSHA256",
            Algorithm::Sha256,
            false,
            arg.nonempty("XSHA256")?,
        ),
        "XSHA512" => digest_request(
            "XSHA512",
            Algorithm::Sha512,
            false,
            arg.nonempty("XSHA512")?,
        ),
        "XCRC" => digest_request("XCRC", Algorithm::Crc32, false, arg.nonempty("XCRC")?),
        _ => Command::Unknown(verb),
    };
    Ok(command)
}

/// Drops one trailing CRLF remnant and the junk clients put before the verb.
fn trim_line(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(0, |last| last + 1);
    let line = &line[..end];
    let start = line
        .iter()
        .position(|&b| !(b == b' ' || b == b'\t' || b >= 0xF0))
        .unwrap_or(line.len());
    &line[start..]
}

/// The raw argument: `None` when the line had no space after the verb.
struct Arg<'a>(Option<&'a [u8]>);

impl<'a> Arg<'a> {
    /// The argument as sent, which must be there and non-empty.
    fn nonempty(&self, verb: &'static str) -> Result<&'a [u8], ParseError> {
        match self.0 {
            Some(arg) if !arg.is_empty() => Ok(arg),
            _ => Err(ParseError::MissingArgument { verb }),
        }
    }

    /// A required path, byte for byte.
    fn path(&self, verb: &'static str) -> Result<RawPath, ParseError> {
        self.nonempty(verb).map(RawPath::from)
    }

    fn optional_path(&self) -> Option<RawPath> {
        self.0.filter(|arg| !arg.is_empty()).map(RawPath::from)
    }

    /// A required UTF-8 argument, as sent.
    fn text(&self, verb: &'static str) -> Result<&'a str, ParseError> {
        std::str::from_utf8(self.nonempty(verb)?).map_err(|_| ParseError::BadArgument {
            verb,
            reason: "not valid UTF-8",
        })
    }

    /// A required UTF-8 argument without surrounding whitespace.
    fn trimmed_text(&self, verb: &'static str) -> Result<&'a str, ParseError> {
        match self.text(verb)?.trim() {
            "" => Err(ParseError::MissingArgument { verb }),
            text => Ok(text),
        }
    }

    /// An optional UTF-8 argument without surrounding whitespace (`None` when absent or blank).
    fn optional_trimmed_text(&self, verb: &'static str) -> Result<Option<&'a str>, ParseError> {
        match self.trimmed_text(verb) {
            Ok(text) => Ok(Some(text)),
            Err(ParseError::MissingArgument { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An optional word, upper-cased, for HELP: non-UTF-8 is shown lossily, never refused.
    fn optional_word(&self) -> Option<String> {
        let arg = self.0?;
        let word = String::from_utf8_lossy(arg).trim().to_ascii_uppercase();
        (!word.is_empty()).then_some(word)
    }
}

fn bad(verb: &'static str, reason: &'static str) -> ParseError {
    ParseError::BadArgument { verb, reason }
}

/// A decimal number of digits only (no sign, no spaces inside), as REST and PBSZ take.
fn decimal(verb: &'static str, text: &str) -> Result<u64, ParseError> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(verb, "not a decimal number"));
    }
    text.parse().map_err(|_| bad(verb, "number too large"))
}

/// Strips leading `ls` options (`-l`, `-a`, `-la`, each followed by a space or the end) and keeps the rest, byte
/// for byte, as the path. `-` alone, or a dash word with other characters, is a path.
fn list_args(mut arg: &[u8]) -> ListArgs {
    let mut options = String::new();
    loop {
        let word_end = arg.iter().position(|&b| b == b' ').unwrap_or(arg.len());
        let word = &arg[..word_end];
        let is_option = word.len() >= 2
            && word[0] == b'-'
            && word[1..].iter().all(|b| b.is_ascii_alphanumeric());
        if !is_option {
            break;
        }
        options.extend(word[1..].iter().map(|&b| char::from(b)));
        arg = arg.get(word_end + 1..).unwrap_or_default();
    }
    ListArgs {
        options,
        path: (!arg.is_empty()).then(|| RawPath::from(arg)),
    }
}

fn parse_type(text: &str) -> Result<TransferType, ParseError> {
    let upper = text.to_ascii_uppercase();
    let mut words = upper.split_ascii_whitespace();
    let code = words.next().unwrap_or_default();
    let param = words.next();
    if words.next().is_some() {
        return Err(bad("TYPE", "too many parameters"));
    }
    let form = |param: Option<&str>| match param {
        None | Some("N") => Ok(FormatControl::NonPrint),
        Some("T") => Ok(FormatControl::Telnet),
        Some("C") => Ok(FormatControl::CarriageControl),
        Some(_) => Err(bad("TYPE", "unknown format control")),
    };
    match (code, param) {
        ("A", param) => Ok(TransferType::Ascii(form(param)?)),
        ("E", param) => Ok(TransferType::Ebcdic(form(param)?)),
        ("I", None) => Ok(TransferType::Image),
        ("L", Some(size)) => byte_size(size),
        // `TYPE L8`, written without the space by some clients.
        (word, None) if word.len() > 1 && word.starts_with('L') => byte_size(&word[1..]),
        ("L", None) => Err(bad("TYPE", "L needs a byte size")),
        _ => Err(bad("TYPE", "unknown type")),
    }
}

fn byte_size(text: &str) -> Result<TransferType, ParseError> {
    match text.parse::<u8>() {
        Ok(size) if size > 0 && text.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(TransferType::Local(size))
        }
        _ => Err(bad("TYPE", "bad byte size")),
    }
}

/// The one letter MODE, STRU and PROT take, upper-cased.
fn letter(verb: &'static str, text: &str) -> Result<u8, ParseError> {
    match text.as_bytes() {
        [c] => Ok(c.to_ascii_uppercase()),
        _ => Err(bad(verb, "expected a single letter")),
    }
}

fn parse_mode(text: &str) -> Result<TransferMode, ParseError> {
    match letter("MODE", text)? {
        b'S' => Ok(TransferMode::Stream),
        b'B' => Ok(TransferMode::Block),
        b'C' => Ok(TransferMode::Compressed),
        b'Z' => Ok(TransferMode::Deflate),
        _ => Err(bad("MODE", "unknown mode")),
    }
}

fn parse_stru(text: &str) -> Result<FileStructure, ParseError> {
    match letter("STRU", text)? {
        b'F' => Ok(FileStructure::File),
        b'R' => Ok(FileStructure::Record),
        b'P' => Ok(FileStructure::Page),
        _ => Err(bad("STRU", "unknown structure")),
    }
}

fn parse_prot(text: &str) -> Result<ProtectionLevel, ParseError> {
    match letter("PROT", text)? {
        b'C' => Ok(ProtectionLevel::Clear),
        b'S' => Ok(ProtectionLevel::Safe),
        b'E' => Ok(ProtectionLevel::Confidential),
        b'P' => Ok(ProtectionLevel::Private),
        _ => Err(bad("PROT", "unknown protection level")),
    }
}

fn parse_auth(text: &str) -> AuthMechanism {
    let mechanism = text.to_ascii_uppercase();
    match mechanism.as_str() {
        "TLS" | "SSL" | "TLS-C" | "TLS-P" => AuthMechanism::Tls,
        _ => AuthMechanism::Other(mechanism),
    }
}

fn parse_opts(text: &str) -> OptsArg {
    let (name, rest) = text.split_once(' ').unwrap_or((text, ""));
    let name = name.to_ascii_uppercase();
    let rest = rest.trim();
    match name.as_str() {
        "UTF8" | "UTF-8" if rest.is_empty() || rest.eq_ignore_ascii_case("ON") => {
            OptsArg::Utf8(true)
        }
        "UTF8" | "UTF-8" if rest.eq_ignore_ascii_case("OFF") => OptsArg::Utf8(false),
        "MLST" => OptsArg::Mlst(Facts::parse(rest)),
        "HASH" if rest.is_empty() => OptsArg::Hash(None),
        "HASH" => OptsArg::Hash(Some(rest.to_string())),
        _ => OptsArg::Other(name),
    }
}

/// `RANG start end`, two decimal offsets.
fn parse_rang(text: &str) -> Result<Command, ParseError> {
    let mut words = text.split_ascii_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(start), Some(end), None) => Ok(Command::Rang(
            decimal("RANG", start)?,
            decimal("RANG", end)?,
        )),
        _ => Err(bad("RANG", "expected a start and an end offset")),
    }
}

/// XMD5 and friends: the name, then optionally `start end` (or only `end`), as proftpd's mod_digest reads them.
fn digest_request(
    verb: &'static str,
    algorithm: Algorithm,
    names_path: bool,
    arg: &[u8],
) -> Command {
    let words: Vec<&[u8]> = arg.rsplitn(3, |&b| b == b' ').collect();
    let number = |w: &[u8]| -> Option<u64> {
        std::str::from_utf8(w)
            .ok()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
    };
    let (path, range) = match words.as_slice() {
        [end, start, path] if !path.is_empty() => match (number(start), number(end)) {
            (Some(start), Some(end)) => (*path, Some((start, end))),
            _ => (arg, None),
        },
        _ => (arg, None),
    };
    Command::Digest(DigestRequest {
        verb,
        algorithm,
        names_path,
        path: RawPath::from(path),
        range,
    })
}

fn parse_site(arg: &[u8]) -> Result<SiteCommand, ParseError> {
    let arg = trim_ascii_start(arg);
    let (verb, rest) = match arg.iter().position(|&b| b == b' ') {
        Some(space) => (&arg[..space], &arg[space + 1..]),
        None => (arg, &b""[..]),
    };
    let verb = String::from_utf8_lossy(verb).to_ascii_uppercase();
    Ok(match verb.as_str() {
        "HELP" => SiteCommand::Help,
        "UTIME" => parse_utime(rest)?,
        _ => SiteCommand::Other {
            verb,
            arg: RawPath::from(rest),
        },
    })
}

/// `<path> <atime> <mtime> <ctime> UTC` (read from the right, so the path may hold spaces), else
/// `<time> <path>`.
fn parse_utime(arg: &[u8]) -> Result<SiteCommand, ParseError> {
    let mut words = arg.rsplitn(5, |&b| b == b' ');
    let five = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    );
    if let (Some(utc), Some(_ctime), Some(mtime), Some(atime), Some(path)) = five {
        if utc.eq_ignore_ascii_case(b"UTC") && !path.is_empty() {
            if let (Some(atime), Some(mtime)) = (parse_time_val(atime), parse_time_val(mtime)) {
                return Ok(SiteCommand::Utime {
                    atime: Some(atime),
                    mtime,
                    path: RawPath::from(path),
                });
            }
        }
    }
    let (mtime, path) = split_time_arg(arg).ok_or(bad(
        "SITE UTIME",
        "expected <time> <path> or <path> <atime> <mtime> <ctime> UTC",
    ))?;
    Ok(SiteCommand::Utime {
        atime: None,
        mtime,
        path: RawPath::from(path),
    })
}

/// Splits `<time> <path>`: an RFC 3659 time (`YYYYMMDDHHMMSS`, optionally `.` and up to nine digits of a
/// second, in UTC; ProFTPD's `YYYYMMDDHHMM` too), one space, and a non-empty path. `None` when the argument has
/// no such shape.
pub fn split_time_arg(arg: &[u8]) -> Option<(SystemTime, &[u8])> {
    let space = arg.iter().position(|&b| b == b' ')?;
    let path = &arg[space + 1..];
    if path.is_empty() {
        return None;
    }
    Some((parse_time_val(&arg[..space])?, path))
}

/// An RFC 3659 `time-val` in UTC: `YYYYMMDDHHMMSS[.F+]` (a fraction of up to nine digits), or `YYYYMMDDHHMM`.
pub fn parse_time_val(text: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(text).ok()?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > 9
        || (text.contains('.') && fraction.is_empty())
    {
        return None;
    }
    let whole = match whole.len() {
        14 => whole.to_string(),
        12 if fraction.is_empty() => format!("{whole}00"),
        _ => return None,
    };
    let time = chrono::NaiveDateTime::parse_from_str(&whole, "%Y%m%d%H%M%S").ok()?;
    let nanos: u32 = format!("{fraction:0<9}").parse().ok()?;
    let time = time
        .and_utc()
        .checked_add_signed(chrono::TimeDelta::nanoseconds(i64::from(nanos)))?;
    Some(SystemTime::from(time))
}

fn trim_ascii_start(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

fn parse_epsv(text: Option<&str>) -> Result<EpsvArg, ParseError> {
    match text {
        None => Ok(EpsvArg::Any),
        Some(all) if all.eq_ignore_ascii_case("ALL") => Ok(EpsvArg::All),
        Some(proto) => net_proto("EPSV", proto).map(EpsvArg::Protocol),
    }
}

/// RFC 2428's protocol number: 1 or 2; another number is 522, anything else 501.
fn net_proto(verb: &'static str, text: &str) -> Result<NetProto, ParseError> {
    match text {
        "1" => Ok(NetProto::V4),
        "2" => Ok(NetProto::V6),
        _ if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            Err(ParseError::UnsupportedNetworkProtocol)
        }
        _ => Err(bad(verb, "protocol must be 1 or 2")),
    }
}

/// `h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2), each a decimal 0–255; spaces around the numbers are tolerated.
fn parse_port(text: &str) -> Result<SocketAddrV4, ParseError> {
    let mut fields = [0u8; 6];
    let mut count = 0;
    for field in text.split(',') {
        let slot = fields
            .get_mut(count)
            .ok_or_else(|| bad("PORT", "expected six numbers"))?;
        let field = field.trim();
        if field.is_empty() || field.len() > 3 || !field.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("PORT", "not a number from 0 to 255"));
        }
        *slot = field
            .parse()
            .map_err(|_| bad("PORT", "not a number from 0 to 255"))?;
        count += 1;
    }
    if count != 6 {
        return Err(bad("PORT", "expected six numbers"));
    }
    let [h1, h2, h3, h4, p1, p2] = fields;
    let port = u16::from(p1) << 8 | u16::from(p2);
    Ok(SocketAddrV4::new(Ipv4Addr::new(h1, h2, h3, h4), port))
}

/// `<d><proto><d><addr><d><port><d>` (RFC 2428 §2), where `<d>` is any ASCII character from 33 to 126 (usually
/// `|`).
fn parse_eprt(text: &str) -> Result<SocketAddr, ParseError> {
    let delimiter = match text.chars().next() {
        Some(d) if ('!'..='~').contains(&d) => d,
        _ => return Err(bad("EPRT", "bad delimiter")),
    };
    let body = &text[delimiter.len_utf8()..];
    let mut fields = body.split(delimiter);
    let (Some(proto), Some(addr), Some(port), Some(""), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(bad("EPRT", "expected <d>proto<d>address<d>port<d>"));
    };
    let ip = match net_proto("EPRT", proto)? {
        NetProto::V4 => addr
            .parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| bad("EPRT", "bad IPv4 address"))?,
        NetProto::V6 => addr
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| bad("EPRT", "bad IPv6 address"))?,
    };
    // Digits only, no sign and no leading zero: one spelling per port.
    let canonical = !port.starts_with('0') && port.bytes().all(|b| b.is_ascii_digit());
    let port = match port.parse::<u16>() {
        Ok(port) if canonical && port != 0 => port,
        _ => return Err(bad("EPRT", "bad port")),
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        match parse(line.as_bytes()) {
            Ok(command) => command,
            Err(e) => panic!("{line:?}: {e}"),
        }
    }

    fn err(line: &[u8]) -> ParseError {
        match parse(line) {
            Ok(command) => panic!(
                "{:?} parsed as {command:?}",
                line.escape_ascii().to_string()
            ),
            Err(e) => e,
        }
    }

    fn path(text: &str) -> RawPath {
        RawPath::from(text)
    }

    #[test]
    fn simple_commands_in_any_case() {
        let cases = [
            ("QUIT", Command::Quit),
            ("quit", Command::Quit),
            ("Bye", Command::Quit),
            ("SYST", Command::Syst),
            ("feat", Command::Feat),
            ("NOOP", Command::Noop),
            ("PWD", Command::Pwd),
            ("xpwd", Command::Pwd),
            ("CDUP", Command::Cdup),
            ("XCUP", Command::Cdup),
            ("PASV", Command::Pasv),
            ("ABOR", Command::Abor),
            ("ALLO 1024", Command::Allo),
            ("ALLO 1024 R 512", Command::Allo),
            ("ALLO", Command::Allo),
            ("STAT", Command::Stat(None)),
            ("HELP", Command::Help(None)),
            ("help retr", Command::Help(Some("RETR".into()))),
        ];
        for (line, want) in cases {
            assert_eq!(ok(line), want, "{line}");
        }
    }

    #[test]
    fn commands_without_arguments_ignore_one() {
        assert_eq!(ok("PWD extra"), Command::Pwd);
        assert_eq!(ok("PASV "), Command::Pasv);
        assert_eq!(ok("QUIT now"), Command::Quit);
    }

    #[test]
    fn user_and_pass() {
        assert_eq!(ok("USER alice"), Command::User("alice".into()));
        assert_eq!(ok("user 用户"), Command::User("用户".into()));
        assert_eq!(
            ok("PASS s3cret with spaces "),
            Command::Pass(Password::from(&b"s3cret with spaces "[..]))
        );
        assert_eq!(ok("PASS"), Command::Pass(Password::default()));
        assert_eq!(ok("PASS "), Command::Pass(Password::default()));
        assert_eq!(
            parse(b"PASS \xff\xfe").unwrap(),
            Command::Pass(Password::from(&b"\xff\xfe"[..]))
        );
        assert_eq!(err(b"USER"), ParseError::MissingArgument { verb: "USER" });
        assert_eq!(err(b"USER "), ParseError::MissingArgument { verb: "USER" });
        assert_eq!(
            err(b"USER \xff"),
            ParseError::BadArgument {
                verb: "USER",
                reason: "not valid UTF-8"
            }
        );
    }

    #[test]
    fn passwords_are_redacted_in_debug() {
        let debug = format!("{:?}", ok("PASS hunter2"));
        assert_eq!(debug, "Pass(Password(<redacted>))");
    }

    #[test]
    fn raw_paths_debug_as_escaped_text() {
        let debug = format!("{:?}", parse(b"RETR caf\xc3\xa9\"x").unwrap());
        assert_eq!(debug, r#"Retr(RawPath("caf\xc3\xa9\"x"))"#);
    }

    #[test]
    fn path_commands_and_aliases() {
        let cases = [
            ("CWD /a/b", Command::Cwd(path("/a/b"))),
            ("XCWD ..", Command::Cwd(path(".."))),
            ("MKD new", Command::Mkd(path("new"))),
            ("XMKD new", Command::Mkd(path("new"))),
            ("RMD old", Command::Rmd(path("old"))),
            ("XRMD old", Command::Rmd(path("old"))),
            ("DELE f", Command::Dele(path("f"))),
            ("RNFR a", Command::Rnfr(path("a"))),
            ("RNTO b", Command::Rnto(path("b"))),
            ("SIZE f", Command::Size(path("f"))),
            ("MDTM f", Command::Mdtm(path("f"))),
            ("RETR f", Command::Retr(path("f"))),
            ("STOR f", Command::Stor(path("f"))),
            ("APPE f", Command::Appe(path("f"))),
            ("STOU", Command::Stou(None)),
            ("STOU hint", Command::Stou(Some(path("hint")))),
            ("MLSD", Command::Mlsd(None)),
            ("MLSD dir", Command::Mlsd(Some(path("dir")))),
            ("MLST", Command::Mlst(None)),
            ("MLST f", Command::Mlst(Some(path("f")))),
            ("MLST -a", Command::Mlst(Some(path("-a")))),
        ];
        for (line, want) in cases {
            assert_eq!(ok(line), want, "{line}");
        }
    }

    #[test]
    fn the_argument_is_everything_after_the_first_space() {
        assert_eq!(ok("RETR  leading"), Command::Retr(path(" leading")));
        assert_eq!(ok("RETR trailing  "), Command::Retr(path("trailing  ")));
        assert_eq!(ok("STOR a b  c"), Command::Stor(path("a b  c")));
        assert_eq!(ok("CWD  "), Command::Cwd(path(" ")));
        assert_eq!(
            ok("MDTM 20240102030405 f"),
            Command::Mdtm(path("20240102030405 f"))
        );
    }

    #[test]
    fn paths_stay_raw_bytes() {
        let gbk = b"RETR \xd6\xd0\xce\xc4.txt";
        assert_eq!(
            parse(gbk).unwrap(),
            Command::Retr(RawPath::from(&b"\xd6\xd0\xce\xc4.txt"[..]))
        );
        assert_eq!(
            parse(b"DELE a\0b").unwrap(),
            Command::Dele(RawPath::from(&b"a\0b"[..])),
            "names are checked by the core (Key::resolve)"
        );
    }

    #[test]
    fn missing_paths() {
        for verb in [
            "CWD", "XCWD", "MKD", "RMD", "DELE", "RNFR", "RNTO", "SIZE", "MDTM", "RETR", "STOR",
            "APPE",
        ] {
            for line in [verb.to_owned(), format!("{verb} ")] {
                match parse(line.as_bytes()) {
                    Err(ParseError::MissingArgument { .. }) => {}
                    other => panic!("{line:?}: {other:?}"),
                }
            }
        }
        assert_eq!(err(b"XCWD"), ParseError::MissingArgument { verb: "CWD" });
    }

    #[test]
    fn list_options_are_stripped() {
        let cases: [(&str, &str, Option<&str>); 14] = [
            ("LIST", "", None),
            ("LIST ", "", None),
            ("LIST -a", "a", None),
            ("LIST -la", "la", None),
            ("LIST -l -a", "la", None),
            ("LIST -la dir", "la", Some("dir")),
            ("LIST -aL /a b", "aL", Some("/a b")),
            ("LIST dir", "", Some("dir")),
            ("LIST -", "", Some("-")),
            ("LIST -la -", "la", Some("-")),
            ("LIST -x.txt", "", Some("-x.txt")),
            ("LIST dir -la", "", Some("dir -la")),
            ("NLST -1 sub", "1", Some("sub")),
            ("LIST -la  two-spaces", "la", Some(" two-spaces")),
        ];
        for (line, options, want_path) in cases {
            let args = ListArgs {
                options: options.to_owned(),
                path: want_path.map(path),
            };
            let got = ok(line);
            let want = if line.starts_with("NLST") {
                Command::Nlst(args)
            } else {
                Command::List(args)
            };
            assert_eq!(got, want, "{line}");
        }
        assert_eq!(
            ok("STAT -la /x"),
            Command::Stat(Some(ListArgs {
                options: "la".into(),
                path: Some(path("/x")),
            }))
        );
        assert_eq!(
            ok("STAT -l"),
            Command::Stat(Some(ListArgs {
                options: "l".into(),
                path: None,
            }))
        );
    }

    #[test]
    fn transfer_types() {
        let cases = [
            ("TYPE A", TransferType::Ascii(FormatControl::NonPrint)),
            ("TYPE a", TransferType::Ascii(FormatControl::NonPrint)),
            ("TYPE A N", TransferType::Ascii(FormatControl::NonPrint)),
            ("TYPE a n", TransferType::Ascii(FormatControl::NonPrint)),
            ("TYPE A T", TransferType::Ascii(FormatControl::Telnet)),
            (
                "TYPE A C",
                TransferType::Ascii(FormatControl::CarriageControl),
            ),
            ("TYPE E", TransferType::Ebcdic(FormatControl::NonPrint)),
            ("TYPE I", TransferType::Image),
            ("TYPE i", TransferType::Image),
            ("TYPE  I ", TransferType::Image),
            ("TYPE L 8", TransferType::Local(8)),
            ("TYPE L8", TransferType::Local(8)),
            ("TYPE l 36", TransferType::Local(36)),
        ];
        for (line, want) in cases {
            assert_eq!(ok(line), Command::Type(want), "{line}");
        }
        for line in [
            "TYPE X",
            "TYPE A X",
            "TYPE I N",
            "TYPE L",
            "TYPE L 0",
            "TYPE L 256",
            "TYPE L +8",
            "TYPE A N X",
            "TYPE LX",
        ] {
            match parse(line.as_bytes()) {
                Err(ParseError::BadArgument { verb: "TYPE", .. }) => {}
                other => panic!("{line:?}: {other:?}"),
            }
        }
        assert_eq!(err(b"TYPE"), ParseError::MissingArgument { verb: "TYPE" });
        assert_eq!(err(b"TYPE  "), ParseError::MissingArgument { verb: "TYPE" });
    }

    #[test]
    fn which_types_we_serve() {
        assert_eq!(TransferType::Image.is_binary(), Some(true));
        assert_eq!(TransferType::Local(8).is_binary(), Some(true));
        assert_eq!(
            TransferType::Ascii(FormatControl::NonPrint).is_binary(),
            Some(false)
        );
        assert_eq!(TransferType::Ascii(FormatControl::Telnet).is_binary(), None);
        assert_eq!(
            TransferType::Ebcdic(FormatControl::NonPrint).is_binary(),
            None
        );
        assert_eq!(TransferType::Local(36).is_binary(), None);
    }

    #[test]
    fn mode_stru_prot() {
        assert_eq!(ok("MODE S"), Command::Mode(TransferMode::Stream));
        assert_eq!(ok("mode s"), Command::Mode(TransferMode::Stream));
        assert_eq!(ok("MODE B"), Command::Mode(TransferMode::Block));
        assert_eq!(ok("MODE C"), Command::Mode(TransferMode::Compressed));
        assert_eq!(ok("MODE Z"), Command::Mode(TransferMode::Deflate));
        assert_eq!(ok("STRU F"), Command::Stru(FileStructure::File));
        assert_eq!(ok("STRU r"), Command::Stru(FileStructure::Record));
        assert_eq!(ok("STRU P"), Command::Stru(FileStructure::Page));
        assert_eq!(ok("PROT C"), Command::Prot(ProtectionLevel::Clear));
        assert_eq!(ok("PROT S"), Command::Prot(ProtectionLevel::Safe));
        assert_eq!(ok("PROT E"), Command::Prot(ProtectionLevel::Confidential));
        assert_eq!(ok("prot p"), Command::Prot(ProtectionLevel::Private));
        for line in ["MODE X", "MODE SS", "STRU X", "PROT X", "PROT PP", "MODE é"] {
            match parse(line.as_bytes()) {
                Err(ParseError::BadArgument { .. }) => {}
                other => panic!("{line:?}: {other:?}"),
            }
        }
        assert_eq!(err(b"MODE"), ParseError::MissingArgument { verb: "MODE" });
        assert_eq!(err(b"PROT"), ParseError::MissingArgument { verb: "PROT" });
    }

    #[test]
    fn rest_and_pbsz() {
        assert_eq!(ok("REST 0"), Command::Rest(0));
        assert_eq!(ok("REST 1048576"), Command::Rest(1_048_576));
        assert_eq!(ok("REST 18446744073709551615"), Command::Rest(u64::MAX));
        assert_eq!(ok("REST  42 "), Command::Rest(42));
        assert_eq!(ok("PBSZ 0"), Command::Pbsz(0));
        assert_eq!(
            err(b"REST 18446744073709551616"),
            ParseError::BadArgument {
                verb: "REST",
                reason: "number too large"
            }
        );
        for line in [
            "REST -1",
            "REST +1",
            "REST 1.5",
            "REST 0x10",
            "REST 1 2",
            "PBSZ x",
        ] {
            match parse(line.as_bytes()) {
                Err(ParseError::BadArgument { .. }) => {}
                other => panic!("{line:?}: {other:?}"),
            }
        }
        assert_eq!(err(b"REST"), ParseError::MissingArgument { verb: "REST" });
        assert_eq!(err(b"PBSZ"), ParseError::MissingArgument { verb: "PBSZ" });
    }

    #[test]
    fn port() {
        assert_eq!(
            ok("PORT 192,168,1,2,7,138"),
            Command::Port(SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 2), 1930))
        );
        assert_eq!(
            ok("PORT 127,0,0,1,255,255"),
            Command::Port(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 65535))
        );
        assert_eq!(
            ok("PORT  10, 0 ,0,1,0,21 "),
            Command::Port(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 21))
        );
        for line in [
            "PORT 1,2,3,4,5",
            "PORT 1,2,3,4,5,6,7",
            "PORT 256,0,0,1,4,1",
            "PORT 1,2,3,4,5,-6",
            "PORT 1,2,3,4,,6",
            "PORT 1,2,3,4,5,0006",
            "PORT 1.2.3.4,5,6",
            "PORT a,b,c,d,e,f",
            "PORT ,,,,,",
        ] {
            match parse(line.as_bytes()) {
                Err(ParseError::BadArgument { verb: "PORT", .. }) => {}
                other => panic!("{line:?}: {other:?}"),
            }
        }
        assert_eq!(err(b"PORT"), ParseError::MissingArgument { verb: "PORT" });
    }

    #[test]
    fn eprt() {
        // RFC 2428 §2's examples.
        assert_eq!(
            ok("EPRT |1|132.235.1.2|6275|"),
            Command::Eprt("132.235.1.2:6275".parse().unwrap())
        );
        assert_eq!(
            ok("EPRT |2|1080::8:800:200C:417A|5282|"),
            Command::Eprt("[1080::8:800:200C:417A]:5282".parse().unwrap())
        );
        // Any delimiter from 33 to 126.
        assert_eq!(
            ok("EPRT !1!10.0.0.1!2000!"),
            Command::Eprt("10.0.0.1:2000".parse().unwrap())
        );
        assert_eq!(
            ok("EPRT ~2~::1~65535~"),
            Command::Eprt("[::1]:65535".parse().unwrap())
        );
        assert_eq!(
            ok("eprt  |1|10.0.0.1|2000| "),
            Command::Eprt("10.0.0.1:2000".parse().unwrap())
        );
        for line in [
            "EPRT |1|132.235.1.2|6275",
            "EPRT |1|132.235.1.2|6275||",
            "EPRT |1|132.235.1.2|0|",
            "EPRT |1|132.235.1.2|65536|",
            "EPRT |1|132.235.1.2|06275|",
            "EPRT |1|132.235.1.2|+6275|",
            "EPRT |1|::1|6275|",
            "EPRT |2|127.0.0.1|6275|",
            "EPRT |2|fe80::1%eth0|6275|",
            "EPRT |x|127.0.0.1|6275|",
            "EPRT ||127.0.0.1|6275|",
            "EPRT |1||6275|",
            "EPRT |1|localhost|6275|",
            "EPRT é1é127.0.0.1é6275é",
            "EPRT |",
        ] {
            match parse(line.as_bytes()) {
                Err(ParseError::BadArgument { verb: "EPRT", .. }) => {}
                other => panic!("{line:?}: {other:?}"),
            }
        }
        assert_eq!(
            err(b"EPRT |3|127.0.0.1|6275|"),
            ParseError::UnsupportedNetworkProtocol
        );
        assert_eq!(err(b"EPRT"), ParseError::MissingArgument { verb: "EPRT" });
    }

    #[test]
    fn epsv() {
        assert_eq!(ok("EPSV"), Command::Epsv(EpsvArg::Any));
        assert_eq!(ok("EPSV "), Command::Epsv(EpsvArg::Any));
        assert_eq!(ok("EPSV ALL"), Command::Epsv(EpsvArg::All));
        assert_eq!(ok("epsv all"), Command::Epsv(EpsvArg::All));
        assert_eq!(ok("EPSV 1"), Command::Epsv(EpsvArg::Protocol(NetProto::V4)));
        assert_eq!(ok("EPSV 2"), Command::Epsv(EpsvArg::Protocol(NetProto::V6)));
        assert_eq!(err(b"EPSV 3"), ParseError::UnsupportedNetworkProtocol);
        assert_eq!(
            err(b"EPSV 99999999999999999999"),
            ParseError::UnsupportedNetworkProtocol
        );
        assert_eq!(
            err(b"EPSV x"),
            ParseError::BadArgument {
                verb: "EPSV",
                reason: "protocol must be 1 or 2"
            }
        );
        assert_eq!(
            err(b"EPSV \xff"),
            ParseError::BadArgument {
                verb: "EPSV",
                reason: "not valid UTF-8"
            }
        );
    }

    #[test]
    fn auth() {
        for line in [
            "AUTH TLS",
            "auth tls",
            "AUTH SSL",
            "AUTH TLS-C",
            "AUTH tls-p",
            "AUTH  TLS ",
        ] {
            assert_eq!(ok(line), Command::Auth(AuthMechanism::Tls), "{line}");
        }
        assert_eq!(
            ok("AUTH GSSAPI"),
            Command::Auth(AuthMechanism::Other("GSSAPI".into()))
        );
        assert_eq!(err(b"AUTH"), ParseError::MissingArgument { verb: "AUTH" });
    }

    #[test]
    fn opts() {
        for line in [
            "OPTS UTF8 ON",
            "OPTS UTF-8 ON",
            "opts utf8 on",
            "OPTS UTF8",
            "OPTS utf-8 On",
            "OPTS  UTF8  ON ",
        ] {
            assert_eq!(ok(line), Command::Opts(OptsArg::Utf8(true)), "{line}");
        }
        assert_eq!(ok("OPTS UTF8 OFF"), Command::Opts(OptsArg::Utf8(false)));
        assert_eq!(
            ok("OPTS UTF8 MAYBE"),
            Command::Opts(OptsArg::Other("UTF8".into()))
        );
        assert_eq!(
            ok("OPTS MLST type;size;modify;"),
            Command::Opts(OptsArg::Mlst(Facts::TYPE | Facts::SIZE | Facts::MODIFY))
        );
        assert_eq!(ok("OPTS MLST"), Command::Opts(OptsArg::Mlst(Facts::NONE)));
        assert_eq!(
            ok("opts mlst Type;Perm;UNIX.mode;"),
            Command::Opts(OptsArg::Mlst(Facts::TYPE | Facts::PERM))
        );
        assert_eq!(
            ok("OPTS retr x"),
            Command::Opts(OptsArg::Other("RETR".into()))
        );
        assert_eq!(err(b"OPTS"), ParseError::MissingArgument { verb: "OPTS" });
    }

    fn t(secs: u64, nanos: u32) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos)
    }

    #[test]
    fn times_and_time_arguments() {
        // 2024-01-02 03:04:05 UTC.
        const T0: u64 = 1_704_164_645;
        assert_eq!(parse_time_val(b"20240102030405"), Some(t(T0, 0)));
        assert_eq!(
            parse_time_val(b"20240102030405.5"),
            Some(t(T0, 500_000_000))
        );
        assert_eq!(
            parse_time_val(b"20240102030405.123456789"),
            Some(t(T0, 123_456_789))
        );
        assert_eq!(parse_time_val(b"202401020304"), Some(t(T0 - 5, 0)));
        for bad in [
            &b"2024010203040"[..],
            b"20240102030405.",
            b"20241302030405",
            b"20240102030405.1234567890",
            b"2024-01-02 03:04",
            b"",
        ] {
            assert_eq!(parse_time_val(bad), None, "{}", bad.escape_ascii());
        }
        assert_eq!(
            split_time_arg(b"20240102030405 a b.txt"),
            Some((t(T0, 0), &b"a b.txt"[..]))
        );
        assert_eq!(split_time_arg(b"20240102030405 "), None);
        assert_eq!(split_time_arg(b"notatime file"), None);
    }

    #[test]
    fn mfmt_and_site_utime() {
        const T0: u64 = 1_704_164_645;
        assert_eq!(
            ok("MFMT 20240102030405 dir/my file"),
            Command::Mfmt {
                mtime: t(T0, 0),
                path: path("dir/my file")
            }
        );
        assert!(matches!(
            err(b"MFMT 2024 f"),
            ParseError::BadArgument { verb: "MFMT", .. }
        ));
        assert_eq!(err(b"MFMT"), ParseError::MissingArgument { verb: "MFMT" });
        // lftp's "utime2" and ProFTPD's form.
        assert_eq!(
            ok("SITE UTIME 20240102030405 a file"),
            Command::Site(SiteCommand::Utime {
                atime: None,
                mtime: t(T0, 0),
                path: path("a file"),
            })
        );
        // ncftp's and lftp's five-argument form, the path first (spaces and all).
        assert_eq!(
            ok("site utime my file.txt 20240102030400 20240102030405 20240102030405 UTC"),
            Command::Site(SiteCommand::Utime {
                atime: Some(t(T0 - 5, 0)),
                mtime: t(T0, 0),
                path: path("my file.txt"),
            })
        );
        assert!(matches!(
            err(b"SITE UTIME file"),
            ParseError::BadArgument { .. }
        ));
    }

    #[test]
    fn site() {
        assert_eq!(ok("SITE HELP"), Command::Site(SiteCommand::Help));
        assert_eq!(ok("site help"), Command::Site(SiteCommand::Help));
        assert_eq!(
            ok("SITE CHMOD 755 a file"),
            Command::Site(SiteCommand::Other {
                verb: "CHMOD".into(),
                arg: path("755 a file"),
            })
        );
        assert_eq!(
            ok("SITE  umask"),
            Command::Site(SiteCommand::Other {
                verb: "UMASK".into(),
                arg: path(""),
            })
        );
        assert_eq!(err(b"SITE"), ParseError::MissingArgument { verb: "SITE" });
    }

    #[test]
    fn unknown_and_malformed_verbs() {
        assert_eq!(ok("ACCT x"), Command::Unknown("ACCT".into()));
        assert_eq!(ok("rein"), Command::Unknown("REIN".into()));
        assert_eq!(ok("MFMX 20240102030405 f"), Command::Unknown("MFMX".into()));
        assert_eq!(err(b""), ParseError::UnknownCommand(String::new()));
        assert_eq!(err(b"   "), ParseError::UnknownCommand(String::new()));
        assert_eq!(err(b" "), ParseError::UnknownCommand(String::new()));
        assert_eq!(err(b"123 x"), ParseError::UnknownCommand("123".into()));
        assert_eq!(err(b"RE-TR x"), ParseError::UnknownCommand("RE-TR".into()));
        assert_eq!(
            err("RETRé".as_bytes()),
            ParseError::UnknownCommand("RETRé".into())
        );
        assert_eq!(err(b"\xc3\x28"), ParseError::VerbNotUtf8);
        assert_eq!(
            err(b"RETR\x00 x"),
            ParseError::UnknownCommand("RETR\0".into())
        );
        let long = "A".repeat(10_000);
        assert_eq!(
            err(long.as_bytes()),
            ParseError::UnknownCommand("A".repeat(MAX_VERB))
        );
    }

    #[test]
    fn line_leniencies() {
        assert_eq!(ok("PWD\r"), Command::Pwd);
        assert_eq!(ok("CWD dir\r\n"), Command::Cwd(path("dir")));
        assert_eq!(ok("  NOOP"), Command::Noop);
        assert_eq!(ok("\tNOOP"), Command::Noop);
        // ABOR after Telnet IAC IP IAC DM, whole or in part.
        assert_eq!(parse(b"\xff\xf4\xff\xf2ABOR").unwrap(), Command::Abor);
        assert_eq!(parse(b"\xf2ABOR").unwrap(), Command::Abor);
        assert_eq!(parse(b"\xff\xf4\xffABOR").unwrap(), Command::Abor);
        assert_eq!(
            parse(b"\r\n").err(),
            Some(ParseError::UnknownCommand(String::new()))
        );
    }

    #[test]
    fn verb_names() {
        assert_eq!(ok("XMKD a").verb(), "MKD");
        assert_eq!(ok("BYE").verb(), "QUIT");
        assert_eq!(ok("LIST").verb(), "LIST");
        assert_eq!(ok("FOO").verb(), "UNKNOWN");
    }

    /// Random lines, biased toward the shapes the parser branches on: known verbs, spaces, digits, commas,
    /// delimiters, dashes, multi-byte UTF-8 and invalid bytes.
    fn line_strategy() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        const VERBS: &[&str] = &[
            "USER", "PASS", "QUIT", "BYE", "SYST", "FEAT", "OPTS", "HELP", "NOOP", "STAT", "PWD",
            "XPWD", "CWD", "XCWD", "CDUP", "XCUP", "MKD", "XMKD", "RMD", "XRMD", "DELE", "RNFR",
            "RNTO", "LIST", "NLST", "MLSD", "MLST", "SIZE", "MDTM", "RETR", "STOR", "STOU", "APPE",
            "REST", "ABOR", "TYPE", "MODE", "STRU", "ALLO", "PASV", "EPSV", "PORT", "EPRT", "AUTH",
            "PBSZ", "PROT", "SITE", "HASH", "RANG", "XSHA256", "XCRC", "MD5", "type", "eprt",
            "opts",
        ];
        const PIECES: &[&[u8]] = &[
            b" ",
            b"  ",
            b",",
            b"|",
            b"-",
            b"-la",
            b"1",
            b"2",
            b"255",
            b"256",
            b"99999999999999999999",
            b"A",
            b"I",
            b"L",
            b"N",
            b"8",
            b"ON",
            b"UTF8",
            b"MLST",
            b"type;",
            b"HELP",
            b"ALL",
            b"HASH",
            b"SHA-1",
            b"::",
            b"127.0.0.1",
            b".",
            b"..",
            b"/",
            b"\r",
            b"\n",
            b"\0",
            b"\xff",
            b"\xc3",
            b"\xc3\xa9",
            b"\xe4\xb8\xad",
            b"\xf0\x9f\x98",
            b"\t",
        ];
        let verb = prop_oneof![
            1 => Just(Vec::new()),
            3 => proptest::sample::select(VERBS).prop_map(|v| v.as_bytes().to_vec()),
        ];
        let piece = prop_oneof![
            1 => any::<u8>().prop_map(|b| vec![b]),
            2 => proptest::sample::select(PIECES).prop_map(|p| p.to_vec()),
        ];
        (verb, proptest::collection::vec(piece, 0..12)).prop_map(|(mut line, pieces)| {
            for p in pieces {
                line.extend_from_slice(&p);
            }
            line
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5_000))]

        /// Any line parses or is refused with a reason; a parsed command names a verb.
        #[test]
        fn never_panics_on_shaped_input(line in line_strategy()) {
            if let Ok(command) = parse(&line) {
                proptest::prop_assert!(!command.verb().is_empty());
            }
        }

        #[test]
        fn never_panics_on_uniform_random_bytes(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = parse(&line);
        }
    }

    /// The shaped strategy reaches both outcomes often (else it would test only one side of the parser).
    #[test]
    fn shaped_lines_both_parse_and_fail() {
        use proptest::strategy::{Strategy, ValueTree};
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = line_strategy();
        let parsed = (0..5_000)
            .filter(|_| {
                let line = strategy
                    .new_tree(&mut runner)
                    .map(|t| t.current())
                    .unwrap_or_default();
                parse(&line).is_ok()
            })
            .count();
        assert!((250..4_500).contains(&parsed), "{parsed} of 5000 parsed");
    }

    #[test]
    fn every_verb_with_every_short_argument_shape() {
        // Each verb followed by each two-piece argument from a small alphabet, exhaustively.
        const VERBS: &[&str] = &[
            "USER", "PASS", "OPTS", "HELP", "STAT", "CWD", "LIST", "NLST", "MLSD", "REST", "TYPE",
            "MODE", "STRU", "EPSV", "PORT", "EPRT", "AUTH", "PBSZ", "PROT", "SITE", "STOU",
        ];
        const ALPHABET: &[&[u8]] = &[
            b"",
            b" ",
            b"-",
            b"|",
            b",",
            b"1",
            b"A",
            b"\xff",
            b"\xe4\xb8",
            b"\r",
            b"L",
            b"ALL",
            b"UTF8",
        ];
        for verb in VERBS {
            for a in ALPHABET {
                for b in ALPHABET {
                    for c in ALPHABET {
                        let mut line = verb.as_bytes().to_vec();
                        line.push(b' ');
                        line.extend_from_slice(a);
                        line.extend_from_slice(b);
                        line.extend_from_slice(c);
                        let _ = parse(&line);
                    }
                }
            }
        }
    }
}
