//! The one place `objects` meets the test hook [`FaultInjector`]: a request (or, on `fs` and `memory`, the
//! operation standing for it) is checked against the rules before it runs.

use opendal::{Error, ErrorKind};

use crate::storage::{FaultInjector, StorageOptions};

#[derive(Clone, Debug, Default)]
pub(super) struct FaultHook(Option<FaultInjector>);

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
