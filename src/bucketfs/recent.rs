//! The exact headers of the objects this gateway's last single PUTs stored.
//!
//! FTP clients change a file's attributes right after uploading it — lftp sends `MFMT` and `SITE CHMOD` after
//! every `STOR`, FileZilla `MFMT` — and `cp -p` and `touch` do the same on the mount. A change of attributes is a
//! copy of the object onto itself with all its headers, so it first looks at the object (a HEAD and a one-key
//! listing). For an object this gateway has just written, the headers are known: they are what it sent. Kept as a
//! hint only: the copy is conditional on the ETag, so if another client wrote the name meanwhile the copy fails and
//! the change is tried again after a real look at the store.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::path::Key;
use crate::storage::objects::ObjectHead;

/// How many objects are remembered (the last ones written: the client's next command is about one of them).
const KEPT: usize = 64;
/// How long a remembered head is used.
const FRESH: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub(crate) struct RecentWrites {
    heads: Mutex<VecDeque<(Key, ObjectHead, Instant)>>,
}

impl RecentWrites {
    fn heads(&self) -> std::sync::MutexGuard<'_, VecDeque<(Key, ObjectHead, Instant)>> {
        self.heads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `head` is what the store holds under `key` now: this gateway just wrote it.
    pub(crate) fn remember(&self, key: &Key, head: ObjectHead) {
        let mut heads = self.heads();
        heads.retain(|(k, _, _)| k != key);
        if heads.len() >= KEPT {
            heads.pop_front();
        }
        heads.push_back((key.clone(), head, Instant::now()));
    }

    /// The head written under `key` within the last seconds, if any (used once).
    pub(crate) fn take(&self, key: &Key) -> Option<ObjectHead> {
        let mut heads = self.heads();
        let at = heads.iter().position(|(k, _, _)| k == key)?;
        let (_, head, written) = heads.remove(at)?;
        (written.elapsed() < FRESH).then_some(head)
    }

    /// `key` was removed, renamed or written again some other way.
    pub(crate) fn forget(&self, key: &Key) {
        self.heads().retain(|(k, _, _)| k != key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(etag: &str) -> ObjectHead {
        ObjectHead {
            size: 1,
            etag: Some(etag.into()),
            last_modified: None,
            meta: Default::default(),
            checksums: Default::default(),
        }
    }

    fn key(s: &str) -> Key {
        Key::parse(s).expect("key")
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_is_used_once_and_only_while_fresh() {
        let recent = RecentWrites::default();
        recent.remember(&key("a"), head("1"));
        assert_eq!(
            recent.take(&key("a")).and_then(|h| h.etag).as_deref(),
            Some("1")
        );
        assert!(recent.take(&key("a")).is_none(), "used once");

        recent.remember(&key("b"), head("2"));
        tokio::time::sleep(FRESH).await;
        assert!(recent.take(&key("b")).is_none(), "stale");
    }

    #[test]
    fn the_newest_write_wins_and_the_oldest_are_dropped() {
        let recent = RecentWrites::default();
        recent.remember(&key("a"), head("1"));
        recent.remember(&key("a"), head("2"));
        assert_eq!(
            recent.take(&key("a")).and_then(|h| h.etag).as_deref(),
            Some("2")
        );
        for i in 0..=KEPT {
            recent.remember(&key(&format!("f{i}")), head("x"));
        }
        assert!(recent.take(&key("f0")).is_none());
        assert!(recent.take(&key(&format!("f{KEPT}"))).is_some());
        recent.remember(&key("gone"), head("3"));
        recent.forget(&key("gone"));
        assert!(recent.take(&key("gone")).is_none());
    }
}
