//! Replies on the control connection and their wire form (RFC 959 §4.2).
//!
//! A reply is a three-digit code and one or more lines of text. Text is sanitised on encoding, in one place: a CR,
//! LF or NUL inside any line (from a file name in a `257`, say) becomes `?`, so nothing a client or another bucket
//! writer controls can end a reply early or forge a second one. Telnet's IAC (0xFF) needs no escaping: neither
//! UTF-8 nor GBK ever produce that byte.

use std::time::SystemTime;

use super::command::ParseError;
use super::listing::time_val;
use super::path::{encode, NameEncoding};

/// One reply: a code and its text lines (one line for most replies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply: `CCC text`.
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        debug_assert!((100..=599).contains(&code), "reply code {code}");
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// A reply of several lines (RFC 959 multi-line form when there are two or more).
    pub fn multiline<I, S>(code: u16, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        debug_assert!((100..=599).contains(&code), "reply code {code}");
        Reply {
            code,
            lines: lines.into_iter().map(Into::into).collect(),
        }
    }

    /// 4xx and 5xx: the command failed (for logging and counters).
    pub fn is_failure(&self) -> bool {
        self.code >= 400
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
        let code = self.code.min(999);
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

/// The replies the session sends most, with vsftpd's wording where clients or users may know it.
impl Reply {
    /// 220, the greeting.
    pub fn service_ready(banner: &str) -> Self {
        Reply::new(220, banner)
    }

    /// 221, after QUIT.
    pub fn goodbye() -> Self {
        Reply::new(221, "Goodbye.")
    }

    /// 200 with a short text.
    pub fn ok(text: impl Into<String>) -> Self {
        Reply::new(200, text)
    }

    /// 202, for commands that need nothing from us (ALLO).
    pub fn superfluous(text: impl Into<String>) -> Self {
        Reply::new(202, text)
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
        Reply::multiline(211, lines)
    }

    /// 213, the size of a file.
    pub fn size(bytes: u64) -> Self {
        Reply::new(213, bytes.to_string())
    }

    /// 213, the modification time of a file (RFC 3659 §3); `None` for a time with no 14-digit form.
    pub fn mdtm(mtime: SystemTime) -> Option<Self> {
        time_val(mtime).map(|t| Reply::new(213, t))
    }

    /// 215, the answer to SYST that every client expects.
    pub fn system_type() -> Self {
        Reply::new(215, "UNIX Type: L8")
    }

    /// 226 after a file transfer.
    pub fn transfer_complete() -> Self {
        Reply::new(226, "Transfer complete.")
    }

    /// 226 after a listing.
    pub fn directory_sent() -> Self {
        Reply::new(226, "Directory send OK.")
    }

    /// 230 after a good password.
    pub fn logged_in() -> Self {
        Reply::new(230, "Login successful.")
    }

    /// 234 after AUTH TLS: the handshake follows.
    pub fn auth_ok() -> Self {
        Reply::new(234, "Proceed with negotiation.")
    }

    /// 250 after CWD/CDUP.
    pub fn directory_changed() -> Self {
        Reply::new(250, "Directory successfully changed.")
    }

    /// 250 with a short text (DELE, RMD, RNTO).
    pub fn action_ok(text: impl Into<String>) -> Self {
        Reply::new(250, text)
    }

    /// 257 after PWD: `257 "/a ""b""" is the current directory`.
    pub fn current_directory(path: &str) -> Self {
        Reply::new(
            257,
            format!("{} is the current directory", quote_path(path)),
        )
    }

    /// 257 after MKD: `257 "/new" created`.
    pub fn directory_created(path: &str) -> Self {
        Reply::new(257, format!("{} created", quote_path(path)))
    }

    /// 331 after USER.
    pub fn need_password() -> Self {
        Reply::new(331, "Please specify the password.")
    }

    /// 350 after REST.
    pub fn restart_accepted(offset: u64) -> Self {
        Reply::new(350, format!("Restart position accepted ({offset})."))
    }

    /// 350 after RNFR.
    pub fn ready_for_rnto() -> Self {
        Reply::new(350, "Ready for RNTO.")
    }

    /// 421 before closing the connection on our side (timeout, shutdown, too many connections).
    pub fn closing(text: impl Into<String>) -> Self {
        Reply::new(421, text)
    }

    /// 425 when the data connection could not be made.
    pub fn cannot_open_data_connection() -> Self {
        Reply::new(425, "Failed to establish connection.")
    }

    /// 425 for a transfer before PASV/EPSV/PORT/EPRT.
    pub fn no_data_connection() -> Self {
        Reply::new(425, "Use PORT, PASV or EPSV first.")
    }

    /// 426 when the transfer broke off (ABOR, client gone, store error mid-stream).
    pub fn transfer_aborted() -> Self {
        Reply::new(426, "Connection closed; transfer aborted.")
    }

    /// 500 for an unrecognised command.
    pub fn unknown_command() -> Self {
        Reply::new(500, "Unknown command.")
    }

    /// 502 for a command we know of but do not implement.
    pub fn not_implemented() -> Self {
        Reply::new(502, "Command not implemented.")
    }

    /// 503 for a command out of order (RNTO without RNFR, PASS without USER).
    pub fn bad_sequence(text: impl Into<String>) -> Self {
        Reply::new(503, text)
    }

    /// 504 for a parameter we parse but do not support (MODE B, TYPE E, STRU R, PROT S).
    pub fn parameter_not_implemented() -> Self {
        Reply::new(504, "Command not implemented for that parameter.")
    }

    /// 530 for a bad login.
    pub fn login_incorrect() -> Self {
        Reply::new(530, "Login incorrect.")
    }

    /// 530 for a command that needs a login.
    pub fn not_logged_in() -> Self {
        Reply::new(530, "Please login with USER and PASS.")
    }

    /// 550 for a missing file or a denied action.
    pub fn unavailable(text: impl Into<String>) -> Self {
        Reply::new(550, text)
    }

    /// 552 when an upload exceeds `single_file_max_size`.
    pub fn exceeded_storage(text: impl Into<String>) -> Self {
        Reply::new(552, text)
    }

    /// 553 for a name we refuse.
    pub fn name_not_allowed(text: impl Into<String>) -> Self {
        Reply::new(553, text)
    }
}

impl From<&ParseError> for Reply {
    fn from(error: &ParseError) -> Self {
        match error {
            ParseError::UnknownCommand(_) | ParseError::VerbNotUtf8 => Reply::unknown_command(),
            // RFC 2428 §2 and §3 give this text.
            ParseError::UnsupportedNetworkProtocol => {
                Reply::new(522, "Network protocol not supported, use (1,2)")
            }
            other => Reply::new(
                other.reply_code(),
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

    fn wire(reply: &Reply) -> String {
        String::from_utf8(reply.encode()).unwrap()
    }

    #[test]
    fn single_line() {
        assert_eq!(
            wire(&Reply::new(200, "Command okay.")),
            "200 Command okay.\r\n"
        );
        assert_eq!(wire(&Reply::multiline(226, ["Done."])), "226 Done.\r\n");
    }

    #[test]
    fn empty_text_still_has_the_space() {
        assert_eq!(
            wire(&Reply::multiline(200, Vec::<String>::new())),
            "200 \r\n"
        );
        assert_eq!(wire(&Reply::new(200, "")), "200 \r\n");
    }

    #[test]
    fn multi_line_per_rfc_959() {
        // RFC 959 §4.2's own example.
        let reply = Reply::multiline(
            123,
            [
                "First line",
                "Second line",
                "234 A line beginning with numbers",
                "The last line",
            ],
        );
        assert_eq!(
            wire(&reply),
            "123-First line\r\nSecond line\r\n 234 A line beginning with numbers\r\n123 The last line\r\n"
        );
    }

    #[test]
    fn two_lines_have_no_middle() {
        assert_eq!(
            wire(&Reply::multiline(250, ["Listing /a", "End"])),
            "250-Listing /a\r\n250 End\r\n"
        );
    }

    #[test]
    fn only_middle_lines_get_the_digit_guard() {
        // The first and last lines follow the code, so a digit there is harmless.
        assert_eq!(
            wire(&Reply::multiline(211, ["1 first", "2 middle", "3 last"])),
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
            wire(&Reply::multiline(211, ["a\rb", "c\nd", "e\r\nf"])),
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
            (Reply::ready_for_rnto(), "350 Ready for RNTO.\r\n"),
            (Reply::auth_ok(), "234 Proceed with negotiation.\r\n"),
            (Reply::unknown_command(), "500 Unknown command.\r\n"),
            (Reply::not_implemented(), "502 Command not implemented.\r\n"),
            (
                Reply::parameter_not_implemented(),
                "504 Command not implemented for that parameter.\r\n",
            ),
            (Reply::login_incorrect(), "530 Login incorrect.\r\n"),
            (Reply::transfer_complete(), "226 Transfer complete.\r\n"),
            (Reply::directory_sent(), "226 Directory send OK.\r\n"),
        ];
        for (reply, want) in cases {
            assert_eq!(wire(&reply), want);
        }
        assert!(Reply::unavailable("No such file.").is_failure());
        assert!(!Reply::ready_for_rnto().is_failure());
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

    #[test]
    fn random_text_never_ends_a_reply_early() {
        const PIECES: &[&str] = &[
            "\r", "\n", "\r\n", "\0", "226 ", "226-", "2", " ", "a", "中", "\"", "-", "😀",
        ];
        let mut state = 0x0dd_ba11_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        for _ in 0..20_000 {
            let count = 1 + (next() % 5) as usize;
            let lines: Vec<String> = (0..count)
                .map(|_| {
                    (0..next() % 6)
                        .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                        .collect()
                })
                .collect();
            let reply = Reply::multiline(226, lines.clone());
            let wire = wire(&reply);
            let (code, end) = client_reads(&wire);
            assert_eq!(code, "226", "{wire:?}");
            assert_eq!(end, count - 1, "{wire:?}");
            assert_eq!(wire.matches("\r\n").count(), count, "{wire:?}");
            assert!(
                wire.split_terminator("\r\n")
                    .all(|l| !l.contains(['\r', '\n', '\0'])),
                "{wire:?}"
            );
        }
    }
}
