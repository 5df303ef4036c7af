//! The command line's flags as they bear on a scenario: what `contend run`
//! and its kin hand to [`super::load`], [`super::parse`] and
//! [`super::from_overrides`].

use std::time::Duration;

use super::{ArrivalKind, Rate, ShardArg};

/// Overrides from the command line, applied over a file (or over defaults
/// when there is no file). `None` leaves the value alone.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--target URL`: becomes `Target::Url` with the URL's path as the request path.
    pub target: Option<String>,
    /// `--rate`: replaces every phase's rate (one phase is made when there is none).
    pub rate: Option<Rate>,
    /// `--duration`: replaces every phase's duration.
    pub duration: Option<Duration>,
    /// `--arrival`.
    pub arrival: Option<ArrivalKind>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--max-connections`.
    pub max_connections: Option<usize>,
    /// `--wait-at-max`: `[client] wait_at_max = true`.
    pub wait_at_max: bool,
    /// `--connections`: closed loop with this many connections; the
    /// phases keep their durations, their rates are not used.
    pub connections: Option<usize>,
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--name`.
    pub name: Option<String>,
    /// `--shard`: this process's share of the load.
    pub shard: Option<ShardArg>,
    /// `--start-at`: the common start on the wall clock.
    pub start_at: Option<std::time::SystemTime>,
    /// `--http2`: `[client] http = "2"`.
    pub http2: bool,
    /// `--insecure`: `[client] tls.insecure = true`.
    pub insecure: bool,
}
