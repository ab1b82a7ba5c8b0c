//! The one place `objects` meets the test hook [`FaultInjector`]: a request (or, on `fs` and `memory`, the
//! operation standing for it) is checked against the rules before it runs.

#[cfg(feature = "fault-injection")]
use opendal::{Error, ErrorKind};

#[cfg(feature = "fault-injection")]
use crate::storage::FaultInjector;
use crate::storage::StorageOptions;

#[cfg(feature = "fault-injection")]
#[derive(Clone, Debug, Default)]
pub(super) struct FaultHook(Option<FaultInjector>);

/// Without the test feature (the product) there are no faults to inject: every check passes.
#[cfg(not(feature = "fault-injection"))]
#[derive(Clone, Debug, Default)]
pub(super) struct FaultHook;

#[cfg(not(feature = "fault-injection"))]
impl FaultHook {
    pub(super) fn new(_options: &StorageOptions) -> Self {
        FaultHook
    }

    pub(super) fn check(&self, _method: &str, _query: &str) -> opendal::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "fault-injection")]
impl FaultHook {
    pub(super) fn new(options: &StorageOptions) -> Self {
        FaultHook(options.faults.clone())
    }

    /// Fails as the injector's transport does: `Unexpected`, permanent, so no retry hides the fault.
    pub(super) fn check(&self, method: &str, query: &str) -> opendal::Result<()> {
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
}
