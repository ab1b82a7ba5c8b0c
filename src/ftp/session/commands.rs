//! Login and the file commands that need no data connection.

use std::time::Instant;

use tracing::{info, Span};

use super::super::addr::canonical_ip as canonical;
use super::super::auth::{verify_password_off_runtime, FAILED_LOGIN_DELAY};
use super::super::listing;
use super::super::path;
use super::super::reply::Reply;
use super::{Flow, Login, Op, Session};
use crate::bucketfs::Metadata;
use crate::config::TlsMode;
use crate::daemon::AccountFs;

type Io<T> = std::io::Result<T>;

impl Session {
    /// The virtual path an argument names, or the 553 reply it deserves.
    pub(super) async fn path_arg(&mut self, arg: &[u8]) -> Io<Option<String>> {
        match path::decode(arg, self.encoding()) {
            Ok(text) => Ok(Some(path::resolve(&self.cwd, &text))),
            Err(e) => {
                self.reply(e.reply_code(), format!("{e}.")).await?;
                Ok(None)
            }
        }
    }

    pub(super) async fn user(&mut self, name: String) -> Io<Flow> {
        if self.context.tls_mode == TlsMode::Required && !self.tls_active() {
            return self
                .reply(530, "This server requires TLS: send AUTH TLS first.")
                .await;
        }
        if matches!(self.login, Login::LoggedIn(_)) {
            return self
                .reply(530, "Already logged in; reconnect to change user.")
                .await;
        }
        self.login = Login::User(name);
        self.send(Reply::need_password()).await?;
        Ok(Flow::Continue)
    }

    pub(super) async fn pass(&mut self, password: &[u8]) -> Io<Flow> {
        let user = match &self.login {
            Login::User(user) => user.clone(),
            Login::LoggedIn(_) => return self.reply(230, "Already logged in.").await,
            Login::None => return self.reply(503, "Send USER first.").await,
        };
        let started = Instant::now();
        let password = String::from_utf8_lossy(password);
        let account = self.context.accounts.get(&user).cloned();
        // Unknown users and wrong passwords take the same path and the same time.
        let accepted = match &account {
            Some(a) => verify_password_off_runtime(&a.account.password, &password).await,
            None => false,
        };
        match (accepted, account) {
            (true, Some(account)) => {
                self.context
                    .logins
                    .record_success(canonical(self.peer.ip()));
                Span::current().record("user", user.as_str());
                info!(user = %user, "login");
                self.login = Login::LoggedIn(account);
                self.cwd = "/".to_string();
                self.send(Reply::logged_in()).await?;
                Ok(Flow::Continue)
            }
            _ => {
                self.login = Login::None;
                let locked = self
                    .context
                    .logins
                    .record_failure(canonical(self.peer.ip()));
                info!(user = %user, locked, "login failed");
                tokio::time::sleep(FAILED_LOGIN_DELAY.saturating_sub(started.elapsed())).await;
                if locked {
                    self.reply(421, "Too many failed logins; try again later.")
                        .await?;
                    return Ok(Flow::Quit);
                }
                self.send(Reply::login_incorrect()).await?;
                Ok(Flow::Continue)
            }
        }
    }

    pub(super) async fn cwd(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        match account.fs.stat(&target).await {
            Ok(meta) if meta.is_dir() => {
                self.cwd = target;
                self.send(Reply::directory_changed()).await?;
                Ok(Flow::Continue)
            }
            Ok(_) => self.reply(550, format!("{target}: not a directory.")).await,
            Err(e) => self.fs_error(&e).await,
        }
    }

    pub(super) async fn mkd(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        match account.fs.mkdir(&target).await {
            Ok(_) => {
                self.send(Reply::directory_created(&target)).await?;
                Ok(Flow::Continue)
            }
            Err(e) => self.fs_error(&e).await,
        }
    }

    pub(super) async fn simple(&mut self, account: &AccountFs, arg: &[u8], op: Op) -> Io<Flow> {
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        let result = match op {
            Op::Rmdir => account.fs.rmdir(&target).await,
            Op::Delete => account.fs.remove_file(&target).await,
        };
        match result {
            Ok(()) => {
                info!(path = %target, ?op, "done");
                let text = match op {
                    Op::Rmdir => "Remove directory operation successful.",
                    Op::Delete => "Delete operation successful.",
                };
                self.reply(250, text).await
            }
            Err(e) => self.fs_error(&e).await,
        }
    }

    pub(super) async fn rnfr(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        let Some(source) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        match account.fs.stat(&source).await {
            Ok(_) => {
                self.rename_from = Some(source);
                self.reply(350, "Ready for RNTO.").await
            }
            Err(e) => self.fs_error(&e).await,
        }
    }

    pub(super) async fn rnto(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        let Some(source) = self.rename_from.take() else {
            return self.reply(503, "RNFR required first.").await;
        };
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        match account.fs.rename(&source, &target).await {
            Ok(()) => self.reply(250, "Rename successful.").await,
            Err(e) => self.fs_error(&e).await,
        }
    }

    /// A file's metadata (SIZE, MDTM): allowed to every authority, like stat.
    async fn file_meta(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Option<Metadata>> {
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(None);
        };
        match account.fs.stat(&target).await {
            Ok(meta) if meta.is_dir() => {
                self.reply(550, format!("{target}: not a plain file."))
                    .await?;
                Ok(None)
            }
            Ok(meta) => Ok(Some(meta)),
            Err(e) => {
                self.fs_error(&e).await?;
                Ok(None)
            }
        }
    }

    pub(super) async fn size(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        match self.file_meta(account, arg).await? {
            Some(meta) => {
                self.send(Reply::size(meta.size)).await?;
                Ok(Flow::Continue)
            }
            None => Ok(Flow::Continue),
        }
    }

    pub(super) async fn mdtm(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        match self.file_meta(account, arg).await? {
            Some(meta) => match meta.mtime.and_then(Reply::mdtm) {
                Some(reply) => {
                    self.send(reply).await?;
                    Ok(Flow::Continue)
                }
                None => self.reply(550, "The file has no modification time.").await,
            },
            None => Ok(Flow::Continue),
        }
    }

    pub(super) async fn mlst(&mut self, account: &AccountFs, arg: Option<&[u8]>) -> Io<Flow> {
        let target = match arg {
            Some(arg) => match self.path_arg(arg).await? {
                Some(t) => t,
                None => return Ok(Flow::Continue),
            },
            None => self.cwd.clone(),
        };
        match account.fs.stat(&target).await {
            Ok(meta) => {
                let format = listing::MlsxFormat {
                    facts: self.mlst_facts,
                    perms: self.perms(account),
                };
                let Ok(line) = format.mlst_line(&target, &meta) else {
                    return self
                        .reply(553, "The name cannot be shown on the control connection.")
                        .await;
                };
                let lines = vec![format!("Listing {target}"), line, "End".into()];
                self.send(Reply::multiline(250, lines)).await?;
                Ok(Flow::Continue)
            }
            Err(e) => self.fs_error(&e).await,
        }
    }

    /// STAT with a path: the LIST of it over the control connection (213).
    pub(super) async fn stat_path(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        let now = std::time::SystemTime::now();
        let meta = match account.fs.stat(&target).await {
            Ok(meta) => meta,
            Err(e) => return self.fs_error(&e).await,
        };
        let mut lines = vec![format!("Status of {target}:")];
        if meta.is_dir() {
            let mut dir = match account.fs.read_dir(&target).await {
                Ok(dir) => dir,
                Err(e) => return self.fs_error(&e).await,
            };
            loop {
                match dir.next_entry().await {
                    Ok(Some(entry)) => lines.extend(list_text(&entry.name, &entry.meta, now)),
                    Ok(None) => break,
                    Err(e) => return self.fs_error(&e).await,
                }
            }
        } else {
            let name = target.rsplit('/').next().unwrap_or("");
            lines.extend(list_text(name, &meta, now));
        }
        lines.push("End of status".into());
        self.send(Reply::multiline(213, lines)).await?;
        Ok(Flow::Continue)
    }

    /// MLSx `perm` fact flags for this account.
    pub(super) fn perms(&self, account: &AccountFs) -> listing::Perms {
        let policy = account.fs.policy();
        listing::Perms {
            read: policy.authority.can_read(),
            write: policy.authority.can_write(),
            delete: policy.delete_enable,
        }
    }
}

/// One LIST line without its CRLF, for a multi-line control reply; names that cannot be listed are skipped.
fn list_text(name: &str, meta: &Metadata, now: std::time::SystemTime) -> Option<String> {
    let mut line = String::new();
    listing::list_line(&mut line, name, meta, now).ok()?;
    Some(line.trim_end().to_string())
}
