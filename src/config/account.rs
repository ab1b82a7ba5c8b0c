//! `[COS_ACCOUNT_*]`: one FTP user, bound to a bucket (or another store) and to a home directory where that
//! bucket is mounted.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::reader::{Invalid, Keys, SectionReader};
use super::values;
use super::{Account, Optional, Secret, StorageConfig, StorageKind};

pub(super) const ACCOUNT_KEYS: &Keys = &Keys {
    used: &[
        "cos_secretid",
        "cos_secretkey",
        "cos_bucket",
        "cos_region",
        "cos_protocol",
        "cos_endpoint",
        "home_dir",
        "ftp_login_user_name",
        "ftp_login_user_password",
        "authority",
        "delete_enable",
        "storage_type",
        "storage_root",
        "s3_virtual_host",
    ],
    ignored: &[],
};

/// The keys that locate a bucket on a remote store (cos, s3).
const REMOTE_KEYS: &[&str] = &[
    "cos_secretid",
    "cos_secretkey",
    "cos_bucket",
    "cos_region",
    "cos_protocol",
    "cos_endpoint",
    "s3_virtual_host",
];

const DEFAULT_PROTOCOL: &str = "https";
const DEFAULT_S3_REGION: &str = "us-east-1";

/// The account, or `None` when something it needs is missing or invalid (every such problem is reported).
pub(super) fn read_account(
    r: &mut SectionReader<'_>,
    optional: &Optional,
    claims: &mut AccountClaims,
) -> Option<Account> {
    let storage = read_storage(r, claims);
    let home_dir = r.required("home_dir", values::absolute_path);
    if let Some(dir) = &home_dir {
        check_home_dir(r, dir, optional.create_home_dir);
        claims.home_dir(r, dir);
    }
    let user = r.required("ftp_login_user_name", values::printable);
    if let Some(user) = &user {
        claims.user(r, user);
    }
    let password = r.required("ftp_login_user_password", values::password);
    let authority = r.required("authority", values::authority);
    let delete_enable = r.value("delete_enable", true, values::boolean);

    Some(Account {
        section: r.name().to_string(),
        storage: storage?,
        home_dir: home_dir?,
        user: user?,
        password: Secret::new(password?),
        authority: authority?,
        delete_enable,
    })
}

fn read_storage(r: &mut SectionReader<'_>, claims: &mut AccountClaims) -> Option<StorageConfig> {
    // With an unknown storage type, which keys are required is unknown too: say only that.
    let kind = match r.get("storage_type", values::storage_kind) {
        Ok(kind) => kind.unwrap_or(StorageKind::Cos),
        Err(Invalid) => return None,
    };
    warn_ignored_keys(r, kind);
    match kind {
        StorageKind::Cos => read_cos(r),
        StorageKind::S3 => read_s3(r),
        StorageKind::Fs => read_fs(r, claims),
        StorageKind::Memory => Some(StorageConfig::Memory),
    }
}

/// A key of another storage type is harmless but probably a mistake (e.g. `storage_type` forgotten).
fn warn_ignored_keys(r: &mut SectionReader<'_>, kind: StorageKind) {
    let ignored = match kind {
        StorageKind::Cos => vec!["s3_virtual_host", "storage_root"],
        StorageKind::S3 => vec!["storage_root"],
        StorageKind::Fs => REMOTE_KEYS.to_vec(),
        StorageKind::Memory => [REMOTE_KEYS, &["storage_root"]].concat(),
    };
    for key in ignored {
        if r.has(key) {
            r.warn(key, format!("ignored with storage_type = {}", kind.name()));
        }
    }
}

fn read_cos(r: &mut SectionReader<'_>) -> Option<StorageConfig> {
    let bucket = r.required("cos_bucket", values::cos_bucket);
    let secret_id = r.required("cos_secretid", values::credential);
    let secret_key = r.required("cos_secretkey", values::credential);
    let endpoint = cos_endpoint(r);
    Some(StorageConfig::Cos {
        bucket: bucket?,
        endpoint: endpoint?,
        secret_id: Secret::new(secret_id?),
        secret_key: Secret::new(secret_key?),
    })
}

/// `cos_endpoint` wins over `cos_region` when both are set, as in the original.
fn cos_endpoint(r: &mut SectionReader<'_>) -> Option<String> {
    let protocol = r.value(
        "cos_protocol",
        DEFAULT_PROTOCOL.to_string(),
        values::protocol,
    );
    let endpoint = r.get("cos_endpoint", |s| values::endpoint_url(s, &protocol));
    let region = r.get("cos_region", values::cos_region);
    match (endpoint, region) {
        (Ok(Some(url)), _) => Some(url),
        (Ok(None), Ok(Some(region))) => Some(format!("{protocol}://cos.{region}.myqcloud.com")),
        (Ok(None), Ok(None)) => {
            r.error(
                "cos_region",
                "required (unless cos_endpoint is set): the bucket's region, e.g. ap-guangzhou",
            );
            None
        }
        (Err(Invalid), _) | (_, Err(Invalid)) => None,
    }
}

fn read_s3(r: &mut SectionReader<'_>) -> Option<StorageConfig> {
    let bucket = r.required("cos_bucket", values::s3_bucket);
    let access_key = r.required("cos_secretid", values::credential);
    let secret_key = r.required("cos_secretkey", values::credential);
    let protocol = r.value(
        "cos_protocol",
        DEFAULT_PROTOCOL.to_string(),
        values::protocol,
    );
    let endpoint = match r.get("cos_endpoint", |s| values::endpoint_url(s, &protocol)) {
        Ok(Some(url)) => Some(url),
        Ok(None) => {
            r.error(
                "cos_endpoint",
                "required with storage_type = s3: the S3 endpoint URL, e.g. http://127.0.0.1:9000",
            );
            None
        }
        Err(Invalid) => None,
    };
    let region = r.value(
        "cos_region",
        DEFAULT_S3_REGION.to_string(),
        values::cos_region,
    );
    let virtual_host = r.value("s3_virtual_host", false, values::boolean);
    Some(StorageConfig::S3 {
        bucket: bucket?,
        endpoint: endpoint?,
        region,
        access_key: Secret::new(access_key?),
        secret_key: Secret::new(secret_key?),
        virtual_host,
    })
}

fn read_fs(r: &mut SectionReader<'_>, claims: &mut AccountClaims) -> Option<StorageConfig> {
    let root = match r.get("storage_root", values::absolute_path) {
        Ok(Some(root)) => root,
        Ok(None) => {
            r.error(
                "storage_root",
                "required with storage_type = fs: the directory that holds the objects",
            );
            return None;
        }
        Err(Invalid) => return None,
    };
    // A missing root is fine: the daemon creates it, so that the try-it-out config works from a fresh checkout.
    match std::fs::metadata(&root) {
        Ok(meta) if !meta.is_dir() => {
            r.error(
                "storage_root",
                format!("{} exists but is not a directory", root.display()),
            );
            return None;
        }
        Err(e) if e.kind() != ErrorKind::NotFound => {
            r.error("storage_root", cannot_check(&root, &e));
            return None;
        }
        _ => {}
    }
    claims.storage_root(r, &root);
    Some(StorageConfig::Fs { root })
}

/// The original required home directories to exist; `create_home_dir = true` lets the daemon create them.
fn check_home_dir(r: &mut SectionReader<'_>, dir: &Path, create: bool) {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => r.error(
            "home_dir",
            format!("{} exists but is not a directory", dir.display()),
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if !create {
                r.error(
                    "home_dir",
                    format!(
                        "{} does not exist; create it, or set create_home_dir = true in [OPTIONAL]",
                        dir.display()
                    ),
                );
            }
        }
        // What a FUSE mount left behind by a killed daemon looks like. Whose it is, and so whether it may be
        // cleared, is for the mount code to judge at start (it clears only cosftpd's own).
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => r.warn(
            "home_dir",
            format!(
                "{} is a stale FUSE mount (transport endpoint is not connected), as a killed cosftpd leaves it: \
                 at start it is cleared if it is cosftpd's own mount, and the start stops if it is another \
                 program's",
                dir.display()
            ),
        ),
        Err(e) => r.error("home_dir", cannot_check(dir, &e)),
    }
}

fn cannot_check(path: &Path, e: &std::io::Error) -> String {
    // What a FUSE mount whose daemon died looks like.
    let hint = if e.raw_os_error() == Some(libc::ENOTCONN) {
        " (a stale mount? unmount it with `fusermount3 -u` or `umount -l`)"
    } else {
        ""
    };
    format!("{} cannot be checked: {e}{hint}", path.display())
}

/// What the accounts read so far have taken. User names and home directories must be unique; with
/// `mount_enable`, home directories (mount points) must not nest, and an fs `storage_root` must not overlap a
/// mount point, or the store would serve its own mount (and deadlock on it).
pub(super) struct AccountClaims {
    mount_enable: bool,
    /// `(section, value)` pairs.
    users: Vec<(String, String)>,
    home_dirs: Vec<(String, PathBuf)>,
    storage_roots: Vec<(String, PathBuf)>,
}

impl AccountClaims {
    pub(super) fn new(mount_enable: bool) -> Self {
        AccountClaims {
            mount_enable,
            users: Vec::new(),
            home_dirs: Vec::new(),
            storage_roots: Vec::new(),
        }
    }

    fn user(&mut self, r: &mut SectionReader<'_>, user: &str) {
        if let Some((owner, _)) = self.users.iter().find(|(_, u)| u == user) {
            r.error(
                "ftp_login_user_name",
                format!("user {user} is already defined in [{owner}]; user names must be unique"),
            );
        }
        self.users.push((r.name().to_string(), user.to_string()));
    }

    fn home_dir(&mut self, r: &mut SectionReader<'_>, dir: &Path) {
        let shown = dir.display();
        if let Some((owner, _)) = self.home_dirs.iter().find(|(_, d)| d == dir) {
            r.error(
                "home_dir",
                format!(
                    "{shown} is also the home_dir of [{owner}]; each account needs its own (the original \
                     silently served both users from one bucket)"
                ),
            );
        } else if self.mount_enable {
            if dir.parent().is_none() {
                r.error(
                    "home_dir",
                    "cannot be / while mount_enable = true: the bucket is mounted on the home_dir",
                );
            } else if let Some((owner, other)) = self.home_dirs.iter().find(|(_, d)| nested(d, dir))
            {
                r.error(
                    "home_dir",
                    format!(
                        "{shown} and the home_dir of [{owner}] ({}) are nested: one mount would hide the \
                         other (mount_enable = true)",
                        other.display()
                    ),
                );
            }
            if let Some((owner, root)) = self
                .storage_roots
                .iter()
                .find(|(_, root)| nested(root, dir))
            {
                r.error(
                    "home_dir",
                    format!(
                        "{shown} overlaps the storage_root of [{owner}] ({}): the store would contain its own \
                         mount (mount_enable = true)",
                        root.display()
                    ),
                );
            }
        }
        self.home_dirs
            .push((r.name().to_string(), dir.to_path_buf()));
    }

    fn storage_root(&mut self, r: &mut SectionReader<'_>, root: &Path) {
        if self.mount_enable {
            if let Some((owner, dir)) = self.home_dirs.iter().find(|(_, dir)| nested(root, dir)) {
                r.error(
                    "storage_root",
                    format!(
                        "{} overlaps the home_dir of [{owner}] ({}): the store would contain its own mount \
                         (mount_enable = true)",
                        root.display(),
                        dir.display()
                    ),
                );
            }
        }
        self.storage_roots
            .push((r.name().to_string(), root.to_path_buf()));
    }
}

/// One is inside the other (or they are the same).
fn nested(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}
