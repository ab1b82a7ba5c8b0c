//! Text → sections of `key → value`.
//!
//! rust-ini does the grouping, but it is handed pre-cleaned lines, because on raw text of this format it goes
//! wrong in ways that corrupt values silently (rust-ini 0.21 without its `inline-comment` feature):
//! - the original's own example has inline comments (`cos_secretid = COS_SECRETID    # 替换…`), which rust-ini
//!   keeps as part of the value, and after a `[SECTION]` header it rejects them;
//! - an indented comment, or a line without `=`, becomes the start of a key that runs on to the next line's `=`;
//! - a value ending in `\` swallows the next line.
//!
//! So each line is checked and reduced to blank, `[name]` or `key=value` here first, and reported with its line
//! number when it is none of those. Quote and escape handling stay off: `\` and quotes are ordinary characters in
//! paths and passwords, as they were for the original's ConfigParser.

use ini::{Ini, ParseOption};

use super::parse::Report;

/// One `[section]` of the file, in file order; keys lower-cased (as Python's ConfigParser does), values trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawSection {
    pub(super) name: String,
    pub(super) entries: Vec<(String, String)>,
}

impl RawSection {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

const PARSE_OPTION: ParseOption = ParseOption {
    enabled_quote: false,
    enabled_escape: false,
    enabled_indented_mutiline_value: false,
    enabled_preserve_key_leading_whitespace: false,
};

/// `lossy`: the text was decoded from invalid UTF-8; a replacement character left outside comments is an error.
pub(super) fn read_sections(text: &str, lossy: bool, report: &mut Report) -> Vec<RawSection> {
    let cleaned = clean(text, lossy, report);
    match Ini::load_from_str_opt(&cleaned, PARSE_OPTION) {
        Ok(ini) => collect(&ini, report),
        // Not expected after cleaning; reported rather than trusted.
        Err(e) => {
            report.error("", "", format!("line {}: {}", e.line, e.msg));
            Vec::new()
        }
    }
}

/// What a line of the file is, comments and surrounding blanks removed.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    Blank,
    Section(&'a str),
    Entry { key: &'a str, value: &'a str },
}

/// Rewrites the text line for line (so rust-ini's line numbers stay ours), dropping lines that are reported.
fn clean(text: &str, lossy: bool, report: &mut Report) -> String {
    // Windows editors like to start UTF-8 files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    let mut section = String::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = strip_comment(raw).trim();
        if lossy && line.contains(char::REPLACEMENT_CHARACTER) {
            report.error(
                &section,
                "",
                format!("line {number}: not valid UTF-8; save the file as UTF-8"),
            );
        } else {
            match classify(line) {
                Ok(Line::Blank) => {}
                Ok(Line::Section(name)) => {
                    section = name.to_string();
                    out.push_str(&format!("[{name}]"));
                }
                Ok(Line::Entry { key, value }) => {
                    out.push_str(&format!("{key}={value}"));
                    // rust-ini joins the next line onto a value ending in `\`, escapes off or not.
                    if value.ends_with('\\') {
                        out.push(' ');
                    }
                }
                // The line is not echoed: it may be a secret pasted on its own.
                Err(why) => report.error(&section, "", format!("line {number}: {why}")),
            }
        }
        out.push('\n');
    }
    out
}

/// Removes a comment: a whole line starting with `#` or `;`, or from a `#` or `;` that follows whitespace to the
/// end of the line (so `pass#word` keeps its `#`, as in Python's ConfigParser with inline comment prefixes).
fn strip_comment(line: &str) -> &str {
    let trimmed = line.trim_start();
    if trimmed.starts_with(['#', ';']) {
        return "";
    }
    let mut previous_is_space = false;
    for (at, c) in line.char_indices() {
        if previous_is_space && (c == '#' || c == ';') {
            return &line[..at];
        }
        previous_is_space = c.is_whitespace();
    }
    line
}

fn classify(line: &str) -> Result<Line<'_>, String> {
    if line.is_empty() {
        return Ok(Line::Blank);
    }
    if let Some(rest) = line.strip_prefix('[') {
        let name = rest
            .strip_suffix(']')
            .ok_or_else(|| "a section header must end with `]`".to_string())?
            .trim();
        // `\` would be taken as an escape by rust-ini's section reader.
        if name.is_empty() || name.contains(['[', ']', '\\']) {
            return Err(format!("`{line}` is not a valid section header"));
        }
        return Ok(Line::Section(name));
    }
    let Some(at) = line.find(['=', ':']) else {
        return Err("expected `key = value`, a `[SECTION]` header or a comment".into());
    };
    let key = line[..at].trim();
    let value = line[at + 1..].trim();
    if key.is_empty() {
        return Err("a value without a key (the line starts with `=`)".into());
    }
    if key.contains('\\') || key.chars().any(char::is_control) {
        return Err("the key name contains `\\` or a control character".into());
    }
    Ok(Line::Entry { key, value })
}

/// rust-ini's sections → ours, reporting keys outside any section, repeated sections and repeated keys: the
/// original silently kept the last of each, which is how two `authority` lines end up granting the wrong one.
fn collect(ini: &Ini, report: &mut Report) -> Vec<RawSection> {
    let mut sections: Vec<RawSection> = Vec::new();
    for (name, properties) in ini.iter() {
        let Some(name) = name else {
            for (key, _) in properties.iter() {
                report.error(
                    "",
                    &key.to_lowercase(),
                    "is outside any section; put it under its [SECTION] header",
                );
            }
            continue;
        };
        if sections.iter().any(|s| s.name == name) {
            report.error(
                name,
                "",
                "the section appears more than once; merge the two (the second one is ignored)",
            );
            continue;
        }
        let mut section = RawSection {
            name: name.to_string(),
            entries: Vec::new(),
        };
        for (key, value) in properties.iter() {
            let key = key.to_lowercase();
            if section.get(&key).is_some() {
                report.error(
                    name,
                    &key,
                    "is set more than once in this section; keep one",
                );
                continue;
            }
            section.entries.push((key, value.to_string()));
        }
        sections.push(section);
    }
    sections
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
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn comments_are_stripped() {
        assert_eq!(strip_comment("# whole line"), "");
        assert_eq!(strip_comment("   ; indented"), "");
        assert_eq!(strip_comment("a = b # note"), "a = b ");
        assert_eq!(strip_comment("a = b\t; note"), "a = b\t");
        assert_eq!(strip_comment("a = pass#word;x"), "a = pass#word;x");
        assert_eq!(strip_comment("a = # only a comment"), "a = ");
        assert_eq!(strip_comment("[NETWORK]   ; note"), "[NETWORK]   ");
    }

    #[test]
    fn lines_are_classified() {
        assert_eq!(classify(""), Ok(Line::Blank));
        assert_eq!(classify("[ NETWORK ]"), Ok(Line::Section("NETWORK")));
        assert_eq!(
            classify("listen_port=2121"),
            Ok(Line::Entry {
                key: "listen_port",
                value: "2121"
            })
        );
        assert_eq!(
            classify("cos_endpoint : http://h:9000"),
            Ok(Line::Entry {
                key: "cos_endpoint",
                value: "http://h:9000"
            })
        );
        assert_eq!(
            classify("a = b = c"),
            Ok(Line::Entry {
                key: "a",
                value: "b = c"
            })
        );
        assert!(classify("[NETWORK").is_err());
        assert!(classify("[]").is_err());
        assert!(classify("[a]b]").is_err());
        assert!(classify("just words").is_err());
        assert!(classify("= value").is_err());
        assert!(classify("a\\b = c").is_err());
    }

    #[test]
    fn values_survive_rust_ini_verbatim() {
        let text = "[S]\n\
                    path = C:\\new\\table\\\n\
                    next = \"quoted\" 'single'\n\
                    hash = $6$salt$abc#def;ghi\n\
                    url = https://cos.ap-guangzhou.myqcloud.com/x?a=b\n\
                    empty =\n";
        let (sections, report) = sections(text);
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!(
            entries(&sections[0]),
            [
                ("path", "C:\\new\\table\\"),
                ("next", "\"quoted\" 'single'"),
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
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].name, "COS_ACCOUNT_0");
        assert_eq!(
            entries(&sections[0]),
            [("cos_secretid", "COS_SECRETID"), ("delete_enable", "true")]
        );
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
                    x = 1\n";
        let (sections, report) = sections(text);
        let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "[A] line 5: expected `key = value`, a `[SECTION]` header or a comment",
                "[A] line 8: a section header must end with `]`",
                "stray: is outside any section; put it under its [SECTION] header",
                "[A] key: is set more than once in this section; keep one",
                "[A] the section appears more than once; merge the two (the second one is ignored)",
            ]
        );
        let names: Vec<&str> = sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["A", "B"]);
        assert_eq!(entries(&sections[0]), [("key", "1")]);
        assert!(!errors.concat().contains("a-secret-pasted-alone"));
    }

    #[test]
    fn invalid_utf8_outside_comments_is_reported() {
        let mut report = Report::default();
        let text = "[A]\n# \u{fffd}\u{fffd} comment\nkey = \u{fffd}\n";
        read_sections(text, true, &mut report);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(
            report.errors[0].to_string(),
            "[A] line 3: not valid UTF-8; save the file as UTF-8"
        );
    }
}
