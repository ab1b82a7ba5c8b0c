//! Inode numbers ↔ paths, with the kernel's lookup counts.
//!
//! The kernel names files by inode; the core by path. Every reply that hands the kernel an inode (lookup,
//! create, mkdir, each readdirplus entry) counts one lookup; `forget` gives them back and a node with none left
//! is dropped. Inodes handed out by a plain readdir carry no count and are pruned when their directory handle
//! is released. Renames move paths; unlink and rmdir detach the path so a new file of the same name gets a new
//! inode.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// The root directory's inode (FUSE_ROOT_ID).
pub(crate) const ROOT_INO: u64 = 1;

#[derive(Debug)]
struct Node {
    path: String,
    lookups: u64,
    /// False once the name was removed (unlink, rmdir, replaced by a rename): the kernel may still hold the
    /// inode until it forgets it, but the path no longer leads here.
    linked: bool,
}

#[derive(Debug)]
struct Tables {
    by_ino: HashMap<u64, Node>,
    by_path: HashMap<String, u64>,
    next: u64,
}

#[derive(Debug)]
pub(crate) struct InodeTable {
    tables: Mutex<Tables>,
}

/// `parent/name` in the core's path form (`/a/b`).
pub(crate) fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The parent path of `path` (`/` for top-level names and the root itself).
fn parent_path(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// True when `path` is `dir` or below it.
fn is_within(path: &str, dir: &str) -> bool {
    path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

impl InodeTable {
    pub(crate) fn new() -> Self {
        let mut by_ino = HashMap::new();
        by_ino.insert(
            ROOT_INO,
            Node {
                path: "/".to_string(),
                lookups: 1,
                linked: true,
            },
        );
        let mut by_path = HashMap::new();
        by_path.insert("/".to_string(), ROOT_INO);
        Self {
            tables: Mutex::new(Tables {
                by_ino,
                by_path,
                next: ROOT_INO + 1,
            }),
        }
    }

    /// A poisoned lock only means another request panicked; the maps themselves are still consistent.
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current path of a linked inode.
    pub(crate) fn path(&self, ino: u64) -> Option<String> {
        let tables = self.lock();
        tables
            .by_ino
            .get(&ino)
            .filter(|n| n.linked)
            .map(|n| n.path.clone())
    }

    /// The inode of the directory above `ino` (the root for the root), for `..` entries.
    pub(crate) fn parent_of(&self, ino: u64) -> u64 {
        let tables = self.lock();
        tables
            .by_ino
            .get(&ino)
            .and_then(|n| tables.by_path.get(parent_path(&n.path)))
            .copied()
            .unwrap_or(ROOT_INO)
    }

    /// The inode of `path`, allocated if new, with one more lookup counted: the kernel is being told about it.
    pub(crate) fn lookup(&self, path: &str) -> u64 {
        let mut tables = self.lock();
        let ino = tables.ensure(path);
        tables.count(ino);
        ino
    }

    /// Runs `add` with the inode of `path` (allocated if new, without a lookup count) and counts a lookup only
    /// if `add` says the kernel was told about it. One lock around both, so a concurrent prune cannot drop the
    /// inode in between.
    pub(crate) fn with_entry(
        &self,
        path: &str,
        counted: bool,
        add: impl FnOnce(u64) -> bool,
    ) -> bool {
        let mut tables = self.lock();
        let ino = tables.ensure(path);
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

    /// `path` no longer exists: a new file of that name will get a new inode.
    pub(crate) fn unlink(&self, path: &str) {
        let mut tables = self.lock();
        tables.detach(path);
    }

    /// `from` (a file, or a directory with everything below it) is now `to`; whatever `to` was is gone.
    pub(crate) fn rename(&self, from: &str, to: &str) {
        let mut tables = self.lock();
        let moved: Vec<(String, u64)> = tables
            .by_path
            .iter()
            .filter(|(path, _)| is_within(path, to) || is_within(path, from))
            .map(|(path, ino)| (path.clone(), *ino))
            .collect();
        // Names at the target (an empty directory or a file that was replaced) lose their inodes first.
        for (path, _) in moved.iter().filter(|(p, _)| is_within(p, to)) {
            tables.detach(path);
        }
        for (path, ino) in moved.into_iter().filter(|(p, _)| is_within(p, from)) {
            let new_path = format!("{to}{}", &path[from.len()..]);
            tables.by_path.remove(&path);
            tables.by_path.insert(new_path.clone(), ino);
            if let Some(node) = tables.by_ino.get_mut(&ino) {
                node.path = new_path;
            }
        }
    }

    /// Drops the inodes of `paths` that the kernel holds no reference to (plain readdir entries).
    pub(crate) fn prune<'a>(&self, paths: impl IntoIterator<Item = &'a str>) {
        let mut tables = self.lock();
        for path in paths {
            let Some(&ino) = tables.by_path.get(path) else {
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
    fn ensure(&mut self, path: &str) -> u64 {
        if let Some(&ino) = self.by_path.get(path) {
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_ino.insert(
            ino,
            Node {
                path: path.to_string(),
                lookups: 0,
                linked: true,
            },
        );
        self.by_path.insert(path.to_string(), ino);
        ino
    }

    fn count(&mut self, ino: u64) {
        if let Some(node) = self.by_ino.get_mut(&ino) {
            node.lookups += 1;
        }
    }

    fn remove(&mut self, ino: u64) {
        if let Some(node) = self.by_ino.remove(&ino) {
            if node.linked && self.by_path.get(&node.path) == Some(&ino) {
                self.by_path.remove(&node.path);
            }
        }
    }

    fn detach(&mut self, path: &str) {
        let Some(ino) = self.by_path.remove(path) else {
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

    #[test]
    fn paths() {
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b c"), "/a/b c");
        assert_eq!(parent_path("/a/b"), "/a");
        assert_eq!(parent_path("/a"), "/");
        assert_eq!(parent_path("/"), "/");
        assert!(is_within("/a/b", "/a"));
        assert!(is_within("/a", "/a"));
        assert!(!is_within("/ab", "/a"));
    }

    #[test]
    fn lookups_and_forget() {
        let t = InodeTable::new();
        let a = t.lookup("/a");
        assert_eq!(t.lookup("/a"), a);
        assert_eq!(t.lookups(a), Some(2));
        assert_eq!(t.path(a).as_deref(), Some("/a"));
        t.forget(a, 1);
        assert_eq!(t.path(a).as_deref(), Some("/a"));
        t.forget(a, 1);
        assert_eq!(t.path(a), None);
        assert_ne!(t.lookup("/a"), a, "a forgotten inode is not reused");
        t.forget(ROOT_INO, 100);
        assert_eq!(t.path(ROOT_INO).as_deref(), Some("/"));
    }

    #[test]
    fn rename_moves_a_tree_and_replaces_the_target() {
        let t = InodeTable::new();
        let d = t.lookup("/d");
        let f = t.lookup("/d/sub/f");
        let other = t.lookup("/dx");
        let target = t.lookup("/e");
        t.rename("/d", "/e");
        assert_eq!(t.path(d).as_deref(), Some("/e"));
        assert_eq!(t.path(f).as_deref(), Some("/e/sub/f"));
        assert_eq!(
            t.path(other).as_deref(),
            Some("/dx"),
            "prefix match is by segment"
        );
        assert_eq!(t.path(target), None, "the replaced target is detached");
        assert_eq!(t.lookup("/e"), d);
        t.forget(target, 1);
        assert_eq!(t.lookups(target), None);
    }

    #[test]
    fn unlink_detaches_until_forgotten() {
        let t = InodeTable::new();
        let a = t.lookup("/a");
        t.unlink("/a");
        assert_eq!(t.path(a), None);
        assert_eq!(t.lookups(a), Some(1), "the kernel may still hold it");
        let again = t.lookup("/a");
        assert_ne!(again, a);
        t.forget(a, 1);
        assert_eq!(t.lookups(a), None);
        assert_eq!(t.path(again).as_deref(), Some("/a"));
    }

    #[test]
    fn readdir_entries_are_counted_only_when_added_and_pruned_when_unreferenced() {
        let t = InodeTable::new();
        let mut seen = 0;
        assert!(t.with_entry("/x", true, |ino| {
            seen = ino;
            true
        }));
        assert_eq!(t.lookups(seen), Some(1));
        assert!(!t.with_entry("/y", true, |_| false));
        t.with_entry("/z", false, |_| true);
        let before = t.len();
        t.prune(["/x", "/y", "/z"]);
        assert_eq!(t.len(), before - 2, "only the counted entry survives");
        assert_eq!(t.path(seen).as_deref(), Some("/x"));
        assert_eq!(t.parent_of(seen), ROOT_INO);
    }
}
