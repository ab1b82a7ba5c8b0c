//! A fault-injecting HTTP transport: the store is real, but chosen requests fail before they leave the process.
//! Tests use it to prove that every failure path aborts uploads and commits nothing.

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use opendal::{Buffer, Error, ErrorKind, HttpBody, HttpTransport};

/// Which requests fail: method (e.g. `PUT`), a substring of the query (e.g. `partNumber=2`, `uploadId=`), how
/// many times (then the rule is spent).
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub method: &'static str,
    pub query_contains: &'static str,
    pub times: usize,
}

/// Shared handle: tests add rules while the operator is in use.
#[derive(Debug, Clone, Default)]
pub struct FaultInjector {
    rules: Arc<Mutex<Vec<FaultRule>>>,
    corruptions: Arc<Mutex<Vec<FaultRule>>>,
    fired: Arc<Mutex<usize>>,
}

impl FaultInjector {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&self, rule: FaultRule) {
        if let Ok(mut rules) = self.rules.lock() {
            rules.push(rule);
        }
    }

    /// Matching requests are sent with one byte of their body changed, as a faulty network or proxy would:
    /// the integrity checks must notice.
    pub fn add_corruption(&self, rule: FaultRule) {
        if let Ok(mut rules) = self.corruptions.lock() {
            rules.push(rule);
        }
    }

    /// How many requests were failed (or corrupted) so far.
    pub fn fired(&self) -> usize {
        self.fired.lock().map(|n| *n).unwrap_or(0)
    }

    pub(super) fn wrap<T: HttpTransport>(&self, inner: T) -> FaultTransport<T> {
        FaultTransport {
            inner,
            faults: self.clone(),
        }
    }

    /// Whether a request with this method and query fails now (spending one use of the matching rule).
    pub(super) fn should_fail(&self, method: &str, query: &str) -> bool {
        self.spend(&self.rules, method, query)
    }

    /// Whether this request's body is damaged on the way (spending one use of the matching rule).
    pub(crate) fn should_corrupt(&self, method: &str, query: &str) -> bool {
        self.spend(&self.corruptions, method, query)
    }

    fn spend(&self, rules: &Mutex<Vec<FaultRule>>, method: &str, query: &str) -> bool {
        let Ok(mut rules) = rules.lock() else {
            return false;
        };
        let Some(rule) = rules
            .iter_mut()
            .find(|r| r.times > 0 && r.method == method && query.contains(r.query_contains))
        else {
            return false;
        };
        rule.times -= 1;
        if let Ok(mut fired) = self.fired.lock() {
            *fired += 1;
        }
        true
    }
}

pub struct FaultTransport<T> {
    inner: T,
    faults: FaultInjector,
}

impl<T: HttpTransport> HttpTransport for FaultTransport<T> {
    async fn fetch(&self, req: Request<Buffer>) -> opendal::Result<Response<HttpBody>> {
        let query = req.uri().query().unwrap_or("");
        if self.faults.should_fail(req.method().as_str(), query) {
            // Permanent, so the retry layer does not hide the fault.
            return Err(Error::new(ErrorKind::Unexpected, "injected fault").set_permanent());
        }
        self.inner.fetch(req).await
    }
}
