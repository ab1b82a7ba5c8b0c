//! What the core reports, through the `metrics` facade (a no-op unless the daemon installed the Prometheus
//! recorder, `metrics_address`). Sampled, not counted: the daemon calls `sample_budget` before each scrape, so the
//! core's decisions carry no instrumentation.

use metrics::{describe_gauge, gauge, Gauge, Unit};

use super::MemoryBudget;

const BUDGET_TOTAL: &str = "cosftpd_memory_budget_bytes";
const BUDGET_IN_USE: &str = "cosftpd_memory_budget_in_use_bytes";
const BUDGET_WAITING: &str = "cosftpd_memory_budget_waiting";
const RESUMABLE_PENDING: &str = "cosftpd_resumable_uploads_pending";

pub fn describe() {
    describe_gauge!(
        BUDGET_TOTAL,
        Unit::Bytes,
        "memory_budget: the memory all upload parts and read-ahead may take together"
    );
    describe_gauge!(
        BUDGET_IN_USE,
        Unit::Bytes,
        "Memory held against memory_budget now by upload parts and read-ahead"
    );
    describe_gauge!(
        BUDGET_WAITING,
        "Transfers waiting for memory_budget now (back-pressure; they wait, they do not fail)"
    );
    describe_gauge!(
        RESUMABLE_PENDING,
        "Broken uploads kept in the store for resuming, not yet resumed or expired"
    );
}

/// The budget's state now, as three gauges.
pub fn sample_budget(budget: &MemoryBudget) {
    let total = budget.total();
    gauge!(BUDGET_TOTAL).set(total as f64);
    gauge!(BUDGET_IN_USE).set(total.saturating_sub(budget.available()) as f64);
    gauge!(BUDGET_WAITING).set(budget.waiting() as f64);
}

/// The gauge of uploads kept for resuming: the resumable-upload code sets it (`set`), or moves it as uploads are
/// kept and resumed or expire (`increment` / `decrement`). Nothing sets it yet.
pub fn pending_resumable_uploads() -> Gauge {
    gauge!(RESUMABLE_PENDING)
}
