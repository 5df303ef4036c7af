//! Experiments compose load steps into an answer. Today: `run` (the
//! scenario's phases in order, one result) and `abort_audit` (the phases
//! once per gateway mode; accounted time per key against the upstream's truth).

pub mod abort_audit;
pub mod run;
pub mod sweep;
