//! Login and the file commands that need no data connection.

use std::time::{Instant, SystemTime};

use tracing::{info, Span};

use super::super::addr::canonical_ip as canonical;
use super::super::auth::{verify_password_off_runtime, FAILED_LOGIN_DELAY};
use super::super::command::split_time_arg;
use super::super::encoding;
use super::super::fs_reply::{code_for, path_reply};
use super::super::listing;
use super::super::metrics;
use super::super::reply::{Reply, ReplyCode};
use super::super::xferlog::{self, Ending, Entry, Op as XferOp};
use super::{Flow, Login, Op, Session, TimeCommand};
use crate::bucketfs::{AttrChange, DirEntry, FsResult, Key, Listing, Metadata};
use crate::config::TlsMode;
use crate::daemon::AccountFs;

type Io<T> = std::io::Result<T>;

impl Session {
    /// The name an argument gives in the session's directory, or `None` once the refusal is answered.
    pub(super) async fn path_arg(&mut self, arg: &[u8]) -> Io<Option<Key>> {
        let text = match encoding::decode(arg, self.encoding()) {
            Ok(text) => text,
            Err(e) => {
                self.send(path_reply(&e)).await?;
                return Ok(None);
            }
        };
        match self.cwd.resolve(&text) {
            Ok(key) => Ok(Some(key)),
            Err(e) => {
                self.fs_error(&e).await?;
                Ok(None)
            }
        }
    }

    pub(super) async fn user(&mut self, name: String) -> Io<Flow> {
        if self.context.tls_mode == TlsMode::Required && !self.tls_active() {
            return self
                .reply(
                    ReplyCode::NotLoggedIn,
                    "This server requires TLS: send AUTH TLS first.",
                )
                .await;
        }
        if matches!(self.login, Login::LoggedIn(_)) {
            return self
                .reply(
                    ReplyCode::NotLoggedIn,
                    "Already logged in; reconnect to change user.",
                )
                .await;
        }
        // The lockout covers the sessions its address opened before the ban too.
        if self
            .context
            .logins
            .is_banned(canonical(self.peer.ip()))
            .await
        {
            return self.locked_out().await;
        }
        self.login = Login::User(name);
        self.send(Reply::need_password()).await?;
        Ok(Flow::Continue)
    }

    pub(super) async fn pass(&mut self, password: &[u8]) -> Io<Flow> {
        let user = match &self.login {
            Login::User(user) => user.clone(),
            Login::LoggedIn(_) => {
                return self
                    .reply(ReplyCode::UserLoggedIn, "Already logged in.")
                    .await
            }
            Login::None => {
                return self
                    .reply(ReplyCode::BadCommandSequence, "Send USER first.")
                    .await
            }
        };
        let started = Instant::now();
        let ip = canonical(self.peer.ip());
        // A slot for this check: refused when the address is locked out, including the sessions it opened before
        // the ban; the checks in flight count against the limit (see `LoginGuard`).
        let Ok(attempt) = self.context.logins.begin(ip).await else {
            self.login = Login::None;
            return self.locked_out().await;
        };
        let password = String::from_utf8_lossy(password).into_owned();
        let account = self.context.accounts.get(&user).cloned();
        // Unknown users and wrong passwords take the same path and the same time. Hashes (argon2, bcrypt,
        // SHA-crypt) cost milliseconds of CPU: checked on the blocking pool, not on the runtime's workers.
        let accepted = match &account {
            Some(a) => verify_password_off_runtime(&a.account.password, &password).await,
            None => false,
        };
        match (accepted, account) {
            (true, Some(account)) => {
                attempt.succeeded().await;
                metrics::login(true);
                Span::current().record("user", user.as_str());
                info!("login");
                self.login = Login::LoggedIn(account);
                self.cwd = Key::root();
                self.send(Reply::logged_in()).await?;
                Ok(Flow::Continue)
            }
            _ => {
                self.login = Login::None;
                // Counted before the delay, so that the guesses waiting for a slot see it.
                let locked = attempt.failed().await;
                metrics::login(false);
                if locked {
                    metrics::lockout();
                }
                info!(user = %user, locked, "login failed");
                tokio::time::sleep(FAILED_LOGIN_DELAY.saturating_sub(started.elapsed())).await;
                // Locked out by this failure or, meanwhile, by another session of the address.
                if locked || self.context.logins.is_banned(ip).await {
                    return self.locked_out().await;
                }
                self.send(Reply::login_incorrect()).await?;
                Ok(Flow::Continue)
            }
        }
    }

    /// 421 and the end of the session: the address is locked out after too many failed logins.
    async fn locked_out(&mut self) -> Io<Flow> {
        info!("refused: address locked out after failed logins");
        self.reply(
            ReplyCode::ServiceNotAvailable,
            "Too many failed logins; try again later.",
        )
        .await?;
        Ok(Flow::Quit)
    }

    pub(super) async fn cwd(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        match account.fs.enter(&target).await {
            Ok(()) => {
                self.cwd = target;
                self.send_continue(Reply::directory_changed()).await
            }
            Err(e) => self.fs_error(&e).await,
        }
    }

    pub(super) async fn mkd(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        let started = Instant::now();
        let result = account.fs.mkdir(&target).await.map(drop);
        self.log_operation(
            XferOp::Mkdir,
            &target,
            None,
            started,
            &result,
            ReplyCode::PathCreated,
        );
        match result {
            Ok(()) => {
                self.send_continue(Reply::directory_created(&target.display()))
                    .await
            }
            Err(e) => self.fs_error(&e).await,
        }
    }

    /// The transfer log line of a file operation (delete, rename, mkdir, rmdir) answered with `ok` or the error.
    fn log_operation(
        &self,
        op: XferOp,
        target: &Key,
        to: Option<&Key>,
        started: Instant,
        result: &FsResult<()>,
        ok: ReplyCode,
    ) {
        let code = match result {
            Ok(()) => ok,
            Err(e) => code_for(e),
        };
        xferlog::record(&Entry {
            op,
            user: self.user_name(),
            client: self.peer.ip(),
            path: &target.display(),
            to: to.map(Key::display).as_deref(),
            bytes: 0,
            took: started.elapsed(),
            ending: Ending::Replied(code),
            ascii: !self.binary,
        });
    }

    pub(super) async fn simple(&mut self, account: &AccountFs, arg: &[u8], op: Op) -> Io<Flow> {
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        let started = Instant::now();
        let result = match op {
            Op::Rmdir => account.fs.rmdir(&target).await,
            Op::Delete => account.fs.remove_file(&target).await,
        };
        let logged = match op {
            Op::Rmdir => XferOp::Rmdir,
            Op::Delete => XferOp::Delete,
        };
        self.log_operation(
            logged,
            &target,
            None,
            started,
            &result,
            ReplyCode::FileActionOkay,
        );
        match result {
            Ok(()) => {
                let text = match op {
                    Op::Rmdir => "Remove directory operation successful.",
                    Op::Delete => "Delete operation successful.",
                };
                self.reply(ReplyCode::FileActionOkay, text).await
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
                self.reply(ReplyCode::FileActionPending, "Ready for RNTO.")
                    .await
            }
            Err(e) => self.fs_error(&e).await,
        }
    }

    pub(super) async fn rnto(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        let Some(source) = self.rename_from.take() else {
            return self
                .reply(ReplyCode::BadCommandSequence, "RNFR required first.")
                .await;
        };
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        let started = Instant::now();
        let result = account.fs.rename(&source, &target).await;
        self.log_operation(
            XferOp::Rename,
            &source,
            Some(&target),
            started,
            &result,
            ReplyCode::FileActionOkay,
        );
        match result {
            Ok(()) => {
                self.reply(ReplyCode::FileActionOkay, "Rename successful.")
                    .await
            }
            Err(e) => self.fs_error(&e).await,
        }
    }

    /// A file's metadata (SIZE, MDTM): allowed to every authority, like stat.
    async fn file_meta(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Option<Metadata>> {
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(None);
        };
        match account.fs.stat_file(&target).await {
            Ok(meta) => Ok(Some(meta)),
            Err(e) => {
                self.fs_error(&e).await?;
                Ok(None)
            }
        }
    }

    /// SIZE: the file's size; for a name whose upload was interrupted and is kept for resume, the bytes the store
    /// holds (where `REST` + `STOR` or `APPE` continue).
    pub(super) async fn size(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        match account.fs.resumable_size(&target).await {
            Ok(Some(durable)) => return self.send_continue(Reply::size(durable)).await,
            Ok(None) => {}
            Err(e) => return self.fs_error(&e).await,
        }
        match account.fs.stat_file(&target).await {
            Ok(meta) => self.send_continue(Reply::size(meta.size)).await,
            Err(e) => self.fs_error(&e).await,
        }
    }

    /// The name an argument gives, or `None` if it gives none; nothing is answered.
    fn resolve_quietly(&self, arg: &[u8]) -> Option<Key> {
        let text = encoding::decode(arg, self.encoding()).ok()?;
        self.cwd.resolve(&text).ok()
    }

    /// MDTM: the modification time of a file; `MDTM <time> <path>` sets it, as vsftpd does, when the whole
    /// argument is not itself the name of a file.
    pub(super) async fn mdtm(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        if let Some((mtime, path)) = split_time_arg(arg) {
            let names_a_file = match self.resolve_quietly(arg) {
                Some(whole) => matches!(account.fs.lookup(&whole).await, Ok(Some(_))),
                None => false,
            };
            if !names_a_file {
                return self
                    .set_times(account, path, None, mtime, TimeCommand::Mdtm)
                    .await;
            }
        }
        match self.file_meta(account, arg).await? {
            Some(meta) => match meta.mtime.and_then(Reply::mdtm) {
                Some(reply) => self.send_continue(reply).await,
                None => {
                    self.reply(
                        ReplyCode::FileUnavailable,
                        "The file has no modification time.",
                    )
                    .await
                }
            },
            None => Ok(Flow::Continue),
        }
    }

    /// MFMT, SITE UTIME and MDTM with a time: sets the modification (and access) time the file carries.
    pub(super) async fn set_times(
        &mut self,
        account: &AccountFs,
        path: &[u8],
        atime: Option<SystemTime>,
        mtime: SystemTime,
        command: TimeCommand,
    ) -> Io<Flow> {
        let Some(target) = self.path_arg(path).await? else {
            return Ok(Flow::Continue);
        };
        let change = AttrChange {
            atime,
            mtime: Some(mtime),
            ..AttrChange::default()
        };
        let meta = match account.fs.set_attributes(&target, &change).await {
            Ok(meta) => meta,
            Err(e) => return self.fs_error(&e).await,
        };
        let stored = meta.mtime.and_then(listing::time_val).unwrap_or_default();
        match command {
            // draft-somers-ftp-mfxx §3: `213 Modify=<time-val>; <path>`, the time as it is now stored.
            TimeCommand::Mfmt => {
                self.reply(
                    ReplyCode::FileStatus,
                    format!("Modify={stored}; {}", target.display()),
                )
                .await
            }
            TimeCommand::SiteUtime => {
                self.reply(ReplyCode::CommandOkay, "SITE UTIME command successful.")
                    .await
            }
            TimeCommand::Mdtm => {
                self.reply(ReplyCode::FileStatus, "File modification time set.")
                    .await
            }
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
        let found = match account.fs.resumable_size(&target).await {
            Ok(Some(durable)) => Ok((Metadata::file(durable, None), true)),
            Ok(None) => account.fs.stat(&target).await.map(|meta| (meta, false)),
            Err(e) => Err(e),
        };
        match found {
            Ok((meta, partial)) => {
                let format = listing::MlsxFormat {
                    facts: self.mlst_facts,
                    policy: account.fs.policy(),
                };
                let path = target.display();
                let Ok(line) = format.mlst_line_of(&path, &meta, partial) else {
                    return self
                        .reply(
                            ReplyCode::FileNameNotAllowed,
                            "The name cannot be shown on the control connection.",
                        )
                        .await;
                };
                let lines = vec![format!("Listing {path}"), line, "End".into()];
                self.send_continue(Reply::multiline(ReplyCode::FileActionOkay, lines))
                    .await
            }
            Err(e) => self.fs_error(&e).await,
        }
    }

    /// STAT with a path: the LIST of it over the control connection (213), from the same listing as LIST.
    pub(super) async fn stat_path(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        let listing = match account.fs.list(&target).await {
            Ok(listing) => listing,
            Err(e) => return self.fs_error(&e).await,
        };
        let format = listing::LineFormat::List {
            now: std::time::SystemTime::now(),
        };
        let mut lines = vec![format!("Status of {}:", target.display())];
        let mut add = |entry: &DirEntry| {
            let mut line = String::new();
            if format.write(&mut line, &entry.name, &entry.meta).is_ok() {
                lines.push(line.trim_end().to_string());
            }
        };
        match listing {
            Listing::File(entry) => add(&entry),
            Listing::Directory(mut dir) => loop {
                match dir.next_entry().await {
                    Ok(Some(entry)) => add(&entry),
                    Ok(None) => break,
                    Err(e) => return self.fs_error(&e).await,
                }
            },
        }
        lines.push("End of status".into());
        self.send_continue(Reply::multiline(ReplyCode::FileStatus, lines))
            .await
    }
}
