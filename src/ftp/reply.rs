//! Replies on the control connection and their wire form (RFC 959 §4.2).
//!
//! A reply is a three-digit code and one or more lines of text. Text is sanitised on encoding, in one place: a CR,
//! LF or NUL inside any line (from a file name in a `257`, say) becomes `?`, so nothing a client or another bucket
//! writer controls can end a reply early or forge a second one. Telnet's IAC (0xFF) needs no escaping: neither
//! UTF-8 nor GBK ever produce that byte.

use std::time::SystemTime;

use super::command::ParseError;
use super::encoding::{encode, NameEncoding};
use super::listing::time_val;

/// Every reply code this server sends, named by what it means (RFC 959 §4.2, with the extensions' codes). A
/// reply cannot be built from a bare number, so a grep for numbers outside this module finds no reply codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ReplyCode {
    /// 150: the data connection is about to be opened.
    FileStatusOkay = 150,
    CommandOkay = 200,
    /// 202: superfluous at this site (ALLO).
    CommandNotNeeded = 202,
    /// 211: system status, FEAT.
    SystemStatus = 211,
    /// 213: file status (SIZE, MDTM, STAT of a path).
    FileStatus = 213,
    HelpMessage = 214,
    SystemType = 215,
    ServiceReady = 220,
    ClosingControlConnection = 221,
    /// 225: data connection open, no transfer in progress (ABOR with nothing to abort).
    DataConnectionOpen = 225,
    /// 226: the transfer or listing is complete; the data connection is closed.
    ClosingDataConnection = 226,
    EnteringPassiveMode = 227,
    EnteringExtendedPassiveMode = 229,
    UserLoggedIn = 230,
    /// 234: AUTH accepted, the TLS handshake follows (RFC 4217).
    AuthOkay = 234,
    FileActionOkay = 250,
    /// 251: the MD5 of a file (`MD5 name`, draft-twine-ftpmd5).
    FileDigest = 251,
    PathCreated = 257,
    NeedPassword = 331,
    /// 350: waiting for the rest (RNTO after RNFR, the transfer after REST).
    FileActionPending = 350,
    /// 421: the server closes the connection (timeout, shutdown, limits).
    ServiceNotAvailable = 421,
    CantOpenDataConnection = 425,
    /// 426: the transfer was aborted.
    ConnectionClosed = 426,
    /// 450: the file is busy (being written by another client).
    FileBusy = 450,
    /// 451: a local error, here: the store failed.
    LocalError = 451,
    CommandSyntaxError = 500,
    ParameterSyntaxError = 501,
    CommandNotImplemented = 502,
    BadCommandSequence = 503,
    CommandNotImplementedForParameter = 504,
    /// 521: data connections must be protected (RFC 4217 §9).
    DataProtectionRequired = 521,
    /// 522: network protocol not supported (RFC 2428).
    NetworkProtocolNotSupported = 522,
    NotLoggedIn = 530,
    /// 536: the requested PROT level is not supported (RFC 4217).
    ProtLevelNotSupported = 536,
    /// 550: file unavailable (not found, no access, wrong kind).
    FileUnavailable = 550,
    ExceededStorageAllocation = 552,
    FileNameNotAllowed = 553,
    /// 554: an invalid REST offset (RFC 3659 §5.5).
    InvalidRestart = 554,
}

impl ReplyCode {
    /// The three digits on the wire.
    pub fn number(self) -> u16 {
        self as u16
    }

    /// 4xx and 5xx: the command failed (for logs and counters).
    pub fn is_failure(self) -> bool {
        self.number() >= 400
    }
}

/// One reply: a code and its text lines (one line for most replies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: ReplyCode,
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply: `CCC text`.
    pub fn new(code: ReplyCode, text: impl Into<String>) -> Self {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// A reply of several lines (RFC 959 multi-line form when there are two or more).
    pub fn multiline<I, S>(code: ReplyCode, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Reply {
            code,
            lines: lines.into_iter().map(Into::into).collect(),
        }
    }

    /// The reply on the wire in UTF-8.
    ///
    /// One line: `CCC text\r\n`. Several: `CCC-first\r\n`, the middle lines as they are, `CCC last\r\n`. A middle
    /// line that starts with a digit gets a leading space, so it can never be read as the closing `CCC ` line
    /// (RFC 959 §4.2 asks the server to avoid exactly that).
    pub fn encode(&self) -> Vec<u8> {
        self.wire_text().into_bytes()
    }

    /// The reply on the wire in the client's encoding (names in a `257` are the only non-ASCII text we send).
    pub fn encode_as(&self, encoding: NameEncoding) -> Vec<u8> {
        let text = self.wire_text();
        match encode(&text, encoding) {
            std::borrow::Cow::Borrowed(_) => text.into_bytes(),
            std::borrow::Cow::Owned(bytes) => bytes,
        }
    }

    fn wire_text(&self) -> String {
        let code = self.code.number();
        let mut out =
            String::with_capacity(self.lines.iter().map(|l| l.len() + 6).sum::<usize>() + 6);
        match self.lines.as_slice() {
            [] => push_line(&mut out, code, ' ', ""),
            [only] => push_line(&mut out, code, ' ', only),
            [first, middle @ .., last] => {
                push_line(&mut out, code, '-', first);
                for line in middle {
                    if line.starts_with(|c: char| c.is_ascii_digit()) {
                        out.push(' ');
                    }
                    push_sanitised(&mut out, line);
                    out.push_str("\r\n");
                }
                push_line(&mut out, code, ' ', last);
            }
        }
        out
    }
}

fn push_line(out: &mut String, code: u16, separator: char, text: &str) {
    use std::fmt::Write as _;
    let _ = write!(out, "{code:03}{separator}");
    push_sanitised(out, text);
    out.push_str("\r\n");
}

fn push_sanitised(out: &mut String, text: &str) {
    out.extend(text.chars().map(|c| match c {
        '\r' | '\n' | '\0' => '?',
        c => c,
    }));
}

/// Quotes a path for a `257` reply (RFC 959 Appendix II): in double quotes, each `"` inside doubled.
pub fn quote_path(path: &str) -> String {
    let mut quoted = String::with_capacity(path.len() + 2);
    quoted.push('"');
    for c in path.chars() {
        if c == '"' {
            quoted.push('"');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// The replies whose wording is fixed, with vsftpd's wording where clients or users may know it.
impl Reply {
    /// 220, the greeting.
    pub fn service_ready(banner: &str) -> Self {
        Reply::new(ReplyCode::ServiceReady, banner)
    }

    /// 221, after QUIT.
    pub fn goodbye() -> Self {
        Reply::new(ReplyCode::ClosingControlConnection, "Goodbye.")
    }

    /// 200 with a short text.
    pub fn ok(text: impl Into<String>) -> Self {
        Reply::new(ReplyCode::CommandOkay, text)
    }

    /// 211, the FEAT reply (RFC 2389 §3.2): each feature on its own line after one space.
    pub fn feat<I, S>(features: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut lines = vec!["Features:".to_owned()];
        lines.extend(features.into_iter().map(|f| format!(" {}", f.as_ref())));
        lines.push("End".to_owned());
        Reply::multiline(ReplyCode::SystemStatus, lines)
    }

    /// 213, the size of a file.
    pub fn size(bytes: u64) -> Self {
        Reply::new(ReplyCode::FileStatus, bytes.to_string())
    }

    /// 213, the modification time of a file (RFC 3659 §3); `None` for a time with no 14-digit form.
    pub fn mdtm(mtime: SystemTime) -> Option<Self> {
        time_val(mtime).map(|t| Reply::new(ReplyCode::FileStatus, t))
    }

    /// 215, the answer to SYST that every client expects.
    pub fn system_type() -> Self {
        Reply::new(ReplyCode::SystemType, "UNIX Type: L8")
    }

    /// 230 after a good password.
    pub fn logged_in() -> Self {
        Reply::new(ReplyCode::UserLoggedIn, "Login successful.")
    }

    /// 250 after CWD/CDUP.
    pub fn directory_changed() -> Self {
        Reply::new(ReplyCode::FileActionOkay, "Directory successfully changed.")
    }

    /// 257 after PWD: `257 "/a ""b""" is the current directory`.
    pub fn current_directory(path: &str) -> Self {
        Reply::new(
            ReplyCode::PathCreated,
            format!("{} is the current directory", quote_path(path)),
        )
    }

    /// 257 after MKD: `257 "/new" created`.
    pub fn directory_created(path: &str) -> Self {
        Reply::new(
            ReplyCode::PathCreated,
            format!("{} created", quote_path(path)),
        )
    }

    /// 331 after USER.
    pub fn need_password() -> Self {
        Reply::new(ReplyCode::NeedPassword, "Please specify the password.")
    }

    /// 350 after REST.
    pub fn restart_accepted(offset: u64) -> Self {
        Reply::new(
            ReplyCode::FileActionPending,
            format!("Restart position accepted ({offset})."),
        )
    }

    /// 425 for a transfer before PASV/EPSV/PORT/EPRT.
    pub fn no_data_connection() -> Self {
        Reply::new(
            ReplyCode::CantOpenDataConnection,
            "Use PORT, PASV or EPSV first.",
        )
    }

    /// 500 for an unrecognised command.
    pub fn unknown_command() -> Self {
        Reply::new(ReplyCode::CommandSyntaxError, "Unknown command.")
    }

    /// 502 for a command we know of but do not implement.
    pub fn not_implemented() -> Self {
        Reply::new(ReplyCode::CommandNotImplemented, "Command not implemented.")
    }

    /// 504 for a parameter we parse but do not support (MODE B, TYPE E, STRU R, PROT S).
    pub fn parameter_not_implemented() -> Self {
        Reply::new(
            ReplyCode::CommandNotImplementedForParameter,
            "Command not implemented for that parameter.",
        )
    }

    /// 530 for a bad login.
    pub fn login_incorrect() -> Self {
        Reply::new(ReplyCode::NotLoggedIn, "Login incorrect.")
    }

    /// 530 for a command that needs a login.
    pub fn not_logged_in() -> Self {
        Reply::new(ReplyCode::NotLoggedIn, "Please login with USER and PASS.")
    }
}

impl From<&ParseError> for Reply {
    fn from(error: &ParseError) -> Self {
        match error {
            ParseError::UnknownCommand(_) | ParseError::VerbNotUtf8 => Reply::unknown_command(),
            // RFC 2428 §2 and §3 give this text.
            ParseError::UnsupportedNetworkProtocol => Reply::new(
                ReplyCode::NetworkProtocolNotSupported,
                "Network protocol not supported, use (1,2)",
            ),
            // RFC 959: 501 for a bad or missing argument.
            other => Reply::new(
                ReplyCode::ParameterSyntaxError,
                format!("{}.", capitalise(&other.to_string())),
            ),
        }
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use proptest::strategy::Strategy as _;

    fn wire(reply: &Reply) -> String {
        String::from_utf8(reply.encode()).unwrap()
    }

    #[test]
    fn single_line() {
        assert_eq!(
            wire(&Reply::new(ReplyCode::CommandOkay, "Command okay.")),
            "200 Command okay.\r\n"
        );
        assert_eq!(
            wire(&Reply::multiline(
                ReplyCode::ClosingDataConnection,
                ["Done."]
            )),
            "226 Done.\r\n"
        );
    }

    #[test]
    fn empty_text_still_has_the_space() {
        assert_eq!(
            wire(&Reply::multiline(
                ReplyCode::CommandOkay,
                Vec::<String>::new()
            )),
            "200 \r\n"
        );
        assert_eq!(wire(&Reply::new(ReplyCode::CommandOkay, "")), "200 \r\n");
    }

    #[test]
    fn multi_line_per_rfc_959() {
        // RFC 959 §4.2's own example.
        let reply = Reply::multiline(
            ReplyCode::HelpMessage,
            [
                "First line",
                "Second line",
                "234 A line beginning with numbers",
                "The last line",
            ],
        );
        assert_eq!(
            wire(&reply),
            "214-First line\r\nSecond line\r\n 234 A line beginning with numbers\r\n214 The last line\r\n"
        );
    }

    #[test]
    fn two_lines_have_no_middle() {
        assert_eq!(
            wire(&Reply::multiline(
                ReplyCode::FileActionOkay,
                ["Listing /a", "End"]
            )),
            "250-Listing /a\r\n250 End\r\n"
        );
    }

    #[test]
    fn only_middle_lines_get_the_digit_guard() {
        // The first and last lines follow the code, so a digit there is harmless.
        assert_eq!(
            wire(&Reply::multiline(
                ReplyCode::SystemStatus,
                ["1 first", "2 middle", "3 last"]
            )),
            "211-1 first\r\n 2 middle\r\n211 3 last\r\n"
        );
    }

    #[test]
    fn line_breaks_in_text_cannot_forge_replies() {
        let evil = "/a\r\n230 Login successful.\nx\0y";
        assert_eq!(
            wire(&Reply::current_directory(evil)),
            "257 \"/a??230 Login successful.?x?y\" is the current directory\r\n"
        );
        assert_eq!(
            wire(&Reply::multiline(
                ReplyCode::SystemStatus,
                ["a\rb", "c\nd", "e\r\nf"]
            )),
            "211-a?b\r\nc?d\r\n211 e??f\r\n"
        );
    }

    #[test]
    fn quote_path_doubles_quotes() {
        // RFC 959 Appendix II: MKD foo"bar → 257 "/usr/dm/foo""bar" directory created.
        assert_eq!(quote_path("/usr/dm/foo\"bar"), "\"/usr/dm/foo\"\"bar\"");
        assert_eq!(quote_path("/"), "\"/\"");
        assert_eq!(quote_path("\"\""), "\"\"\"\"\"\"");
        assert_eq!(
            wire(&Reply::directory_created("/usr/dm/foo\"bar")),
            "257 \"/usr/dm/foo\"\"bar\" created\r\n"
        );
        assert_eq!(
            wire(&Reply::current_directory("/")),
            "257 \"/\" is the current directory\r\n"
        );
    }

    #[test]
    fn feat_lines_start_with_a_space() {
        let reply = Reply::feat(["EPRT", "EPSV", "MLST type*;size*;", "UTF8"]);
        assert_eq!(
            wire(&reply),
            "211-Features:\r\n EPRT\r\n EPSV\r\n MLST type*;size*;\r\n UTF8\r\n211 End\r\n"
        );
        assert_eq!(
            wire(&Reply::feat(Vec::<&str>::new())),
            "211-Features:\r\n211 End\r\n"
        );
    }

    #[test]
    fn gbk_replies() {
        let reply = Reply::current_directory("/中文");
        assert_eq!(
            reply.encode_as(NameEncoding::Gbk),
            b"257 \"/\xd6\xd0\xce\xc4\" is the current directory\r\n"
        );
        assert_eq!(reply.encode_as(NameEncoding::Utf8), reply.encode());
        assert_eq!(
            Reply::goodbye().encode_as(NameEncoding::Gbk),
            b"221 Goodbye.\r\n"
        );
    }

    #[test]
    fn standard_replies() {
        let cases = [
            (
                Reply::service_ready("cosftpd ready."),
                "220 cosftpd ready.\r\n",
            ),
            (Reply::goodbye(), "221 Goodbye.\r\n"),
            (Reply::size(1234), "213 1234\r\n"),
            (Reply::system_type(), "215 UNIX Type: L8\r\n"),
            (
                Reply::need_password(),
                "331 Please specify the password.\r\n",
            ),
            (Reply::logged_in(), "230 Login successful.\r\n"),
            (
                Reply::restart_accepted(100),
                "350 Restart position accepted (100).\r\n",
            ),
            (Reply::unknown_command(), "500 Unknown command.\r\n"),
            (Reply::not_implemented(), "502 Command not implemented.\r\n"),
            (
                Reply::parameter_not_implemented(),
                "504 Command not implemented for that parameter.\r\n",
            ),
            (Reply::login_incorrect(), "530 Login incorrect.\r\n"),
        ];
        for (reply, want) in cases {
            assert_eq!(wire(&reply), want);
        }
        assert!(ReplyCode::FileUnavailable.is_failure());
        assert!(!ReplyCode::FileActionPending.is_failure());
    }

    #[test]
    fn mdtm_reply() {
        let t = UNIX_EPOCH + Duration::from_secs(1_704_164_645);
        assert_eq!(wire(&Reply::mdtm(t).unwrap()), "213 20240102030405\r\n");
        assert_eq!(
            Reply::mdtm(UNIX_EPOCH + Duration::from_secs(i64::MAX as u64)),
            None
        );
    }

    #[test]
    fn parse_errors_become_replies() {
        let cases = [
            (
                ParseError::MissingArgument { verb: "CWD" },
                "501 CWD needs an argument.\r\n",
            ),
            (
                ParseError::BadArgument {
                    verb: "REST",
                    reason: "not a decimal offset",
                },
                "501 Bad REST argument: not a decimal offset.\r\n",
            ),
            (ParseError::VerbNotUtf8, "500 Unknown command.\r\n"),
            (
                ParseError::UnknownCommand("1X".to_owned()),
                "500 Unknown command.\r\n",
            ),
            (
                ParseError::UnsupportedNetworkProtocol,
                "522 Network protocol not supported, use (1,2)\r\n",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(wire(&Reply::from(&error)), want, "{error:?}");
        }
    }

    /// How a client reads a reply (RFC 959 §4.2): the code of the first line, and the index of the line that ends
    /// the reply.
    fn client_reads(wire: &str) -> (String, usize) {
        let lines: Vec<&str> = wire.split_terminator("\r\n").collect();
        let code = lines[0][..3].to_owned();
        if lines[0].as_bytes()[3] == b' ' {
            return (code, 0);
        }
        let end = lines
            .iter()
            .skip(1)
            .position(|l| l.starts_with(&format!("{code} ")))
            .map(|i| i + 1)
            .unwrap();
        (code, end)
    }

    proptest::proptest! {
        /// Whatever the lines hold (CR, LF, NUL, text that looks like a reply's last line), a client reads one
        /// reply of exactly those lines, with the right code.
        #[test]
        fn random_text_never_ends_a_reply_early(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::sample::select(vec![
                        "\r", "\n", "\r\n", "\0", "226 ", "226-", "2", " ", "a", "中", "\"", "-", "😀",
                    ]),
                    0..6,
                )
                .prop_map(|pieces| pieces.concat()),
                1..6,
            )
        ) {
            use proptest::prelude::*;
            let count = lines.len();
            let reply = Reply::multiline(ReplyCode::ClosingDataConnection, lines);
            let wire = wire(&reply);
            let (code, end) = client_reads(&wire);
            prop_assert_eq!(code, "226", "{:?}", wire);
            prop_assert_eq!(end, count - 1, "{:?}", wire);
            prop_assert_eq!(wire.matches("\r\n").count(), count, "{:?}", wire);
            prop_assert!(
                wire.split_terminator("\r\n")
                    .all(|l| !l.contains(['\r', '\n', '\0'])),
                "{:?}", wire
            );
        }
    }
}
