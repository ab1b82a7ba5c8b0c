//! The transfer log file (`xferlog_file`): the events of target [`TARGET`] (one per upload, download, delete,
//! rename, mkdir and rmdir, emitted by the FTP room), written as vsftpd's xferlog or as JSON lines.
//!
//! The event's fields are the contract with the emitter (`ftp::xferlog`): the message is the operation
//! (`upload`, `download`, `delete`, `rename`, `mkdir`, `rmdir`), then `user`, `client`, `path`, `to` (renames),
//! `bytes`, `seconds`, `result` (`ok`, `failed`, `aborted`), `code` (the FTP reply) and `mode` (`binary`, `ascii`).

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::NonBlocking;
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use crate::config::XferlogFormat;

/// The target of transfer log events.
pub const TARGET: &str = "xferlog";

/// Writes each transfer log event as one line of the current format.
pub(super) struct XferlogLayer {
    writer: NonBlocking,
    format: Arc<Mutex<XferlogFormat>>,
}

impl XferlogLayer {
    pub(super) fn new(writer: NonBlocking, format: Arc<Mutex<XferlogFormat>>) -> Self {
        Self { writer, format }
    }
}

impl<S: Subscriber> Layer<S> for XferlogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let mut record = Record::default();
        event.record(&mut record);
        let format = *self
            .format
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = chrono::Utc::now();
        let line = match format {
            XferlogFormat::Xferlog => match record.xferlog_line(now) {
                Some(line) => line,
                // Renames, mkdir and rmdir have no place in the xferlog format (the main log has them).
                None => return,
            },
            XferlogFormat::Json => record.json_line(now),
        };
        // The worker thread writes it; an error there is the file's, reported by the next reopen.
        let _ = self.writer.clone().write_all(line.as_bytes());
    }
}

/// The fields of one transfer log event.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Record {
    pub op: String,
    pub user: String,
    pub client: String,
    pub path: String,
    pub to: Option<String>,
    pub bytes: u64,
    pub seconds: f64,
    pub result: String,
    pub code: u64,
    pub ascii: bool,
}

impl Visit for Record {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            // `message` is fmt::Arguments, whose Debug is its Display.
            "message" => self.op = text,
            _ => self.record_str(field, &text),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.op = value.to_string(),
            "user" => self.user = value.to_string(),
            "client" => self.client = value.to_string(),
            "path" => self.path = value.to_string(),
            "to" => self.to = Some(value.to_string()),
            "result" => self.result = value.to_string(),
            "mode" => self.ascii = value == "ascii",
            "seconds" => self.seconds = value.parse().unwrap_or(0.0),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "bytes" => self.bytes = value,
            "code" => self.code = value,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "seconds" {
            self.seconds = value;
        }
    }
}

impl Record {
    /// vsftpd's `xferlog_std_format` (wu-ftpd's xferlog(5)), 18 fields separated by single spaces:
    /// `Mon Jan  2 15:04:05 2006 1 192.0.2.7 1024 /dir/name b _ i r alice ftp 0 * c` — the time (UTC, as vsftpd
    /// without `use_localtime`), whole seconds (at least 1), client, bytes, path, `a`/`b` (ASCII or binary), `_` (no
    /// conversion), `i` upload / `o` download / `d` delete (ProFTPD's addition), `r` (a real user), the user, `ftp`,
    /// `0` (no RFC 931 check), `*`, `c` complete / `i` incomplete. Whitespace in the path becomes `_`, so that the
    /// fields can be split on spaces. `None` for operations the format has no direction for.
    pub(super) fn xferlog_line(&self, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
        let direction = match self.op.as_str() {
            "upload" => 'i',
            "download" => 'o',
            "delete" => 'd',
            _ => return None,
        };
        let seconds = (self.seconds.round() as u64).max(1);
        let path: String = self
            .path
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        Some(format!(
            "{} {seconds} {} {} {path} {} _ {direction} r {} ftp 0 * {}\n",
            now.format("%a %b %e %H:%M:%S %Y"),
            self.client,
            self.bytes,
            if self.ascii { 'a' } else { 'b' },
            self.user,
            if self.result == "ok" { 'c' } else { 'i' },
        ))
    }

    /// One JSON object: `time` (RFC 3339, UTC), `op`, `user`, `client`, `path`, `to` (renames only), `bytes`,
    /// `seconds`, `result`, `code`.
    pub(super) fn json_line(&self, now: chrono::DateTime<chrono::Utc>) -> String {
        let mut object = serde_json::json!({
            "time": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "op": self.op,
            "user": self.user,
            "client": self.client,
            "path": self.path,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "result": self.result,
            "code": self.code,
        });
        if let (Some(to), Some(map)) = (&self.to, object.as_object_mut()) {
            map.insert("to".into(), serde_json::Value::String(to.clone()));
        }
        format!("{object}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn upload() -> Record {
        Record {
            op: "upload".into(),
            user: "alice".into(),
            client: "192.0.2.7".into(),
            path: "/dir/my file.txt".into(),
            to: None,
            bytes: 1024,
            seconds: 0.2,
            result: "ok".into(),
            code: 226,
            ascii: false,
        }
    }

    #[test]
    fn the_xferlog_format_of_vsftpd() {
        let at = chrono::Utc.with_ymd_and_hms(2006, 1, 2, 15, 4, 5).unwrap();
        assert_eq!(
            upload().xferlog_line(at).unwrap(),
            "Mon Jan  2 15:04:05 2006 1 192.0.2.7 1024 /dir/my_file.txt b _ i r alice ftp 0 * c\n"
        );
        let aborted = Record {
            op: "download".into(),
            seconds: 2.6,
            result: "aborted".into(),
            ascii: true,
            ..upload()
        };
        let line = aborted.xferlog_line(at).unwrap();
        assert!(
            line.ends_with(" 3 192.0.2.7 1024 /dir/my_file.txt a _ o r alice ftp 0 * i\n"),
            "{line}"
        );
        assert_eq!(line.split_whitespace().count(), 18);
        let rename = Record {
            op: "rename".into(),
            ..upload()
        };
        assert_eq!(rename.xferlog_line(at), None);
    }

    #[test]
    fn json_lines_keep_the_name_as_it_is() {
        let at = chrono::Utc.with_ymd_and_hms(2006, 1, 2, 15, 4, 5).unwrap();
        let rename = Record {
            op: "rename".into(),
            to: Some("/b c".into()),
            bytes: 0,
            code: 250,
            ..upload()
        };
        let line = rename.json_line(at);
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["time"], "2006-01-02T15:04:05.000Z");
        assert_eq!(value["op"], "rename");
        assert_eq!(value["path"], "/dir/my file.txt");
        assert_eq!(value["to"], "/b c");
        assert_eq!(value["code"], 250);
    }
}
