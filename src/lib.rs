//! `contend`: open-loop load generation and gateway contention benchmarks.
//!
//! The map of modules, in the order data flows through them:
//!
//! - [`scenario`]: TOML scenario files and flags, validated into a `Scenario`.
//! - [`arrival`]: pure arrival schedules (constant, Poisson, ramps).
//! - [`topology`]: starts and stops the components (mock upstream, gateway, nginx).
//! - [`driver`]: the open-loop driver, share-nothing shards on their own threads.
//! - [`outcome`]: what became of one arrival; shared by everything.
//! - [`record`]: histograms and counters per shard, merged exactly.
//! - [`experiment`]: compose load steps into results (`run`, `sweep`, `abort_audit`, `find_limit`).
//! - [`analysis`]: pure analyses of finished results (knee, USL fit, abort accounting).
//! - [`report`]: summary.json, intervals.csv, .hgrm, .hlog, plots, report.html, the console.
//! - [`threshold`]: threshold expressions (`p99 < 250ms`) and their verdicts over a summary.
//! - [`gate`]: the CI gate: thresholds, baseline comparison, JUnit XML.
//! - [`shutdown`]: Ctrl-C and SIGTERM: stop, drain, report.
//! - [`cli`] and [`app`]: the command line and its commands.
//! - [`preflight`]: host settings (open files, sysctls) checked against a run; `contend doctor`.
//! - [`limits`]: RLIMIT_NOFILE raised at start; connects refused by a limit, counted.
//! - [`error`]: the library's errors and their exit codes.
//! - [`sys`]: the one module with `unsafe` (clocks, timerfd, signals, rlimits).
//!
//! Two crates of the workspace stand beside it: `contend-units` (human
//! units, `250ms` and `50k`, for every file and flag) and `contend-gateway`
//! (the reference gateway, `contend gateway`, which the harness starts and
//! measures but which never imports the harness).

#![deny(missing_docs)]

pub mod analysis;
pub mod app;
pub mod arrival;
pub mod cli;
pub mod driver;
pub mod error;
pub mod experiment;
pub mod gate;
pub mod limits;
pub mod outcome;
pub mod preflight;
pub mod record;
pub mod report;
pub mod scenario;
pub mod shutdown;
pub mod sys;
pub mod threshold;
pub mod topology;
