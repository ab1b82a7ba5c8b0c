//! What the storage room counts, through the `metrics` facade (a no-op unless the daemon installed the
//! Prometheus recorder, `metrics_address`). OpenDAL's own `MetricsLayer` records the operator's requests (reads,
//! listings, deletes, copies) as `opendal_operation_*` and `opendal_http_*`; this module records the write path's
//! requests (`storage::objects`), the retries of both clients, and each store's health.

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use opendal::layers::{RetryEvent, RetryInterceptor};
use opendal::ErrorKind;
use tracing::warn;

use super::health::StoreHealth;

const REQUESTS: &str = "cosftpd_store_requests_total";
const DURATION: &str = "cosftpd_store_request_duration_seconds";
const RETRIES: &str = "cosftpd_store_retries_total";
const UP: &str = "cosftpd_store_up";

/// Buckets of store request durations: from a fast HEAD to a slow CompleteMultipartUpload.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

pub fn describe() {
    describe_counter!(
        REQUESTS,
        "Requests of the write path to S3/COS (PutObject, UploadPart, CompleteMultipartUpload, ...), retries \
         included, by operation and outcome (ok or the error kind)"
    );
    describe_histogram!(
        DURATION,
        Unit::Seconds,
        "Time of the write path's S3/COS requests, retries included, by operation and outcome"
    );
    describe_counter!(
        RETRIES,
        "Store requests sent again after a temporary failure, by client (opendal: reads, listings, deletes, \
         copies; objects: the write path) and operation"
    );
    describe_gauge!(
        UP,
        "1 when the account's store answered its last probe (a listing of one entry), 0 when it did not"
    );
}

/// One request of `storage::objects` (all its attempts), and how it ended.
pub(super) fn objects_request(
    operation: &'static str,
    outcome: Result<(), ErrorKind>,
    took: Duration,
) {
    let outcome = outcome.err().map_or("ok", kind_label);
    counter!(REQUESTS, "operation" => operation, "outcome" => outcome).increment(1);
    histogram!(DURATION, "operation" => operation, "outcome" => outcome).record(took.as_secs_f64());
}

pub(super) fn retry(client: &'static str, operation: &'static str) {
    counter!(RETRIES, "client" => client, "operation" => operation).increment(1);
}

pub(super) fn store_up(user: &str, up: bool) {
    gauge!(UP, "user" => user.to_string()).set(if up { 1.0 } else { 0.0 });
}

/// OpenDAL's error kinds as label values.
fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "not_found",
        ErrorKind::PermissionDenied => "permission_denied",
        ErrorKind::AlreadyExists => "already_exists",
        ErrorKind::ConditionNotMatch => "condition_not_match",
        ErrorKind::RateLimited => "rate_limited",
        ErrorKind::RangeNotSatisfied => "range_not_satisfied",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::ConfigInvalid => "config_invalid",
        ErrorKind::IsADirectory => "is_a_directory",
        ErrorKind::NotADirectory => "not_a_directory",
        ErrorKind::Conflict => "conflict",
        ErrorKind::Unexpected => "unexpected",
        _ => "other",
    }
}

/// OpenDAL's `RetryLayer` notification for one account: each retry is counted, logged on one line, and brings the
/// account's next health probe forward. (OpenDAL's default notification logs the error's `Debug` form, which runs
/// over many lines and carries a backtrace under RUST_BACKTRACE=1.)
pub(super) struct RetryObserver {
    pub(super) health: StoreHealth,
}

impl RetryInterceptor for RetryObserver {
    fn intercept(&self, event: RetryEvent<'_>) {
        let operation = event.op.into_static();
        warn!(
            op = operation,
            attempt = event.attempt,
            delay = ?event.retry_after,
            error = %event.err,
            "store request failed; retrying"
        );
        retry("opendal", operation);
        self.health.probe_soon();
    }
}
