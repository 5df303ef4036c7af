//! `contend`: open-loop load generation and gateway contention benchmarks.
//!
//! The map of modules, upstream first: each imports only the modules
//! above it (docs/architecture.md has the flow and the rules).
//!
//! - Leaves: [`error`] (the library's errors and their exit codes), [`sys`]
//!   (the one module with `unsafe`: clocks, timerfd, signals, rlimits),
//!   [`outcome`] (what became of one arrival), [`limits`] (RLIMIT_NOFILE
//!   and connects a limit refused), [`record`] (histograms and counters per
//!   shard, merged exactly), [`threshold`] (`p99 < 250ms` and its verdict
//!   over a summary).
//! - [`logs`]: access logs from anywhere (nginx's `log_format`, HAProxy's
//!   `log-format`; plain, gzip, stdin) streamed into a bounded tally.
//! - [`scenario`]: TOML scenario files and flags, validated into a
//!   `Scenario` whose experiment carries its spec.
//! - [`arrival`]: pure arrival schedules (constant, Poisson, ramps).
//! - [`driver`]: the open-loop (or closed-loop) driver, share-nothing shards.
//! - [`topology`]: the component interface; starts, watches and stops the
//!   mock upstream, the reference gateway, nginx, HAProxy.
//! - [`preflight`]: host settings checked against a run; `contend doctor`.
//! - [`analysis`]: pure analyses of finished results (knee, USL fit, the
//!   gateway's access log, the per-request join, abort accounting, the
//!   processor-sharing model, a log's censored fit).
//! - [`shutdown`]: Ctrl-C and SIGTERM: stop, drain, report.
//! - [`experiment`]: one load step, and its compositions (`run`, `sweep`,
//!   `find_limit`, `abort_audit`).
//! - [`exporter`]: `--metrics-addr`, the run's own progress in Prometheus
//!   text while it runs.
//! - [`report`]: the report folder (made ready before the run),
//!   summary.json, intervals.csv, .hgrm, .hlog, plots, report.html, the
//!   console.
//! - [`gate`]: the CI gate: thresholds' verdicts, baseline comparison, JUnit XML.
//! - [`cli`] and [`app`]: the command line and its commands.
//!
//! Three crates of the workspace stand beside it: `contend-units` (human
//! units, `250ms` and `50k`, for every file and flag), `mock-upstream` and
//! `contend-gateway` (the components the harness starts and measures,
//! which never import the harness).

#![deny(missing_docs)]

pub mod analysis;
pub mod app;
pub mod arrival;
pub mod cli;
pub mod driver;
pub mod error;
pub mod experiment;
pub mod exporter;
pub mod gate;
pub mod limits;
pub mod logs;
pub mod outcome;
pub mod preflight;
pub mod record;
pub mod report;
pub mod scenario;
pub mod shutdown;
pub mod sys;
pub mod threshold;
pub mod topology;
