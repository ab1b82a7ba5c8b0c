//! Digests a client asks for: HASH with OPTS HASH and RANG (draft-bryan-ftpext-hash), and the older XMD5, MD5,
//! XSHA1, XSHA256, XSHA512 and XCRC. The core answers from the object's metadata when cosftpd wrote it, or computes
//! from the stored bytes (bounded by `hash_max_size`).

use tracing::info;

use super::super::command::DigestRequest;
use super::super::reply::{Reply, ReplyCode};
use super::{Flow, Session};
use crate::bucketfs::digest::{Algorithm, DigestAnswer};
use crate::daemon::AccountFs;

type Io<T> = std::io::Result<T>;

impl Session {
    /// `OPTS HASH`: which algorithm HASH uses; `OPTS HASH <name>`: use that one.
    pub(super) async fn opts_hash(&mut self, choice: Option<String>) -> Io<Flow> {
        if let Some(name) = choice {
            match name.parse::<Algorithm>() {
                Ok(algorithm) => self.hash_algorithm = algorithm,
                Err(why) => {
                    return self
                        .reply(ReplyCode::ParameterSyntaxError, format!("{why}."))
                        .await
                }
            }
        }
        self.reply(ReplyCode::CommandOkay, self.hash_algorithm.name())
            .await
    }

    /// `RANG start end` (draft-bryan-ftp-range, both ends inclusive): the next RETR or HASH covers those bytes;
    /// `RANG 1 0` (an end before the start) resets. It replaces a pending REST, as REST replaces it.
    pub(super) async fn rang(&mut self, start: u64, end: u64) -> Io<Flow> {
        self.rest = 0;
        if end < start {
            self.range = None;
            return self
                .reply(ReplyCode::FileActionPending, "Range reset: the whole file.")
                .await;
        }
        self.range = Some(start..end.saturating_add(1));
        self.reply(
            ReplyCode::FileActionPending,
            format!("Restarting at {start}. Ending at {end}."),
        )
        .await
    }

    /// `HASH name`: `213 SHA-256 0-1233 <hex> name` for a file of 1234 bytes (the range's ends inclusive).
    pub(super) async fn hash(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        let range = self.range.take();
        match account.fs.digest(&target, self.hash_algorithm, range).await {
            Ok(answer) => {
                log_computed(&answer);
                let text = format!(
                    "{} {}-{} {} {}",
                    answer.algorithm.name(),
                    answer.range.start,
                    answer.range.end.saturating_sub(1).max(answer.range.start),
                    answer.value,
                    target.display()
                );
                self.send_continue(Reply::new(ReplyCode::FileStatus, text))
                    .await
            }
            Err(e) => self.fs_error(&e).await,
        }
    }

    /// XMD5 and friends: `250 <hex>`; MD5: `251 name <hex>`.
    pub(super) async fn digest(&mut self, account: &AccountFs, request: DigestRequest) -> Io<Flow> {
        let Some(target) = self.path_arg(request.path.as_bytes()).await? else {
            return Ok(Flow::Continue);
        };
        let range = request.range.map(|(start, end)| start..end);
        match account.fs.digest(&target, request.algorithm, range).await {
            Ok(answer) => {
                log_computed(&answer);
                let reply = if request.names_path {
                    Reply::new(
                        ReplyCode::FileDigest,
                        format!("{} {}", target.display(), answer.value),
                    )
                } else {
                    // Only the digest: clients compare the reply's text with their own.
                    let value = if request.algorithm == Algorithm::Md5 {
                        answer.value.to_ascii_uppercase()
                    } else {
                        answer.value.clone()
                    };
                    Reply::new(ReplyCode::FileActionOkay, value)
                };
                self.send_continue(reply).await
            }
            Err(e) => self.fs_error(&e).await,
        }
    }

    /// FEAT's lines for the digests: HASH with every algorithm (the chosen one starred), RANG, the X commands.
    pub(super) fn digest_features(&self) -> Vec<String> {
        let names: Vec<String> = Algorithm::ALL
            .iter()
            .map(|a| {
                if *a == self.hash_algorithm {
                    format!("{}*", a.name())
                } else {
                    a.name().to_string()
                }
            })
            .collect();
        let mut lines = vec![format!("HASH {}", names.join(";")), "RANG STREAM".into()];
        lines.extend(["MD5", "XCRC", "XMD5", "XSHA1", "XSHA256", "XSHA512"].map(String::from));
        lines
    }
}

fn log_computed(answer: &DigestAnswer) {
    if answer.computed {
        info!(
            algorithm = answer.algorithm.name(),
            bytes = answer.range.end - answer.range.start,
            "digest computed from the stored bytes"
        );
    }
}
