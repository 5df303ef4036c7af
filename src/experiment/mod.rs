//! Experiments compose load steps into an answer. Today: `run` (the
//! scenario's phases in order, one result) and `abort_audit` (the phases
//! once per gateway mode; accounted time per key against the upstream's truth)
//! and `find_limit` (the largest gateway concurrency limit inside the
//! gateway timeout, per hardware class, beside the processor-sharing model).

pub mod abort_audit;
pub mod find_limit;
pub mod run;
pub mod sweep;
