//! Names on the wire: the client's raw argument bytes → text, and names back into the client's encoding for
//! listings and replies. What the text *means* as a path (relative to the session's directory, `..`, what a name
//! may contain) is the core's business: `bucketfs::Key::resolve`.

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

/// Why a path argument could not be read as text (the reply is 553, "file name not allowed").
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PathError {
    #[error("file name is not valid UTF-8")]
    NotUtf8,
    #[error("file name is neither valid UTF-8 nor GBK")]
    NotUtf8NorGbk,
}

/// Decodes a raw path argument into a `String`. Control characters are the core's to refuse.
///
/// In [`NameEncoding::Gbk`] mode UTF-8 wins when the bytes are valid UTF-8: short GBK names can happen to be valid
/// UTF-8 too, and a UTF-8 client must never see its names re-read as GBK.
pub fn decode(raw: &[u8], encoding: NameEncoding) -> Result<String, PathError> {
    match (std::str::from_utf8(raw), encoding) {
        (Ok(text), _) => Ok(text.to_owned()),
        (Err(_), NameEncoding::Utf8) => Err(PathError::NotUtf8),
        (Err(_), NameEncoding::Gbk) => GBK
            .decode_without_bom_handling_and_without_replacement(raw)
            .map(|text| text.into_owned())
            .ok_or(PathError::NotUtf8NorGbk),
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
    fn decode_keeps_leading_and_trailing_spaces() {
        assert_eq!(decode(b"  a b  ", NameEncoding::Utf8).unwrap(), "  a b  ");
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
}
