//! Reading one section: typed getters that record a problem and carry on, so that every problem in the file is
//! found in one pass.

use super::parse::{unknown_key_hint, Report};
use super::syntax::{RawEntry, RawSection};
use super::values::Parsed;

/// The keys a section understands.
#[derive(Debug)]
pub(super) struct Keys {
    /// Keys cosftpd reads.
    pub(super) used: &'static [&'static str],
    /// Keys of the original product that cosftpd accepts but ignores on purpose, each with why (shown in the
    /// warning). Anything else is an error: a misspelt key must not quietly leave its setting at the default.
    pub(super) ignored: &'static [(&'static str, &'static str)],
}

impl Keys {
    pub(super) fn contains(&self, key: &str) -> bool {
        self.used.contains(&key) || self.ignored.iter().any(|(k, _)| *k == key)
    }

    /// Every key, used ones first, for hints.
    pub(super) fn all(&self) -> impl Iterator<Item = &'static str> {
        self.used
            .iter()
            .copied()
            .chain(self.ignored.iter().map(|(k, _)| *k))
    }
}

/// The value was invalid; the problem is already in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Invalid;

pub(super) struct SectionReader<'a> {
    name: &'a str,
    entries: &'a [RawEntry],
    keys: &'static Keys,
    report: &'a mut Report,
}

impl<'a> SectionReader<'a> {
    pub(super) fn new(
        section: &'a RawSection,
        keys: &'static Keys,
        report: &'a mut Report,
    ) -> Self {
        let mut reader = SectionReader {
            name: &section.name,
            entries: &section.entries,
            keys,
            report,
        };
        reader.check_keys();
        reader
    }

    /// A section the file does not have: every key takes its default.
    pub(super) fn empty(name: &'a str, keys: &'static Keys, report: &'a mut Report) -> Self {
        SectionReader {
            name,
            entries: &[],
            keys,
            report,
        }
    }

    /// Unknown keys are errors; the original's keys that cosftpd does not need are warnings.
    fn check_keys(&mut self) {
        for entry in self.entries {
            let key = entry.key.as_str();
            if self.keys.used.contains(&key) {
                continue;
            }
            match self.keys.ignored.iter().find(|(k, _)| *k == key) {
                Some((_, why)) => self.report.warn(self.name, key, format!("ignored: {why}")),
                None => {
                    let hint = unknown_key_hint(key, self.keys);
                    self.report
                        .error(self.name, key, format!("unknown key{hint}"));
                }
            }
        }
    }

    pub(super) fn name(&self) -> &'a str {
        self.name
    }

    pub(super) fn error(&mut self, key: &str, message: impl Into<String>) {
        self.report.error(self.name, key, message);
    }

    pub(super) fn warn(&mut self, key: &str, message: impl Into<String>) {
        self.report.warn(self.name, key, message);
    }

    /// The value as written (trimmed); `None` when the key is absent or empty.
    fn raw(&self, key: &str) -> Option<&'a str> {
        debug_assert!(
            self.keys.used.contains(&key),
            "`{key}` is read but not listed as a key of [{}]",
            self.name
        );
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Whether the key is set to something (possibly invalid).
    pub(super) fn has(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    /// `Ok(None)` when the key is absent, empty or `default` (the original's example writes `min_part_size =
    /// default`), `Err` when its value does not parse (reported).
    pub(super) fn get<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Parsed<T>,
    ) -> Result<Option<T>, Invalid> {
        match self.raw(key) {
            None => Ok(None),
            Some(value) if value.eq_ignore_ascii_case("default") => Ok(None),
            Some(value) => self.parse(key, value, parse).map(Some),
        }
    }

    /// The parsed value, or `default` when it is not set or invalid (then the error is already reported, and the
    /// default only lets the remaining checks run).
    pub(super) fn value<T>(
        &mut self,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Parsed<T>,
    ) -> T {
        self.get(key, parse).ok().flatten().unwrap_or(default)
    }

    /// A key without a default: `None` when not set or invalid (reported).
    pub(super) fn optional<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Parsed<T>,
    ) -> Option<T> {
        self.get(key, parse).ok().flatten()
    }

    /// A key that must be set. `default` is an ordinary value here (a user may be called `default`).
    pub(super) fn required<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Parsed<T>,
    ) -> Option<T> {
        match self.raw(key) {
            Some(value) => self.parse(key, value, parse).ok(),
            None => {
                self.error(key, "required, but missing or empty");
                None
            }
        }
    }

    fn parse<T>(
        &mut self,
        key: &str,
        value: &str,
        parse: impl FnOnce(&str) -> Parsed<T>,
    ) -> Result<T, Invalid> {
        parse(value).map_err(|why| {
            let shown = if is_secret(key) {
                "(not shown: it is secret)".to_string()
            } else {
                format!("`{value}`")
            };
            self.error(key, format!("invalid value {shown}: {why}"));
            Invalid
        })
    }
}

/// Keys whose values must never appear in a message: credentials and passwords, present and future, and URLs,
/// which may carry a password (`redis://:password@host`).
pub(super) fn is_secret(key: &str) -> bool {
    key.contains("secret") || key.contains("password") || key.ends_with("_url")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values;

    const KEYS: &Keys = &Keys {
        used: &["flag", "count", "cos_secretkey", "name"],
        ignored: &[("old_flag", "the flag of old")],
    };

    fn section(entries: &[(&str, &str)]) -> RawSection {
        RawSection {
            name: "S".into(),
            line: 1,
            entries: entries
                .iter()
                .zip(2..)
                .map(|((k, v), line)| RawEntry {
                    key: k.to_string(),
                    value: v.to_string(),
                    line,
                })
                .collect(),
        }
    }

    fn messages(report: &Report) -> Vec<String> {
        report.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_apply_to_absent_empty_and_default() {
        let section = section(&[("flag", ""), ("count", "DEFAULT")]);
        let mut report = Report::default();
        let mut r = SectionReader::new(&section, KEYS, &mut report);
        assert!(r.value("flag", true, values::boolean));
        assert_eq!(r.value("count", 7, values::number::<u32>), 7);
        assert_eq!(r.optional("name", |s| Ok(s.to_string())), None);
        assert!(report.errors.is_empty() && report.warnings.is_empty());
    }

    #[test]
    fn invalid_values_are_reported_and_defaulted() {
        let section = section(&[("flag", "maybe"), ("count", "x")]);
        let mut report = Report::default();
        let mut r = SectionReader::new(&section, KEYS, &mut report);
        assert!(r.value("flag", true, values::boolean));
        assert_eq!(r.get("count", values::number::<u32>), Err(Invalid));
        assert_eq!(r.required("name", |s| Ok(s.to_string())), None);
        assert_eq!(
            messages(&report),
            [
                "[S] flag: invalid value `maybe`: expected true/false, yes/no, on/off or 1/0",
                "[S] count: invalid value `x`: expected a whole number",
                "[S] name: required, but missing or empty",
            ]
        );
    }

    #[test]
    fn secret_values_are_never_shown() {
        let section = section(&[("cos_secretkey", "hunter2 hunter2")]);
        let mut report = Report::default();
        let mut r = SectionReader::new(&section, KEYS, &mut report);
        let parsed: Option<bool> = r.required("cos_secretkey", values::boolean);
        assert_eq!(parsed, None);
        let text = messages(&report).concat();
        assert!(text.contains("cos_secretkey"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn unknown_keys_are_errors_and_ignored_keys_warnings() {
        let section = section(&[
            ("falg", "1"),
            ("zzz", "1"),
            ("old_flag", "1"),
            ("flag", "1"),
        ]);
        let mut report = Report::default();
        SectionReader::new(&section, KEYS, &mut report);
        assert_eq!(
            messages(&report),
            ["[S] falg: unknown key", "[S] zzz: unknown key"]
        );
        let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings, ["[S] old_flag: ignored: the flag of old"]);
        assert!(KEYS.contains("old_flag") && KEYS.contains("flag") && !KEYS.contains("zzz"));
    }
}
