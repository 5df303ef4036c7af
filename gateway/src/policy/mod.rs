//! The overload policies, one file each, as pure state machines: every
//! decision takes `now` as an argument and no clock is read inside, so each
//! is tested with a table of instants. `proxy` holds their live state and
//! applies them in order: rate limit, budget, concurrency, breaker (the
//! upstream timeout is a `tokio::time::timeout` in `proxy`).
//!
//! Takes validated settings from [`crate::config`]; hands on
//! allow/refuse decisions (with how long to wait before retrying). They do
//! not build responses or write logs.

pub mod breaker;
pub mod budget;
pub mod concurrency;
pub mod gcra;
pub mod window;
