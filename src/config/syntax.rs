//! Text → sections of `key → value`, in one pass over the lines.
//!
//! Every line is one of: blank, a comment, a `[SECTION]` header, or `key = value` (`key: value` too, as Python's
//! ConfigParser allows); anything else is reported with its line number and never echoed (it may be a secret
//! pasted on its own line).
//!
//! Values are taken as written, with two exceptions:
//! - a `#` or `;` that follows whitespace starts a comment, as the original's own example file uses them
//!   (`cos_secretid = COS_SECRETID    # 替换…`); `pass#word` keeps its `#`;
//! - a value in double quotes is taken exactly as it is between them, comment markers included
//!   (`ftp_login_user_password = "bob #1pass"`). There are no escapes: `\` is an ordinary character in paths and
//!   passwords, as it was for the original.
//!
//! A comment separated from the value by a single space (`bob #1pass`) is ambiguous: it is stripped, and a
//! warning names the line and key, so that a password is never cut silently.

use super::parse::Report;

/// One `[section]` of the file, in file order; keys lower-cased (as Python's ConfigParser does), values trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawSection {
    pub(super) name: String,
    /// Line number of the header, for messages.
    pub(super) line: usize,
    pub(super) entries: Vec<RawEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawEntry {
    pub(super) key: String,
    pub(super) value: String,
    pub(super) line: usize,
}

impl RawSection {
    pub(super) fn get(&self, key: &str) -> Option<&RawEntry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// `lossy`: the text was decoded from invalid UTF-8; a replacement character left outside comments is an error.
pub(super) fn read_sections(text: &str, lossy: bool, report: &mut Report) -> Vec<RawSection> {
    // Windows editors like to start UTF-8 files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sections: Vec<RawSection> = Vec::new();
    let mut current = Current::BeforeFirstSection;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let section_name = current.name(&sections);
        let line = match parse_line(raw) {
            Ok(line) => line,
            Err(LineError { key, why }) => {
                report.error(section_name, key, format!("line {number}: {why}"));
                continue;
            }
        };
        if lossy && line.contains(char::REPLACEMENT_CHARACTER) {
            report.error(
                section_name,
                "",
                format!("line {number}: not valid UTF-8; save the file as UTF-8"),
            );
            continue;
        }
        match line {
            Line::Blank => {}
            Line::Section(name) => current = open_section(&mut sections, name, number, report),
            Line::Entry(entry) => add_entry(&mut sections, &current, entry, number, report),
        }
    }
    sections
}

/// Where the entries being read go.
#[derive(Debug, Clone, Copy)]
enum Current {
    BeforeFirstSection,
    /// Index into the sections read so far.
    Section(usize),
    /// A repeated section (the index of its first appearance): reported once, its entries dropped.
    Repeated(usize),
}

impl Current {
    fn name(self, sections: &[RawSection]) -> &str {
        match self {
            Current::Section(at) | Current::Repeated(at) => &sections[at].name,
            Current::BeforeFirstSection => "",
        }
    }
}

/// The original (ConfigParser) silently merged a repeated section; a merge across the file is how settings end up
/// where nobody looks, so it is an error.
fn open_section(
    sections: &mut Vec<RawSection>,
    name: &str,
    number: usize,
    report: &mut Report,
) -> Current {
    if let Some(at) = sections.iter().position(|s| s.name == name) {
        report.error(
            name,
            "",
            format!(
                "line {number}: the section appears more than once (first on line {}); merge the two (the second \
                 one is ignored)",
                sections[at].line
            ),
        );
        return Current::Repeated(at);
    }
    sections.push(RawSection {
        name: name.to_string(),
        line: number,
        entries: Vec::new(),
    });
    Current::Section(sections.len() - 1)
}

/// A repeated key is an error, not "last wins": the original silently kept the last one, which is how two
/// `authority` lines end up granting the wrong one.
fn add_entry(
    sections: &mut [RawSection],
    current: &Current,
    entry: Entry<'_>,
    number: usize,
    report: &mut Report,
) {
    let key = entry.key.to_lowercase();
    let section = match *current {
        Current::Section(at) => &mut sections[at],
        Current::Repeated(_) => return,
        Current::BeforeFirstSection => {
            report.error(
                "",
                &key,
                format!("line {number}: is outside any section; put it under its [SECTION] header"),
            );
            return;
        }
    };
    if let Some(first) = section.get(&key) {
        report.error(
            &section.name,
            &key,
            format!(
                "line {number}: is set more than once in this section (first on line {}); keep one",
                first.line
            ),
        );
        return;
    }
    if let Some(marker) = entry.cut_at {
        report.warn(
            &section.name,
            &key,
            format!(
                "line {number}: the value ends before ` {marker}`, the rest of the line is taken as a comment. If \
                 the `{marker}` belongs to the value, put the value in double quotes (key = \"…\"); if it starts a \
                 comment, put two spaces before it or move it to a line of its own"
            ),
        );
    }
    section.entries.push(RawEntry {
        key,
        value: entry.value.to_string(),
        line: number,
    });
}

/// What a line of the file is, comments and surrounding blanks removed.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    Blank,
    Section(&'a str),
    Entry(Entry<'a>),
}

#[derive(Debug, PartialEq, Eq)]
struct Entry<'a> {
    key: &'a str,
    value: &'a str,
    /// The marker (`#` or `;`) of an inline comment that was stripped one space after the value: it may have been
    /// part of the value.
    cut_at: Option<char>,
}

impl Line<'_> {
    fn contains(&self, c: char) -> bool {
        match self {
            Line::Blank => false,
            Line::Section(name) => name.contains(c),
            Line::Entry(entry) => entry.key.contains(c) || entry.value.contains(c),
        }
    }
}

/// Why a line is none of the four; `key` is the key when the line has one. `why` never quotes the line.
#[derive(Debug, PartialEq, Eq)]
struct LineError<'a> {
    key: &'a str,
    why: String,
}

impl<'a> LineError<'a> {
    fn new(key: &'a str, why: impl Into<String>) -> Self {
        LineError {
            key,
            why: why.into(),
        }
    }
}

fn parse_line(raw: &str) -> Result<Line<'_>, LineError<'_>> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with(['#', ';']) {
        return Ok(Line::Blank);
    }
    if line.starts_with('[') {
        return parse_header(strip_comment(line).0.trim()).map(Line::Section);
    }
    // The separator is looked for before any comment: in `a # b = c` there is none.
    let Some(at) = strip_comment(line).0.find(['=', ':']) else {
        return Err(LineError::new(
            "",
            "expected `key = value`, a `[SECTION]` header or a comment",
        ));
    };
    let key = line[..at].trim();
    if key.is_empty() {
        return Err(LineError::new(
            "",
            "a value without a key (the line starts with `=`)",
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(LineError::new(
            "",
            "the key name contains a control character",
        ));
    }
    let (value, cut_at) = parse_value(&line[at + 1..]).map_err(|why| LineError::new(key, why))?;
    Ok(Line::Entry(Entry { key, value, cut_at }))
}

fn parse_header(header: &str) -> Result<&str, LineError<'_>> {
    let name = header
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or_else(|| LineError::new("", "a section header must end with `]`"))?
        .trim();
    if name.is_empty() || name.contains(['[', ']']) || name.chars().any(char::is_control) {
        return Err(LineError::new("", "not a valid section header"));
    }
    Ok(name)
}

/// Everything after the `=`: the value, and the marker of a stripped comment that may have been part of it.
fn parse_value(text: &str) -> Result<(&str, Option<char>), String> {
    let Some(quoted) = text.trim_start().strip_prefix('"') else {
        // Not trimmed first: in `key = #x` the `#` follows a space and starts a comment, in `key =#x` it does not.
        let (value, comment) = strip_comment(text);
        let cut_at = comment.filter(|c| c.after_one_space).map(|c| c.marker);
        return Ok((value.trim(), cut_at));
    };
    let end = quoted
        .find('"')
        .ok_or("the value starts with `\"` but has no closing `\"`")?;
    let rest = quoted[end + 1..].trim_start();
    if !rest.is_empty() && !rest.starts_with(['#', ';']) {
        return Err(
            "text after the closing `\"`: only a comment may follow a quoted value (a quoted value cannot \
             contain `\"`)"
                .into(),
        );
    }
    Ok((&quoted[..end], None))
}

/// A stripped inline comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Comment {
    marker: char,
    /// Exactly one space separates it from what comes before.
    after_one_space: bool,
}

/// Splits off a comment: from a `#` or `;` that follows whitespace to the end of the line (so `pass#word` keeps
/// its `#`, as in Python's ConfigParser with inline comment prefixes).
fn strip_comment(line: &str) -> (&str, Option<Comment>) {
    let mut previous_is_space = false;
    for (at, c) in line.char_indices() {
        if previous_is_space && (c == '#' || c == ';') {
            let before = &line[..at];
            let kept = before.trim_end();
            return (
                before,
                Some(Comment {
                    marker: c,
                    after_one_space: &before[kept.len()..] == " ",
                }),
            );
        }
        previous_is_space = c.is_whitespace();
    }
    (line, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> (Vec<RawSection>, Report) {
        let mut report = Report::default();
        let sections = read_sections(text, false, &mut report);
        (sections, report)
    }

    fn entries(section: &RawSection) -> Vec<(&str, &str)> {
        section
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect()
    }

    /// Key, value, and whether a comment one space after the value was cut.
    fn entry(line: &str) -> (&str, &str, bool) {
        match parse_line(line) {
            Ok(Line::Entry(e)) => (e.key, e.value, e.cut_at.is_some()),
            other => panic!("{line:?}: {other:?}"),
        }
    }

    fn error(line: &str) -> String {
        match parse_line(line) {
            Err(e) => e.why,
            Ok(other) => panic!("{line:?} accepted as {other:?}"),
        }
    }

    #[test]
    fn comments_are_stripped() {
        assert_eq!(parse_line("# whole line"), Ok(Line::Blank));
        assert_eq!(parse_line("   ; indented"), Ok(Line::Blank));
        assert_eq!(entry("a = b  # note"), ("a", "b", false));
        assert_eq!(entry("a = b\t; note"), ("a", "b", false));
        assert_eq!(entry("a = pass#word;x"), ("a", "pass#word;x", false));
        assert_eq!(entry("a =  # only a comment"), ("a", "", false));
        assert_eq!(entry("a =#not a comment"), ("a", "#not a comment", false));
        assert_eq!(
            parse_line("[NETWORK]   ; note"),
            Ok(Line::Section("NETWORK"))
        );
    }

    #[test]
    fn a_comment_one_space_after_the_value_may_be_part_of_it() {
        assert_eq!(entry("password = bob #1pass"), ("password", "bob", true));
        assert_eq!(entry("password = bob ;1pass"), ("password", "bob", true));
        assert!(matches!(
            parse_line("p = a ;b"),
            Ok(Line::Entry(Entry {
                cut_at: Some(';'),
                ..
            }))
        ));
        assert_eq!(entry("password = #1pass"), ("password", "", true));
        // Two spaces or a tab: the layout of the original's example, clearly a comment.
        assert_eq!(entry("password = bob  #1pass"), ("password", "bob", false));
        assert_eq!(entry("password = bob\t#1pass"), ("password", "bob", false));
        assert_eq!(entry("password = bob \t#1pass"), ("password", "bob", false));
    }

    #[test]
    fn quoted_values_are_taken_as_written() {
        assert_eq!(entry(r#"p = "bob #1pass""#), ("p", "bob #1pass", false));
        assert_eq!(
            entry(r#"p = "bob #1pass" # note"#),
            ("p", "bob #1pass", false)
        );
        assert_eq!(
            entry(r#"p = "bob #1pass"; note"#),
            ("p", "bob #1pass", false)
        );
        assert_eq!(entry(r#"p = " padded ""#), ("p", " padded ", false));
        assert_eq!(entry(r#"p = "C:\new\""#), ("p", r"C:\new\", false));
        assert_eq!(entry(r#"p = """#), ("p", "", false));
        // Quotes inside a value are ordinary characters.
        assert_eq!(entry(r#"p = a"b"c"#), ("p", r#"a"b"c"#, false));
        assert_eq!(
            error(r#"p = "bob #1pass"#),
            "the value starts with `\"` but has no closing `\"`"
        );
        assert!(error(r#"p = "a" b"#).starts_with("text after the closing `\"`"));
        assert_eq!(
            parse_line(r#"p = "a" b"#).unwrap_err().key,
            "p",
            "the error names the key"
        );
    }

    #[test]
    fn lines_are_classified() {
        assert_eq!(parse_line(""), Ok(Line::Blank));
        assert_eq!(parse_line("[ NETWORK ]"), Ok(Line::Section("NETWORK")));
        assert_eq!(entry("listen_port=2121"), ("listen_port", "2121", false));
        assert_eq!(
            entry("cos_endpoint : http://h:9000"),
            ("cos_endpoint", "http://h:9000", false)
        );
        assert_eq!(entry("a = b = c"), ("a", "b = c", false));
        assert_eq!(entry(r"a\b = c"), (r"a\b", "c", false));
        assert!(parse_line("[NETWORK").is_err());
        assert!(parse_line("[]").is_err());
        assert!(parse_line("[a]b]").is_err());
        assert!(parse_line("just words").is_err());
        assert!(parse_line("just words # a = b").is_err());
        assert!(parse_line("= value").is_err());
        assert!(parse_line("a\u{7} = c").is_err());
    }

    #[test]
    fn values_are_kept_verbatim() {
        let text = "[S]\n\
                    path = C:\\new\\table\\\n\
                    next = 'single' \"double\"\n\
                    hash = $6$salt$abc#def;ghi\n\
                    url = https://cos.ap-guangzhou.myqcloud.com/x?a=b\n\
                    empty =\n";
        let (sections, report) = sections(text);
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!(
            entries(&sections[0]),
            [
                ("path", "C:\\new\\table\\"),
                ("next", "'single' \"double\""),
                ("hash", "$6$salt$abc#def;ghi"),
                ("url", "https://cos.ap-guangzhou.myqcloud.com/x?a=b"),
                ("empty", ""),
            ]
        );
    }

    #[test]
    fn layout_of_the_original_is_understood() {
        let text = "\u{feff}[COS_ACCOUNT_0]  # first\r\n\
                    \x20 # an indented comment\r\n\
                    Cos_SecretId = COS_SECRETID    # 替换为您的 SECRETID\r\n\
                    delete_enable=true\t\t # 允许\r\n\
                    \r\n\
                    [NETWORK]\r\n\
                    \x20\x20listen_port = 2121\t\t\t\r\n";
        let (sections, report) = sections(text);
        assert!(report.errors.is_empty(), "{report:?}");
        assert!(report.warnings.is_empty(), "{report:?}");
        assert_eq!(sections.len(), 2);
        assert_eq!(
            (sections[0].name.as_str(), sections[0].line),
            ("COS_ACCOUNT_0", 1)
        );
        assert_eq!(
            entries(&sections[0]),
            [("cos_secretid", "COS_SECRETID"), ("delete_enable", "true")]
        );
        assert_eq!(sections[0].entries[1].line, 4);
        assert_eq!(entries(&sections[1]), [("listen_port", "2121")]);
    }

    #[test]
    fn bad_lines_repeats_and_strays_are_all_reported() {
        let text = "stray = 1\n\
                    [A]\n\
                    key = 1\n\
                    KEY = 2\n\
                    a-secret-pasted-alone\n\
                    [A]\n\
                    other = 3\n\
                    [B\n\
                    [B]\n\
                    x = 1\n\
                    pass = \"unclosed-secret\n";
        let (sections, report) = sections(text);
        let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "stray: line 1: is outside any section; put it under its [SECTION] header",
                "[A] key: line 4: is set more than once in this section (first on line 3); keep one",
                "[A] line 5: expected `key = value`, a `[SECTION]` header or a comment",
                "[A] line 6: the section appears more than once (first on line 2); merge the two (the second one \
                 is ignored)",
                "[A] line 8: a section header must end with `]`",
                "[B] pass: line 11: the value starts with `\"` but has no closing `\"`",
            ]
        );
        let names: Vec<&str> = sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["A", "B"]);
        assert_eq!(entries(&sections[0]), [("key", "1")]);
        assert_eq!(entries(&sections[1]), [("x", "1")]);
        let shown = errors.concat();
        assert!(!shown.contains("a-secret-pasted-alone") && !shown.contains("unclosed"));
    }

    #[test]
    fn a_possibly_cut_value_is_warned_about_without_showing_it() {
        let (sections, report) = sections("[A]\nftp_login_user_password = bob #1pass\n");
        assert_eq!(entries(&sections[0]), [("ftp_login_user_password", "bob")]);
        assert!(report.errors.is_empty());
        let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with(
                "[A] ftp_login_user_password: line 2: the value ends before ` #`, the rest"
            ),
            "{warnings:?}"
        );
        assert!(!warnings[0].contains("bob") && !warnings[0].contains("1pass"));
    }

    #[test]
    fn invalid_utf8_outside_comments_is_reported() {
        let mut report = Report::default();
        let text = "[A]\n# \u{fffd}\u{fffd} comment\nkey = \u{fffd}\nother = x  # \u{fffd}\n";
        let sections = read_sections(text, true, &mut report);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(
            report.errors[0].to_string(),
            "[A] line 3: not valid UTF-8; save the file as UTF-8"
        );
        assert_eq!(entries(&sections[0]), [("other", "x")]);
    }
}
