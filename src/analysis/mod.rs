//! Analyses: pure functions over finished results, no I/O.
//!
//! - [`knee`]: Kneedle (Satopaa et al., 2011) on a curve such as P99 against offered load.
//! - [`usl`]: the Universal Scalability Law fitted to throughput against concurrency.
//! - [`accounting`]: the abort audit: gateway-accounted time per key against the upstream's truth.
//! - [`ps_model`]: the processor-sharing model of the concurrency limit a gateway timeout allows.

pub mod accounting;
pub mod knee;
pub mod ps_model;
pub mod usl;
