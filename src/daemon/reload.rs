//! What a reload (SIGHUP) can change, decided on the two configs alone: the config to run from now on, and the
//! settings that keep their old value until a restart.
//!
//! Applied at once: accounts added and removed; an account's password, `authority` and `delete_enable` (for new
//! logins); connection and login limits, timeouts, `masquerade_address`, `passive_port`, `legacy_encoding`, TLS
//! (mode, certificate and key, read again even when the paths are the same), `proxy_protocol_from`; the logs
//! (`log_level`, `log_dir`, `log_keep_days`, `xferlog_*`) and `shutdown_grace`. Kept until a restart: what is bound
//! or mounted, and what the running filesystems were built with — listening addresses and ports,
//! `metrics_address`, an account's store and `home_dir`, part sizes, the memory budget, caches, the mount options,
//! `log_format`, `upload_resume_ttl`, `upload_digests`, `hash_max_size`, the `[CLUSTER]` section (the Redis connection and the node's name are made once).

use crate::config::{Account, Config};

/// The outcome of comparing the running config with the new one.
#[derive(Debug)]
pub struct Plan {
    /// The config to run: the new one, but for the settings in `kept`, which keep the running value.
    pub config: Config,
    /// `[SECTION] key` (with the user for account keys) of every change that needs a restart.
    pub kept: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Users whose password, authority or delete_enable changed.
    pub changed: Vec<String>,
}

/// Compares `old` (running) with `new` (validated) and merges them.
pub fn plan(old: &Config, new: Config) -> Plan {
    let mut kept = Vec::new();
    let mut config = new;

    macro_rules! keep {
        ($section:literal, $($field:ident).+, $key:literal) => {
            if config.$($field).+ != old.$($field).+ {
                kept.push(format!("[{}] {}", $section, $key));
                config.$($field).+ = old.$($field).+.clone();
            }
        };
    }
    keep!("NETWORK", network.listen_address, "listen_address");
    keep!("NETWORK", network.listen_port, "listen_port");
    keep!("NETWORK", network.tls_implicit_port, "tls_implicit_port");
    keep!("NETWORK", network.metrics_address, "metrics_address");
    keep!(
        "FILE_OPTION",
        file.single_file_max_size,
        "single_file_max_size"
    );
    keep!("OPTIONAL", optional.min_part_size, "min_part_size");
    keep!("OPTIONAL", optional.upload_thread_num, "upload_thread_num");
    keep!("OPTIONAL", optional.max_list_file, "max_list_file");
    keep!("OPTIONAL", optional.mount_enable, "mount_enable");
    keep!("OPTIONAL", optional.memory_budget, "memory_budget");
    keep!("OPTIONAL", optional.metadata_ttl, "metadata_ttl");
    keep!(
        "OPTIONAL",
        optional.metadata_cache_size,
        "metadata_cache_size"
    );
    keep!(
        "OPTIONAL",
        optional.max_rename_objects,
        "max_rename_objects"
    );
    keep!("OPTIONAL", optional.allow_other, "allow_other");
    keep!("OPTIONAL", optional.mount_uid, "mount_uid");
    keep!("OPTIONAL", optional.mount_gid, "mount_gid");
    keep!("OPTIONAL", optional.file_mode, "file_mode");
    keep!("OPTIONAL", optional.dir_mode, "dir_mode");
    keep!("OPTIONAL", optional.mount_nonempty, "mount_nonempty");
    keep!("OPTIONAL", optional.log_format, "log_format");
    keep!("OPTIONAL", optional.upload_resume_ttl, "upload_resume_ttl");
    keep!("OPTIONAL", optional.upload_digests, "upload_digests");
    keep!("OPTIONAL", optional.hash_max_size, "hash_max_size");
    // `Secret` has no `==` (on purpose); compared here on what it holds.
    let cluster = |c: &Option<crate::config::Cluster>| {
        c.as_ref().map(|c| {
            (
                c.redis_url.expose().to_string(),
                c.node_name.clone(),
                c.lease_time,
            )
        })
    };
    if cluster(&config.cluster) != cluster(&old.cluster) {
        kept.push("[CLUSTER] redis_url, node_name, lease_time".to_string());
        config.cluster = old.cluster.clone();
    }

    let mut added = Vec::new();
    let mut changed = Vec::new();
    for account in &mut config.accounts {
        let Some(running) = old.accounts.iter().find(|a| a.user == account.user) else {
            added.push(account.user.clone());
            continue;
        };
        // The store and the mount point belong to the filesystem FUSE and FTP share; they stay.
        if account.storage != running.storage {
            kept.push(format!(
                "[{}] storage settings of user {}",
                account.section, account.user
            ));
            account.storage = running.storage.clone();
        }
        if account.home_dir != running.home_dir {
            kept.push(format!(
                "[{}] home_dir of user {}",
                account.section, account.user
            ));
            account.home_dir = running.home_dir.clone();
        }
        if access_changed(account, running) {
            changed.push(account.user.clone());
        }
    }
    let removed = old
        .accounts
        .iter()
        .filter(|a| !config.accounts.iter().any(|n| n.user == a.user))
        .map(|a| a.user.clone())
        .collect();
    Plan {
        config,
        kept,
        added,
        removed,
        changed,
    }
}

fn access_changed(new: &Account, old: &Account) -> bool {
    new.password != old.password
        || new.authority != old.authority
        || new.delete_enable != old.delete_enable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, accounts: &str, optional: &str) -> Config {
        let text = format!("{accounts}\n[OPTIONAL]\ncreate_home_dir = true\n{optional}\n");
        let text = text.replace("$DIR", &dir.display().to_string());
        Config::parse_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn account(n: u32, user: &str, authority: &str) -> String {
        format!(
            "[COS_ACCOUNT_{n}]\nstorage_type = memory\nhome_dir = $DIR/{user}\nftp_login_user_name = {user}\n\
             ftp_login_user_password = pw-{user}\nauthority = {authority}\n"
        )
    }

    #[test]
    fn accounts_added_removed_and_changed() {
        let dir = tempfile::tempdir().unwrap();
        let old = config(
            dir.path(),
            &[account(0, "alice", "RW"), account(1, "bob", "RW")].concat(),
            "",
        );
        let new = config(
            dir.path(),
            &[account(0, "alice", "R"), account(2, "carol", "RW")].concat(),
            "max_connection_num = 7\nidle_timeout = 5s",
        );
        let plan = plan(&old, new);
        assert_eq!(plan.added, ["carol"]);
        assert_eq!(plan.removed, ["bob"]);
        assert_eq!(plan.changed, ["alice"]);
        assert!(plan.kept.is_empty(), "{:?}", plan.kept);
        assert_eq!(plan.config.optional.max_connection_num, Some(7));
        assert_eq!(plan.config.optional.idle_timeout.as_secs(), 5);
    }

    #[test]
    fn what_needs_a_restart_keeps_its_running_value() {
        let dir = tempfile::tempdir().unwrap();
        let old = config(dir.path(), &account(0, "alice", "RW"), "");
        let moved = account(0, "alice", "RW").replace("$DIR/alice", "$DIR/elsewhere");
        let moved = moved.replace(
            "storage_type = memory",
            &format!(
                "storage_type = fs\nstorage_root = {}/root",
                dir.path().display()
            ),
        );
        let new = config(
            dir.path(),
            &moved,
            "memory_budget = 64M\nlog_format = json\nlog_level = debug",
        );
        let plan = plan(&old, new);
        assert_eq!(
            plan.kept,
            [
                "[OPTIONAL] memory_budget",
                "[OPTIONAL] log_format",
                "[COS_ACCOUNT_0] storage settings of user alice",
                "[COS_ACCOUNT_0] home_dir of user alice",
            ]
        );
        assert_eq!(
            plan.config.optional.memory_budget,
            old.optional.memory_budget
        );
        assert_eq!(plan.config.optional.log_format, old.optional.log_format);
        assert_eq!(plan.config.optional.log_level, tracing::Level::DEBUG);
        assert_eq!(plan.config.accounts[0].storage, old.accounts[0].storage);
        assert_eq!(plan.config.accounts[0].home_dir, old.accounts[0].home_dir);
        assert!(plan.changed.is_empty() && plan.added.is_empty() && plan.removed.is_empty());
    }
}
