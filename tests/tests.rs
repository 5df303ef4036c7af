//! The integration tests, one binary. Modules:
//!
//! - `util`: loopback test servers and driver helpers.
//! - `binary`: running the `contend` binary and reading its report back.
//! - `scenario_files`: broken and good scenario files and their messages.
//! - `driver`: the open-loop driver against servers that stall, refuse,
//!   reset, never answer, or run out of connections.
//! - `cli`: the `contend` binary end to end: exit codes, messages, signals.
//! - `gateway`: the reference gateway's policies and abort accounting, its
//!   binary, and nginx as the gateway under test.
//! - `reports`: the report folder's files against their formats and schema.
//! - `gate`: thresholds, `compare`, `--repeat` and JUnit through the binary.
//! - `abort_audit`: the abort-audit experiment: accounted against true worker time per mode.
//! - `find_limit`: the find-limit experiment: `[find_limit]`, refusals, one short real search.
//! - `sweep`: the sweep experiment: `[sweep]` parsing, a short real sweep, its
//!   rows, plots, report.html and `contend report DIR`, and stopping early.

mod abort_audit;
mod binary;
mod cli;
mod driver;
mod find_limit;
mod gate;
mod gateway;
mod reports;
mod scenario_files;
mod sweep;
mod util;
