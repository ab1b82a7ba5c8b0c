//! The core over OpenDAL's memory service: object model, policy table, write modes, reads.

use bytes::Bytes;
use futures::TryStreamExt;

use super::*;
use crate::config::Authority;

fn memory_store() -> crate::storage::AccountStore {
    crate::storage::build_store(
        &crate::config::StorageConfig::Memory,
        &crate::storage::StorageOptions::default(),
    )
    .expect("memory store")
}

fn memory_fs(policy: Policy, settings: Settings) -> BucketFs {
    BucketFs::new(
        memory_store(),
        policy,
        settings,
        MemoryBudget::new(64 * 1024 * 1024),
    )
}

fn small_parts() -> Settings {
    Settings {
        part_size: 1024 * 1024,
        upload_concurrency: 2,
        metadata_ttl: Duration::from_secs(1),
        ..Settings::default()
    }
}

fn k(path: &str) -> Key {
    Key::parse(path).expect("a valid test path")
}

fn rw() -> BucketFs {
    memory_fs(Policy::full(), small_parts())
}

async fn put(fs: &BucketFs, path: &str, data: &[u8]) {
    let mut w = fs
        .open_write(&k(path), WriteIntent::Replace)
        .await
        .expect("open_write");
    w.write(Bytes::copy_from_slice(data)).await.expect("write");
    w.close().await.expect("close");
}

async fn get(fs: &BucketFs, path: &str) -> Vec<u8> {
    let (_, stream) = fs.read_stream(&k(path), 0).await.expect("read_stream");
    let chunks: Vec<Bytes> = stream.try_collect().await.expect("read");
    chunks.concat()
}

async fn names(fs: &BucketFs, path: &str) -> Vec<String> {
    let mut dir = fs.read_dir(&k(path)).await.expect("read_dir");
    let mut out = Vec::new();
    while let Some(e) = dir.next_entry().await.expect("next_entry") {
        out.push(format!(
            "{}{}",
            e.name,
            if e.meta.is_dir() { "/" } else { "" }
        ));
    }
    out.sort();
    out
}

#[tokio::test]
async fn markers_and_implicit_directories_are_both_directories() {
    let fs = rw();
    fs.mkdir(&k("/made")).await.unwrap();
    fs.op().write("implicit/child.txt", "x").await.unwrap();
    assert!(fs.stat(&k("/made")).await.unwrap().is_dir());
    assert!(fs.stat(&k("/implicit")).await.unwrap().is_dir());
    assert_eq!(names(&fs, "/").await, vec!["implicit/", "made/"]);
    assert_eq!(names(&fs, "/implicit").await, vec!["child.txt"]);
    assert!(names(&fs, "/made").await.is_empty());
}

#[tokio::test]
async fn exact_names_not_prefixes() {
    let fs = rw();
    put(&fs, "/abc.txt", b"1").await;
    assert_eq!(
        fs.stat(&k("/a")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
    assert_eq!(
        fs.stat(&k("/abc")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
    assert_eq!(fs.stat(&k("/abc.txt")).await.unwrap().size, 1);
}

#[tokio::test]
async fn mkdir_rmdir_rules() {
    let fs = rw();
    fs.mkdir(&k("/d")).await.unwrap();
    assert_eq!(
        fs.mkdir(&k("/d")).await.unwrap_err().kind(),
        FsErrorKind::AlreadyExists
    );
    put(&fs, "/f", b"x").await;
    assert_eq!(
        fs.mkdir(&k("/f")).await.unwrap_err().kind(),
        FsErrorKind::AlreadyExists
    );
    assert_eq!(
        fs.mkdir(&k("/missing/sub")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
    put(&fs, "/d/inner", b"x").await;
    assert_eq!(
        fs.rmdir(&k("/d")).await.unwrap_err().kind(),
        FsErrorKind::NotEmpty
    );
    assert!(
        fs.op().exists("d/inner").await.unwrap(),
        "a refused rmdir deletes nothing"
    );
    fs.remove_file(&k("/d/inner")).await.unwrap();
    fs.rmdir(&k("/d")).await.unwrap();
    assert_eq!(
        fs.stat(&k("/d")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
    assert_eq!(
        fs.rmdir(&k("/f")).await.unwrap_err().kind(),
        FsErrorKind::NotADirectory
    );
    assert_eq!(
        fs.remove_file(&k("/")).await.unwrap_err().kind(),
        FsErrorKind::IsADirectory
    );
}

#[tokio::test]
async fn multipart_write_and_ranged_reads_round_trip() {
    let fs = rw();
    let data: Vec<u8> = (0..5 * 1024 * 1024 + 123)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let mut w = fs
        .open_write(&k("/big.bin"), WriteIntent::Replace)
        .await
        .unwrap();
    for chunk in data.chunks(300_000) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(
        fs.stat(&k("/big.bin")).await.unwrap().size,
        data.len() as u64,
        "stat shows a file being written"
    );
    assert!(
        !fs.op().exists("big.bin").await.unwrap(),
        "nothing is committed before close"
    );
    w.close().await.unwrap();
    assert_eq!(get(&fs, "/big.bin").await, data);

    let (_, tail) = fs.read_stream(&k("/big.bin"), 4_000_000).await.unwrap();
    let tail: Vec<Bytes> = tail.try_collect().await.unwrap();
    assert_eq!(tail.concat(), &data[4_000_000..]);

    let mut r = fs.open_read(&k("/big.bin")).await.unwrap();
    // Sequential, then a small reorder, then a seek back.
    let mut offset = 0u64;
    while offset < 3_000_000 {
        let got = r.read_at(offset, 131_072).await.unwrap();
        assert_eq!(
            &got[..],
            &data[offset as usize..offset as usize + got.len()]
        );
        offset += got.len() as u64;
    }
    assert_eq!(
        &r.read_at(offset - 100_000, 1000).await.unwrap()[..],
        &data[offset as usize - 100_000..][..1000]
    );
    assert_eq!(&r.read_at(10, 20).await.unwrap()[..], &data[10..30]);
    let end = data.len() as u64;
    assert_eq!(
        &r.read_at(end - 5, 100).await.unwrap()[..],
        &data[data.len() - 5..]
    );
    assert!(r.read_at(end, 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn size_limit_aborts_and_keeps_the_old_object() {
    let fs = memory_fs(
        Policy::full(),
        Settings {
            single_file_max_size: 1000,
            ..small_parts()
        },
    );
    put(&fs, "/f", b"old").await;
    let mut w = fs.open_write(&k("/f"), WriteIntent::Replace).await.unwrap();
    w.write(Bytes::from(vec![1u8; 1000])).await.unwrap();
    let err = w.write(Bytes::from_static(b"!")).await.unwrap_err();
    assert_eq!(err.kind(), FsErrorKind::TooLarge);
    assert!(
        w.close().await.is_err(),
        "an aborted upload cannot be committed"
    );
    assert_eq!(get(&fs, "/f").await, b"old");
}

#[tokio::test]
async fn abort_and_drop_commit_nothing() {
    let fs = rw();
    let mut w = fs.open_write(&k("/a"), WriteIntent::Replace).await.unwrap();
    w.write(Bytes::from(vec![0u8; 3 * 1024 * 1024]))
        .await
        .unwrap();
    w.abort().await;
    assert_eq!(
        fs.stat(&k("/a")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
    {
        let mut w = fs.open_write(&k("/b"), WriteIntent::Replace).await.unwrap();
        w.write(Bytes::from_static(b"partial")).await.unwrap();
    }
    assert!(!fs.op().exists("b").await.unwrap());
    // The writer slot is free again.
    put(&fs, "/b", b"ok").await;
    assert_eq!(get(&fs, "/b").await, b"ok");
}

#[tokio::test]
async fn append_modes() {
    let fs = rw();
    put(&fs, "/log", b"hello ").await;
    let mut w = fs
        .open_write(&k("/log"), WriteIntent::Append)
        .await
        .unwrap();
    assert_eq!(w.size(), 6);
    w.write(Bytes::from_static(b"world")).await.unwrap();
    w.close().await.unwrap();
    assert_eq!(get(&fs, "/log").await, b"hello world");

    // Open without truncate, write at the end: append.
    let mut w = fs.open_write(&k("/log"), WriteIntent::Open).await.unwrap();
    w.write_at(11, Bytes::from_static(b"!")).await.unwrap();
    w.close().await.unwrap();
    assert_eq!(get(&fs, "/log").await, b"hello world!");

    // Open without truncate, truncate(0), write from 0: what vsftpd does.
    let mut w = fs.open_write(&k("/log"), WriteIntent::Open).await.unwrap();
    w.truncate(0).await.unwrap();
    w.write_at(0, Bytes::from_static(b"new")).await.unwrap();
    w.close().await.unwrap();
    assert_eq!(get(&fs, "/log").await, b"new");

    // Within the part in memory any pattern works: a small file can be edited in place, cut, and extended
    // with a hole that reads as zeros.
    let mut w = fs.open_write(&k("/log"), WriteIntent::Open).await.unwrap();
    w.write_at(1, Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(&w.read_at(0, 10).await.unwrap()[..], b"nxw");
    w.close().await.unwrap();
    assert_eq!(get(&fs, "/log").await, b"nxw");
    let mut w = fs.open_write(&k("/log"), WriteIntent::Open).await.unwrap();
    w.truncate(2).await.unwrap();
    w.write_at(5, Bytes::from_static(b"!")).await.unwrap();
    w.close().await.unwrap();
    assert_eq!(get(&fs, "/log").await, b"nx\0\0\0!");

    // Bytes already sent to the store as a part cannot change: the write is refused, the handle is spent
    // (close fails), and nothing changes.
    let part = fs.settings().part_size as usize;
    let mut w = fs
        .open_write(&k("/log"), WriteIntent::Replace)
        .await
        .unwrap();
    w.write(Bytes::from(vec![1; part + 1])).await.unwrap();
    let err = w.write_at(0, Bytes::from_static(b"x")).await.unwrap_err();
    assert_eq!(err.kind(), FsErrorKind::InvalidOffset);
    assert!(w.close().await.is_err());
    assert_eq!(get(&fs, "/log").await, b"nx\0\0\0!");

    // Append to a missing file creates it.
    let mut w = fs
        .open_write(&k("/fresh"), WriteIntent::Append)
        .await
        .unwrap();
    w.write(Bytes::from_static(b"a")).await.unwrap();
    w.close().await.unwrap();
    assert_eq!(get(&fs, "/fresh").await, b"a");
}

#[tokio::test]
async fn empty_files_and_busy_writers() {
    let fs = rw();
    fs.open_write(&k("/empty"), WriteIntent::Replace)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    assert_eq!(fs.stat(&k("/empty")).await.unwrap().size, 0);
    let w = fs.open_write(&k("/x"), WriteIntent::Replace).await.unwrap();
    assert_eq!(
        fs.open_write(&k("/x"), WriteIntent::Replace)
            .await
            .unwrap_err()
            .kind(),
        FsErrorKind::Busy
    );
    // Unlinking a file that is being written takes its name away; the writer's close commits nothing.
    fs.remove_file(&k("/x")).await.unwrap();
    assert_eq!(
        fs.stat(&k("/x")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
    w.close().await.unwrap();
    assert_eq!(
        fs.stat(&k("/x")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
    assert_eq!(
        fs.open_write(&k("/nodir/x"), WriteIntent::Replace)
            .await
            .unwrap_err()
            .kind(),
        FsErrorKind::NotFound
    );
    fs.mkdir(&k("/d")).await.unwrap();
    assert_eq!(
        fs.open_write(&k("/d"), WriteIntent::Replace)
            .await
            .unwrap_err()
            .kind(),
        FsErrorKind::IsADirectory
    );
}

#[tokio::test]
async fn rename_files_and_trees() {
    let fs = rw();
    put(&fs, "/a.txt", b"A").await;
    fs.rename(&k("/a.txt"), &k("/b.txt")).await.unwrap();
    assert_eq!(
        fs.stat(&k("/a.txt")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
    assert_eq!(get(&fs, "/b.txt").await, b"A");

    fs.mkdir(&k("/src")).await.unwrap();
    fs.mkdir(&k("/src/sub")).await.unwrap();
    put(&fs, "/src/one", b"1").await;
    put(&fs, "/src/sub/two", b"2").await;
    fs.rename(&k("/src"), &k("/dst")).await.unwrap();
    assert_eq!(
        fs.stat(&k("/src")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
    assert_eq!(names(&fs, "/dst").await, vec!["one", "sub/"]);
    assert_eq!(get(&fs, "/dst/sub/two").await, b"2");

    assert_eq!(
        fs.rename(&k("/dst"), &k("/dst/inside"))
            .await
            .unwrap_err()
            .kind(),
        FsErrorKind::InvalidName
    );
    assert_eq!(
        fs.rename(&k("/b.txt"), &k("/dst"))
            .await
            .unwrap_err()
            .kind(),
        FsErrorKind::IsADirectory
    );
    assert_eq!(
        fs.rename(&k("/nope"), &k("/x")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
}

#[tokio::test]
async fn rename_limit_moves_nothing() {
    let fs = memory_fs(
        Policy::full(),
        Settings {
            max_rename_objects: 3,
            ..small_parts()
        },
    );
    fs.mkdir(&k("/tree")).await.unwrap();
    for i in 0..4 {
        put(&fs, &format!("/tree/f{i}"), b"x").await;
    }
    let err = fs.rename(&k("/tree"), &k("/moved")).await.unwrap_err();
    assert_eq!(err.kind(), FsErrorKind::TooManyObjects);
    assert_eq!(names(&fs, "/tree").await.len(), 4);
    assert_eq!(
        fs.stat(&k("/moved")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
}

#[tokio::test]
async fn listing_is_capped_and_says_so() {
    let fs = memory_fs(
        Policy::full(),
        Settings {
            max_list_file: 3,
            ..small_parts()
        },
    );
    for i in 0..5 {
        put(&fs, &format!("/f{i}"), b"x").await;
    }
    let mut dir = fs.read_dir(&k("/")).await.unwrap();
    let mut n = 0;
    while dir.next_entry().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 3);
    assert!(dir.capped());

    let fs = memory_fs(
        Policy::full(),
        Settings {
            max_list_file: 5,
            ..small_parts()
        },
    );
    for i in 0..5 {
        put(&fs, &format!("/f{i}"), b"x").await;
    }
    let mut dir = fs.read_dir(&k("/")).await.unwrap();
    while dir.next_entry().await.unwrap().is_some() {}
    assert!(!dir.capped(), "exactly at the cap is not capped");
}

#[tokio::test]
async fn cache_sees_own_writes_and_expires_for_others() {
    let fs = memory_fs(
        Policy::full(),
        Settings {
            metadata_ttl: Duration::from_millis(200),
            ..small_parts()
        },
    );
    assert_eq!(
        fs.stat(&k("/late")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
    fs.op().write("late", "x").await.unwrap();
    // A negative entry hides another writer's object until the TTL passes…
    assert_eq!(
        fs.stat(&k("/late")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    // …then it shows.
    assert_eq!(fs.stat(&k("/late")).await.unwrap().size, 1);
    // Own writes show at once.
    put(&fs, "/own", b"12").await;
    assert_eq!(fs.stat(&k("/own")).await.unwrap().size, 2);
    fs.remove_file(&k("/own")).await.unwrap();
    assert_eq!(
        fs.stat(&k("/own")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
}

#[tokio::test]
async fn a_complete_listing_answers_for_names_it_did_not_find() {
    let fs = memory_fs(
        Policy::full(),
        Settings {
            metadata_ttl: Duration::from_millis(300),
            ..small_parts()
        },
    );
    fs.mkdir(&k("/d")).await.unwrap();
    put(&fs, "/d/a", b"1").await;
    assert_eq!(names(&fs, "/d").await, vec!["a"]);
    // Another client creates d/b after the listing: for the TTL the listing answers, as a cached "not found"
    // would (no HEAD, no listing of its own)…
    fs.op().write("d/b", "xy").await.unwrap();
    assert_eq!(
        fs.stat(&k("/d/b")).await.unwrap_err().kind(),
        FsErrorKind::NotFound
    );
    // …a name the listing found is asked for, and this account's own new files show at once…
    assert_eq!(fs.stat(&k("/d/a")).await.unwrap().size, 1);
    put(&fs, "/d/c", b"123").await;
    assert_eq!(fs.stat(&k("/d/c")).await.unwrap().size, 3);
    // …and so does a new directory.
    fs.mkdir(&k("/d/sub")).await.unwrap();
    assert!(fs.stat(&k("/d/sub")).await.unwrap().is_dir());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(fs.stat(&k("/d/b")).await.unwrap().size, 2);

    // A listing cut short by the cap proves nothing.
    let capped = memory_fs(
        Policy::full(),
        Settings {
            max_list_file: 1,
            metadata_ttl: Duration::from_secs(60),
            ..small_parts()
        },
    );
    capped.mkdir(&k("/e")).await.unwrap();
    put(&capped, "/e/a", b"1").await;
    put(&capped, "/e/b", b"1").await;
    let mut dir = capped.read_dir(&k("/e")).await.unwrap();
    while dir.next_entry().await.unwrap().is_some() {}
    assert!(dir.capped());
    capped.op().write("e/c", "x").await.unwrap();
    assert!(capped.stat(&k("/e/c")).await.is_ok());
}

#[tokio::test]
async fn reordered_reads_are_served_without_fetching_twice() {
    let fs = rw();
    let data: Vec<u8> = (0..32 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    fs.op().write("big", data.clone()).await.unwrap();
    let mut r = fs.open_read(&k("/big")).await.unwrap();
    let check = |offset: u64, got: &Bytes| {
        assert_eq!(
            &got[..],
            &data[offset as usize..offset as usize + got.len()],
            "at {offset}"
        );
    };
    // What the kernel's readahead sends: requests of its readahead size, reordered. First 128 KiB requests with
    // some pairs swapped…
    const KIB: u64 = 1024;
    let mut order: Vec<(u64, u64)> = (0..16).map(|i| (i * 128 * KIB, 128 * KIB)).collect();
    order.swap(3, 4);
    order.swap(10, 11);
    // …then 1 MiB requests (read_ahead_kb raised), one 8 MiB ahead of the others, which come late.
    const MIB: u64 = 1024 * KIB;
    let mut big: Vec<(u64, u64)> = (2..32).map(|i| (i * MIB, MIB)).collect();
    let late: Vec<(u64, u64)> = big.drain(2..10).collect();
    big.splice(3..3, late);
    order.extend(big);
    for (offset, len) in order {
        let got = r.read_at(offset, len as u32).await.unwrap();
        assert_eq!(got.len() as u64, len);
        check(offset, &got);
    }
    assert_eq!(
        r.fetched(),
        data.len() as u64,
        "every byte fetched once, however the requests were reordered"
    );
    // A read across the end, and a real seek back, which fetches again.
    let got = r.read_at(data.len() as u64 - 10, 100).await.unwrap();
    check(data.len() as u64 - 10, &got);
    let before = r.fetched();
    let got = r.read_at(5, 300_000).await.unwrap();
    check(5, &got);
    assert!(r.fetched() > before, "a seek back fetches again");
}

/// With `read_ahead_kb` 4096 the kernel's first requests of a file are in flight together and the one at 1 MiB can
/// arrive before the one at 0: the read starts at the beginning rather than skip it and start over when it comes.
#[tokio::test]
async fn the_first_requests_of_a_file_out_of_order_are_fetched_once() {
    let fs = rw();
    const MIB: u64 = 1024 * 1024;
    let data: Vec<u8> = (0..8 * MIB as u32).map(|i| (i % 251) as u8).collect();
    fs.op().write("big", data.clone()).await.unwrap();
    let mut r = fs.open_read(&k("/big")).await.unwrap();
    let mut order: Vec<u64> = (0..8).collect();
    order.swap(0, 1);
    for i in order {
        let got = r.read_at(i * MIB, MIB as u32).await.unwrap();
        assert_eq!(
            &got[..],
            &data[(i * MIB) as usize..((i + 1) * MIB) as usize]
        );
    }
    assert_eq!(r.fetched(), data.len() as u64, "every byte fetched once");

    // A first read further in is a seek: nothing before it is fetched.
    let mut r = fs.open_read(&k("/big")).await.unwrap();
    let got = r.read_at(6 * MIB, 128 * 1024).await.unwrap();
    assert_eq!(
        &got[..],
        &data[6 * MIB as usize..6 * MIB as usize + 128 * 1024]
    );
    assert!(
        r.fetched() <= 2 * MIB,
        "fetched {} before a first read at 6 MiB",
        r.fetched()
    );
}

/// A small deterministic generator (xorshift), so that a failing order can be replayed.
fn shuffled_within(items: &mut [(u64, u64)], span: usize, mut seed: u64) {
    for block in items.chunks_mut(span) {
        for i in (1..block.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            block.swap(i, (seed % (i as u64 + 1)) as usize);
        }
    }
}

#[tokio::test]
async fn reads_in_any_order_and_size_are_byte_exact_under_a_tight_budget() {
    // Four 1 MiB GETs at most: the read-ahead runs into the budget all the time.
    let fs = BucketFs::new(
        memory_store(),
        Policy::full(),
        small_parts(),
        MemoryBudget::new(4 * 1024 * 1024),
    );
    let size: u64 = 20 * 1024 * 1024 + 12_345;
    let data: Vec<u8> = (0..size as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs.op().write("f", data.clone()).await.unwrap();
    for (seed, request, span) in [
        (1u64, 128 * 1024u64, 4usize),
        (7, 1024 * 1024, 8),
        (3, 77_777, 32),
    ] {
        let mut order: Vec<(u64, u64)> = (0..size.div_ceil(request))
            .map(|i| (i * request, request))
            .collect();
        shuffled_within(&mut order, span, seed);
        // Two readers of the same file in turn, both holding what they fetched: neither may wait forever.
        let mut a = fs.open_read(&k("/f")).await.unwrap();
        let mut b = fs.open_read(&k("/f")).await.unwrap();
        for (i, (offset, len)) in order.iter().copied().enumerate() {
            let r = if i % 2 == 0 { &mut a } else { &mut b };
            let got = r.read_at(offset, len as u32).await.unwrap();
            let want = &data[offset as usize..(offset + len).min(size) as usize];
            assert!(
                got[..] == *want,
                "seed {seed}: {len} bytes at {offset} differ"
            );
        }
    }
}

#[tokio::test]
async fn policy_table_through_the_core() {
    for (authority, delete_enable) in [
        (Authority::Read, true),
        (Authority::Write, true),
        (Authority::Write, false),
        (Authority::ReadWrite, true),
        (Authority::ReadWrite, false),
    ] {
        let fs = memory_fs(Policy::new(authority, delete_enable), small_parts());
        fs.op().write("existing", "data").await.unwrap();
        fs.op().create_dir("dir/").await.unwrap();
        let can_read = authority.can_read();
        let can_write = authority.can_write();
        let can_destroy = can_write && delete_enable;
        let label = format!("{authority:?} delete_enable={delete_enable}");

        assert!(
            fs.stat(&k("/existing")).await.is_ok(),
            "{label}: stat is always allowed"
        );
        assert_eq!(
            fs.read_dir(&k("/")).await.is_ok(),
            can_read,
            "{label}: list"
        );
        assert_eq!(
            fs.read_stream(&k("/existing"), 0).await.is_ok(),
            can_read,
            "{label}: read"
        );
        assert_eq!(
            fs.mkdir(&k("/newdir")).await.is_ok(),
            can_write,
            "{label}: mkdir"
        );
        let created = fs.open_write(&k("/new"), WriteIntent::Replace).await;
        assert_eq!(created.is_ok(), can_write, "{label}: create");
        if let Ok(w) = created {
            w.close().await.unwrap();
        }
        let overwrite = fs.open_write(&k("/existing"), WriteIntent::Replace).await;
        assert_eq!(
            overwrite.as_ref().map(|_| ()).map_err(|e| e.kind()).is_ok(),
            can_destroy,
            "{label}: overwrite"
        );
        drop(overwrite);
        let append = fs.open_write(&k("/existing"), WriteIntent::Append).await;
        assert_eq!(append.is_ok(), can_write, "{label}: append");
        drop(append);
        if can_write {
            fs.rename(&k("/new"), &k("/renamed")).await.unwrap();
            assert_eq!(
                fs.rename(&k("/renamed"), &k("/existing")).await.is_ok(),
                can_destroy,
                "{label}: rename onto"
            );
        }
        assert_eq!(
            fs.remove_file(&k("/existing")).await.is_ok()
                || !fs.op().exists("existing").await.unwrap(),
            can_destroy,
            "{label}: delete"
        );
        assert_eq!(
            fs.rmdir(&k("/dir")).await.is_ok(),
            can_destroy,
            "{label}: rmdir"
        );

        let denied = fs
            .remove_file(&k("/existing"))
            .await
            .err()
            .map(|e| e.kind());
        match (can_write, delete_enable) {
            (false, _) => assert_eq!(denied, Some(FsErrorKind::ReadOnly), "{label}"),
            (true, false) => assert_eq!(denied, Some(FsErrorKind::DeleteDenied), "{label}"),
            _ => {}
        }
        if !can_read {
            assert_eq!(
                fs.read_dir(&k("/")).await.unwrap_err().kind(),
                FsErrorKind::PermissionDenied
            );
        }
    }
}

#[tokio::test]
async fn memory_budget_makes_writers_wait_not_fail() {
    const PART: usize = 1024 * 1024;
    // Room for exactly one part.
    let fs = BucketFs::new(
        memory_store(),
        Policy::full(),
        small_parts(),
        MemoryBudget::new(PART as u64),
    );
    let mut first = fs
        .open_write(&k("/one"), WriteIntent::Replace)
        .await
        .unwrap();
    first.write(Bytes::from(vec![1; PART])).await.unwrap();
    assert_eq!(fs.budget().available(), 0);
    let second = {
        let fs = fs.clone();
        tokio::spawn(async move {
            let mut w = fs
                .open_write(&k("/two"), WriteIntent::Replace)
                .await
                .unwrap();
            w.write(Bytes::from_static(b"2")).await.unwrap();
            w.close().await.unwrap();
        })
    };
    while fs.budget().waiting() == 0 {
        tokio::task::yield_now().await;
    }
    assert!(!second.is_finished(), "the second writer waits for memory");
    first.close().await.unwrap();
    second.await.unwrap();
    assert_eq!(get(&fs, "/two").await, b"2");
    assert_eq!(get(&fs, "/one").await.len(), PART);
    assert_eq!(fs.budget().available(), PART as u64);
}

/// Memory follows the data: a small file holds a few KiB, a big one its part in memory and the parts in flight.
#[tokio::test]
async fn an_upload_holds_memory_in_proportion_to_its_data() {
    const PART: u64 = 1024 * 1024;
    let budget = 64 * PART;
    let fs = BucketFs::new(
        memory_store(),
        Policy::full(),
        small_parts(),
        MemoryBudget::new(budget),
    );
    let mut small = fs
        .open_write(&k("/small"), WriteIntent::Replace)
        .await
        .unwrap();
    small.write(Bytes::from(vec![7; 4096])).await.unwrap();
    let held = budget - fs.budget().available();
    assert!(held <= 64 * 1024, "a 4 KiB file holds {held} bytes");
    small.close().await.unwrap();
    assert_eq!(fs.budget().available(), budget);

    let mut big = fs
        .open_write(&k("/big"), WriteIntent::Replace)
        .await
        .unwrap();
    for _ in 0..5 {
        big.write(Bytes::from(vec![9; PART as usize]))
            .await
            .unwrap();
        big.write(Bytes::from_static(b"+")).await.unwrap();
    }
    let held = budget - fs.budget().available();
    let concurrency = fs.settings().upload_concurrency as u64;
    assert!(
        held <= (concurrency + 1) * PART,
        "{held} bytes held with {concurrency} parts in flight"
    );
    big.close().await.unwrap();
    assert_eq!(get(&fs, "/big").await.len(), 5 * (PART as usize + 1));
    assert_eq!(fs.budget().available(), budget);
}

#[tokio::test]
async fn names_are_validated() {
    let fs = rw();
    assert_eq!(
        Key::parse("/bad\nname").unwrap_err().kind(),
        FsErrorKind::InvalidName
    );
    let long = format!("/{}", "n".repeat(900));
    assert_eq!(
        Key::parse(&long).unwrap_err().kind(),
        FsErrorKind::NameTooLong
    );
    put(&fs, "/中文 目录.txt", "内容".as_bytes()).await;
    assert_eq!(names(&fs, "/").await, vec!["中文 目录.txt"]);
    // `..` cannot leave the root.
    assert_eq!(get(&fs, "/../../中文 目录.txt").await, "内容".as_bytes());
}

/// The adapters run core calls as spawned tasks, so every public future must be `Send`.
#[test]
fn public_futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let fs = rw();
    assert_send(fs.rename(&k("/a"), &k("/b")));
    assert_send(fs.stat(&k("/a")));
    assert_send(fs.read_dir(&k("/")));
    assert_send(fs.mkdir(&k("/d")));
    assert_send(fs.rmdir(&k("/d")));
    assert_send(fs.remove_file(&k("/a")));
    assert_send(fs.open_read(&k("/a")));
    assert_send(fs.open_write(&k("/a"), WriteIntent::Replace));
    assert_send(fs.create_unique(&k("/a")));
    assert_send(fs.list(&k("/a")));
    assert_send(fs.lookup(&k("/a")));
}

/// A cluster's leases as the writer table sees them: names held by "node2", and a log of what this node asked.
#[derive(Debug, Default)]
struct FakeLeases {
    held_elsewhere: std::sync::Mutex<Vec<String>>,
    log: std::sync::Mutex<Vec<String>>,
}

impl FakeLeases {
    fn note(&self, what: String) {
        self.log.lock().unwrap().push(what);
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (with a deadline) until `line` is in the log: the lease's background work has run.
    async fn wait_for(&self, line: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.log().iter().any(|l| l == line) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {line:?} in {:?}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl WriterLeases for FakeLeases {
    fn acquire<'a>(&'a self, key: &'a Key) -> futures::future::BoxFuture<'a, LeaseAnswer> {
        Box::pin(async move {
            if self.held_elsewhere.lock().unwrap().contains(&key.display()) {
                return LeaseAnswer::HeldElsewhere("node2".into());
            }
            self.note(format!("acquire {}", key.display()));
            LeaseAnswer::Granted(LeaseToken(key.display()))
        })
    }

    fn renew<'a>(&'a self, key: &'a Key, _: &'a LeaseToken) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(async move { self.note(format!("renew {}", key.display())) })
    }

    fn release<'a>(
        &'a self,
        key: &'a Key,
        _: &'a LeaseToken,
    ) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(async move { self.note(format!("release {}", key.display())) })
    }

    fn renew_every(&self) -> Duration {
        Duration::from_millis(100)
    }
}

#[tokio::test]
async fn writer_leases_are_taken_renewed_and_given_back() {
    let leases = Arc::new(FakeLeases::default());
    leases.held_elsewhere.lock().unwrap().push("/theirs".into());
    let fs = memory_fs(
        Policy::full(),
        Settings {
            writer_leases: Some(Arc::clone(&leases) as Arc<dyn WriterLeases>),
            ..small_parts()
        },
    );

    // Another node writes it: busy (450 / EBUSY), and this node's table is left as it was.
    let err = fs
        .open_write(&k("/theirs"), WriteIntent::Replace)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FsErrorKind::Busy);
    assert!(err.to_string().contains("node2"), "{err}");
    leases.held_elsewhere.lock().unwrap().clear();
    fs.open_write(&k("/theirs"), WriteIntent::Replace)
        .await
        .unwrap()
        .abort()
        .await;

    // Taken at the open, renewed while the writer lives, given back by the commit before it returns.
    let mut handle = fs
        .open_write(&k("/mine"), WriteIntent::Replace)
        .await
        .unwrap();
    handle.write(Bytes::from_static(b"data")).await.unwrap();
    leases.wait_for("renew /mine").await;
    handle.close().await.unwrap();
    let log = leases.log();
    assert_eq!(log.first().map(String::as_str), Some("acquire /theirs"));
    assert_eq!(log.get(1).map(String::as_str), Some("release /theirs"));
    assert_eq!(log.get(2).map(String::as_str), Some("acquire /mine"));
    assert_eq!(log.last().map(String::as_str), Some("release /mine"));
    let renewals = log.iter().filter(|l| l.starts_with("renew")).count();

    // A rename of a file being written moves its lease: the new name is taken, then the old one given back.
    let moving = fs
        .open_write(&k("/before"), WriteIntent::Replace)
        .await
        .unwrap();
    fs.rename(&k("/before"), &k("/after")).await.unwrap();
    leases.wait_for("acquire /after").await;
    leases.wait_for("release /before").await;
    moving.close().await.unwrap();
    leases.wait_for("release /after").await;

    // A handle dropped without close gives its lease back in the background; an unlink gives it back at once.
    drop(
        fs.open_write(&k("/dropped"), WriteIntent::Replace)
            .await
            .unwrap(),
    );
    let open = fs
        .open_write(&k("/unlinked"), WriteIntent::Replace)
        .await
        .unwrap();
    fs.remove_file(&k("/unlinked")).await.unwrap();
    leases.wait_for("release /dropped").await;
    leases.wait_for("release /unlinked").await;
    drop(open);
    // No renewal after the release (a period and a half later).
    tokio::time::sleep(Duration::from_millis(250)).await;
    let later = leases.log();
    assert_eq!(
        later.iter().filter(|l| l.as_str() == "renew /mine").count(),
        renewals
    );
}

#[tokio::test]
async fn the_sweep_leaves_an_expired_upload_another_node_is_still_writing() {
    let leases = Arc::new(FakeLeases::default());
    let fs = memory_fs(
        Policy::full(),
        Settings {
            writer_leases: Some(Arc::clone(&leases) as Arc<dyn WriterLeases>),
            upload_resume_ttl: Duration::from_millis(1),
            ..small_parts()
        },
    );
    fs.objects()
        .create_upload("long.bin", &crate::storage::objects::ObjectMeta::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Older than the TTL, but another node holds the name: that node is still sending it.
    leases
        .held_elsewhere
        .lock()
        .unwrap()
        .push("/long.bin".into());
    let report = fs.sweep_uploads().await.unwrap();
    assert_eq!((report.expired, report.kept), (0, 1));
    assert_eq!(fs.objects().list_uploads("").await.unwrap().len(), 1);

    // Nobody holds it any more: abandoned, aborted, and the lease taken for the abort is given back.
    leases.held_elsewhere.lock().unwrap().clear();
    let report = fs.sweep_uploads().await.unwrap();
    assert_eq!((report.expired, report.kept), (1, 0));
    assert!(fs.objects().list_uploads("").await.unwrap().is_empty());
    leases.wait_for("release /long.bin").await;
}

/// lftp sends MFMT and SITE CHMOD after every STOR: an attribute change right after this gateway's own upload
/// needs no look at the store (a HEAD here fails: the change must not make one).
#[tokio::test]
async fn an_attribute_change_right_after_an_own_upload_needs_no_head() {
    let (store, faults) = memory_store_with_faults();
    let fs = gateway(store, Policy::full());
    put(&fs, "f.txt", b"bytes").await;
    faults.add(crate::storage::FaultRule {
        method: "HEAD",
        query_contains: "",
        times: 1,
    });
    let mtime = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let changed = fs
        .set_attributes(&k("f.txt"), &mtime_only(mtime))
        .await
        .expect("MFMT after STOR");
    assert_eq!(changed.mtime, Some(mtime));
    assert_eq!(faults.fired(), 0, "the change made a HEAD");
    assert_eq!(get(&fs, "f.txt").await, b"bytes");
}

/// The head remembered from an own upload is only a hint: when another gateway wrote the name meanwhile, the
/// change lands on that newer version (its bytes and its other attributes kept), never on a copy of the old one.
#[tokio::test]
async fn an_attribute_change_after_an_own_upload_keeps_another_gateways_newer_version() {
    let store = memory_store();
    let (a, b) = (
        gateway(store.clone(), Policy::full()),
        gateway(store.clone(), Policy::full()),
    );
    put(&a, "f.txt", b"from a").await;
    put(&b, "f.txt", b"from b, newer").await;
    let mode = AttrChange {
        mode: Some(0o600),
        ..AttrChange::default()
    };
    b.set_attributes(&k("f.txt"), &mode)
        .await
        .expect("chmod on b");

    let mtime = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    a.set_attributes(&k("f.txt"), &mtime_only(mtime))
        .await
        .expect("MFMT on a");

    let fresh = gateway(store, Policy::full());
    assert_eq!(get(&fresh, "f.txt").await, b"from b, newer");
    let meta = fresh.stat(&k("f.txt")).await.expect("stat");
    let attrs = meta.attrs.clone().expect("stored attributes");
    assert_eq!(attrs.mode.map(|m| m & 0o777), Some(0o600), "b's mode kept");
    assert_eq!(meta.mtime, Some(mtime), "a's time set");
}

/// What FTP `MFMT` asks: the modification time, nothing else.
fn mtime_only(mtime: std::time::SystemTime) -> AttrChange {
    AttrChange {
        mtime: Some(mtime),
        ..AttrChange::default()
    }
}

async fn list_all(fs: &BucketFs, dir: &str) {
    let mut listing = fs.read_dir(&k(dir)).await.expect("read_dir");
    while listing.next_entry().await.expect("entry").is_some() {}
}

/// A memory store whose requests fail as the returned injector's rules say.
fn memory_store_with_faults() -> (crate::storage::AccountStore, crate::storage::FaultInjector) {
    let faults = crate::storage::FaultInjector::new();
    let store = crate::storage::build_store(
        &crate::config::StorageConfig::Memory,
        &crate::storage::StorageOptions {
            faults: Some(faults.clone()),
            ..Default::default()
        },
    )
    .expect("memory store");
    (store, faults)
}

fn gateway(store: crate::storage::AccountStore, policy: Policy) -> BucketFs {
    BucketFs::new(
        store,
        policy,
        small_parts(),
        MemoryBudget::new(64 * 1024 * 1024),
    )
}

/// lftp's `mirror -R` lists the directory once and then uploads for as long as it takes: a name the listing did
/// not find is created without a HEAD or a listing of its own, also after `metadata_ttl` (a HEAD fails here).
#[tokio::test(start_paused = true)]
async fn a_name_a_recent_listing_did_not_find_is_created_without_a_look() {
    let (store, faults) = memory_store_with_faults();
    let fs = gateway(store, Policy::full());
    fs.mkdir(&k("d")).await.expect("mkdir");
    put(&fs, "d/old.txt", b"old").await;
    list_all(&fs, "d").await;
    tokio::time::advance(Duration::from_secs(2)).await;
    faults.add(crate::storage::FaultRule {
        method: "HEAD",
        query_contains: "",
        times: 1,
    });
    put(&fs, "d/new.txt", b"new").await;
    assert_eq!(faults.fired(), 0, "the new name was looked up");
    assert_eq!(get(&fs, "d/new.txt").await, b"new");
}

/// …and when another gateway created the name after the listing, the create finds out: a STOR replaces it as it
/// would have after a look (keeping its mode), single PUT or multipart.
#[tokio::test(start_paused = true)]
async fn a_name_created_elsewhere_after_the_listing_is_replaced_as_after_a_look() {
    let store = memory_store();
    let (a, b) = (
        gateway(store.clone(), Policy::full()),
        gateway(store.clone(), Policy::full()),
    );
    a.mkdir(&k("d")).await.expect("mkdir");
    put(&a, "d/keep.txt", b"k").await;
    list_all(&a, "d").await;
    tokio::time::advance(Duration::from_secs(2)).await;
    for (name, size) in [("d/small.txt", 10), ("d/large.bin", 3 * 1024 * 1024 + 7)] {
        put(&b, name, b"from b").await;
        let mode = AttrChange {
            mode: Some(0o600),
            ..AttrChange::default()
        };
        b.set_attributes(&k(name), &mode).await.expect("chmod");
        let body = vec![7u8; size];
        put(&a, name, &body).await;
        let fresh = gateway(store.clone(), Policy::full());
        assert_eq!(get(&fresh, name).await, body, "{name}");
        let attrs = fresh
            .stat(&k(name))
            .await
            .expect("stat")
            .attrs
            .expect("attrs");
        assert_eq!(
            attrs.mode.map(|m| m & 0o777),
            Some(0o600),
            "{name}: mode kept"
        );
    }
}

/// Without `delete_enable`, a file another gateway created after the listing is not replaced; a directory
/// created meanwhile refuses a multipart upload as it would at open.
#[tokio::test(start_paused = true)]
async fn a_name_created_elsewhere_after_the_listing_is_not_replaced_without_delete_enable() {
    let store = memory_store();
    let no_delete = Policy::new(Authority::ReadWrite, false);
    let (a, b) = (
        gateway(store.clone(), no_delete),
        gateway(store.clone(), Policy::full()),
    );
    a.mkdir(&k("d")).await.expect("mkdir");
    put(&a, "d/keep.txt", b"k").await;
    list_all(&a, "d").await;
    tokio::time::advance(Duration::from_secs(2)).await;
    put(&b, "d/x.txt", b"from b").await;
    let mut w = a
        .open_write(&k("d/x.txt"), WriteIntent::Replace)
        .await
        .expect("open: the name looks new");
    w.write(Bytes::from_static(b"from a")).await.expect("write");
    let err = w.close().await.expect_err("b's file must not be replaced");
    assert!(
        matches!(
            err.kind(),
            FsErrorKind::DeleteDenied | FsErrorKind::Conflict
        ),
        "{err:?}"
    );
    assert_eq!(get(&b, "d/x.txt").await, b"from b");

    b.mkdir(&k("d/sub")).await.expect("mkdir");
    let full = gateway(store.clone(), Policy::full());
    list_all(&full, "d").await;
    let b2 = gateway(store.clone(), Policy::full());
    b2.mkdir(&k("d/later")).await.expect("mkdir");
    tokio::time::advance(Duration::from_secs(2)).await;
    let mut w = full
        .open_write(&k("d/later"), WriteIntent::Replace)
        .await
        .expect("open: the name looks new");
    let big = Bytes::from(vec![1u8; 3 * 1024 * 1024]);
    let refused = match w.write(big).await {
        Err(e) => e,
        Ok(()) => w.close().await.expect_err("a directory is there"),
    };
    assert_eq!(refused.kind(), FsErrorKind::IsADirectory, "{refused:?}");
}
