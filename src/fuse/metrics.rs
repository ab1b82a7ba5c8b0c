//! What the mount counts, through the `metrics` facade (a no-op unless the daemon installed the Prometheus recorder,
//! `metrics_address`): requests by operation, and failed ones by operation and errno. Recorded where a request is
//! answered (`filesystem.rs`), from the errno the answer carries.

use fuser::Errno;
use metrics::{counter, describe_counter};

use super::errno::errno_name;

const REQUESTS: &str = "cosftpd_fuse_requests_total";
const ERRORS: &str = "cosftpd_fuse_errors_total";

pub fn describe() {
    describe_counter!(
        REQUESTS,
        "Requests the kernel sent to the mounts, answered, by operation (lookup, getattr, read, write, ...)"
    );
    describe_counter!(
        ERRORS,
        "Mount requests answered with an error, by operation and errno (ENOENT, EACCES, EIO, ...)"
    );
}

/// A request answered: with success (`None`) or an errno.
pub(super) fn answered(op: &'static str, errno: Option<Errno>) {
    counter!(REQUESTS, "op" => op).increment(1);
    if let Some(errno) = errno {
        counter!(ERRORS, "op" => op, "errno" => errno_name(errno)).increment(1);
    }
}
