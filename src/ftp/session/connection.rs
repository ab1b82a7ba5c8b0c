//! Session settings and the data-connection setup: AUTH/PBSZ/PROT, OPTS, TYPE/MODE/STRU, PASV/EPSV/PORT/EPRT.

use std::net::{SocketAddr, SocketAddrV4};

use tracing::info;

use super::super::addr;
use super::super::addr::canonical_ip as canonical;
use super::super::command::{
    EpsvArg, FileStructure, OptsArg, ProtectionLevel, TransferMode, TransferType,
};
use super::super::data::{DataPlan, PassiveAccept};
use super::super::reply::{Reply, ReplyCode};
use super::super::stream::MaybeTls;
use super::{Flow, Login, Session};
use crate::config::TlsMode;

type Io<T> = std::io::Result<T>;

impl Session {
    /// AUTH TLS: 234, then the handshake on the control connection. A failed handshake ends the session.
    pub(super) async fn auth(&mut self) -> Io<Flow> {
        let Some(acceptor) = self.context.tls.as_ref().map(|tls| tls.control.clone()) else {
            return self
                .reply(
                    ReplyCode::CommandNotImplemented,
                    "TLS is not configured on this server.",
                )
                .await;
        };
        if self.tls_active() {
            return self
                .reply(ReplyCode::BadCommandSequence, "Already using TLS.")
                .await;
        }
        self.reply(ReplyCode::AuthOkay, "Proceed with negotiation.")
            .await?;
        let Some(MaybeTls::Plain(tcp)) = self.control.take() else {
            return Ok(Flow::Quit);
        };
        match tokio::time::timeout(
            self.context.config.optional.login_timeout,
            acceptor.accept(tcp),
        )
        .await
        {
            Ok(Ok(tls)) => {
                self.control = Some(MaybeTls::Tls(Box::new(tls)));
                // RFC 4217 §4: the session is reset after AUTH.
                self.login = Login::None;
                self.input.clear();
                Ok(Flow::Continue)
            }
            Ok(Err(e)) => {
                info!(error = %e, "TLS handshake failed");
                Ok(Flow::Quit)
            }
            Err(_) => {
                info!("TLS handshake timed out");
                Ok(Flow::Quit)
            }
        }
    }

    pub(super) async fn prot(&mut self, level: ProtectionLevel) -> Io<Flow> {
        if !self.tls_active() {
            return self
                .reply(
                    ReplyCode::BadCommandSequence,
                    "PROT needs a TLS connection (AUTH TLS first).",
                )
                .await;
        }
        if !self.pbsz {
            return self
                .reply(ReplyCode::BadCommandSequence, "PBSZ required first.")
                .await;
        }
        match level {
            ProtectionLevel::Private => {
                self.protect_data = true;
                self.reply(ReplyCode::CommandOkay, "PROT now Private.")
                    .await
            }
            ProtectionLevel::Clear if self.context.tls_mode == TlsMode::Required => {
                self.reply(
                    ReplyCode::ProtLevelNotSupported,
                    "Data connections must be protected on this server (PROT P).",
                )
                .await
            }
            ProtectionLevel::Clear => {
                self.protect_data = false;
                self.reply(ReplyCode::CommandOkay, "PROT now Clear.").await
            }
            _ => {
                self.reply(
                    ReplyCode::ProtLevelNotSupported,
                    "Only PROT P and PROT C are supported.",
                )
                .await
            }
        }
    }

    pub(super) async fn opts(&mut self, opts: OptsArg) -> Io<Flow> {
        match opts {
            OptsArg::Utf8(true) => {
                self.reply(ReplyCode::CommandOkay, "Always in UTF8 mode.")
                    .await
            }
            OptsArg::Utf8(false) => {
                self.reply(
                    ReplyCode::CommandNotImplementedForParameter,
                    "UTF8 cannot be turned off.",
                )
                .await
            }
            OptsArg::Mlst(facts) => {
                self.mlst_facts = facts;
                self.reply(ReplyCode::CommandOkay, facts.opts_reply_text())
                    .await
            }
            OptsArg::Hash(choice) => self.opts_hash(choice).await,
            OptsArg::Other(text) => {
                self.reply(
                    ReplyCode::ParameterSyntaxError,
                    format!("Option not understood: {text}."),
                )
                .await
            }
        }
    }

    pub(super) async fn type_(&mut self, kind: TransferType) -> Io<Flow> {
        match kind.is_binary() {
            Some(false) => {
                self.binary = false;
                self.reply(ReplyCode::CommandOkay, "Switching to ASCII mode.")
                    .await
            }
            Some(true) => {
                self.binary = true;
                self.reply(ReplyCode::CommandOkay, "Switching to Binary mode.")
                    .await
            }
            None => self.send_continue(Reply::parameter_not_implemented()).await,
        }
    }

    pub(super) async fn mode(&mut self, mode: TransferMode) -> Io<Flow> {
        match mode {
            TransferMode::Stream => self.reply(ReplyCode::CommandOkay, "Mode set to S.").await,
            _ => {
                self.reply(
                    ReplyCode::CommandNotImplementedForParameter,
                    "Only MODE S is supported.",
                )
                .await
            }
        }
    }

    pub(super) async fn stru(&mut self, stru: FileStructure) -> Io<Flow> {
        match stru {
            FileStructure::File => {
                self.reply(ReplyCode::CommandOkay, "Structure set to F.")
                    .await
            }
            _ => {
                self.reply(
                    ReplyCode::CommandNotImplementedForParameter,
                    "Only STRU F is supported.",
                )
                .await
            }
        }
    }

    pub(super) async fn stat_session(&mut self) -> Io<Flow> {
        let mut lines = vec![
            "FTP server status:".to_string(),
            format!("     Connected to {}", canonical(self.peer.ip())),
            format!("     Logged in as {}", self.user_name()),
            format!(
                "     TYPE: {}",
                if self.binary { "BINARY" } else { "ASCII" }
            ),
            format!(
                "     Control connection is {}",
                if self.tls_active() {
                    "TLS"
                } else {
                    "plain text"
                }
            ),
            format!(
                "     Data connections will be {}",
                if self.protect_data {
                    "TLS"
                } else {
                    "plain text"
                }
            ),
        ];
        if let Some(via) = self.front {
            lines.push(format!("     Through a load balancer ({})", via.ip()));
        }
        if let Some(cluster) = &self.context.config.cluster {
            lines.push(format!("     Served by cluster node {}", cluster.node_name));
        }
        lines.push("End of status".to_string());
        self.send(Reply::multiline(ReplyCode::SystemStatus, lines))
            .await?;
        Ok(Flow::Continue)
    }

    pub(super) async fn pasv(&mut self) -> Io<Flow> {
        if self.epsv_all {
            return self
                .reply(
                    ReplyCode::BadCommandSequence,
                    "EPSV ALL was sent: use EPSV.",
                )
                .await;
        }
        let announce = match self.context.masquerade {
            Some(ip) => addr::pasv_ipv4(ip),
            None => addr::pasv_ipv4(self.local.ip()),
        };
        let Some(announce) = announce else {
            return self
                .send_continue(addr::protocol_not_supported(self.local.ip()))
                .await;
        };
        match self.listen().await? {
            Some(port) => {
                self.send_continue(addr::pasv_reply(SocketAddrV4::new(announce, port)))
                    .await
            }
            None => Ok(Flow::Continue),
        }
    }

    /// EPSV sends the client to the address of the control connection (RFC 2428), which through a balancer is the
    /// balancer's: wrong, unless the balancer's front end is this node's announced address. Refused then, and
    /// left out of FEAT, so clients use PASV (curl and lftp fall back by themselves); see docs/CLUSTER.md.
    pub(super) fn epsv_reaches_us(&self) -> bool {
        match self.front {
            None => true,
            Some(front) => {
                let announced = self.context.masquerade.unwrap_or(self.local.ip());
                canonical(front.ip()) == canonical(announced)
            }
        }
    }

    pub(super) async fn epsv(&mut self, arg: EpsvArg) -> Io<Flow> {
        if !self.epsv_reaches_us() {
            return self
                .reply(
                    ReplyCode::CommandNotImplemented,
                    "EPSV is not available through the load balancer; use PASV.",
                )
                .await;
        }
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                return self.reply(ReplyCode::CommandOkay, "EPSV ALL ok.").await;
            }
            EpsvArg::Protocol(p) if p != addr::protocol_of(self.local.ip()) => {
                return self
                    .send_continue(addr::protocol_not_supported(self.local.ip()))
                    .await;
            }
            _ => {}
        }
        match self.listen().await? {
            Some(port) => self.send_continue(addr::epsv_reply(port)).await,
            None => Ok(Flow::Continue),
        }
    }

    /// A passive listener on the address the client reached us on; only that client may connect to it.
    async fn listen(&mut self) -> Io<Option<u16>> {
        let bound = match self.context.passive.bind(canonical(self.local.ip())).await {
            Ok(listener) => listener.local_addr().map(|a| (listener, a.port())),
            Err(e) => Err(e),
        };
        match bound {
            Ok((listener, port)) => {
                // Under PROT P the handshake is done as soon as the client connects (see `PassiveAccept`).
                let tls = if self.protect_data {
                    self.context.tls.as_ref().map(|tls| tls.data.clone())
                } else {
                    None
                };
                self.data = DataPlan::Passive(PassiveAccept::start(listener, self.peer.ip(), tls));
                Ok(Some(port))
            }
            Err(e) => {
                self.reply(
                    ReplyCode::CantOpenDataConnection,
                    format!("Cannot open a passive port: {e}."),
                )
                .await?;
                Ok(None)
            }
        }
    }

    /// PORT/EPRT: only to the client itself, at an unprivileged port (no FTP bounce).
    pub(super) async fn port(&mut self, target: SocketAddr) -> Io<Flow> {
        if self.epsv_all {
            return self
                .reply(
                    ReplyCode::BadCommandSequence,
                    "EPSV ALL was sent: use EPSV.",
                )
                .await;
        }
        // RFC 2428: a data connection can only use the control connection's protocol.
        if addr::protocol_of(target.ip()) != addr::protocol_of(self.peer.ip()) {
            return self
                .send_continue(addr::protocol_not_supported(self.peer.ip()))
                .await;
        }
        if !addr::is_allowed_active_target(self.peer.ip(), target) {
            info!(%target, "refused PORT/EPRT to a foreign address or privileged port");
            return self
                .reply(ReplyCode::CommandSyntaxError, "Illegal PORT command.")
                .await;
        }
        self.data = DataPlan::Active {
            target,
            local: self.local.ip(),
        };
        self.reply(
            ReplyCode::CommandOkay,
            "PORT command successful. Consider using PASV.",
        )
        .await
    }
}
