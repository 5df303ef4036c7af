//! Experiments compose load steps into an answer. Today: `run` (the
//! scenario's phases in order, one result) and `abort_audit` (the phases
//! once per gateway mode; accounted time per key against the upstream's truth)
//! and `find_limit` (the largest gateway concurrency limit inside the
//! gateway timeout, per hardware class, beside the processor-sharing model).

pub mod abort_audit;
pub mod find_limit;
pub mod run;
pub mod sweep;

/// What a component read gave: its value, or `None` when there is nothing
/// to read or the read failed, the failure then kept as a run warning.
fn or_warn<T>(read: Option<crate::error::Result<T>>, warnings: &mut Vec<String>) -> Option<T> {
    match read? {
        Ok(value) => Some(value),
        Err(e) => {
            warnings.push(e.to_string());
            None
        }
    }
}
