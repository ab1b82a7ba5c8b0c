//! The reference-model test of the core: random sequences of operations run against `BucketFs` and against a
//! plain in-memory model of the object model (docs/SEMANTICS.md), compared after every step.
//!
//! It runs over OpenDAL's memory store AND over a real S3 server (moto), because the two list differently: the
//! memory store lists in key order, S3 lists a page's common prefixes before its keys. Operations include writes
//! made behind the core's back ("another client of the bucket"), which is how a file `x` and a directory `x/`
//! come to exist together.
//!
//! Two variants: with `metadata_ttl = 0` every answer comes from the store, so outside writes are allowed; with a
//! long TTL only the core writes, and its cache must never disagree with the model.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{S3Server, ServerMode};
use cosftpd::bucketfs::{
    BucketFs, FileKind, FsError, FsErrorKind, Key, MemoryBudget, Policy, Settings, WriteIntent,
};
use cosftpd::config::{Secret, StorageConfig};
use cosftpd::storage::{self, StorageOptions};
use futures::TryStreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

// ---------------------------------------------------------------------------------------------------------------
// The operations

#[derive(Debug, Clone)]
enum Op {
    Put(String, u8),
    Append(String, u8),
    Mkdir(String),
    Delete(String),
    Rmdir(String),
    Rename(String, String),
    Stat(String),
    List(String),
    Read(String),
    /// Another client writes a raw key (may be `a` while `a/b` exists).
    OutsidePut(String, u8),
    /// Another client deletes a raw key.
    OutsideDelete(String),
}

impl Op {
    fn writes_outside(&self) -> bool {
        matches!(self, Op::OutsidePut(..) | Op::OutsideDelete(..))
    }
}

fn segment() -> impl Strategy<Value = String> {
    // `-` sorts before `/`, `.` too: names that interleave with a directory's keys in listing order.
    prop::sample::select(vec!["a", "b", "a-1", "a.b"]).prop_map(str::to_string)
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..=3).prop_map(|s| s.join("/"))
}

fn op() -> impl Strategy<Value = Op> {
    let byte = any::<u8>();
    prop_oneof![
        3 => (path(), byte).prop_map(|(p, b)| Op::Put(p, b)),
        1 => (path(), byte).prop_map(|(p, b)| Op::Append(p, b)),
        2 => path().prop_map(Op::Mkdir),
        1 => path().prop_map(Op::Delete),
        1 => path().prop_map(Op::Rmdir),
        1 => (path(), path()).prop_map(|(a, b)| Op::Rename(a, b)),
        2 => path().prop_map(Op::Stat),
        2 => prop_oneof![Just(String::new()), path()].prop_map(Op::List),
        1 => path().prop_map(Op::Read),
        2 => (path(), byte).prop_map(|(p, b)| Op::OutsidePut(p, b)),
        1 => path().prop_map(Op::OutsideDelete),
    ]
}

// ---------------------------------------------------------------------------------------------------------------
// The model: a bucket is a sorted map of keys; everything else is derived, as docs/SEMANTICS.md says.

#[derive(Debug, Default, Clone)]
struct Model {
    objects: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stat {
    File(u64),
    Dir,
}

type Outcome<T> = Result<T, FsErrorKind>;

impl Model {
    fn is_dir(&self, key: &str) -> bool {
        if key.is_empty() {
            return true;
        }
        let prefix = format!("{key}/");
        self.objects
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    fn stat(&self, key: &str) -> Outcome<Stat> {
        if let Some(data) = self.objects.get(key).filter(|_| !key.is_empty()) {
            return Ok(Stat::File(data.len() as u64));
        }
        if self.is_dir(key) {
            return Ok(Stat::Dir);
        }
        Err(FsErrorKind::NotFound)
    }

    fn require_dir(&self, key: &str) -> Outcome<()> {
        match self.stat(key)? {
            Stat::Dir => Ok(()),
            Stat::File(_) => Err(FsErrorKind::NotADirectory),
        }
    }

    fn parent(key: &str) -> &str {
        key.rsplit_once('/').map_or("", |(p, _)| p)
    }

    /// The children of a directory: name → file or directory (a file wins over a directory of its name).
    fn children(&self, dir: &str) -> BTreeMap<String, Stat> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out = BTreeMap::new();
        for (key, data) in self.objects.range(prefix.clone()..) {
            let Some(rest) = key.strip_prefix(&prefix) else {
                break;
            };
            match rest.split_once('/') {
                None if !rest.is_empty() => {
                    out.insert(rest.to_string(), Stat::File(data.len() as u64));
                }
                Some((name, _)) if !name.is_empty() => {
                    out.entry(name.to_string()).or_insert(Stat::Dir);
                }
                _ => {}
            }
        }
        out
    }

    fn list(&self, key: &str) -> Outcome<BTreeMap<String, Stat>> {
        match self.stat(key)? {
            Stat::Dir => Ok(self.children(key)),
            Stat::File(size) => {
                let name = key.rsplit('/').next().unwrap_or(key).to_string();
                Ok(BTreeMap::from([(name, Stat::File(size))]))
            }
        }
    }

    fn mkdir(&mut self, key: &str) -> Outcome<()> {
        if key.is_empty() || self.stat(key).is_ok() {
            return Err(FsErrorKind::AlreadyExists);
        }
        self.require_dir(Self::parent(key))?;
        self.objects.insert(format!("{key}/"), Vec::new());
        Ok(())
    }

    fn put(&mut self, key: &str, byte: u8, append: bool) -> Outcome<()> {
        self.require_dir(Self::parent(key))?;
        match self.stat(key) {
            Ok(Stat::Dir) => return Err(FsErrorKind::IsADirectory),
            Ok(Stat::File(_)) if append => {
                if let Some(data) = self.objects.get_mut(key) {
                    data.push(byte);
                }
                return Ok(());
            }
            _ => {}
        }
        self.objects.insert(key.to_string(), vec![byte]);
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Outcome<()> {
        match self.stat(key)? {
            Stat::Dir => Err(FsErrorKind::IsADirectory),
            Stat::File(_) => {
                self.objects.remove(key);
                Ok(())
            }
        }
    }

    fn rmdir(&mut self, key: &str) -> Outcome<()> {
        if key.is_empty() {
            return Err(FsErrorKind::RootDirectory);
        }
        if self.stat(key)? != Stat::Dir {
            return Err(FsErrorKind::NotADirectory);
        }
        let marker = format!("{key}/");
        if self
            .objects
            .keys()
            .any(|k| k.starts_with(&marker) && *k != marker)
        {
            return Err(FsErrorKind::NotEmpty);
        }
        self.objects.remove(&marker);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Outcome<()> {
        if from.is_empty() || to.is_empty() {
            return Err(FsErrorKind::RootDirectory);
        }
        if from == to {
            return self.stat(from).map(|_| ());
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(FsErrorKind::InvalidName);
        }
        let source = self.stat(from)?;
        self.require_dir(Self::parent(to))?;
        if let Ok(target) = self.stat(to) {
            match (&source, target) {
                (Stat::File(_), Stat::Dir) => return Err(FsErrorKind::IsADirectory),
                (Stat::Dir, Stat::File(_)) => return Err(FsErrorKind::NotADirectory),
                (Stat::Dir, Stat::Dir) if !self.children(to).is_empty() => {
                    return Err(FsErrorKind::NotEmpty)
                }
                _ => {}
            }
        }
        match source {
            Stat::File(_) => {
                if let Some(data) = self.objects.remove(from) {
                    self.objects.insert(to.to_string(), data);
                }
            }
            Stat::Dir => {
                let (from_prefix, to_prefix) = (format!("{from}/"), format!("{to}/"));
                let moved: Vec<String> = self
                    .objects
                    .keys()
                    .filter(|k| k.starts_with(&from_prefix))
                    .cloned()
                    .collect();
                for key in &moved {
                    if let Some(data) = self.objects.remove(key) {
                        self.objects
                            .insert(format!("{to_prefix}{}", &key[from_prefix.len()..]), data);
                    }
                }
                // An implicit directory gets a marker at its new name.
                self.objects.entry(to_prefix).or_default();
            }
        }
        Ok(())
    }

    fn read(&self, key: &str) -> Outcome<Vec<u8>> {
        match self.stat(key)? {
            Stat::Dir => Err(FsErrorKind::IsADirectory),
            Stat::File(_) => Ok(self.objects.get(key).cloned().unwrap_or_default()),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The system under test

struct Subject {
    fs: BucketFs,
    op: opendal::Operator,
}

fn k(path: &str) -> Key {
    Key::parse(path).expect("generated paths are valid")
}

fn kind<T>(r: Result<T, FsError>) -> Outcome<T> {
    r.map_err(|e| e.kind())
}

impl Subject {
    async fn put(&self, key: &str, byte: u8, intent: WriteIntent) -> Outcome<()> {
        let mut w = kind(self.fs.open_write(&k(key), intent).await)?;
        kind(w.write(Bytes::from(vec![byte])).await)?;
        kind(w.close().await).map(|_| ())
    }

    async fn stat(&self, key: &str) -> Outcome<Stat> {
        let meta = kind(self.fs.stat(&k(key)).await)?;
        Ok(match meta.kind {
            FileKind::File | FileKind::Symlink | FileKind::Special => Stat::File(meta.size),
            FileKind::Directory => Stat::Dir,
        })
    }

    async fn list(&self, key: &str) -> Outcome<BTreeMap<String, Stat>> {
        let listing = kind(self.fs.list(&k(key)).await)?;
        let mut out = BTreeMap::new();
        match listing {
            cosftpd::bucketfs::Listing::File(entry) => {
                out.insert(entry.name, Stat::File(entry.meta.size));
            }
            cosftpd::bucketfs::Listing::Directory(mut dir) => {
                while let Some(entry) = kind(dir.next_entry().await)? {
                    let stat = match entry.meta.kind {
                        FileKind::File | FileKind::Symlink | FileKind::Special => {
                            Stat::File(entry.meta.size)
                        }
                        FileKind::Directory => Stat::Dir,
                    };
                    assert!(
                        out.insert(entry.name.clone(), stat).is_none(),
                        "{} listed twice in /{key}",
                        entry.name
                    );
                }
            }
        }
        Ok(out)
    }

    async fn read(&self, key: &str) -> Outcome<Vec<u8>> {
        let (_, stream) = kind(self.fs.read_stream(&k(key), 0).await)?;
        let chunks: Vec<Bytes> = kind(stream.try_collect().await)?;
        Ok(chunks.concat())
    }
}

/// Runs `ops` on both sides, comparing each step; returns a description of the first disagreement.
async fn run(subject: &Subject, ops: &[Op]) -> Result<(), String> {
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        let differ = |what: String| Err(format!("step {step} {op:?}: {what}"));
        match op {
            Op::Put(p, b) => {
                let got = subject.put(p, *b, WriteIntent::Replace).await;
                let want = model.put(p, *b, false);
                if got != want {
                    return differ(format!("core {got:?}, model {want:?}"));
                }
            }
            Op::Append(p, b) => {
                let got = subject.put(p, *b, WriteIntent::Append).await;
                let want = model.put(p, *b, true);
                if got != want {
                    return differ(format!("core {got:?}, model {want:?}"));
                }
            }
            Op::Mkdir(p) => {
                let got = kind(subject.fs.mkdir(&k(p)).await).map(|_| ());
                let want = model.mkdir(p);
                if got != want {
                    return differ(format!("core {got:?}, model {want:?}"));
                }
            }
            Op::Delete(p) => {
                let got = kind(subject.fs.remove_file(&k(p)).await);
                let want = model.delete(p);
                if got != want {
                    return differ(format!("core {got:?}, model {want:?}"));
                }
            }
            Op::Rmdir(p) => {
                let got = kind(subject.fs.rmdir(&k(p)).await);
                let want = model.rmdir(p);
                if got != want {
                    return differ(format!("core {got:?}, model {want:?}"));
                }
            }
            Op::Rename(a, b) => {
                let got = kind(subject.fs.rename(&k(a), &k(b)).await);
                let want = model.rename(a, b);
                if got != want {
                    return differ(format!("core {got:?}, model {want:?}"));
                }
            }
            Op::Stat(p) => {
                let (got, want) = (subject.stat(p).await, model.stat(p));
                if got != want {
                    return differ(format!("core {got:?}, model {want:?}"));
                }
            }
            Op::List(p) => {
                let (got, want) = (subject.list(p).await, model.list(p));
                if got != want {
                    return differ(format!("core {got:?}, model {want:?}"));
                }
            }
            Op::Read(p) => {
                let (got, want) = (subject.read(p).await, model.read(p));
                if got != want {
                    return differ(format!("core {got:?}, model {want:?}"));
                }
            }
            Op::OutsidePut(p, b) => {
                subject
                    .op
                    .write(p, vec![*b])
                    .await
                    .map_err(|e| format!("outside write {p}: {e}"))?;
                model.objects.insert(p.clone(), vec![*b]);
            }
            Op::OutsideDelete(p) => {
                subject
                    .op
                    .delete(p)
                    .await
                    .map_err(|e| format!("outside delete {p}: {e}"))?;
                model.objects.remove(p);
            }
        }
    }
    // Finally the whole tree must agree, directory by directory.
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        let (got, want) = (subject.list(&dir).await, Ok(model.children(&dir)));
        if got != want {
            return Err(format!(
                "final listing of /{dir}: core {got:?}, model {want:?}"
            ));
        }
        for (name, stat) in model.children(&dir) {
            if stat == Stat::Dir {
                dirs.push(if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                });
            }
        }
    }
    Ok(())
}

fn settings(ttl: Duration) -> Settings {
    Settings {
        metadata_ttl: ttl,
        ..Settings::default()
    }
}

fn subject_over(store: storage::AccountStore, ttl: Duration) -> Subject {
    let op = store.op.clone();
    let fs = BucketFs::new(
        store,
        Policy::full(),
        settings(ttl),
        MemoryBudget::new(64 * 1024 * 1024),
    );
    Subject { fs, op }
}

/// Runs `cases` random sequences against fresh stores from `make`.
fn check(cases: u32, ops_per_case: usize, outside: bool, make: impl Fn() -> Subject) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let ops = prop::collection::vec(op(), 1..=ops_per_case)
        .prop_filter("only the core writes", move |ops| {
            outside || !ops.iter().any(Op::writes_outside)
        });
    let result = runner.run(&ops, |ops| {
        let subject = make();
        let outcome = runtime.block_on(run(&subject, &ops));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
        Ok(())
    });
    if let Err(e) = result {
        panic!("the core and the model disagree: {e}");
    }
}

fn memory() -> storage::AccountStore {
    storage::build_store(&StorageConfig::Memory, &StorageOptions::default()).expect("memory store")
}

#[test]
fn the_core_follows_the_model_over_memory() {
    check(64, 40, true, || subject_over(memory(), Duration::ZERO));
}

#[test]
fn the_cache_follows_the_model_over_memory() {
    check(64, 40, false, || {
        subject_over(memory(), Duration::from_secs(600))
    });
}

/// A fresh bucket on the shared moto server (S3 mode: common prefixes before keys in each page).
fn moto() -> Option<impl Fn() -> Subject> {
    let server = S3Server::shared(ServerMode::S3)?;
    Some(move || {
        let bucket = common::unique_bucket("model");
        server.create_bucket(&bucket);
        let config = StorageConfig::S3 {
            bucket,
            endpoint: server.endpoint(),
            region: "us-east-1".into(),
            access_key: Secret::new("test-key"),
            secret_key: Secret::new("test-secret"),
            virtual_host: false,
        };
        let store = storage::build_store(&config, &StorageOptions::default()).expect("store");
        subject_over(store, Duration::ZERO)
    })
}

#[test]
fn the_core_follows_the_model_over_s3() {
    let Some(make) = moto() else { return };
    // Each step is a few HTTP requests to moto: fewer, longer sequences.
    check(12, 30, true, make);
}
