//! Virtual paths ↔ object keys: the one place where paths are parsed, joined, split and confined. Adapters hand
//! the core what the user typed (an FTP argument with the session's directory, a FUSE parent and name) and get a
//! `Key` back; they never split or join paths themselves. `..` never leaves the root; `.` and `..` never reach
//! the store.

use super::error::{FsError, FsErrorKind, FsResult};

/// COS's limit on a key, in bytes.
pub const MAX_KEY_BYTES: usize = 850;

/// A normalised path under the bucket root: no leading or trailing `/`, no empty, `.` or `..` segments.
/// The root is the empty key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    pub fn root() -> Self {
        Key(String::new())
    }

    /// Normalises `path` (absolute or relative to the root); `..` at the root stays at the root.
    pub fn parse(path: &str) -> FsResult<Self> {
        Key::root().resolve(path)
    }

    /// What `arg` names when typed in the directory `self` (an FTP argument in the session's directory): an
    /// absolute `arg` starts from the root, a relative one from `self`; `.` and empty segments vanish and `..`
    /// goes up, never above the root.
    pub fn resolve(&self, arg: &str) -> FsResult<Self> {
        let mut segments: Vec<&str> = if arg.starts_with('/') {
            Vec::new()
        } else {
            self.segments().collect()
        };
        for segment in arg.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                name => {
                    validate_segment(name)?;
                    segments.push(name);
                }
            }
        }
        let key = segments.join("/");
        // OpenDAL trims whitespace around every path it is given: `a ` would silently become `a`.
        if key.starts_with(char::is_whitespace) || key.ends_with(char::is_whitespace) {
            return Err(FsError::new(
                FsErrorKind::InvalidName,
                format!("name {key:?} begins or ends with whitespace, which the store cannot keep"),
            ));
        }
        // The directory marker adds one byte.
        if key.len() + 1 > MAX_KEY_BYTES {
            return Err(FsError::new(
                FsErrorKind::NameTooLong,
                format!(
                    "name too long: {} bytes, the store allows {}",
                    key.len(),
                    MAX_KEY_BYTES - 1
                ),
            ));
        }
        Ok(Key(key))
    }

    /// `parent/name` for a child name given by a caller (FUSE lookups).
    pub fn join(&self, name: &str) -> FsResult<Self> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(FsError::new(
                FsErrorKind::InvalidName,
                format!("invalid name {name:?}"),
            ));
        }
        validate_segment(name)?;
        let joined = if self.is_root() {
            name.to_string()
        } else {
            format!("{}/{name}", self.0)
        };
        Key::parse(&joined)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// Refuses a key with a name longer than `max` bytes (a local filesystem's NAME_MAX), so that such a name
    /// fails at once with "name too long" instead of as a store error.
    pub fn check_name_lengths(&self, max: usize) -> FsResult<()> {
        match self.segments().find(|s| s.len() > max) {
            Some(long) => Err(FsError::new(
                FsErrorKind::NameTooLong,
                format!(
                    "{}: the name {:?}… is {} bytes; this store allows {max}",
                    self.display(),
                    long.chars().take(16).collect::<String>(),
                    long.len()
                ),
            )),
            None => Ok(()),
        }
    }

    /// `self` moved from under `from` to under `to` (a rename of `from`), or `None` when `self` is not `from` or
    /// below it.
    pub fn rebase(&self, from: &Key, to: &Key) -> Option<Key> {
        if !self.starts_with(from) || from.is_root() {
            return None;
        }
        let rest = &self.0[from.0.len()..];
        Some(Key(format!("{}{rest}", to.0)))
    }

    /// The object key of a file.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prefix of a directory's children (and its marker key): `a/b/`, or `` for the root.
    pub fn dir_prefix(&self) -> String {
        if self.is_root() {
            String::new()
        } else {
            format!("{}/", self.0)
        }
    }

    /// The path a user sees: `/a/b`.
    pub fn display(&self) -> String {
        format!("/{}", self.0)
    }

    pub fn parent(&self) -> Option<Key> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(i) => Key(self.0[..i].to_string()),
            None => Key::root(),
        })
    }

    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// True when `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &Key) -> bool {
        other.is_root() || self.0 == other.0 || self.0.starts_with(&other.dir_prefix())
    }
}

fn validate_segment(name: &str) -> FsResult<()> {
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(FsError::new(
            FsErrorKind::InvalidName,
            format!(
                "name {name:?} contains the control character U+{:04X}",
                c as u32
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_never_escapes_the_root() {
        assert_eq!(Key::parse("/a/./b//c/").unwrap().as_str(), "a/b/c");
        assert_eq!(
            Key::parse("../../etc/passwd").unwrap().as_str(),
            "etc/passwd"
        );
        assert_eq!(Key::parse("/a/../../b").unwrap().as_str(), "b");
        assert!(Key::parse("/..").unwrap().is_root());
        assert!(Key::parse("").unwrap().is_root());
    }

    #[test]
    fn whitespace_at_either_end_of_a_key_is_refused() {
        for bad in [" a", "a ", "/dir/file ", "\u{3000}x", " a/b"] {
            assert_eq!(
                Key::parse(bad).unwrap_err().kind(),
                FsErrorKind::InvalidName,
                "{bad:?}"
            );
        }
        assert_eq!(Key::parse("a b/ c/d e").unwrap().as_str(), "a b/ c/d e");
        assert_eq!(Key::parse("dir/ x").unwrap().name(), " x");
    }

    #[test]
    fn prefixes_parents_and_names() {
        let k = Key::parse("/dir/sub/file.txt").unwrap();
        assert_eq!(k.dir_prefix(), "dir/sub/file.txt/");
        assert_eq!(k.parent().unwrap().as_str(), "dir/sub");
        assert_eq!(k.name(), "file.txt");
        assert_eq!(Key::parse("x").unwrap().parent(), Some(Key::root()));
        assert_eq!(Key::root().parent(), None);
        assert_eq!(k.display(), "/dir/sub/file.txt");
    }

    #[test]
    fn refuses_control_characters_and_long_keys() {
        assert_eq!(
            Key::parse("a\nb").unwrap_err().kind(),
            FsErrorKind::InvalidName
        );
        assert_eq!(
            Key::parse("a\0b").unwrap_err().kind(),
            FsErrorKind::InvalidName
        );
        assert!(Key::parse(&"x".repeat(849)).is_ok());
        assert_eq!(
            Key::parse(&"x".repeat(850)).unwrap_err().kind(),
            FsErrorKind::NameTooLong
        );
        // Multi-byte names count bytes, not characters.
        assert!(Key::parse(&"中".repeat(283)).is_ok());
        assert!(Key::parse(&"中".repeat(284)).is_err());
    }

    #[test]
    fn join_refuses_path_tricks() {
        let root = Key::root();
        assert_eq!(root.join("a").unwrap().as_str(), "a");
        assert_eq!(
            Key::parse("a").unwrap().join("b c").unwrap().as_str(),
            "a/b c"
        );
        for bad in ["", ".", "..", "a/b"] {
            assert!(root.join(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolve_relative_and_absolute() {
        let cases = [
            ("", "a", "a"),
            ("", "a/b/c", "a/b/c"),
            ("a", "b", "a/b"),
            ("a/b", "/c", "c"),
            ("a/b", "/", ""),
            ("a/b", "", "a/b"),
            ("a/b", ".", "a/b"),
            ("a/b", "./c/./d/", "a/b/c/d"),
            ("a/b", "c//d", "a/b/c/d"),
            ("a/b", "//c///d//", "c/d"),
            ("a/b", "..", "a"),
            ("a/b", "../..", ""),
            ("a/b", "../../../../etc", "etc"),
            ("a/b", "c/../../d", "a/d"),
            ("", "...", "..."),
            ("", ".hidden/..x", ".hidden/..x"),
        ];
        for (cwd, arg, want) in cases {
            let cwd = Key::parse(cwd).unwrap();
            assert_eq!(
                cwd.resolve(arg).unwrap().as_str(),
                want,
                "{cwd:?} + {arg:?}"
            );
        }
    }

    #[test]
    fn rebase_moves_a_key_with_its_directory() {
        let k = |s: &str| Key::parse(s).unwrap();
        assert_eq!(
            k("d/sub/f").rebase(&k("d"), &k("e/x")),
            Some(k("e/x/sub/f"))
        );
        assert_eq!(k("d").rebase(&k("d"), &k("e")), Some(k("e")));
        assert_eq!(k("dx/f").rebase(&k("d"), &k("e")), None);
        assert_eq!(k("a").rebase(&Key::root(), &k("e")), None);
    }

    #[test]
    fn name_lengths_per_store() {
        let k = Key::parse(&format!("dir/{}", "n".repeat(256))).unwrap();
        assert_eq!(
            k.check_name_lengths(255).unwrap_err().kind(),
            FsErrorKind::NameTooLong
        );
        assert!(k.check_name_lengths(256).is_ok());
    }

    #[test]
    fn starts_with_is_by_segment() {
        let a = Key::parse("a").unwrap();
        assert!(Key::parse("a/b").unwrap().starts_with(&a));
        assert!(a.starts_with(&a));
        assert!(!Key::parse("ab").unwrap().starts_with(&a));
        assert!(a.starts_with(&Key::root()));
    }

    /// Paths made of the pieces that matter: names, `.`, `..`, empty segments, spaces, control characters.
    fn path_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let segment = proptest::sample::select(vec![
            "a", "b", "中文", ".", "..", "", " ", "x y", "\u{7}", "...", "a.b",
        ]);
        (any::<bool>(), proptest::collection::vec(segment, 0..8)).prop_map(
            |(absolute, segments)| {
                let path = segments.join("/");
                if absolute {
                    format!("/{path}")
                } else {
                    path
                }
            },
        )
    }

    /// The reference: a stack of segments, `..` popping, never above the root.
    fn model(cwd: &[String], arg: &str) -> Vec<String> {
        let mut stack = if arg.starts_with('/') {
            Vec::new()
        } else {
            cwd.to_vec()
        };
        for segment in arg.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    stack.pop();
                }
                name => stack.push(name.to_string()),
            }
        }
        stack
    }

    proptest::proptest! {
        /// Whatever is typed in whatever directory, the key is normalised (no empty, `.` or `..` segment, no
        /// leading or trailing `/`), stays under the root, and is what the stack model says, or it is refused
        /// for a reason the name itself carries.
        #[test]
        fn resolve_is_the_stack_model_and_stays_under_the_root(cwd in path_strategy(), arg in path_strategy()) {
            use proptest::prelude::*;
            let Ok(dir) = Key::parse(&cwd) else {
                return Ok(());
            };
            let dir_segments: Vec<String> = dir.segments().map(str::to_string).collect();
            match dir.resolve(&arg) {
                Ok(key) => {
                    prop_assert_eq!(key.segments().map(str::to_string).collect::<Vec<_>>(), model(&dir_segments, &arg));
                    prop_assert!(!key.as_str().starts_with('/') && !key.as_str().ends_with('/'));
                    prop_assert!(key.as_str().split('/').all(|s| key.is_root() || !(s.is_empty() || s == "." || s == "..")));
                    // Resolving the result again from anywhere, as an absolute path, gives it back.
                    let again = Key::parse(&format!("/{}", key.as_str()));
                    prop_assert_eq!(again.ok(), Some(key));
                }
                Err(e) => {
                    prop_assert!(
                        matches!(e.kind(), FsErrorKind::InvalidName | FsErrorKind::NameTooLong),
                        "{}", e
                    );
                    let names = model(&dir_segments, &arg);
                    let joined = names.join("/");
                    prop_assert!(
                        names.iter().any(|n| n.chars().any(char::is_control))
                            || joined.starts_with(char::is_whitespace)
                            || joined.ends_with(char::is_whitespace)
                            // A control character in a segment a later `..` removed is refused all the same.
                            || arg.chars().any(char::is_control),
                        "refused without a reason: {:?} in {:?}: {}", arg, cwd, e
                    );
                }
            }
        }
    }
}
