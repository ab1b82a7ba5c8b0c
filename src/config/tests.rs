//! Whole files through `Config::parse_str` / `Config::load`: every key, the defaults, every kind of error, and the
//! shipped config files. Home directories are temporary directories, so nothing depends on the machine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use super::*;

/// A directory that exists, for `home_dir`.
fn home() -> TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// One memory-backed account (no bucket or keys needed) in `dir`, plus `extra` sections.
fn with_account(dir: &Path, extra: &str) -> String {
    format!(
        "[COS_ACCOUNT_0]\n\
         storage_type = memory\n\
         home_dir = {}\n\
         ftp_login_user_name = user0\n\
         ftp_login_user_password = pass0\n\
         authority = RW\n\
         {extra}",
        dir.display()
    )
}

fn parse_ok(text: &str) -> Config {
    match Config::parse_str(text) {
        Ok(config) => config,
        Err(errors) => panic!("unexpected errors:\n{errors}\n--- in ---\n{text}"),
    }
}

/// The errors as displayed, in order.
fn errors(text: &str) -> Vec<String> {
    match Config::parse_str(text) {
        Ok(_) => panic!("expected errors in:\n{text}"),
        Err(errors) => errors.errors.iter().map(ToString::to_string).collect(),
    }
}

fn single_error(text: &str) -> String {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors[0].clone()
}

#[test]
fn defaults_of_every_setting() {
    let dir = home();
    let config = parse_ok(&with_account(dir.path(), ""));

    let n = &config.network;
    assert_eq!(n.masquerade_address, None);
    assert_eq!(
        n.listen_address,
        "0.0.0.0".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(n.listen_port, 2121);
    assert_eq!(n.passive_ports, 60000..=65535);
    assert_eq!(n.legacy_encoding, LegacyEncoding::None);
    assert_eq!(n.tls_mode, TlsMode::Off);
    assert_eq!(n.tls_cert_file, None);
    assert_eq!(n.tls_key_file, None);
    assert_eq!(n.tls_implicit_port, None);
    assert_eq!(n.metrics_address, None);

    assert_eq!(config.file.single_file_max_size, 200 * GIB);

    let o = &config.optional;
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(o.min_part_size, 2 * MIB);
    assert_eq!(o.upload_thread_num, (4 * cores).min(256));
    assert_eq!(o.max_connection_num, Some(512));
    assert_eq!(o.max_connection_per_ip, Some(50));
    assert_eq!(o.max_list_file, 10_000);
    assert_eq!(o.log_level, tracing::Level::INFO);
    assert_eq!(o.log_dir, None);
    assert!(o.mount_enable);
    assert_eq!(o.memory_budget, 512 * MIB);
    assert!(!o.create_home_dir);
    assert_eq!(o.metadata_ttl, Duration::from_secs(1));
    assert_eq!(o.metadata_cache_size, 16 * MIB);
    assert_eq!(o.max_rename_objects, 10_000);
    assert!(o.allow_other);
    assert_eq!((o.mount_uid, o.mount_gid), (None, None));
    assert_eq!((o.file_mode, o.dir_mode), (0o644, 0o755));
    assert_eq!(o.idle_timeout, Duration::from_secs(300));
    assert_eq!(o.login_timeout, Duration::from_secs(30));
    assert_eq!(o.login_fail_limit, 5);
    assert_eq!(o.login_fail_window, Duration::from_secs(300));
    assert_eq!(o.login_ban_time, Duration::from_secs(600));
    assert_eq!(o.log_format, LogFormat::Text);
    assert_eq!(o.log_keep_days, None);
    assert_eq!(o.xferlog_file, None);
    assert_eq!(o.xferlog_format, XferlogFormat::Xferlog);
    assert_eq!(o.shutdown_grace, Duration::from_secs(30));

    // 200 GiB / 10,000 parts, rounded up.
    assert_eq!(config.part_size(), (200 * GIB).div_ceil(10_000));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn every_optional_key() {
    let dir = home();
    let config = parse_ok(&with_account(
        dir.path(),
        "[FILE_OPTION]\n\
         single_file_max_size = 1T\n\
         [OPTIONAL]\n\
         min_part_size = 8MiB\n\
         upload_thread_num = 3\n\
         max_connection_num = 0\n\
         max_connection_per_ip = 0\n\
         max_list_file = 7\n\
         log_level = DEBUG\n\
         log_dir = /var/Log/CosFTP\n\
         mount_enable = no\n\
         memory_budget = 1G\n\
         create_home_dir = yes\n\
         metadata_ttl = 250ms\n\
         max_rename_objects = 12\n\
         allow_other = off\n\
         mount_uid = 1000\n\
         mount_gid = 100\n\
         file_mode = 0600\n\
         dir_mode = 700\n\
         idle_timeout = 10m\n\
         login_timeout = 15\n\
         login_fail_limit = 3\n\
         login_fail_window = 1h\n\
         login_ban_time = 2h\n\
         log_format = JSON\n\
         log_keep_days = 14\n\
         xferlog_file = /var/log/cosftpd/xferlog\n\
         xferlog_format = json\n\
         shutdown_grace = 2m\n",
    ));
    assert_eq!(config.file.single_file_max_size, TIB);
    let o = &config.optional;
    assert_eq!(o.min_part_size, 8 * MIB);
    assert_eq!(o.upload_thread_num, 3);
    assert_eq!(o.max_connection_num, None);
    assert_eq!(o.max_connection_per_ip, None);
    assert_eq!(o.max_list_file, 7);
    assert_eq!(o.log_level, tracing::Level::DEBUG);
    assert_eq!(o.log_dir, Some(PathBuf::from("/var/Log/CosFTP")));
    assert!(!o.mount_enable);
    assert_eq!(o.memory_budget, GIB);
    assert!(o.create_home_dir);
    assert_eq!(o.metadata_ttl, Duration::from_millis(250));
    assert_eq!(o.max_rename_objects, 12);
    assert!(!o.allow_other);
    assert_eq!((o.mount_uid, o.mount_gid), (Some(1000), Some(100)));
    assert_eq!((o.file_mode, o.dir_mode), (0o600, 0o700));
    assert_eq!(o.idle_timeout, Duration::from_secs(600));
    assert_eq!(o.login_timeout, Duration::from_secs(15));
    assert_eq!(o.login_fail_limit, 3);
    assert_eq!(o.login_fail_window, Duration::from_secs(3600));
    assert_eq!(o.login_ban_time, Duration::from_secs(7200));
    assert_eq!(o.log_format, LogFormat::Json);
    assert_eq!(o.log_keep_days, Some(14));
    assert_eq!(
        o.xferlog_file,
        Some(PathBuf::from("/var/log/cosftpd/xferlog"))
    );
    assert_eq!(o.xferlog_format, XferlogFormat::Json);
    assert_eq!(o.shutdown_grace, Duration::from_secs(120));
    // max(8 MiB, 1 TiB / 10,000).
    assert_eq!(config.part_size(), TIB.div_ceil(10_000));
}

#[test]
fn every_network_key() {
    let dir = home();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, "cert").unwrap();
    std::fs::write(&key, "key").unwrap();
    let config = parse_ok(&with_account(
        dir.path(),
        &format!(
            "[NETWORK]\n\
             masquerade_address = ftp.example.com\n\
             listen_address = [::]\n\
             listen_port = 21\n\
             passive_port = 50000, 50100\n\
             legacy_encoding = GBK\n\
             tls_mode = Required\n\
             tls_cert_file = {}\n\
             tls_key_file = {}\n\
             tls_implicit_port = 990\n\
             metrics_address = [::1]:9121\n",
            cert.display(),
            key.display()
        ),
    ));
    let n = &config.network;
    assert_eq!(n.masquerade_address.as_deref(), Some("ftp.example.com"));
    assert_eq!(n.listen_address, "::".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(n.listen_port, 21);
    assert_eq!(n.passive_ports, 50000..=50100);
    assert_eq!(n.legacy_encoding, LegacyEncoding::Gbk);
    assert_eq!(n.tls_mode, TlsMode::Required);
    assert_eq!(n.tls_cert_file.as_deref(), Some(cert.as_path()));
    assert_eq!(n.tls_key_file.as_deref(), Some(key.as_path()));
    assert_eq!(n.tls_implicit_port, Some(990));
    assert_eq!(n.metrics_address, Some("[::1]:9121".parse().unwrap()));
}

#[test]
fn operations_keys_and_their_errors() {
    let dir = home();
    // 0 days keeps every file; a grace of 0 aborts transfers at once, as before the grace existed.
    let config = parse_ok(&with_account(
        dir.path(),
        "[OPTIONAL]\nlog_keep_days = 0\nshutdown_grace = 0\nxferlog_format = wu-ftpd\n",
    ));
    assert_eq!(config.optional.log_keep_days, None);
    assert_eq!(config.optional.shutdown_grace, Duration::ZERO);
    assert_eq!(config.optional.xferlog_format, XferlogFormat::Xferlog);

    let errors = errors(&with_account(
        dir.path(),
        "[NETWORK]\nmetrics_address = 9121\n\
         [OPTIONAL]\nlog_format = yaml\nlog_keep_days = -1\nxferlog_format = csv\nshutdown_grace = soon\n",
    ));
    let keys: Vec<&str> = errors
        .iter()
        .map(|e| e.split(": invalid value").next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "[NETWORK] metrics_address",
            "[OPTIONAL] log_format",
            "[OPTIONAL] log_keep_days",
            "[OPTIONAL] xferlog_format",
            "[OPTIONAL] shutdown_grace",
        ],
        "{errors:#?}"
    );
    assert!(errors[0].contains("such as 127.0.0.1:9121"), "{errors:#?}");
    assert_eq!(
        single_error(&with_account(
            dir.path(),
            "[NETWORK]\nmetrics_address = 127.0.0.1:0\n"
        )),
        "[NETWORK] metrics_address: invalid value `127.0.0.1:0`: expected an IP address and a port, such as \
         127.0.0.1:9121 or [::1]:9121"
    );
}

#[test]
fn a_certificate_turns_tls_on_as_optional() {
    let dir = home();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "cert").unwrap();
    let text = with_account(
        dir.path(),
        &format!(
            "[NETWORK]\ntls_cert_file = {0}\ntls_key_file = {0}\nmasquerade_address = 203.0.113.7\n",
            cert.display()
        ),
    );
    let config = parse_ok(&text);
    assert_eq!(config.network.tls_mode, TlsMode::Optional);
    assert_eq!(
        config.network.masquerade_address.as_deref(),
        Some("203.0.113.7")
    );
    let config = parse_ok(&text.replace("[NETWORK]\n", "[NETWORK]\ntls_mode = off\n"));
    assert_eq!(config.network.tls_mode, TlsMode::Off);
}

#[test]
fn tls_problems() {
    let dir = home();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "cert").unwrap();
    let missing = dir.path().join("missing.pem");
    let case = |network: &str| errors(&with_account(dir.path(), &format!("[NETWORK]\n{network}")));

    assert_eq!(
        case(&format!("tls_cert_file = {}\n", cert.display())),
        ["[NETWORK] tls_key_file: required when tls_cert_file is set"]
    );
    assert_eq!(
        case(&format!("tls_key_file = {}\n", cert.display())),
        ["[NETWORK] tls_cert_file: required when tls_key_file is set"]
    );
    assert_eq!(
        case("tls_mode = required\n"),
        ["[NETWORK] tls_cert_file: tls_cert_file and tls_key_file are required when tls_mode is not off"]
    );
    assert_eq!(
        case("tls_implicit_port = 990\n"),
        ["[NETWORK] tls_cert_file: tls_cert_file and tls_key_file are required when tls_implicit_port is set"]
    );
    let found = case(&format!(
        "tls_cert_file = {}\ntls_key_file = {}\n",
        missing.display(),
        dir.path().display()
    ));
    assert_eq!(found.len(), 2, "{found:#?}");
    let cert_error = format!(
        "[NETWORK] tls_cert_file: invalid value `{}`: cannot read it: ",
        missing.display()
    );
    assert!(found[0].starts_with(&cert_error), "{found:#?}");
    assert_eq!(
        found[1],
        format!(
            "[NETWORK] tls_key_file: invalid value `{}`: not a file",
            dir.path().display()
        )
    );
    assert_eq!(
        case(&format!(
            "tls_cert_file = {0}\ntls_key_file = {0}\ntls_implicit_port = 2121\n",
            cert.display()
        )),
        ["[NETWORK] tls_implicit_port: must differ from listen_port (2121): both are listened on"]
    );
    assert_eq!(
        case("tls_mode = on\n"),
        ["[NETWORK] tls_mode: invalid value `on`: expected off, optional or required"]
    );
}

#[test]
fn network_value_errors() {
    let dir = home();
    let found = errors(&with_account(
        dir.path(),
        "[NETWORK]\n\
         masquerade_address = 300.1.2.3\n\
         listen_address = localhost\n\
         listen_port = 70000\n\
         passive_port = 65535,60000\n\
         legacy_encoding = latin1\n",
    ));
    assert_eq!(
        found,
        [
            "[NETWORK] masquerade_address: invalid value `300.1.2.3`: not a valid IPv4 address",
            "[NETWORK] listen_address: invalid value `localhost`: expected an IP address such as 0.0.0.0, \
             127.0.0.1 or ::",
            "[NETWORK] listen_port: invalid value `70000`: expected a port number between 1 and 65535",
            "[NETWORK] passive_port: invalid value `65535,60000`: the range is empty: 65535 is above 60000",
            "[NETWORK] legacy_encoding: invalid value `latin1`: expected none or gbk",
        ]
    );
    assert_eq!(
        single_error(&with_account(dir.path(), "[NETWORK]\npassive_port = 0,100\n")),
        "[NETWORK] passive_port: invalid value `0,100`: expected `low,high`, two port numbers between 1 and 65535 \
         (e.g. 60000,65535)"
    );
}

#[test]
fn empty_and_none_values_mean_the_default() {
    let dir = home();
    let config = parse_ok(&with_account(
        dir.path(),
        "[NETWORK]\nmasquerade_address =\nlegacy_encoding = none\n[OPTIONAL]\nlog_dir =\n",
    ));
    assert_eq!(config.network.masquerade_address, None);
    assert_eq!(config.network.legacy_encoding, LegacyEncoding::None);
    assert_eq!(config.optional.log_dir, None);
}

#[test]
fn listen_port_inside_the_passive_range_is_a_warning() {
    let dir = home();
    let config = parse_ok(&with_account(
        dir.path(),
        "[NETWORK]\nlisten_port = 60010\npassive_port = 60000,60100\n",
    ));
    assert_eq!(
        config.warnings,
        ["[NETWORK] passive_port: the range includes listen_port 60010, which is then never used for data"]
    );
}

#[test]
fn cos_endpoint_from_region_or_endpoint() {
    let dir = home();
    let cos = |keys: &str| {
        let text = format!(
            "[COS_ACCOUNT_0]\n\
             cos_secretid = AKIDexample\n\
             cos_secretkey = secretexample\n\
             cos_bucket = examplebucket-1250000000\n\
             home_dir = {}\n\
             ftp_login_user_name = u\n\
             ftp_login_user_password = p\n\
             authority = rw\n\
             {keys}",
            dir.path().display()
        );
        let config = parse_ok(&text);
        match &config.accounts[0].storage {
            StorageConfig::Cos {
                bucket,
                endpoint,
                secret_id,
                secret_key,
            } => {
                assert_eq!(bucket, "examplebucket-1250000000");
                assert_eq!(secret_id.expose(), "AKIDexample");
                assert_eq!(secret_key.expose(), "secretexample");
                endpoint.clone()
            }
            other => panic!("not cos: {other:?}"),
        }
    };
    assert_eq!(
        cos("cos_region = ap-guangzhou\n"),
        "https://cos.ap-guangzhou.myqcloud.com"
    );
    assert_eq!(
        cos("cos_region = ap-beijing\ncos_protocol = HTTP\n"),
        "http://cos.ap-beijing.myqcloud.com"
    );
    assert_eq!(
        cos("cos_region = ap-beijing\ncos_endpoint = cos.internal.example\n"),
        "https://cos.internal.example"
    );
    assert_eq!(
        cos("cos_endpoint = http://10.0.0.1:8080/\ncos_protocol = https\n"),
        "http://10.0.0.1:8080"
    );
    assert_eq!(
        cos("storage_type = COS\ncos_region = na-ashburn\n"),
        "https://cos.na-ashburn.myqcloud.com"
    );
}

#[test]
fn cos_requirements_are_all_reported() {
    let dir = home();
    let found = errors(&format!(
        "[COS_ACCOUNT_0]\nhome_dir = {}\ncos_protocol = ftp\n",
        dir.path().display()
    ));
    assert_eq!(
        found,
        [
            "[COS_ACCOUNT_0] cos_bucket: required, but missing or empty",
            "[COS_ACCOUNT_0] cos_secretid: required, but missing or empty",
            "[COS_ACCOUNT_0] cos_secretkey: required, but missing or empty",
            "[COS_ACCOUNT_0] cos_protocol: invalid value `ftp`: expected http or https",
            "[COS_ACCOUNT_0] cos_region: required (unless cos_endpoint is set): the bucket's region, e.g. \
             ap-guangzhou",
            "[COS_ACCOUNT_0] ftp_login_user_name: required, but missing or empty",
            "[COS_ACCOUNT_0] ftp_login_user_password: required, but missing or empty",
            "[COS_ACCOUNT_0] authority: required, but missing or empty",
        ]
    );
    assert_eq!(
        single_error(&with_account(dir.path(), "").replace(
            "storage_type = memory",
            "cos_secretid = a\ncos_secretkey = b\ncos_region = ap-guangzhou\ncos_bucket = examplebucket"
        )),
        "[COS_ACCOUNT_0] cos_bucket: invalid value `examplebucket`: expected `name-appid`, e.g. \
         examplebucket-1250000000"
    );
}

#[test]
fn s3_accounts() {
    let dir = home();
    let text = with_account(dir.path(), "").replace(
        "storage_type = memory",
        "storage_type = s3\n\
         cos_bucket = test\n\
         cos_secretid = access\n\
         cos_secretkey = secret\n\
         cos_endpoint = http://127.0.0.1:9000",
    );
    match &parse_ok(&text).accounts[0].storage {
        StorageConfig::S3 {
            bucket,
            endpoint,
            region,
            access_key,
            secret_key,
            virtual_host,
        } => {
            assert_eq!(bucket, "test");
            assert_eq!(endpoint, "http://127.0.0.1:9000");
            assert_eq!(region, "us-east-1");
            assert_eq!(access_key.expose(), "access");
            assert_eq!(secret_key.expose(), "secret");
            assert!(!virtual_host);
        }
        other => panic!("not s3: {other:?}"),
    }
    let text = text.replace(
        "cos_endpoint = http://127.0.0.1:9000",
        "cos_endpoint = s3.example.com\ncos_region = eu-west-1\ns3_virtual_host = true",
    );
    match &parse_ok(&text).accounts[0].storage {
        StorageConfig::S3 {
            endpoint,
            region,
            virtual_host,
            ..
        } => {
            assert_eq!(endpoint, "https://s3.example.com");
            assert_eq!(region, "eu-west-1");
            assert!(virtual_host);
        }
        other => panic!("not s3: {other:?}"),
    }
    let found =
        errors(&with_account(dir.path(), "").replace("storage_type = memory", "storage_type = s3"));
    assert_eq!(
        found,
        [
            "[COS_ACCOUNT_0] cos_bucket: required, but missing or empty",
            "[COS_ACCOUNT_0] cos_secretid: required, but missing or empty",
            "[COS_ACCOUNT_0] cos_secretkey: required, but missing or empty",
            "[COS_ACCOUNT_0] cos_endpoint: required with storage_type = s3: the S3 endpoint URL, e.g. \
             http://127.0.0.1:9000",
        ]
    );
}

#[test]
fn fs_accounts() {
    let dir = home();
    let home_dir = dir.path().join("home");
    std::fs::create_dir(&home_dir).unwrap();
    let root = dir.path().join("not/yet/there");
    let text = with_account(&home_dir, "").replace(
        "storage_type = memory",
        &format!("storage_type = fs\nstorage_root = {}/x/..", root.display()),
    );
    let config = parse_ok(&text);
    match &config.accounts[0].storage {
        StorageConfig::Fs { root: parsed } => assert_eq!(parsed, &root),
        other => panic!("not fs: {other:?}"),
    }

    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let text = with_account(&home_dir, "").replace(
        "storage_type = memory",
        &format!("storage_type = fs\nstorage_root = {}", file.display()),
    );
    assert_eq!(
        single_error(&text),
        format!(
            "[COS_ACCOUNT_0] storage_root: {} exists but is not a directory",
            file.display()
        )
    );
    assert_eq!(
        single_error(&with_account(dir.path(), "").replace("storage_type = memory", "storage_type = fs")),
        "[COS_ACCOUNT_0] storage_root: required with storage_type = fs: the directory that holds the objects"
    );
}

#[test]
fn relative_paths_resolve_against_the_current_directory() {
    let text = "[COS_ACCOUNT_0]\n\
                storage_type = fs\n\
                storage_root = data/./bucket\n\
                home_dir = run/../run/user0\n\
                ftp_login_user_name = u\nftp_login_user_password = p\nauthority = R\n\
                [OPTIONAL]\ncreate_home_dir = true\n";
    let config = parse_ok(text);
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(config.accounts[0].home_dir, cwd.join("run/user0"));
    assert!(
        matches!(&config.accounts[0].storage, StorageConfig::Fs { root } if *root == cwd.join("data/bucket"))
    );
}

#[test]
fn keys_of_other_storage_types_are_warned_about() {
    let dir = home();
    let config = parse_ok(&with_account(dir.path(), "").replace(
        "storage_type = memory",
        "storage_type = memory\ncos_bucket = b-1\nstorage_root = /x",
    ));
    assert_eq!(
        config.warnings,
        [
            "[COS_ACCOUNT_0] cos_bucket: ignored with storage_type = memory",
            "[COS_ACCOUNT_0] storage_root: ignored with storage_type = memory",
        ]
    );
    assert_eq!(
        single_error(
            &with_account(dir.path(), "").replace("storage_type = memory", "storage_type = gcs")
        ),
        "[COS_ACCOUNT_0] storage_type: invalid value `gcs`: expected cos, s3, fs or memory"
    );
}

#[test]
fn account_fields() {
    let dir = home();
    let config = parse_ok(&with_account(dir.path(), "").replace("authority = RW", "authority = w"));
    let account = &config.accounts[0];
    assert_eq!(account.section, "COS_ACCOUNT_0");
    assert_eq!(account.home_dir, dir.path());
    assert_eq!(account.user, "user0");
    assert_eq!(account.password.expose(), "pass0");
    assert_eq!(account.authority, Authority::Write);
    assert!(account.delete_enable, "delete_enable defaults to true");
    assert!(matches!(account.storage, StorageConfig::Memory));

    for (letters, expected) in [
        ("R", Authority::Read),
        ("rw", Authority::ReadWrite),
        ("Rw", Authority::ReadWrite),
    ] {
        let text = with_account(dir.path(), "")
            .replace("authority = RW", &format!("authority = {letters}"));
        assert_eq!(parse_ok(&text).accounts[0].authority, expected);
    }
    let text = with_account(dir.path(), "delete_enable = FALSE\n");
    assert!(!parse_ok(&text).accounts[0].delete_enable);
}

#[test]
fn unknown_authority_and_bad_boolean_name_section_and_key() {
    let dir = home();
    let text = with_account(dir.path(), "delete_enable = sometimes\n")
        .replace("authority = RW", "authority = RWX");
    assert_eq!(
        errors(&text),
        [
            "[COS_ACCOUNT_0] authority: invalid value `RWX`: expected R, W or RW",
            "[COS_ACCOUNT_0] delete_enable: invalid value `sometimes`: expected true/false, yes/no, on/off or 1/0",
        ]
    );
}

/// Two memory accounts, `user0` and `user1`, then `extra`.
fn two_accounts(first_home: &Path, second_home: &Path, extra: &str) -> String {
    let second = with_account(second_home, "")
        .replace("COS_ACCOUNT_0", "COS_ACCOUNT_1")
        .replace("user0", "user1");
    format!("{}\n{second}\n{extra}", with_account(first_home, ""))
}

#[test]
fn user_names_and_home_dirs_must_be_unique() {
    let dir = home();
    let text = two_accounts(dir.path(), &dir.path().join("."), "").replace("user1", "user0");
    assert_eq!(
        errors(&text),
        [
            format!(
                "[COS_ACCOUNT_1] home_dir: {} is also the home_dir of [COS_ACCOUNT_0]; each account needs its own \
                 (the original silently served both users from one bucket)",
                dir.path().display()
            ),
            "[COS_ACCOUNT_1] ftp_login_user_name: user user0 is already defined in [COS_ACCOUNT_0]; user names \
             must be unique"
                .to_string(),
        ]
    );
}

#[test]
fn mount_points_must_not_nest() {
    let dir = home();
    let inner = dir.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    let text = two_accounts(dir.path(), &inner, "");
    assert_eq!(
        errors(&text),
        [format!(
            "[COS_ACCOUNT_1] home_dir: {} and the home_dir of [COS_ACCOUNT_0] ({}) are nested: one mount would \
             hide the other (mount_enable = true)",
            inner.display(),
            dir.path().display()
        )]
    );
    // Without mounts, home_dir is only the FTP account's name for its bucket.
    parse_ok(&two_accounts(
        dir.path(),
        &inner,
        "[OPTIONAL]\nmount_enable = false\n",
    ));
}

#[test]
fn an_fs_store_must_not_contain_a_mount_point() {
    let dir = home();
    let text = with_account(dir.path(), "").replace(
        "storage_type = memory",
        &format!(
            "storage_type = fs\nstorage_root = {}/data",
            dir.path().display()
        ),
    );
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("[COS_ACCOUNT_0] home_dir: ")
            && found[0].contains("overlaps the storage_root of [COS_ACCOUNT_0]"),
        "{found:#?}"
    );
}

#[test]
fn home_dir_must_exist_unless_created() {
    let dir = home();
    let missing = dir.path().join("missing");
    let text = with_account(&missing, "");
    assert_eq!(
        single_error(&text),
        format!(
            "[COS_ACCOUNT_0] home_dir: {} does not exist; create it, or set create_home_dir = true in [OPTIONAL]",
            missing.display()
        )
    );
    parse_ok(&format!("{text}[OPTIONAL]\ncreate_home_dir = true\n"));

    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let text = format!(
        "{}[OPTIONAL]\ncreate_home_dir = true\n",
        with_account(&file, "")
    );
    assert_eq!(
        single_error(&text),
        format!(
            "[COS_ACCOUNT_0] home_dir: {} exists but is not a directory",
            file.display()
        )
    );
}

#[test]
fn no_account_is_an_error() {
    assert_eq!(
        single_error("[NETWORK]\nlisten_port = 2121\n"),
        "no [COS_ACCOUNT_0] section: at least one account (FTP user and bucket) is needed"
    );
    assert_eq!(errors("").len(), 1);
}

#[test]
fn sizes_and_limits() {
    let dir = home();
    let case = |extra: &str| errors(&with_account(dir.path(), extra));
    assert_eq!(
        case("[OPTIONAL]\nmin_part_size = 512K\n"),
        ["[OPTIONAL] min_part_size: invalid value `512K`: must be between 1 MiB and 5 GiB"]
    );
    assert_eq!(
        case("[OPTIONAL]\nmin_part_size = 6G\n"),
        ["[OPTIONAL] min_part_size: invalid value `6G`: must be between 1 MiB and 5 GiB"]
    );
    assert_eq!(
        case("[FILE_OPTION]\nsingle_file_max_size = 50001G\n"),
        ["[FILE_OPTION] single_file_max_size: invalid value `50001G`: must be between 1 byte and 50000 GiB"]
    );
    assert_eq!(
        case("[OPTIONAL]\nupload_thread_num = 0\nmax_list_file = 0\nlogin_fail_limit = 0\n"),
        [
            "[OPTIONAL] upload_thread_num: invalid value `0`: must be between 1 and 256",
            "[OPTIONAL] max_list_file: invalid value `0`: must be at least 1",
            "[OPTIONAL] login_fail_limit: invalid value `0`: must be at least 1",
        ]
    );
    assert_eq!(
        case("[OPTIONAL]\nidle_timeout = 0\nmetadata_ttl = 0\n"),
        ["[OPTIONAL] idle_timeout: invalid value `0`: must be more than 0"]
    );
    assert_eq!(
        case("[OPTIONAL]\nmount_uid = -1\nfile_mode = 0999\nmax_connection_num = lots\n"),
        [
            "[OPTIONAL] max_connection_num: invalid value `lots`: expected a whole number",
            "[OPTIONAL] mount_uid: invalid value `-1`: expected a whole number",
            "[OPTIONAL] file_mode: invalid value `0999`: expected octal permission bits between 0 and 7777 (e.g. \
             0644)",
        ]
    );
    // The largest allowed file is exactly 10,000 parts of 5 GiB.
    let config = parse_ok(&with_account(
        dir.path(),
        "[FILE_OPTION]\nsingle_file_max_size = 50000G\n[OPTIONAL]\nmemory_budget = 10G\n",
    ));
    assert_eq!(config.part_size(), 5 * GIB);
}

#[test]
fn memory_budget_must_hold_two_parts() {
    let dir = home();
    assert_eq!(
        single_error(&with_account(dir.path(), "[OPTIONAL]\nmemory_budget = 32M\n")),
        "[OPTIONAL] memory_budget: 32 MiB is less than two upload parts (21474837 bytes (~20.5 MiB) each): every \
         upload holds a part being filled while another is sent. The part size is max(min_part_size, \
         single_file_max_size / 10000); raise memory_budget to at least 42949674 bytes (~41.0 MiB), or lower \
         single_file_max_size or min_part_size"
    );
    parse_ok(&with_account(
        dir.path(),
        "[FILE_OPTION]\nsingle_file_max_size = 10G\n[OPTIONAL]\nmemory_budget = 4M\n",
    ));
    // An invalid input is reported once, not again through the budget check.
    assert_eq!(
        single_error(&with_account(
            dir.path(),
            "[OPTIONAL]\nmemory_budget = 1M\nmin_part_size = 1\n"
        )),
        "[OPTIONAL] min_part_size: invalid value `1`: must be between 1 MiB and 5 GiB"
    );
}

#[test]
fn log_levels_of_the_original_and_ours() {
    let dir = home();
    for (written, level) in [
        ("INFO", tracing::Level::INFO),
        ("DEBUG", tracing::Level::DEBUG),
        ("ERROR", tracing::Level::ERROR),
        ("WARNING", tracing::Level::WARN),
        ("warn", tracing::Level::WARN),
        ("Critical", tracing::Level::ERROR),
        ("trace", tracing::Level::TRACE),
    ] {
        let config = parse_ok(&with_account(
            dir.path(),
            &format!("[OPTIONAL]\nlog_level = {written}\n"),
        ));
        assert_eq!(config.optional.log_level, level, "{written}");
    }
    assert_eq!(
        single_error(&with_account(dir.path(), "[OPTIONAL]\nlog_level = loud\n")),
        "[OPTIONAL] log_level: invalid value `loud`: expected error, warn, info, debug or trace"
    );
}

#[test]
fn default_keyword_and_key_case() {
    let dir = home();
    let config = parse_ok(&with_account(
        dir.path(),
        "[NETWORK]\nLISTEN_PORT = 21\nPassive_Port = default\n[OPTIONAL]\nmin_part_size = Default\n\
         upload_thread_num = default\nmax_connection_num = default\n",
    ));
    assert_eq!(config.network.listen_port, 21);
    assert_eq!(config.network.passive_ports, 60000..=65535);
    assert_eq!(config.optional.min_part_size, 2 * MIB);
    assert_eq!(config.optional.max_connection_num, Some(512));
    // `default` is a name like any other where a value is required.
    let config = parse_ok(&with_account(dir.path(), "").replace("user0", "default"));
    assert_eq!(config.accounts[0].user, "default");
}

#[test]
fn unknown_keys_and_sections_are_errors() {
    let dir = home();
    let text = with_account(
        dir.path(),
        "colour = blue\n\
         [NETWORK]\nlisten_prot = 21\n\
         [OPTIONAL]\nlisten_port = 21\n\
         [network]\nlisten_port = 21\n\
         [EXTRA]\na = b\n",
    );
    assert_eq!(
        errors(&text),
        [
            "[COS_ACCOUNT_0] colour: unknown key",
            "[NETWORK] listen_prot: unknown key (did you mean listen_port?)",
            "[OPTIONAL] listen_port: unknown key (it belongs in [NETWORK])",
            "[network] unknown section (section names are case-sensitive: did you mean [NETWORK]?)",
            "[EXTRA] unknown section (known sections: [COS_ACCOUNT_<n>], [NETWORK], [FILE_OPTION], [OPTIONAL], [CLUSTER])",
        ]
    );
}

/// What was seen on the integration branch: each of these was a warning, and the file was used without the
/// account, with deletes allowed, and with the default network settings.
#[test]
fn a_misspelt_section_or_key_stops_the_file() {
    let dir = home();
    let second = dir.path().join("second");
    std::fs::create_dir(&second).unwrap();
    let misspelt_account =
        two_accounts(dir.path(), &second, "").replace("COS_ACCOUNT_1", "COS_ACOUNT_1");
    assert_eq!(
        errors(&misspelt_account),
        ["[COS_ACOUNT_1] unknown section (did you mean [COS_ACCOUNT_1]?)"]
    );
    let misspelt_key = with_account(dir.path(), "delete_enabel = false\n");
    assert_eq!(
        errors(&misspelt_key),
        ["[COS_ACCOUNT_0] delete_enabel: unknown key (did you mean delete_enable?)"]
    );
    let lower_case = with_account(dir.path(), "[network]\nlisten_port = 2100\n");
    assert_eq!(
        errors(&lower_case),
        ["[network] unknown section (section names are case-sensitive: did you mean [NETWORK]?)"]
    );
}

/// The [OPTIONAL] keys of the original (its latest example file) that cosftpd has no use for: accepted, each with a
/// warning that says why, so that the original's config keeps working unchanged.
#[test]
fn keys_of_the_original_that_cosftpd_ignores_are_warnings() {
    let dir = home();
    let config = parse_ok(&with_account(
        dir.path(),
        "[OPTIONAL]\n\
         config_check_enable = true\n\
         log_rotate_enabled = true\n\
         log_rotate_when = M\n\
         log_backup_count = 100\n",
    ));
    let ignored: Vec<&str> = config
        .warnings
        .iter()
        .map(|w| w.split(": ignored: ").next().unwrap())
        .collect();
    assert_eq!(
        ignored,
        [
            "[OPTIONAL] config_check_enable",
            "[OPTIONAL] log_rotate_enabled",
            "[OPTIONAL] log_rotate_when",
            "[OPTIONAL] log_backup_count",
        ],
        "{:#?}",
        config.warnings
    );
    assert!(
        config.warnings[1].contains("rotated daily")
            && config.warnings[1].contains("log_keep_days"),
        "{:?}",
        config.warnings
    );
    // Only where the original had them.
    assert_eq!(
        errors(&with_account(dir.path(), "log_backup_count = 100\n")),
        ["[COS_ACCOUNT_0] log_backup_count: unknown key (it belongs in [OPTIONAL])"]
    );
}

#[test]
fn warnings_come_with_errors() {
    let dir = home();
    let text = with_account(dir.path(), "[OPTIONAL]\nconfig_check_enable = false\n")
        .replace("authority = RW", "authorty = RW");
    let errors = Config::parse_str(&text).unwrap_err();
    assert_eq!(errors.errors.len(), 2);
    let shown = errors.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "[COS_ACCOUNT_0] authorty: unknown key (did you mean authority?)",
            "[COS_ACCOUNT_0] authority: required, but missing or empty",
        ]
    );
    assert!(
        lines[2].starts_with("warning: [OPTIONAL] config_check_enable: ignored: "),
        "{shown}"
    );
}

#[test]
fn every_problem_at_once_in_file_order() {
    let dir = home();
    let text = format!(
        "[NETWORK]\n\
         listen_port = ftp\n\
         [COS_ACCOUNT_A]\n\
         storage_type = memory\n\
         home_dir = {0}/nope\n\
         ftp_login_user_name = a\n\
         ftp_login_user_password = p\n\
         authority = X\n\
         [OPTIONAL]\n\
         mount_enable = maybe\n\
         [COS_ACCOUNT_B]\n\
         storage_type = memory\n\
         home_dir = {0}\n\
         ftp_login_user_name = a\n\
         authority = R\n\
         delete_enable = 2\n\
         garbage line\n",
        dir.path().display()
    );
    let found = errors(&text);
    let keys: Vec<&str> = found.iter().map(|e| e.split(':').next().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "[NETWORK] listen_port",
            "[COS_ACCOUNT_A] home_dir",
            "[COS_ACCOUNT_A] authority",
            "[OPTIONAL] mount_enable",
            "[COS_ACCOUNT_B] line 17",
            "[COS_ACCOUNT_B] home_dir",
            "[COS_ACCOUNT_B] ftp_login_user_name",
            "[COS_ACCOUNT_B] ftp_login_user_password",
            "[COS_ACCOUNT_B] delete_enable",
        ],
        "{found:#?}"
    );
}

#[test]
fn secrets_never_appear_in_messages() {
    let dir = home();
    let text = format!(
        "[COS_ACCOUNT_0]\n\
         cos_secretid = AKID 1234 pasted twice\n\
         cos_secretkey = Sk3y\tWithTab\n\
         cos_secretkey = Sk3ySecondCopy\n\
         cos_bucket = examplebucket-1250000000\n\
         cos_region = ap-guangzhou\n\
         home_dir = {}\n\
         ftp_login_user_name = user0\n\
         ftp_login_user_password = hunter2\u{7}bell\n\
         authority = RW\n\
         P4ssw0rdOnItsOwn\n\
         [COS_ACCOUNT_1]\n\
         storage_type = s3\n\
         cos_secretid = AKIDforS3\n\
         cos_secretkey = s3 secret with spaces\n",
        dir.path().display()
    );
    let errors = Config::parse_str(&text).unwrap_err();
    let shown = format!("{errors}\n{errors:?}");
    for secret in [
        "AKID",
        "1234",
        "pasted",
        "Sk3y",
        "WithTab",
        "hunter2",
        "bell",
        "P4ssw0rd",
        "s3 secret",
    ] {
        assert!(!shown.contains(secret), "`{secret}` leaked in:\n{shown}");
    }
    // …while every problem is still named.
    for key in [
        "cos_secretid",
        "cos_secretkey",
        "ftp_login_user_password",
        "line 11",
    ] {
        assert!(shown.contains(key), "{key} missing from:\n{shown}");
    }
}

#[test]
fn inline_comments_are_stripped() {
    let dir = home();
    let text = format!(
        "[COS_ACCOUNT_0]   ; the first account\n\
         storage_type = memory # no cloud\n\
         home_dir = {}\t# where\n\
         ftp_login_user_name = user0 ; name\n\
         ftp_login_user_password = pa#ss;word # the # inside stays\n\
         authority = RW\n\
         delete_enable = false # forbid deletes\n\
         [NETWORK] # network\n\
         listen_port = 2100 ; port\n",
        dir.path().display()
    );
    let config = parse_ok(&text);
    let account = &config.accounts[0];
    assert_eq!(account.home_dir, dir.path());
    assert_eq!(account.user, "user0");
    assert_eq!(account.password.expose(), "pa#ss;word");
    assert!(!account.delete_enable);
    assert_eq!(config.network.listen_port, 2100);
}

#[test]
fn the_masquerade_placeholder_of_the_original_is_taken_as_unset() {
    let dir = home();
    for placeholder in ["XXX.XXX.XXX.XXX", "xxx.xxx.xxx.xxx"] {
        let config = parse_ok(&with_account(
            dir.path(),
            &format!("[NETWORK]\nmasquerade_address = {placeholder}\n"),
        ));
        assert_eq!(config.network.masquerade_address, None);
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    }
    // Anything else is a name, to be resolved by the preflight.
    let config = parse_ok(&with_account(
        dir.path(),
        "[NETWORK]\nmasquerade_address = XXX.example.com\n",
    ));
    assert_eq!(
        config.network.masquerade_address.as_deref(),
        Some("XXX.example.com")
    );
}

#[test]
fn a_value_that_a_comment_may_have_cut_is_warned_about_by_line_and_key() {
    let dir = home();
    let text = with_account(dir.path(), "").replace("pass0", "bob #1pass");
    let config = parse_ok(&text);
    assert_eq!(config.accounts[0].password.expose(), "bob");
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    let warning = &config.warnings[0];
    assert!(
        warning.starts_with(
            "[COS_ACCOUNT_0] ftp_login_user_password: line 5: the value ends before ` #`, the rest"
        ),
        "{warning}"
    );
    assert!(warning.contains("double quotes"), "{warning}");
    assert!(
        !warning.contains("bob") && !warning.contains("1pass"),
        "{warning}"
    );
}

#[test]
fn double_quotes_keep_a_value_as_written() {
    let dir = home();
    let home_dir = dir.path().join("my #1 ; home");
    std::fs::create_dir(&home_dir).unwrap();
    let text = format!(
        "[COS_ACCOUNT_0]\n\
         storage_type = memory\n\
         home_dir = \"{}\"   # quoted: it has ` #` and ` ;` in it\n\
         ftp_login_user_name = \"user0\"\n\
         ftp_login_user_password = \"bob #1pass\"\n\
         authority = RW\n",
        home_dir.display()
    );
    let config = parse_ok(&text);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let account = &config.accounts[0];
    assert_eq!(account.home_dir, home_dir);
    assert_eq!(account.user, "user0");
    assert_eq!(account.password.expose(), "bob #1pass");

    // An unclosed quote is an error naming the line and key, never the value.
    let text = text.replace("\"bob #1pass\"", "\"bob #1pass");
    assert_eq!(
        errors(&text),
        [
            "[COS_ACCOUNT_0] ftp_login_user_password: line 5: the value starts with `\"` but has no closing `\"`",
            "[COS_ACCOUNT_0] ftp_login_user_password: required, but missing or empty",
        ]
    );
}

#[test]
fn preflight_resolves_masquerade_address_and_checks_log_dir() {
    let dir = home();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let config = parse_ok(&with_account(
        dir.path(),
        &format!(
            "[NETWORK]\nmasquerade_address = ftp.cosftpd.invalid\n\
             [OPTIONAL]\nlog_dir = {}/logs\nconfig_check_enable = true\n",
            file.display()
        ),
    ));
    let errors = config.preflight().unwrap_err();
    let shown: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(
        shown[0]
            .starts_with("[NETWORK] masquerade_address: ftp.cosftpd.invalid does not resolve: "),
        "{shown:#?}"
    );
    assert_eq!(
        shown[1],
        format!(
            "[OPTIONAL] log_dir: {}/logs cannot be created: {} is not a directory",
            file.display(),
            file.display()
        )
    );
    // The warnings come along, for one complete report.
    assert_eq!(errors.warnings, config.warnings);
    assert_eq!(errors.warnings.len(), 1);

    let config = parse_ok(&with_account(
        dir.path(),
        &format!(
            "[NETWORK]\nmasquerade_address = localhost\n[OPTIONAL]\nlog_dir = {}/logs\n",
            dir.path().display()
        ),
    ));
    assert!(config.preflight().is_ok());
    assert!(
        !dir.path().join("logs").exists(),
        "preflight creates nothing"
    );
}

/// The example from the original's documentation, as users have it in their `conf/vsftpd.conf`.
const ORIGINAL_EXAMPLE: &str = "[COS_ACCOUNT_0]
cos_secretid = COS_SECRETID    # 替换为您的 SECRETID
cos_secretkey = COS_SECRETKEY  # 替换为您的 SECRETKEY
cos_bucket = examplebucket-1250000000
cos_region = region   # 替换为您的存储桶地域
cos_protocol = https
#cos_endpoint = region.myqcloud.com
home_dir = /home/user0
ftp_login_user_name=user0   #替换为用户自定义的账号
ftp_login_user_password=pass0   #替换为用户自定义的密码
authority=RW                # 设置该用户的读写权限，R 表示读权限，W 表示写权限，RW 表示同时具备读写权限
delete_enable=true\t\t # true 为允许该 ftp 用户进行删除操作（默认），false 为禁止该用户进行删除操作

[COS_ACCOUNT_1]
cos_secretid = COS_SECRETID    # 替换为您的 SECRETID
cos_secretkey = COS_SECRETKEY  # 替换为您的 SECRETKEY
cos_bucket = examplebucket-1250000000
cos_region = region   # 替换为您的存储桶地域
cos_protocol = https
#cos_endpoint = region.myqcloud.com
home_dir = /home/user1
ftp_login_user_name=user1   #替换为用户自定义的账号
ftp_login_user_password=pass1   #替换为用户自定义的密码
authority=RW               # 设置该用户的读写权限，R 表示读权限，W 表示写权限，RW 表示同时具备读写权限
delete_enable=false        # true 为允许该 ftp 用户进行删除操作（默认），false 为禁止该用户进行删除操作

[NETWORK]
# 如果 FTP Server 处于某个网关或 NAT 后，可以通过该配置项将网关的 IP 地址或域名指定给 FTP
masquerade_address = XXX.XXX.XXX.XXX
# FTP Server 的监听端口，默认为2121，注意防火墙需要放行该端口（例如您是将 FTP Server 工具部署在腾讯云 CVM，则需要在 CVM 安全组放行该端口）
listen_port = 2121\t\t\t
# passive_port 可以设置 passive 模式下，端口的选择范围，默认在 [60000, 65535] 区间上选择，注意防火墙（例如 CVM 安全组）需要放行此区间端口
passive_port = 60000,65535      


[FILE_OPTION]
# 默认单文件大小最大支持到200G，不建议设置太大
single_file_max_size = 21474836480

[OPTIONAL]
# 以下设置，如无特殊需要，建议保留 default 设置。如需设置，请合理填写一个整数
min_part_size       = default
upload_thread_num   = default
max_connection_num  = 512
max_list_file       = 10000                # ls 命令最大可列出的文件数目，建议不要设置太大，否则 ls 命令延时会很高
log_level           = INFO                 # 设置日志输出的级别
log_dir             = log                  # 设置日志的存放目录，默认是在 FTP Server 目录下的 log 目录中
";

#[test]
fn the_original_documented_example_parses() {
    let dir = home();
    for user in ["user0", "user1"] {
        std::fs::create_dir(dir.path().join(user)).unwrap();
    }
    let text = ORIGINAL_EXAMPLE.replace("/home/", &format!("{}/", dir.path().display()));
    let config = parse_ok(&text);
    // The inline comments are two spaces or more from their values: no "value may be cut" warnings. The
    // masquerade placeholder is taken as not set, as the original did, and said so.
    assert_eq!(config.warnings.len(), 1, "{:#?}", config.warnings);
    assert!(
        config.warnings[0].starts_with(
            "[NETWORK] masquerade_address: XXX.XXX.XXX.XXX is the placeholder of the original's example, taken \
             as not set"
        ),
        "{:?}",
        config.warnings
    );
    assert_eq!(config.accounts.len(), 2);
    for (account, user) in config.accounts.iter().zip(["user0", "user1"]) {
        assert_eq!(account.user, user);
        assert_eq!(account.password.expose(), user.replace("user", "pass"));
        assert_eq!(account.home_dir, dir.path().join(user));
        assert_eq!(account.authority, Authority::ReadWrite);
        match &account.storage {
            StorageConfig::Cos {
                bucket,
                endpoint,
                secret_id,
                secret_key,
            } => {
                assert_eq!(bucket, "examplebucket-1250000000");
                assert_eq!(endpoint, "https://cos.region.myqcloud.com");
                assert_eq!(secret_id.expose(), "COS_SECRETID");
                assert_eq!(secret_key.expose(), "COS_SECRETKEY");
            }
            other => panic!("not cos: {other:?}"),
        }
    }
    assert!(config.accounts[0].delete_enable);
    assert!(!config.accounts[1].delete_enable);
    assert_eq!(config.network.masquerade_address, None);
    assert_eq!(config.network.listen_port, 2121);
    assert_eq!(config.network.passive_ports, 60000..=65535);
    assert_eq!(config.file.single_file_max_size, 20 * GIB);
    assert_eq!(config.optional.min_part_size, 2 * MIB);
    assert_eq!(config.optional.max_connection_num, Some(512));
    assert_eq!(config.optional.max_list_file, 10_000);
    assert_eq!(config.optional.log_level, tracing::Level::INFO);
    assert_eq!(config.optional.log_dir, Some(PathBuf::from("log")));
}

#[test]
fn the_try_it_out_config_parses() {
    let config = parse_ok(include_str!("../../conf/local.conf"));
    let cwd = std::env::current_dir().unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let summary: Vec<_> = config
        .accounts
        .iter()
        .map(|a| {
            (
                a.user.as_str(),
                a.password.expose(),
                a.authority,
                a.delete_enable,
                a.home_dir.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "user0",
                "pass0",
                Authority::ReadWrite,
                true,
                cwd.join("run/user0")
            ),
            (
                "user1",
                "pass1",
                Authority::Read,
                false,
                cwd.join("run/user1")
            ),
        ]
    );
    for account in &config.accounts {
        assert!(
            matches!(&account.storage, StorageConfig::Fs { root } if *root == cwd.join("data/bucket"))
        );
    }
    assert_eq!(
        config.network.listen_address,
        "127.0.0.1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(config.network.listen_port, 2121);
    assert_eq!(config.network.passive_ports, 60000..=60100);
    assert!(config.optional.create_home_dir);
}

#[test]
fn the_shipped_example_only_lacks_its_home_dirs() {
    let example = include_str!("../../conf/vsftpd.conf.example");
    let missing: Vec<&str> = ["/home/user0", "/home/user1"]
        .into_iter()
        .filter(|dir| !Path::new(dir).is_dir())
        .collect();
    match Config::parse_str(example) {
        Ok(_) => assert!(missing.is_empty()),
        Err(errors) => {
            assert!(errors.warnings.is_empty(), "{errors}");
            let found: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
            let expected: Vec<String> = missing
                .iter()
                .enumerate()
                .map(|(n, dir)| {
                    format!(
                        "[COS_ACCOUNT_{n}] home_dir: {dir} does not exist; create it, or set create_home_dir = true \
                         in [OPTIONAL]"
                    )
                })
                .collect();
            assert_eq!(found, expected);
        }
    }

    // With its home directories in place it is a complete, warning-free config.
    let dir = home();
    for user in ["user0", "user1"] {
        std::fs::create_dir(dir.path().join(user)).unwrap();
    }
    let config = parse_ok(&example.replace("/home/", &format!("{}/", dir.path().display())));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.accounts.len(), 2);
    assert_eq!(config.accounts[1].authority, Authority::Read);
    assert!(!config.accounts[1].delete_enable);
    assert_eq!(config.optional.log_dir, Some(PathBuf::from("log")));
    assert_eq!(config.optional.log_level, tracing::Level::INFO);
    assert_eq!(config.file.single_file_max_size, 200 * GIB);
    assert!(config.cluster.is_none());
    assert!(config.network.proxy_protocol_from.is_empty());

    // Its commented-out cluster settings, turned on as a user would, are valid as written.
    let cluster_keys = [
        "#proxy_protocol_from",
        "#[CLUSTER]",
        "#redis_url",
        "#node_name",
        "#lease_time",
    ];
    let enabled: String = example
        .replace("/home/", &format!("{}/", dir.path().display()))
        .lines()
        .map(
            |line| match cluster_keys.iter().find(|k| line.starts_with(*k)) {
                Some(_) => &line[1..],
                None => line,
            },
        )
        .collect::<Vec<_>>()
        .join("\n");
    let config = parse_ok(&enabled);
    let cluster = config.cluster.expect("[CLUSTER] enabled");
    assert_eq!(cluster.node_name, "ftp-1");
    assert_eq!(cluster.lease_time, Duration::from_secs(15));
    assert_eq!(config.network.proxy_protocol_from.len(), 2);
}

#[test]
fn load_reads_the_file_and_names_it_when_it_cannot() {
    let dir = home();
    let path = dir.path().join("vsftpd.conf");
    // GBK bytes in a comment (a file saved by a Chinese Windows editor) are tolerated…
    let mut bytes = b"# \xc4\xac\xc8\xcf\n".to_vec();
    bytes.extend_from_slice(with_account(dir.path(), "").as_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.accounts[0].user, "user0");

    // …but not in a value.
    bytes.extend_from_slice(b"[OPTIONAL]\nlog_dir = \xc8\xd5\xd6\xbe\n");
    std::fs::write(&path, &bytes).unwrap();
    let errors = Config::load(&path).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "[OPTIONAL] line 9: not valid UTF-8; save the file as UTF-8"
    );

    let missing = dir.path().join("absent.conf");
    let errors = Config::load(&missing).unwrap_err();
    assert_eq!(errors.errors.len(), 1);
    let message = errors.to_string();
    assert!(
        message.starts_with(&format!("cannot read {}: ", missing.display())),
        "{message}"
    );
}

#[test]
fn password_hashes_accepted_and_md5_crypt_refused() {
    let dir = home();
    let sha512 = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    let config = parse_ok(&with_account(dir.path(), "").replace("pass0", sha512));
    assert_eq!(config.accounts[0].password.expose(), sha512);

    let md5 = "$1$saltsalt$9xy1btjgzLYfb7hivXtC//";
    let error = single_error(&with_account(dir.path(), "").replace("pass0", md5));
    assert!(
        error.starts_with("[COS_ACCOUNT_0] ftp_login_user_password: ")
            && error.contains("MD5-crypt hashes ($1$…) are not accepted: the scheme is broken"),
        "{error}"
    );
    assert!(error.contains("openssl passwd -6"), "{error}");
    assert!(!error.contains("saltsalt"), "the hash leaked: {error}");
}

#[test]
fn proxy_protocol_from_takes_addresses_and_networks() {
    let dir = home();
    let config = parse_ok(&with_account(
        dir.path(),
        "[NETWORK]\nproxy_protocol_from = 10.0.0.5, 10.1.2.3/16 ,fd00::/8,::1\n",
    ));
    let nets: Vec<String> = config
        .network
        .proxy_protocol_from
        .iter()
        .map(ToString::to_string)
        .collect();
    // A network given with host bits is taken as the network.
    assert_eq!(nets, ["10.0.0.5/32", "10.1.0.0/16", "fd00::/8", "::1/128"]);
    assert!(parse_ok(&with_account(dir.path(), ""))
        .network
        .proxy_protocol_from
        .is_empty());
    let error = single_error(&with_account(
        dir.path(),
        "[NETWORK]\nproxy_protocol_from = 10.0.0.5,,10.0.0.6\n",
    ));
    assert!(
        error.starts_with("[NETWORK] proxy_protocol_from: invalid value"),
        "{error}"
    );
    let error = single_error(&with_account(
        dir.path(),
        "[NETWORK]\nproxy_protocol_from = balancer.example\n",
    ));
    assert!(
        error.contains("neither an IP address nor a network"),
        "{error}"
    );
}

#[test]
fn cluster_section() {
    let dir = home();
    assert!(parse_ok(&with_account(dir.path(), "")).cluster.is_none());
    let config = parse_ok(&with_account(
        dir.path(),
        "[NETWORK]\nlisten_port = 2200\n[CLUSTER]\nredis_url = redis://:hunter2@127.0.0.1:6379/0\n",
    ));
    let cluster = config.cluster.expect("[CLUSTER]");
    assert_eq!(
        cluster.redis_url.expose(),
        "redis://:hunter2@127.0.0.1:6379/0"
    );
    assert_eq!(cluster.lease_time, Duration::from_secs(15));
    // The default name is unique per listener on one machine.
    assert!(
        cluster.node_name.ends_with(":2200"),
        "{}",
        cluster.node_name
    );

    let config = parse_ok(&with_account(
        dir.path(),
        "[CLUSTER]\nredis_url = redis://10.0.0.9\nnode_name = ftp-0.ftp\nlease_time = 5\n",
    ));
    let cluster = config.cluster.expect("[CLUSTER]");
    assert_eq!(cluster.node_name, "ftp-0.ftp");
    assert_eq!(cluster.lease_time, Duration::from_secs(5));
}

#[test]
fn cluster_errors_never_show_the_url() {
    let dir = home();
    let error = single_error(&with_account(dir.path(), "[CLUSTER]\nnode_name = a\n"));
    assert_eq!(error, "[CLUSTER] redis_url: required, but missing or empty");
    let error = single_error(&with_account(
        dir.path(),
        "[CLUSTER]\nredis_url = http://:hunter2@10.0.0.9\n",
    ));
    assert!(
        error.starts_with("[CLUSTER] redis_url: invalid value"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
    let error = single_error(&with_account(
        dir.path(),
        "[CLUSTER]\nredis_url = rediss://:hunter2@10.0.0.9\n",
    ));
    assert!(error.contains("TLS to Redis"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
    let all = errors(&with_account(
        dir.path(),
        "[CLUSTER]\nredis_url = redis://10.0.0.9\nnode_name = a/b\nlease_time = 1\nredis_ur = x\n",
    ));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(
        all[0].starts_with("[CLUSTER] redis_ur: unknown key (did you mean redis_url?)"),
        "{all:#?}"
    );
    assert!(
        all[1].contains("node_name") && all[1].contains("letters, digits"),
        "{all:#?}"
    );
    assert!(
        all[2].contains("lease_time") && all[2].contains("at least 2 s"),
        "{all:#?}"
    );
    // A misspelt section name is caught like the others.
    let error = single_error(&with_account(
        dir.path(),
        "[CLUSTR]\nredis_url = redis://x\n",
    ));
    assert!(error.contains("did you mean [CLUSTER]?"), "{error}");
}
