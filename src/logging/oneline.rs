//! Every event on one line: a line break inside a message (an error with its chain of causes, a multi-line error
//! text from a store, a backtrace) is written as `\n`, so that `grep`, `tail -f` and log shippers see one event per
//! line. The fmt layer formats a whole event and hands it to its writer in one `write_all`, so an event's last
//! byte is its own line end and every line break before it is inside the event.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Wraps a `MakeWriter`; its writers escape every line break but an event's last.
#[derive(Debug, Clone)]
pub(super) struct OneLine<M>(pub(super) M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLine<M> {
    type Writer = OneLineWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        OneLineWriter(self.0.make_writer_for(meta))
    }
}

pub(super) struct OneLineWriter<W>(W);

impl<W: Write> Write for OneLineWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&escape_inner_breaks(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `\n` (and `\r`) before the last byte become the two characters `\n` (`\r`); the final line end stays.
fn escape_inner_breaks(event: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let (body, end) = match event.split_last() {
        Some((b'\n', body)) => (body, &b"\n"[..]),
        _ => (event, &b""[..]),
    };
    if !body.iter().any(|&b| b == b'\n' || b == b'\r') {
        return std::borrow::Cow::Borrowed(event);
    }
    let mut out = Vec::with_capacity(event.len() + 16);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(end);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_line_end_survives() {
        assert_eq!(&*escape_inner_breaks(b"plain\n"), b"plain\n");
        assert_eq!(&*escape_inner_breaks(b"a\nb\r\nc\n"), b"a\\nb\\r\\nc\n");
        assert_eq!(&*escape_inner_breaks(b"no end\nhere"), b"no end\\nhere");
        assert_eq!(&*escape_inner_breaks(b""), b"");
    }

    #[test]
    fn a_multi_line_event_is_one_write_of_one_line() {
        let mut out = Vec::new();
        let mut writer = OneLineWriter(&mut out);
        writer
            .write_all(b"WARN store failed: Unexpected\n\nBacktrace:\n  0: main\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "WARN store failed: Unexpected\\n\\nBacktrace:\\n  0: main\n"
        );
    }
}
