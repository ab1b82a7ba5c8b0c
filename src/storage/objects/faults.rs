//! The one place `objects` meets the test hook [`crate::storage::FaultInjector`]: a request (or, on `fs` and
//! `memory`, the operation standing for it) is checked against the rules before it runs. Without the
//! `fault-injection` feature (the product) the hook is empty and every check passes.

use crate::storage::StorageOptions;

#[derive(Clone, Debug, Default)]
pub(super) struct FaultHook(
    #[cfg(feature = "fault-injection")] Option<crate::storage::FaultInjector>,
);

impl FaultHook {
    #[cfg(feature = "fault-injection")]
    pub(super) fn new(options: &StorageOptions) -> Self {
        FaultHook(options.faults.clone())
    }

    #[cfg(not(feature = "fault-injection"))]
    pub(super) fn new(_options: &StorageOptions) -> Self {
        FaultHook()
    }

    /// Fails as the injector's transport does: `Unexpected`, permanent, so no retry hides the fault.
    #[cfg(feature = "fault-injection")]
    pub(super) fn check(&self, method: &str, query: &str) -> opendal::Result<()> {
        use opendal::{Error, ErrorKind};
        match &self.0 {
            Some(faults) if faults.should_fail(method, query) => {
                Err(Error::new(ErrorKind::Unexpected, "injected fault")
                    .with_context("method", method)
                    .with_context("query", query)
                    .set_permanent())
            }
            _ => Ok(()),
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    pub(super) fn check(&self, _method: &str, _query: &str) -> opendal::Result<()> {
        Ok(())
    }
}

impl FaultHook {
    /// The body as it arrives at the store: with its middle byte flipped when a corruption rule matches.
    #[cfg(feature = "fault-injection")]
    pub(super) fn deliver(&self, method: &str, query: &str, body: bytes::Bytes) -> bytes::Bytes {
        match &self.0 {
            Some(faults) if !body.is_empty() && faults.should_corrupt(method, query) => {
                let mut damaged = body.to_vec();
                damaged[body.len() / 2] ^= 0x20;
                bytes::Bytes::from(damaged)
            }
            _ => body,
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    pub(super) fn deliver(&self, _method: &str, _query: &str, body: bytes::Bytes) -> bytes::Bytes {
        body
    }
}
