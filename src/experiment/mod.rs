//! Experiments compose load steps into an answer. Today: `run` (the
//! scenario's phases in order, one result).

pub mod run;
