//! Request signing with reqsign: AWS SigV4 for S3-compatible stores, COS's own scheme for Tencent COS. Keys are
//! static (the config's), so the signers need no files, environment or HTTP: an empty `Context` is enough.

use reqsign_core::{Context, Signer};

#[derive(Clone, Debug)]
pub(super) enum StoreSigner {
    Aws(Signer<reqsign_aws_v4::Credential>),
    Cos(Signer<reqsign_tencent_cos::Credential>),
}

impl StoreSigner {
    pub(super) fn aws(access_key: &str, secret_key: &str, region: &str) -> Self {
        StoreSigner::Aws(Signer::new(
            Context::new(),
            reqsign_aws_v4::StaticCredentialProvider::new(access_key, secret_key),
            reqsign_aws_v4::RequestSigner::new("s3", region),
        ))
    }

    pub(super) fn cos(secret_id: &str, secret_key: &str) -> Self {
        StoreSigner::Cos(Signer::new(
            Context::new(),
            reqsign_tencent_cos::StaticCredentialProvider::new(secret_id, secret_key),
            reqsign_tencent_cos::RequestSigner::new(),
        ))
    }

    /// Signs every header present (set them all first); the URI must be percent-encoded exactly once.
    pub(super) async fn sign(
        &self,
        parts: &mut http::request::Parts,
    ) -> Result<(), reqsign_core::Error> {
        match self {
            StoreSigner::Aws(s) => s.sign(parts, None).await?,
            StoreSigner::Cos(s) => s.sign(parts, None).await?,
        }
        // SigV4 adds (and signs) Host from the URI; reqwest writes the same Host itself, and an explicit one is
        // refused by HTTP/2 servers (reqwest issue 1809), as OpenDAL notes.
        parts.headers.remove(http::header::HOST);
        Ok(())
    }
}
