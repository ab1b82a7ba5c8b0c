//! Mounts an in-memory bucket (for trying the mount and for benchmarks) until stdin closes or Enter is pressed.
//!
//! `cargo run --release --example mount_memory -- <mountpoint> [objects-to-seed-in-/many]`
//! With `RUST_LOG=debug` every FUSE request is logged with its span.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use cosftpd::bucketfs::{BucketFs, MemoryBudget, Policy, Settings};
use cosftpd::fuse::{mount, MountOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let mountpoint = PathBuf::from(
        args.next()
            .ok_or("usage: mount_memory <mountpoint> [seed]")?,
    );
    let seed: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(0);

    let runtime = tokio::runtime::Runtime::new()?;
    let store = cosftpd::storage::build_store(
        &cosftpd::config::StorageConfig::Memory,
        &cosftpd::storage::StorageOptions::default(),
    )?;
    runtime.block_on(async {
        for i in 0..seed {
            store
                .op
                .write(&format!("many/object-{i:05}.txt"), format!("object {i}\n"))
                .await?;
        }
        Ok::<_, opendal::Error>(())
    })?;
    let settings = Settings {
        metadata_ttl: Duration::from_secs(1),
        ..Settings::default()
    };
    let fs = BucketFs::new(
        store,
        Policy::full(),
        settings,
        MemoryBudget::new(512 << 20),
    );
    let handle = mount(
        fs,
        &mountpoint,
        MountOptions::new("cosftpd:memory"),
        runtime.handle().clone(),
    )?;
    eprintln!(
        "mounted at {}; press Enter to unmount",
        mountpoint.display()
    );
    let _ = std::io::stdin().lock().lines().next();
    handle.unmount()?;
    Ok(())
}
