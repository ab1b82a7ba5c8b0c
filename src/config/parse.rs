//! INI text → `Config`. The file is read whole and every problem in it is collected, so one run of `check-config`
//! lists everything to fix.
//!
//! The steps:
//! 1. `syntax` turns the text into sections of lower-cased `key → value` (comments stripped, shape checked),
//! 2. one `SectionReader` per section turns strings into typed values; it records a problem and carries on with
//!    the default instead of returning early,
//! 3. checks that span sections (memory budget against part size; users, home dirs and storage roots that clash
//!    between accounts) run last.
//!
//! Values of secret keys never reach a message: see `reader::is_secret`.

use std::fmt;
use std::path::Path;

use super::account::{self, AccountClaims, ACCOUNT_KEYS};
use super::reader::{Keys, SectionReader};
use super::settings::{self, CLUSTER_KEYS, FILE_OPTION_KEYS, NETWORK_KEYS, OPTIONAL_KEYS};
use super::syntax::{self, RawSection};
use super::values::format_size;
use super::{Config, FileOption, Optional, MAX_PARTS};

pub(super) const NETWORK: &str = "NETWORK";
pub(super) const FILE_OPTION: &str = "FILE_OPTION";
pub(super) const OPTIONAL: &str = "OPTIONAL";
pub(super) const CLUSTER: &str = "CLUSTER";

/// The fixed sections and their keys, for "unknown key" hints.
const SETTINGS_SECTIONS: [(&str, &Keys); 4] = [
    (NETWORK, NETWORK_KEYS),
    (FILE_OPTION, FILE_OPTION_KEYS),
    (OPTIONAL, OPTIONAL_KEYS),
    (CLUSTER, CLUSTER_KEYS),
];

/// One problem in the file, naming where it is. `section` and `key` are empty when the problem is not tied to one
/// (an unreadable file, a line outside any section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub section: String,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.section.is_empty(), self.key.is_empty()) {
            (false, false) => write!(f, "[{}] {}: {}", self.section, self.key, self.message),
            (false, true) => write!(f, "[{}] {}", self.section, self.message),
            (true, false) => write!(f, "{}: {}", self.key, self.message),
            (true, true) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in the file, reported together, with the warnings found on the way (an unknown key is
/// often the reason a required one is "missing").
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<String>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors.iter().map(ToString::to_string);
        let warnings = self.warnings.iter().map(|w| format!("warning: {w}"));
        let lines: Vec<String> = errors.chain(warnings).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for ConfigErrors {}

/// Problems found so far. Errors make the file unusable; warnings do not.
#[derive(Debug, Default)]
pub(super) struct Report {
    pub(super) errors: Vec<ConfigError>,
    pub(super) warnings: Vec<ConfigError>,
}

impl Report {
    pub(super) fn error(&mut self, section: &str, key: &str, message: impl Into<String>) {
        self.errors.push(problem(section, key, message));
    }

    pub(super) fn warn(&mut self, section: &str, key: &str, message: impl Into<String>) {
        self.warnings.push(problem(section, key, message));
    }

    pub(super) fn has_error(&self, section: &str, key: &str) -> bool {
        self.errors
            .iter()
            .any(|e| e.section == section && e.key == key)
    }

    /// Problems are found section type by section type; list them in the order of the file instead.
    fn finish(mut self, config: Config, file_order: &[&str]) -> Result<Config, ConfigErrors> {
        let position = |p: &ConfigError| file_order.iter().position(|s| *s == p.section);
        self.errors.sort_by_key(position);
        self.warnings.sort_by_key(position);
        let warnings = self.warnings.iter().map(ToString::to_string).collect();
        if self.errors.is_empty() {
            Ok(Config { warnings, ..config })
        } else {
            Err(ConfigErrors {
                errors: self.errors,
                warnings,
            })
        }
    }
}

pub(super) fn problem(section: &str, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        section: section.to_string(),
        key: key.to_string(),
        message: message.into(),
    }
}

pub(super) fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let bytes = std::fs::read(path).map_err(|e| ConfigErrors {
        errors: vec![problem(
            "",
            "",
            format!("cannot read {}: {e}", path.display()),
        )],
        warnings: Vec::new(),
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, false),
        // The original (Python 2) read bytes, so files with GBK comments worked; they still do, and a value that
        // is not UTF-8 is reported by `syntax`.
        Err(e) => parse(&String::from_utf8_lossy(e.as_bytes()), true),
    }
}

pub(super) fn parse_str(text: &str) -> Result<Config, ConfigErrors> {
    parse(text, false)
}

/// `lossy`: the text was decoded with replacement characters, which must not end up in a value.
fn parse(text: &str, lossy: bool) -> Result<Config, ConfigErrors> {
    let mut report = Report::default();
    let sections = syntax::read_sections(text, lossy, &mut report);
    let config = build(&sections, &mut report);
    let file_order: Vec<&str> = sections.iter().map(|s| s.name.as_str()).collect();
    report.finish(config, &file_order)
}

fn build(sections: &[RawSection], report: &mut Report) -> Config {
    check_section_names(sections, report);

    let network = settings::read_network(&mut reader(sections, NETWORK, NETWORK_KEYS, report));
    let file =
        settings::read_file_option(&mut reader(sections, FILE_OPTION, FILE_OPTION_KEYS, report));
    let optional = settings::read_optional(&mut reader(sections, OPTIONAL, OPTIONAL_KEYS, report));
    check_memory_budget(&file, &optional, report);
    // Optional as a whole: without the section, this node keeps its state to itself.
    let cluster = sections
        .iter()
        .find(|s| s.name == CLUSTER)
        .and_then(|section| {
            let mut r = SectionReader::new(section, CLUSTER_KEYS, report);
            settings::read_cluster(&mut r, network.listen_port)
        });

    let mut claims = AccountClaims::new(optional.mount_enable);
    let mut accounts = Vec::new();
    for section in sections.iter().filter(|s| is_account_section(&s.name)) {
        let mut r = SectionReader::new(section, ACCOUNT_KEYS, report);
        accounts.extend(account::read_account(&mut r, &optional, &mut claims));
    }
    if !sections.iter().any(|s| is_account_section(&s.name)) {
        report.error(
            "",
            "",
            "no [COS_ACCOUNT_0] section: at least one account (FTP user and bucket) is needed",
        );
    }

    Config {
        accounts,
        network,
        file,
        optional,
        cluster,
        warnings: Vec::new(),
    }
}

/// The original took any section starting with `COS_ACCOUNT`; `[COS_ACCOUNT_<anything>]` is the documented form.
fn is_account_section(name: &str) -> bool {
    name == "COS_ACCOUNT" || name.starts_with("COS_ACCOUNT_")
}

/// A reader over the named section, or over an empty one when the file has none (every key takes its default).
fn reader<'a>(
    sections: &'a [RawSection],
    name: &'static str,
    keys: &'static Keys,
    report: &'a mut Report,
) -> SectionReader<'a> {
    match sections.iter().find(|s| s.name == name) {
        Some(section) => SectionReader::new(section, keys, report),
        None => SectionReader::empty(name, keys, report),
    }
}

/// An unknown section is an error: a misspelt `[COS_ACCOUNT_1]` would drop an account, a `[network]` every
/// network setting, and a warning is easily missed.
fn check_section_names(sections: &[RawSection], report: &mut Report) {
    for section in sections {
        let name = section.name.as_str();
        if is_known_section(name) {
            continue;
        }
        let hint = match section_guess(name) {
            // Section names are case-sensitive, as in the original (Python's ConfigParser).
            Some(guess) if guess.eq_ignore_ascii_case(name) => {
                format!("section names are case-sensitive: did you mean [{guess}]?")
            }
            Some(guess) => format!("did you mean [{guess}]?"),
            None => format!(
                "known sections: [COS_ACCOUNT_<n>], [{NETWORK}], [{FILE_OPTION}], [{OPTIONAL}], [{CLUSTER}]"
            ),
        };
        report.error(name, "", format!("unknown section ({hint})"));
    }
}

fn is_known_section(name: &str) -> bool {
    [NETWORK, FILE_OPTION, OPTIONAL, CLUSTER].contains(&name) || is_account_section(name)
}

/// The section probably meant: the same name in upper case, or one within two edits of a known name
/// (`[NETWROK]`, `[COS_ACOUNT_1]`, `[COS_ACCOUNT1]`).
fn section_guess(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    if is_known_section(&upper) {
        return Some(upper);
    }
    if let Some(near) = [NETWORK, FILE_OPTION, OPTIONAL, CLUSTER]
        .into_iter()
        .find(|known| is_typo_of(&upper, known))
    {
        return Some(near.to_string());
    }
    // An account section: `<something close to COS_ACCOUNT>`, then `_<suffix>` or digits. `upper` has the same
    // byte offsets as `name` (ASCII upper-casing), so the suffix is kept as written.
    let digits = upper.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let splits = upper
        .match_indices('_')
        .map(|(at, _)| (at, at + 1))
        .chain([(digits, digits), (upper.len(), upper.len())]);
    for (prefix_end, suffix_start) in splits {
        if is_typo_of(&upper[..prefix_end], "COS_ACCOUNT") {
            return Some(match &name[suffix_start..] {
                "" => "COS_ACCOUNT".to_string(),
                suffix => format!("COS_ACCOUNT_{suffix}"),
            });
        }
    }
    None
}

/// Why an unknown key might be there: a typo of a key of this section, or a key of another section.
pub(super) fn unknown_key_hint(key: &str, section: &Keys) -> String {
    if let Some(near) = section.all().find(|k| is_typo_of(key, k)) {
        return format!(" (did you mean {near}?)");
    }
    let mut owners = SETTINGS_SECTIONS
        .iter()
        .chain([("COS_ACCOUNT_<n>", ACCOUNT_KEYS)].iter())
        .filter(|(_, keys)| keys.contains(key) && keys.used != section.used);
    match owners.next() {
        Some((owner, _)) => format!(" (it belongs in [{owner}])"),
        None => String::new(),
    }
}

/// Within two edits (insert, delete, substitute), for keys long enough that this is not a coincidence.
fn is_typo_of(typed: &str, known: &str) -> bool {
    known.len() >= 5 && edit_distance(typed, known) <= 2
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// An upload keeps one part filling while at least one is in flight, so the shared budget must hold two parts or
/// uploads could never make progress. Skipped when an input is itself invalid: its own error says what to fix.
fn check_memory_budget(file: &FileOption, optional: &Optional, report: &mut Report) {
    let inputs = [
        (FILE_OPTION, "single_file_max_size"),
        (OPTIONAL, "min_part_size"),
        (OPTIONAL, "memory_budget"),
    ];
    if inputs
        .iter()
        .any(|(section, key)| report.has_error(section, key))
    {
        return;
    }
    let part = optional.part_size(file);
    if optional.memory_budget < 2 * part {
        report.error(
            OPTIONAL,
            "memory_budget",
            format!(
                "{} is less than two upload parts ({} each): every upload holds a part being filled while \
                 another is sent. The part size is max(min_part_size, single_file_max_size / {MAX_PARTS}); \
                 raise memory_budget to at least {}, or lower single_file_max_size or min_part_size",
                format_size(optional.memory_budget),
                format_size(part),
                format_size(2 * part),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display_leaves_out_what_is_empty() {
        assert_eq!(
            problem("NETWORK", "listen_port", "bad").to_string(),
            "[NETWORK] listen_port: bad"
        );
        assert_eq!(problem("NETWORK", "", "bad").to_string(), "[NETWORK] bad");
        assert_eq!(problem("", "key", "bad").to_string(), "key: bad");
        assert_eq!(problem("", "", "bad").to_string(), "bad");
    }

    #[test]
    fn errors_then_warnings_in_display() {
        let errors = ConfigErrors {
            errors: vec![problem("A", "k", "one"), problem("B", "", "two")],
            warnings: vec!["[C] x: ignored: why".into()],
        };
        assert_eq!(
            errors.to_string(),
            "[A] k: one\n[B] two\nwarning: [C] x: ignored: why"
        );
    }

    #[test]
    fn typo_hints() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("listen_prot", "listen_port"), 2);
        assert_eq!(
            unknown_key_hint("listen_prot", NETWORK_KEYS),
            " (did you mean listen_port?)"
        );
        assert_eq!(
            unknown_key_hint("listen_port", OPTIONAL_KEYS),
            " (it belongs in [NETWORK])"
        );
        assert_eq!(
            unknown_key_hint("home_dir", NETWORK_KEYS),
            " (it belongs in [COS_ACCOUNT_<n>])"
        );
        assert_eq!(unknown_key_hint("colour", NETWORK_KEYS), "");
        // The original's ignored keys count as keys of [OPTIONAL].
        assert_eq!(
            unknown_key_hint("log_backup_count", NETWORK_KEYS),
            " (it belongs in [OPTIONAL])"
        );
        assert_eq!(
            unknown_key_hint("log_rotate_enable", OPTIONAL_KEYS),
            " (did you mean log_rotate_enabled?)"
        );
    }

    #[test]
    fn section_guesses() {
        let guess = |name| section_guess(name);
        assert_eq!(guess("network").as_deref(), Some("NETWORK"));
        assert_eq!(guess("cos_account_1").as_deref(), Some("COS_ACCOUNT_1"));
        assert_eq!(guess("NETWROK").as_deref(), Some("NETWORK"));
        assert_eq!(guess("FILE_OPTIONS").as_deref(), Some("FILE_OPTION"));
        assert_eq!(guess("OPTION").as_deref(), Some("OPTIONAL"));
        assert_eq!(guess("COS_ACOUNT_1").as_deref(), Some("COS_ACCOUNT_1"));
        assert_eq!(guess("COS_ACOUNT_a").as_deref(), Some("COS_ACCOUNT_a"));
        assert_eq!(guess("COS_ACCOUNT1").as_deref(), Some("COS_ACCOUNT_1"));
        assert_eq!(guess("COS_ACOUNT").as_deref(), Some("COS_ACCOUNT"));
        assert_eq!(guess("cos-account-2").as_deref(), Some("COS_ACCOUNT_2"));
        assert_eq!(guess("FTP_ACCOUNT"), None);
        assert_eq!(guess("EXTRA"), None);
    }
}
