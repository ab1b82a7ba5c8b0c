//! Path arguments: the client's raw bytes → a checked `String` → a normalised absolute virtual path; and names
//! back into the client's encoding for listings and replies.
//!
//! Virtual paths are what the session keeps as its current directory and hands to `bucketfs`: `/`, or `/a/b` with
//! no empty, `.` or `..` segment and no trailing `/`. Every account is chrooted at its `/`: [`resolve`] can never
//! produce a path above it, whatever the client sends.

use std::borrow::Cow;

use encoding_rs::{EncoderResult, GBK};
use thiserror::Error;

/// How the client's path bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameEncoding {
    /// UTF-8 only (RFC 2640). The default, and what `OPTS UTF8 ON` asks for.
    #[default]
    Utf8,
    /// For legacy Chinese Windows clients: bytes that are valid UTF-8 are taken as UTF-8, anything else is decoded
    /// as GBK, and names go back to the client in GBK.
    Gbk,
}

/// Why a path argument was refused. The session answers 553 (file name not allowed) for all of them.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PathError {
    #[error("file name is not valid UTF-8")]
    NotUtf8,
    #[error("file name is neither valid UTF-8 nor GBK")]
    NotUtf8NorGbk,
    /// NUL, CR, LF and other control characters: no store key or listing line should carry them.
    #[error("file name contains the control character U+{0:04X}")]
    ControlCharacter(u32),
}

impl PathError {
    /// RFC 959: 553 "Requested action not taken. File name not allowed."
    pub fn reply_code(&self) -> u16 {
        553
    }
}

/// Decodes a raw path argument into a `String`, refusing control characters.
///
/// In [`NameEncoding::Gbk`] mode UTF-8 wins when the bytes are valid UTF-8: short GBK names can happen to be valid
/// UTF-8 too, and a UTF-8 client must never see its names re-read as GBK.
pub fn decode(raw: &[u8], encoding: NameEncoding) -> Result<String, PathError> {
    let text = match (std::str::from_utf8(raw), encoding) {
        (Ok(text), _) => text.to_owned(),
        (Err(_), NameEncoding::Utf8) => return Err(PathError::NotUtf8),
        (Err(_), NameEncoding::Gbk) => GBK
            .decode_without_bom_handling_and_without_replacement(raw)
            .ok_or(PathError::NotUtf8NorGbk)?
            .into_owned(),
    };
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(PathError::ControlCharacter(u32::from(c))),
        None => Ok(text),
    }
}

/// Resolves `arg` (absolute, or relative to `cwd`) into a normalised absolute virtual path.
///
/// Empty and `.` segments vanish, `..` removes the previous segment and is a no-op at the root, so the result never
/// leaves `/`. `cwd` is normalised along the way, so even a malformed `cwd` cannot smuggle a `..` through.
pub fn resolve(cwd: &str, arg: &str) -> String {
    let base = if arg.starts_with('/') { "" } else { cwd };
    let mut segments: Vec<&str> = Vec::new();
    for segment in base.split('/').chain(arg.split('/')) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            name => segments.push(name),
        }
    }
    if segments.is_empty() {
        return "/".to_owned();
    }
    let mut path = String::with_capacity(segments.iter().map(|s| s.len() + 1).sum());
    for segment in segments {
        path.push('/');
        path.push_str(segment);
    }
    path
}

/// Splits a normalised path into its parent directory and last name: `/a/b` → (`/a`, `b`), `/a` → (`/`, `a`),
/// `/` → (`/`, ``).
pub fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

/// Encodes a name, a listing line or a reply for the client.
///
/// UTF-8 is passed through. In GBK mode a character GBK cannot represent becomes `?` (as `ls -q` shows
/// unprintable characters): the line stays one line of the right shape, and the user sees that something is there.
/// Such a name cannot be sent back by that client; a client that needs every name should speak UTF-8.
pub fn encode(text: &str, encoding: NameEncoding) -> Cow<'_, [u8]> {
    match encoding {
        NameEncoding::Utf8 => Cow::Borrowed(text.as_bytes()),
        // GBK is ASCII-compatible: most lines need no work at all.
        NameEncoding::Gbk if text.is_ascii() => Cow::Borrowed(text.as_bytes()),
        NameEncoding::Gbk => Cow::Owned(encode_gbk_lossy(text)),
    }
}

fn encode_gbk_lossy(text: &str) -> Vec<u8> {
    let mut encoder = GBK.new_encoder();
    let mut out: Vec<u8> = Vec::new();
    let mut rest = text;
    loop {
        // GBK needs at most two bytes per character, fewer than UTF-8's three for the same character; the
        // fallback is only for the overflow case, which a `str` cannot reach.
        let room = encoder
            .max_buffer_length_from_utf8_without_replacement(rest.len())
            .unwrap_or(rest.len().saturating_mul(2))
            .max(16);
        let start = out.len();
        out.resize(start + room, 0);
        let (result, read, written) =
            encoder.encode_from_utf8_without_replacement(rest, &mut out[start..], true);
        out.truncate(start + written);
        rest = rest.get(read..).unwrap_or("");
        match result {
            EncoderResult::InputEmpty => return out,
            EncoderResult::OutputFull => {}
            EncoderResult::Unmappable(_) => out.push(b'?'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_accepts_utf8_in_both_modes() {
        let raw = "目录/文件 1.txt".as_bytes();
        assert_eq!(decode(raw, NameEncoding::Utf8).unwrap(), "目录/文件 1.txt");
        assert_eq!(decode(raw, NameEncoding::Gbk).unwrap(), "目录/文件 1.txt");
    }

    #[test]
    fn decode_falls_back_to_gbk_only_in_gbk_mode() {
        // "中文.txt" in GBK: 中 = D6 D0, 文 = CE C4.
        let raw = b"\xd6\xd0\xce\xc4.txt";
        assert_eq!(decode(raw, NameEncoding::Utf8), Err(PathError::NotUtf8));
        assert_eq!(decode(raw, NameEncoding::Gbk).unwrap(), "中文.txt");
    }

    #[test]
    fn decode_refuses_bytes_that_are_neither_utf8_nor_gbk() {
        // 0x80 alone is invalid UTF-8, and a lead byte at the end of input is invalid GBK.
        assert_eq!(
            decode(b"a\x81", NameEncoding::Gbk),
            Err(PathError::NotUtf8NorGbk)
        );
        assert_eq!(
            decode(b"\xff", NameEncoding::Gbk),
            Err(PathError::NotUtf8NorGbk)
        );
    }

    #[test]
    fn decode_refuses_control_characters() {
        for (raw, c) in [
            (&b"a\0b"[..], 0x00),
            (b"a\rb", 0x0d),
            (b"a\nb", 0x0a),
            (b"\x1b[31m", 0x1b),
            (b"tab\there", 0x09),
            (b"del\x7f", 0x7f),
            ("c1\u{85}".as_bytes(), 0x85),
        ] {
            assert_eq!(
                decode(raw, NameEncoding::Utf8),
                Err(PathError::ControlCharacter(c)),
                "{raw:?}"
            );
            assert_eq!(
                decode(raw, NameEncoding::Gbk),
                Err(PathError::ControlCharacter(c)),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn decode_keeps_leading_and_trailing_spaces() {
        assert_eq!(decode(b"  a b  ", NameEncoding::Utf8).unwrap(), "  a b  ");
    }

    #[test]
    fn path_errors_answer_553() {
        assert_eq!(PathError::NotUtf8.reply_code(), 553);
        assert_eq!(PathError::ControlCharacter(0).reply_code(), 553);
        assert_eq!(
            PathError::ControlCharacter(0x0a).to_string(),
            "file name contains the control character U+000A"
        );
    }

    #[test]
    fn resolve_relative_and_absolute() {
        let cases = [
            ("/", "a", "/a"),
            ("/", "a/b/c", "/a/b/c"),
            ("/a", "b", "/a/b"),
            ("/a/b", "/c", "/c"),
            ("/a/b", "/", "/"),
            ("/a/b", "", "/a/b"),
            ("/a/b", ".", "/a/b"),
            ("/a/b", "./c/./d/", "/a/b/c/d"),
            ("/a/b", "c//d", "/a/b/c/d"),
            ("/a/b", "//c///d//", "/c/d"),
            ("/a/b", "..", "/a"),
            ("/a/b", "../..", "/"),
            ("/a/b", "../c", "/a/c"),
            ("/a/b", "c/../../d", "/a/d"),
        ];
        for (cwd, arg, want) in cases {
            assert_eq!(resolve(cwd, arg), want, "resolve({cwd:?}, {arg:?})");
        }
    }

    #[test]
    fn resolve_never_escapes_the_root() {
        let cases = [
            ("/", ".."),
            ("/", "../../.."),
            ("/", "/.."),
            ("/a", "../../../etc/passwd"),
            ("/a", "/../../etc"),
            ("/a/b", "../../../../.."),
            ("/", "a/../../.."),
        ];
        for (cwd, arg) in cases {
            let path = resolve(cwd, arg);
            assert!(path.starts_with('/'), "{path}");
            assert!(!path.split('/').any(|s| s == ".." || s == "."), "{path}");
        }
        assert_eq!(resolve("/a", "../../../etc/passwd"), "/etc/passwd");
        assert_eq!(resolve("/", "../../.."), "/");
    }

    #[test]
    fn resolve_normalises_a_malformed_cwd() {
        assert_eq!(resolve("a/../../b/", "c"), "/b/c");
        assert_eq!(resolve("", "c"), "/c");
    }

    #[test]
    fn resolve_keeps_names_that_only_look_special() {
        assert_eq!(resolve("/", "..."), "/...");
        assert_eq!(resolve("/", ".hidden/..x"), "/.hidden/..x");
        assert_eq!(resolve("/", " a /b "), "/ a /b ");
        assert_eq!(resolve("/", "a\\b"), "/a\\b");
    }

    #[test]
    fn split_parent_of_normalised_paths() {
        assert_eq!(split_parent("/"), ("/", ""));
        assert_eq!(split_parent("/a"), ("/", "a"));
        assert_eq!(split_parent("/a/b"), ("/a", "b"));
        assert_eq!(split_parent("/a/b/c.txt"), ("/a/b", "c.txt"));
        assert_eq!(split_parent("x"), ("/", "x"));
    }

    #[test]
    fn encode_utf8_is_identity() {
        let name = "目录 ✓";
        assert_eq!(encode(name, NameEncoding::Utf8).as_ref(), name.as_bytes());
    }

    #[test]
    fn encode_gbk_round_trips_chinese() {
        let bytes = encode("中文.txt", NameEncoding::Gbk);
        assert_eq!(bytes.as_ref(), b"\xd6\xd0\xce\xc4.txt");
        assert_eq!(
            decode(&bytes, NameEncoding::Gbk).unwrap(),
            "中文.txt",
            "what we list, the client can send back"
        );
    }

    #[test]
    fn encode_gbk_replaces_unmappable_characters_with_question_marks() {
        assert_eq!(
            encode("a℃b✓😀", NameEncoding::Gbk).as_ref(),
            b"a\xa1\xe6b??"
        );
        assert_eq!(encode("😀😀", NameEncoding::Gbk).as_ref(), b"??");
        assert_eq!(encode("", NameEncoding::Gbk).as_ref(), b"");
    }

    #[test]
    fn encode_gbk_of_a_long_line() {
        let line = "-rw-r--r--    1 ftp      ftp             5 Jan 02 03:04 ".to_owned()
            + &"中".repeat(10_000)
            + "😀\r\n";
        let bytes = encode(&line, NameEncoding::Gbk);
        assert_eq!(bytes.len(), 56 + 20_000 + 1 + 2);
        assert!(bytes.ends_with(b"\xd6\xd0?\r\n"));
    }

    /// xorshift64*, as in the command parser's tests.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn random_input_never_panics_and_resolve_always_normalises() {
        const PIECES: &[&[u8]] = &[
            b"/",
            b"//",
            b".",
            b"..",
            b"...",
            b"a",
            b"b c",
            b"\\",
            b"\0",
            b"\r\n",
            b"\xff",
            b"\xd6\xd0",
            b"\xd6",
            "中".as_bytes(),
            "😀".as_bytes(),
            b"\x81\x30",
            b"\x80",
        ];
        let mut state = 0x5eed_u64;
        for _ in 0..50_000 {
            let mut raw = Vec::new();
            for _ in 0..next(&mut state) % 10 {
                let r = next(&mut state);
                if r.is_multiple_of(4) {
                    raw.push((r >> 8) as u8);
                } else {
                    raw.extend_from_slice(PIECES[(r >> 8) as usize % PIECES.len()]);
                }
            }
            for encoding in [NameEncoding::Utf8, NameEncoding::Gbk] {
                let Ok(text) = decode(&raw, encoding) else {
                    continue;
                };
                assert!(!text.chars().any(char::is_control));
                let _ = encode(&text, encoding);
                for cwd in ["/", "/a/b", &text] {
                    let path = resolve(cwd, &text);
                    assert!(path.starts_with('/'), "{path:?}");
                    assert!(path == "/" || !path.ends_with('/'), "{path:?}");
                    assert!(
                        path.split('/')
                            .skip(1)
                            .all(|s| !matches!(s, "" | "." | "..") || path == "/"),
                        "{path:?}"
                    );
                    assert_eq!(resolve("/", &path), path, "resolving is idempotent");
                    let (parent, name) = split_parent(&path);
                    assert_eq!(resolve(parent, name), path);
                }
            }
        }
    }
}
