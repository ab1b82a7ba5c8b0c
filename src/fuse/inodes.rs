//! Inode numbers ↔ keys, with the kernel's lookup counts.
//!
//! The kernel names files by inode; the core by key. No path arithmetic happens here: keys are joined, split and
//! moved by the core's `Key`. Every reply that hands the kernel an inode (lookup,
//! create, mkdir, each readdirplus entry) counts one lookup; `forget` gives them back and a node with none left
//! is dropped. Inodes handed out by a plain readdir carry no count and are pruned when their directory handle
//! is released. Renames move paths; unlink and rmdir detach the path so a new file of the same name gets a new
//! inode.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::bucketfs::Key;

/// The root directory's inode (FUSE_ROOT_ID).
pub(crate) const ROOT_INO: u64 = 1;

#[derive(Debug)]
struct Node {
    key: Key,
    lookups: u64,
    /// False once the name was removed (unlink, rmdir, replaced by a rename): the kernel may still hold the
    /// inode until it forgets it, but the path no longer leads here.
    linked: bool,
}

#[derive(Debug)]
struct Tables {
    by_ino: HashMap<u64, Node>,
    by_key: HashMap<Key, u64>,
    next: u64,
}

#[derive(Debug)]
pub(crate) struct InodeTable {
    tables: Mutex<Tables>,
}

impl InodeTable {
    pub(crate) fn new() -> Self {
        let mut by_ino = HashMap::new();
        by_ino.insert(
            ROOT_INO,
            Node {
                key: Key::root(),
                lookups: 1,
                linked: true,
            },
        );
        let mut by_key = HashMap::new();
        by_key.insert(Key::root(), ROOT_INO);
        Self {
            tables: Mutex::new(Tables {
                by_ino,
                by_key,
                next: ROOT_INO + 1,
            }),
        }
    }

    /// A poisoned lock only means another request panicked; the maps themselves are still consistent.
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current key of a linked inode.
    pub(crate) fn key(&self, ino: u64) -> Option<Key> {
        let tables = self.lock();
        tables
            .by_ino
            .get(&ino)
            .filter(|n| n.linked)
            .map(|n| n.key.clone())
    }

    /// The inode of the directory above `ino` (the root for the root), for `..` entries.
    pub(crate) fn parent_of(&self, ino: u64) -> u64 {
        let tables = self.lock();
        tables
            .by_ino
            .get(&ino)
            .and_then(|n| n.key.parent())
            .and_then(|parent| tables.by_key.get(&parent).copied())
            .unwrap_or(ROOT_INO)
    }

    /// The inode of `key`, allocated if new, with one more lookup counted: the kernel is being told about it.
    pub(crate) fn lookup(&self, key: &Key) -> u64 {
        let mut tables = self.lock();
        let ino = tables.ensure(key);
        tables.count(ino);
        ino
    }

    /// Runs `add` with the inode of `path` (allocated if new, without a lookup count) and counts a lookup only
    /// if `add` says the kernel was told about it. One lock around both, so a concurrent prune cannot drop the
    /// inode in between.
    pub(crate) fn with_entry(
        &self,
        key: &Key,
        counted: bool,
        add: impl FnOnce(u64) -> bool,
    ) -> bool {
        let mut tables = self.lock();
        let ino = tables.ensure(key);
        let added = add(ino);
        if added && counted {
            tables.count(ino);
        }
        added
    }

    /// The kernel dropped `n` references to `ino`.
    pub(crate) fn forget(&self, ino: u64, n: u64) {
        if ino == ROOT_INO {
            return;
        }
        let mut tables = self.lock();
        let gone = match tables.by_ino.get_mut(&ino) {
            Some(node) => {
                node.lookups = node.lookups.saturating_sub(n);
                node.lookups == 0
            }
            None => false,
        };
        if gone {
            tables.remove(ino);
        }
    }

    /// `key` no longer exists: a new file of that name will get a new inode.
    pub(crate) fn unlink(&self, key: &Key) {
        let mut tables = self.lock();
        tables.detach(key);
    }

    /// `from` (a file, or a directory with everything below it) is now `to`; whatever `to` was is gone.
    pub(crate) fn rename(&self, from: &Key, to: &Key) {
        let mut tables = self.lock();
        let moved: Vec<(Key, u64)> = tables
            .by_key
            .iter()
            .filter(|(key, _)| key.starts_with(to) || key.starts_with(from))
            .map(|(key, ino)| (key.clone(), *ino))
            .collect();
        // Names at the target (an empty directory or a file that was replaced) lose their inodes first.
        for (key, _) in moved.iter().filter(|(k, _)| k.starts_with(to)) {
            tables.detach(key);
        }
        for (key, ino) in moved {
            let Some(new_key) = key.rebase(from, to) else {
                continue;
            };
            tables.by_key.remove(&key);
            tables.by_key.insert(new_key.clone(), ino);
            if let Some(node) = tables.by_ino.get_mut(&ino) {
                node.key = new_key;
            }
        }
    }

    /// Drops the inodes of `keys` that the kernel holds no reference to (plain readdir entries).
    pub(crate) fn prune<'a>(&self, keys: impl IntoIterator<Item = &'a Key>) {
        let mut tables = self.lock();
        for key in keys {
            let Some(&ino) = tables.by_key.get(key) else {
                continue;
            };
            if ino != ROOT_INO && tables.by_ino.get(&ino).is_some_and(|n| n.lookups == 0) {
                tables.remove(ino);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_ino.len()
    }

    #[cfg(test)]
    fn lookups(&self, ino: u64) -> Option<u64> {
        self.lock().by_ino.get(&ino).map(|n| n.lookups)
    }
}

impl Tables {
    fn ensure(&mut self, key: &Key) -> u64 {
        if let Some(&ino) = self.by_key.get(key) {
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_ino.insert(
            ino,
            Node {
                key: key.clone(),
                lookups: 0,
                linked: true,
            },
        );
        self.by_key.insert(key.clone(), ino);
        ino
    }

    fn count(&mut self, ino: u64) {
        if let Some(node) = self.by_ino.get_mut(&ino) {
            node.lookups += 1;
        }
    }

    fn remove(&mut self, ino: u64) {
        if let Some(node) = self.by_ino.remove(&ino) {
            if node.linked && self.by_key.get(&node.key) == Some(&ino) {
                self.by_key.remove(&node.key);
            }
        }
    }

    fn detach(&mut self, key: &Key) {
        let Some(ino) = self.by_key.remove(key) else {
            return;
        };
        let unreferenced = match self.by_ino.get_mut(&ino) {
            Some(node) => {
                node.linked = false;
                node.lookups == 0
            }
            None => false,
        };
        if unreferenced {
            self.by_ino.remove(&ino);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(path: &str) -> Key {
        Key::parse(path).expect("test key")
    }

    #[test]
    fn lookups_and_forget() {
        let t = InodeTable::new();
        let a = t.lookup(&k("/a"));
        assert_eq!(t.lookup(&k("/a")), a);
        assert_eq!(t.lookups(a), Some(2));
        assert_eq!(t.key(a), Some(k("/a")));
        t.forget(a, 1);
        assert_eq!(t.key(a), Some(k("/a")));
        t.forget(a, 1);
        assert_eq!(t.key(a), None);
        assert_ne!(t.lookup(&k("/a")), a, "a forgotten inode is not reused");
        t.forget(ROOT_INO, 100);
        assert_eq!(t.key(ROOT_INO), Some(k("/")));
    }

    #[test]
    fn rename_moves_a_tree_and_replaces_the_target() {
        let t = InodeTable::new();
        let d = t.lookup(&k("/d"));
        let f = t.lookup(&k("/d/sub/f"));
        let other = t.lookup(&k("/dx"));
        let target = t.lookup(&k("/e"));
        t.rename(&k("/d"), &k("/e"));
        assert_eq!(t.key(d), Some(k("/e")));
        assert_eq!(t.key(f), Some(k("/e/sub/f")));
        assert_eq!(t.key(other), Some(k("/dx")), "prefix match is by segment");
        assert_eq!(t.key(target), None, "the replaced target is detached");
        assert_eq!(t.lookup(&k("/e")), d);
        t.forget(target, 1);
        assert_eq!(t.lookups(target), None);
    }

    #[test]
    fn unlink_detaches_until_forgotten() {
        let t = InodeTable::new();
        let a = t.lookup(&k("/a"));
        t.unlink(&k("/a"));
        assert_eq!(t.key(a), None);
        assert_eq!(t.lookups(a), Some(1), "the kernel may still hold it");
        let again = t.lookup(&k("/a"));
        assert_ne!(again, a);
        t.forget(a, 1);
        assert_eq!(t.lookups(a), None);
        assert_eq!(t.key(again), Some(k("/a")));
    }

    #[test]
    fn readdir_entries_are_counted_only_when_added_and_pruned_when_unreferenced() {
        let t = InodeTable::new();
        let mut seen = 0;
        assert!(t.with_entry(&k("/x"), true, |ino| {
            seen = ino;
            true
        }));
        assert_eq!(t.lookups(seen), Some(1));
        assert!(!t.with_entry(&k("/y"), true, |_| false));
        t.with_entry(&k("/z"), false, |_| true);
        let before = t.len();
        t.prune(&[k("/x"), k("/y"), k("/z")]);
        assert_eq!(t.len(), before - 2, "only the counted entry survives");
        assert_eq!(t.key(seen), Some(k("/x")));
        assert_eq!(t.parent_of(seen), ROOT_INO);
    }
}
