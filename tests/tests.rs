//! The integration tests, one binary. Modules:
//!
//! - `util`: loopback test servers and driver helpers.
//! - `scenario_files`: broken and good scenario files and their messages.
//! - `driver`: the open-loop driver against servers that stall, refuse,
//!   reset, never answer, or run out of connections.
//! - `cli`: the `contend` binary end to end: exit codes, messages, signals.
//! - `gateway`: the reference gateway's policies and abort accounting, its
//!   binary, and nginx as the gateway under test.
//! - `reports`: the report folder's files against their formats and schema.
//! - `gate`: thresholds, `compare`, `--repeat` and JUnit through the binary.

mod cli;
mod driver;
mod gate;
mod gateway;
mod reports;
mod scenario_files;
mod util;
