//! `cosftpd serve | mount | check-config | passwd`.

// As in src/lib.rs: no unwrap()/expect() in product code.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cosftpd::config::{location, Config, ConfigErrors, StorageConfig};
use cosftpd::daemon::{self, Mode, ReloadSource, RunOptions};
use cosftpd::logging::LogSettings;
use cosftpd::storage::StorageOptions;

/// jemalloc, not glibc's malloc. Data passes through buffers of 64 KiB to 20 MiB (HTTP bodies, upload parts,
/// read-ahead). glibc either keeps freed buffers of that size in per-thread arenas without returning them (16
/// concurrent uploads peaked at 518 MiB under a 256 MiB `memory_budget`), or, with a fixed 128 KiB mmap
/// threshold, maps fresh pages for each buffer and unmaps them on free, and page faults and page clearing took
/// much of the CPU of a download. jemalloc reuses freed memory and returns what stays unused (docs/BENCHMARKS.md,
/// "Read pipeline, jemalloc and the mount's readahead").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// FTP(S) server and FUSE mounts for Tencent COS, S3-compatible stores and local directories.
///
/// One config file (the original COS FTP Server's conf/vsftpd.conf format) binds each FTP account to a bucket.
#[derive(Debug, Parser)]
#[command(name = "cosftpd", version = cosftpd::VERSION, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mount every account's bucket at its home_dir and serve FTP(S) until SIGINT/SIGTERM.
    Serve(RunArgs),
    /// Mount every account's bucket at its home_dir (no FTP) until SIGINT/SIGTERM.
    Mount(RunArgs),
    /// Validate the config and print what it sets up; exit status 1 on any error.
    CheckConfig(ConfigArg),
    /// Print an argon2id hash of a password, for ftp_login_user_password.
    ///
    /// Reads the password twice from the terminal without echo, or the first line of standard input when that is
    /// not a terminal (`printf '%s\n' "$PASSWORD" | cosftpd passwd`).
    Passwd,
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// Config file [default: $COSFTPD_CONFIG, else /etc/cosftpd/vsftpd.conf if it exists, else conf/vsftpd.conf]
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn path(self) -> PathBuf {
        location::resolve(self.config)
    }
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Do not contact the stores at start (by default each bucket is listed once to catch bad keys early).
    #[arg(long)]
    no_check: bool,
}

fn main() -> ExitCode {
    quiet_library_backtraces();
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig(config) => check_config(&config.path()),
        Command::Serve(args) => run(args, Mode::Serve),
        Command::Mount(args) => run(args, Mode::MountOnly),
        Command::Passwd => passwd(),
    }
}

/// Store errors are expected events (retried, reported, turned into replies), not bugs, but OpenDAL captures a
/// backtrace for each one when RUST_BACKTRACE is set, and printing one cost 5–8 KB of log and ≈138 MiB of RSS for
/// the symbols. RUST_LIB_BACKTRACE governs only such captures; panics keep theirs. An explicit setting wins.
fn quiet_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // Before any thread exists: nothing reads the environment concurrently.
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
}

/// The validated config, after the checks that need the machine (`Config::preflight`): `check-config`, `serve`
/// and `mount` refuse the same configs with the same messages, before anything starts.
fn load(path: &Path) -> Result<Config, ExitCode> {
    let checked = Config::load(path).and_then(|config| config.preflight().map(|()| config));
    checked.map_err(|errors| {
        print_errors(path, &errors);
        ExitCode::FAILURE
    })
}

fn print_errors(path: &Path, errors: &ConfigErrors) {
    eprintln!("{}: {} error(s):", path.display(), errors.errors.len());
    for e in &errors.errors {
        eprintln!("  {e}");
    }
    for w in &errors.warnings {
        eprintln!("  warning: {w}");
    }
}

fn run(args: RunArgs, mode: Mode) -> ExitCode {
    let path = args.config.path();
    let config = match load(&path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let logging = match cosftpd::logging::init(&LogSettings::from_config(&config)) {
        Ok(logging) => logging,
        Err(e) => {
            eprintln!("cosftpd: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(version = cosftpd::VERSION, config = %path.display(), "cosftpd starting");
    for warning in &config.warnings {
        tracing::warn!("{}: {warning}", path.display());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cosftpd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = RunOptions {
        mode,
        no_check: args.no_check,
        storage: StorageOptions::default(),
    };
    let reload = ReloadSource {
        config_path: path.clone(),
        logs: Some(logging.handle()),
    };
    match runtime.block_on(daemon::run(config, options, reload)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("cosftpd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    println!("{}: OK", path.display());
    for w in &config.warnings {
        println!("warning: {w}");
    }
    let n = &config.network;
    println!(
        "FTP: {}:{} passive {}-{} masquerade {}",
        n.listen_address,
        n.listen_port,
        n.passive_ports.start(),
        n.passive_ports.end(),
        n.masquerade_address
            .as_deref()
            .unwrap_or("(control connection address)")
    );
    if !n.proxy_protocol_from.is_empty() {
        let from: Vec<String> = n
            .proxy_protocol_from
            .iter()
            .map(ToString::to_string)
            .collect();
        println!("PROXY protocol header required from: {}", from.join(", "));
    }
    if let Some(cluster) = &config.cluster {
        // Where Redis is, never the URL (it may carry a password).
        let redis = redis_address(cluster.redis_url.expose());
        println!(
            "cluster: node {} sharing lockout, connection limits and writer leases on Redis at {redis} (lease time {} s)",
            cluster.node_name,
            cluster.lease_time.as_secs_f64()
        );
    }
    println!(
        "uploads: part size {} (single_file_max_size {}), {} parts in flight; memory budget {} (worst case for data buffers)",
        human(config.part_size()),
        human(config.file.single_file_max_size),
        config.optional.upload_thread_num,
        human(config.worst_case_memory())
    );
    for a in &config.accounts {
        let where_ = match &a.storage {
            StorageConfig::Fs { root } => format!("fs {}", root.display()),
            other => other.describe(),
        };
        println!(
            "[{}] user {:<12} {:<2} delete_enable={:<5} home_dir {}  ->  {}",
            a.section,
            a.user,
            a.authority.letters(),
            a.delete_enable,
            a.home_dir.display(),
            where_
        );
    }
    ExitCode::SUCCESS
}

fn redis_address(url: &str) -> String {
    redis::Client::open(url)
        .map(|client| client.get_connection_info().addr().to_string())
        .unwrap_or_else(|_| "?".to_string())
}

fn passwd() -> ExitCode {
    let hashed = read_new_password()
        .map_err(|e| e.to_string())
        .and_then(|password| {
            cosftpd::ftp::auth::hash_password(&password).map_err(|e| e.to_string())
        });
    match hashed {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cosftpd passwd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// From the terminal: typed twice, never echoed (rpassword talks to /dev/tty, so stdout carries only the hash).
/// Otherwise the first line of stdin, exactly as given but for its line ending.
fn read_new_password() -> std::io::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Repeat password: ")?;
        if first != again {
            return Err(std::io::Error::other("the two passwords differ"));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        line.strip_suffix('\r').unwrap_or(line).to_string()
    };
    if password.is_empty() {
        return Err(std::io::Error::other("empty password"));
    }
    Ok(password)
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
